"""img2dataset in parts: one URL list, many independent jobs, the same shards as one big run.

A URL list (TSV or parquet with a header; a directory of such files counts as one list in
sorted file order) is cut into parts of `rows_per_part` rows (R, a multiple of the samples
per shard S). Part k holds rows [k*R, (k+1)*R) and runs the real img2dataset on just those
rows, with its shards numbered from k*R/S. Since img2dataset derives both the shard name and
every sample's `__key__` from the shard id (key = shard_id * 10**ceil(log10 S) + row in
shard), part k writes exactly the files a single run over the whole list would write for
those rows, however many jobs ran.

img2dataset has no flag for the first shard id, but `incremental_mode="extend"` starts at
max(ids of `<output>/*.json`) + 1 (img2dataset/main.py) and the Reader numbers the shards of
one input file consecutively from there (reader.py `_save_to_arrow`). So run_part puts a
placeholder `{offset-1:05d}_stats.json` in the staged output folder, runs, removes it and
checks that exactly the expected shards came out. A part whose rows all lie past the end of
the list is an empty, complete output folder.

Caveat: img2dataset itself, given a *directory* of files, starts a new shard at every file
boundary. Here a directory is one list, so the two agree only when every file's row count is
a multiple of S.

Retries: `retry_failed(shard_dir, out_dir)` re-downloads only the rows whose status is not
"success" (from the per-shard parquet files). It writes the retry URL list to
`<out_dir>.urls.parquet` and the new shards to `out_dir` (by convention `<dataset>/retry`,
a sibling of the shard folder, never inside it), numbered from max(original shard id) + 1 so
names never collide; each retried sample keeps its first key in the `orig_key` column (also
in its `.json`). The original shards are only read.
"""

import csv
import json
import logging
import math
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vlprep.atomic import remove_path, staged
from vlprep.errors import ConversionError, VlprepError

# The part arithmetic, written once (vlprep.parts, which the workflow imports while it plans
# without loading pyarrow); re-exported here, where the parts are run.
from vlprep.parts import (  # noqa: F401
    TUNABLE,
    job_args,
    part_bounds,
    part_count,
    part_plan,
    planned_rows,
    samples_per_shard,
)

log = logging.getLogger(__name__)

FORMATS = ("tsv", "parquet")
I2D_DEFAULTS = {"number_sample_per_shard": 10000, "oom_shard_count": 5}
# Columns img2dataset writes itself; any other column of its parquet is a saved extra column.
RESERVED = frozenset(
    {"key", "caption", "url", "width", "height", "original_width", "original_height",
     "status", "error_message", "exif", "md5", "sha256", "sha512"}
)  # fmt: skip
ORIG_KEY = "orig_key"
_SHARD_RE = re.compile(r"^(\d+)_stats\.json$")
_PARQUET_BATCH = 8192

