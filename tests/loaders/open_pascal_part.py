"""In the loaders venv: load GLaMM's pascal_part/train.json with pycocotools as
init_pascal_part does (Semantic_Segm_ds.py:64-73), and decode every annotation's RLE with
pycocotools, comparing it with the part masks of the image's .mat (scipy). Prints one JSON line.

Usage: open_pascal_part.py <train.json> <Annotations_Part>
"""

import json
import os
import sys

import scipy.io
from pycocotools.coco import COCO


def main(train_json: str, ann_dir: str) -> None:
    api = COCO(train_json)
    classes = {}
    for cat in api.loadCats(api.getCatIds()):
        cat_main, cat_part = cat["name"].strip().split(":")
        classes[cat["id"]] = (cat_main, cat_part)
    matched = unmatched = 0
    for img_id in api.getImgIds():
        info = api.loadImgs([img_id])[0]
        stem = info["file_name"][:-4]
        anno = scipy.io.loadmat(os.path.join(ann_dir, stem + ".mat"))["anno"][0][0]
        masks = [
            part["mask"] != 0
            for obj in anno["objects"][0]
            if obj["parts"].size
            for part in obj["parts"][0]
        ]
        for ann in api.loadAnns(api.getAnnIds(imgIds=img_id)):
            decoded = api.annToMask(ann) != 0
            assert decoded.shape == (info["height"], info["width"]), stem
            if any(m.shape == decoded.shape and (m == decoded).all() for m in masks):
                matched += 1
            else:
                unmatched += 1
            classes[ann["category_id"]]  # noqa: B018 - GLaMM's class_map lookup (l.189)
    print(
        json.dumps(
            {
                "categories": len(classes),
                "images": len(api.getImgIds()),
                "matched": matched,
                "unmatched": unmatched,
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:3])
