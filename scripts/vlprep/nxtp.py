"""COCO 2017 captions -> the webdataset tree nxtp trains on (`coco_valid/`, `coco_train/`).

nxtp's `src/data/mscoco_to_wds.py` decodes every image (torchvision `ToTensor`), throws the
tensor away, copies the JPEG and writes a caption `.txt` and a `.json` beside it, in sub-folders
of 2999 images (the first gets 2998: the script bumps its counter before naming the folder).
This module makes the same files byte for byte without decoding anything, links the JPEGs
instead of copying them, and also packs each sub-folder into `NNNNN.tar` for webdataset.

Order and captions follow what the script sees through torchvision and pycocotools: images by
ascending id (a repeated id keeps its last entry), each image's captions in file order (an
annotation id used twice resolves to its last caption, as `COCO.loadAnns` does), joined by one
space after stripping. Unlike the script, a file name that would make two samples in one
sub-folder collide is an error rather than a silent overwrite.
"""

import json
import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ijson

from vlprep.atomic import staged
from vlprep.errors import ConversionError
from vlprep.layout import LINK_MODES
from vlprep.progress import bar
from vlprep.tarwriter import Member, write_tar

log = logging.getLogger(__name__)

SUB_FOLD_SIZE = 2999
MISSING_SHOWN = 5


@dataclass(frozen=True)
class Sample:
    """One image and the exact bytes of its caption files."""

    file_name: str  # as listed in the captions JSON, relative to the image directory
    stem: str  # output name without extension: file_name up to its first dot
    txt: bytes
    json: bytes


def folder_of(index: int) -> int:
    """Sub-folder number of the `index`-th image (0-based), as the script's counter computes it."""
    return (index + 1) // SUB_FOLD_SIZE


