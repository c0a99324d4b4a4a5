"""img2dataset through the workflow (Snakemake, LAION-115M rules) against img2dataset alone.

Same generated BLIP list of healthy URLs, same stand-in image host (own process), same run:

  direct     img2dataset over the TSV: processes_count=P, thread_count=T.
  workflow   `snakemake <minigpt4>/laion/laion_dataset --cores P`: i2d_plan, the parts (each
             an img2dataset job with processes_count=1, thread_count=T, P at a time) and the
             gathering of their shards, i.e. everything the workflow adds around img2dataset.
             The TSV is built beforehand and not timed (bench_laion_tsv.py measures that).

Prints images/s of both (medians of --repeat rounds, which one goes first swapping every round)
and the ratio workflow/direct (target >= 0.9); the exit status is 1 if it is missed. Figures
depend on the machine and are never hard-coded.

    .venv/bin/python bench/bench_i2d_workflow.py [--rows 20000] [--parts 4] [--processes 2]
        [--repeat 1]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]

from bench.bench_i2d import start_host  # noqa: E402
from bench.targets import Targets  # noqa: E402
from standin.laion import make_blip_json  # noqa: E402
from standin.server import StandinServer  # noqa: E402
from standin.world import IMAGE_HOST, proxied_env, served_path, write_config  # noqa: E402
from vlprep import i2d  # noqa: E402
from vlprep.products import URL_LISTS  # noqa: E402

TARGET = 0.9


def prepare(workdir: Path, rows: int) -> Path:
    """The BLIP list where the stand-in file host serves it; a catalog naming it."""
    real = yaml.safe_load((REPO / "config" / "catalog.yaml").read_text())["laion115m_json"]
    source = workdir / "www" / served_path(real["url"])
    source.parent.mkdir(parents=True, exist_ok=True)
    make_blip_json(source, rows=rows, url_host=IMAGE_HOST, quirks=False)
    entry = {**real, "rows": rows, "size": source.stat().st_size}
    catalog = workdir / "catalog.yaml"
    catalog.write_text(yaml.safe_dump({"laion115m_json": entry}))
    return catalog


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--per-shard", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1, help="alternated runs (medians)")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "i2d_workflow")
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    catalog = prepare(args.workdir, args.rows)
    per_part = -(-args.rows // args.parts // args.per_shard) * args.per_shard
    settings = {
        "rows_per_part": per_part, "samples_per_shard": args.per_shard, "max_rows": None,
        "image_size": 64, "processes": 1, "threads": args.threads, "timeout": 10,
        "success_floor": 0.5,
    }  # fmt: skip
    host, host_url = start_host(args.workdir)
    env = {**proxied_env(host_url), "VLPREP_PROGRESS": "0"}
    data = args.workdir / "data"
    # The direct run gets exactly the arguments the workflow's parts get: the registry's
    # (MiniGPT-4's download_laion.sh) tuned by these settings, through the rules' own code.
    i2d_args = i2d.job_args(URL_LISTS["laion115m"].i2d, settings)
    snakemake = [sys.executable, "-m", "snakemake", "--cores", str(args.processes)]
    tsv = data / "minigpt4" / "laion" / "laion_synthetic_filtered_large.tsv"
    shards = data / "minigpt4" / "laion" / "laion_dataset"
    workflow_times, direct_times = [], []
    try:
        with StandinServer(args.workdir / "www") as web:
            config = write_config(
                args.workdir / "config.yaml", data_root=data, catalog=catalog,
                base_url=web.url, url_lists={"laion115m": settings},
            )  # fmt: skip
            timed([*snakemake, str(tsv), "--configfile", str(config)], env)
            os.environ.update(env)
            command = [*snakemake, str(shards), "--configfile", str(config)]

            def run_workflow() -> float:
                return timed(command, env)

            def run_direct() -> float:
                started = time.monotonic()
                i2d.run_whole(
                    tsv, args.workdir / "direct", i2d_args=i2d_args, processes=args.processes,
                    threads=args.threads, log_file=args.workdir / "direct.log",
                )  # fmt: skip
                return time.monotonic() - started

            # Alternated, and which goes first swaps every round, so a load change on this
            # shared machine or a warmer page cache favours neither side.
            contenders = [
                ("workflow", run_workflow, workflow_times),
                ("direct", run_direct, direct_times),
            ]
            for round_ in range(args.repeat):
                for path in (data / "i2d", shards, args.workdir / "direct"):
                    shutil.rmtree(path, ignore_errors=True)
                for name, run, times in contenders if round_ % 2 == 0 else contenders[::-1]:
                    times.append(run())
                    print(f"round {round_ + 1} {name:<8} {times[-1]:6.1f} s", flush=True)
    finally:
        host.stop()
    workflow, direct = statistics.median(workflow_times), statistics.median(direct_times)
    got = len(list(shards.glob("*.tar"))), len(list((args.workdir / "direct").glob("*.tar")))
    print(f"{args.rows} rows, {args.parts} parts of {per_part}, {args.per_shard} per shard")
    print(
        f"runs (s): workflow {[round(t, 1) for t in workflow_times]}, "
        f"direct {[round(t, 1) for t in direct_times]}"
    )
    print(f"direct    {direct:6.1f} s  {args.rows / direct:7.1f} images/s  ({got[1]} shards)")
    print(f"workflow  {workflow:6.1f} s  {args.rows / workflow:7.1f} images/s  ({got[0]} shards)")
    targets = Targets("bench_i2d_workflow")
    # A throughput ratio: images/s through the workflow over images/s of img2dataset alone.
    targets.at_least("workflow/direct", direct / workflow, TARGET)
    return targets.exit_status()


if __name__ == "__main__":
    sys.exit(main())
