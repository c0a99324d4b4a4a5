"""URL lists whose consumers open images BY NAME: SBU Captions and NoCaps, via img2dataset.

img2dataset names every sample by a number (`<shard>/<key>.jpg`), but:

- VPGTrans' SBU loader opens `cache_root/sbu_captions/images/<basename of ann["image"]>`
  (a flat folder; LAVIS `sbu.json` is a JSON list of {"image", "caption", "url"});
- LAVIS' NoCaps eval opens `cache_root/nocaps/images/<ann["image"]>`, where LAVIS' own
  download script saved `images/{val,test}/<basename of coco_url>` from the nocaps files
  `nocaps_val_4500_captions.json` / `nocaps_test_image_info.json` (`images[*]` with `id`,
  `open_images_id`, `coco_url`, `file_name` = `<open_images_id>.jpg`, ...);
- nxtp reads SBU as webdataset tars `g3m/sbu/sbu/*.tar` (`.jpg` + `.txt` per key).

So: `annotations_to_url_list` turns the annotation JSON into a parquet URL list with a `name`
column (the file name the consumer opens); img2dataset downloads it with `output_format="files"`
and `save_additional_columns=["name"]` (in parts, vlprep.i2d.run_part); `place_by_name` then
builds the flat folder `<name> -> downloaded image`, and `pack_webdataset` packs the same
download into sorted, deterministic tars. One download serves both SBU consumers.

Recommended img2dataset arguments (URL_LISTS `i2d`):

    sbu (VPGTrans flat folder + nxtp tars):
        input_format="parquet", url_col="url", caption_col="caption", output_format="files",
        save_additional_columns=["name"], resize_mode="no", skip_reencode=True,
        encode_format="jpg", number_sample_per_shard=10000
    nocaps_val / nocaps_test (one list each; LAVIS eval wants the originals):
        input_format="parquet", url_col="url", caption_col=None, output_format="files",
        save_additional_columns=["name"], resize_mode="no", skip_reencode=True,
        encode_format="jpg", number_sample_per_shard=10000 (or 1000: 4,500 / 10,600 rows)

`resize_mode="no"` + `skip_reencode=True` keeps a JPEG's original bytes (img2dataset 1.47.0
resizer: no resize, and `encode_needed` is False when imghdr says the bytes are already JPEG)
but still decodes every image with OpenCV, so error pages and corrupt bodies fail as
"failed_to_resize" instead of being saved (the LAVIS NoCaps script saved them as `.jpg`).
Non-JPEG images (PNG, RGBA) are re-encoded to JPEG at `encode_quality` (95); GIFs fail.
`disable_all_reencoding=True` (also in 1.47.0) keeps every byte but skips that decode, so junk
counts as "success"; use it only with `place_by_name(..., check_decode=True)`. VPGTrans' own SBU
script re-encodes with PIL on save, so originals are at least as good for it.

Which folders the functions read: img2dataset output folders (a part of vlprep.i2d, or a retry
folder), each holding `NNNNN_stats.json`, `NNNNN.parquet` and the shard folder `NNNNN/` of
`<key>.jpg`, `<key>.txt` (with a caption column) and `<key>.json`. Only finished shards (those
with a `_stats.json`) count; shards are taken in id order across all folders (retry shards are
numbered after the originals), samples in key order, i.e. URL-list order.
"""

import logging
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson
import pyarrow as pa
import pyarrow.parquet as pq

from vlprep.atomic import staged
from vlprep.errors import ConversionError, VlprepError
from vlprep.layout import LINK_MODES, link_file
from vlprep.progress import bar
from vlprep.tarwriter import Member, write_tar

log = logging.getLogger(__name__)

