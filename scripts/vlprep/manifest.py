"""A product's manifest: what was built, file by file, so the tree can be trusted months later.

Written when a product is built (rule `product_manifest`), under `<data_root>/manifests/`, not
inside the layouts: consumers list their folders (ImageFolder makes a class of any folder it
finds, SUN397 rglobs), so nothing of ours may appear there. Two files per product:

* `<product>.files.jsonl.gz`: one JSON line per path the product's consumer sees, in walk order
  (depth first, names sorted), each path written over its root (`{lavis}/coco/images/...`) so
  two machines with other roots describe the same data with the same lines:
  - `{"path", "type": "dir"}`;
  - `{"path", "type": "file", "size", "sha256"}`, plus `samples` (distinct webdataset keys) of
    a `.tar` and `records` of an annotation file (a JSON list's length, each top-level list of
    a JSON object, the lines of `.jsonl`/`.tsv`/`.csv`, a Parquet file's rows);
  - `{"path", "type": "link", "target"}`: a symlink with its target as written (relative
    within the data root), plus the size and sha256 of the file it shows, or followed into the
    folder it shows. A file reached twice (hard links, two links to one store folder) is read
    once.
* `<product>.json`: the header, written last (its presence says the list is whole): product,
  vlprep version, date, roots, the config keys that shaped the product, the catalog entries
  it was built from with their checksums, what each download recorded (sha256, hub revision),
  what was filtered and why (the reports the build wrote), licences and citations, totals (and
  per file suffix: files, bytes, tar samples, annotation records), and the sha256 of the file
  list (equal lists: equal data).

vlprep.verify re-checks a tree against these; vlprep.croissant exports them as Croissant.
"""

import gzip
import hashlib
import json
import os
import sqlite3
import stat
import tarfile
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ijson

from vlprep import __version__
from vlprep.atomic import staged
from vlprep.errors import VlprepError
from vlprep.progress import bar

FORMAT = "vlprep-manifest/1"
CHUNK = 1 << 20
# Suffixes whose lines are records (a header line, if any, is counted too: it is a count of
# lines, compared between two builds, not a sample count for training).
LINE_RECORDS = (".jsonl", ".tsv", ".csv")
# Keys of a build report worth keeping in the manifest: counts, not examples (bounded size).
REPORT_KEYS = (
    "records",
    "kept",
    "dropped",
    "eval_set",
    "written",
    "attempted",
    "succeeded",
    "success_rate",
    "failed_to_download",
    "failed_to_resize",
    "failed_by_kind",
    "shards",
    "images",
)


class ManifestError(VlprepError):
    """A product's tree cannot be described (a broken link, a special file) or read back."""


def manifest_paths(folder: str | Path, product: str) -> tuple[Path, Path]:
    """The header and the file list of `product`'s manifest in `folder`."""
    folder = Path(folder)
    return folder / f"{product}.json", folder / f"{product}.files.jsonl.gz"


# ---- walking a product's tree -------------------------------------------------------------


@dataclass
class Node:
    """One path of a product as found on disk: `path` over its root, `real` the file system
    path, `kind` dir|file|link|broken, `target` a link's text, `st` the stat of what it shows."""

    path: str
    real: str
    kind: str
    target: str | None = None
    st: os.stat_result | None = None


def resolve(template: str, roots: dict[str, str]) -> Path:
    """The file system path of `{root}/rest`."""
    head, _, rest = template.partition("/")
    if not (head.startswith("{") and head.endswith("}")) or head[1:-1] not in roots:
        raise ManifestError(f"{template}: does not start with a known root {sorted(roots)}")
    return Path(roots[head[1:-1]], rest) if rest else Path(roots[head[1:-1]])


def _key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


def declared(paths: Iterable[str]) -> list[str]:
    """A product's paths in walk order, without those inside another one."""
    ordered = sorted(set(paths), key=_key)
    kept: list[str] = []
    for path in ordered:
        if not any(path.startswith(outer + "/") for outer in kept):
            kept.append(path)
    return kept


