"""Benchmark COCO-Stuff val label maps (both outputs) against two same-run baselines.

    .venv/bin/python bench/bench_coco_stuff.py [--maps 5000] [--workdir bench-data/coco_stuff]

Generates `--maps` raw 640x480 COCO-Stuff maps once (blobs of a few dozen raw ids over a stuff
background, not noise, so the PNGs are about the real ones' size), then times, alternating, in
the same run, each as a fresh Python process:
  ours   vlprep.segmaps.coco_stuff_val: `_labelTrainIds.png` and `_instanceTrainIds.png` from one
         decode of each map, over --processes workers, files renamed into place;
  floor  one process that only decodes each map once and encodes it twice with the same PNG
         settings (no remapping, no checks, no renames): what the work costs at the least;
  mmseg  mmseg's way in one process: coco_stuff164k.py's convert_to_trainID (a masked
         assignment per table entry, 172 passes) then COSMOS convert_coco_object.py's (its own
         decode, 172 more passes), each saving with Pillow's default PNG settings as they do.
Targets (issue 10, 2 cores): ours <= 0.6x the floor's time, mmseg's way >= 4x ours (medians);
ours' peak RSS (its own or any worker's, ru_maxrss) at --maps no more than 1.1x that at
--maps/5; every output pixel identical to mmseg's way. Exit status 1 on a miss.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]

from bench.bench_coco_wds import drop_caches, measure  # noqa: E402
from bench.targets import Targets  # noqa: E402
from vlprep.segmaps import COCO_STUFF_TRAIN_ID  # noqa: E402

FLOOR_TARGET = 0.6
MMSEG_TARGET = 4.0
MEMORY_TARGET = 1.1
SIZE = (640, 480)

# Each contender runs as `python -c PRELUDE + BODY raw out`, then prints its peak RSS.
PRELUDE = "import sys, os, json, resource; raw, out = sys.argv[1], sys.argv[2]\n"
EPILOGUE = (
    "\nprint(json.dumps({'self': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
    "'children': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n"
)
OURS = """
from vlprep.segmaps import coco_stuff_val
coco_stuff_val(raw, out + '/maps', work=out + '/work', processes={processes})
"""
FLOOR = """
from PIL import Image
from vlprep.segmaps import PNG_OPTIONS
for name in sorted(os.listdir(raw)):
    stem = name[:-4]
    with Image.open(os.path.join(raw, name)) as im:
        im.load()
        im.save(os.path.join(out, stem + '_labelTrainIds.png'), 'PNG', **PNG_OPTIONS)
        im.save(os.path.join(out, stem + '_instanceTrainIds.png'), 'PNG', **PNG_OPTIONS)
"""
MMSEG = """
import numpy as np
from PIL import Image
stuff = {stuff!r}
obj = dict(stuff)
for k, v in obj.items():  # COSMOS convert_coco_object.py:195-198
    obj[k] = v + 1
    if k > 90:
        obj[k] = 0
def convert(maskpath, table, suffix):  # coco_stuff164k.py:201-211 (and COSMOS's copy)
    mask = np.array(Image.open(maskpath))
    mask_copy = mask.copy()
    for clsID, trID in table.items():
        mask_copy[mask == clsID] = trID
    name = os.path.basename(maskpath).split('.')[0] + suffix
    Image.fromarray(mask_copy).save(os.path.join(out, name), 'PNG')
names = sorted(os.listdir(raw))
for name in names:
    convert(os.path.join(raw, name), stuff, '_labelTrainIds.png')
for name in names:
    convert(os.path.join(raw, name), obj, '_instanceTrainIds.png')
"""


def blob_map(seed: int):
    """A raw map: a stuff background, 15-40 polygon blobs of 8-30 raw ids of the table."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    classes = rng.sample(sorted(COCO_STUFF_TRAIN_ID), rng.randint(8, 30))
    img = Image.new("L", SIZE, rng.choice([c for c in classes if c > 90] or classes))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(15, 40)):
        cx, cy, rad = rng.uniform(0, SIZE[0]), rng.uniform(0, SIZE[1]), rng.uniform(10, 160)
        n = rng.randint(5, 14)
        angles = [2 * np.pi * i / n + rng.uniform(-0.3, 0.3) for i in range(n)]
        radii = [rad * rng.uniform(0.5, 1.3) for _ in range(n)]
        pts = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)]
        draw.polygon(pts, fill=rng.choice(classes))
    return img