KINDS = ("sbu", "nocaps")
# Where the records are in each kind of file (ijson prefix) and the URL list's columns.
PREFIX = {"sbu": "item", "nocaps": "images.item"}
SCHEMA = {
    "sbu": pa.schema([("url", pa.string()), ("caption", pa.string()), ("name", pa.string())]),
    "nocaps": pa.schema([("url", pa.string()), ("name", pa.string())]),
}
EXPECTED = {
    "sbu": 'a JSON list of {"image", "caption", "url"} objects (LAVIS sbu.json)',
    "nocaps": 'a JSON object whose "images" list holds {"file_name", "coco_url", ...} '
    "(nocaps_val_4500_captions.json / nocaps_test_image_info.json)",
}
BATCH = 8192
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
SIDE_EXTS = (".txt", ".json")
EXAMPLES_KEPT = 5
_STATS_RE = re.compile(r"^(\d+)_stats\.json$")


# ------------------------------------------------------------------ annotations -> URL list


def check_name(name: Any, where: str) -> str:
    """`name` if it is a plain file name (no folders, no `..`), else ConversionError."""
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or any(c in name for c in "/\\\0")
    ):
        raise ConversionError(f"{where}: {name!r} is not a plain file name")
    return name


def _string(record: dict, field: str, where: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value:
        raise ConversionError(f"{where}: field {field!r} must be a non-empty string, got {value!r}")
    return value


def _row(kind: str, record: Any, where: str) -> dict[str, str]:
    if not isinstance(record, dict):
        raise ConversionError(f"{where}: expected an object, got {type(record).__name__}")
    if kind == "sbu":
        image = _string(record, "image", where)
        caption = record.get("caption")
        if not isinstance(caption, str):
            raise ConversionError(f"{where}: field 'caption' must be a string, got {caption!r}")
        name = check_name(posixpath.basename(image), f"{where} (image {image!r})")
        return {"url": _string(record, "url", where), "caption": caption, "name": name}
    name = check_name(_string(record, "file_name", where), where)
    return {"url": _string(record, "coco_url", where), "name": name}


def annotations_to_url_list(src: str | Path, dest: str | Path, *, kind: str) -> int:
    """Stream an annotation JSON into a parquet URL list at `dest` (atomic); return its rows.

    kind="sbu": LAVIS `sbu.json`, a JSON list of {"image", "caption", "url"}; columns `url`,
    `caption`, `name` = basename of `image` (what VPGTrans opens). kind="nocaps": a nocaps
    annotation file; one row per `images[*]`: `url` = `coco_url`, `name` = `file_name`.
    Rows keep the file's order; memory stays bounded (ijson, batches of 8192 rows). A record
    that is not an object, lacks a field, has a non-string value or a name with a folder in it,
    broken JSON, or a file without any record raises ConversionError naming the file and the
    record's index.
    """
    if kind not in KINDS:
        raise ConversionError(f"kind must be one of {KINDS}, got {kind!r}")
    src = Path(src)
    schema = SCHEMA[kind]
    rows, buffer, index = 0, [], -1
    with staged(dest) as tmp, src.open("rb") as fh, pq.ParquetWriter(tmp, schema) as writer:
        records = ijson.items(fh, PREFIX[kind])
        while True:
            where = f"{src}: record {index + 1}"
            try:
                record = next(records)
            except StopIteration:
                break
            # yajl hands on a lone surrogate escape (`"\ud800{"`) as bytes that are not UTF-8
            except (ijson.JSONError, UnicodeDecodeError) as err:
                reason = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
                raise ConversionError(
                    f"{where} (0-based, in {PREFIX[kind]!r}): broken JSON ({reason}); "
                    "download the file again"
                ) from None
            index += 1
            buffer.append(_row(kind, record, f"{src}: record {index}"))
            if len(buffer) >= BATCH:
                writer.write_table(pa.Table.from_pylist(buffer, schema))
                rows += len(buffer)
                buffer = []
        if buffer:
            writer.write_table(pa.Table.from_pylist(buffer, schema))
            rows += len(buffer)
        if not rows:
            raise ConversionError(f"{src}: no records found; expected {EXPECTED[kind]}")
    log.info("%s: %d rows -> %s", src, rows, dest)
    return rows


# ------------------------------------------------------------ reading img2dataset "files"


@dataclass(frozen=True)
class Shard:
    shard_id: int
    name: str  # zero-padded id, as img2dataset writes it
    output: Path  # the img2dataset output folder that holds it

    @property
    def folder(self) -> Path:
        return self.output / self.name

    @property
    def parquet(self) -> Path:
        return self.output / f"{self.name}.parquet"


def finished_shards(shard_dirs: list[str | Path]) -> list[Shard]:
    """Finished shards of all img2dataset output folders, by id; one id twice is an error."""
    shards: dict[int, Shard] = {}
    for output in map(Path, shard_dirs):
        if not output.is_dir():
            raise VlprepError(f"{output}: img2dataset output folder not found")
        for entry in os.scandir(output):
            match = _STATS_RE.match(entry.name)
            if not match or not (output / match.group(1)).is_dir():
                continue  # not a stats file, or run_part's placeholder (no shard folder)
            shard = Shard(int(match.group(1)), match.group(1), output)
            if shard.shard_id in shards:
                raise VlprepError(
                    f"shard {shard.name} is in both {shards[shard.shard_id].output} and "
                    f"{output}; these outputs overlap"
                )
            shards[shard.shard_id] = shard
    return [shards[i] for i in sorted(shards)]


def shard_files(shard: Shard) -> dict[str, dict[str, Path]]:
    """{key: {extension: path}} of the sample files in a shard folder, keys sorted."""
    found: dict[str, dict[str, Path]] = {}
    for entry in os.scandir(shard.folder):
        stem, ext = os.path.splitext(entry.name)
        if ext in IMAGE_EXTS or ext in SIDE_EXTS:
            found.setdefault(stem, {})[ext] = Path(entry.path)
    return {key: found[key] for key in sorted(found)}


def image_of(files: dict[str, Path]) -> Path | None:
    return next((files[ext] for ext in IMAGE_EXTS if ext in files), None)


def successes(shard: Shard, column: str) -> Iterator[tuple[str, Any]]:
    """(key, value of `column`) of the shard's successful samples, in key order."""
    if not shard.parquet.is_file():
        raise VlprepError(f"{shard.parquet}: missing; img2dataset did not finish this shard")
    pf = pq.ParquetFile(shard.parquet)
    if column not in pf.schema_arrow.names:
        raise ConversionError(
            f"{shard.parquet} has no column {column!r}; download with "
            f'save_additional_columns=["{column}"] (columns: {pf.schema_arrow.names})'
        )
    rows = []
    for batch in pf.iter_batches(batch_size=BATCH, columns=["key", "status", column]):
        for key, status, value in zip(
            *(batch.column(i).to_pylist() for i in range(3)), strict=True
        ):
            if status == "success":
                rows.append((key, value))
    rows.sort(key=lambda row: row[0])
    yield from rows


def decodes(path: Path) -> bool:
    """Whether Pillow decodes the whole image strictly (truncated or junk bytes do not): the
    image check's own verdict (vlprep.images.judge)."""
    from vlprep.images import OK, judge

    return judge(path)[0] == OK


# -------------------------------------------------------------------------- place by name


def place_by_name(
    shard_dirs: list[str | Path],
    dest_dir: str | Path,
    *,
    name_column: str = "name",
    link_mode: str = "symlink",
    check_decode: bool = False,
) -> dict[str, Any]:
    """Build `dest_dir` (atomically) as a flat folder where `<name>` is each downloaded image.

    `shard_dirs` are img2dataset output folders (output_format="files", the name saved with
    save_additional_columns=[name_column]). Only successful samples are placed; a name seen
    before (in shard/key order, so the earlier URL-list row) keeps its first image and is
    counted in `duplicates`. `link_mode`: relative symlinks into the download (default),
    hardlinks, or copies. `check_decode` additionally drops images Pillow cannot decode
    (counted in `undecodable`), for downloads made with disable_all_reencoding=True.

    Returns {"shards", "succeeded", "placed", "duplicates", "undecodable",
    "duplicate_examples", "undecodable_examples"}.
    """
    if link_mode not in LINK_MODES:
        raise VlprepError(f"link_mode '{link_mode}' is not one of {', '.join(LINK_MODES)}")
    shards = finished_shards(shard_dirs)
    final = os.path.abspath(dest_dir)
    report: dict[str, Any] = {"shards": len(shards), "succeeded": 0, "placed": 0,
                              "duplicates": 0, "undecodable": 0, "duplicate_examples": [],
                              "undecodable_examples": []}  # fmt: skip
    with staged(dest_dir, directory=True) as tmp, bar(None, "place by name", "img") as progress:
        for shard in shards:
            files = shard_files(shard)
            for key, name in successes(shard, name_column):
                report["succeeded"] += 1
                progress.update()
                name = check_name(name, f"{shard.parquet}: key {key}")
                image = image_of(files.get(key, {}))
                if image is None:
                    raise VlprepError(
                        f"{shard.folder}: sample {key} succeeded but its image is missing; "
                        "the download is damaged, run it again"
                    )
                if check_decode and not decodes(image):
                    report["undecodable"] += 1
                    if len(report["undecodable_examples"]) < EXAMPLES_KEPT:
                        report["undecodable_examples"].append(f"{name} ({image})")
                    continue
                try:
                    link_file(image, tmp / name, final, link_mode)
                except FileExistsError:
                    report["duplicates"] += 1
                    if len(report["duplicate_examples"]) < EXAMPLES_KEPT:
                        report["duplicate_examples"].append(name)
                    continue
                report["placed"] += 1
        if not report["placed"]:
            raise VlprepError(
                f"{dest_dir}: no image to place from {len(shards)} shards of "
                f"{[str(d) for d in shard_dirs]}; did the download succeed at all?"
            )
    log.info("placed %d images by name in %s (%s; %d duplicate names, %d undecodable)",
             report["placed"], dest_dir, link_mode, report["duplicates"],
             report["undecodable"])  # fmt: skip
    return report


# ------------------------------------------------------------------------ pack webdataset


def _samples(shards: list[Shard], include_json: bool) -> Iterator[list[Member]]:
    """Each sample's members (`<key>.<ext>`, path) in shard/key order; only complete ones."""
    skip = () if include_json else (".json",)
    for shard in shards:
        for key, files in shard_files(shard).items():
            if image_of(files) is None:
                continue  # a failed sample never gets files; a stray side file is ignored
            yield [(f"{key}{ext}", path) for ext, path in sorted(files.items()) if ext not in skip]


def pack_webdataset(
    shard_dirs: list[str | Path],
    dest_dir: str | Path,
    *,
    samples_per_tar: int,
    include_json: bool = True,
) -> dict[str, Any]:
    """Pack the successful samples of img2dataset "files" outputs into webdataset tars.

    `dest_dir` (built atomically) gets `00000.tar`, `00001.tar`, ... of `samples_per_tar`
    samples each (the last may hold fewer), samples in shard/key order, each as `<key>.jpg`,
    `<key>.txt` (when the download had captions) and `<key>.json` (unless include_json is
    False), members sorted by name with fixed metadata (vlprep.tarwriter), so the same
    download gives the same bytes. Returns {"shards", "samples", "tars", "bytes"}.
    """
    if samples_per_tar <= 0:
        raise ConversionError(f"samples_per_tar must be positive, got {samples_per_tar}")
    shards = finished_shards(shard_dirs)
    report = {"shards": len(shards), "samples": 0, "tars": 0, "bytes": 0}
    with staged(dest_dir, directory=True) as tmp, bar(None, "pack webdataset", "img") as progress:
        chunk: list[Member] = []
        in_chunk = 0

        def flush() -> None:
            report["bytes"] += write_tar(tmp / f"{report['tars']:05d}.tar", chunk)
            report["tars"] += 1
            chunk.clear()

        for members in _samples(shards, include_json):
            chunk.extend(members)
            in_chunk += 1
            report["samples"] += 1
            progress.update()
            if in_chunk == samples_per_tar:
                flush()
                in_chunk = 0
        if chunk:
            flush()
        if not report["samples"]:
            raise VlprepError(
                f"{dest_dir}: no successful sample in {len(shards)} shards of "
                f"{[str(d) for d in shard_dirs]}; did the download succeed at all?"
            )
    log.info("packed %d samples into %d tars in %s", report["samples"], report["tars"], dest_dir)
    return report
