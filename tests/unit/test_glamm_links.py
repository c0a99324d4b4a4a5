"""GLaMM's linked folders: the registry's tables, the root GLaMM's path rewriting allows, the
working-directory links, and the consumer checks, each shown failing on a broken tree."""

import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from standin.coco import make_coco2017
from standin.glamm import coco_train2017_names, make_llava_repo
from vlprep import consumers
from vlprep.catalog import load_catalog
from vlprep.errors import VlprepError
from vlprep.glamm import (
    REWRITTEN,
    instructions,
    ln_commands,
    root_problem,
    working_dir_links,
)
from vlprep.preflight import Preflight
from vlprep.products import BUNDLES, PRODUCTS
from vlprep.products.glamm import FAMILY, GLAMM_FILES, GLAMM_FOLDERS, STORE_ENTRIES

REPO = Path(__file__).resolve().parents[2]
MINE = [p.name for p in FAMILY.products]


# ---- registry -------------------------------------------------------------------------------


def test_every_store_is_a_catalog_entry_and_every_path_is_built():
    catalog = load_catalog(REPO / "config" / "catalog.yaml")
    for entry, _ in [*GLAMM_FOLDERS.values(), *GLAMM_FILES.values()]:
        for e in STORE_ENTRIES.get(entry, (entry,)):
            assert e in catalog, e
    declared = {f for name in MINE for f in PRODUCTS[name].files}
    assert declared == {f"{{glamm}}/{p}" for p in [*GLAMM_FOLDERS, *GLAMM_FILES]}
    for name in MINE:
        assert PRODUCTS[name].bundles == ("glamm",) and name in BUNDLES["glamm"]
        assert PRODUCTS[name].demo and not PRODUCTS[name].in_all


def test_vg_train_is_manual_and_test_caption_from_drive():
    catalog = load_catalog(REPO / "config" / "catalog.yaml")
    assert catalog["glamm_vg_train"]["kind"] == "manual"
    assert "#59" in catalog["glamm_vg_train"]["instructions"]
    assert catalog["glamm_vg_test_caption"]["drive_id"] == "1zF3UGHU1rvgTujinqJ-hZtrCBVsfsuel"
    assert catalog["glamm_llava_instruct"]["include"] == ["llava_instruct_150k.json"]


def test_shared_stores_are_reused_not_redeclared():
    # the stores other layouts use, stored once
    stores = {entry for entry, _ in GLAMM_FOLDERS.values()}
    assert stores == {
        "coco2017_train",
        "coco2017_val",
        "coco2017_annotations",
        "coco2014_train",
        "flickr30k_images",
        "vg_images",
        "ade20k",
        "cocostuff_maps",
    }
    assert GLAMM_FOLDERS["RefCoco_Reg/coco_2014"] == ("coco2014_train", "train2014")
    assert GLAMM_FOLDERS["Semantic_Segm/cocostuff/train2017"] == ("cocostuff_maps", "train2017")


# ---- the root ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", list(REWRITTEN))
def test_root_with_a_rewritten_substring_is_refused(sub):
    root = f"/data/x{sub}y/glamm"
    problem = root_problem(root)
    assert problem and repr(sub) in problem and "layouts.glamm" in problem


def test_root_ending_in_semantic_segm_is_refused_and_a_plain_root_is_fine():
    # GLaMM's own join adds the slash: <root>/Semantic_Segm/... loses both
    assert root_problem("/data/Semantic_Segm")
    assert root_problem("/data/vlprep/glamm") is None


def test_preflight_blocks_a_bad_root_only_when_a_glamm_product_is_enabled(tmp_path):
    plan = {
        "products": {n: {"entries": [], "url_lists": {}, "enabled": False} for n in MINE},
        "bundles": {"glamm": MINE},
        "data_root": str(tmp_path),
        "glamm_root": "/srv/images/glamm",
    }
    check = Preflight(plan, REPO / "config" / "catalog.yaml", None)
    check.check_glamm_root()
    assert not check.problems and "'images'" in check.notes[0]
    plan["products"]["glamm_ade20k"]["enabled"] = True
    check = Preflight(plan, REPO / "config" / "catalog.yaml", None)
    check.check_glamm_root()
    assert "'images'" in check.problems[0]


