"""Benchmark BLIP JSON -> MiniGPT-4 TSV: vlprep.laion vs DuckDB vs the seed, same data, same run.

    .venv/bin/python bench/bench_laion_tsv.py [--sizes 300,3000] [--workers 2] [--repeats 3]
        [--workdir bench-data/laion] [--pretty]

Generates (once, reused) stand-in BLIP JSON arrays of each size in MB (compact, quirks on),
then for each size measures, each in its own subprocess so its peak RSS is its own:
  ours    convert_json_to_tsv(workers=N); peak RSS = max over the process and its workers;
  duckdb  COPY (SELECT caption, url FROM read_json(..., format='array', columns=...)) TO ...
          (HEADER, DELIMITER '\\t') with threads=N;
  seed    MiniGPT-4's convert_laion.py (json.load of the whole array), on sizes up to
          --seed-max MB only: on the 3 GB file it would need ~15-30 GB of RAM and minutes.
Each size runs --repeats rounds (default 3) whose order rotates every round. Prints wall
time and MB/s of input (medians) and peak RSS (the highest), the ours/duckdb throughput ratio
(target >= 1.0), whether our peak RSS stays under 256 MB and flat across sizes, and whether
our output equals the seed's byte for byte; the exit status is 1 if any of these is missed.
DuckDB's TSV differs from the seed's by design (LF line ends, its own quoting), so only its
speed is compared. Outputs are deleted after each size.
Timing: generating 3 GB takes ~1-2 min once; one round of 300,3000 ~3-6 min on 2 cores.
"""

import argparse
import filecmp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]

from bench.targets import Targets  # noqa: E402
from standin.laion import make_blip_json  # noqa: E402

THROUGHPUT_TARGET = 1.0  # ours/duckdb, input MB/s
RSS_TARGET_MB = 256
# "Flat across sizes": our highest peak RSS at most the lowest times this, plus this slack.
RSS_FLAT_FACTOR = 1.25
RSS_FLAT_SLACK_MB = 10

OURS = """
import sys
from vlprep.laion import convert_json_to_tsv
r = convert_json_to_tsv(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]))
print(r["rows"])
"""
DUCK = """
import sys, duckdb
con = duckdb.connect()
con.execute(f"SET threads={int(sys.argv[3])}")
con.execute("SET enable_progress_bar=false")
con.execute(
    f"COPY (SELECT caption, url FROM read_json('{sys.argv[1]}', format='array', "
    "columns={caption: 'VARCHAR', url: 'VARCHAR'})) "
    f"TO '{sys.argv[2]}' (HEADER, DELIMITER '\\t')"
)
"""
SEED = """
import sys
from bench.seed_convert_laion import seed_convert
seed_convert(sys.argv[1], sys.argv[2])
"""
# Wraps a snippet: run it, then report wall time and peak RSS (self and waited-for children).
WRAP = """
import resource, sys, time
t = time.perf_counter()
exec(compile(sys.stdin.read(), "<bench>", "exec"))
dt = time.perf_counter() - t
ru = resource.getrusage
# VmHWM: ru_maxrss of a fresh process starts at its parent's RSS (Linux keeps it across exec)
own = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")][0]
rss = max(own, ru(resource.RUSAGE_CHILDREN).ru_maxrss)
print(f"BENCH {dt} {rss}", file=sys.stderr)
"""


