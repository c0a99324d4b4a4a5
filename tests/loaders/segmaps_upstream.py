"""Run the upstream label-map converters on generated inputs; compare with vlprep's outputs.

    segmaps_upstream.py coco <raw dir> <ours dir> <scratch>
    segmaps_upstream.py context <trainval_merged.json> <ours dir> <scratch>
    segmaps_upstream.py cityscapes <gtFine split dir> <ours dir> <scratch>

Prints one JSON document: {"compared": n, "different": [names]} (or {"skipped": why}).
- coco: mmseg's own tools/dataset_converters/coco_stuff164k.py (shipped in the mmsegmentation
  wheel under mmseg/.mim) `convert_to_trainID`; for COCO-Object the same function with its
  table rewritten as COSMOS convert_coco_object.py:195-198 does (COSMOS's file is that
  function with that table).
- context: mmseg's own pascal_context.py `generate_labels` with a stand-in `detail` module: the
  Detail API is not on PyPI; its getMask(img) is restated below from ccvl/detail-api
  PythonAPI/detail/__init__.py (index l.93-96,142-151; getMask l.348-357; getImgs l.527-565)
  and decodes with pycocotools, whose mask code Detail's _mask.pyx/maskApi.c is a copy of.
- cityscapes: cityscapesscripts' own json2labelImg(..., "trainIds"), as mmseg's cityscapes.py
  calls it.
"""

import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
from PIL import Image


def converter(name: str):
    import mmseg

    path = Path(mmseg.__file__).parent / ".mim" / "tools" / "dataset_converters" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"mmseg_converter_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def same(a: Path, b: Path) -> bool:
    with Image.open(a) as x, Image.open(b) as y:
        return np.array_equal(np.asarray(x), np.asarray(y))


def coco(raw: Path, ours: Path, scratch: Path) -> dict:
    module = converter("coco_stuff164k")
    (scratch / "val2017").mkdir(parents=True)
    names = sorted(n for n in os.listdir(raw) if len(n) == 16 and n.endswith(".png"))
    different, compared = [], 0
    stuff = dict(module.clsID_to_trID)
    obj = dict(stuff)
    for k, v in obj.items():  # COSMOS convert_coco_object.py:195-198
        obj[k] = v + 1
        if k > 90:
            obj[k] = 0
    for table, suffix in ((stuff, "_labelTrainIds.png"), (obj, "_instanceTrainIds.png")):
        module.clsID_to_trID = table
        for name in names:
            module.convert_to_trainID(str(raw / name), str(scratch), is_train=False)
            upstream = scratch / "val2017" / (name[:-4] + "_labelTrainIds.png")
            compared += 1
            if not same(upstream, ours / (name[:-4] + suffix)):
                different.append(name[:-4] + suffix)
    return {"compared": compared, "different": different, "table_entries": len(stuff)}


class Detail:
    """The part of detail.Detail that mmseg's pascal_context.py uses (see the docstring)."""

    def __init__(self, annotation_file, image_folder, phase):
        from pycocotools import mask as mask_utils

        self.decode = mask_utils.decode
        self.phase = phase
        with open(annotation_file) as f:
            data = json.load(f)
        self.imgs, self.segmentations = {}, {}
        for img in data["images"]:
            self.imgs[img["image_id"]] = img
        for segm in data["annos_segmentation"]:
            self.segmentations[segm["id"]] = segm
        for img in data["images"]:
            img["annotations"] = []
        for segm_id, segm in self.segmentations.items():
            self.imgs[segm["image_id"]]["annotations"].append(segm_id)

    def getImgs(self):  # noqa: N802 - the Detail API's name
        phases = [p for p in ("train", "val", "test") if p in self.phase]
        return [img for img in self.imgs.values() if img["phase"] in phases]

    def getMask(self, img):  # noqa: N802
        img = self.imgs[img["image_id"]]
        img_anns = np.unique(np.array([img["annotations"]]).flatten())
        anns = [a for a in self.segmentations.values() if a["id"] in img_anns]
        mask = np.zeros((img["height"], img["width"]))
        for ann in anns:
            m = self.decode(ann["segmentation"])
            mask[np.nonzero(m)] = ann["category_id"]
        return mask


def context(merged: Path, ours: Path, scratch: Path) -> dict:
    sys.modules["detail"] = types.SimpleNamespace(Detail=Detail)
    module = converter("pascal_context")
    scratch.mkdir(parents=True, exist_ok=True)
    different, compared, lists = [], 0, {}
    for phase in ("train", "val"):
        detail = Detail(str(merged), "unused", phase)
        ids = [module.generate_labels(img, detail, str(scratch)) for img in detail.getImgs()]
        lists[phase] = sorted(ids)
        for image_id in ids:
            compared += 1
            name = f"{image_id}.png"
            if not same(scratch / name, ours / "SegmentationClassContext" / name):
                different.append(name)
        listed = (ours / "ImageSets" / "SegmentationContext" / f"{phase}.txt").read_text()
        if listed != "".join(f"{i}\n" for i in lists[phase]):
            different.append(f"{phase}.txt")
    return {"compared": compared, "different": different, "lists": lists}


def cityscapes(src: Path, ours: Path, scratch: Path) -> dict:
    try:
        from cityscapesscripts.preparation.json2labelImg import json2labelImg
    except ImportError:
        return {"skipped": "cityscapesscripts is not installed in the loaders venv"}
    different, compared = [], 0
    for city in sorted(os.listdir(src)):
        (scratch / city).mkdir(parents=True)
        for name in sorted(os.listdir(src / city)):
            out = name.replace("_polygons.json", "_labelTrainIds.png")
            json2labelImg(str(src / city / name), str(scratch / city / out), "trainIds")
            compared += 1
            if not same(scratch / city / out, ours / city / out):
                different.append(f"{city}/{out}")
    return {"compared": compared, "different": different}


if __name__ == "__main__":
    kind, source, ours, scratch = sys.argv[1:5]
    run = {"coco": coco, "context": context, "cityscapes": cityscapes}[kind]
    print(json.dumps(run(Path(source), Path(ours), Path(scratch))))