# Runs in a fresh interpreter: the arguments arrive as JSON on stdin (no shell/fire quoting).
_RUNNER = "import json, sys\nfrom img2dataset import download\ndownload(**json.load(sys.stdin))\n"
CHILD_ENV = {"NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}


# ----------------------------------------------------------------------------- URL lists


def list_files(url_list: str | Path, fmt: str) -> list[Path]:
    """The files of a URL list: the path itself, or the sorted `*.<fmt>` files of a directory."""
    if fmt not in FORMATS:
        raise ConversionError(f"URL list format must be one of {FORMATS}, got {fmt!r}")
    url_list = Path(url_list)
    if url_list.is_dir():
        files = sorted(p for p in url_list.glob(f"*.{fmt}") if p.is_file())
        if not files:
            raise ConversionError(f"{url_list}: no *.{fmt} files in this directory")
        return files
    if not url_list.is_file():
        raise ConversionError(f"{url_list}: URL list not found")
    return [url_list]


def _tsv_records(fh) -> Iterator[tuple[int, bytes, list[str]]]:
    """(start byte, raw bytes, fields) of each record of a binary TSV file, from its position.

    Lines are fed to the csv module one by one (it never reads ahead), so the lines consumed
    when a record comes out are exactly that record's, even when a quoted field spans lines.
    """
    start = fh.tell()
    pending: list[bytes] = []

    def lines() -> Iterator[str]:
        while True:
            raw = fh.readline()
            if not raw:
                return
            pending.append(raw)
            yield raw.decode("utf-8")

    reader = csv.reader(lines(), delimiter="\t", quoting=csv.QUOTE_MINIMAL, strict=False)
    for fields in reader:
        raw = b"".join(pending)
        pending.clear()
        yield start, raw, fields
        start += len(raw)


def _tsv_header(path: Path) -> tuple[bytes, int]:
    """The raw header record and the byte offset where the data rows begin."""
    with path.open("rb") as fh:
        for start, raw, _fields in _tsv_records(fh):
            return raw, start + len(raw)
    raise ConversionError(f"{path}: empty TSV, expected a header line")


def _is_row(fields: list[str]) -> bool:
    # pyarrow (img2dataset's reader) skips empty lines; count rows the same way.
    return bool(fields) and fields != [""]


def count_rows(url_list: str | Path, fmt: str) -> int:
    """Data rows of the list (parquet: from metadata; TSV: one streaming pass)."""
    total = 0
    for path in list_files(url_list, fmt):
        if fmt == "parquet":
            total += pq.ParquetFile(path).metadata.num_rows
        else:
            _, data_at = _tsv_header(path)
            with path.open("rb") as fh:
                fh.seek(data_at)
                total += sum(1 for _s, _e, f in _tsv_records(fh) if _is_row(f))
    return total


def plan_parts(url_list: str | Path, fmt: str, rows_per_part: int) -> dict[str, Any]:
    """Count the rows and, for TSV, note where each part starts ([file index, byte offset]).

    One streaming pass; give the result to slice_rows(plan=...) so each part seeks straight to
    its rows instead of reading the list from the top (which, over 10,000 parts of a 15 GB
    TSV, would read the file thousands of times). JSON-serialisable.
    """
    files = list_files(url_list, fmt)
    plan: dict[str, Any] = {"format": fmt, "rows_per_part": rows_per_part,
                            "files": [str(p) for p in files]}  # fmt: skip
    if fmt == "parquet":
        rows = count_rows(url_list, fmt)
    else:
        rows, offsets = 0, []
        for index, path in enumerate(files):
            _, data_at = _tsv_header(path)
            with path.open("rb") as fh:
                fh.seek(data_at)
                for start, _raw, fields in _tsv_records(fh):
                    if not _is_row(fields):
                        continue
                    if rows % rows_per_part == 0:
                        offsets.append([index, start])
                    rows += 1
        plan["offsets"] = offsets
    plan["rows"] = rows
    plan["parts"] = math.ceil(rows / rows_per_part)
    return plan


def slice_rows(
    url_list: str | Path,
    fmt: str,
    start: int,
    stop: int,
    dest: str | Path,
    *,
    plan: dict[str, Any] | None = None,
) -> int:
    """Write rows [start, stop) of the list to `dest` (same format, header kept); return the count.

    Streams: TSV records are copied byte for byte (quoting, CRLF and embedded newlines/tabs
    stay as they were); parquet reads only the row groups that overlap. Rows past the end are
    simply absent, so a part wholly past the end is a header-only / empty file.
    """
    if start < 0 or stop < start:
        raise ValueError(f"bad row range [{start}, {stop})")
    files = list_files(url_list, fmt)
    dest = Path(dest)
    with staged(dest) as tmp:
        if fmt == "tsv":
            written = _slice_tsv(files, start, stop, tmp, plan)
        else:
            written = _slice_parquet(files, start, stop, tmp)
    return written


def _slice_tsv(files: list[Path], start: int, stop: int, tmp: Path, plan: dict | None) -> int:
    header, _ = _tsv_header(files[0])
    first_file, seek_to, row = 0, None, 0
    if plan and start > 0 and start % plan["rows_per_part"] == 0:
        part = start // plan["rows_per_part"]
        if part < len(plan["offsets"]):
            first_file, seek_to = plan["offsets"][part]
            row = start
        else:
            first_file = len(files)  # past the end
    written = 0
    with tmp.open("wb") as out:
        out.write(header)
        for index in range(first_file, len(files)):
            if row >= stop:
                break
            path = files[index]
            own_header, data_at = _tsv_header(path)
            if own_header.rstrip(b"\r\n") != header.rstrip(b"\r\n"):
                raise ConversionError(
                    f"{path}: header {own_header!r} differs from {files[0].name}'s {header!r}"
                )
            with path.open("rb") as fh:
                fh.seek(seek_to if seek_to is not None and index == first_file else data_at)
                for _at, record, fields in _tsv_records(fh):
                    if not _is_row(fields):
                        continue
                    if row >= stop:
                        break
                    if row >= start:
                        if not record.endswith(b"\n"):
                            record += b"\r\n"  # last line of a file without a newline
                        out.write(record)
                        written += 1
                    row += 1
    return written


def _slice_parquet(files: list[Path], start: int, stop: int, tmp: Path) -> int:
    schema = pq.ParquetFile(files[0]).schema_arrow
    written, offset = 0, 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for path in files:
            if offset >= stop:
                break
            pf = pq.ParquetFile(path)
            n = pf.metadata.num_rows
            if offset + n <= start:
                offset += n
                continue
            if not pf.schema_arrow.equals(schema):
                raise ConversionError(
                    f"{path}: columns {pf.schema_arrow.names} differ from {files[0].name}'s "
                    f"{schema.names}; the files of one URL list must share a schema"
                )
            groups, group_at, first_row = [], offset, None
            for g in range(pf.metadata.num_row_groups):
                g_rows = pf.metadata.row_group(g).num_rows
                if group_at + g_rows > start and group_at < stop:
                    groups.append(g)
                    first_row = group_at if first_row is None else first_row
                group_at += g_rows
            row = first_row if first_row is not None else offset
            for batch in pf.iter_batches(batch_size=_PARQUET_BATCH, row_groups=groups):
                lo, hi = max(start, row), min(stop, row + batch.num_rows)
                if hi > lo:
                    writer.write_table(pa.Table.from_batches([batch.slice(lo - row, hi - lo)]))
                    written += hi - lo
                row += batch.num_rows
                if row >= stop:
                    break
            offset += n
    return written


# ------------------------------------------------------------------------------ running


def shard_name(shard_id: int, oom_shard_count: int = 5) -> str:
    return f"{shard_id:0{oom_shard_count}d}"


def shard_ids(folder: str | Path) -> list[int]:
    """Ids of the shards img2dataset finished in `folder` (those with a `_stats.json`)."""
    return sorted(int(m.group(1)) for p in Path(folder).iterdir() if (m := _SHARD_RE.match(p.name)))


def stats_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if _SHARD_RE.match(p.name))


