"""Benchmark the data report on a product and on the same product 20 times larger.

    .venv/bin/python bench/bench_report.py [--scale 20] [--repeat 3] [--workdir bench-data/report]

Builds once, through the demo (`python -m standin.demo coco_valid`: the stand-in world, the real
workflow), nxtp's `coco_valid`; then makes two copies of its tree, deterministically: one as it
is and one `--scale` times larger (each tar shard, sample folder and store image repeated under
new names, as hard links; the COCO caption and instance files rewritten with `--scale` times
their images and annotations), and writes each copy's manifest (vlprep.manifest). Then times,
alternating the two sizes:
  piece    vlprep.report.write_report (the summary and the sample grid, vlprep.samples), in
           this process, the product's files in the page cache;
  report   `snakemake --report report.html coco_valid` on that copy (a fresh process: the
           workflow's parse, the DAG, the rule graph, the pieces embedded).
Ratio: the larger copy's median time over the smaller's; target <= 1.5 for each (issue 15: the
report reads a bounded sample of each product, whatever its size).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]

from bench.targets import Targets  # noqa: E402
from vlprep.catalog import load_catalog  # noqa: E402
from vlprep.manifest import read_header, write_manifest  # noqa: E402
from vlprep.report import report_files, write_report  # noqa: E402

TARGET = 1.5
PRODUCT = "coco_valid"
# What the copies take of the demo's data root: the product's layout and the store it shows.
TAKEN = ("g3m/coco", "extracted/coco2017_val", "extracted/coco2017_annotations", "downloads")


def build_demo(workdir: Path) -> Path:
    """The demo's workdir with `coco_valid` built (once)."""
    demo = workdir / "demo"
    if not (demo / "data" / "manifests" / f"{PRODUCT}.json").is_file():
        demo.mkdir(parents=True, exist_ok=True)
        print(f"building the demo's {PRODUCT} in {demo} (log: {demo / 'bench.log'})", flush=True)
        command = [sys.executable, "-m", "standin.demo", "--workdir", str(demo), PRODUCT]
        env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
        with open(demo / "bench.log", "w") as log:
            subprocess.run(command, cwd=REPO, env=env, check=True, stdout=log, stderr=log)
    return demo


def repeat_folder(folder: Path, scale: int) -> int:
    """Each entry of `folder` (files and folders of files) `scale - 1` more times, as hard
    links under new names; returns the entries added."""
    added = 0
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        for copy in range(1, scale):
            stem, dot, suffix = entry.name.partition(".")
            name = f"{stem}x{copy:02d}{dot}{suffix}"
            if entry.is_dir(follow_symlinks=False):
                shutil.copytree(entry.path, folder / name, copy_function=os.link)
            else:
                os.link(entry.path, folder / name)
            added += 1
    return added


def scale_coco_json(path: Path, scale: int) -> None:
    """A COCO annotation file with its images and annotations `scale` times (new ids)."""
    data = json.loads(path.read_bytes())
    step = 1 + max((image["id"] for image in data.get("images", [])), default=0)
    step = max(step, 1 + max((a["id"] for a in data.get("annotations", [])), default=0))
    for key in ("images", "annotations"):
        if key in data:
            first = data[key]
            data[key] = list(first)
            for copy in range(1, scale):
                for record in first:
                    record = dict(record, id=record["id"] + copy * step)
                    if "image_id" in record:
                        record["image_id"] += copy * step
                    data[key].append(record)
    path.unlink()  # a hard link of the original: write a file of its own
    path.write_text(json.dumps(data))


