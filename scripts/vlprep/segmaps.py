"""Label maps of COSMOS's segmentation benchmarks, written as their consumers' converters write them.

Three conversions, each a re-implementation of an upstream converter's semantics (cited where
restated), run over a process pool with a progress bar and bounded memory:

- `coco_stuff_val`: COCO-Stuff's raw val maps (0-181, 255) -> `<id>_labelTrainIds.png`
  (COCO-Stuff 171: mmseg tools/dataset_converters/coco_stuff164k.py) and
  `<id>_instanceTrainIds.png` (COCO-Object 0-80: COSMOS src/training/seg_configs/
  convert_coco_object.py), both from one decode of each map.
- `pascal_context`: trainval_merged.json -> `SegmentationClassContext/<id>.png` (0-59) and the
  sorted split lists (mmseg tools/dataset_converters/pascal_context.py on the Detail API's
  `getMask`, ccvl/detail-api PythonAPI/detail/__init__.py).
- `cityscapes`: `*_gtFine_polygons.json` -> `*_gtFine_labelTrainIds.png` (cityscapesscripts
  preparation/json2labelImg.py `createLabelImage`, as mmseg's cityscapes.py calls it).

Resume: every output file is written under a temporary name in `work/tree` and renamed when
complete, so a killed run leaves only whole files at final names and the next run skips them.
`work/stamp.json` records what the inputs were (names, sizes, mtimes); if they changed, the work
is started afresh. `dest` appears only when everything is done: `work/tree` is renamed to it
(copied into a hidden sibling and renamed where `work` is on another filesystem).

A value the source's table lacks (a raw id, a category, a polygon label) is an error naming the
file: converting it to something would silently change the benchmark.
"""

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from vlprep.atomic import TMP_MARK, remove_path, replace, staged
from vlprep.errors import ConversionError
from vlprep.progress import bar

log = logging.getLogger(__name__)

VERSION = 1  # bump when an output changes for the same input: stale work is then discarded
BATCH = 16  # files per pool task: amortises the round trip, keeps the pool balanced

# PNG settings of every map we write. Pixels are what consumers read (mmseg decodes with Pillow
# or cv2, either way the same array); zlib's RLE strategy fits label maps (runs of one value):
# measured on 640x480 blob maps, about 1.6x faster to write than Pillow's default strategy
# and about 6% smaller.
PNG_OPTIONS = {"compress_type": 3}  # zlib.Z_RLE


# ---------------------------------------------------------------------------------------------
# Tables

# COCO-Stuff raw ids that mmseg's `clsID_to_trID` lacks (coco_stuff164k.py:15-198): the ten
# unused COCO thing ids (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, minus one) and 90 (id 91,
# unused); every other raw id 0-181 maps to the next train id in order, 255 stays 255.
COCO_STUFF_ABSENT = frozenset({11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90})
COCO_STUFF_TRAIN_ID = {
    raw: train for train, raw in enumerate(r for r in range(182) if r not in COCO_STUFF_ABSENT)
} | {255: 255}
# COCO-Object: COSMOS convert_coco_object.py:195-198 rewrites the same table as `v + 1`, then
# `0` for every raw id > 90 (stuff, and 255): things 1-80, everything else background 0.
COCO_OBJECT_TRAIN_ID = {
    raw: 0 if raw > 90 else train + 1 for raw, train in COCO_STUFF_TRAIN_ID.items()
}


def _lut(table: dict[int, int]) -> list[int]:
    """A 256-entry lookup for Image.point; ids the table lacks are rejected before it is used."""
    return [table.get(value, 0) for value in range(256)]


STUFF_LUT = _lut(COCO_STUFF_TRAIN_ID)
OBJECT_LUT = _lut(COCO_OBJECT_TRAIN_ID)

# PASCAL-Context: mmseg pascal_context.py:11-17 `_mapping`, the 60 category ids (0 = no
# annotation) sorted; a pixel's output is its category's index there (np.digitize with
# right=True on exact members, l.22-27), and a category outside it fails the assert (l.24-25).
CONTEXT_IDS = sorted(
    [
        0, 2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159, 416, 33,
        162, 420, 454, 295, 296, 427, 44, 45, 46, 308, 59, 440, 445, 31, 232, 65, 354, 424, 68,
        326, 72, 458, 34, 207, 80, 355, 85, 347, 220, 349, 360, 98, 187, 104, 105, 366, 189, 368,
        113, 115,
    ]
)  # fmt: skip
CONTEXT_INDEX = {category: index for index, category in enumerate(CONTEXT_IDS)}