def run_part(
    part_list: str | Path,
    out_dir: str | Path,
    *,
    shard_offset: int,
    i2d_args: dict[str, Any],
    processes: int,
    threads: int,
    log_file: str | Path | None = None,
    python: str = sys.executable,
) -> dict[str, Any]:
    """Run img2dataset on `part_list` into `out_dir` (atomically), shards numbered from offset.

    `i2d_args` are img2dataset.download() keyword arguments (input_format, url_col,
    caption_col, output_format, image_size, number_sample_per_shard, ...); url_list,
    output_folder, processes_count, thread_count, incremental_mode and enable_wandb are set
    here. img2dataset runs in a child interpreter with NO_ALBUMENTATIONS_UPDATE=1 and
    WANDB_MODE=disabled; its output goes to `log_file` (appended) or to our stderr.
    Returns summarize() of the part's shards plus `rows`, `shard_offset`, `shard_names`.
    """
    args = {**I2D_DEFAULTS, **i2d_args}
    fmt = args.get("input_format")
    if fmt not in FORMATS:
        raise ConversionError(f"i2d_args['input_format'] must be one of {FORMATS}, got {fmt!r}")
    per_shard, oom = int(args["number_sample_per_shard"]), int(args["oom_shard_count"])
    part_list, out_dir = Path(part_list), Path(out_dir)
    rows = count_rows(part_list, fmt)
    expected = list(range(shard_offset, shard_offset + math.ceil(rows / per_shard)))
    with staged(out_dir, directory=True) as tmp:
        if rows:
            placeholder = None
            if shard_offset > 0:
                placeholder = tmp / f"{shard_name(shard_offset - 1, oom)}_stats.json"
                # img2dataset's logger process reads every *.json and prints one harmless
                # "failed to parse stats file ..." line for this one.
                placeholder.write_text('{"vlprep": "placeholder: extend mode starts after me"}\n')
            args |= {
                "url_list": str(part_list.resolve()),
                "output_folder": str(tmp.resolve()),
                "processes_count": processes,
                "thread_count": threads,
                "incremental_mode": "extend",
                "enable_wandb": False,
            }
            _run_img2dataset(args, log_file, python, part_list)
            if placeholder:
                placeholder.unlink()
            remove_path(tmp / "_tmp")
            got = shard_ids(tmp)
            if got != expected:
                raise VlprepError(
                    f"img2dataset on {part_list} finished without the expected shards: wanted "
                    f"{_id_range(expected, oom)}, got {_id_range(got, oom)}. Some shards failed "
                    f"as a whole (see {log_file or 'the log above'}); run the job again."
                )
        report = summarize(stats_files(tmp))
    report |= {"rows": rows, "shard_offset": shard_offset,
               "shard_names": [shard_name(i, oom) for i in expected]}  # fmt: skip
    log.info(
        "%s: %d rows, %d ok (%s), %.0f img/s", part_list.name, rows, report["succeeded"],
        f"{report['success_rate']:.1%}" if report["success_rate"] is not None else "-",
        report["images_per_s"],
    )  # fmt: skip
    return report


