"""PASCAL-Part's `.mat` part annotations as the COCO json GLaMM opens (`pascal_part/train.json`).

A re-implementation of VLPart's converter (facebookresearch/VLPart tools/pascal_part_mat2json.py,
run as its datasets/README.md says: `--split train.txt`, the 93 categories, not `--only_base`),
rule for rule:

- the images are the ids of `VOC2010/ImageSets/Main/<split>` in file order, each read from
  `Annotations_Part/<id>.mat` (`anno`: `imname`, `objects`; an object: `class`, `class_ind`,
  `mask`, `parts`; a part: `part_name`, `mask`);
- an object's class `pottedplant` is `potted plant`; an object without parts is skipped;
- a part takes the first category of its object's class (in category order) whose part name,
  or its `abbr` (`liplate`, `pa`), is a substring of the part's name (`lwing` -> wing,
  `lfpa` -> paw); a part matching none is left out;
- each kept part is an annotation: its mask as compressed RLE (pycocotools' `encode` of the
  mask, Fortran order), `bbox` [x0, y0, x1 - x0, y1 - y0] of its pixels (no +1), `area` the
  bbox's w*h, `iscrowd` 0, `image_id` the id's digits (`2008_000002` -> 2008000002), `id`
  counting from 0 over the whole file;
- an image is kept only if one of its parts was kept; its height and width are the shape of
  the last part mask read (512x512 when none was: VLPart's default);
- the file is `{"categories", "images", "annotations"}` with json.dump's separators, so the
  output is byte for byte what VLPart writes.

Where VLPart would crash (a listed id without its `.mat`, a kept part with an empty mask),
this is an error naming the file. Masks are read as nonzero = part (they are 0/1 in the
release).

Streaming over a process pool with resume (vlprep.segmaps' machinery): each image's result is
a small fragment `work/tree/fragments/<id>.json` written atomically, a killed run keeps them,
`work/stamp.json` discards them when the inputs change; the json is then written
incrementally (one fragment at a time, never the whole list in memory) under a temporary name
and `dest/train.json` appears only when it is complete.
"""

import json
import os
import re
import time
from functools import partial
from pathlib import Path
from typing import Any

from vlprep.atomic import remove_path
from vlprep.errors import ConversionError
from vlprep.segmaps import (
    _fingerprint,
    _prepare_work,
    _publish,
    _report,
    _run_pool,
    _tmp_name,
    _write_text,
)

# VLPart pascal_part_mat2json.py PASCAL_PART_CATEGORIES (the 93 used for train.json).
_PARTS = {
    "aeroplane": "body wing tail wheel",
    "bicycle": "wheel handlebar saddle",
    "bird": "beak head eye leg foot wing neck tail torso",
    "bottle": "body cap",
    "bus": "license plate/liplate,headlight,door,mirror,window,wheel",
    "car": "license plate/liplate,headlight,door,mirror,window,wheel",
    "cat": "head leg ear eye paw/pa neck nose tail torso",
    "cow": "head leg ear eye neck horn muzzle tail torso",
    "dog": "head leg ear eye paw/pa neck nose muzzle tail torso",
    "horse": "head leg ear eye neck muzzle tail torso",
    "motorbike": "wheel handlebar headlight saddle",
    "person": "hair head ear eye nose neck mouth arm hand leg foot torso",
    "potted plant": "plant pot",
    "sheep": "head leg ear eye neck horn muzzle tail torso",
}


def _categories() -> list[dict[str, Any]]:
    categories: list[dict[str, Any]] = []
    for obj, parts in _PARTS.items():
        for part in parts.split("," if "," in parts else " "):
            name, _, abbr = part.partition("/")
            category: dict[str, Any] = {"id": len(categories) + 1, "name": f"{obj}:{name}"}
            if abbr:
                category["abbr"] = f"{obj}:{abbr}"
            categories.append(category)
    return categories


CATEGORIES = _categories()
assert len(CATEGORIES) == 93
# class -> [(category id, the name matched as a substring)], in category order
_MATCH: dict[str, list[tuple[int, str]]] = {}
for _cat in CATEGORIES:
    _obj, _part = _cat.get("abbr", _cat["name"]).split(":")
    _MATCH.setdefault(_cat["name"].split(":")[0], []).append((_cat["id"], _part))

DEFAULT_SIZE = (512, 512)  # VLPart's height, width of an image no part mask was read for
IMAGE_ID = re.compile(r"^\d{4}_\d{6}$")
OUTPUT = "train.json"
FRAGMENTS = "fragments"


