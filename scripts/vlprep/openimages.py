"""Open Images V7 validation + Localized Narratives -> nxtp's `openimages_v7_valid/*.tar`.

nxtp's eval set `openimages_v7_valid` comes from a script pasted in the seed README
(`openimages_to_wds.py`, no repository file). For every line of the Localized Narratives JSONL
it copies `<root>/valid/<image_id>.jpg` and writes the `caption` (`.txt`) and the whole record
(`.json`, `json.dump` defaults) into sub-folders that the user then has to tar by hand. The
sub-folder counter is the one of `mscoco_to_wds.py` (vlprep.nxtp.folder_of: 2998 lines in
`00000`, 2999 in each later one), counted over JSONL lines, not images.

This module writes the same members straight into one tar per sub-folder (sorted members,
fixed metadata: vlprep.tarwriter), with the JPEG bytes sent from the extracted tarball by the
kernel: nothing is decoded, and no image is copied into a sub-folder first. What it keeps
from the script, on purpose, because nxtp's eval numbers depend on it:

* folders follow line numbers, so every line counts, even one whose image is skipped;
* two narratives of one image in one folder are one sample, the later line's caption and
  record winning (the script overwrote the files); in different folders both survive.

What it fixes: images come from the folder the tarball really extracts to (`validation/`, the
script says `valid/`); no raw sub-folders are left beside the tars (nxtp globs `*.tar`
recursively, the folders only double disk use); a missing image is one error listing how many
and which, rather than a FileNotFoundError after a half-written tree, unless the caller allows
skipping them. The JSONL is streamed (traces make it large); memory holds at most two
folders' worth of captions and records, one filling while the previous one's tar is written.
"""

import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vlprep.atomic import staged
from vlprep.errors import ConversionError
from vlprep.nxtp import folder_of
from vlprep.progress import bar
from vlprep.tarwriter import Member, write_tar

log = logging.getLogger(__name__)

EXAMPLES_SHOWN = 5
EXCERPT_CHARS = 80
# A key must not hold a dot (webdataset cuts keys at the first one, and sorted members would
# no longer keep a sample's files together) nor anything that walks out of a folder.
FORBIDDEN_IN_ID = frozenset("./\\\0")


@dataclass(frozen=True)
class Narrative:
    """One JSONL line as the script writes it: the key and the exact `.txt`/`.json` bytes."""

    line: int  # 1-based line number in the JSONL, for messages
    image_id: str
    txt: bytes
    json: bytes


def excerpt(raw: bytes) -> str:
    """The start of a line, printable, for error messages."""
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    return repr(text[:EXCERPT_CHARS] + ("..." if len(text) > EXCERPT_CHARS else ""))


def parse_line(raw: bytes, line: int, source: Path) -> Narrative:
    """Decode one JSONL line into what the script writes for it; anything else is an error.

    The script reads the JSONL as text (a UTF-8 locale) and writes `caption` with `f.write` (no
    newline translation on POSIX) and the record with `json.dump(line, f)`: ASCII-escaped,
    `", "`/`": "` separators, keys in file order, numbers as Python re-prints them.
    """
    where = f"{source}, line {line}"
    try:
        record = json.loads(raw.decode("utf-8"))
    # ValueError: JSONDecodeError, UnicodeDecodeError, an integer past int()'s digit limit;
    # RecursionError: nesting too deep
    except (ValueError, RecursionError) as e:
        raise ConversionError(
            f"{where} is not valid JSON ({e}): {excerpt(raw)}; the file is damaged or "
            f"truncated, download it again"
        ) from e
    if not isinstance(record, dict) or "image_id" not in record or "caption" not in record:
        raise ConversionError(
            f"{where} is not a Localized Narrative (no image_id/caption): {excerpt(raw)}; "
            f"is this open_images_validation_localized_narratives.jsonl?"
        )
    image_id, caption = record["image_id"], record["caption"]
    if not isinstance(image_id, str) or not image_id or FORBIDDEN_IN_ID & set(image_id):
        raise ConversionError(f"{where}: image_id {image_id!r} is not an Open Images ImageID")
    if not isinstance(caption, str):
        raise ConversionError(f"{where}: caption of {image_id} is {caption!r}, not text")
    try:
        txt = caption.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ConversionError(f"{where}: caption of {image_id} is not valid text ({e})") from e
    return Narrative(line, image_id, txt, json.dumps(record).encode("ascii"))


def check_image_dir(image_dir: Path) -> None:
    """A wrong image folder fails before the JSONL is read."""
    if not image_dir.is_dir():
        raise ConversionError(
            f"{image_dir} is not a folder; extract validation.tar.gz and pass the "
            f"validation/ folder it unpacks to"
        )
    if (image_dir / "validation").is_dir():
        raise ConversionError(
            f"{image_dir} holds a validation/ folder; pass {image_dir / 'validation'} itself"
        )


def shard_members(folder: dict[str, Narrative], image_dir: Path) -> list[Member]:
    """One sub-folder's `<id>.jpg` (from the image file), `<id>.json` and `<id>.txt`."""
    members: list[Member] = []
    for image_id, narrative in folder.items():
        members += [
            (f"{image_id}.jpg", image_dir / f"{image_id}.jpg"),
            (f"{image_id}.json", narrative.json),
            (f"{image_id}.txt", narrative.txt),
        ]
    return members


