"""Generated inputs of the label-map conversions (tests/unit/test_segmaps.py, tests/loaders/):
COCO-Stuff raw blob maps, a trainval_merged.json with RLE masks, Cityscapes polygon files."""

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from standin.segmentation import rle_counts, rle_string

# mmseg tools/dataset_converters/coco_stuff164k.py:15-198, keys in order; values are 0..170 in
# the same order, and 255: 255.
MMSEG_KEYS = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26,
    27, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 45, 46, 47, 48, 49, 50, 51, 52,
    53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 66, 69, 71, 72, 73, 74, 75, 76, 77, 78, 79,
    80, 81, 83, 84, 85, 86, 87, 88, 89, 91, 92, 93, 94, 95, 96, 97, 98, 99, 100, 101, 102, 103,
    104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121,
    122, 123, 124, 125, 126, 127, 128, 129, 130, 131, 132, 133, 134, 135, 136, 137, 138, 139,
    140, 141, 142, 143, 144, 145, 146, 147, 148, 149, 150, 151, 152, 153, 154, 155, 156, 157,
    158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172, 173, 174, 175,
    176, 177, 178, 179, 180, 181, 255,
]  # fmt: skip


def rle_encode(mask: np.ndarray) -> dict:
    """maskApi.c rleEncode: runs of the column-major pixels, starting with a run of 0s."""
    cnts = rle_counts(mask.T.ravel().astype(bool).astype(int).tolist())
    # the stand-in world's encoder (maskApi.c rleEncode, rleToString); pycocotools decodes
    # what it writes in tests/loaders/test_segmaps_upstream.py
    return {"size": [mask.shape[0], mask.shape[1]], "counts": rle_string(cnts)}


VALID_RAW = [*MMSEG_KEYS]


def blob_map(rng: random.Random, size=(80, 60), values=None) -> Image.Image:
    """A COCO-Stuff-like raw map: a background class and overlapping polygon blobs."""
    values = values or rng.sample(VALID_RAW, 12)
    img = Image.new("L", size, rng.choice(values))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(4, 12)):
        x, y = rng.uniform(0, size[0]), rng.uniform(0, size[1])
        r = rng.uniform(3, 30)
        pts = [(x + rng.uniform(-r, r), y + rng.uniform(-r, r)) for _ in range(rng.randint(3, 8))]
        draw.polygon(pts, fill=rng.choice(values))
    return img


def make_coco_raw(folder: Path, n: int, seed: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = []
    for i in range(n):
        name = f"{100000 + i:012d}.png"
        blob_map(rng).save(folder / name)
        names.append(name)
    # one map holding every raw id of the table, so every entry is exercised
    every = np.array(VALID_RAW * 2, np.uint8)[:, None].repeat(3, axis=1)
    Image.fromarray(every).save(folder / f"{999999:012d}.png")
    (folder / "README.txt").write_text("not a map")  # ignored: not <12 digits>.png
    return [*names, f"{999999:012d}.png"]


def make_context_json(path: Path, seed: int = 0, n_images: int = 12) -> dict:
    """A trainval_merged.json in the schema the Detail API reads: images with phase, size and
    file_name; annos_segmentation with RLE masks, interleaved across images, overlapping; a
    repeated annotation id (the dict keeps the first position, the last record)."""
    rng = random.Random(seed)
    cats = CONTEXT_CATEGORIES
    images, anns = [], []
    for i in range(n_images):
        h, w = rng.randint(20, 40), rng.randint(20, 50)
        image_id = 2008000000 + i
        phase = ["train", "val", "test"][i % 3] if i else "train"
        images.append(
            {"image_id": image_id, "file_name": f"2008_{i:06d}.jpg", "phase": phase,
             "height": h, "width": w, "date_captured": "x"}
        )  # fmt: skip
        for _ in range(rng.randint(0, 6)):
            mask = Image.new("1", (w, h), 0)
            draw = ImageDraw.Draw(mask)
            x0, y0 = rng.randint(-5, w), rng.randint(-5, h)
            draw.ellipse([x0, y0, x0 + rng.randint(3, w), y0 + rng.randint(3, h)], fill=1)
            anns.append(
                {"image_id": image_id, "category_id": rng.choice(cats),
                 "segmentation": rle_encode(np.asarray(mask)), "iscrowd": 0,
                 "area": 1, "bbox": [0, 0, 1, 1], "parts": []}
            )  # fmt: skip
    rng.shuffle(anns)
    ids = rng.sample(range(1000, 100000), len(anns))  # ids not in file order: order is the file's
    for ann, ann_id in zip(anns, ids, strict=True):
        ann["id"] = ann_id
    if len(anns) > 4:  # a repeated id: the later record replaces the earlier one in place
        anns.append(dict(anns[1], category_id=rng.choice(cats)))
        first = images[0]  # and another moves it to another image
        square = np.zeros((first["height"], first["width"]), np.uint8)
        square[2:9, 3:12] = 1
        anns.append(dict(anns[1], image_id=first["image_id"], segmentation=rle_encode(square)))
    data = {
        "info": {}, "categories": [{"category_id": c, "name": f"c{c}"} for c in cats],
        "annos_segmentation": anns, "images": images, "parts": [],
        "annos_occlusion": [], "annos_boundary": [], "annos_joints": [],
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return data


def make_cityscapes(folder: Path, seed: int = 0, per_city: int = 4) -> list[Path]:
    rng = random.Random(seed)
    labels = [*CS_LABEL_NAMES, "cargroup", "persongroup", "bicyclegroup", "polegroup"]
    files = []
    for city in ("frankfurt", "lindau", "munster"):
        (folder / city).mkdir(parents=True, exist_ok=True)
        for i in range(per_city):
            w, h = 96, 64
            objects = []
            for _ in range(rng.randint(3, 15)):
                x, y = rng.randint(0, w), rng.randint(0, h)
                pts = [
                    [x + rng.randint(-40, 40), y + rng.randint(-30, 30)]
                    for _ in range(rng.randint(3, 9))
                ]
                obj = {"label": rng.choice(labels), "polygon": pts}
                if rng.random() < 0.2:
                    obj["deleted"] = 1
                objects.append(obj)
            path = folder / city / f"{city}_{i:06d}_000019_gtFine_polygons.json"
            path.write_text(json.dumps({"imgHeight": h, "imgWidth": w, "objects": objects}))
            files.append(path)
    return files


# the 59 PASCAL-Context categories (mmseg pascal_context.py:11-17 without 0)
CONTEXT_CATEGORIES = sorted([
    2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159, 416, 33, 162,
    420, 454, 295, 296, 427, 44, 45, 46, 308, 59, 440, 445, 31, 232, 65, 354, 424, 68, 326, 72,
    458, 34, 207, 80, 355, 85, 347, 220, 349, 360, 98, 187, 104, 105, 366, 189, 368, 113, 115,
])  # fmt: skip
# cityscapesscripts helpers/labels.py:62-99 names
CS_LABEL_NAMES = [
    "unlabeled", "ego vehicle", "rectification border", "out of roi", "static", "dynamic",
    "ground", "road", "sidewalk", "parking", "rail track", "building", "wall", "fence",
    "guard rail", "bridge", "tunnel", "pole", "polegroup", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "caravan",
    "trailer", "train", "motorcycle", "bicycle", "license plate",
]  # fmt: skip