# Cityscapes: (name, id, trainId) of cityscapesscripts helpers/labels.py:62-99.
CITYSCAPES_LABELS = [
    ("unlabeled", 0, 255), ("ego vehicle", 1, 255), ("rectification border", 2, 255),
    ("out of roi", 3, 255), ("static", 4, 255), ("dynamic", 5, 255), ("ground", 6, 255),
    ("road", 7, 0), ("sidewalk", 8, 1), ("parking", 9, 255), ("rail track", 10, 255),
    ("building", 11, 2), ("wall", 12, 3), ("fence", 13, 4), ("guard rail", 14, 255),
    ("bridge", 15, 255), ("tunnel", 16, 255), ("pole", 17, 5), ("polegroup", 18, 255),
    ("traffic light", 19, 6), ("traffic sign", 20, 7), ("vegetation", 21, 8),
    ("terrain", 22, 9), ("sky", 23, 10), ("person", 24, 11), ("rider", 25, 12),
    ("car", 26, 13), ("truck", 27, 14), ("bus", 28, 15), ("caravan", 29, 255),
    ("trailer", 30, 255), ("train", 31, 16), ("motorcycle", 32, 17), ("bicycle", 33, 18),
    ("license plate", -1, -1),
]  # fmt: skip
CITYSCAPES_NAME = {name: (label_id, train_id) for name, label_id, train_id in CITYSCAPES_LABELS}


# ---------------------------------------------------------------------------------------------
# Shared machinery: work folder, atomic files, the pool


def _tmp_name(final: Path) -> Path:
    # atomic.py's naming, so a leftover is recognisable (and removed by _clean_tmp)
    return final.parent / f".{final.name}{TMP_MARK}{os.getpid()}"


def _save_png(image, final: Path) -> None:
    """Write `image` as PNG under a temporary name beside `final`, then rename it there."""
    tmp = _tmp_name(final)
    try:
        image.save(tmp, "PNG", **PNG_OPTIONS)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)


def _write_text(final: Path, text: str) -> None:
    tmp = _tmp_name(final)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, final)


def _fingerprint(entries: Iterable[tuple[str, Path]]) -> str:
    """A digest of (name, size, mtime) of the inputs: changed inputs invalidate finished work."""
    digest = hashlib.sha256()
    for name, path in entries:
        st = path.stat()
        digest.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _prepare_work(work: Path, kind: str, fingerprint: str) -> Path:
    """`work/tree`, kept from an earlier run of the same conversion on the same inputs, else
    emptied; temporaries a killed run left inside it are removed."""
    work.mkdir(parents=True, exist_ok=True)
    stamp_path = work / "stamp.json"
    stamp = {"kind": kind, "version": VERSION, "inputs": fingerprint}
    try:
        old = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        old = None
    if old != stamp:
        for name in ("tree", "index.sqlite", "stamp.json"):
            remove_path(work / name)
        for leftover in work.iterdir():
            if TMP_MARK in leftover.name:
                remove_path(leftover)
        _write_text(stamp_path, json.dumps(stamp))
    tree = work / "tree"
    tree.mkdir(exist_ok=True)
    _clean_tmp(tree)
    return tree


