"""Which images of a folder open, decoded the way the consumers decode them.

A file that is present can still crash a training run: an empty file, an HTML error page saved
as `.jpg`, a JPEG whose data is garbled between intact markers ("broken data stream"). Only a
real decode tells, so every image is opened and converted as VPGTrans's dataset classes do,
`Image.open(path).convert("RGB")` (e.g. lavis/datasets/datasets/caption_datasets.py:50-51 at
VPGTrans 32e885c). Each file is decoded twice at most: strictly, and if that fails, again with
Pillow's `ImageFile.LOAD_TRUNCATED_IMAGES`, which VPGTrans sets for the whole process
(coco_caption_datasets.py:14, imported by lavis/datasets/builders/__init__.py). With it, Pillow
pads a truncated file and ignores decoder errors in garbled data, but still fails on a file it
cannot identify or whose header is cut. So the report says for every file that does not decode
strictly whether it is `damaged` (opens only with that setting: fine for VPGTrans) or
`undecodable` (opens under no setting), and a consumer that does not set it uses the same
report.

Decoding runs in worker processes (the setting is a process-wide global, so each worker owns
its own), over a bounded window of names, so memory does not grow with the folder; the report
keeps only the files that failed.
"""

import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from vlprep.errors import VlprepError
from vlprep.progress import bar

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
BATCH = 256  # names per task: big enough to amortise the round trip, small enough to balance
SHOWN = 10

OK, DAMAGED, UNDECODABLE = "ok", "damaged", "undecodable"


@contextmanager
def truncated_images(allowed: bool) -> Iterator[None]:
    """Pillow's process-wide LOAD_TRUNCATED_IMAGES set for a block, then put back: the consumers
    differ (VPGTrans and MiniGPT-4 set it, COSMOS does not; a conversion must never pad a cut
    file), and one check must not decide how the next code in the process decodes."""
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = allowed
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


def _decode(path: str, allow_truncated: bool) -> None:
    from PIL import Image

    with truncated_images(allow_truncated), Image.open(path) as img:
        img.convert("RGB")


def judge(path: str | Path) -> tuple[str, str | None]:
    """(verdict, reason): OK; DAMAGED (decodes only with LOAD_TRUNCATED_IMAGES: truncated or
    garbled data); or UNDECODABLE, with the decoder's reason."""
    path = str(path)
    try:
        if os.path.getsize(path) == 0:
            return UNDECODABLE, "empty file"
        _decode(path, allow_truncated=False)
        return OK, None
    except Exception as strict:  # noqa: BLE001 - any decoding failure is a verdict, not a bug
        try:
            _decode(path, allow_truncated=True)
        except Exception as err:  # noqa: BLE001
            return UNDECODABLE, f"{type(err).__name__}: {err}"
        return DAMAGED, f"{type(strict).__name__}: {strict}"


def _judge_batch(folder: str, names: list[str]) -> list[tuple[str, str, str | None]]:
    """The names of `names` (relative to `folder`) that did not decode strictly."""
    failed = []
    for name in names:
        verdict, reason = judge(os.path.join(folder, name))
        if verdict != OK:
            failed.append((name, verdict, reason))
    return failed


def image_names(folder: Path) -> Iterator[str]:
    """Image files under `folder` (links followed), relative, in directory order."""
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(folder / rel if rel else folder) as entries:
            for entry in entries:
                name = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir():
                    stack.append(name)
                elif entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file():
                    yield name


def _batches(names: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for name in names:
        batch.append(name)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def check_folder(folder: str | Path, *, workers: int = 1) -> dict[str, Any]:
    """Decode every image under `folder`; return the report of what did not decode strictly.

    {"folder", "images", "damaged": [{"name", "reason"}], "undecodable": [{"name",
    "reason"}], "seconds"}, names relative to `folder` and sorted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise VlprepError(f"{folder}: image folder not found; rerun the workflow to build it")
    started = time.monotonic()
    images = 0
    failed: list[tuple[str, str, str | None]] = []
    with (
        ProcessPoolExecutor(max_workers=max(1, workers), mp_context=get_context("fork")) as pool,
        bar(None, f"decode {folder.name}", "img") as progress,
    ):
        pending: list[tuple[int, Future]] = []
        for batch in _batches(image_names(folder)):
            pending.append((len(batch), pool.submit(_judge_batch, str(folder), batch)))
            while len(pending) > 2 * max(1, workers):
                images += _collect(pending.pop(0), failed, progress)
        while pending:
            images += _collect(pending.pop(0), failed, progress)
    failed.sort()
    report = {
        "folder": str(folder),
        "images": images,
        "damaged": [{"name": n, "reason": r} for n, v, r in failed if v == DAMAGED],
        "undecodable": [{"name": n, "reason": r} for n, v, r in failed if v == UNDECODABLE],
        "seconds": round(time.monotonic() - started, 3),
    }
    _log_report(report)
    return report


def _collect(item: tuple[int, Future], failed: list, progress) -> int:
    count, future = item
    failed.extend(future.result())
    progress.update(count)
    return count


def _log_report(report: dict[str, Any]) -> None:
    log.info(
        "%s: %d images decoded in %.1f s; %d damaged (open only with LOAD_TRUNCATED_IMAGES), "
        "%d undecodable",
        report["folder"],
        report["images"],
        report["seconds"],
        len(report["damaged"]),
        len(report["undecodable"]),
    )
    bad = report["undecodable"]
    if bad:
        shown = ", ".join(f"{b['name']} ({b['reason']})" for b in bad[:SHOWN])
        more = f" and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
        log.warning("%s: undecodable: %s%s", report["folder"], shown, more)


def unusable(report: dict[str, Any], *, allow_truncated: bool) -> dict[str, str]:
    """{name: reason} of the files a consumer cannot open, from a check_folder report."""
    bad = {b["name"]: b["reason"] for b in report["undecodable"]}
    if not allow_truncated:
        bad.update({b["name"]: f"damaged: {b['reason']}" for b in report["damaged"]})
    return bad
