"""Merge archives that keep their files one directory deep into one flat folder, by base name.

VPGTrans opens Visual Genome images as `vg/images/<basename>` (its LAVIS
`ImageTextPairDataset` was patched to take `os.path.basename(ann["image"])`), but they come
in two zips: `images.zip` holds `VG_100K/<id>.jpg`, `images2.zip` holds `VG_100K_2/<id>.jpg`
(research/datasets.md D06). The flat folder is written straight from both zips in one pass,
through vlprep.extract (`extract_many` with a rename), so every safety check of the extractor
applies, nothing is written twice and the store holds one copy. Hard-linking two extracted
trees instead would first write both trees (as slow as unzip on its own), then add a link
per image, and keep two directory trees nobody opens.

What goes in, decided per archive by the one top directory it must have:
* a file directly under it goes in under its base name, byte for byte, with its mtime;
* directory members are dropped;
* any other file (elsewhere, or deeper) is an error, found in a zip before a byte is
  written: such an archive is not the one expected (GQA's zip, for one, is also called images.zip, but its
  top directory is `images/`), and skipping files would quietly lose images;
* two files with the same base name, in one archive or across both, are an error naming both
  members (VG ids are unique, so a clash means a wrong archive); nothing is overwritten.

Every .jpg/.jpeg is sniffed as it is written, without decoding: empty, no start-of-image
marker, or no end-of-image marker at the end (trailing NUL/whitespace padding allowed). That
catches the ~170 damaged files of VG_100K_2 (LLaVA issue #601). Suspects stay in the folder as
they are in the archive and are listed in the report, for the caller to write out.
"""

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from vlprep.errors import CatalogError
from vlprep.extract import MisplacedMember, Part, Rename, extract_many

log = logging.getLogger(__name__)

JPEG_SUFFIXES = (".jpg", ".jpeg")
SOI = b"\xff\xd8\xff"  # start of image, then the first marker's own 0xFF
EOI = b"\xff\xd9"
PADDING = b"\0 \t\r\n"
SHOWN = 10  # suspects named in the log; the report has them all


def jpeg_damage(head: bytes, tail: bytes, size: int) -> str | None:
    """Why a JPEG of `size` bytes, starting with `head` and ending with `tail`, is damaged,
    or None if its markers look right. Cheap, not a decode: garbled data between intact
    markers passes."""
    if size == 0:
        return "empty"
    if not head.startswith(SOI):
        return "not a JPEG (no start-of-image marker)"
    if not tail.rstrip(PADDING).endswith(EOI):
        return "truncated (no end-of-image marker at the end)"
    return None


class _Sniffer:
    """Checks each JPEG as it is written, from its first and last bytes (no second read)."""

    def __init__(self) -> None:
        self.suspects: list[dict] = []

    def __call__(self, archive: Path, name: str, head: bytes, tail: bytes, size: int) -> None:
        if not name.lower().endswith(JPEG_SUFFIXES):
            return
        reason = jpeg_damage(head, tail, size)
        if reason is not None:
            self.suspects.append(
                {"name": name, "archive": archive.name, "bytes": size, "reason": reason}
            )


def flat_name(top_dir: str) -> Rename:
    """The rename taking `<top_dir>/<name>` to `<name>` and refusing every other file."""

    def rename(rel: str) -> str:
        parent, _, base = rel.rpartition("/")
        if parent != top_dir:
            raise MisplacedMember(
                f"is not a file directly under {top_dir}/, where all of this archive's files "
                "should be"
            )
        return base

    return rename


def _check_top_dirs(archives: Sequence[Path], top_dirs: Sequence[str], entry: str) -> None:
    if len(top_dirs) != len(archives):
        raise CatalogError(
            f"catalog entry {entry}: {len(archives)} archives but {len(top_dirs)} top "
            "directories; give one top directory per archive, in the same order"
        )
    for top in top_dirs:
        if not top or top in (".", "..") or "/" in top or "\\" in top:
            raise CatalogError(
                f"catalog entry {entry}: top directory {top!r} must be one plain directory name"
            )


def flatten_archives(
    archives: Sequence[Path],
    dest: Path,
    *,
    top_dirs: Sequence[str],
    entry: str,
    declared_sizes: Sequence[int | None] | None = None,
    max_ratio: float = 8.0,
) -> dict:
    """Put the files under `top_dirs[i]/` of each `archives[i]` into the flat folder `dest`.

    `dest` appears only once every archive is done; on any error nothing is left at it or
    beside it. `declared_sizes` are the archives' sizes from the catalog (default: on disk).
    Returns a report: per archive (name, top_dir, members, files, bytes, skipped directories,
    seconds), the totals, and `suspect_images` (name, archive, bytes, reason).
    """
    archives = [Path(a) for a in archives]
    _check_top_dirs(archives, top_dirs, entry)
    sizes = list(declared_sizes) if declared_sizes is not None else [None] * len(archives)
    parts = [
        Part(archive, "auto", size, flat_name(top))
        for archive, top, size in zip(archives, top_dirs, sizes, strict=True)
    ]
    sniffer = _Sniffer()
    start = time.monotonic()
    per_archive = extract_many(parts, dest, entry=entry, max_ratio=max_ratio, check_file=sniffer)
    report = {
        "entry": entry,
        "files": sum(r["files"] for r in per_archive),
        "bytes": sum(r["bytes"] for r in per_archive),
        "seconds": round(time.monotonic() - start, 3),
        "archives": [
            {"archive": archive.name, "top_dir": top, **r}
            for archive, top, r in zip(archives, top_dirs, per_archive, strict=True)
        ],
        "suspect_images": sniffer.suspects,
    }
    log.info(
        "flattened %s: %d files, %s bytes into %s in %.1f s",
        entry,
        report["files"],
        f"{report['bytes']:,}",
        dest,
        report["seconds"],
    )
    if sniffer.suspects:
        shown = ", ".join(s["name"] for s in sniffer.suspects[:SHOWN])
        more = len(sniffer.suspects) - SHOWN
        log.warning(
            "%s: %d images look damaged (empty or missing JPEG markers), kept as they are: %s%s",
            entry,
            len(sniffer.suspects),
            shown,
            f" and {more} more (see the report)" if more > 0 else "",
        )
    return report