def run_whole(
    url_list: str | Path,
    out_dir: str | Path,
    *,
    i2d_args: dict[str, Any],
    processes: int,
    threads: int,
    log_file: str | Path | None = None,
    python: str = sys.executable,
) -> dict[str, Any]:
    """Plain img2dataset over the whole list into `out_dir` (no parts, no staging): the
    reference the parts are compared with in tests and benchmarks. Returns summarize()."""
    args = {**i2d_args, "url_list": str(Path(url_list).resolve()),
            "output_folder": str(Path(out_dir).resolve()), "processes_count": processes,
            "thread_count": threads, "enable_wandb": False}  # fmt: skip
    _run_img2dataset(args, log_file, python, Path(url_list))
    return summarize(stats_files(out_dir))


def _id_range(ids: list[int], oom: int) -> str:
    if not ids:
        return "none"
    return f"{len(ids)} shards {shard_name(ids[0], oom)}..{shard_name(ids[-1], oom)}"


def _run_img2dataset(args: dict, log_file, python: str, what: Path) -> None:
    env = {**os.environ, **CHILD_ENV}
    payload = json.dumps(args)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as out:
            proc = subprocess.run([python, "-c", _RUNNER], input=payload.encode(), env=env,
                                  stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    else:
        proc = subprocess.run([python, "-c", _RUNNER], input=payload.encode(), env=env,
                              stdout=sys.stderr, stderr=sys.stderr)  # fmt: skip
    if proc.returncode != 0:
        raise VlprepError(
            f"img2dataset failed on {what} (exit status {proc.returncode}); "
            f"see {log_file or 'the output above'} for its error"
        )


# ------------------------------------------------------------------------------- reports


def reason_kind(message: str) -> str:
    """A failure message with its numbers blanked, so per-URL details group together."""
    return re.sub(r"\d+", "N", message)


def summarize(stats_files: Iterable[str | Path]) -> dict[str, Any]:
    """Totals over img2dataset `_stats.json` files.

    attempted (sum of count), succeeded, failed_to_download, failed_to_resize,
    failed_by_reason (status_dict without "success", most common first), failed_by_kind (the
    same with digits blanked: `IncompleteRead(N bytes read, N more expected)`), duration (wall
    span: last end_time - first start_time), shard_seconds (sum of shard durations),
    images_per_s (attempted / duration), success_rate (None when nothing was attempted).
    """
    totals = Counter()
    reasons: Counter[str] = Counter()
    starts, ends, shards = [], [], 0
    for path in stats_files:
        stats = json.loads(Path(path).read_text())
        if "count" not in stats:
            continue  # run_part's placeholder
        shards += 1
        totals["attempted"] += stats["count"]
        totals["succeeded"] += stats["successes"]
        totals["failed_to_download"] += stats["failed_to_download"]
        totals["failed_to_resize"] += stats["failed_to_resize"]
        totals["shard_seconds"] += stats["duration"]
        starts.append(stats["start_time"])
        ends.append(stats["end_time"])
        reasons.update(stats.get("status_dict") or {})
    reasons.pop("success", None)
    kinds: Counter[str] = Counter()
    for message, n in reasons.items():
        kinds[reason_kind(message)] += n
    duration = (max(ends) - min(starts)) if starts else 0.0
    attempted = totals["attempted"]
    return {
        "shards": shards,
        "attempted": attempted,
        "succeeded": totals["succeeded"],
        "failed_to_download": totals["failed_to_download"],
        "failed_to_resize": totals["failed_to_resize"],
        "failed_by_reason": dict(reasons.most_common()),
        "failed_by_kind": dict(kinds.most_common()),
        "duration": duration,
        "shard_seconds": float(totals["shard_seconds"]),
        "images_per_s": attempted / duration if duration > 0 else 0.0,
        "success_rate": totals["succeeded"] / attempted if attempted else None,
    }


def check_success(report: dict[str, Any], floor: float, dataset: str) -> float:
    """Raise a VlprepError when fewer than `floor` of the attempted images downloaded.

    Returns the success rate. Nothing attempted at all also fails: an empty result is never
    what a download step was meant to produce.
    """
    attempted, succeeded = report["attempted"], report["succeeded"]
    if not attempted:
        raise VlprepError(
            f"{dataset}: img2dataset attempted no URLs at all; is the URL list empty?"
        )
    rate = succeeded / attempted
    if rate < floor:
        top = list((report.get("failed_by_kind") or report.get("failed_by_reason") or {}).items())
        causes = "; ".join(f"{n:,} x {msg[:120]}" for msg, n in top[:5]) or "none recorded"
        raise VlprepError(
            f"\n{'!' * 78}\n{dataset}: ONLY {succeeded:,} OF {attempted:,} IMAGES DOWNLOADED "
            f"({rate:.1%}), BELOW THE SUCCESS FLOOR OF {floor:.0%}.\n"
            f"Most common failures: {causes}.\n"
            f"Check the network (or a proxy/rate limit), then rerun, or retry just the failed "
            f"rows; if this rate is expected for {dataset}, lower its success floor in the "
            f"config.\n{'!' * 78}"
        )
    return rate


# ------------------------------------------------------------------------------- retries


def _shard_parquets(shard_dir: Path) -> list[Path]:
    return sorted(p for p in shard_dir.glob("*.parquet") if p.stem.isdigit())


def failed_rows(parquet_files: Iterable[str | Path]) -> Iterator[dict[str, Any]]:
    """Rows of img2dataset's per-shard parquet files whose status is not "success"."""
    for path in parquet_files:
        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=_PARQUET_BATCH):
            for row in batch.to_pylist():
                if row.get("status") != "success":
                    yield row


