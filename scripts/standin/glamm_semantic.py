"""Stand-in sources of GLaMM's Semantic_Segm/ sets that need more than a link, shaped like the
real files (tiny, deterministic):

- `pascal_part_annotations`: trainval.tar.gz with `Annotations_Part/<id>.mat` for each VOC2010
  stand-in image (standin.segmentation), in the release's struct layout (`anno`: `imname`,
  `objects`; an object: `class`, `class_ind`, `mask`, `parts`; a part: `part_name`, `mask`),
  written with scipy.io.savemat, masks the size of the VOC2010 tar's JPEGs. The train images
  exercise every rule of VLPart's converter: substring matches (`lwing`), abbreviations
  (`fliplate`, `lfpa`), `pottedplant`, parts matching nothing (`stern`, an empty `engine_1`),
  objects without parts, classes without part categories (`train`), and an image with no part
  kept (dropped).
- `paco_lvis`: paco_lvis_v1.zip with `paco_lvis_v1_{train,val,test}.json` at its top (COCO
  style; `file_name` `train2017/<12 digits>.jpg` of stand-in COCO 2017 train images; LVIS
  names with `_(...)` and `obj:part`).
- `mapillary_vistas`: the manual zip (`mapillary-vistas-v2.0.zip`, as the user renames it) with
  `config_v2.0.json` (`labels[*].readable`), `training/images/<id>.jpg`,
  `training/v2.0/labels/<id>.png` (8-bit palette maps), and the v1.2/validation parts.
"""

import gzip
import io
import json
import random
import tarfile
import zipfile
from pathlib import Path

from PIL import Image

from standin.coco import _jpeg, _zipinfo
from vlprep.atomic import staged

PART_MTIME = 1_400_000_000
ZIP_TIME = (2022, 12, 1, 12, 0, 0)
VOC2010_TAR = "VOCtrainval_03-May-2010.tar"

# What each VOC2010 stand-in image holds: [(class, class_ind, [part names] or None)].
# train ids (standin.segmentation VOC2010_IMAGES): 2008_000002, 2008_000008, 2010_000038.
PART_OBJECTS = {
    "2008_000002": [
        ("aeroplane", 1, ["body", "stern", "lwing", "rwing", "tail", "engine_1", "wheel_1"]),
        ("person", 15, ["hair", "head", "lear", "leye", "lebrow", "ruarm", "rhand", "torso"]),
    ],
    "2008_000008": [
        ("cat", 8, ["head", "lear", "leye", "lfleg", "lfpa", "tail", "torso"]),
        ("pottedplant", 16, ["pot", "plant"]),
        ("car", 7, ["frontside", "fliplate", "door_1", "wheel_1", "headlight_1", "leftmirror"]),
        ("chair", 9, None),
    ],
    "2010_000038": [  # no part kept: dropped from train.json
        ("boat", 4, None),
        ("train", 19, ["head", "hfrontside", "coach_1"]),
        ("person", 15, []),
    ],
    "2008_000007": [("dog", 12, ["head", "lfpa", "muzzle"])],  # val: not in train.json
    "2009_000013": [("bird", 3, ["beak", "lwing"])],
    "2009_000021": [("sheep", 17, ["head", "lhorn"])],
    "2010_000063": [("horse", 13, ["head", "lfho"])],
}
EMPTY_PARTS = {("2008_000002", "engine_1")}  # an empty mask on a part no category takes


def _voc_sizes(voc_tar: Path) -> dict[str, tuple[int, int]]:
    """{id: (width, height)} of the JPEGs of the stand-in VOC2010 tar."""
    sizes = {}
    with tarfile.open(voc_tar) as tf:
        for member in tf.getmembers():
            if member.isfile() and "/JPEGImages/" in member.name:
                with Image.open(io.BytesIO(tf.extractfile(member).read())) as image:
                    sizes[Path(member.name).stem] = image.size
    return sizes


