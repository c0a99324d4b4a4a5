"""nxtp's `src/data/mscoco_to_wds.py`, re-implemented without torch: the baseline and oracle.

It keeps the seed's method, costs included: the whole captions JSON is parsed at once and
indexed like pycocotools' COCO, images are visited by ascending id, and every image is decoded
and turned into a float CHW array scaled to [0, 1] (what `transforms.ToTensor()` does), then
discarded; the JPEG is copied and the `.txt`/`.json` written beside it. The tests use it as
the exactness oracle for `vlprep.nxtp`, the benchmark as "the seed's method".
"""

import json
import os
import os.path as osp
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

SUB_FOLD_SIZE = 2999


class CocoCaptionsIndex:
    """The parts of pycocotools.coco.COCO that torchvision's CocoCaptions uses."""

    def __init__(self, ann_file: str):
        with open(ann_file) as f:
            dataset = json.load(f)
        self.anns = {}
        self.img_to_anns = defaultdict(list)
        self.imgs = {}
        for ann in dataset.get("annotations", []):
            self.img_to_anns[ann["image_id"]].append(ann)
            self.anns[ann["id"]] = ann
        for img in dataset.get("images", []):
            self.imgs[img["id"]] = img
        self.ids = sorted(self.imgs)

    def captions(self, img_id: int) -> list[str]:
        """getAnnIds(img_id) then loadAnns: annotations in file order, looked up by id."""
        ann_ids = [ann["id"] for ann in self.img_to_anns.get(img_id, [])]
        return [self.anns[a]["caption"] for a in ann_ids]


def to_tensor(path: str) -> np.ndarray:
    """What CocoDetection._load_image + ToTensor compute: RGB decode, CHW float32 / 255."""
    image = Image.open(path).convert("RGB")
    array = np.array(image, copy=True)
    return np.ascontiguousarray(array.transpose(2, 0, 1)).astype(np.float32) / 255


def seed_reference(root: Path, split: str) -> None:
    """Convert `root/<split>` + `root/annotations/captions_<split>.json` as the seed does."""
    root = str(root)
    save_dir = osp.join(root, "coco_valid" if "val" in split else "coco_train")
    os.makedirs(save_dir, exist_ok=True)
    coco = CocoCaptionsIndex(osp.join(root, "annotations", f"captions_{split}.json"))
    sub_fold_cnt = 1
    for i, img_id in enumerate(coco.ids):
        path = coco.imgs[img_id]["file_name"]
        src = osp.join(root, split, path)
        to_tensor(src)
        tgt = " ".join([t.strip() for t in coco.captions(img_id)])
        fname = path.split(".")[0]
        if (i + 1) % SUB_FOLD_SIZE == 0:
            sub_fold_cnt += 1
        sub_fold = osp.join(save_dir, str(sub_fold_cnt - 1).zfill(5))
        os.makedirs(sub_fold, exist_ok=True)
        shutil.copy(src, osp.join(sub_fold, f"{fname}.jpg"))
        with open(osp.join(sub_fold, f"{fname}.txt"), "w", encoding="utf-8") as f:
            f.write(tgt)
        with open(osp.join(sub_fold, f"{fname}.json"), "w", encoding="utf-8") as f:
            json.dump({"path": path, "cap": tgt, "split": split}, f)
