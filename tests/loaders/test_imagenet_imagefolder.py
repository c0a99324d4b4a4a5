"""cosmos_imagenet, built by the real workflow from the stand-in world by both routes (the
gated hub archive with the stand-in token; the official tar + devkit in manual_dir), opens in
torchvision 0.29.1's ImageFolder as COSMOS opens --imagenet-val (tests/loaders/
open_imagefolder.py, in .venv-loaders): every sample loads, the classes are the sorted wnids,
and each image sits in the class the generator gave it.

Expected values come from the generator (standin.imagenet), not from the workflow.
"""

import hashlib
from pathlib import Path

import pytest

from standin import imagenet as gen
from standin.hub import HubStandin
from standin.server import StandinServer
from standin.world import build_world, place_manual_files, write_config
from tests.e2e.conftest import run_snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TREE = Path("cosmos/imagenet/data/val_images")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """{route: val_images} after one workflow run per route."""
    catalog = build_world(tmp_path_factory.mktemp("world"))
    world = catalog.parent
    trees = {}
    with StandinServer(world / "www") as server, HubStandin(world / "hub") as hub:
        for route in ("hub", "manual"):
            work = tmp_path_factory.mktemp(f"imagenet-{route}")
            if route == "manual":
                place_manual_files(world, work / "data" / "manual")  # as a registered user
            config = write_config(
                work / "config.yaml",
                data_root=work / "data",
                catalog=catalog,
                base_url=server.url,
                hub_url=hub.url,
                imagenet_source=route,
            )
            proc = run_snakemake(config, "cosmos_imagenet")  # the stand-in token in HF_TOKEN
            assert proc.returncode == 0, proc.stderr[-4000:]
            trees[route] = work / "data" / TREE
    return trees


def expected_class_of() -> dict[str, str]:
    """sha256 of each generated image -> its wnid."""
    return {
        hashlib.sha256(data).hexdigest(): gen.WNIDS[label - 1]
        for label, data in zip(gen.labels(), gen._images(), strict=True)
    }


@pytest.mark.parametrize("route", ["hub", "manual"])
def test_imagefolder_opens_the_tree_as_cosmos_does(route, built, run_loader):
    tree = built[route]
    report = run_loader("open_imagefolder.py", tree)
    assert report["len"] == gen.SHAPE["images"] == 30
    assert len(report["classes"]) == gen.SHAPE["classes"] == 10
    assert report["classes"] == sorted(gen.WNIDS)  # class index = sorted wnid order
    assert report["classes"] != list(gen.WNIDS)  # (the devkit's ID order is another one)
    truth = expected_class_of()
    for name, wnid, size in report["samples"]:
        digest = hashlib.sha256((tree / wnid / name).read_bytes()).hexdigest()
        assert truth[digest] == wnid, name
        assert min(size) > 0


def test_imagefolder_sees_a_misplaced_image(built, run_loader, tmp_path):
    """The loader is no rubber stamp: a copy of the tree with one image moved to another
    class gives that image the other class."""
    import shutil

    copy = tmp_path / "val_images"
    shutil.copytree(built["hub"], copy, symlinks=False)
    first, second = sorted(d for d in copy.iterdir() if d.is_dir())[:2]
    moved = sorted(first.iterdir())[0]
    moved.rename(second / moved.name)
    report = run_loader("open_imagefolder.py", copy)
    truth = expected_class_of()
    wrong = [n for n, wnid, _ in report["samples"]
             if truth[hashlib.sha256((copy / wnid / n).read_bytes()).hexdigest()] != wnid]  # fmt: skip
    assert wrong == [moved.name]