def _struct(fields: list[str], rows: list[tuple]):
    import numpy as np

    array = np.empty((1, len(rows)), dtype=[(name, object) for name in fields])
    for i, row in enumerate(rows):
        array[0, i] = row
    return array


def _mask(rng: random.Random, width: int, height: int, empty: bool = False):
    import numpy as np

    mask = np.zeros((height, width), np.uint8)
    if not empty:
        x0, y0 = rng.randrange(0, width - 8), rng.randrange(0, height - 8)
        mask[y0 : y0 + rng.randrange(2, 9), x0 : x0 + rng.randrange(2, 9)] = 1
        mask[rng.randrange(height), rng.randrange(width)] = 1  # not always a box
    return mask


def part_mat(image_id: str, size: tuple[int, int], seed: int = 0) -> bytes:
    """One `Annotations_Part/<id>.mat` as scipy.io.savemat writes the release's layout."""
    import numpy as np
    import scipy.io

    rng = random.Random(f"pascal_part:{seed}:{image_id}")
    width, height = size
    objects = []
    for name, class_ind, parts in PART_OBJECTS[image_id]:
        obj_mask = _mask(rng, width, height)
        if parts is None or not parts:
            part_array = np.zeros((0, 0))
        else:
            part_array = _struct(
                ["part_name", "mask"],
                [(p, _mask(rng, width, height, (image_id, p) in EMPTY_PARTS)) for p in parts],
            )
        objects.append((name, np.array([[class_ind]], np.uint8), obj_mask, part_array))
    anno = {
        "imname": image_id,
        "objects": _struct(["class", "class_ind", "mask", "parts"], objects),
    }
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"anno": anno})
    data = buf.getvalue()
    # savemat's header carries the time it ran: pin it, so the bytes depend on content only
    return b"MATLAB 5.0 MAT-file Platform: posix, Created on: stand-in".ljust(116) + data[116:]