# ---- a tree GLaMM can use, and ways to break it -------------------------------------------------


def _jpg(path: Path, size=(40, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (9, 99, 199)).save(path, "JPEG")


def _png(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), value).save(path)


def _good_tree(root: Path) -> Path:
    ids = [139, 285]
    for mode in ("train", "val"):
        names = [f"{i:012d}.jpg" for i in ids]
        for name in names:
            _jpg(root / f"coco_2017/{mode}2017/{name}")
        captions = {
            "images": [{"id": i, "file_name": n} for i, n in zip(ids, names, strict=True)],
            "annotations": [{"id": k, "image_id": i, "caption": "x"} for k, i in enumerate(ids)],
        }
        ann = root / f"coco_2017/annotations/captions_{mode}2017.json"
        ann.parent.mkdir(parents=True, exist_ok=True)
        ann.write_text(json.dumps(captions))
    for rel in ("coco_2014/train2014", "Refer_Segm/coco_2014/train2014", "RefCoco_Reg/coco_2014"):
        _jpg(root / rel / "COCO_train2014_000000000009.jpg")
    for rel in ("flikcr_30k/flickr30k-images", "flikcr_30k/train"):
        _jpg(root / rel / "1000092795.jpg")
    vg = root / "visual_genome"
    _jpg(vg / "images/1.jpg")
    _jpg(vg / "images/2.jpg", size=(20, 20))
    region = {
        "images": [
            {"id": 1, "file_name": "1.jpg", "width": 40, "height": 40},
            {"id": 2, "file_name": "2.jpg", "width": 20, "height": 20},  # dropped: < 32 px
            {"id": 3, "file_name": "3.jpg", "width": 20, "height": 20},  # dropped, never opened
        ],
        "annotations": [{"id": 1, "image_id": 1, "bbox": [1, 1, 5, 5], "area": 25, "caption": "a"}],
    }
    for name in ("train.json", "test_caption.json"):
        (vg / name).write_text(json.dumps(region))
    llava = root / "llava_dataset/llava_instruct_150k.json"
    llava.parent.mkdir(parents=True)
    llava.write_text(json.dumps([{"id": "1", "image": "000000000139.jpg", "conversations": []}]))
    ade = root / "Semantic_Segm/ade20k"
    _jpg(ade / "images/training/ADE_train_00000001.jpg")
    _png(ade / "annotations/training/ADE_train_00000001.png", 3)
    _png(root / "Semantic_Segm/cocostuff/train2017/000000000139.png", 181)
    return root


@pytest.fixture
def tree(tmp_path):
    return _good_tree(tmp_path / "glamm")


def test_a_good_tree_passes_every_check(tree):
    assert consumers.check_glamm(tree, MINE) == []


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


BREAKS = {
    # a caption's image gone (CocoCapVal opens coco_2017/val2017)
    "glamm_coco": lambda t: _remove(t / "coco_2017/val2017/000000000285.jpg"),
    # RefCoco_Reg/coco_2014 must be the flat folder, not a train2014 inside it
    "glamm_coco_nested": lambda t: (
        shutil.move(t / "RefCoco_Reg/coco_2014", t / "tmp"),
        (t / "RefCoco_Reg/coco_2014").mkdir(),
        shutil.move(t / "tmp", t / "RefCoco_Reg/coco_2014/train2014"),
    ),
    "glamm_flickr": lambda t: _remove(t / "flikcr_30k/train"),
    "glamm_vg": lambda t: _remove(t / "visual_genome/images/1.jpg"),
    "glamm_vg_manual": lambda t: _remove(t / "visual_genome/train.json"),
    "glamm_llava": lambda t: (t / "llava_dataset/llava_instruct_150k.json").write_text(
        json.dumps([{"id": "1", "image": "000000999999.jpg", "conversations": []}])
    ),
    "glamm_llava_noimage": lambda t: (t / "llava_dataset/llava_instruct_150k.json").write_text(
        json.dumps([{"id": "1", "conversations": []}])
    ),
    "glamm_ade20k": lambda t: _remove(t / "Semantic_Segm/ade20k/annotations"),
    # mmseg's converted maps in the same folder: their derived .jpg does not exist (finding 11)
    "glamm_cocostuff": lambda t: _png(
        t / "Semantic_Segm/cocostuff/train2017/000000000139_labelTrainIds.png", 3
    ),
    "glamm_cocostuff_values": lambda t: _png(
        t / "Semantic_Segm/cocostuff/train2017/000000000139.png", 200
    ),
}