def make_copy(demo: Path, root: Path, scale: int) -> Path:
    """The product's tree `scale` times larger under `root` (once), with its manifest; returns
    the data root."""
    data = root / f"x{scale}"
    header = data / "manifests" / f"{PRODUCT}.json"
    if header.is_file():
        return data
    shutil.rmtree(data, ignore_errors=True)
    for part in TAKEN:
        shutil.copytree(demo / "data" / part, data / part, symlinks=True, copy_function=os.link)
    if scale > 1:
        for folder in ("g3m/coco/coco_valid", "extracted/coco2017_val/val2017"):
            repeat_folder(data / folder, scale)
        for path in sorted((data / "extracted/coco2017_annotations/annotations").glob("*.json")):
            scale_coco_json(path, scale)
    built = read_header(demo / "data" / "manifests" / f"{PRODUCT}.json")
    roots = {name: str(data / name) for name in ("g3m", "downloads", "extracted", "reports")}
    roots["data_root"] = str(data)
    write_manifest(
        PRODUCT,
        built["paths"],
        roots,
        data / "manifests",
        entries=list(built["sources"]),
        catalog=load_catalog(demo / "world" / "catalog.yaml"),
        config=built["config"],
    )
    return data


def piece(data: Path) -> float:
    """Seconds to write the product's report piece from its tree."""
    roots = {name: str(data / name) for name in ("g3m", "cosmos", "lavis", "minigpt4", "glamm")}
    roots["data_root"] = str(data)
    summary, grid = report_files(data / "reports" / "products", PRODUCT)
    start = time.perf_counter()
    write_report(data / "manifests" / f"{PRODUCT}.json", roots, summary, grid)
    return time.perf_counter() - start


def snakemake_report(demo: Path, data: Path) -> float:
    """Seconds of `snakemake --report` for the product on the copy at `data`."""
    command = [sys.executable, "-m", "snakemake", "--report", str(data / "report.html"), PRODUCT]
    command += ["--configfile", str(demo / "config.yaml"), "--config", f"data_root={data}"]
    env = {**os.environ, "VLPREP_PROGRESS": "0"}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake --report failed on {data}:\n{proc.stderr[-3000:]}")
    return took


def describe(data: Path) -> str:
    counts = read_header(data / "manifests" / f"{PRODUCT}.json")
    kinds, totals = counts["kinds"], counts["totals"]
    images = kinds.get("jpg", {}).get("files", 0)
    return (
        f"{totals['files'] + totals['links']:,} files and links, "
        f"{totals['bytes'] / 1e6:,.0f} MB, {kinds.get('tar', {}).get('files', 0)} tars of "
        f"{totals['samples']:,} samples, {images:,} images, "
        f"{kinds.get('json', {}).get('records', 0):,} JSON records"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "report")
    args = parser.parse_args()
    os.environ["VLPREP_PROGRESS"] = "0"  # no progress bars from the manifests written here
    targets = Targets("bench_report")
    demo = build_demo(args.workdir.resolve())
    sizes = {1: make_copy(demo, args.workdir.resolve(), 1)}
    sizes[args.scale] = make_copy(demo, args.workdir.resolve(), args.scale)
    for scale, data in sizes.items():
        print(f"x{scale}: {describe(data)}", flush=True)
    runs = {"piece": piece, "report": lambda data: snakemake_report(demo, data)}
    for name, run in runs.items():
        for data in sizes.values():  # both from a warm page cache and a written piece
            run(data)
        times: dict[int, list[float]] = {scale: [] for scale in sizes}
        order = list(sizes)
        for round_ in range(args.repeat):
            for scale in order[round_ % 2 :] + order[: round_ % 2]:
                times[scale].append(run(sizes[scale]))
                print(f"  round {round_ + 1} {name:6s} x{scale:<3d} {times[scale][-1]:7.2f} s")
        small, large = (statistics.median(times[scale]) for scale in sizes)
        html = sizes[args.scale] / "report.html"
        if name == "report" and html.is_file():
            print(f"  report.html of x{args.scale}: {html.stat().st_size / 2**20:.1f} MiB")
        print(f"  {name}: x1 {small:.2f} s, x{args.scale} {large:.2f} s (medians)", flush=True)
        targets.at_most(f"{name} x{args.scale}/x1", large / small, TARGET)
    return targets.exit_status()


if __name__ == "__main__":
    sys.exit(main())
