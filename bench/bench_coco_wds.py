"""Benchmark COCO -> nxtp webdataset: vlprep.nxtp vs the seed script's method vs plain `tar`.

    .venv/bin/python bench/bench_coco_wds.py [--n 5000] [--workdir bench-data/coco_wds]

Generates `--n` distinct ~150 KB JPEGs (640x480 noise at quality 88, each made unique by a
JPEG comment) and a captions JSON once, then times, alternating, in the same run:
  ours  build_coco_wds, symlink mode, output on the same file system;
  seed  the seed's method (decode every image to a float tensor, copy it, write triplets);
  tar   the floor: `tar --sort=name -cf` of the same image files.
Each measurement writes to a fresh directory; before it, pending writes are synced and the page
cache is dropped (cold) when that is permitted, otherwise (or with --warm) all inputs are read
first (warm); the output says which. Outputs are deleted at the end; leave a minute between
runs (see `measure`). Targets: seed/ours >= 5, ours/tar <= 1.5 (medians); the exit status is 1
if either is missed.
"""

import argparse
import io
import json
import os
import random
import shutil
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]

from bench.seed_mscoco_to_wds import seed_reference  # noqa: E402
from bench.targets import Targets  # noqa: E402
from vlprep.nxtp import build_coco_wds  # noqa: E402

SPLIT = "val2017"
BASES = 16
WORDS = ["a", "man", "dog", "cat", "on", "the", "red", "table", "street", "near", "two", "big"]
SEED_TARGET = 5.0
TAR_TARGET = 1.5


def base_jpegs(rng: random.Random) -> list[bytes]:
    """A few 640x480 noise JPEGs of about 150 KB (noise keeps them from compressing away)."""
    out = []
    for _ in range(BASES):
        channels = [Image.effect_noise((640, 480), rng.uniform(22, 26)) for _ in "RGB"]
        buf = io.BytesIO()
        Image.merge("RGB", channels).save(buf, "JPEG", quality=88)
        out.append(buf.getvalue())
    return out


def with_comment(jpeg: bytes, text: str) -> bytes:
    """`jpeg` with a COM segment after SOI: still valid, now unique."""
    payload = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def caption(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(8, 14))).capitalize() + "."


def generate(root: Path, n: int) -> None:
    """COCO-like `root/val2017/*.jpg` + `root/annotations/captions_val2017.json`, once."""
    done = root / f".complete-{n}"
    if done.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(2017)
    bases = base_jpegs(rng)
    (root / SPLIT).mkdir(parents=True)
    (root / "annotations").mkdir()
    images, anns = [], []
    for i, image_id in enumerate(rng.sample(range(1, 600_000), n)):
        name = f"{image_id:012d}.jpg"
        (root / SPLIT / name).write_bytes(with_comment(bases[i % BASES], name))
        images.append({"id": image_id, "file_name": name, "height": 480, "width": 640})
        for _ in range(5):
            anns.append({"image_id": image_id, "id": len(anns) + 1, "caption": caption(rng)})
    rng.shuffle(anns)
    doc = {"info": {}, "licenses": [], "images": images, "annotations": anns}
    (root / "annotations" / f"captions_{SPLIT}.json").write_text(json.dumps(doc))
    done.touch()


def drop_caches() -> bool:
    """Flush and drop the page cache; False if not permitted."""
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def warm(root: Path) -> None:
    """Read every input so that all methods start from the page cache."""
    for path in root.rglob("*"):
        if path.is_file():
            path.read_bytes()


def methods(root: Path, workers: int) -> dict[str, Callable[[Path], None]]:
    """The three contenders; each writes into the empty directory it is given."""
    ann_file = root / "annotations" / f"captions_{SPLIT}.json"

    def ours(out: Path) -> None:
        build_coco_wds(ann_file, root / SPLIT, out / "coco_valid", split=SPLIT, workers=workers)

    def seed(out: Path) -> None:
        for part in (SPLIT, "annotations"):  # the seed writes into its input root
            (out / part).symlink_to(root / part)
        seed_reference(out, SPLIT)

    def tar(out: Path) -> None:
        cmd = ["tar", "--sort=name", "-cf", str(out / "images.tar"), "-C", str(root), SPLIT]
        subprocess.run(cmd, check=True)

    return {"ours": ours, "seed": seed, "tar": tar}


def measure(
    contenders: dict[str, Callable[[Path], None]],
    inputs: list[Path],
    runs: Path,
    repeats: int,
    cold: bool,
) -> dict[str, list[float]]:
    """Seconds per method, `repeats` rounds; each round runs all methods in a rotated order.

    Every measurement writes to a fresh directory and all are deleted only at the end: ext4
    makes file creation several times slower for a while after many files were deleted
    (`recently_deleted` in its inode allocator), which would penalise whoever ran second.
    `inputs` are read into the page cache before each run when caches are not dropped.
    """
    names = list(contenders)
    width = max(map(len, names))
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            out = runs / f"{round_}-{name}"
            out.mkdir(parents=True)
            os.sync()  # nobody pays for writing back the previous method's output
            if not (cold and drop_caches()):
                for path in inputs:
                    warm(path)
            start = time.perf_counter()
            contenders[name](out)
            times[name].append(time.perf_counter() - start)
            print(f"round {round_ + 1} {name:{width}s} {times[name][-1]:8.2f} s", flush=True)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="images to generate and convert")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "coco_wds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="build_coco_wds threads")
    parser.add_argument("--warm", action="store_true", help="warm cache even if dropping works")
    args = parser.parse_args()
    os.environ.setdefault("VLPREP_PROGRESS", "0")
    root, runs = args.workdir / "coco", args.workdir / "runs"
    generate(root, args.n)
    cold = not args.warm and drop_caches()
    size = sum(p.stat().st_size for p in (root / SPLIT).iterdir())
    print(
        f"{args.n} images, {size / 1e6:.0f} MB, cache: {'cold' if cold else 'warm'}, "
        f"workers={args.workers}, {os.cpu_count()} CPUs"
    )
    shutil.rmtree(runs, ignore_errors=True)
    try:
        times = measure(methods(root, args.workers), [root], runs, args.repeats, cold)
    finally:
        shutil.rmtree(runs, ignore_errors=True)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(f"{name:4s} median {med[name]:8.2f} s   runs {', '.join(f'{t:.2f}' for t in ts)}")
    targets = Targets("bench_coco_wds")
    targets.at_least("seed/ours", med["seed"] / med["ours"], SEED_TARGET)
    targets.at_most("ours/tar", med["ours"] / med["tar"], TAR_TARGET)
    return targets.exit_status()


if __name__ == "__main__":
    sys.exit(main())
