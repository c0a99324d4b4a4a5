"""COSMOS's segmentation products through the real workflow against the stand-in world:
built from nothing in hardlink mode beside COSMOS retrieval and nxtp's COCO val, every image
stored once (unique inodes), the consumer checks clean; and a bundle without the Cityscapes
files skips only that product, loudly, while asking for it by name stops before any job."""

import os
import re
import stat
from pathlib import Path

import pytest

from standin.world import place_manual_files
from tests.e2e.conftest import make_config, run_snakemake
from vlprep.consumers import check_cosmos, check_g3m
from vlprep.products.segmentation import MMSEG_TREES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEGMENTATION = list(MMSEG_TREES)  # one product per tree


def unique_bytes(*roots: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under `roots`, each inode counted once, links not
    followed (a symlink is not a file), Snakemake's empty directory markers and a layout root's
    LICENSES.md (vlprep.licenses: about the data, not data) left out."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in roots:
        for dirpath, _, filenames in os.walk(root, followlinks=False):
            for name in filenames:
                if name == ".snakemake_timestamp":
                    continue
                if name == "LICENSES.md" and Path(dirpath) == Path(root):
                    continue
                info = os.lstat(os.path.join(dirpath, name))
                if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total, len(seen)


@pytest.fixture(scope="module")
def hardlinked(tmp_path_factory, world, standin) -> Path:
    tmp = tmp_path_factory.mktemp("segmentation")
    config = make_config(tmp, world, standin, link_mode="hardlink")
    place_manual_files(world.parent, tmp / "data" / "manual")
    result = run_snakemake(config, "cosmos_coco", "coco_valid", *SEGMENTATION, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return tmp / "data"


def test_every_tree_passes_the_consumer_checks(hardlinked):
    assert check_cosmos(hardlinked / "cosmos", ["cosmos_coco", *SEGMENTATION]) == []
    assert check_g3m(hardlinked / "g3m", ["coco_valid"]) == []


def test_shared_sources_are_stored_once_however_many_layouts_show_them(hardlinked):
    data = hardlinked
    store = [data / "downloads", data / "extracted"]
    layouts = [data / "cosmos", data / "g3m"]
    stored = unique_bytes(*store)
    # COSMOS's layouts (retrieval and the five trees) and nxtp's val2017 add no file
    assert unique_bytes(*store, data / "cosmos", data / "g3m" / "coco" / "val2017") == stored
    # nxtp's coco_valid triplets add only their caption files (the images are store inodes)
    extra = unique_bytes(*store, *layouts)
    triplets = data / "g3m" / "coco" / "coco_valid"
    new = [
        p
        for p in triplets.rglob("*")
        if p.is_file() and os.stat(p).st_nlink == 1 and p.name != ".snakemake_timestamp"
    ]
    assert extra == (stored[0] + sum(p.stat().st_size for p in new), stored[1] + len(new))
    assert not [p for p in new if p.suffix == ".jpg"]
    # COCO val2017: the store's file is COSMOS retrieval's, COCO-Stuff's and nxtp's
    val = data / "extracted" / "coco2017_val" / "val2017"
    views = [
        data / "cosmos/coco/images/val2017",
        data / "cosmos/mmseg/coco_stuff164k/images/val2017",
        data / "g3m/coco/val2017",
    ]
    names = sorted(os.listdir(val))
    assert len(names) > 3000
    for name in names:
        inode = os.stat(val / name).st_ino
        assert all(os.stat(v / name).st_ino == inode for v in views), name
    # VOC2010 and ADE20K: every layout file is a store inode
    for layout, entry in (
        ("cosmos/mmseg/VOCdevkit/VOC2010/JPEGImages", "voc2010"),
        ("cosmos/mmseg/ade/ADEChallengeData2016", "ade20k"),
    ):
        layout_inodes = unique_bytes(data / layout)
        assert unique_bytes(data / "extracted" / entry, data / layout) == unique_bytes(
            data / "extracted" / entry
        ), layout
        assert layout_inodes[1] > 0


def test_generated_maps_live_in_vlprep_folders_never_beside_the_raw_maps(hardlinked):
    raw = hardlinked / "extracted" / "cocostuff_maps" / "val2017"
    assert not [n for n in os.listdir(raw) if "TrainIds" in n]
    assert not [n for n in os.listdir(raw.parent / "train2017") if "TrainIds" in n]


def test_a_second_run_has_nothing_to_do(hardlinked, world, standin, tmp_path):
    config = make_config(hardlinked.parent, world, standin, link_mode="hardlink")
    result = run_snakemake(config, "-n", *SEGMENTATION)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def test_the_bundle_skips_only_cityscapes_without_its_files(tmp_path, world, standin):
    config = make_config(tmp_path, world, standin)
    result = run_snakemake(config, "-n", "cosmos")
    said = result.stdout + result.stderr
    assert result.returncode == 0, said[-3000:]
    assert re.search(r"SKIPPING cosmos_cityscapes \(in bundle cosmos\)", said)
    assert "gtFine_trainvaltest.zip" in said and "leftImg8bit_trainvaltest.zip" in said
    # four trees, not cityscapes (nor its conversion)
    assert re.search(r"^\s*mmseg_link\s+4$", said, re.M)
    assert "wildcards: tree=cityscapes" not in said
    assert not re.search(r"^\s*cityscapes_maps\s+\d", said, re.M)

    alone = run_snakemake(config, "-n", "cosmos_cityscapes")
    said = alone.stdout + alone.stderr
    assert alone.returncode != 0
    assert "must be downloaded by hand" in said and "cityscapes-dataset.com" in said
