"""`make demo`: build every enabled product against the stand-in world, then say what was built.

Generates the world (cached in demo-data/world), starts the stand-in host on a free loopback
port, runs the real workflow through Snakemake on it, writes Snakemake's report of what it built
(demo-data/data/report.html, the data root's, where the end of every run says it is), prints
each product's tree, and stops the host whatever happened. Exits with Snakemake's status, or 1
if the consumer checks of the products the targets built (`python -m standin.demo sbu`: only
sbu's) find a problem.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from standin.base import ChildService
from standin.imagenet import STANDIN_TOKEN
from standin.world import REPO, build_world, place_manual_files, proxied_env, write_config
from vlprep.consumers import CHECKS
from vlprep.products import DEMO_PRODUCTS, PRODUCTS, products_of, unknown_target_message

# What the demo lists: the layouts' top entries (the store under downloads/ and extracted/
# is an implementation detail of the layouts).
LAYOUT_GLOBS = (
    "g3m/*/*",
    "cosmos/*/*/*",
    "minigpt4/*/*",
    "glamm/*/*",
    "lavis/*/*",
    "lavis/nocaps/images/*",
    "lavis/coco/images/*",
    "g3m/openimages_v7/*",
    "reports/*",
)


# The demo's mix of image failures: mostly fine, some of each way real hosts fail.
DEMO_IMAGE_MIX = {"ok": 0.8, "404": 0.06, "corrupt": 0.04, "truncated": 0.04, "redirect": 0.06}


def describe(path: Path) -> str:
    """One line about a built path: what it is and how much it holds."""
    if path.is_symlink():
        return f"-> {os.readlink(path)}"
    if path.is_dir():
        tars = sorted(path.glob("*.tar"))
        files = sum(len(names) for _, _, names in os.walk(path))
        extra = f", {len(tars)} tars ({', '.join(t.name for t in tars[:3])}...)" if tars else ""
        return f"directory, {files} files{extra}"
    return f"file, {path.stat().st_size} bytes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "demo-data")
    parser.add_argument("--cores", default="all")
    parser.add_argument("targets", nargs="*", default=["all"])
    args = parser.parse_args(argv)
    unknown = unknown_targets(args.targets)
    if unknown:
        parser.error("\n".join(unknown))
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    report = workdir / "data" / "report.html"
    with stand_in_world(workdir) as (config, env):
        cmd = [sys.executable, "-m", "snakemake", "--cores", args.cores]
        cmd += [*args.targets, "--configfile", str(config)]
        status = subprocess.run(cmd, cwd=REPO, env=env).returncode
        if status == 0:
            status = write_report(report, args.targets, config, env)
    if status != 0:
        print(f"vlprep demo: FAILED (snakemake exited {status}); logs in {workdir}/data/logs")
        return status
    data = workdir / "data"
    print(f"\nvlprep demo: built under {data}")
    for pattern in LAYOUT_GLOBS:
        for path in sorted(data.glob(pattern)):
            print(f"  {path.relative_to(data)}: {describe(path)}")
    built = products_of(args.targets, DEMO_PRODUCTS, enabled=DEMO_PRODUCTS)
    if not built:
        targets = ", ".join(args.targets)
        print(f"vlprep demo: no product among the targets ({targets}): no consumer path checks")
        return 0
    print(f"vlprep demo: checking what the consumers open of {', '.join(built)}")
    problems = check_layouts(data, built, catalog=workdir / "world" / "catalog.yaml")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    print(f"vlprep demo: consumer path checks (vlprep.consumers): {len(problems)} problem(s)")
    print(f"vlprep demo: the data report: open file://{report}")
    return 1 if problems else 0


def write_report(report: Path, targets: list[str], config: Path, env: dict[str, str]) -> int:
    """Snakemake's report of what `targets` built (vlprep.report's pieces, the rule graph):
    one self-contained HTML file. Returns Snakemake's status."""
    cmd = [sys.executable, "-m", "snakemake", "--report", str(report), *targets]
    cmd += ["--configfile", str(config)]
    started = time.monotonic()
    status = subprocess.run(cmd, cwd=REPO, env=env).returncode
    if status == 0:
        size = report.stat().st_size / 2**20
        took = time.monotonic() - started
        print(f"vlprep demo: wrote the data report, {size:.1f} MiB in {took:.1f} s: {report}")
    return status


@contextmanager
def stand_in_world(workdir: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """Generate the world in `workdir`, serve it from every stand-in, and yield (the config
    of a run against them, the environment to run Snakemake in); the stand-ins stop after."""
    print(f"vlprep demo: generating the stand-in world in {workdir / 'world'}", flush=True)
    catalog = build_world(workdir / "world")
    world = workdir / "world"
    # The files a user fetches by hand (registration, accounts), as if they had.
    place_manual_files(world, workdir / "data" / "manual")
    mix = json.dumps(DEMO_IMAGE_MIX)
    ca = workdir / "drive-ca.pem"  # the Drive stand-in's throwaway CA, trusted by gdown only
    with (
        ChildService("standin.server", ["--root", str(world / "www")], workdir) as web,
        ChildService("standin.hub", ["--root", str(world / "hub")], workdir) as hub,
        ChildService("standin.imagehost", ["--mix", mix], workdir) as images,
        ChildService("standin.s3", ["--root", str(world / "s3")], workdir) as s3,
        ChildService(
            "standin.drive", ["--root", str(world / "drive"), "--ca-file", str(ca)], workdir
        ) as drive,
    ):
        print(
            f"vlprep demo: stand-ins: files {web}, hub {hub}, images {images}, s3 {s3}, "
            f"drive {drive}",
            flush=True,
        )
        config = write_config(
            workdir / "config.yaml",
            data_root=workdir / "data",
            catalog=catalog,
            base_url=web,
            hub_url=hub,
            s3_url=s3,
            drive=(drive, str(ca)),
            products=dict.fromkeys(DEMO_PRODUCTS, True),
            # ImageNet from the gated hub repo (the manual files are placed too): the token
            # below is the stand-in hub's, as a user's HF_TOKEN with the terms accepted
            imagenet_source="hub",
        )
        yield config, {**proxied_env(images), "HF_TOKEN": STANDIN_TOKEN}


def unknown_targets(targets: list[str]) -> list[str]:
    """Why each target that is no rule of the workflow is refused, before the world is built.

    The workflow's own list, so that the demo refuses what Snakemake would, with the same
    suggestions; a path (with a `/`) is left to Snakemake.
    """
    listing = subprocess.run(
        [sys.executable, "-m", "snakemake", "--list-target-rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if listing.returncode != 0:
        sys.exit(f"vlprep demo: snakemake --list-target-rules failed:\n{listing.stderr}")
    rules = [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]
    return [
        unknown_target_message(target, rules)
        for target in targets
        if target not in rules and "/" not in target
    ]


def check_layouts(data: Path, products: list[str], catalog: Path | None = None) -> list[str]:
    """What each product's consumers (the registry's `checks`: VPGTrans for lavis/, nxtp for
    g3m/, COSMOS for cosmos/) would trip over; COSMOS's checks against `catalog` (the world's:
    its counts and checksums are the stand-ins')."""
    problems = []
    for layout, check in CHECKS.items():
        wanted = [name for name in products if layout in PRODUCTS[name].checks]
        extra = {"catalog": catalog} if layout == "cosmos" and catalog else {}
        if wanted:
            problems += check(data / layout, wanted, **extra)
    return problems


if __name__ == "__main__":
    sys.exit(main())
