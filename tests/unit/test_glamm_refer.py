"""GLaMM's referring-expression, region-caption and GranD-f checks: each passes on a tree laid
out from the stand-ins as the rules lay it out, and fails, naming the code path, when broken."""

import json
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest

from standin.glamm_refer import coco2014_train_names, make_glamm_refer, make_grandf_repo
from vlprep.consumers import check_glamm
from vlprep.errors import VlprepError
from vlprep.glamm_refer import (
    GRANDF_TRAIN,
    MDETR_COCO,
    MDETR_FLICKR,
    REFER_SPLIT_BY,
    check_grandf,
    check_mdetr,
    check_refer_segm,
    locate,
)
from vlprep.layout import place


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    out = tmp_path_factory.mktemp("glamm_refer_sources")
    made = make_glamm_refer(out / "files")
    unpacked = {}
    for key, path in made.items():
        unpacked[key] = out / "extracted" / key
        with zipfile.ZipFile(path) as zf:
            zf.extractall(unpacked[key])
    repo = make_grandf_repo(out / "hub")
    coco2014_train_names(out / "coco")  # makes the stand-in COCO train2014 zip
    with zipfile.ZipFile(out / "coco" / "coco2014" / "train2014.zip") as zf:
        zf.extractall(out / "extracted" / "coco2014_train")
    return {"unpacked": unpacked, "repo": repo, "root": out}


@pytest.fixture
def tree(sources, tmp_path):
    """glamm/ as rules/glamm_refer.smk lays it out (copies, so a test may break it)."""
    root, u = tmp_path / "glamm", sources["unpacked"]
    for name, split_by in REFER_SPLIT_BY.items():
        src = locate(u[f"{name}.zip"], name, contains=("instances.json", f"refs({split_by}).p"))
        place(src, root / "Refer_Segm" / name, "copy")
    place(
        locate(u["saiapr_tc-12.zip"], "saiapr_tc-12"),
        root / "Refer_Segm/images/saiapr_tc-12",
        "copy",
    )
    for name in MDETR_COCO:
        place(locate(u["glamm_mdetr"], name), root / "RefCoco_Reg/mdetr_annotations" / name, "copy")
    flickr = root / "flikcr_30k/mdetr_annotations" / MDETR_FLICKR
    place(locate(u["glamm_mdetr"], MDETR_FLICKR), flickr, "copy")
    # the image folders the products declare: COCO train2014 twice (RefCOCO_Segm_ds.py:83-84,
    # RefCOCO_VG_Region_ds.py:42) and Flickr30k's, here the files the mdetr json names
    coco = sources["root"] / "extracted" / "coco2014_train" / "train2014"
    for folder in ("Refer_Segm/coco_2014/train2014", "RefCoco_Reg/coco_2014"):
        place(coco, root / folder, "copy")
    flickr_images = root / "flikcr_30k/flickr30k-images"
    flickr_images.mkdir(parents=True)
    for image in json.loads(flickr.read_text())["images"]:
        (flickr_images / image["file_name"]).write_bytes(b"")
    for name in GRANDF_TRAIN:
        place(sources["repo"] / "train" / name, root / "GranDf/annotations/train" / name, "copy")
    place(sources["repo"] / "val_test", root / "GranDf/annotations/val_test", "copy")
    images = locate(u["glamm_grandf_ha"], "GranDf_HA_images", contains=("train", "val_test"))
    place(images, root / "GranDf/GranDf_HA_images", "copy")
    return root


def test_the_intact_tree_passes_every_check(tree):
    assert check_glamm(tree, ["glamm_refer_segm", "glamm_mdetr", "glamm_grandf"]) == []


def test_refer_sets_name_images_of_the_standin_coco_zip(sources):
    coco = set(coco2014_train_names(sources["root"] / "coco"))
    for name in ("refcoco", "refcoco+", "refcocog"):
        folder = sources["unpacked"][f"{name}.zip"] / name
        instances = json.loads((folder / "instances.json").read_text())
        assert {img["file_name"] for img in instances["images"]} <= coco
        with open(folder / f"refs({REFER_SPLIT_BY[name]}).p", "rb") as f:
            refs = pickle.load(f)
        assert {"ref_id", "ann_id", "image_id", "split", "sentences"} <= set(refs[0])


def test_a_missing_refs_pickle_fails(tree):
    (tree / "Refer_Segm/refcocog/refs(umd).p").unlink()
    problems = check_refer_segm(tree)
    assert len(problems) == 1 and "refcocog" in problems[0] and "refcoco_refer.py" in problems[0]


