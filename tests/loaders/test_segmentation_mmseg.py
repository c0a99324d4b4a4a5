"""COSMOS's segmentation trees, built by the real workflow from the stand-in world (one
Snakemake run, symlink mode), open in mmseg 1.1.1's own dataset classes with COSMOS's config
arguments (open_mmseg.py), every sample through LoadImageFromFile + LoadAnnotations; and a
broken copy of a tree fails there, and in vlprep's consumer check."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from standin import segmentation as standin
from standin.server import StandinServer
from standin.world import build_world, place_manual_files, write_config
from vlprep.consumers import check_cosmos
from vlprep.products.segmentation import MMSEG_TREES

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PRODUCTS = list(MMSEG_TREES)  # one product per tree
CONFIGS = ["voc21", "voc20", "context59", "context60", "coco_stuff164k", "coco_object"]
CONFIGS += ["city_scapes", "ade20k"]
# The label values each config's loaded gt_seg_map may hold (after reduce_zero_label).
VALID = {
    "voc21": set(range(21)) | {255},
    "voc20": set(range(20)) | {255},
    "context59": set(range(59)) | {255},
    "context60": set(range(60)),
    "coco_stuff164k": set(range(171)) | {255},
    "coco_object": set(range(81)),
    "city_scapes": set(range(19)) | {255},
    "ade20k": set(range(150)) | {255},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """cosmos/mmseg/ of one run of the five products; returns the data root."""
    world = build_world(tmp_path_factory.mktemp("world")).parent
    work = tmp_path_factory.mktemp("run")
    place_manual_files(world, work / "data" / "manual")
    with StandinServer(world / "www") as server:
        config = write_config(
            work / "config.yaml",
            data_root=work / "data",
            catalog=world / "catalog.yaml",
            base_url=server.url,
        )
        cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *PRODUCTS]
        result = subprocess.run(
            [*cmd, "--configfile", str(config)],
            cwd=REPO,
            env={**os.environ, "VLPREP_PROGRESS": "0"},
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    data = work / "data"
    data.joinpath("world").symlink_to(world)  # for the counts below
    return data


def expected_counts(data: Path) -> dict[str, int]:
    """Samples per config, from the stand-in's own tables and the world's COCO zip."""
    with zipfile.ZipFile(data / "world" / "www/images.cocodataset.org/zips/val2017.zip") as zf:
        coco_val = sum(name.endswith(".jpg") for name in zf.namelist())
    voc12 = sum(split == "val" for _, split in standin.VOC2012_IMAGES)
    context = sum(split == "val" for _, split in standin.VOC2010_IMAGES)
    city = sum(len(frames) for frames in standin.CITYSCAPES["val"].values())
    return {
        "voc21": voc12,
        "voc20": voc12,
        "context59": context,
        "context60": context,
        "coco_stuff164k": coco_val,
        "coco_object": coco_val,
        "city_scapes": city,
        "ade20k": standin.ADE_IMAGES["validation"],
    }


def test_every_config_opens_in_mmseg_with_every_sample(built, run_loader):
    opened = run_loader("open_mmseg.py", built / "cosmos" / "mmseg", *CONFIGS)
    counts = expected_counts(built)
    for name in CONFIGS:
        result = opened[name]
        assert "error" not in result, (name, result)
        assert result["len"] == counts[name] > 0, (name, result)
        assert set(result["labels"]) <= VALID[name], (name, result["labels"])
        assert len(result["labels"]) > 1, name  # real maps, not one fill value
    assert opened["voc20"]["reduce_zero_label"] and opened["context59"]["reduce_zero_label"]
    assert not opened["context60"]["reduce_zero_label"]
    assert not opened["coco_object"]["reduce_zero_label"]
    assert check_cosmos(built / "cosmos", PRODUCTS) == []


def _copy(built: Path, tmp_path: Path, subpath: str) -> Path:
    """A real copy (links followed) of one tree, to break without touching the store."""
    mmseg = tmp_path / "mmseg"
    shutil.copytree(built / "cosmos" / "mmseg" / subpath, mmseg / subpath, symlinks=False)
    return mmseg


def test_a_missing_map_fails_in_mmseg_and_in_the_check(built, run_loader, tmp_path):
    mmseg = _copy(built, tmp_path, "ade/ADEChallengeData2016")
    (mmseg / "ade/ADEChallengeData2016/annotations/validation/ADE_val_00000003.png").unlink()
    opened = run_loader("open_mmseg.py", mmseg, "ade20k")
    assert "FileNotFoundError" in opened["ade20k"]["error"]
    [problem] = check_cosmos(tmp_path, ["cosmos_ade20k"])
    assert "ADE_val_00000003.png" in problem and "missing" in problem


def test_an_image_without_its_instance_map_fails_coco_object_only(built, run_loader, tmp_path):
    mmseg = _copy(built, tmp_path, "coco_stuff164k")
    annotations = mmseg / "coco_stuff164k/annotations/val2017"
    victim = sorted(annotations.glob("*_instanceTrainIds.png"))[-1]
    victim.unlink()
    opened = run_loader("open_mmseg.py", mmseg, "coco_stuff164k", "coco_object")
    assert "error" not in opened["coco_stuff164k"]
    assert "FileNotFoundError" in opened["coco_object"]["error"]
    [problem] = check_cosmos(tmp_path, ["cosmos_coco_stuff"])
    assert "cfg_coco_object.py" in problem and victim.name in problem


def test_voc20_asserts_its_image_folder_and_an_out_of_range_label_shows(
    built, run_loader, tmp_path
):
    mmseg = _copy(built, tmp_path, "VOCdevkit/VOC2012")
    shutil.rmtree(mmseg / "VOCdevkit/VOC2012/JPEGImages")
    opened = run_loader("open_mmseg.py", mmseg, "voc20")
    assert opened["voc20"]["error"].startswith("AssertionError")

    mmseg = _copy(built, tmp_path / "context", "VOCdevkit/VOC2010")
    from PIL import Image

    voc2010 = mmseg / "VOCdevkit/VOC2010"
    first = (voc2010 / "ImageSets/SegmentationContext/val.txt").read_text().split()[0]
    victim = voc2010 / "SegmentationClassContext" / f"{first}.png"
    Image.new("L", Image.open(victim).size, 77).save(victim)
    opened = run_loader("open_mmseg.py", mmseg, "context60")
    assert 77 in opened["context60"]["labels"]
    assert not set(opened["context60"]["labels"]) <= VALID["context60"]
    problems = check_cosmos(tmp_path / "context", ["cosmos_pascal_context"])
    assert len(problems) == 2 and all("[77]" in p for p in problems), problems