def walk(
    paths: Iterable[str], roots: dict[str, str], *, missing_ok: bool = False
) -> Iterator[Node]:
    """Every path under a product's `paths`, depth first with names sorted (the order of the
    file list), links followed into folders. A broken link is a Node of kind "broken"; a
    declared path that is absent raises, unless `missing_ok` (verify reports it instead).

    A node's `real` has its folders resolved (no link in it but, maybe, its last component):
    where it is, and a path the kernel does not resolve again for every file under a link."""
    for template in declared(paths):
        real = resolve(template, roots)
        if not os.path.lexists(real):
            if missing_ok:
                continue
            raise ManifestError(f"{real}: missing; the product was not built (or was moved)")
        located = os.path.join(os.path.realpath(real.parent), real.name)
        yield from _walk_node(template, located, frozenset())


def _walk_node(path: str, real: str, seen: frozenset[tuple[int, int]]) -> Iterator[Node]:
    target = None
    try:
        lst = os.lstat(real)
    except FileNotFoundError:  # removed while we walk
        return
    if stat.S_ISLNK(lst.st_mode):
        target = os.readlink(real)
        try:
            st = os.stat(real)
        except OSError:
            yield Node(path, real, "broken", target)
            return
    else:
        st = lst
    if stat.S_ISDIR(st.st_mode):
        ident = (st.st_dev, st.st_ino)
        if ident in seen:  # a link back up the tree: describe it, do not loop
            yield Node(path, real, "link", target, st)
            return
        yield Node(path, real, "link" if target is not None else "dir", target, st)
        base = os.path.realpath(real) if target is not None else real
        try:
            names = sorted(os.listdir(base))
        except OSError as err:
            raise ManifestError(f"{real}: cannot list ({err})") from None
        inner = seen | {ident}
        for name in names:
            yield from _walk_node(f"{path}/{name}", f"{base}/{name}", inner)
    elif stat.S_ISREG(st.st_mode):
        yield Node(path, real, "link" if target is not None else "file", target, st)
    else:
        yield Node(path, real, "special", target, st)


# ---- what a file holds ------------------------------------------------------------------


