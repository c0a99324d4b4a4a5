"""GLaMM's referring-expression, region-caption and GranD-f data: finding the parts of the
unpacked sources whose inner layout is unverified, and the checks of the built glamm/ tree as
GLaMM's code (mbzuai-oryx/groundingLMM e74865f2) opens it."""

import json
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vlprep.errors import VlprepError

REFER_SPLIT_BY = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd", "refclef": "unc"}
MDETR_COCO = (
    "finetune_refcoco_train.json",
    "finetune_refcocog_train.json",
    "finetune_refcocog_val.json",
    "finetune_refcoco+_train.json",
    "finetune_refcocog_val_captions.json",
)
MDETR_FLICKR = "final_flickr_mergedGT_train.json"
GRANDF_TRAIN = (
    "GranDf_HA_GCG_train.json",
    "OpenPsgGCG_train.json",
    "OpenPsgGCG_val.json",
    "RefCOCOg_GCG_train.json",
    "RefCOCOg_GCG_val.json",
    "flickr_mergedGT_GCG_train.json",
    "flickr_mergedGT_GCG_val.json",
)
GRANDF_VAL_TEST = tuple(
    f"{split}_gcg_coco_{kind}_gt.json" for split in ("val", "test") for kind in ("mask", "caption")
)


def locate(store: str | Path, relative: str, *, contains: tuple[str, ...] = ()) -> Path:
    """The one path in the unpacked `store` that ends with `relative` (and, for a folder, holds
    every name in `contains`): where an archive of unverified layout keeps it."""
    store = Path(store)
    tail = Path(relative).parts
    found = sorted(
        path
        for path in store.rglob(tail[-1])
        if path.relative_to(store).parts[-len(tail) :] == tail
        and all((path / name).exists() for name in contains)
    )
    if len(found) != 1:
        what = f"{relative}" + (f" holding {', '.join(contains)}" if contains else "")
        seen = ", ".join(str(p.relative_to(store)) for p in found) or "none"
        raise VlprepError(
            f"{store}: expected exactly one {what} in the unpacked archive, found {seen}; the "
            f"archive's layout is not the one vlprep expects: delete {store} and its download to "
            "fetch it again, or report the layout (scripts/vlprep/glamm_refer.py)"
        )
    return found[0]


# ---- checks of the built tree --------------------------------------------------------------


def load_refer(refer_root: Path, dataset: str) -> dict:
    """What GLaMM's REFER (dataset/utils/refcoco_refer.py:50-71) loads: the refs pickle and
    instances.json of `<Refer_Segm>/<dataset>/`."""
    data_dir = refer_root / dataset
    with open(data_dir / f"refs({REFER_SPLIT_BY[dataset]}).p", "rb") as f:
        refs = pickle.load(f)
    with open(data_dir / "instances.json", "rb") as f:
        instances = json.load(f)
    return {"refs": refs, **{k: instances[k] for k in ("images", "annotations", "categories")}}


def check_refer_segm(root: Path) -> list[str]:
    """ReferSegmDataset (RefCOCO_Segm_ds.py:48-85) with split='train': every train ref's ann and
    image resolve (REFER.createIndex, refcoco_refer.py:101-110), and the image file exists where
    load_images puts it (l.81 refclef, l.83-84 COCO sets)."""
    problems: list[str] = []
    refer_root = root / "Refer_Segm"
    coco_dir = refer_root / "coco_2014" / "train2014"
    for dataset in REFER_SPLIT_BY:
        try:
            data = load_refer(refer_root, dataset)
        except (OSError, pickle.UnpicklingError, json.JSONDecodeError, KeyError, EOFError) as err:
            problems.append(f"glamm Refer_Segm/{dataset}: REFER cannot load it "
                            f"(refcoco_refer.py:64-71): {err}")  # fmt: skip
            continue
        images = {img["id"]: img for img in data["images"]}
        anns = {ann["id"] for ann in data["annotations"]}
        train = [ref for ref in data["refs"] if ref.get("split") == "train"]
        if not train:
            problems.append(f"glamm Refer_Segm/{dataset}: no ref of the train split")
        if dataset == "refclef":
            folder, where = refer_root / "images" / "saiapr_tc-12", "RefCOCO_Segm_ds.py:81"
        else:
            folder, where = coco_dir, "RefCOCO_Segm_ds.py:83-84"
        missing = []
        for ref in train:
            if ref["ann_id"] not in anns or ref["image_id"] not in images:
                problems.append(f"glamm Refer_Segm/{dataset}: ref {ref['ref_id']} names ann "
                                f"{ref['ann_id']} / image {ref['image_id']} not in instances.json")  # fmt: skip
                continue
            path = folder / images[ref["image_id"]]["file_name"]
            if not path.is_file():
                missing.append(str(path))
        if missing:
            problems.append(f"glamm Refer_Segm/{dataset}: {len(missing)} train image(s) missing "
                            f"where {where} opens them, e.g. {missing[0]}")  # fmt: skip
    return problems