# ---- RLE (pycocotools' maskApi.c rleEncode + rleToString, without pycocotools) --------------


def rle_string(counts: list[int]) -> str:
    """pycocotools' compressed RLE string (maskApi.c rleToString): each count, from the fourth
    on minus the one two before it, in 5-bit groups with a continuation bit, + 48."""
    out = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_encode(mask) -> dict[str, Any]:
    """{"size": [h, w], "counts": str} of a 2-D mask (nonzero = in), as pycocotools'
    `encode(np.asfortranarray(mask[:, :, None]))[0]` with counts decoded: runs over the
    column-major pixels, starting with a (possibly empty) run of 0s."""
    import numpy as np

    height, width = mask.shape
    flat = (np.asarray(mask).T != 0).ravel()  # column-major order
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], changes, [flat.size]))
    runs = np.diff(edges).tolist()
    if flat.size and flat[0]:
        runs.insert(0, 0)
    return {"size": [int(height), int(width)], "counts": rle_string(runs)}


# ---- one image -------------------------------------------------------------------------------


def _field(record, name: str, where: str):
    try:
        return record[name]
    except (ValueError, KeyError, IndexError) as err:
        raise ConversionError(
            f"{where}: no field {name!r}: not a PASCAL-Part annotation (anno.objects with "
            "class/mask/parts, parts with part_name/mask); the part annotations tar is "
            "damaged: delete downloads/pascal_part_annotations and extracted/"
            "pascal_part_annotations and run again"
        ) from err


def _text(value) -> str:
    """A MATLAB char array as loadmat gives it (an array holding one str)."""
    return str(value[0]) if getattr(value, "size", 1) else ""


def convert_image(mat_path: Path, image_id: str) -> dict[str, Any]:
    """{"image": COCO image record or None (dropped: no part kept), "anns": [...] without
    ids} of one `.mat`, by VLPart's rules."""
    import numpy as np
    import scipy.io
    from scipy.io.matlab import MatReadError

    where = str(mat_path)
    try:
        mat = scipy.io.loadmat(str(mat_path))
    except FileNotFoundError:
        raise ConversionError(
            f"{mat_path}: missing, but {image_id} is in the split list: the part annotations "
            "and the VOC2010 tar do not match (check downloads/pascal_part_annotations and "
            "downloads/voc2010)"
        ) from None
    except (OSError, ValueError, TypeError, MatReadError) as err:
        raise ConversionError(
            f"{mat_path}: cannot read this .mat ({err}); delete downloads/"
            "pascal_part_annotations and extracted/pascal_part_annotations and run again"
        ) from err
    if "anno" not in mat:
        raise ConversionError(f"{mat_path}: no 'anno' struct: not a PASCAL-Part annotation")
    anno = mat["anno"][0][0]
    objects = _field(anno, "objects", where)
    objects = objects[0] if objects.size else []
    numeric_id = int(image_id[:4] + image_id[5:])
    height, width = DEFAULT_SIZE
    anns = []
    for index, obj in enumerate(objects):
        name = _text(_field(obj, "class", where))
        name = "potted plant" if name == "pottedplant" else name
        parts = _field(obj, "parts", where)
        if len(parts) < 1:
            continue
        candidates = _MATCH.get(name, [])
        for part in parts[0]:
            part_name = _text(_field(part, "part_name", where))
            mask = np.asarray(_field(part, "mask", where))
            height, width = mask.shape
            for category_id, match in candidates:
                if match in part_name:
                    ys, xs = np.nonzero(mask)
                    if xs.size == 0:
                        raise ConversionError(
                            f"{mat_path}: object {index} ({name}), part {part_name!r}: an "
                            "empty mask (VLPart's converter stops here too)"
                        )
                    x0, y0, x1, y1 = (float(v) for v in (xs.min(), ys.min(), xs.max(), ys.max()))
                    box = [x0, y0, x1 - x0, y1 - y0]
                    anns.append(
                        {
                            "segmentation": rle_encode(mask),
                            "bbox": box,
                            "category_id": category_id,
                            "image_id": numeric_id,
                            "iscrowd": 0,
                            "area": box[2] * box[3],
                        }
                    )
                    break
    image = None
    if anns:
        image = {
            "id": numeric_id,
            "file_name": f"{image_id}.jpg",
            "height": int(height),
            "width": int(width),
        }
    return {"image": image, "anns": anns}


