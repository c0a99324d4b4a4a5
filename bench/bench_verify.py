"""Benchmark `verify --full` against `sha256sum` over the same files.

    .venv/bin/python bench/bench_verify.py [--images 2000] [--shards 8] [--demo DATA_ROOT]
                                          [--repeat 3] [--workdir bench-data/verify]

Generates once, deterministically, a product shaped like the big ones: an image folder in the
store (`--images` files of 40-400 KB, as COCO's are) shown in a layout through a folder link,
plus `--shards` webdataset tars of 32 MB, and writes its manifest (vlprep.manifest). Then
times, alternating, with the files in the page cache (hash throughput, not the disk's):
  verify     `python -m vlprep.verify --full --workers 2` (a fresh process: startup, the walk,
             the manifest read and every comparison included);
  sha256sum  `xargs -0 sha256sum` over the same files (each read once).
Ratio: sha256sum's time / verify's (verify's throughput relative to sha256sum's); target
>= 0.8 (issue 13). With `--demo DATA_ROOT` (a built demo's data root), the same is measured on
every manifest there: thousands of files of a few KB, where per-file costs dominate (printed,
not a target: no dataset consumers train on is made of 4 KB files).
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]

from bench.targets import Targets  # noqa: E402
from vlprep.manifest import read_header, read_lines, resolve, write_manifest  # noqa: E402

TARGET = 0.8
SHARD_BYTES = 32 << 20


def generate(root: Path, images: int, shards: int) -> Path:
    """The store, the layout and the manifest under `root`, made once per size."""
    data = root / f"data-{images}-{shards}"
    manifests = data / "manifests"
    if (manifests / "bench.json").exists():
        return manifests
    rng = random.Random(0)
    folder = data / "extracted" / "images" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(images):
        (folder / f"{i:012d}.jpg").write_bytes(rng.randbytes(rng.randrange(40_000, 400_000)))
    layout = data / "lavis" / "images"
    layout.mkdir(parents=True, exist_ok=True)
    if not (layout / "train").is_symlink():
        os.symlink("../../extracted/images/train", layout / "train")
    tars = data / "minigpt4" / "shards"
    tars.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        with tarfile.open(tars / f"{s:05d}.tar", "w") as tar:
            written, key = 0, 0
            while written < SHARD_BYTES:
                for ext, size in (("jpg", rng.randrange(20_000, 200_000)), ("txt", 60)):
                    info = tarfile.TarInfo(f"{s:05d}{key:04d}.{ext}")
                    info.size = size
                    tar.addfile(info, _Bytes(rng.randbytes(size)))
                    written += size
                key += 1
    roots = {name: str(data / name) for name in ("lavis", "minigpt4", "downloads", "extracted")}
    write_manifest(
        "bench",
        ["{lavis}/images/train", "{minigpt4}/shards"],
        {**roots, "data_root": str(data), "reports": str(data / "reports")},
        manifests,
    )
    return manifests


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.at + n
        chunk, self.at = self.data[self.at : end], min(end, len(self.data))
        return chunk


def unique_files(manifests: Path) -> list[str]:
    """Every file the manifests show, each once, by its real path."""
    seen = set()
    for header_path in sorted(manifests.glob("*.json")):
        if header_path.name.endswith(".croissant.json"):
            continue
        roots = read_header(header_path)["roots"]
        for line in read_lines(header_path):
            if "size" in line:
                seen.add(os.path.realpath(resolve(line["path"], roots)))
    return sorted(seen)


def timed(command: list[str], stdin: bytes | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "VLPREP_PROGRESS": "0"}
    start = time.perf_counter()
    subprocess.run(command, input=stdin, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def compare(label: str, manifests: Path, repeat: int) -> float:
    """Median of sha256sum's time over verify's, alternating which runs first."""
    files = unique_files(manifests)
    listing = b"\0".join(path.encode() for path in files) + b"\0"
    size = sum(os.path.getsize(path) for path in files)
    print(f"{label}: {len(files):,} files, {size / 1e6:,.0f} MB", flush=True)
    verify = [sys.executable, "-m", "vlprep.verify", "--manifests", str(manifests)]
    verify += ["--full", "--workers", "2"]
    runs = {
        "verify": lambda: timed(verify),
        "sha256sum": lambda: timed(["xargs", "-0", "sha256sum"], listing),
    }
    for run in runs.values():  # both start from a warm page cache
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(repeat):
        for name in names[round_ % 2 :] + names[: round_ % 2]:
            times[name].append(runs[name]())
            mb_s = size / 1e6 / times[name][-1]
            print(f"  round {round_ + 1} {name:9s} {times[name][-1]:7.2f} s  {mb_s:8.0f} MB/s")
    ratio = statistics.median(times["sha256sum"]) / statistics.median(times["verify"])
    print(f"  verify throughput / sha256sum's (medians): {ratio:.2f}", flush=True)
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--demo", type=Path, help="a built demo's data root")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "verify")
    args = parser.parse_args()
    targets = Targets("bench_verify")
    manifests = generate(args.workdir, args.images, args.shards)
    ratio = compare("images and shards", manifests, args.repeat)
    targets.at_least("verify/sha256sum", ratio, TARGET)
    if args.demo:
        compare("demo (small files)", args.demo / "manifests", args.repeat)
    return targets.exit_status()


if __name__ == "__main__":
    sys.exit(main())