def test_a_ref_naming_an_unknown_annotation_fails(tree):
    path = tree / "Refer_Segm/refcoco/refs(unc).p"
    refs = pickle.loads(path.read_bytes())
    refs[0]["ann_id"] = -1
    refs[0]["split"] = "train"
    path.write_bytes(pickle.dumps(refs))
    assert any("not in instances.json" in p for p in check_refer_segm(tree))


def test_a_missing_saiapr_image_fails(tree):
    next((tree / "Refer_Segm/images/saiapr_tc-12").rglob("*.jpg")).unlink()
    problems = check_refer_segm(tree)
    assert any("refclef" in p and "RefCOCO_Segm_ds.py:81" in p for p in problems)


def test_coco_images_are_checked_for_each_coco_set(tree):
    coco = tree / "Refer_Segm/coco_2014/train2014"
    for image in coco.iterdir():
        image.unlink()
    problems = check_refer_segm(tree)
    assert len(problems) == 3 and all("RefCOCO_Segm_ds.py:83-84" in p for p in problems)


def test_a_missing_mdetr_file_fails(tree):
    (tree / "RefCoco_Reg/mdetr_annotations/finetune_refcocog_val_captions.json").unlink()
    problems = check_mdetr(tree)
    assert len(problems) == 1 and "finetune_refcocog_val_captions.json" in problems[0]


def test_mdetr_file_names_must_be_coco_train2014(tree):
    path = tree / "RefCoco_Reg/mdetr_annotations/finetune_refcoco_train.json"
    data = json.loads(path.read_text())
    data["images"][0]["file_name"] = "000000000009.jpg"
    path.write_text(json.dumps(data))
    assert any("not COCO_train2014" in p for p in check_mdetr(tree))


def test_the_flickr_json_only_counts_at_its_code_path(tree):
    flickr = tree / "flikcr_30k/mdetr_annotations" / MDETR_FLICKR
    shutil.move(flickr, tree / "RefCoco_Reg/mdetr_annotations" / MDETR_FLICKR)  # the seed's place
    assert any("flikcr_30k/mdetr_annotations" in p for p in check_mdetr(tree))


def test_grandf_val_files_must_sit_under_train(tree):
    path = tree / "GranDf/annotations/train/OpenPsgGCG_val.json"
    path.rename(tree / "GranDf/annotations/val_test/OpenPsgGCG_val.json")
    problems = check_grandf(tree)
    assert len(problems) == 1 and "GranDf_gcg_ds.py:49" in problems[0]


def test_grandf_images_at_the_docs_level_fail(tree):
    shutil.move(tree / "GranDf/GranDf_HA_images", tree / "GranDf_HA_images")
    problems = check_grandf(tree)
    assert any("GranDf_gcg_ds.py:59,168" in p for p in problems)
    assert any("eval/gcg/infer.py:23" in p for p in problems)


def test_a_broken_val_test_gt_fails(tree):
    (tree / "GranDf/annotations/val_test/test_gcg_coco_mask_gt.json").write_text("{")
    assert any("evaluate.py" in p for p in check_grandf(tree))


def test_locate_names_the_archive_and_what_it_found(tmp_path):
    for sub in ("a/refcoco", "b/refcoco"):
        (tmp_path / sub).mkdir(parents=True)
        (tmp_path / sub / "instances.json").write_text("{}")
    with pytest.raises(VlprepError, match=r"exactly one refcoco.*a/refcoco, b/refcoco"):
        locate(tmp_path, "refcoco")
    assert locate(tmp_path / "a", "refcoco") == tmp_path / "a" / "refcoco"
    with pytest.raises(VlprepError, match=r"holding refs\(unc\)\.p.*found none"):
        locate(tmp_path / "a", "refcoco", contains=("refs(unc).p",))


def test_standins_are_deterministic(tmp_path):
    first = make_glamm_refer(tmp_path / "one")
    second = make_glamm_refer(tmp_path / "two")
    assert {k: v.read_bytes() for k, v in first.items()} == {
        k: second[k].read_bytes() for k in first
    }
    assert Path(first["glamm_mdetr"]).name == "mdetr_annotations.zip"


@pytest.mark.parametrize(
    "folder, product",
    [
        ("Refer_Segm/coco_2014/train2014", "glamm_refer_segm"),
        ("RefCoco_Reg/coco_2014", "glamm_mdetr"),
        ("flikcr_30k/flickr30k-images", "glamm_mdetr"),
    ],
)
def test_a_product_without_the_images_it_declares_fails(tree, folder, product):
    """Built alone, each product must hold the images its sets open: GLaMM would crash."""
    shutil.rmtree(tree / folder)
    problems = check_glamm(tree, [product])
    assert problems and all(folder in p for p in problems), problems
