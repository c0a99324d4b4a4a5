"""Benchmark flattening Visual Genome's two image zips: vlprep.flatten vs plain `unzip`.

    .venv/bin/python bench/bench_vg_flatten.py [--n 100000] [--workdir bench-data/vg_flatten]

Generates the two stand-in zips once (standin.vg: `--n` small JPEGs, about 1.3 KB each,
split about 60/40 between images.zip/VG_100K and images2.zip/VG_100K_2, a few damaged ones),
then times, alternating, in the same run:
  ours     flatten_archives into one flat folder (a fresh Python process, as a job would be);
  unzip    `unzip -q images.zip -d out && unzip -q images2.zip -d out` (keeps the two
           top directories: the baseline the issue names);
  unzip-j  the same with `-j` (junk paths): the closest flat equivalent.
Each measurement writes to a fresh directory, with pending writes synced and the page cache
dropped (cold) when that is permitted, else the zips read first (warm); all outputs are
deleted only at the end (see bench_coco_wds.measure). Target: ours/unzip <= 1.5, and the same
against unzip -j (medians); the exit status is 1 if either is missed.
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]

from bench.bench_coco_wds import drop_caches, measure  # noqa: E402
from bench.targets import Targets  # noqa: E402
from standin.vg import TOP_DIRS, make_vg_zips  # noqa: E402

TARGET = 1.5
CORRUPT = 170  # as many damaged files as the real VG_100K_2 has
SAMPLE = 2000  # files byte-compared between ours and unzip -j
OURS = (
    "import sys; from pathlib import Path; from vlprep.flatten import flatten_archives; "
    "flatten_archives([Path(a) for a in sys.argv[2:]], Path(sys.argv[1]), "
    f"top_dirs={list(TOP_DIRS.values())!r}, entry='vg_images')"
)


def generate(root: Path, n: int) -> list[Path]:
    """images.zip and images2.zip under `root`, made once per `n`."""
    done = root / f".complete-{n}"
    zips = [root / name for name in TOP_DIRS]
    if done.exists():
        return zips
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    made = make_vg_zips(root, n, seed=0, corrupt=CORRUPT)
    print(f"generated {n} images in {time.perf_counter() - start:.1f} s")
    assert [made.files[name] for name in TOP_DIRS] == zips
    done.touch()
    return zips


def methods(zips: list[Path]) -> dict[str, Callable[[Path], None]]:
    """The contenders; each fills the empty directory it is given."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "VLPREP_PROGRESS": "0"}

    def ours(out: Path) -> None:
        cmd = [sys.executable, "-c", OURS, str(out / "images"), *map(str, zips)]
        done = subprocess.run(cmd, env=env, stderr=subprocess.PIPE, text=True)
        if done.returncode:  # its warning about the damaged images is expected, not shown
            sys.exit(f"flatten_archives failed:\n{done.stderr}")

    def unzip(out: Path, *flags: str) -> None:
        for archive in zips:
            subprocess.run(["unzip", "-q", *flags, str(archive), "-d", str(out)], check=True)

    return {"ours": ours, "unzip": unzip, "unzip-j": lambda out: unzip(out, "-j")}


def check_same(ours: Path, flat: Path) -> None:
    """Ours holds exactly the files of `unzip -j`, and a sample of them byte for byte."""
    names = sorted(os.listdir(ours))
    assert names == sorted(os.listdir(flat)), "ours and unzip -j hold different files"
    for name in random.Random(0).sample(names, min(SAMPLE, len(names))):
        assert (ours / name).read_bytes() == (flat / name).read_bytes(), name
    print(f"check: {len(names)} files, the same names as unzip -j, {SAMPLE} byte-identical")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="images across the two zips")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "vg_flatten")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warm", action="store_true", help="warm cache even if dropping works")
    args = parser.parse_args()
    if shutil.which("unzip") is None:
        sys.exit("unzip is not installed (apt-get install unzip); it is the baseline")
    zips = generate(args.workdir / "zips", args.n)
    runs = args.workdir / "runs"
    cold = not args.warm and drop_caches()
    with zipfile.ZipFile(zips[0]) as zf:
        compression = "stored" if zf.infolist()[-1].compress_type == 0 else "deflated"
    size = sum(z.stat().st_size for z in zips)
    print(
        f"{args.n} images in 2 zips, {size / 1e6:.0f} MB ({compression}), "
        f"cache: {'cold' if cold else 'warm'}, {os.cpu_count()} CPUs"
    )
    shutil.rmtree(runs, ignore_errors=True)
    try:
        times = measure(
            methods(zips), list(dict.fromkeys(z.parent for z in zips)), runs, args.repeats, cold
        )
        check_same(runs / "0-ours" / "images", runs / "0-unzip-j")
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(f"{name:7s} median {med[name]:7.2f} s   runs {', '.join(f'{t:.2f}' for t in ts)}")
    targets = Targets("bench_vg_flatten")
    for base in ("unzip", "unzip-j"):
        targets.at_most(f"ours/{base}", med["ours"] / med[base], TARGET)
    return targets.exit_status()


if __name__ == "__main__":
    sys.exit(main())