def _clean_tmp(tree: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in filenames + dirnames:
            if TMP_MARK in name:
                remove_path(Path(dirpath) / name)


def _publish(work: Path, tree: Path, dest: Path) -> None:
    """Move the finished `tree` to `dest` as a whole, then drop the rest of `work`."""
    _clean_tmp(tree)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        replace(tree, dest)
    except OSError as err:
        if err.errno != errno.EXDEV:  # work is on another filesystem: copy, then rename
            raise
        with staged(dest, directory=True) as tmp:
            shutil.copytree(tree, tmp, dirs_exist_ok=True)
        shutil.rmtree(tree)
    for name in ("index.sqlite", "stamp.json"):
        remove_path(work / name)
    with contextlib.suppress(OSError):  # not empty: someone else's files; leave them
        work.rmdir()


def _batches(items: Iterable[Any], size: int = BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run_pool(
    worker: Callable[[list[Any]], int],
    items: Iterable[Any],
    total: int,
    processes: int,
    desc: str,
    unit: str,
) -> None:
    """Run `worker` over batches of `items` in `processes` forked workers; at most 2 batches
    per worker are in flight, so memory does not grow with the number of items. The first
    failure stops the run (finished files stay for the next one) and is raised."""
    processes = max(1, processes)
    with (
        ProcessPoolExecutor(max_workers=processes, mp_context=get_context("fork")) as pool,
        bar(total, desc, unit) as progress,
    ):
        pending: list[Future] = []
        try:
            for batch in _batches(items):
                pending.append(pool.submit(worker, batch))
                while len(pending) > 2 * processes:
                    progress.update(pending.pop(0).result())
            while pending:
                progress.update(pending.pop(0).result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _report(kind: str, dest: Path, started: float, **counts: int) -> dict[str, Any]:
    report = {"kind": kind, "dest": str(dest), **counts}
    report["seconds"] = round(time.monotonic() - started, 3)
    log.info("%s", json.dumps(report))
    return report


# ---------------------------------------------------------------------------------------------
# COCO-Stuff / COCO-Object

COCO_RAW = re.compile(r"^\d{12}\.png$")
STUFF_SUFFIX = "_labelTrainIds.png"
OBJECT_SUFFIX = "_instanceTrainIds.png"


def _open_map(path: Path):
    """The map as an 8-bit single-channel Pillow image, decoded completely."""
    from PIL import Image

    from vlprep.images import truncated_images

    try:
        # strict whatever the process set: a cut map must fail, not be padded with zeros
        with truncated_images(False), Image.open(path) as opened:
            opened.load()  # the pixels stay in memory once the file is closed
            image = opened
            if image.mode == "P":
                # mmseg's np.array(Image.open(...)) of a palette image is its indices
                image = Image.frombytes("L", image.size, image.tobytes())
    except (OSError, SyntaxError, ValueError) as err:
        raise ConversionError(
            f"{path}: cannot decode this PNG ({err}); the archive it came from is damaged: "
            "delete it and run again to download it anew"
        ) from err
    if image.mode != "L":
        raise ConversionError(f"{path}: a {image.mode} image, not an 8-bit single-channel map")
    return image


def _coco_batch(raw_dir: str, tree: str, names: list[str]) -> int:
    for name in names:
        _coco_one(Path(raw_dir) / name, Path(tree))
    return len(names)


def _coco_one(src: Path, tree: Path) -> None:
    image = _open_map(src)
    histogram = image.histogram()
    bad = [v for v in range(256) if histogram[v] and v not in COCO_STUFF_TRAIN_ID]
    if bad:
        raise ConversionError(
            f"{src}: pixel values {bad} are not COCO-Stuff raw ids (mmseg's coco_stuff164k.py "
            "table has 0-181 without the unused thing ids, and 255)"
        )
    stem = src.name[: -len(".png")]
    _save_png(image.point(STUFF_LUT), tree / f"{stem}{STUFF_SUFFIX}")
    _save_png(image.point(OBJECT_LUT), tree / f"{stem}{OBJECT_SUFFIX}")


def coco_stuff_val(
    raw_dir: str | Path, dest: str | Path, *, work: str | Path, processes: int = 1
) -> dict[str, Any]:
    """Convert every raw COCO-Stuff map `<12 digits>.png` of `raw_dir` into `dest` (made whole
    at the end): `<id>_labelTrainIds.png` (0-170, 255) and `<id>_instanceTrainIds.png` (0-80).

    Returns {"kind", "dest", "maps", "written", "reused", "seconds"}."""
    started = time.monotonic()
    raw_dir, dest, work = Path(raw_dir), Path(dest), Path(work)
    if not raw_dir.is_dir():
        raise ConversionError(f"{raw_dir}: folder of COCO-Stuff raw maps not found")
    names = sorted(n for n in os.listdir(raw_dir) if COCO_RAW.match(n))
    if not names:
        raise ConversionError(f"{raw_dir}: no raw COCO-Stuff maps (<12 digits>.png) in it")
    tree = _prepare_work(work, "coco_stuff_val", _fingerprint((n, raw_dir / n) for n in names))
    done = set(os.listdir(tree))
    todo = [
        n
        for n in names
        if not (f"{n[:-4]}{STUFF_SUFFIX}" in done and f"{n[:-4]}{OBJECT_SUFFIX}" in done)
    ]
    worker = partial(_coco_batch, str(raw_dir), str(tree))
    _run_pool(worker, todo, len(todo), processes, "coco-stuff maps", "map")
    _publish(work, tree, dest)
    return _report(
        "coco_stuff_val",
        dest,
        started,
        maps=len(names),
        written=len(todo),
        reused=len(names) - len(todo),
    )


# ---------------------------------------------------------------------------------------------
# PASCAL-Context
#
# trainval_merged.json is one large object; its `annos_segmentation` list holds an RLE string
# per annotation. It is streamed (ijson) into an SQLite index in `work`, not held: each worker
# then reads one image's annotations in file order. SQLite rather than a file per image: the
# Detail API's dict semantics (a repeated annotation id keeps its first position but takes the
# last record, __init__.py:95-96,142-151) are one upsert, lookups by image are an index, and
# ~10,000 images make one file instead of ten thousand.

CONTEXT_FOLDER = "SegmentationClassContext"
CONTEXT_SPLITS = "ImageSets/SegmentationContext"
CONTEXT_PHASES = ("train", "val")  # mmseg converts Detail(json, ..., 'train') and 'val' (l.58-62)
JPG_NAME = re.compile(r"^[^/\\]+\.jpg$")
INSERTS = 2000  # rows per executemany while indexing


def _json_items(merged_json: Path, prefix: str) -> Iterator[dict]:
    import ijson

    try:
        with open(merged_json, "rb") as f:
            yield from ijson.items(f, prefix)
    except ijson.JSONError as err:
        raise ConversionError(
            f"{merged_json}: not valid JSON ({err}); the download is damaged: delete it and "
            "run again"
        ) from err


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _image_row(merged_json: Path, img: Any) -> tuple:
    try:
        row = (img["image_id"], img["file_name"], img["phase"], img["height"], img["width"])
    except (KeyError, TypeError) as err:
        raise ConversionError(
            f"{merged_json}: an entry of `images` lacks {err}: {img!r:.200}"
        ) from err
    if not (all(map(_is_int, (row[0], row[3], row[4]))) and isinstance(row[1], str)):
        raise ConversionError(f"{merged_json}: malformed entry of `images`: {img!r:.200}")
    return row


def _ann_row(merged_json: Path, seq: int, ann: Any) -> tuple:
    where = f"{merged_json}: annotation {ann.get('id') if isinstance(ann, dict) else ann!r:.80}"
    try:
        seg = ann["segmentation"]
        size = seg["size"]
        row = (ann["id"], seq, ann["image_id"], ann["category_id"], seg["counts"], *size)
    except (KeyError, TypeError, ValueError) as err:
        raise ConversionError(
            f"{where}: not a segmentation annotation with an RLE {{size, counts}} as the Detail "
            f"API's getMask decodes ({type(err).__name__}: {err})"
        ) from err
    if not (all(map(_is_int, row[:4] + row[5:])) and len(row) == 7 and isinstance(row[4], str)):
        raise ConversionError(
            f"{where}: expected integer ids, `size` [height, width] and compressed RLE "
            f"`counts` (a string; detail/_mask.pyx _frString decodes nothing else)"
        )
    return row


def _build_index(merged_json: Path, final: Path) -> None:
    """Stream the images and segmentation annotations into `final` (SQLite), made whole."""
    tmp = _tmp_name(final)
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    try:
        db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE img (image_id INTEGER PRIMARY KEY, file_name TEXT, phase TEXT,
                              height INTEGER, width INTEGER);
            CREATE TABLE ann (id INTEGER PRIMARY KEY, seq INTEGER, image_id INTEGER,
                              category_id INTEGER, counts TEXT, h INTEGER, w INTEGER);
            """
        )
        # a repeated image_id: the last record wins, as in __init__.py:93-94
        upsert_img = (
            "INSERT INTO img VALUES (?,?,?,?,?) ON CONFLICT(image_id) DO UPDATE SET "
            "file_name=excluded.file_name, phase=excluded.phase, height=excluded.height, "
            "width=excluded.width"
        )
        upsert_ann = (
            "INSERT INTO ann VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
            "image_id=excluded.image_id, category_id=excluded.category_id, "
            "counts=excluded.counts, h=excluded.h, w=excluded.w"
        )
        images = (_image_row(merged_json, img) for img in _json_items(merged_json, "images.item"))
        for rows in _batches(images, INSERTS):
            db.executemany(upsert_img, rows)
        anns = (
            _ann_row(merged_json, seq, ann)
            for seq, ann in enumerate(_json_items(merged_json, "annos_segmentation.item"))
        )
        for rows in _batches(anns, INSERTS):
            db.executemany(upsert_ann, rows)
        db.execute("CREATE INDEX ann_image ON ann (image_id, seq)")
        _check_index(merged_json, db)
        db.commit()
    except BaseException:
        db.close()
        tmp.unlink(missing_ok=True)
        raise
    db.close()
    os.replace(tmp, final)


def _check_index(merged_json: Path, db: sqlite3.Connection) -> None:
    if not db.execute("SELECT 1 FROM img LIMIT 1").fetchone():
        raise ConversionError(
            f"{merged_json}: no `images`: not PASCAL-Context's trainval_merged.json"
        )
    orphan = db.execute(
        "SELECT id, image_id FROM ann WHERE image_id NOT IN (SELECT image_id FROM img) LIMIT 1"
    ).fetchone()
    if orphan:  # the Detail API fails on it too (KeyError, __init__.py:143)
        raise ConversionError(
            f"{merged_json}: annotation {orphan[0]} names image {orphan[1]}, absent from `images`"
        )
    phases = ",".join(f"'{p}'" for p in CONTEXT_PHASES)
    known = ",".join(map(str, CONTEXT_IDS))
    unknown = db.execute(
        f"SELECT a.id, i.file_name, a.category_id FROM ann a JOIN img i USING (image_id) "
        f"WHERE i.phase IN ({phases}) AND a.category_id NOT IN ({known}) LIMIT 1"
    ).fetchone()
    if unknown:  # mmseg's converter asserts the same (pascal_context.py:24-25)
        raise ConversionError(
            f"{merged_json}: annotation {unknown[0]} of {unknown[1]} has category "
            f"{unknown[2]}, not one of PASCAL-Context's 60 (mmseg pascal_context.py _mapping)"
        )
    for file_name, phase in db.execute(
        f"SELECT file_name, phase FROM img WHERE phase IN ({phases})"
    ):
        if not JPG_NAME.match(file_name):
            raise ConversionError(
                f"{merged_json}: image file_name {file_name!r} ({phase}) is not a plain `<id>.jpg`"
            )
    twice = db.execute(
        f"SELECT file_name FROM img WHERE phase IN ({phases}) GROUP BY file_name "
        "HAVING COUNT(*) > 1 LIMIT 1"
    ).fetchone()
    if twice:
        raise ConversionError(f"{merged_json}: two images are named {twice[0]}")


def rle_counts(counts: str) -> "np.ndarray":  # noqa: F821 - numpy is imported lazily
    """The run lengths of a COCO-style compressed RLE string, as the Detail API reads them
    (common/maskApi.c rleFrString, identical to pycocotools'): 6-bit chunks from '0', least
    significant first, 0x20 = more follows, 0x10 in the last chunk = negative, and from the
    fourth count on each is a delta to the count two before. ValueError if malformed."""
    import numpy as np

    raw = np.frombuffer(counts.encode("ascii", "replace"), np.uint8).astype(np.int64) - 48
    if raw.size == 0:
        return np.zeros(0, np.int64)
    if raw.min() < 0 or raw.max() > 63:
        raise ValueError("characters outside '0'..'o'")
    more = (raw & 0x20) != 0
    if more[-1]:
        raise ValueError("the last count is cut off")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    position = np.arange(raw.size) - np.repeat(starts, ends - starts + 1)
    if position.max() > 11:
        raise ValueError("a count longer than 64 bits")
    values = np.add.reduceat((raw & 0x1F) << (5 * position), starts)
    negative = (raw[ends] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * (position[ends][negative] + 1))
    # cnts[m] += cnts[m-2] for m > 2 (maskApi.c:227): running sums of each parity from m=1, 2
    values[1::2] = np.cumsum(values[1::2])
    values[2::2] = np.cumsum(values[2::2])
    return values


_DB: tuple[int, str, sqlite3.Connection] | None = None


def _db(path: str) -> sqlite3.Connection:
    """This process's read-only connection (a forked worker must not reuse its parent's)."""
    global _DB
    if _DB is None or _DB[0] != os.getpid() or _DB[1] != path:
        _DB = (os.getpid(), path, sqlite3.connect(f"file:{path}?mode=ro", uri=True))
    return _DB[2]


def _context_batch(db_path: str, folder: str, merged_json: str, images: list[tuple]) -> int:
    for image in images:
        _context_one(_db(db_path), Path(folder), merged_json, *image)
    return len(images)


def _context_one(
    db: sqlite3.Connection, folder: Path, merged_json: str, image_id: int, file_name: str,
    height: int, width: int,
) -> None:  # fmt: skip
    import numpy as np
    from PIL import Image

    # getMask(img): every annotation of the image in annos_segmentation order, each painting
    # its category over the pixels of its mask (__init__.py:348-357); then mmseg's digitize to
    # the category's index among the 60 (pascal_context.py:22-28). Painting the index directly
    # is the same, as every painted category is one of the 60 (checked while indexing).
    flat = np.zeros(height * width, np.uint8)  # column-major, the order of RLE runs
    rows = db.execute(
        "SELECT id, category_id, counts, h, w FROM ann WHERE image_id = ? ORDER BY seq",
        (image_id,),
    )
    for ann_id, category, counts, h, w in rows:
        where = f"{merged_json}: annotation {ann_id} of {file_name}"
        if (h, w) != (height, width):
            raise ConversionError(f"{where}: mask size {h}x{w}, image size {height}x{width}")
        try:
            runs = rle_counts(counts)
        except ValueError as err:
            raise ConversionError(f"{where}: malformed RLE counts ({err})") from err
        if runs.size and (runs.min() < 0 or runs.sum() != height * width):
            raise ConversionError(f"{where}: RLE runs do not cover its {height}x{width} pixels")
        # runs alternate 0s and 1s, starting with 0s (maskApi.c rleDecode)
        ones = np.repeat((np.arange(runs.size) & 1).astype(np.bool_), runs)
        flat[ones] = CONTEXT_INDEX[category]
    label = np.ascontiguousarray(flat.reshape(width, height).T)
    _save_png(Image.fromarray(label), folder / file_name.replace("jpg", "png"))


def pascal_context(
    merged_json: str | Path, dest: str | Path, *, work: str | Path, processes: int = 1
) -> dict[str, Any]:
    """From PASCAL-Context's trainval_merged.json, write `dest/SegmentationClassContext/<id>.png`
    (0-59, 0 = background) for the train and val images and
    `dest/ImageSets/SegmentationContext/{train,val}.txt` (sorted ids); `dest` made whole.

    Returns {"kind", "dest", "images", "train", "val", "written", "reused", "seconds"}."""
    started = time.monotonic()
    merged_json, dest, work = Path(merged_json), Path(dest), Path(work)
    if not merged_json.is_file():
        raise ConversionError(f"{merged_json}: PASCAL-Context's trainval_merged.json not found")
    tree = _prepare_work(work, "pascal_context", _fingerprint([(merged_json.name, merged_json)]))
    index = work / "index.sqlite"
    if not index.exists():
        log.info("%s: indexing the annotations into %s", merged_json, index)
        _build_index(merged_json, index)
    folder = tree / CONTEXT_FOLDER
    folder.mkdir(exist_ok=True)
    done = set(os.listdir(folder))
    phases = ",".join(f"'{p}'" for p in CONTEXT_PHASES)
    db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        listed = db.execute(
            f"SELECT image_id, file_name, height, width, phase FROM img WHERE phase IN ({phases})"
        ).fetchall()
    finally:
        db.close()
    todo = [row[:4] for row in listed if row[1].replace("jpg", "png") not in done]
    worker = partial(_context_batch, str(index), str(folder), str(merged_json))
    _run_pool(worker, todo, len(todo), processes, "pascal-context maps", "map")
    splits = tree / CONTEXT_SPLITS
    splits.mkdir(parents=True, exist_ok=True)
    counts = {}
    for phase in CONTEXT_PHASES:
        ids = sorted(os.path.splitext(row[1])[0] for row in listed if row[4] == phase)
        _write_text(splits / f"{phase}.txt", "".join(f"{i}\n" for i in ids))
        counts[phase] = len(ids)
    _publish(work, tree, dest)
    return _report(
        "pascal_context",
        dest,
        started,
        images=len(listed),
        **counts,
        written=len(todo),
        reused=len(listed) - len(todo),
    )


# ---------------------------------------------------------------------------------------------
# Cityscapes

POLYGONS = "_gtFine_polygons.json"
TRAIN_IDS = "_gtFine_labelTrainIds.png"


def _city_batch(src_dir: str, tree: str, names: list[str]) -> int:
    for name in names:
        _city_one(Path(src_dir) / name, Path(tree) / (name[: -len(POLYGONS)] + TRAIN_IDS))
    return len(names)


def _city_one(src: Path, out: Path) -> None:
    from PIL import Image, ImageDraw

    try:
        data = json.loads(src.read_bytes())
        size = (int(data["imgWidth"]), int(data["imgHeight"]))  # annotation.py:376-377
        objects = list(data["objects"])
    except (ValueError, KeyError, TypeError) as err:
        raise ConversionError(
            f"{src}: not a Cityscapes polygon annotation ({type(err).__name__}: {err}); "
            "the gtFine archive may be damaged: download it again"
        ) from err
    # json2labelImg.py createLabelImage (l.50-111): an "L" image of unlabeled's trainId (255),
    # each object's polygon filled with its trainId, in file order, so later objects cover
    # earlier ones.
    image = Image.new("L", size, CITYSCAPES_NAME["unlabeled"][1])
    draw = ImageDraw.Draw(image)
    for index, obj in enumerate(objects):
        where = f"{src}: object {index}"
        try:
            label = str(obj["label"])  # annotation.py:112-117
            polygon = [(p[0], p[1]) for p in obj["polygon"]]
            deleted = obj.get("deleted", 0)
        except (KeyError, TypeError, IndexError, AttributeError) as err:
            raise ConversionError(f"{where}: malformed ({type(err).__name__}: {err})") from err
        if deleted:  # l.80-81
            continue
        if label not in CITYSCAPES_NAME and label.endswith("group"):  # l.85-86: cargroup -> car
            label = label[: -len("group")]
        if label not in CITYSCAPES_NAME:  # l.88-89: upstream stops there too
            raise ConversionError(
                f"{where}: label {label!r} is unknown to cityscapesscripts' labels.py"
            )
        label_id, train_id = CITYSCAPES_NAME[label]
        if label_id < 0:  # l.92-93: license plate is not drawn
            continue
        try:
            draw.polygon(polygon, fill=train_id)
        except (ValueError, TypeError, SystemError) as err:
            raise ConversionError(f"{where} ({label}): cannot draw its polygon ({err})") from err
    _save_png(image, out)


def cityscapes(
    gtfine_split_dir: str | Path, dest: str | Path, *, work: str | Path, processes: int = 1
) -> dict[str, Any]:
    """From `gtFine/<split>/<city>/*_gtFine_polygons.json`, write
    `dest/<city>/<stem>_gtFine_labelTrainIds.png` (0-18, 255); `dest` made whole.

    Returns {"kind", "dest", "cities", "maps", "written", "reused", "seconds"}."""
    started = time.monotonic()
    src, dest, work = Path(gtfine_split_dir), Path(dest), Path(work)
    if not src.is_dir():
        raise ConversionError(f"{src}: Cityscapes gtFine split folder not found")
    cities = sorted(e.name for e in os.scandir(src) if e.is_dir())
    names = [
        f"{city}/{name}"
        for city in cities
        for name in sorted(os.listdir(src / city))
        if name.endswith(POLYGONS)
    ]
    if not names:
        raise ConversionError(f"{src}: no <city>/*{POLYGONS} in it")
    tree = _prepare_work(work, "cityscapes", _fingerprint((n, src / n) for n in names))
    done = set()
    for city in cities:
        (tree / city).mkdir(exist_ok=True)
        done.update(f"{city}/{name}" for name in os.listdir(tree / city))
    todo = [n for n in names if n[: -len(POLYGONS)] + TRAIN_IDS not in done]
    worker = partial(_city_batch, str(src), str(tree))
    _run_pool(worker, todo, len(todo), processes, "cityscapes maps", "map")
    _publish(work, tree, dest)
    return _report(
        "cityscapes",
        dest,
        started,
        cities=len(cities),
        maps=len(names),
        written=len(todo),
        reused=len(names) - len(todo),
    )
