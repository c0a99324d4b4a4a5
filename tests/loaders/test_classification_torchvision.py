"""COSMOS's ten classification sets, built by the real workflow from the stand-in world (one
Snakemake run), open in torchvision 0.29.1's own classes with download=False and the splits
COSMOS's get_loader_test asks for (tests/loaders/open_torchvision.py, in .venv-loaders).

Expected lengths come from the generator (standin.classification), not from the workflow.
Broken trees prove the test can fail: the real class raises on them, and so does the consumer
check (vlprep.consumers), which also holds the stand-in tree to the real catalog's counts and
md5s and finds it wanting.
"""

import shutil
from pathlib import Path

import pytest

from standin import classification as gen
from standin.server import StandinServer
from standin.world import build_world, place_manual_files, write_config
from tests.e2e.conftest import run_snakemake
from vlprep.consumers import check_cosmos
from vlprep.products.classification import FOLDERS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PRODUCTS = [folder.product for folder in FOLDERS.values()]
# What each set's test split holds in the stand-in world (standin/classification.py).
EXPECTED_LEN = {
    "cifar10": 8,  # test_batch rows
    "cifar100": 7,  # test rows
    "food101": 2 * len(gen.FOOD_CLASSES),  # two test images per class
    "sun397": gen.SUN_PER_CLASS * len(gen.SUN_CLASSES),
    "stanford_cars": 7,  # cars_test_annos_withlabels.mat rows
    "fgvc_aircraft": 2 * len(gen.AIRCRAFT),  # half of four images per variant
    "dtd": len(gen.DTD_CLASSES),  # test1.txt: one image per class
    "oxford_pets": 2 * len(gen.PETS),  # test.txt: two images per breed
    "caltech101": sum(gen.CALTECH_PER_CLASS.values()),  # BACKGROUND_Google left out
    "caltech101_annotation": sum(gen.CALTECH_PER_CLASS.values()),
    "flowers102": gen.FLOWERS_IMAGES // 3,  # tstid: every third image
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(the cosmos layout root, the world's catalog) after one run of all ten products."""
    work = tmp_path_factory.mktemp("classification")
    catalog = build_world(tmp_path_factory.mktemp("world"))
    world = catalog.parent
    with StandinServer(world / "www") as server:
        config = write_config(
            work / "config.yaml", data_root=work / "data", catalog=catalog, base_url=server.url
        )
        place_manual_files(world, work / "data" / "manual")  # StanfordCars, as a user would
        proc = run_snakemake(config, *PRODUCTS)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work / "data" / "cosmos", catalog


def test_each_set_opens_in_torchvision_as_cosmos_opens_it(built, run_loader):
    cosmos, _ = built
    report = run_loader("open_torchvision.py", cosmos / "classification")
    assert set(report) == set(EXPECTED_LEN)
    for name, expected in EXPECTED_LEN.items():
        got = report[name]
        assert "error" not in got, f"{name}: {got}"
        assert got["len"] == expected, name
        for sample in (got["first"], got["last"]):
            width, height, _ = sample
            assert width > 0 and height > 0, name
    # the Caltech101 annotation target reads Annotations/ (renamed folders): a 2 x N contour
    assert report["caltech101_annotation"]["first"][2][1][0] == 2


def test_layout_folders_are_stored_once(built):
    """Every layout folder is a link into the store (symlink mode), nothing copied."""
    cosmos, _ = built
    data = cosmos.parent
    for name in FOLDERS:
        path = cosmos / "classification" / name
        assert path.is_symlink(), name
        assert path.resolve().is_relative_to((data / "extracted").resolve()), name


def test_the_consumer_check_passes_with_the_world_catalog_and_not_the_real_one(built):
    cosmos, catalog = built
    assert check_cosmos(cosmos, PRODUCTS, catalog=catalog) == []
    # The real catalog's counts and md5s are the real data's: the stand-in tree falls short.
    real = "\n".join(check_cosmos(cosmos, PRODUCTS))
    assert "needs exactly 8,677" in real and "needs exactly 108,754" in real
    assert "do not have torchvision's md5" in real  # CIFAR-10/100 inner files
    assert "imagelabels.mat: md5 is not e0620be6f572b9609742df49c70aed4d" in real


def _copy(source: Path, dest: Path, ignore=None) -> Path:
    shutil.copytree(source.resolve(), dest, ignore=ignore)
    return dest


@pytest.mark.parametrize(
    ("name", "product", "breaks", "error"),
    [
        # no BACKGROUND_Google/: categories.remove raises (caltech.py:62)
        (
            "caltech101",
            "cosmos_caltech101",
            lambda good, bad: _copy(
                good / "caltech101",
                bad / "caltech101",
                shutil.ignore_patterns("BACKGROUND_Google"),
            ),
            "ValueError",
        ),
        # one dtd/ level instead of dtd/dtd (the tar's folder linked as dataset_root/dtd)
        (
            "dtd",
            "cosmos_dtd",
            lambda good, bad: _copy(good / "dtd" / "dtd", bad / "dtd"),
            "RuntimeError",
        ),
        # a missing batch file: the patched check still wants every file (cifar.py:129-134)
        (
            "cifar10",
            "cosmos_cifar10",
            lambda good, bad: _copy(
                good / "cifar-10-batches-py",
                bad / "cifar-10-batches-py",
                shutil.ignore_patterns("data_batch_3"),
            ),
            "RuntimeError",
        ),
        # Pets without its annotations archive's folder (one part of the merged folder)
        (
            "oxford_pets",
            "cosmos_oxford_pets",
            lambda good, bad: _copy(
                good / "oxford-iiit-pet",
                bad / "oxford-iiit-pet",
                shutil.ignore_patterns("annotations"),
            ),
            "RuntimeError",
        ),
    ],
)
def test_a_broken_tree_fails_in_torchvision_and_in_the_check(
    built, run_loader, tmp_path, name, product, breaks, error
):
    cosmos, catalog = built
    broken = tmp_path / "cosmos"
    breaks(cosmos / "classification", broken / "classification")
    report = run_loader("open_torchvision.py", broken / "classification", name)
    assert report[name].get("error", "").startswith(error), report[name]
    assert check_cosmos(broken, [product], catalog=catalog), "the consumer check missed it"