class ShardWriter:
    """Turns each finished folder into its tar, written by one background thread.

    Parsing JSON holds the GIL while sending JPEG bytes does not, so a tar is written while
    the next folder fills. Waiting for the previous tar before queueing the next one keeps
    at most two folders in memory. With `writing` off, folders are only counted.
    """

    def __init__(self, pool: ThreadPoolExecutor, image_dir: Path, dest: Path) -> None:
        self.pool, self.image_dir, self.dest = pool, image_dir, dest
        self.per_tar: list[int] = []
        self.writing = True
        self.tar_bytes = 0
        self.pending: Future | None = None

    @property
    def current(self) -> int:
        """Number of the folder being filled."""
        return len(self.per_tar)

    def wait(self) -> None:
        """Block until the queued tar is written; re-raise its error, if any."""
        if self.pending is not None:
            self.tar_bytes += self.pending.result()
            self.pending = None

    def close(self, folder: dict[str, Narrative]) -> None:
        """The current folder is complete: queue its tar, then start the next folder."""
        path = self.dest / f"{self.current:05d}.tar"
        self.per_tar.append(len(folder))
        if self.writing:
            self.wait()
            self.pending = self.pool.submit(write_tar, path, shard_members(folder, self.image_dir))


def missing_error(report: dict, source: Path, image_dir: Path) -> ConversionError:
    """The message for images the JSONL names but the extracted tarball lacks."""
    count, shown = report["images_missing"], report["missing_examples"]
    more = f" and {count - len(shown)} more" if count > len(shown) else ""
    return ConversionError(
        f"{count} narrative(s) of {source} name images missing from {image_dir}: "
        f"{', '.join(shown)}{more}; the validation tarball's extraction is incomplete "
        f"(extract validation.tar.gz again), or allow skipping them (allow_missing)"
    )


def note(examples: list[str], example: str) -> None:
    if len(examples) < EXAMPLES_SHOWN:
        examples.append(example)


def build_openimages_wds(
    narratives_jsonl: str | Path,
    image_dir: str | Path,
    out_dir: str | Path,
    *,
    allow_missing: bool = False,
) -> dict:
    """Build `out_dir` (all at once, or not at all) with nxtp's `NNNNN.tar` shards.

    `image_dir` is the extracted `validation/` folder (`<ImageID>.jpg`). Narratives whose image
    is missing fail the build, after the whole JSONL has been checked so the error can count
    them, unless `allow_missing` (then they are skipped and counted). Returns a report:
    lines read, samples per tar, duplicates overwritten within a folder, images missing.
    """
    source = Path(narratives_jsonl)
    if not source.exists():
        raise ConversionError(f"{source} does not exist; download the Localized Narratives JSONL")
    images = Path(image_dir)
    check_image_dir(images)
    report: dict = {
        "narratives_jsonl": str(source),
        "image_dir": str(image_dir),
        "out_dir": str(out_dir),
        "lines": 0,
        "samples": 0,
        "tars": 0,
        "per_tar": [],  # samples in 00000.tar, 00001.tar, ...
        "duplicates_in_folder": 0,
        "duplicate_examples": [],
        "images_missing": 0,  # lines whose image is not in image_dir
        "missing_examples": [],
        "tar_bytes": 0,
    }

    size = source.stat().st_size if source.is_file() else None  # None: a pipe, size unknown
    with (
        staged(out_dir, directory=True) as tmp,
        open(source, "rb") as lines,
        bar(size, "openimages wds", "B", unit_scale=True) as progress,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        shards = ShardWriter(pool, images, tmp)
        folder: dict[str, Narrative] = {}
        for index, raw in enumerate(lines):
            progress.update(len(raw))
            narrative = parse_line(raw, index + 1, source)
            if folder_of(index) != shards.current:
                shards.close(folder)
                folder = {}
            report["lines"] += 1
            image_id = narrative.image_id
            if not (images / f"{image_id}.jpg").is_file():
                report["images_missing"] += 1
                note(report["missing_examples"], f"{image_id}.jpg (line {narrative.line})")
                shards.writing = allow_missing  # once doomed, only count: no more tars
                continue
            if image_id in folder:
                report["duplicates_in_folder"] += 1
                note(report["duplicate_examples"], f"{shards.current:05d}/{image_id}")
            folder[image_id] = narrative
        if not report["lines"]:
            raise ConversionError(f"{source} holds no narratives; download it again")
        shards.close(folder)
        shards.wait()
        if report["images_missing"] and not allow_missing:
            raise missing_error(report, source, images)
    report["per_tar"] = shards.per_tar
    report["tars"] = len(report["per_tar"])
    report["samples"] = sum(report["per_tar"])
    report["tar_bytes"] = shards.tar_bytes
    log.info(
        "%s: %d lines -> %d samples in %d tars (%d in-folder duplicates overwritten, "
        "%d images missing and skipped)",
        out_dir, report["lines"], report["samples"], report["tars"],
        report["duplicates_in_folder"], report["images_missing"],
    )  # fmt: skip
    return report