def write_retry_list(parquet_files: list[Path], dest: str | Path) -> dict[str, Any]:
    """Write the failed rows as a parquet URL list (url, caption?, extras..., orig_key).

    Returns {"rows", "caption", "extras", "by_reason"}; streams in batches.
    """
    if not parquet_files:
        raise ConversionError("no img2dataset shard parquet files to read failed rows from")
    names = pq.ParquetFile(parquet_files[0]).schema_arrow
    has_caption = "caption" in names.names
    extras = [n for n in names.names if n not in RESERVED and n != ORIG_KEY]
    columns = ["url"] + (["caption"] if has_caption else []) + extras
    fields = [names.field(c) for c in columns] + [pa.field(ORIG_KEY, pa.string())]
    schema = pa.schema(fields)
    by_reason: Counter[str] = Counter()
    rows, buffer = 0, []
    with staged(dest) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for row in failed_rows(parquet_files):
            by_reason[row.get("error_message") or row.get("status") or "unknown"] += 1
            record = {c: row.get(c) for c in columns}
            # a retry of a retry keeps the first key
            record[ORIG_KEY] = row.get(ORIG_KEY) or row["key"]
            buffer.append(record)
            rows += 1
            if len(buffer) >= _PARQUET_BATCH:
                writer.write_table(pa.Table.from_pylist(buffer, schema))
                buffer = []
        if buffer:
            writer.write_table(pa.Table.from_pylist(buffer, schema))
    return {"rows": rows, "caption": has_caption, "extras": extras, "by_reason": dict(by_reason)}