def _batch(ann_dir: str, fragments: str, ids: list[str]) -> int:
    for image_id in ids:
        result = convert_image(Path(ann_dir) / f"{image_id}.mat", image_id)
        _write_text(Path(fragments) / f"{image_id}.json", json.dumps(result))
    return len(ids)


# ---- the whole split -------------------------------------------------------------------------


def read_split(split_file: Path) -> list[str]:
    """The ids of a VOC split list (whitespace-separated, as np.loadtxt reads them)."""
    try:
        ids = split_file.read_text().split()
    except OSError as err:
        raise ConversionError(f"{split_file}: cannot read the split list ({err})") from err
    bad = [i for i in ids if not IMAGE_ID.match(i)]
    if bad:
        raise ConversionError(
            f"{split_file}: {bad[0]!r} is not a VOC image id (YYYY_NNNNNN); the VOC2010 tar is "
            "damaged: delete downloads/voc2010 and extracted/voc2010"
        )
    if len(set(ids)) != len(ids):
        raise ConversionError(f"{split_file}: an id is listed twice")
    return ids


def _write_json(final: Path, fragments: Path, ids: list[str]) -> tuple[int, int]:
    """Write the COCO json from the fragments, one at a time (two passes: images, then
    annotations with their ids), under a temporary name renamed to `final`."""
    tmp = _tmp_name(final)
    images = anns = 0
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            out.write('{"categories": ' + json.dumps(CATEGORIES) + ', "images": [')
            for image_id in ids:
                image = json.loads((fragments / f"{image_id}.json").read_text())["image"]
                if image is not None:
                    out.write((", " if images else "") + json.dumps(image))
                    images += 1
            out.write('], "annotations": [')
            for image_id in ids:
                for ann in json.loads((fragments / f"{image_id}.json").read_text())["anns"]:
                    out.write((", " if anns else "") + json.dumps({"id": anns, **ann}))
                    anns += 1
            out.write("]}")
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)
    return images, anns


def pascal_part(
    ann_dir: str | Path,
    split_file: str | Path,
    dest: str | Path,
    *,
    work: str | Path,
    processes: int = 1,
) -> dict[str, Any]:
    """Convert the `.mat` files of `ann_dir` (Annotations_Part/) for the ids of `split_file`
    into `dest/train.json` (`dest` made whole at the end).

    Returns {"kind", "dest", "listed", "images", "dropped", "annotations", "written",
    "reused", "seconds"}."""
    started = time.monotonic()
    ann_dir, split_file, dest, work = Path(ann_dir), Path(split_file), Path(dest), Path(work)
    if not ann_dir.is_dir():
        raise ConversionError(f"{ann_dir}: folder of PASCAL-Part .mat files not found")
    ids = read_split(split_file)
    if not ids:
        raise ConversionError(f"{split_file}: no image ids in the split list")
    missing = [i for i in ids if not (ann_dir / f"{i}.mat").is_file()]
    if missing:
        raise ConversionError(
            f"{ann_dir}: no .mat for {len(missing)} id(s) of {split_file} (first: {missing[0]}): "
            "the part annotations and the VOC2010 tar do not match (check downloads/"
            "pascal_part_annotations and downloads/voc2010)"
        )
    inputs = [(split_file.name, split_file)] + [(i, ann_dir / f"{i}.mat") for i in ids]
    tree = _prepare_work(work, "pascal_part", _fingerprint(inputs))
    final = tree / OUTPUT
    fragments = tree / FRAGMENTS
    counts = work / "counts.json"
    todo: list[str] = []
    if not final.exists():
        fragments.mkdir(exist_ok=True)
        done = set(os.listdir(fragments))
        todo = [i for i in ids if f"{i}.json" not in done]
        worker = partial(_batch, str(ann_dir), str(fragments))
        _run_pool(worker, todo, len(todo), processes, "pascal-part", "image")
        images, anns = _write_json(final, fragments, ids)
        _write_text(counts, json.dumps([images, anns]))
    remove_path(fragments)
    try:
        images, anns = json.loads(counts.read_text())
    except (OSError, ValueError):  # a run killed between the json and its counts
        images = anns = -1
    remove_path(counts)
    _publish(work, tree, dest)
    return _report(
        "pascal_part",
        dest,
        started,
        listed=len(ids),
        images=images,
        dropped=len(ids) - images,
        annotations=anns,
        written=len(todo),
        reused=len(ids) - len(todo),
    )
