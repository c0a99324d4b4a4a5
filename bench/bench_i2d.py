"""Throughput of img2dataset through vlprep's parts against one plain img2dataset run.

Same generated list of healthy URLs, same stand-in image host (its own process), same run:

  whole       img2dataset over the whole list: processes_count=P, thread_count=T.
  parts-seq   the list cut into parts (vlprep.i2d.slice_rows + run_part), run one after the
              other with the same P and T: the cost of cutting, staging and the per-part
              img2dataset start-up (about 3 s of imports per process) shows in full.
  parts-par   the same parts, P at a time, each with processes_count=1 and thread_count=T:
              the same number of download processes as `whole`, the way a scheduler runs
              independent jobs.

images/s is rows / wall seconds of the whole step (start-up included). The target is
parts/whole >= 0.9 for at least one way of running the parts. Every img2dataset invocation
costs ~5-6 s before and after its downloads (imports in the main, worker and logger
processes), so the ratio depends on part size: with 1,000-row parts (--rows 5000
--rows-per-part 1000 --per-shard 500) start-up dominates and the ratio is far lower.
Figures depend on the machine and are never hard-coded here.

    .venv/bin/python bench/bench_i2d.py [--rows 20000] [--rows-per-part 5000] [--per-shard 1000]
        [--processes 2] [--threads 32] [--image-size 64] [--workdir bench-data/i2d]

`through_parts()` is the function to swap for a variant (e.g. through Snakemake): it takes
the list, an output folder and the run settings, and returns when every part is in place.
"""

import argparse
import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
os.environ.setdefault("VLPREP_PROGRESS", "0")
os.environ["NO_ALBUMENTATIONS_UPDATE"] = "1"
os.environ["WANDB_MODE"] = "disabled"

from standin.base import ChildService  # noqa: E402
from standin.imagehost import make_url_list  # noqa: E402
from vlprep import i2d  # noqa: E402

TARGET = 0.9


def start_host(workdir: Path) -> tuple[ChildService, str]:
    """The image host as its own process (all URLs healthy); return it and its base URL."""
    host = ChildService("standin.imagehost", ["--seed", "11"], workdir)
    return host, host.start() + "/"


def whole(urls: Path, out: Path, args: dict, processes: int, threads: int, log: Path) -> dict:
    return i2d.run_whole(urls, out, i2d_args=args, processes=processes, threads=threads,
                         log_file=log)  # fmt: skip


def through_parts(
    urls: Path,
    out: Path,
    args: dict,
    *,
    rows_per_part: int,
    processes: int,
    threads: int,
    parallel: int,
    log: Path,
) -> dict:
    """Plan, slice and run every part (`parallel` at a time); return the summed stats."""
    plan = i2d.plan_parts(urls, args["input_format"], rows_per_part)
    per_shard = args["number_sample_per_shard"]

    def one(k: int) -> list[Path]:
        start, stop, offset = i2d.part_bounds(k, rows_per_part, per_shard)
        part_list = out / "lists" / f"part-{k:05d}.{args['input_format']}"
        i2d.slice_rows(urls, args["input_format"], start, stop, part_list, plan=plan)
        folder = out / "parts" / f"{k:05d}"
        i2d.run_part(part_list, folder, shard_offset=offset, i2d_args=args,
                     processes=processes, threads=threads, log_file=log)  # fmt: skip
        return i2d.stats_files(folder)

    with ThreadPoolExecutor(parallel) as pool:
        files = [f for fs in pool.map(one, range(plan["parts"])) for f in fs]
    return i2d.summarize(files)


def timed(name: str, rows: int, fn: Callable[[], dict]) -> dict:
    began = time.monotonic()
    stats = fn()
    wall = time.monotonic() - began
    if stats["attempted"] != rows:
        raise SystemExit(f"{name}: attempted {stats['attempted']} of {rows} rows")
    result = {"name": name, "wall": wall, "rate": rows / wall, "stats": stats}
    print(
        f"{name:<10} {wall:7.1f} s wall  {result['rate']:7.1f} images/s end to end  "
        f"(img2dataset's own: {stats['images_per_s']:.1f} images/s over {stats['duration']:.1f} s;"
        f" {stats['succeeded']}/{stats['attempted']} ok)",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rows-per-part", type=int, default=5000)
    parser.add_argument("--per-shard", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "i2d")
    args = parser.parse_args(argv)

    work = args.workdir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    host, url = start_host(work)
    try:
        urls = work / "urls.tsv"
        make_url_list(urls, url, args.rows)
        i2d_args = {
            "input_format": "tsv", "url_col": "url", "caption_col": "caption",
            "output_format": "webdataset", "image_size": args.image_size,
            "resize_mode": "keep_ratio", "number_sample_per_shard": args.per_shard,
            "timeout": 10,
        }  # fmt: skip
        parts = math.ceil(args.rows / args.rows_per_part)
        print(
            f"{args.rows} healthy URLs, {parts} parts of {args.rows_per_part}, shards of "
            f"{args.per_shard}, image_size {args.image_size}, {os.cpu_count()} CPUs\n"
            f"whole: processes_count={args.processes} thread_count={args.threads}; "
            f"parts-seq: same per run, one part at a time; parts-par: {args.processes} parts at "
            f"a time, processes_count=1 thread_count={args.threads} each",
            flush=True,
        )
        log = work / "img2dataset.log"
        common = {"rows_per_part": args.rows_per_part, "threads": args.threads, "log": log}
        results = [
            timed("whole", args.rows, lambda: whole(urls, work / "whole", i2d_args,
                                                    args.processes, args.threads, log)),
            timed("parts-seq", args.rows, lambda: through_parts(
                urls, work / "seq", i2d_args, processes=args.processes, parallel=1, **common)),
            timed("parts-par", args.rows, lambda: through_parts(
                urls, work / "par", i2d_args, processes=1, parallel=args.processes, **common)),
        ]  # fmt: skip
    finally:
        host.stop()
    base = results[0]["rate"]
    for res in results[1:]:
        ratio = res["rate"] / base
        verdict = "meets" if ratio >= TARGET else "BELOW"
        print(f"{res['name']}/whole = {ratio:.2f}  ({verdict} the {TARGET} target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