def retry_failed(
    shard_dir: str | Path,
    out_dir: str | Path,
    *,
    i2d_args: dict[str, Any],
    processes: int,
    threads: int,
    shard_offset: int | None = None,
    log_file: str | Path | None = None,
) -> dict[str, Any]:
    """Download again only the rows of `shard_dir` that failed; new shards go to `out_dir`.

    `i2d_args` are the ones the shards were made with (resize, output format, shard size);
    the input columns are replaced by the retry list's. The retry list is written to
    `<out_dir>.urls.parquet`; shards are numbered from `shard_offset` (default: the highest
    shard id in `shard_dir` + 1). `shard_dir` is only read.

    Returns {"rows_retried", "recovered", "still_failed", "retried_by_kind",
    "still_failed_by_reason", "still_failed_by_kind", "retry_list", "shard_offset", "stats"}.
    """
    shard_dir, out_dir = Path(shard_dir), Path(out_dir)
    if out_dir.resolve() == shard_dir.resolve():
        raise ConversionError(f"{out_dir}: the retry output must not be the shard folder itself")
    parquets = _shard_parquets(shard_dir)
    ids = shard_ids(shard_dir)
    if shard_offset is None:
        shard_offset = (ids[-1] + 1) if ids else 0
    retry_list = out_dir.with_name(out_dir.name + ".urls.parquet")
    listed = write_retry_list(parquets, retry_list)
    args = dict(i2d_args)
    for key in ("bbox_col", "verify_hash"):
        args.pop(key, None)
    args |= {
        "input_format": "parquet",
        "url_col": "url",
        "caption_col": "caption" if listed["caption"] else None,
        "save_additional_columns": listed["extras"] + [ORIG_KEY],
    }
    stats = run_part(retry_list, out_dir, shard_offset=shard_offset, i2d_args=args,
                     processes=processes, threads=threads, log_file=log_file)  # fmt: skip
    retried_kinds: Counter[str] = Counter()
    for message, n in listed["by_reason"].items():
        retried_kinds[reason_kind(message)] += n
    report = {
        "rows_retried": listed["rows"],
        "recovered": stats["succeeded"],
        "still_failed": stats["attempted"] - stats["succeeded"],
        "retried_by_kind": dict(retried_kinds.most_common()),
        "still_failed_by_reason": stats["failed_by_reason"],
        "still_failed_by_kind": stats["failed_by_kind"],
        "retry_list": str(retry_list),
        "shard_offset": shard_offset,
        "stats": stats,
    }
    log.info("retry of %s: %d rows, %d recovered, %d still failing", shard_dir,
             report["rows_retried"], report["recovered"], report["still_failed"])  # fmt: skip
    return report