def read_index(captions_json: Path) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Stream the captions JSON into id -> file name and id -> captions (pycocotools' view).

    Two ijson passes (images, then annotations) keep memory to these two maps instead of the
    whole parsed document.
    """
    try:
        with open(captions_json, "rb") as f:
            file_names = {img["id"]: img["file_name"] for img in ijson.items(f, "images.item")}
            f.seek(0)
            ann_ids: dict[int, list[int]] = defaultdict(list)
            caption_of: dict[int, str] = {}
            for ann in ijson.items(f, "annotations.item"):
                ann_ids[ann["image_id"]].append(ann["id"])
                caption_of[ann["id"]] = ann["caption"]
    except ijson.JSONError as e:
        reason = " ".join(str(e).split())
        raise ConversionError(
            f"{captions_json} is not valid JSON ({reason}); fetch it again"
        ) from e
    except (KeyError, TypeError) as e:
        raise ConversionError(
            f"{captions_json}: an image lacks id/file_name or an annotation lacks "
            f"id/image_id/caption ({e!r}); is this a COCO captions file?"
        ) from e
    if not file_names:
        raise ConversionError(f"{captions_json} lists no images; is this a COCO captions file?")
    captions = {img: [caption_of[a] for a in ann_ids.get(img, [])] for img in file_names}
    return file_names, captions


def make_sample(file_name: object, captions: list, split: str, source: Path) -> Sample:
    """The `.txt`/`.json` bytes the script writes for one image; malformed entries are errors."""
    if not isinstance(file_name, str) or not all(isinstance(c, str) for c in captions):
        raise ConversionError(f"{source}: non-text file_name or caption near {file_name!r}")
    stem = file_name.split(".")[0]
    if not stem or "/" in file_name:
        raise ConversionError(f"{source}: file_name {file_name!r} is not a plain file name")
    cap = " ".join(c.strip() for c in captions)
    try:
        txt = cap.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ConversionError(f"{source}: caption of {file_name!r} is not valid text") from e
    doc = json.dumps({"path": file_name, "cap": cap, "split": split}).encode("ascii")
    return Sample(file_name, stem, txt, doc)


def load_samples(captions_json: Path, split: str) -> list[Sample]:
    """All samples in the script's order: ascending image id."""
    file_names, captions = read_index(captions_json)
    if not all(isinstance(i, int) for i in file_names):
        raise ConversionError(f"{captions_json}: image ids must be integers")
    return [
        make_sample(file_names[i], captions[i], split, captions_json) for i in sorted(file_names)
    ]


def group(samples: list[Sample]) -> list[list[Sample]]:
    """Split samples into the script's sub-folders (2998 first, then 2999 each)."""
    folders: list[list[Sample]] = []
    for index, sample in enumerate(samples):
        if folder_of(index) == len(folders):
            folders.append([])
        folders[-1].append(sample)
    for number, folder in enumerate(folders):
        stems = [s.stem for s in folder]
        if len(set(stems)) != len(stems):
            dup = next(s for s in stems if stems.count(s) > 1)
            raise ConversionError(
                f"two images would both be written as {number:05d}/{dup}.jpg "
                f"(file names that differ only after the first dot)"
            )
    return folders


def check_images(samples: list[Sample], image_dir: Path) -> int:
    """Fail before writing anything if an image is missing; return the images' total size."""
    total = 0
    missing = []
    for sample in samples:
        try:
            total += (image_dir / sample.file_name).stat().st_size
        except FileNotFoundError:
            missing.append(sample.file_name)
    if missing:
        shown = ", ".join(missing[:MISSING_SHOWN])
        more = f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else ""
        raise ConversionError(
            f"{len(missing)} image(s) listed in the captions are missing from {image_dir}: "
            f"{shown}{more}; the image archive extraction is incomplete, extract it again"
        )
    return total


def placer(link_mode: str, image_dir: str, final_dir: str) -> Callable[[str, str], None]:
    """How a sub-folder gets its copy of an image: relative symlink, hard link or copy.

    Symlinks are relative to where the sub-folder will finally be, not to the staging folder.
    """
    rel = os.path.relpath(image_dir, final_dir)

    def symlink(file_name: str, dst: str) -> None:
        os.symlink(f"{rel}/{file_name}", dst)

    def hardlink(file_name: str, dst: str) -> None:
        try:
            os.link(f"{image_dir}/{file_name}", dst)
        except OSError as e:
            raise ConversionError(
                f"cannot hard-link {image_dir}/{file_name} into {final_dir} ({e.strerror}); "
                f"use link_mode 'symlink' or 'copy'"
            ) from e

    def copy(file_name: str, dst: str) -> None:
        shutil.copy(f"{image_dir}/{file_name}", dst)

    return {"symlink": symlink, "hardlink": hardlink, "copy": copy}[link_mode]


def write_small(path: str, data: bytes) -> None:
    """Create `path` holding `data` (mode from the umask, like open(..., "w"))."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def write_triplets(
    samples: list[Sample], folder: str, place: Callable[[str, str], None], progress: Callable
) -> None:
    """Create one sub-folder with the script's `.jpg`/`.txt`/`.json` per image."""
    os.mkdir(folder)
    for sample in samples:
        base = f"{folder}/{sample.stem}"
        place(sample.file_name, f"{base}.jpg")
        write_small(f"{base}.txt", sample.txt)
        write_small(f"{base}.json", sample.json)
        progress(1)


def write_shard(samples: list[Sample], image_dir: str, path: Path) -> int:
    """Pack one sub-folder's samples into a tar (JPEG bytes from `image_dir`); return its size."""
    members: list[Member] = []
    for sample in samples:
        members += [
            (f"{sample.stem}.jpg", f"{image_dir}/{sample.file_name}"),
            (f"{sample.stem}.json", sample.json),
            (f"{sample.stem}.txt", sample.txt),
        ]
    return write_tar(path, members)


def build_coco_wds(
    captions_json: Path,
    image_dir: Path,
    out_dir: Path,
    *,
    split: str,
    link_mode: str = "symlink",
    workers: int = 1,
) -> dict:
    """Build `out_dir` (all at once, or not at all) with nxtp's sub-folders plus one tar each.

    `split` is the COCO split name (`val2017`, `train2017`) written into every `.json`;
    `workers` threads build sub-folders and tars in parallel (2 pays off even on 2 cores).
    Returns a report of what was written.
    """
    if link_mode not in LINK_MODES:
        raise ValueError(f"link_mode must be one of {LINK_MODES}, not {link_mode!r}")
    samples = load_samples(Path(captions_json), split)
    folders = group(samples)
    images = os.path.realpath(image_dir)
    image_bytes = check_images(samples, Path(images))
    out_dir = Path(out_dir)
    final_root = Path(os.path.realpath(out_dir.parent)) / out_dir.name
    log.info("%s: %d images into %d sub-folders of %s", split, len(samples), len(folders), out_dir)
    with (
        staged(out_dir, directory=True) as tmp,
        bar(len(samples), f"{split} wds", "img") as progress,
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
    ):
        # A sub-folder's files (many small creates) and its tar (a long kernel copy) are
        # separate tasks, so that with two workers one of each usually runs at the same time.
        triplets, shards = [], []
        for number, folder in enumerate(folders):
            name = str(number).zfill(5)
            place = placer(link_mode, images, str(final_root / name))
            triplets.append(
                pool.submit(write_triplets, folder, str(tmp / name), place, progress.update)
            )
            shards.append(pool.submit(write_shard, folder, images, tmp / f"{name}.tar"))
        try:
            for future in triplets:
                future.result()
            tar_bytes = sum(future.result() for future in shards)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    report = {
        "split": split,
        "out_dir": str(out_dir),
        "images": len(samples),
        "folders": len(folders),
        "per_folder": [len(f) for f in folders],
        "image_bytes": image_bytes,
        "tar_bytes": tar_bytes,
    }
    log.info("%s: wrote %d tars, %d bytes", split, len(folders), report["tar_bytes"])
    return report