class _Tee:
    """A file read once for two uses: tarfile's stream reads it, and every byte it reads goes
    into the file's sha256 too."""

    def __init__(self, f) -> None:
        self.f, self.digest, self.size = f, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def read_tar(path: Path) -> dict[str, Any]:
    """size, sha256, `samples` (distinct webdataset keys: a member's name up to the first dot
    of its base name) and `content` (the members' names and bytes, in name order, without
    their headers' times and owners or the order they were written in: two crawls that got
    the same images write different bytes) of a tar shard, in one read."""
    keys, last = 0, None
    members = []
    with open(path, "rb") as f:
        tee = _Tee(f)
        with tarfile.open(fileobj=tee, mode="r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                data = hashlib.sha256()
                source = tar.extractfile(member)
                while chunk := source.read(CHUNK):
                    data.update(chunk)
                members.append((member.name, data.hexdigest()))
                folder, _, base = member.name.rpartition("/")
                key = f"{folder}/{base.split('.', 1)[0]}"
                if key != last:  # webdataset groups consecutive members of one key
                    keys += 1
                    last = key
        tee.drain()
    content = hashlib.sha256()
    for name, digest in sorted(members):
        content.update(f"{name}\0{digest}\n".encode())
    return {
        "size": tee.size,
        "sha256": tee.digest.hexdigest(),
        "samples": keys,
        "content": content.hexdigest(),
    }


def tar_samples(path: Path) -> int:
    """Distinct webdataset sample keys of a tar shard."""
    return read_tar(path)["samples"]


# Keys of run records (img2dataset's *_stats.json, our reports, the hub's record) that say
# when and how fast, not what: left out of their `content`.
VOLATILE_KEYS = frozenset(
    {
        "duration",
        "start_time",
        "end_time",
        "seconds",
        "images_per_s",
        "shard_seconds",
        "endpoint",
        "source_url",
        "fetched",
        "built",
    }
)
# Bigger than this, a run record or Parquet file is compared by its bytes.
CONTENT_LIMIT = 64 << 20


def run_record(name: str) -> bool:
    """Whether a JSON file records a run (timings beside counts) rather than holding data."""
    base = name.rsplit("/", 1)[-1]
    return (
        base.endswith("_stats.json") or base == ".vlprep-hub.json" or name.startswith("{reports}/")
    )


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def json_content(path: str | Path) -> str | None:
    """sha256 of a run record without its VOLATILE_KEYS, keys sorted; None if not JSON."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except ValueError:
        return None
    text = json.dumps(_stable(data), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def parquet_content(path: Path) -> tuple[int, str]:
    """Rows and the sha256 of the rows in sorted order (img2dataset writes a shard's rows in
    the order its threads finish)."""
    import pyarrow.parquet as pq

    rows = sorted(
        json.dumps(row, sort_keys=True, default=str, ensure_ascii=False)
        for row in pq.read_table(path).to_pylist()
    )
    digest = hashlib.sha256()
    for row in rows:
        digest.update(row.encode() + b"\n")
    return len(rows), digest.hexdigest()


def json_records(path: Path) -> int | dict[str, int] | None:
    """A JSON list's length, or the length of each top-level list of a JSON object; None if
    the file is not JSON (an annotation file in another format)."""
    counts: dict[str, int] = {}
    depth_list: str | None = None
    top_is_list = False
    items = 0
    try:
        with open(path, "rb") as f:
            for prefix, event, value in ijson.parse(f):
                if prefix == "" and event == "start_array":
                    top_is_list = True
                elif prefix == "" and event == "map_key":
                    depth_list = value
                elif top_is_list and prefix == "item" and event in _ITEM_START:
                    items += 1
                elif depth_list is not None and prefix == depth_list and event == "start_array":
                    counts[depth_list] = 0
                elif (
                    depth_list is not None
                    and prefix == f"{depth_list}.item"
                    and event in _ITEM_START
                ):
                    counts[depth_list] += 1
    except (ijson.JSONError, UnicodeDecodeError, ValueError):
        return None
    return items if top_is_list else counts


# ijson's events that begin a list item (a scalar item is one event)
_ITEM_START = ("start_map", "start_array", "string", "number", "boolean", "null")


def describe_file(real: Path, name: str) -> dict[str, Any]:
    """size, sha256 and, for a shard or annotation file, its sample/record count; `content`
    where the bytes hold more than the data (a tar's member times, a shard's row order, a run
    record's timings), which manifests of two builds are compared by (vlprep.verify)."""
    try:
        if name.endswith(".tar"):
            return read_tar(real)
    except tarfile.TarError as err:
        raise ManifestError(f"{real}: not a readable tar ({err})") from None
    digest = hashlib.sha256()
    lines = 0
    count_lines = name.endswith(LINE_RECORDS)
    size = 0
    with open(real, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if count_lines:
                lines += chunk.count(b"\n")
    fields: dict[str, Any] = {"size": size, "sha256": digest.hexdigest()}
    if name.endswith(".json"):
        records = json_records(real)
        if records is not None:
            fields["records"] = records
        if run_record(name) and size <= CONTENT_LIMIT:
            content = json_content(real)
            if content:
                fields["content"] = content
    elif count_lines:
        fields["records"] = lines
    elif name.endswith(".parquet"):
        try:
            if size <= CONTENT_LIMIT:
                fields["records"], fields["content"] = parquet_content(real)
            else:
                import pyarrow.parquet as pq

                fields["records"] = pq.ParquetFile(real).metadata.num_rows
        except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds
            raise ManifestError(f"{real}: not a readable Parquet file ({err})") from None
    return fields


class FileReader:
    """describe_file for the files of one walk, each inode read once: a file shown twice (a
    hard link, two links to one store folder) is read by the first thread to reach it, and the
    others take its result. Results are kept on disk (a temporary SQLite file), so memory stays
    flat whatever the product's size."""

    def __init__(self, read: Callable[[Node], dict[str, Any]] | None = None) -> None:
        self.read = read or (lambda node: describe_file(node.real, node.path))
        self._dir = tempfile.TemporaryDirectory(prefix="vlprep-manifest-")
        self._db = sqlite3.connect(Path(self._dir.name, "seen.sqlite"), check_same_thread=False)
        self._db.execute(
            "CREATE TABLE seen (dev INT, ino INT, fields TEXT, PRIMARY KEY (dev, ino))"
        )
        self._lock = threading.Lock()
        self._busy: dict[tuple[int, int], threading.Event] = {}

    def _known(self, ident: tuple[int, int]) -> dict[str, Any] | None:
        row = self._db.execute("SELECT fields FROM seen WHERE dev = ? AND ino = ?", ident)
        found = row.fetchone()
        return json.loads(found[0]) if found else None

    def __call__(self, node: Node) -> dict[str, Any] | None:
        if node.kind not in ("file", "link") or node.st is None:
            return None
        if not stat.S_ISREG(node.st.st_mode):
            return None
        ident = (node.st.st_dev, node.st.st_ino)
        with self._lock:
            known = self._known(ident)
            if known is not None:
                return known
            event = self._busy.get(ident)
            first = event is None
            if first:
                event = self._busy[ident] = threading.Event()
        if not first:
            event.wait()
            with self._lock:
                known = self._known(ident)
            return known if known is not None else self.read(node)
        try:
            fields = self.read(node)
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO seen VALUES (?, ?, ?)", (*ident, json.dumps(fields))
                )
            return fields
        finally:
            event.set()
            with self._lock:
                self._busy.pop(ident, None)

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()


def ordered_map(
    func: Callable[[Any], Any], items: Iterable[Any], workers: int, window: int = 256
) -> Iterator[tuple[Any, Any]]:
    """(item, func(item)) in the order of `items`, computed by `workers` threads (hashlib and
    file reads release the GIL); at most `window` items in flight, so memory stays flat."""
    pending: deque[tuple[Any, Future]] = deque()
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for item in items:
            pending.append((item, pool.submit(func, item)))
            if len(pending) >= window:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def describe_nodes(nodes: Iterable[Node], workers: int, desc: str) -> Iterator[dict[str, Any]]:
    """The file-list lines of `nodes`, files read in parallel, each inode once."""
    reader = FileReader()
    try:
        with bar(None, desc, unit="B", unit_scale=True, unit_divisor=1024) as progress:
            for node, fields in ordered_map(reader, nodes, workers):
                if node.kind == "special":
                    raise ManifestError(
                        f"{node.real}: neither a file, a folder nor a link; consumers cannot "
                        "read it: remove it and rebuild the product"
                    )
                if node.kind == "broken":
                    raise ManifestError(
                        f"{node.real}: a broken link (to {node.target}); rebuild the product"
                    )
                line: dict[str, Any] = {"path": node.path, "type": node.kind}
                if node.target is not None:
                    line["target"] = node.target
                if fields:
                    line.update(fields)
                    progress.update(fields["size"])
                yield line
    finally:
        reader.close()


# ---- the header --------------------------------------------------------------------------


def report_summary(report: Path) -> dict[str, Any] | None:
    """The counts of a build report (annotation filtering, image crawl), without examples."""
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return {key: data[key] for key in REPORT_KEYS if key in data}


def filtered(paths: Iterable[str], roots: dict[str, str]) -> dict[str, Any]:
    """What the build left out and why: the reports of the product's annotation files
    (`reports/<layout>/<path>.json`) and of its image crawls (its own `{reports}` files)."""
    if "reports" in roots:
        reports = Path(roots["reports"])
    elif "data_root" in roots:  # roots as a header records them: only those the paths use
        reports = Path(roots["data_root"]) / "reports"
    else:
        return {}
    found: dict[str, Any] = {}
    for template in declared(paths):
        head, _, rest = template.partition("/")
        root = head[1:-1]
        candidates: list[Path] = []
        if root == "reports":
            candidates = [resolve(template, roots)]
        elif rest:
            own = reports / root / rest
            candidates = [own] if own.suffix == ".json" else []
            if own.is_dir():
                candidates += sorted(own.rglob("*.json"))
        for report in candidates:
            summary = report_summary(report) if report.is_file() else None
            if summary:
                found[str(report.relative_to(reports))] = summary
    return found


def source_records(
    entries: Iterable[str], catalog: dict[str, dict], downloads: str | Path
) -> dict[str, Any]:
    """Each catalog entry the product was built from: what the catalog pins, and what its
    download recorded (vlprep.sources.FETCH_RECORD, the hub's .vlprep-hub.json)."""
    from vlprep.sources import FETCH_RECORD

    sources = {}
    for entry in entries:
        source = catalog.get(entry, {})
        pinned = {
            key: source[key]
            for key in (
                "kind",
                "url",
                "repo",
                "repo_type",
                "revision",
                "files",
                "filename",
                "size",
                "sha256",
                "sha1",
                "md5",
            )
            if source.get(key) is not None
        }
        folder = Path(downloads, entry)
        recorded = None
        for name in (FETCH_RECORD, ".vlprep-hub.json"):
            record = folder / name
            if record.is_file():
                try:
                    recorded = json.loads(record.read_text())
                except ValueError:
                    recorded = None
                if recorded is not None and name == ".vlprep-hub.json":
                    recorded.pop("endpoint", None)  # where it came from, not what it is
                break
        sources[entry] = {
            "catalog": pinned,
            "recorded": recorded,
            "license": source.get("license"),
            "citation": source.get("citation"),
        }
    return sources


# Distinct file suffixes a header tallies; more (a folder of oddly named files) go to "other".
KIND_LIMIT = 32


def tally_kind(kinds: dict[str, dict[str, int]], line: dict[str, Any]) -> None:
    """Add a file-list line to the header's tally by suffix (files, bytes, tar samples,
    annotation records): what a report says a product holds without reading its list."""
    name = line["path"].rsplit("/", 1)[-1]
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name.lstrip(".") else ""
    if suffix not in kinds and len(kinds) >= KIND_LIMIT:
        suffix = "other"
    tally = kinds.setdefault(suffix, {"files": 0, "bytes": 0})
    tally["files"] += 1
    tally["bytes"] += line["size"]
    records = line.get("records")
    if isinstance(records, dict):
        records = sum(records.values())
    for key, value in (("samples", line.get("samples")), ("records", records)):
        if value is not None:
            tally[key] = tally.get(key, 0) + value


def write_manifest(
    product: str,
    paths: list[str],
    roots: dict[str, str],
    folder: str | Path,
    *,
    entries: Iterable[str] = (),
    catalog: dict[str, dict] | None = None,
    config: dict[str, Any] | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    """Describe `product` (its declared `paths` over `roots`) into `folder`; return the header.

    The file list is written first, then the header; each appears only when complete."""
    header_path, list_path = manifest_paths(folder, product)
    Path(folder).mkdir(parents=True, exist_ok=True)
    listing = hashlib.sha256()
    totals = {"files": 0, "links": 0, "dirs": 0, "bytes": 0, "samples": 0}
    kinds: dict[str, dict[str, int]] = {}
    # mtime 0 and no name: the gzip bytes depend only on the lines
    with (
        staged(list_path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as out,
    ):
        for line in describe_nodes(walk(paths, roots), workers, f"manifest {product}"):
            data = (json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n").encode()
            listing.update(data)
            out.write(data)
            kind = line["type"]
            totals["dirs" if kind == "dir" else "links" if kind == "link" else "files"] += 1
            totals["bytes"] += line.get("size", 0)
            totals["samples"] += line.get("samples", 0)
            if "size" in line:
                tally_kind(kinds, line)
    used_roots = {
        name: str(Path(value).resolve())
        for name, value in roots.items()
        if name == "data_root" or any(p.startswith("{" + name + "}") for p in paths)
    }
    header = {
        "format": FORMAT,
        "product": product,
        "vlprep_version": __version__,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "roots": used_roots,
        "paths": declared(paths),
        "config": config or {},
        "sources": source_records(entries, catalog or {}, roots.get("downloads", "")),
        "filtered": filtered(paths, roots),
        "totals": totals,
        "kinds": dict(sorted(kinds.items())),
        "files": list_path.name,
        "files_sha256": listing.hexdigest(),
    }
    with staged(header_path) as tmp:
        tmp.write_text(json.dumps(header, indent=1, ensure_ascii=False) + "\n")
    return header


# ---- reading one back --------------------------------------------------------------------


def read_header(path: str | Path) -> dict[str, Any]:
    """A manifest's header, checked to be one."""
    path = Path(path)
    try:
        header = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ManifestError(f"{path}: not a readable manifest ({err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ManifestError(f"{path}: not a vlprep manifest (format {FORMAT} expected)")
    return header


def read_lines(header_path: str | Path) -> Iterator[dict[str, Any]]:
    """The file list of the manifest whose header is at `header_path`, streamed."""
    header_path = Path(header_path)
    header = read_header(header_path)
    list_path = header_path.with_name(header["files"])
    try:
        with gzip.open(list_path, "rt", encoding="utf-8") as lines:
            for number, text in enumerate(lines, 1):
                try:
                    yield json.loads(text)
                except ValueError as err:
                    raise ManifestError(f"{list_path}:{number}: not a JSON line ({err})") from None
    except (OSError, EOFError) as err:
        raise ManifestError(
            f"{list_path}: unreadable ({err}); rebuild it with `snakemake {header['product']}` "
            "after removing the manifest"
        ) from None