def measure(code: str, src: Path, dest: Path, threads: int) -> tuple[float, float]:
    """(seconds, peak RSS MB) of `code` run in a fresh interpreter."""
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'scripts'}:{REPO}", VLPREP_PROGRESS="0")
    proc = subprocess.run(
        [sys.executable, "-c", WRAP, str(src), str(dest), str(threads)],
        input=code,
        text=True,
        env=env,
        capture_output=True,
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    line = [x for x in proc.stderr.splitlines() if x.startswith("BENCH ")][-1]
    _, dt, rss = line.split()
    return float(dt), int(rss) / 1024


def generate(workdir: Path, mb: int, pretty: bool) -> Path:
    path = workdir / f"blip-{mb}MB{'-pretty' if pretty else ''}.json"
    if not path.exists():
        t = time.perf_counter()
        rows = make_blip_json(path, target_bytes=mb * 1_000_000, seed=mb, pretty=pretty)
        print(f"generated {path} ({rows} rows) in {time.perf_counter() - t:.0f} s", flush=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="300,3000", help="input sizes in MB, comma-separated")
    ap.add_argument("--workers", type=int, default=2, help="our workers = DuckDB threads")
    ap.add_argument("--seed-max", type=int, default=500, help="run the seed up to this MB")
    ap.add_argument("--repeats", type=int, default=3, help="rotated rounds per size (medians)")
    ap.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "laion")
    ap.add_argument("--pretty", action="store_true", help="indent=4 input, as re-dumped")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    ours_rss = {}
    same_as_seed = {}
    ratios = {}
    for mb in sizes:
        src = generate(args.workdir, mb, args.pretty)
        size = src.stat().st_size / 1e6
        out = args.workdir / "out"
        out.mkdir(exist_ok=True)
        runs = [("ours", OURS, args.workers), ("duckdb", DUCK, args.workers)]
        if mb <= args.seed_max:
            runs.append(("seed", SEED, 1))
        times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
        peak_rss: dict[str, float] = {name: 0.0 for name, _, _ in runs}
        # The order rotates every round, so no tool always runs first or after the same one.
        for round_ in range(args.repeats):
            shift = round_ % len(runs)
            for name, code, threads in runs[shift:] + runs[:shift]:
                dt, rss = measure(code, src, out / f"{name}.tsv", threads)
                times[name].append(dt)
                peak_rss[name] = max(peak_rss[name], rss)
                print(
                    f"{mb:>6} MB  round {round_ + 1}  {name:<7} x{threads}  {dt:8.1f} s  "
                    f"{size / dt:8.1f} MB/s  peak RSS {rss:8.0f} MB",
                    flush=True,
                )
        for name, _, threads in runs:
            dt = statistics.median(times[name])
            rows.append((mb, name, threads, dt, size / dt, peak_rss[name]))
        ours_rss[mb] = peak_rss["ours"]
        if "seed" in times:  # the last round's outputs are still there
            same_as_seed[mb] = filecmp.cmp(out / "ours.tsv", out / "seed.tsv", shallow=False)
        ratios[mb] = statistics.median(times["duckdb"]) / statistics.median(times["ours"])
        for f in out.iterdir():
            f.unlink()
    print()
    print(f"medians of {args.repeats} rounds; peak RSS is the highest of them")
    print(f"{'MB':>6}  {'tool':<7} {'thr':>3}  {'seconds':>8}  {'MB/s':>8}  {'peak RSS MB':>11}")
    for mb, name, threads, dt, rate, rss in rows:
        print(f"{mb:>6}  {name:<7} {threads:>3}  {dt:8.1f}  {rate:8.1f}  {rss:11.0f}")
    print()
    targets = Targets("bench_laion_tsv")
    for mb, ratio in ratios.items():
        targets.at_least(f"{mb} MB ours/duckdb", ratio, THROUGHPUT_TARGET)
    print(
        "our peak RSS: " + ", ".join(f"{mb} MB input -> {v:.0f} MB" for mb, v in ours_rss.items())
    )
    highest, lowest = max(ours_rss.values()), min(ours_rss.values())
    targets.check(
        "our peak RSS", highest < RSS_TARGET_MB, f"< {RSS_TARGET_MB} MB", f"{highest:.0f}"
    )
    flat_limit = lowest * RSS_FLAT_FACTOR + RSS_FLAT_SLACK_MB
    targets.check(
        "RSS across sizes",
        highest <= flat_limit,
        f"flat: highest <= lowest x {RSS_FLAT_FACTOR} + {RSS_FLAT_SLACK_MB} MB",
        f"{highest:.0f}",
    )
    for mb, same in same_as_seed.items():
        targets.check(
            f"{mb} MB TSV", same, "byte-identical to the seed's", "same" if same else "differs"
        )
    skipped = [mb for mb in sizes if mb > args.seed_max]
    if skipped:
        print(
            f"seed not run on {skipped} MB: json.load of the whole array would need ~5-10x "
            "the file size in RAM"
        )
    return targets.exit_status()


if __name__ == "__main__":
    sys.exit(main())