def make_part_annotations(out: Path, voc_tar: Path, seed: int = 0) -> Path:
    """trainval.tar.gz: Annotations_Part/<id>.mat for every image of the VOC2010 stand-in."""
    sizes = _voc_sizes(voc_tar)
    unknown = set(PART_OBJECTS) ^ set(sizes)
    if unknown:
        raise ValueError(f"stand-in PASCAL-Part and {voc_tar} disagree on ids {sorted(unknown)}")
    path = out / "trainval.tar.gz"
    with (
        staged(path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tf,
    ):
        info = tarfile.TarInfo("Annotations_Part")
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, PART_MTIME
        tf.addfile(info)
        for image_id in sorted(PART_OBJECTS):
            data = part_mat(image_id, sizes[image_id], seed)
            info = tarfile.TarInfo(f"Annotations_Part/{image_id}.mat")
            info.size, info.mode, info.mtime = len(data), 0o644, PART_MTIME
            tf.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with staged(path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name, data in members:
            compress = zipfile.ZIP_STORED if name.endswith("/") else zipfile.ZIP_DEFLATED
            zf.writestr(_zipinfo(name, ZIP_TIME, compress), data)
    return path


PACO_CATEGORIES = [
    "car_(automobile)",
    "car_(automobile):wheel",
    "mug",
    "mug:handle",
    "bottle:cap",
    "trash_can:lid",
]


def _coco_train_images(coco_train: Path) -> list[tuple[str, tuple[int, int]]]:
    out = []
    with zipfile.ZipFile(coco_train) as zf:
        for name in sorted(n for n in zf.namelist() if n.endswith(".jpg")):
            with Image.open(io.BytesIO(zf.read(name))) as image:
                out.append((name, image.size))
    return out


def make_paco(out: Path, coco_train: Path, seed: int = 0) -> Path:
    """paco_lvis_v1.zip: the three splits' json at its top, train on COCO 2017 train images."""
    rng = random.Random(f"paco:{seed}")
    images = _coco_train_images(coco_train)[:6]
    categories = [
        {"id": i + 1, "name": n, "supercategory": "x"} for i, n in enumerate(PACO_CATEGORIES)
    ]
    members = []
    for split, chosen in (("train", images[:4]), ("val", images[4:5]), ("test", images[5:6])):
        records, anns = [], []
        for name, (width, height) in chosen:
            image_id = int(Path(name).stem)
            records.append({"id": image_id, "file_name": name, "width": width, "height": height})
            for category in rng.sample(categories, 2):
                x, y = rng.randrange(width // 2), rng.randrange(height // 2)
                w, h = rng.randrange(2, width // 2), rng.randrange(2, height // 2)
                anns.append(
                    {
                        "id": len(anns) + 1,
                        "image_id": image_id,
                        "category_id": category["id"],
                        "bbox": [x, y, w, h],
                        "area": w * h,
                        "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                        "iscrowd": 0,
                    }
                )
        doc = {"images": records, "annotations": anns, "categories": categories}
        members.append((f"paco_lvis_v1_{split}.json", json.dumps(doc).encode()))
    return _zip(out / "paco_lvis_v1.zip", members)


MAPILLARY_LABELS = ["Bird", "Curb", "Road", "Sky", "Car", "Unlabeled"]
MAPILLARY_IMAGES = {"training": ["-0AbC1dEfGhIjKlMnOpQrS", "0aBcD2eFgHiJkLmNoPqRsT", "1zYxW"],
                    "validation": ["2vUtS"]}  # fmt: skip


def _label_png(rng: random.Random, size: tuple[int, int]) -> bytes:
    image = Image.new("P", size, len(MAPILLARY_LABELS) - 1)
    image.putpalette([v for i in range(len(MAPILLARY_LABELS)) for v in (i * 40, 255 - i * 40, i)])
    for _ in range(3):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        image.paste(rng.randrange(len(MAPILLARY_LABELS)), (x, y, x + 10, y + 8))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def make_mapillary(out: Path, seed: int = 0) -> Path:
    """The Mapillary Vistas v2.0 zip under the name the user gives it in manual_dir."""
    rng = random.Random(f"mapillary:{seed}")
    config = {
        "version": "2.0",
        "labels": [
            {"name": f"label--{n.lower()}", "readable": n, "color": [i, i, i], "evaluate": True}
            for i, n in enumerate(MAPILLARY_LABELS)
        ],
    }
    members = [
        ("config_v1.2.json", json.dumps({**config, "version": "1.2"}).encode()),
        ("config_v2.0.json", json.dumps(config).encode()),
    ]
    folders = set()
    for split, stems in MAPILLARY_IMAGES.items():
        for stem in stems:
            size = (rng.randrange(48, 80), rng.randrange(32, 60))
            files = {
                f"{split}/images/{stem}.jpg": _jpeg(rng, *size, None),
                f"{split}/v2.0/labels/{stem}.png": _label_png(rng, size),
                f"{split}/v1.2/labels/{stem}.png": _label_png(rng, size),
            }
            for name, data in files.items():
                parts = name.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    folders.add("/".join(parts[:depth]) + "/")
                members.append((name, data))
    return _zip(out / "mapillary-vistas-v2.0.zip", sorted([(f, b"") for f in folders] + members))


def make_glamm_semantic(
    out: Path, voc_tar: Path | None = None, coco_train: Path | None = None
) -> dict[str, Path]:
    """Write the stand-in files into `out`; return {catalog entry id: path}.

    `voc_tar`, `coco_train`: the stand-in VOC2010 tar and COCO 2017 train zip (default: where
    the world's segmentation and COCO generators, which run first, write them)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    voc_tar = voc_tar or out.parent / "segmentation" / VOC2010_TAR
    coco_train = coco_train or out.parent / "train2017.zip"
    return {
        "pascal_part_annotations": make_part_annotations(out, voc_tar),
        "paco_lvis": make_paco(out, coco_train),
        "mapillary_vistas": make_mapillary(out),
    }
