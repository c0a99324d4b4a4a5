"""Stand-in sources of COSMOS's segmentation data, tiny and format-faithful.

Each file has the real one's name, archive type, top folders and member naming, with a
handful of images: the VOC 2012 and 2010 tars (`VOCdevkit/VOC20xx/...`, palette PNG label
maps with the 255 border), PASCAL-Context's `trainval_merged.json` in the Detail API's schema
(ccvl/detail-api PythonAPI/detail/__init__.py: `images` with `image_id`/`file_name`/`phase`,
`annos_segmentation` with compressed COCO RLE, `categories`, and the empty per-image tables
its index reads), COCO-Stuff's `stuffthingmaps_trainval2017.zip` (`train2017/`, `val2017/`
of raw 0-181/255 maps, one per stand-in COCO 2017 image of the split, same size), ADE20K's
`ADEChallengeData2016.zip` and Cityscapes' two account-only zips (polygon JSONs and 8-bit
PNGs in the real naming, for world/manual/). Byte-for-byte deterministic.
"""

import io
import json
import random
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from PIL import Image

from standin.coco import ZIP_TIME_2017, _jpeg, _write_zip, _zipinfo
from vlprep.atomic import staged
from vlprep.pascal_part import rle_string

TAR_MTIME = {"VOC2012": 1_336_700_000, "VOC2010": 1_272_900_000}
ZIP_TIME_ADE = (2016, 6, 1, 12, 0, 0)
ZIP_TIME_CITYSCAPES = (2016, 2, 26, 12, 0, 0)

# VOC: (id, in the segmentation split: "train", "val" or None (detection only)).
VOC2012_IMAGES = [
    ("2007_000032", "train"),
    ("2007_000033", "val"),
    ("2007_000042", "val"),
    ("2008_000002", None),
    ("2009_000012", "train"),
    ("2010_000027", "val"),
    ("2011_000003", None),
]
VOC2010_IMAGES = [
    ("2008_000002", "train"),
    ("2008_000007", "val"),
    ("2008_000008", "train"),
    ("2009_000013", "val"),
    ("2009_000021", "val"),
    ("2010_000038", "train"),
    ("2010_000063", "val"),
]
VOC_CLASSES = 20
# PASCAL-Context's 59 classes: the raw Detail category ids mmseg's converter keeps (its
# `_mapping`, sorted, minus 0), paired with the class names in that order.
CONTEXT_IDS = [2, 9, 18, 19, 22, 23, 25, 31, 33, 34, 44, 45, 46, 59, 65, 68, 72, 80, 85, 98]
CONTEXT_IDS += [104, 105, 113, 115, 144, 158, 159, 162, 187, 189, 207, 220, 232, 258, 259, 260]
CONTEXT_IDS += [284, 295, 296, 308, 324, 326, 347, 349, 354, 355, 360, 366, 368, 397, 415, 416]
CONTEXT_IDS += [420, 424, 427, 440, 445, 454, 458]
CONTEXT_NAMES = "aeroplane bag bed bedclothes bench bicycle bird boat book bottle building bus"
CONTEXT_NAMES += " cabinet car cat ceiling chair cloth computer cow cup curtain dog door fence"
CONTEXT_NAMES += " floor flower food grass ground horse keyboard light motorbike mountain mouse"
CONTEXT_NAMES += " person plate platform pottedplant road rock sheep shelves sidewalk sign sky"
CONTEXT_NAMES += " snow sofa table track train tree truck tvmonitor wall water window wood"
# COCO-Stuff's raw label values: 0-181 minus the 11 unused COCO thing ids, and 255 (unlabeled)
# (the keys of clsID_to_trID in mmseg's coco_stuff164k.py and COSMOS's convert_coco_object.py).
COCO_STUFF_UNUSED = {11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90}
COCO_STUFF_RAW = [v for v in range(182) if v not in COCO_STUFF_UNUSED] + [255]
ADE_IMAGES = {"training": 4, "validation": 5}
ADE_CLASSES = 150
# Cityscapes: split -> city -> (sequence, frame) of each image; the val cities are the real ones.
CITYSCAPES = {
    "train": {"aachen": [(0, 19)]},
    "val": {"frankfurt": [(0, 294), (1, 7285)], "lindau": [(0, 19)], "munster": [(0, 19)]},
    "test": {"berlin": [(0, 19)]},
}
CITYSCAPES_SIZE = (64, 32)  # the real images are 2048 x 1024
# Labels the polygons use (cityscapesscripts helpers/labels.py names): drawable ones, a group
# label (cargroup -> car), ones with trainId 255 and one with a negative id (not drawn).
CITYSCAPES_LABELS = ["road", "sidewalk", "building", "vegetation", "sky", "person", "car"]
CITYSCAPES_LABELS += ["cargroup", "bicycle", "traffic sign", "ego vehicle", "license plate"]


