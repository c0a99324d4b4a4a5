"""`make demo`: build every enabled product against the stand-in world, then say what was built.

Generates the world (cached in demo-data/world), starts the stand-in host on a free loopback
port, runs the real workflow through Snakemake on it, prints each product's tree, and stops
the host whatever happened. Exits with Snakemake's status.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from vlprep.standin.base import ChildService
from vlprep.standin.world import REPO, build_world, proxied_env, write_config

# What the demo lists: the layouts' top entries (the store under downloads/ and extracted/
# is an implementation detail of the layouts).
LAYOUT_GLOBS = (
    "g3m/*/*",
    "cosmos/*/*/*",
    "minigpt4/*/*",
    "lavis/*/*",
    "lavis/nocaps/images/*",
    "reports/*",
)
# Every product: the demo shows the whole workflow, web-scale sets included.
DEMO_PRODUCTS = (
    "coco_valid", "coco_train", "cosmos_coco", "laion115m", "laion_coco", "cc3m", "sbu", "nocaps"
)  # fmt: skip


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
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    print(f"vlprep demo: generating the stand-in world in {workdir / 'world'}", flush=True)
    catalog = build_world(workdir / "world")
    world = workdir / "world"
    mix = json.dumps(DEMO_IMAGE_MIX)
    with (
        ChildService("vlprep.standin.server", ["--root", str(world / "www")], workdir) as web,
        ChildService("vlprep.standin.hub", ["--root", str(world / "hub")], workdir) as hub,
        ChildService("vlprep.standin.imagehost", ["--mix", mix], workdir) as images,
    ):
        print(f"vlprep demo: stand-ins: files {web}, hub {hub}, images {images}", flush=True)
        config = write_config(
            workdir / "config.yaml",
            data_root=workdir / "data",
            catalog=catalog,
            base_url=web,
            hub_url=hub,
            products=dict.fromkeys(DEMO_PRODUCTS, True),
        )
        cmd = [sys.executable, "-m", "snakemake", "--cores", args.cores]
        cmd += [*args.targets, "--configfile", str(config)]
        status = subprocess.run(cmd, cwd=REPO, env=proxied_env(images)).returncode
    if status != 0:
        print(f"vlprep demo: FAILED (snakemake exited {status}); logs in {workdir}/data/logs")
        return status
    data = workdir / "data"
    print(f"\nvlprep demo: built under {data}")
    for pattern in LAYOUT_GLOBS:
        for path in sorted(data.glob(pattern)):
            print(f"  {path.relative_to(data)}: {describe(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