@pytest.mark.parametrize("case", list(BREAKS))
def test_each_check_fails_on_a_broken_tree(tree, case):
    product = max((p for p in MINE if case.startswith(p)), key=len)
    BREAKS[case](tree)
    problems = consumers.check_glamm(tree, [product])
    assert problems, case
    others = [p for p in MINE if p != product]
    assert consumers.check_glamm(tree, others) == []  # each break is seen by its own check


def test_a_root_with_images_in_it_breaks_ade20k_as_glamm_would(tmp_path):
    # the same good tree, under a root whose path holds "images": labels go astray
    tree = _good_tree(tmp_path / "images" / "glamm")
    problems = consumers.check_glamm(tree, ["glamm_ade20k"])
    assert problems and "labels missing" in problems[0]


# ---- the working directory ----------------------------------------------------------------------


def _checkout(path: Path) -> Path:
    (path / "dataset/utils").mkdir(parents=True)
    (path / "train.py").write_text("# GLaMM\n")
    return path


def test_working_dir_links_are_made_once_and_checked(tree, tmp_path):
    checkout = _checkout(tmp_path / "groundingLMM")
    assert consumers.check_glamm_working_dir(checkout)  # nothing there yet
    lines = working_dir_links(checkout, tree)
    assert all("created" in line for line in lines) and len(lines) == 3
    assert os.readlink(checkout / "coco_2017") == str(tree / "coco_2017")
    assert consumers.check_glamm_working_dir(checkout) == []
    again = working_dir_links(checkout, tree)
    assert all("already in place" in line for line in again)


def test_working_dir_links_never_replace_anything(tree, tmp_path):
    checkout = _checkout(tmp_path / "groundingLMM")
    (checkout / "flikcr_30k").mkdir()
    with pytest.raises(VlprepError, match="flikcr_30k exists.*glamm.checkout"):
        working_dir_links(checkout, tree)
    assert (checkout / "flikcr_30k").is_dir() and not (checkout / "flikcr_30k").is_symlink()
    (checkout / "flikcr_30k").rmdir()
    (checkout / "flikcr_30k").symlink_to(tmp_path)
    with pytest.raises(VlprepError, match="is a link to .*glamm.checkout unset"):
        working_dir_links(checkout, tree)


def test_working_dir_links_refuse_what_is_no_glamm_clone(tree, tmp_path):
    with pytest.raises(VlprepError, match="groundingLMM"):
        working_dir_links(tmp_path, tree)


def test_instructions_give_the_three_ln_commands(tree):
    text = "\n".join(instructions(tree))
    assert f"--dataset_dir {tree}" in text
    for name in ("coco_2017", "coco_2014", "flikcr_30k"):
        assert f"ln -s {tree / name} {name}" in text
    assert ln_commands(tree, "/co")[0] == f"ln -s {tree / 'coco_2017'} /co/coco_2017"


# ---- the stand-in -------------------------------------------------------------------------------


def test_llava_standin_names_images_of_the_coco_train2017_standin(tmp_path):
    made = make_coco2017(tmp_path / "coco", n_train=40, n_val=5)
    with zipfile.ZipFile(made["train2017.zip"]) as zf:
        names = {Path(n).name for n in zf.namelist()}
    repo = make_llava_repo(tmp_path / "hub")
    records = json.loads((repo / "llava_instruct_150k.json").read_text())
    assert records and {r["image"] for r in records} <= names
    assert [r["image"] for r in records] == coco_train2017_names()