def _tar(path: Path, members: Iterable[tuple[str, bytes | None]], mtime: int) -> Path:
    """A ustar tar like VOC's: directories (data None) and files, in the order given."""
    with staged(path) as tmp, tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime, info.uname, info.gname = mtime, "", ""
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    return path


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=False)
    return buf.getvalue()


def voc_palette() -> list[int]:
    """The VOC colour map (VOCdevkit's labelcolormap), 256 RGB entries."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def _voc_label(rng: random.Random, size: tuple[int, int], classes: list[int]) -> bytes:
    """A palette PNG: background 0, a box or two of object classes, each edged by 255."""
    image = Image.new("P", size, 0)
    image.putpalette(voc_palette())
    width, height = size
    for cls in classes:
        x0, y0 = rng.randrange(0, width // 2), rng.randrange(0, height // 2)
        x1, y1 = rng.randrange(x0 + 6, width), rng.randrange(y0 + 6, height)
        image.paste(255, (x0, y0, x1, y1))
        image.paste(cls, (x0 + 1, y0 + 1, x1 - 1, y1 - 1))
    return _png(image)


def _voc_xml(image_id: str, year: str, size: tuple[int, int]) -> bytes:
    width, height = size
    return (
        f"<annotation>\n\t<folder>{year}</folder>\n\t<filename>{image_id}.jpg</filename>\n"
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n"
        f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n</annotation>\n"
    ).encode()


def _voc_members(
    year: str, images: list[tuple[str, str | None]], rng: random.Random, segmentation: bool
) -> tuple[list[tuple[str, bytes | None]], dict[str, tuple[int, int]]]:
    """VOCdevkit/<year>/ as the tar holds it; returns (members, {id: (width, height)})."""
    top = f"VOCdevkit/{year}"
    sizes = {image_id: (rng.randrange(48, 97), rng.randrange(40, 81)) for image_id, _ in images}
    segmented = [(i, split) for i, split in images if split and segmentation]
    files: dict[str, bytes] = {}
    for image_id, _ in images:
        files[f"Annotations/{image_id}.xml"] = _voc_xml(image_id, year, sizes[image_id])
        files[f"JPEGImages/{image_id}.jpg"] = _jpeg(rng, *sizes[image_id], None)
    for image_id, _ in segmented:
        classes = rng.sample(range(1, VOC_CLASSES + 1), 2)
        files[f"SegmentationClass/{image_id}.png"] = _voc_label(rng, sizes[image_id], classes)
        files[f"SegmentationObject/{image_id}.png"] = _voc_label(rng, sizes[image_id], [1, 2])
    for split in ("train", "val"):
        ids = sorted(i for i, s in images if s == split)
        files[f"ImageSets/Main/{split}.txt"] = "".join(f"{i}\n" for i in ids).encode()
        if segmentation:
            seg_ids = sorted(i for i, s in segmented if s == split)
            files[f"ImageSets/Segmentation/{split}.txt"] = "".join(
                f"{i}\n" for i in seg_ids
            ).encode()
    files["ImageSets/Main/trainval.txt"] = "".join(
        f"{i}\n" for i in sorted(i for i, s in images if s)
    ).encode()
    if segmentation:
        files["ImageSets/Segmentation/trainval.txt"] = "".join(
            f"{i}\n" for i in sorted(i for i, _ in segmented)
        ).encode()
    members: list[tuple[str, bytes | None]] = [("VOCdevkit", None), (top, None)]
    made = set()
    for name in sorted(files):
        folder = name.rpartition("/")[0]
        parts = folder.split("/")
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            if sub not in made:
                made.add(sub)
                members.append((f"{top}/{sub}", None))
        members.append((f"{top}/{name}", files[name]))
    return members, sizes


def make_voc2012(out: Path, seed: int = 0) -> Path:
    """VOCtrainval_11-May-2012.tar: VOCdevkit/VOC2012/ with the segmentation split lists."""
    rng = random.Random(f"voc2012:{seed}")
    members, _ = _voc_members("VOC2012", VOC2012_IMAGES, rng, segmentation=True)
    return _tar(out / "VOCtrainval_11-May-2012.tar", members, TAR_MTIME["VOC2012"])


# ---- PASCAL-Context: trainval_merged.json in the Detail API's schema -----------------------


def rle_counts(mask_columns: list[int]) -> list[int]:
    """COCO RLE run lengths of a binary mask given column-major as a flat 0/1 list."""
    counts, current, run = [], 0, 0
    for value in mask_columns:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return counts


def _rle(width: int, height: int, box: tuple[int, int, int, int]) -> dict:
    """The compressed RLE of a filled box (x0, y0, x1, y1; exclusive ends)."""
    x0, y0, x1, y1 = box
    flat = [int(x0 <= x < x1 and y0 <= y < y1) for x in range(width) for y in range(height)]
    return {"size": [height, width], "counts": rle_string(rle_counts(flat))}


def make_pascal_context(out: Path, sizes: dict[str, tuple[int, int]], seed: int = 0) -> Path:
    """trainval_merged.json for the VOC2010 images in `sizes` ({id: (width, height)}).

    Per image 2-4 segments of Context classes (some overlapping, so the drawing order
    matters; some pixels left unlabelled, class 0), in file order, not grouped by image.
    """
    rng = random.Random(f"pascal_context:{seed}")
    phases = dict(VOC2010_IMAGES)
    images, segments = [], []
    for image_id in sorted(sizes):
        width, height = sizes[image_id]
        images.append(
            {
                "file_name": f"{image_id}.jpg",
                "phase": phases[image_id],
                "height": height,
                "width": width,
                "date_captured": "31-May-2015 17:44:04",
                "image_id": int(image_id.replace("_", "")),
                "annotations": [],
                "categories": [],
                "parts": [],
                "keypoints": [],
            }
        )
        for _ in range(rng.randrange(2, 5)):
            x0, y0 = rng.randrange(0, width - 8), rng.randrange(0, height - 8)
            box = (x0, y0, rng.randrange(x0 + 4, width + 1), rng.randrange(y0 + 4, height + 1))
            area = (box[2] - box[0]) * (box[3] - box[1])
            segments.append(
                {
                    "image_id": images[-1]["image_id"],
                    "category_id": rng.choice(CONTEXT_IDS),
                    "segmentation": _rle(width, height, box),
                    "area": area,
                    "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    "iscrowd": 0,
                    "parts": [],
                }
            )
    rng.shuffle(segments)
    for number, segment in enumerate(segments, start=1):
        segment["id"] = number
    categories = [
        {
            "category_id": cid,
            "name": name,
            "supercategory": "object" if index % 3 else "background",
            "onlysemantic": int(index % 3 == 0),
            "parts": [],
        }
        for index, (cid, name) in enumerate(zip(CONTEXT_IDS, CONTEXT_NAMES.split(), strict=True))
    ]
    data = {
        "info": {"description": "PASCAL in Detail (stand-in)", "version": "1.0", "year": 2017},
        "images": images,
        "annos_segmentation": segments,
        "annos_occlusion": [],
        "annos_boundary": [],
        "annos_joints": [],
        "categories": categories,
        "parts": [],
    }
    path = out / "trainval_merged.json"
    with staged(path) as tmp:
        tmp.write_text(json.dumps(data))
    return path


def make_voc2010(out: Path, seed: int = 0) -> dict[str, Path]:
    """VOCtrainval_03-May-2010.tar (no SegmentationContext) and its trainval_merged.json."""
    rng = random.Random(f"voc2010:{seed}")
    members, sizes = _voc_members("VOC2010", VOC2010_IMAGES, rng, segmentation=True)
    tar = _tar(out / "VOCtrainval_03-May-2010.tar", members, TAR_MTIME["VOC2010"])
    return {tar.name: tar, "trainval_merged.json": make_pascal_context(out, sizes, seed)}


# ---- COCO-Stuff: raw maps for the stand-in COCO 2017 images --------------------------------


def _coco_sizes(images_zip: Path) -> Iterator[tuple[str, tuple[int, int]]]:
    """(12-digit id, (width, height)) of each JPEG of a COCO images zip, in zip order."""
    with zipfile.ZipFile(images_zip) as zf:
        for info in zf.infolist():
            if info.filename.endswith(".jpg"):
                with zf.open(info) as f, Image.open(f) as image:
                    yield Path(info.filename).stem, image.size


def _stuff_map(rng: random.Random, size: tuple[int, int]) -> bytes:
    """A raw COCO-Stuff map: mode L, a few rectangles of raw class values, 255 unlabeled."""
    image = Image.new("L", size, rng.choice(COCO_STUFF_RAW[80:-1]))
    width, height = size
    for _ in range(rng.randrange(1, 4)):
        x0, y0 = rng.randrange(0, width - 4), rng.randrange(0, height - 4)
        box = (x0, y0, rng.randrange(x0 + 2, width + 1), rng.randrange(y0 + 2, height + 1))
        image.paste(rng.choice(COCO_STUFF_RAW), box)
    image.paste(255, (0, 0, width, 1))
    return _png(image)


def make_cocostuff(out: Path, coco_val: Path, coco_train: Path, n_train: int = 5) -> Path:
    """stuffthingmaps_trainval2017.zip: a map for every image of the stand-in val2017.zip and
    for the first `n_train` of train2017.zip; no top folder, `train2017/` and `val2017/`."""
    rng = random.Random("cocostuff:0")
    path = out / "stuffthingmaps_trainval2017.zip"
    train = list(_coco_sizes(coco_train))[:n_train]
    val = list(_coco_sizes(coco_val))
    with staged(path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for split, maps in (("train2017", train), ("val2017", val)):
            zf.writestr(_zipinfo(f"{split}/", ZIP_TIME_2017, zipfile.ZIP_STORED), b"")
            for stem, size in sorted(maps):
                info = _zipinfo(f"{split}/{stem}.png", ZIP_TIME_2017, zipfile.ZIP_STORED)
                zf.writestr(info, _stuff_map(rng, size))
    return path


# ---- ADE20K ----------------------------------------------------------------------------------


def make_ade20k(out: Path, seed: int = 0) -> Path:
    """ADEChallengeData2016.zip: images/ and annotations/ (0 = other, 1-150), each with
    training/ and validation/, plus the two text files at the top."""
    rng = random.Random(f"ade20k:{seed}")
    members: list[tuple[str, bytes]] = []
    names = {"training": "ADE_train", "validation": "ADE_val"}
    for split, count in ADE_IMAGES.items():
        for number in range(1, count + 1):
            stem = f"{names[split]}_{number:08d}"
            size = (rng.randrange(48, 97), rng.randrange(40, 81))
            label = Image.new("L", size, 0)
            for _ in range(3):
                x0, y0 = rng.randrange(0, size[0] - 4), rng.randrange(0, size[1] - 4)
                box = (
                    x0,
                    y0,
                    rng.randrange(x0 + 2, size[0] + 1),
                    rng.randrange(y0 + 2, size[1] + 1),
                )
                label.paste(rng.randrange(1, ADE_CLASSES + 1), box)
            members.append((f"images/{split}/{stem}.jpg", _jpeg(rng, *size, None)))
            members.append((f"annotations/{split}/{stem}.png", _png(label)))
    info = "Idx\tRatio\tTrain\tVal\tName\n" + "".join(
        f"{i}\t0.0100\t{i}\t{i}\tclass{i}\n" for i in range(1, ADE_CLASSES + 1)
    )
    members.append(("objectInfo150.txt", info.encode()))
    scenes = "".join(f"{name}_{n:08d} scene\n" for split, name in names.items() for n in
                     range(1, ADE_IMAGES[split] + 1))  # fmt: skip
    members.append(("sceneCategories.txt", scenes.encode()))
    ordered = _with_folders(sorted(members))
    return _write_zip(
        out / "ADEChallengeData2016.zip", "ADEChallengeData2016", ordered,
        date_time=ZIP_TIME_ADE, compress=zipfile.ZIP_STORED,
    )  # fmt: skip


def _with_folders(members: list[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    """The members with a folder entry ("name/", empty) before the first file of each folder."""
    made = set()
    for name, data in members:
        parts = name.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder not in made:
                made.add(folder)
                yield f"{folder}/", b""
        yield name, data


# ---- Cityscapes (account-only: the world's manual/ folder) --------------------------------


def _polygon(rng: random.Random, width: int, height: int) -> list[list[int]]:
    cx, cy = rng.randrange(width), rng.randrange(height)
    points = []
    for _ in range(rng.randrange(3, 7)):
        points.append(
            [
                min(width - 1, max(0, cx + rng.randrange(-width // 3, width // 3))),
                min(height - 1, max(0, cy + rng.randrange(-height // 3, height // 3))),
            ]
        )
    return points


def _cityscapes_polygons(rng: random.Random) -> bytes:
    """A *_gtFine_polygons.json: image size and objects in drawing order (later on top)."""
    width, height = CITYSCAPES_SIZE
    objects = [{"label": "road", "polygon": [[0, height // 2], [width - 1, height // 2],
                                             [width - 1, height - 1], [0, height - 1]]}]  # fmt: skip
    objects += [{"label": "sky", "polygon": [[0, 0], [width - 1, 0], [width - 1, 8], [0, 8]]}]
    for _ in range(rng.randrange(3, 7)):
        objects.append(
            {"label": rng.choice(CITYSCAPES_LABELS), "polygon": _polygon(rng, width, height)}
        )
    objects.append(
        {"label": "out of roi", "polygon": [[0, 0], [3, 0], [3, height - 1], [0, height - 1]]}
    )
    data = {"imgHeight": height, "imgWidth": width, "objects": objects}
    return json.dumps(data, indent=4).encode()


def _cityscapes_gray(rng: random.Random, values: list[int], mode: str = "L") -> bytes:
    """An 8-bit (labelIds) or 16-bit (instanceIds) PNG of one value."""
    image = Image.new(mode, CITYSCAPES_SIZE, rng.choice(values))
    return _png(image)


def make_cityscapes(out: Path, seed: int = 0) -> dict[str, Path]:
    """gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, as cityscapes-dataset.com
    serves them: no single top folder (gtFine/ or leftImg8bit/, license.txt, README)."""
    rng = random.Random(f"cityscapes:{seed}")
    gt: list[tuple[str, bytes]] = []
    left: list[tuple[str, bytes]] = []
    for split, cities in CITYSCAPES.items():
        for city, frames in cities.items():
            for sequence, frame in frames:
                stem = f"{city}_{sequence:06d}_{frame:06d}"
                base = f"gtFine/{split}/{city}/{stem}_gtFine"
                gt.append((f"{base}_polygons.json", _cityscapes_polygons(rng)))
                gt.append((f"{base}_labelIds.png", _cityscapes_gray(rng, [7, 8, 11])))
                gt.append((f"{base}_instanceIds.png", _cityscapes_gray(rng, [7, 26000], "I;16")))
                color = Image.new("RGBA", CITYSCAPES_SIZE, (128, 64, 128, 255))
                gt.append((f"{base}_color.png", _png(color)))
                photo = Image.frombytes("RGB", (8, 4), rng.randbytes(8 * 4 * 3))
                photo = photo.resize(CITYSCAPES_SIZE, Image.Resampling.BILINEAR)
                left.append((f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", _png(photo)))
    made = {}
    for name, members in (("gtFine_trainvaltest.zip", gt), ("leftImg8bit_trainvaltest.zip", left)):
        extra = [("README", b"The Cityscapes Dataset (stand-in).\n"),
                 ("license.txt", b"Cityscapes licence (stand-in).\n")]  # fmt: skip
        path = out / name
        with staged(path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
            for member, data in [*_with_folders(sorted(members)), *extra]:
                info = _zipinfo(member, ZIP_TIME_CITYSCAPES, zipfile.ZIP_STORED)
                zf.writestr(info, data)
        made[name] = path
    return made


def make_segmentation(
    out: Path, coco_val: Path | None = None, coco_train: Path | None = None
) -> dict[str, Path]:
    """Write the stand-in files into `out`; return {catalog file name: path}.

    `coco_val`, `coco_train`: the stand-in COCO 2017 image zips whose images the COCO-Stuff
    maps cover (default: val2017.zip and train2017.zip beside `out`, where the world's COCO
    generator, which runs first, writes them).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    coco_val = coco_val or out.parent / "val2017.zip"
    coco_train = coco_train or out.parent / "train2017.zip"
    voc2012 = make_voc2012(out)
    made = {voc2012.name: voc2012, **make_voc2010(out)}
    made["stuffthingmaps_trainval2017.zip"] = make_cocostuff(out, coco_val, coco_train)
    ade = make_ade20k(out)
    made[ade.name] = ade
    made.update(make_cityscapes(out))
    return made