@contextmanager
def _as_read(where: str, problems: list[str]) -> Iterator[None]:
    """A downloaded file of another shape (a record that is not an object, no file_name, one
    that is not text) fails GLaMM's loader with a KeyError or TypeError: a problem naming the
    file, not a crash of the check."""
    try:
        yield
    except (AttributeError, KeyError, TypeError) as err:
        problems.append(f"glamm {where}: not laid out as GLaMM reads it ({err!r})")


def _coco_json(path: Path, where: str) -> tuple[dict | None, list[str]]:
    try:
        data = json.loads(path.read_text())
    # ValueError: JSONDecodeError, and text that is not UTF-8; RecursionError: nesting too deep
    except (OSError, ValueError, RecursionError) as err:
        return None, [f"glamm {where}: cannot load it: {err}"]
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        return None, [f"glamm {where}: not a COCO-style file (no images list) as pycocotools reads"]
    return data, []


def check_mdetr(root: Path) -> list[str]:
    """RegionBaseDataset (RefCOCO_VG_Region_ds.py:39-48, 97): COCO(<RefCoco_Reg>/mdetr_annotations/
    <file>) and images at <RefCoco_Reg>/coco_2014/<file_name>, COCO_train2014 names; Flickr's at
    flikcr_30k/mdetr_annotations (Flickr_Region_ds.py:36-38, 102), every image there."""
    problems: list[str] = []
    coco_dir = root / "RefCoco_Reg" / "coco_2014"
    for name in MDETR_COCO:
        where = f"RefCoco_Reg/mdetr_annotations/{name}"
        data, found = _coco_json(root / where, where)
        problems += found
        if data is None:
            continue
        with _as_read(where, problems):
            names = [img.get("file_name", "") for img in data["images"]]
            bad = [n for n in names if not (n.startswith("COCO_train2014_") and n.endswith(".jpg"))]
            if bad or not names:
                problems.append(f"glamm {where}: file_name(s) not COCO_train2014 images: {bad[:3]}")
            missing = [n for n in names if not (coco_dir / n).is_file()]
            if missing:
                problems.append(f"glamm {where}: {len(missing)} image(s) missing in {coco_dir} "
                                f"(RefCOCO_VG_Region_ds.py:42,97), e.g. {missing[0]}")  # fmt: skip
    where = f"flikcr_30k/mdetr_annotations/{MDETR_FLICKR}"
    data, found = _coco_json(root / where, where)
    problems += found
    flickr_dir = root / "flikcr_30k" / "flickr30k-images"
    if data is not None:
        with _as_read(where, problems):
            missing = [
                i["file_name"]
                for i in data["images"]
                if not (flickr_dir / i["file_name"]).is_file()
            ]
            if missing:
                problems.append(f"glamm {where}: {len(missing)} image(s) missing in {flickr_dir} "
                                f"(Flickr_Region_ds.py:37,102), e.g. {missing[0]}")  # fmt: skip
    return problems


def check_grandf(root: Path) -> list[str]:
    """GCGBaseDataset (GranDf_gcg_ds.py:47-59): <GranDf>/annotations/train/<json> for train and
    val (l.49, 167, 180, 194 and RefCOCOg's), GranDfDataset's images at GranDf/GranDf_HA_images/
    train/<file_name> (l.59, 168); eval's gt at GranDf/annotations/val_test (eval/gcg/evaluate.py:
    20, 188-189) and images at GranDf/GranDf_HA_images/val_test (eval/gcg/infer.py:23)."""
    problems: list[str] = []
    base = root / "GranDf"
    for name in GRANDF_TRAIN:
        path = base / "annotations" / "train" / name
        try:
            records = json.loads(path.read_text())
        except (OSError, ValueError, RecursionError) as err:  # as in _coco_json
            problems.append(f"glamm GranDf/annotations/train/{name}: cannot load it "
                            f"(GranDf_gcg_ds.py:49-54): {err}")  # fmt: skip
            continue
        if name.startswith("GranDf_HA"):
            images = base / "GranDf_HA_images" / "train"
            with _as_read(f"GranDf/annotations/train/{name}", problems):
                missing = [
                    r["file_name"] for r in records if not (images / r["file_name"]).is_file()
                ]
                if missing or not records:
                    problems.append(f"glamm GranDf/GranDf_HA_images/train: {len(missing)} of "
                                    f"{len(records)} image(s) of {name} missing (GranDf_gcg_ds.py:59,168)"
                                    + (f", e.g. {missing[0]}" if missing else ""))  # fmt: skip
    for name in GRANDF_VAL_TEST:
        where = f"GranDf/annotations/val_test/{name}"
        data, found = _coco_json(base / "annotations" / "val_test" / name, where)
        problems += [f"{p} (eval/gcg/evaluate.py:188-189)" for p in found]
        if data is not None and name.endswith("caption_gt.json"):
            images = base / "GranDf_HA_images" / "val_test"
            with _as_read(where, problems):
                missing = [
                    i["file_name"]
                    for i in data["images"]
                    if not (images / i["file_name"]).is_file()
                ]
                if missing:
                    problems.append(f"glamm GranDf/GranDf_HA_images/val_test: {len(missing)} image(s) "
                                    f"of {name} missing (eval/gcg/infer.py:23), e.g. {missing[0]}")  # fmt: skip
    return problems
