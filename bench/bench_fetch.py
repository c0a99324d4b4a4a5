"""Throughput of vlprep.fetch against curl, same file, same stand-in host, same run.

fetch() hashes and verifies while it downloads, curl only writes; the target is that this
costs little: ours/curl >= 0.8 (median throughputs) on a 1 GB file from the local stand-in; the
exit status is 1 if it is missed. Runs alternate which tool goes first so neither always meets
a warmer page cache.

    .venv/bin/python bench/bench_fetch.py [--size-mb 1024] [--workdir bench-data] [--repeats 3]
"""

import argparse
import hashlib
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]
os.environ.setdefault("VLPREP_PROGRESS", "0")

import requests  # noqa: E402

from bench.targets import Targets  # noqa: E402
from standin.base import ChildService  # noqa: E402
from vlprep.fetch import fetch  # noqa: E402

MiB = 1 << 20
TARGET = 0.8


def make_source(path: Path, size_mb: int) -> str:
    """Write a deterministic `size_mb` MiB file (reused if present); return its sha256."""
    digest_file = path.with_name(path.name + ".sha256")
    if path.exists() and path.stat().st_size == size_mb * MiB and digest_file.exists():
        return digest_file.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    block = bytearray(random.Random(20240601).randbytes(MiB))
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for index in range(size_mb):
            block[:8] = index.to_bytes(8, "little")  # no two blocks alike
            out.write(block)
            digest.update(block)
    digest_file.write_text(digest.hexdigest() + "\n")
    return digest.hexdigest()


def timed(run: Callable[[], None], out: Path) -> float:
    """Seconds `run` takes to produce `out` from scratch."""
    out.unlink(missing_ok=True)
    began = time.perf_counter()
    run()
    seconds = time.perf_counter() - began
    out.unlink()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-data")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    root = args.workdir / "fetch"
    source = root / "serve" / f"blob-{args.size_mb}MiB.bin"
    sha256 = make_source(source, args.size_mb)
    size = source.stat().st_size
    ours_out, curl_out = root / "out-ours.bin", root / "out-curl.bin"
    # The host runs as its own process, as in the workflow.
    host = ChildService("standin.server", ["--root", str(source.parent)], root)
    url = f"{host.start()}/{source.name}"
    session = requests.Session()
    session.trust_env = False  # never through a proxy: the host is on 127.0.0.1

    def ours() -> None:
        fetch("bench", [url], ours_out, size=size, sha256=sha256, session=session)

    def curl() -> None:
        command = ["curl", "-s", "--noproxy", "*", "-o", str(curl_out), url]
        subprocess.run(command, check=True)
        if curl_out.stat().st_size != size:
            raise SystemExit(f"curl wrote {curl_out.stat().st_size} bytes, expected {size}")

    results: dict[str, list[float]] = {"fetch": [], "curl": []}
    try:
        for rep in range(args.repeats):
            order = [("fetch", ours, ours_out), ("curl", curl, curl_out)]
            for name, run, out in order if rep % 2 == 0 else order[::-1]:
                rate = size / 1e6 / timed(run, out)
                results[name].append(rate)
                print(f"rep {rep + 1} {name:5s} {rate:8.1f} MB/s", flush=True)
    finally:
        host.stop()
        session.close()

    medians = {name: statistics.median(rates) for name, rates in results.items()}
    print(f"median fetch {medians['fetch']:.1f} MB/s, curl {medians['curl']:.1f} MB/s")
    targets = Targets("bench_fetch")
    targets.at_least("fetch/curl", medians["fetch"] / medians["curl"], TARGET)
    return targets.exit_status()


if __name__ == "__main__":
    sys.exit(main())