def _make(folder: str, seed: int) -> None:
    blob_map(seed).save(os.path.join(folder, f"{seed:012d}.png"))


def generate(root: Path, n: int, small: int) -> tuple[Path, Path]:
    """`root/raw-n` (made once per n) and `root/raw-small`, links to its first `small` maps."""
    big, few = root / f"raw-{n}", root / f"raw-{n}-first-{small}"
    done = root / f".complete-{n}-{small}"
    if done.exists():
        return big, few
    for folder in (big, few):
        folder.mkdir(parents=True, exist_ok=True)
        for name in os.listdir(folder):
            os.unlink(folder / name)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(_make, [str(big)] * n, range(1, n + 1), chunksize=64))
    for name in sorted(os.listdir(big))[:small]:
        os.symlink(big / name, few / name)
    print(f"generated {n} maps in {time.perf_counter() - start:.1f} s")
    done.touch()
    return big, few


def run(body: str, raw: Path, out: Path, rss: list[int] | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "VLPREP_PROGRESS": "0"}
    cmd = [sys.executable, "-c", PRELUDE + body + EPILOGUE, str(raw), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{cmd[:2]} failed:\n{done.stderr}")
    peak = json.loads(done.stdout.strip().splitlines()[-1])
    if rss is not None:
        rss.append(max(peak["self"], peak["children"]))


def check_same(ours: Path, mmseg: Path, n: int) -> None:
    """Every output of ours has mmseg's way's pixels."""
    import numpy as np
    from PIL import Image

    names = sorted(os.listdir(mmseg))
    assert len(names) == 2 * n and names == sorted(os.listdir(ours)), "different file sets"
    for name in names:
        with Image.open(ours / name) as a, Image.open(mmseg / name) as b:
            assert a.mode == b.mode == "L", name
            assert np.array_equal(np.asarray(a), np.asarray(b)), name
    print(f"check: {len(names)} maps, pixel-identical to mmseg's way")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=5000, help="raw maps to generate and convert")
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "coco_stuff")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2, help="ours' worker processes")
    parser.add_argument("--warm", action="store_true", help="warm cache even if dropping works")
    args = parser.parse_args()
    small = max(1, args.maps // 5)
    raw, few = generate(args.workdir, args.maps, small)
    size = sum(p.stat().st_size for p in raw.iterdir())
    cold = not args.warm and drop_caches()
    print(
        f"{args.maps} raw maps {SIZE[0]}x{SIZE[1]}, {size / args.maps / 1e3:.1f} kB each, "
        f"cache: {'cold' if cold else 'warm'}, {os.cpu_count()} CPUs"
    )
    runs = args.workdir / "runs"
    subprocess.run(["rm", "-rf", str(runs)], check=True)
    ours_body = OURS.format(processes=args.processes)
    rss: dict[int, list[int]] = {args.maps: [], small: []}
    contenders = {
        "ours": lambda out: run(ours_body, raw, out, rss[args.maps]),
        "floor": lambda out: run(FLOOR, raw, out),
        "mmseg": lambda out: run(MMSEG.format(stuff=COCO_STUFF_TRAIN_ID), raw, out),
    }
    try:
        times = measure(contenders, [raw], runs, args.repeats, cold)
        check_same(runs / "0-ours" / "maps", runs / "0-mmseg", args.maps)
        for repeat in range(args.repeats):  # peak memory on fewer maps, for the growth ratio
            (runs / f"small-{repeat}").mkdir()
            run(ours_body, few, runs / f"small-{repeat}", rss[small])
    finally:
        subprocess.run(["rm", "-rf", str(runs)], check=True)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(f"{name:6s} median {med[name]:7.2f} s   runs {', '.join(f'{t:.2f}' for t in ts)}")
    peak = {count: max(values) / 1024 for count, values in rss.items()}
    print(
        f"ours peak RSS: {peak[small]:.1f} MB at {small} maps, {peak[args.maps]:.1f} MB at {args.maps}"
    )
    targets = Targets("bench_coco_stuff")
    targets.at_most("ours/floor", med["ours"] / med["floor"], FLOOR_TARGET)
    targets.at_least("mmseg/ours", med["mmseg"] / med["ours"], MMSEG_TARGET)
    targets.at_most("rss growth", peak[args.maps] / peak[small], MEMORY_TARGET)
    return targets.exit_status()


if __name__ == "__main__":
    sys.exit(main())
