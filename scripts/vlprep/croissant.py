"""A product's manifest as Croissant 1.1 (MLCommons' JSON-LD for ML datasets), written beside it.

`<data_root>/manifests/<product>.croissant.json` says, in a vocabulary tools read (mlcroissant,
dataset catalogs), what `<product>.json` and its file list say. It is written by hand from the
manifest (the workflow needs no Croissant library; the tests read every export back with
mlcroissant 1.1.1, offline: the context is inline). The mapping:

* The header gives the dataset: `name` the product, `description` what the registry says of
  it, the build's totals and what its reports left out, `license` each distinct licence of its
  catalog entries, `citeAs` their distinct citations (one per line), `isBasedOn` the entries
  themselves, `version` vlprep's version with the file list's sha256 as build metadata (equal
  versions: equal data), `datePublished` the build date.
* The file list (streamed twice, never held whole) gives the `distribution`. Every location is
  a URL relative to the manifests folder (`../lavis/coco/...`: mlcroissant resolves it against
  the folder of the JSON-LD), so a data root copied or moved whole keeps its Croissant valid;
  each item's `name` is its path over its root (`{lavis}/coco/...`), as in the manifest.
  - A webdataset shard (.tar) is a FileObject with its sha256.
  - An annotation file (.json, .jsonl, .tsv, .csv, .parquet) is a FileObject with its sha256
    (one more per further list of a JSON object: mlcroissant reads all the JSONPaths of a
    FileObject into one table), unless a folder holds more than MAX_OBJECTS of them
    (per-sample sidecars: a FileSet).
  - Every other file is in a FileSet: the files of one suffix under one folder, matched by
    `includes` globs (one per depth: `*.jpg`, `*/*.JPEG`), never an entry per image, so the
    JSON stays small whatever the product's size. Sibling folders of a suffix merge into their
    parent from MERGE_MIN of them on (class folders, cities, numbered parts): a FileSet per
    folder pattern. mlcroissant resolves a FileSet that is in nothing against the JSON-LD's
    own folder only, so each FileSet is `containedIn` a FileObject that is the folder (an
    `inode/directory`, as Croissant describes a git repository as a FileObject), one per
    FileSet (mlcroissant 1.1.1 chains the FileSets of a shared one into a cycle). A folder's
    sha256 is that of its lines in the file list, which name every file under it with its
    own (mlcroissant checks no checksum of a folder).
* Record sets, whose records are the product's samples, each readable by mlcroissant:
  - an image FileSet: `path` (under its folder), `image` (an ImageObject) and, for the
    class-per-folder trees of the COSMOS classification sets (LABEL_TREES), `label` from the
    path (a regex transform). If some files of the set are no image (Visual Genome ships empty
    files and HTML pages as .jpg), `content`, their bytes, instead of `image`: mlcroissant fails
    on those as ImageObjects. Beside a text FileSet of the same pattern (a shard unpacked:
    key.jpg, key.txt) the captions are a record set of their own (key, caption);
  - a folder of webdataset shards: `key`, `image` and `caption` (the `.txt` member) of each
    sample, from FileSets in the folder's tars (mlcroissant extracts them), the captions
    joined on the key;
  - a JSON annotation file: a record set per list of objects (the file's own, or each list of
    a top-level object, at most MAX_LISTS), by JSONPath a field for every key each object has
    with a scalar or list-of-scalars value (captions, image paths and ids, questions, answers);
    a .tsv/.csv with a header line and a .parquet: their columns;
  - a product with none of these (CIFAR's pickles, GranD's archives): a generic record set of
    each file's path and bytes (`content`), per FileSet.
  Tables beside shards (img2dataset's per-shard parquet and stats) and the build's reports are
  described, not read as records: the shards hold the samples.
"""

import hashlib
import json
import os
import re
import tarfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson

from vlprep.atomic import staged
from vlprep.manifest import ManifestError, read_header, read_lines, resolve

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
# The JSON-LD context of Croissant 1.1 (mlcroissant's own): inline, so nothing is fetched.
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "description": {"@container": "@language"},
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "name": {"@container": "@language"},
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}

IMAGE_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
}
TABLE_TYPES = {
    "json": "application/json",
    "jsonl": "application/jsonlines",
    "tsv": "text/tab-separated-values",
    "csv": "text/csv",
    "parquet": "application/x-parquet",
}
OTHER_TYPES = {
    "txt": "text/plain",
    "xml": "application/xml",
    "html": "text/html",
    "md": "text/markdown",
    "mat": "application/x-matlab-data",
    "gz": "application/gzip",
    "zip": "application/zip",
    "npy": "application/x-npy",
    "pkl": "application/x-pickle",
}
TAR_TYPE = "application/x-tar"
FOLDER_TYPE = "inode/directory"
OCTETS = "application/octet-stream"

# Sibling folders holding files of one suffix become one FileSet from this many on: ImageNet's
# 1,000 class folders, Cityscapes' cities, RefCLEF's numbered parts; a train/val pair stays two.
MERGE_MIN = 3
# More annotation (or extensionless) files than this in one folder are per-sample files.
MAX_OBJECTS = 32
# A JSON object with more lists than this is a mapping (Food-101's class -> files), not tables.
MAX_LISTS = 8
MAX_FIELDS = 24
# Members of a shard looked at for the suffixes its samples carry.
PEEK_MEMBERS = 64

# Class-per-folder trees (the folder names the class, as the consumer's torchvision class
# reads it): the tree's folder and the regex that takes the label from a path under it.
LABEL_TREES = {
    "{cosmos}/imagenet/data/val_images": r"^([^/]+)/[^/]+$",
    "{cosmos}/classification/caltech101/101_ObjectCategories": r"^([^/]+)/[^/]+$",
    "{cosmos}/classification/dtd/dtd/images": r"^([^/]+)/[^/]+$",
    "{cosmos}/classification/food-101/images": r"^([^/]+)/[^/]+$",
    # torchvision's SUN397: the path between the letter folder and the file
    "{cosmos}/classification/SUN397": r"^[^/]+/(.+)/[^/]+$",
}
# A webdataset key: the folders and the base name up to its first dot (webdataset's own
# split); idempotent, since mlcroissant applies it again to a key a join already made.
KEY_REGEX = r"^((?:.*/)?[^/.]*)(?:\.[^/]*)?$"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JSONPATH_RESERVED = {"where"}
HEADER_CELL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def croissant_path(header_path: str | Path) -> Path:
    """Where the Croissant of the manifest at `header_path` goes: beside it."""
    header_path = Path(header_path)
    return header_path.with_name(header_path.name.removesuffix(".json") + ".croissant.json")


def write_croissant(header_path: str | Path) -> Path:
    """Write `<product>.croissant.json` beside the manifest's header; return its path."""
    document = croissant_from_manifest(header_path)
    target = croissant_path(header_path)
    with staged(target) as tmp:
        tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    return target


# ---- the file list, summarised ------------------------------------------------------------


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _suffix(name: str) -> str:
    """The suffix a FileSet matches (`*.<suffix>`): after the last dot, case kept ("" for none,
    and for a hidden name without another dot)."""
    stem, dot, suffix = name.lstrip(".").rpartition(".")
    return suffix if dot and stem else ""


@dataclass
class Bucket:
    """The files of one suffix directly in one folder: how many, and their lines while there
    are few (kept only for files that may become FileObjects)."""

    count: int = 0
    hidden: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Listing:
    """What the Croissant needs of a file list, its size bounded by folders, not files."""

    links: set[str] = field(default_factory=set)  # folders shown by a link
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    tars: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # shard folder -> tars


def summarise(lines: Iterable[dict[str, Any]], declared: list[str]) -> Listing:
    """One pass over a file list: folder links, shards, and files bucketed by folder and
    suffix (lines kept for buckets of a few files, which may become FileObjects)."""
    listing = Listing()
    for line in lines:
        path, kind = line["path"], line["type"]
        if kind == "dir" or (kind == "link" and "sha256" not in line):
            if kind == "link":
                listing.links.add(path)
            continue
        folder, _, name = path.rpartition("/")
        suffix = _suffix(name)
        if suffix == "tar":
            listing.tars.setdefault(folder, []).append(line)
            continue
        bucket = listing.buckets.setdefault((folder, suffix), Bucket())
        bucket.count += 1
        bucket.hidden += name.startswith(".")
        if bucket.count <= MAX_OBJECTS or not _within(folder, declared):
            bucket.lines.append(line)
        else:
            bucket.lines = []  # per-sample files: a FileSet, the lines are not needed
    return listing


# ---- folders: which FileSets --------------------------------------------------------------


def _reachable(top: str, folder: str, links: set[str]) -> bool:
    """Whether walking `top` (os.walk, as mlcroissant does: links to folders not followed)
    reaches `folder`."""
    if folder == top:
        return True
    if not folder.startswith(top + "/"):
        return False
    current = top
    for part in folder[len(top) + 1 :].split("/"):
        current = f"{current}/{part}"
        if current in links:
            return False
    return True


def _within(folder: str, declared: list[str]) -> bool:
    return any(folder == top or folder.startswith(top + "/") for top in declared)


def _absorb(groups: dict[str, set[str]], top: str, links: set[str]) -> None:
    """Make `top` the container of every group its walk reaches (their files match its globs:
    mlcroissant's `*` crosses folders)."""
    merged = groups.pop(top, set())
    for container in [c for c in groups if _reachable(top, c, links)]:
        merged |= groups.pop(container)
    groups[top] = merged


def containers(
    leaves: Iterable[str], links: set[str], declared: list[str], forced: Iterable[str] = ()
) -> dict[str, set[str]]:
    """The folders FileSets are anchored at, each with the folders of its files: every leaf
    folder under one container (the one whose walk reaches it), no container inside another's
    walk, siblings merged from MERGE_MIN on, never above a declared path."""
    groups = {leaf: {leaf} for leaf in leaves}
    for top in forced:
        if any(_reachable(top, leaf, links) for leaf in groups):
            _absorb(groups, top, links)
    for container in sorted(groups, key=lambda c: c.count("/")):
        if container in groups:
            _absorb(groups, container, links)
    while True:
        children: dict[str, set[str]] = defaultdict(set)
        for container in groups:
            child, above = container, _parent(container)
            while above and _within(above, declared) and child not in links:
                children[above].add(child)
                child, above = above, _parent(above)
        merge = [top for top, kids in children.items() if len(kids) >= MERGE_MIN]
        if not merge:
            return groups
        _absorb(groups, max(merge, key=lambda top: (top.count("/"), top)), links)


@dataclass
class Group:
    """A FileSet: files of `suffix` under `container`, at the depths of `leaves` below it, or
    the `names` listed (extensionless files)."""

    container: str
    suffix: str
    leaves: set[str]
    names: list[str] | None = None

    @property
    def depths(self) -> tuple[int, ...]:
        """How deep below the container its files are."""
        depth = self.container.count("/")
        return tuple(sorted({leaf.count("/") - depth for leaf in self.leaves}))

    @property
    def includes(self) -> list[str]:
        if self.names is not None:
            return self.names
        return ["*/" * depth + f"*.{self.suffix}" for depth in self.depths]


# ---- annotation files: their records ------------------------------------------------------


@dataclass
class Column:
    name: str
    data_type: str
    is_array: bool = False


@dataclass
class Table:
    """The records of an annotation file: a JSON list (`key` the top-level key holding it,
    None for a list at the top) or the rows of a table file."""

    key: str | None
    columns: list[Column]


_KINDS = {"string": "str", "boolean": "bool", "null": "null", "start_map": "map"}


def _kind(event: str, value: Any) -> str:
    if event == "number":
        return "int" if isinstance(value, int) else "float"
    if event == "start_array":
        return "list"
    return _KINDS.get(event, "other")


@dataclass
class _ListShape:
    items: int = 0
    item_kinds: set[str] = field(default_factory=set)
    present: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    elements: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def _data_type(kinds: set[str]) -> str | None:
    kinds = kinds - {"null"}
    if kinds == {"str"}:
        return "sc:Text"
    if kinds == {"int"}:
        return "sc:Integer"
    if kinds and kinds <= {"int", "float"}:
        return "sc:Float"
    if kinds == {"bool"}:
        return "sc:Boolean"
    return None


def json_tables(path: Path) -> list[Table]:
    """The lists of objects (or scalars) in a JSON file and the keys every object has with a
    scalar or list-of-scalars value: what JSONPath can extract as aligned columns. One
    streamed pass; memory bounded by the number of distinct keys."""
    top: str | None = None
    shapes: dict[str | None, _ListShape] = {}
    with open(path, "rb") as f:
        for prefix, event, value in ijson.parse(f):
            if not prefix:
                if top is None:
                    top = {"start_array": "list", "start_map": "map"}.get(event, "scalar")
                    if top == "list":
                        shapes[None] = _ListShape()
                continue
            parts = prefix.split(".")
            if top == "map":
                if len(parts) == 1:
                    if event == "start_array":
                        shapes[parts[0]] = _ListShape()
                    continue
                owner, rest = parts[0], parts[1:]
            else:
                owner, rest = None, parts
            shape = shapes.get(owner)
            if shape is None or rest[0] != "item" or event.startswith("end_"):
                continue
            if len(rest) == 1:
                if event == "map_key":
                    shape.present[value] = shape.present.get(value, 0) + 1
                else:
                    shape.items += 1
                    shape.item_kinds.add(_kind(event, value))
            elif len(rest) == 2 and event != "map_key":
                shape.kinds[rest[1]].add(_kind(event, value))
            elif len(rest) == 3 and rest[2] == "item" and event != "map_key":
                shape.elements[rest[1]].add(_kind(event, value))
    if top == "map" and len(shapes) > MAX_LISTS:
        return []
    tables = []
    for key, shape in shapes.items():
        if not shape.items or (key is not None and not _jsonpath_name(key)):
            continue
        if shape.item_kinds == {"map"}:
            columns = []
            for name, count in shape.present.items():
                if count != shape.items or not _jsonpath_name(name):
                    continue  # a key some objects lack would misalign the columns
                kinds = shape.kinds[name]
                if kinds - {"null"} == {"list"}:
                    elements = shape.elements[name]
                    data_type = _data_type(elements) if elements else "sc:Text"
                    if data_type and "null" not in elements:
                        columns.append(Column(name, data_type, is_array=True))
                elif data_type := _data_type(kinds):
                    columns.append(Column(name, data_type))
            if columns:
                tables.append(Table(key, columns[:MAX_FIELDS]))
        elif key is None and (data_type := _data_type(shape.item_kinds)):
            # a list of scalars at the top (VQA's answer_list); under a key, such lists are
            # a mapping's values (Food-101's class -> files), not records
            tables.append(Table(key, [Column("value", data_type)]))
    return tables


def _jsonpath_name(name: str) -> bool:
    return bool(IDENTIFIER.match(name)) and name not in JSONPATH_RESERVED


def header_tables(path: Path, separator: str) -> list[Table]:
    """A .tsv/.csv whose first line names its columns (as pandas reads it): all Text."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        first = f.readline().rstrip("\r\n")
    cells = first.split(separator)
    if not first or not all(HEADER_CELL.match(cell) for cell in cells):
        return []  # no header line: its first record would be read as the column names
    if len(set(cells)) != len(cells):
        return []
    return [Table(None, [Column(cell, "sc:Text") for cell in cells[:MAX_FIELDS]])]


def parquet_tables(path: Path) -> list[Table]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    columns = []
    for column in schema:
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            data_type = "sc:Text"
        elif pa.types.is_boolean(kind):
            data_type = "sc:Boolean"
        elif pa.types.is_integer(kind):
            data_type = "sc:Integer"
        elif pa.types.is_floating(kind):
            data_type = "sc:Float"
        else:
            continue
        if column.name != "index" and IDENTIFIER.match(column.name):
            columns.append(Column(column.name, data_type))
    return [Table(None, columns[:MAX_FIELDS])] if columns else []


def tables_of(real: Path, suffix: str) -> list[Table]:
    """The record tables of an annotation file, [] when it has none mlcroissant can read."""
    try:
        if suffix == "json":
            return json_tables(real)
        if suffix in ("tsv", "csv"):
            return header_tables(real, "\t" if suffix == "tsv" else ",")
        if suffix == "parquet":
            return parquet_tables(real)
    except (ijson.JSONError, UnicodeDecodeError, ValueError):
        return []  # not in its format: mlcroissant could not read it either
    except OSError as err:
        raise ManifestError(f"{real}: unreadable since its manifest was written ({err})") from None
    return []  # .jsonl: pandas' type guessing (dates, numbers) would not give its text back


def shard_suffixes(real: Path) -> list[str]:
    """The member suffixes of a shard's first samples (after the key: `jpg`, `txt`, `json`)."""
    found: list[str] = []
    try:
        with tarfile.open(real, "r:") as tar:
            for number, member in enumerate(tar):
                if number >= PEEK_MEMBERS:
                    break
                if member.isfile():
                    base = member.name.rpartition("/")[2]
                    suffix = base.partition(".")[2]
                    if suffix and suffix not in found:
                        found.append(suffix)
    except (OSError, tarfile.TarError):
        return []
    return found


# ---- the document -------------------------------------------------------------------------


def _slug(template: str) -> str:
    """An @id from a path over its root: `{lavis}/coco/x` -> `lavis/coco/x` (IRI-safe)."""
    return re.sub(r"[^A-Za-z0-9._/*+-]+", "_", template.replace("{", "").replace("}", ""))


def _media_type(suffix: str) -> str:
    lower = suffix.lower()
    return IMAGE_TYPES.get(lower) or TABLE_TYPES.get(lower) or OTHER_TYPES.get(lower) or OCTETS


def _semver(version: str) -> str:
    """vlprep's version as Croissant wants it (MAJOR.MINOR.PATCH)."""
    found = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if not found:
        return "0.0.0"
    return ".".join(part or "0" for part in found.groups())


class Ids:
    """The document's @ids, each used once (JSON-LD merges nodes that share one)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, wanted: str) -> str:
        ident, number = wanted, 1
        while ident in self.used:
            number += 1
            ident = f"{wanted}_{number}"
        self.used.add(ident)
        return ident

    def short(self, template: str, tail: str = "") -> str:
        """A record set's name: the last part of its path, more parts while it is taken."""
        parts = [part for part in _slug(template).split("/") if part]
        for length in range(1, len(parts) + 1):
            ident = "/".join(parts[-length:]) + tail
            if ident not in self.used:
                self.used.add(ident)
                return ident
        return self.take("/".join(parts) + tail)


def _files_source(
    file_set: str, file_property: str, transform: dict[str, str] | None = None
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "fileSet": {"@id": file_set},
        "extract": {"fileProperty": file_property},
    }
    if transform:
        source["transform"] = transform
    return source


class Document:
    """The Croissant of one manifest, assembled from its header and two passes over its file
    list."""

    def __init__(self, header_path: Path) -> None:
        self.header_path = header_path
        self.header = read_header(header_path)
        self.base = header_path.parent.resolve()
        self.roots = self.header["roots"]
        self.declared = list(self.header["paths"])
        self.ids = Ids()
        self.distribution: list[dict[str, Any]] = []
        self.record_sets: list[dict[str, Any]] = []
        self.folders: dict[str, list[dict[str, Any]]] = {}  # folder -> its FileObjects
        self.unlisted = 0  # extensionless files too many to name
        self.digests: dict[str, str] = {}  # folder -> sha256 of its lines
        self.group_sets: dict[int, str] = {}  # id(Group) -> its FileSet
        self.stems: dict[tuple[str, str], str] = {}  # annotation (folder, stem) -> suffix

    def url(self, template: str, folder: bool = False) -> str:
        """`template`'s location relative to the manifests folder (a relative URL)."""
        relative = os.path.relpath(resolve(template, self.roots), self.base)
        return relative + "/" if folder else relative

    # -- distribution

    def file_object(
        self, line: dict[str, Any], media_type: str, ident: str = "", description: str = ""
    ) -> str:
        ident = ident or self.ids.take(_slug(line["path"]))
        item = {
            "@type": "cr:FileObject",
            "@id": ident,
            "name": line["path"],
            "contentUrl": self.url(line["path"]),
            "contentSize": f"{line.get('size', 0)} B",
            "encodingFormat": media_type,
            "sha256": line["sha256"],
        }
        if description:
            item["description"] = description
        self.distribution.append(item)
        return ident

    def folder_object(self, folder: str) -> str:
        """A FileObject for the folder, one per FileSet in it: mlcroissant 1.1.1 chains a
        folder's FileSets into a cycle when they share its FileObject."""
        same = self.folders.setdefault(folder, [])
        ident = self.ids.take(_slug(folder) + "/" + (f"#{len(same) + 1}" if same else ""))
        item = {
            "@type": "cr:FileObject",
            "@id": ident,
            "name": folder,
            "description": (
                "A folder of the product, for a FileSet in it. Its sha256 is that of its lines "
                "in the manifest's file list, which name every file under it with its own."
            ),
            "contentUrl": self.url(folder, folder=True),
            "encodingFormat": FOLDER_TYPE,
            "sha256": self.digests[folder],
        }
        same.append(item)
        self.distribution.append(item)
        return ident

    def file_set(
        self,
        name: str,
        includes: list[str],
        media_type: str,
        description: str,
        *,
        folder: str | None = None,
        shards: list[str] | None = None,
    ) -> str:
        """A FileSet of `includes` in a folder, or in the members of `shards` (tar ids)."""
        if folder is not None:
            contained: Any = {"@id": self.folder_object(folder)}
        else:
            contained = [{"@id": shard} for shard in shards or []]
        ident = self.ids.take(_slug(name))
        self.distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": ident,
                "name": name,
                "description": description,
                "containedIn": contained,
                "encodingFormat": media_type,
                "includes": includes,
            }
        )
        return ident

    def group_file_set(self, group: Group) -> str:
        """The FileSet of a Group (made once)."""
        if id(group) not in self.group_sets:
            includes = group.includes
            pattern = includes[0] if len(includes) == 1 else f"*.{group.suffix}"
            kind = "images" if group.suffix.lower() in IMAGE_TYPES else "files"
            self.group_sets[id(group)] = self.file_set(
                f"{group.container}/{pattern}" if group.suffix else f"{group.container}/listed",
                includes,
                _media_type(group.suffix),
                f"The {kind} {', '.join(includes)} under {group.container}/",
                folder=group.container,
            )
        return self.group_sets[id(group)]

    # -- record sets

    def record_set(
        self, ident: str, description: str, fields: list[dict[str, Any]], key: str | None
    ) -> None:
        record_set: dict[str, Any] = {
            "@type": "cr:RecordSet",
            "@id": ident,
            "name": ident,
            "description": description,
        }
        if key:
            record_set["key"] = {"@id": f"{ident}/{key}"}
        record_set["field"] = [
            {"@type": "cr:Field", "@id": f"{ident}/{item['name']}", **item} for item in fields
        ]
        for item in record_set["field"]:
            if item["@id"] in self.ids.used:
                raise ManifestError(f"{self.header_path}: Croissant @id {item['@id']} twice")
            self.ids.used.add(item["@id"])
        self.record_sets.append(record_set)

    def captions(self, file_set: str, where: str) -> str:
        """The `.txt` of each sample by key: the side a sample record set joins."""
        ident = self.ids.short(where, "_captions")
        self.record_set(
            ident,
            f"The caption (.txt) of each sample under {where}/, by sample key",
            [
                {
                    "name": "key",
                    "dataType": "sc:Text",
                    "source": _files_source(file_set, "fullpath", {"regex": KEY_REGEX}),
                },
                {
                    "name": "caption",
                    "dataType": "sc:Text",
                    "source": _files_source(file_set, "content"),
                },
            ],
            key="key",
        )
        return ident

    def samples(
        self,
        ident: str,
        description: str,
        images: str,
        captions: str | None,
        *,
        label: str | None = None,
        under: str = "",
        not_images: list[str] | None = None,
    ) -> None:
        """Records of an image FileSet: path (or key, when captions are joined), label,
        image, caption. When some of its files are no image (Visual Genome ships empty files
        and HTML pages among its JPEGs, which the build keeps and the annotations skip),
        mlcroissant would fail on them as ImageObjects: `content`, the bytes, instead."""
        if captions:
            first = {
                "name": "key",
                "description": f"The sample's key: its path{under} up to the suffix",
                "dataType": "sc:Text",
                "source": _files_source(images, "fullpath", {"regex": KEY_REGEX}),
                "references": {"field": {"@id": f"{captions}/key"}},
            }
        else:
            first = {
                "name": "path",
                "description": f"The image's path{under}",
                "dataType": "sc:Text",
                "source": _files_source(images, "fullpath"),
            }
        fields = [first]
        if label:
            fields.append(
                {
                    "name": "label",
                    "description": "The class: the folder the image is in",
                    "dataType": "sc:Text",
                    "source": _files_source(images, "fullpath", {"regex": label}),
                }
            )
        if not_images:
            shown = ", ".join(not_images[:3]) + (", ..." if len(not_images) > 3 else "")
            fields.append(
                {
                    "name": "content",
                    "description": (
                        f"The file's bytes, not decoded: {len(not_images)} of these files are "
                        f"no image ({shown})"
                    ),
                    "dataType": "sc:Text",
                    "source": _files_source(images, "content"),
                }
            )
        else:
            fields.append(
                {
                    "name": "image",
                    "dataType": "sc:ImageObject",
                    "source": _files_source(images, "content"),
                }
            )
        if captions:
            fields.append(
                {
                    "name": "caption",
                    "dataType": "sc:Text",
                    "source": {"field": {"@id": f"{captions}/caption"}},
                }
            )
        self.record_set(ident, description, fields, key=first["name"])

    def tables(self, line: dict[str, Any], file_object: str, tables: list[Table]) -> None:
        """A record set per list (or table) of an annotation file, fields by JSONPath or
        column."""
        path = line["path"]
        is_json = path.endswith(".json")
        stem = path.rpartition("/")[2].rpartition(".")[0]
        for number, table in enumerate(tables):
            if number:
                # mlcroissant reads every JSONPath of a FileObject into one table, so lists
                # of other lengths need their own FileObject (of the same file)
                file_object = self.file_object(
                    line,
                    TABLE_TYPES["json"],
                    self.ids.take(f"{_slug(path)}#{table.key}"),
                    f"{path} again, for the records of its list {table.key!r}",
                )
            tail = f".{table.key}" if table.key else ""
            suffix = path.rpartition(".")[2]
            siblings = self.stems.setdefault((_parent(path), stem), suffix)
            if siblings != suffix:  # x.tsv beside x.json: told apart by their suffix
                ident = self.ids.short(f"{_parent(path)}/{stem}_{suffix}", tail)
            else:
                ident = self.ids.short(f"{_parent(path)}/{stem}", tail)
            base = f"$.{table.key}[*]" if table.key else "$[*]"
            fields = []
            for column in table.columns:
                if not is_json:
                    extract = {"column": column.name}
                elif column.name == "value" and len(table.columns) == 1:
                    extract = {"jsonPath": base}  # a list of scalars
                else:
                    extract = {"jsonPath": f"{base}.{column.name}"}
                item: dict[str, Any] = {
                    "name": column.name,
                    "dataType": column.data_type,
                    "source": {"fileObject": {"@id": file_object}, "extract": extract},
                }
                if column.is_array:
                    item |= {"isArray": True, "arrayShape": "-1"}
                fields.append(item)
            of = f"the list {table.key!r} of " if table.key else ""
            self.record_set(ident, f"The records of {of}{path}", fields, key=None)

    def files(self, file_set: str, where: str, includes: list[str], tail: str) -> None:
        """The generic record set: each file's path and bytes."""
        ident = self.ids.short(where, tail)
        self.record_set(
            ident,
            f"The files {', '.join(includes)} under {where}/: path and bytes",
            [
                {
                    "name": "path",
                    "description": f"The file's path under {where}/",
                    "dataType": "sc:Text",
                    "source": _files_source(file_set, "fullpath"),
                },
                {
                    "name": "content",
                    "dataType": "sc:Text",
                    "source": _files_source(file_set, "content"),
                },
            ],
            key="path",
        )

    # -- the product's parts

    def add_shards(self, folder: str, tars: list[dict[str, Any]]) -> None:
        """A folder of webdataset shards: a FileObject each; their samples' images and
        captions as FileSets in them, joined on the key."""
        shards = [self.file_object(line, TAR_TYPE) for line in tars]
        suffixes = shard_suffixes(resolve(tars[0]["path"], self.roots))
        image = next((s for s in suffixes if s.lower() in IMAGE_TYPES), None)
        if image is None:
            return  # no image member to read: the shards are described, not read
        where = f"{folder}/*.tar"
        images = self.file_set(
            f"{where}/*.{image}",
            [f"*.{image}"],
            IMAGE_TYPES[image.lower()],
            f"The .{image} member of each sample of the shards in {folder}/",
            shards=shards,
        )
        captions = None
        if "txt" in suffixes:
            texts = self.file_set(
                f"{where}/*.txt",
                ["*.txt"],
                OTHER_TYPES["txt"],
                f"The .txt member (caption) of each sample of the shards in {folder}/",
                shards=shards,
            )
            captions = self.captions(texts, folder)
        self.samples(
            self.ids.short(folder),
            f"The webdataset samples of the shards in {folder}/ ({len(tars)})",
            images,
            captions,
            under=" in its shard",
        )


def croissant_from_manifest(header_path: str | Path) -> dict[str, Any]:
    """The Croissant JSON-LD of the manifest whose header is at `header_path`."""
    header_path = Path(header_path)
    doc = Document(header_path)
    declared = doc.declared
    listing = summarise(read_lines(header_path), declared)

    for folder, tars in sorted(listing.tars.items()):
        doc.add_shards(folder, tars)

    # Files of one suffix in one folder: FileObjects (few annotation files, files declared
    # one by one), extensionless files listed by name, or leaves of FileSets.
    leaves: dict[str, list[str]] = defaultdict(list)
    annotation_files: list[tuple[dict[str, Any], str]] = []  # (line, FileObject id)
    named: list[Group] = []
    for (folder, suffix), bucket in sorted(listing.buckets.items()):
        if bucket.hidden == bucket.count:
            continue  # bookkeeping only (.snakemake_timestamp, .gitattributes)
        few = bucket.count <= MAX_OBJECTS
        if not _within(folder, declared) or (few and suffix in TABLE_TYPES):
            for line in bucket.lines:
                annotation_files.append((line, doc.file_object(line, _media_type(suffix))))
        elif not suffix and few:
            names = [line["path"].rpartition("/")[2] for line in bucket.lines]
            named.append(Group(folder, "", {folder}, names))
        elif not suffix:
            doc.unlisted += bucket.count
        else:
            leaves[suffix].append(folder)
    groups: list[Group] = []
    for suffix, folders in sorted(leaves.items()):
        forced = LABEL_TREES if suffix.lower() in IMAGE_TYPES else ()
        found = containers(folders, listing.links, declared, forced)
        groups += [Group(container, suffix, under) for container, under in sorted(found.items())]
    images = [g for g in groups if g.suffix.lower() in IMAGE_TYPES]
    others = [g for g in groups if g.suffix.lower() not in IMAGE_TYPES] + named
    # the folders a FileSet may be anchored at, the last fallback's included
    folders = {g.container for g in groups + named} | {
        _parent(line["path"]) for line, _ in annotation_files
    }
    doc.digests, not_images = _second_pass(header_path, doc.roots, folders, images)

    # Image FileSets and their records. Beside a text FileSet of the same pattern (an
    # unpacked webdataset: key.jpg, key.txt) the captions are a record set of their own:
    # mlcroissant 1.1.1 cannot join FileSets of a folder (its Read of the folder's FileObject
    # comes last in the chain, and the join calls it with the wrong arguments).
    texts = {(g.container, g.depths): g for g in others if g.suffix == "txt"}
    per_folder = defaultdict(int)
    for group in images:
        per_folder[group.container] += 1
    for group in images:
        tail = f"_{group.suffix}" if per_folder[group.container] > 1 else ""
        doc.samples(
            doc.ids.short(group.container, tail),
            f"The images {', '.join(group.includes)} under {group.container}/",
            doc.group_file_set(group),
            None,
            label=LABEL_TREES.get(group.container),
            under=f" under {group.container}/",
            not_images=not_images.get(id(group)),
        )
        text = texts.pop((group.container, group.depths), None)
        if text:
            doc.captions(doc.group_file_set(text), group.container)
    for group in others:
        doc.group_file_set(group)

    for line, ident in annotation_files:
        path = line["path"]
        folder, _, name = path.rpartition("/")
        suffix = _suffix(name)
        if folder in listing.tars or path.startswith("{reports}/") or suffix not in TABLE_TYPES:
            continue  # beside shards (per-shard tables) or a build report: not samples
        doc.tables(line, ident, tables_of(resolve(path, doc.roots), suffix))

    if not doc.record_sets:
        # Nothing the product's consumers read as samples is readable by mlcroissant: each
        # file's path and bytes, from FileSets (an unknown format's FileObject is unreadable).
        by_folder: dict[str, list[str]] = defaultdict(list)
        for line, _ in annotation_files:
            folder, _, name = line["path"].rpartition("/")
            by_folder[folder].append(name)
        others += [Group(folder, "", {folder}, names) for folder, names in by_folder.items()]
        for group in others:
            doc.files(
                doc.group_file_set(group),
                group.container,
                group.includes,
                f"_{group.suffix}" if group.suffix else "_files",
            )
    return _document(doc)


IMAGE_MAGIC = (
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
)


def is_image(real: Path) -> bool:
    """Whether a file starts as an image does (what mlcroissant can open as an ImageObject):
    not an empty file or the HTML page a host sent in its place."""
    try:
        with open(real, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _second_pass(
    header_path: Path, roots: dict[str, str], folders: set[str], images: list[Group]
) -> tuple[dict[str, str], dict[int, list[str]]]:
    """Over the file list again: each folder's sha256 (of its lines under it), and the files
    of each image FileSet that are no image (their first bytes only are read)."""
    digests = {folder: hashlib.sha256() for folder in folders}
    image_leaves = {(leaf, g.suffix): id(g) for g in images for leaf in g.leaves}
    not_images: dict[int, list[str]] = defaultdict(list)
    for line in read_lines(header_path):
        path = line["path"]
        data = (json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n").encode()
        parent, _, name = path.rpartition("/")
        folder = parent
        while folder:
            digest = digests.get(folder)
            if digest is not None:
                digest.update(data)
            folder = _parent(folder)
        group = image_leaves.get((parent, _suffix(name)))
        if group is not None and "sha256" in line and not is_image(resolve(path, roots)):
            not_images[group].append(path)
    return {folder: digest.hexdigest() for folder, digest in digests.items()}, not_images


def _document(doc: Document) -> dict[str, Any]:
    from vlprep.products import PRODUCTS

    header = doc.header
    product = header["product"]
    sources = header.get("sources", {})
    licences = list(dict.fromkeys(s["license"] for s in sources.values() if s.get("license")))
    citations = list(dict.fromkeys(s["citation"] for s in sources.values() if s.get("citation")))
    totals = header["totals"]
    about = PRODUCTS[product].about if product in PRODUCTS else ""
    description = [
        f"{about}." if about else f"The vlprep product {product}.",
        # the date is datePublished's: the description of two builds of the same data is equal
        f"Built by vlprep {header['vlprep_version']}: {totals['files']} "
        f"files, {totals['links']} links, {totals['dirs']} folders, {totals['bytes']} bytes"
        + (f", {totals['samples']} webdataset samples" if totals.get("samples") else "")
        + f". Every file with its sha256: the manifest {doc.header_path.name} and its "
        f"{header['files']} (sha256 {header['files_sha256']}).",
    ]
    if header.get("filtered"):
        left_out = "; ".join(
            f"{report}: {json.dumps(counts, sort_keys=True)}"
            for report, counts in sorted(header["filtered"].items())
        )
        description.append(f"What the build left out (its reports): {left_out}.")
    if doc.unlisted:
        description.append(f"{doc.unlisted} files without a suffix are not described here.")
    based_on = []
    for entry, source in sources.items():
        pinned = source.get("catalog", {})
        work: dict[str, Any] = {"@type": "sc:CreativeWork", "name": entry}
        if pinned.get("url"):
            work["url"] = pinned["url"]
        elif pinned.get("repo"):
            work["identifier"] = pinned["repo"]
        if pinned.get("revision"):
            work["version"] = pinned["revision"]
        if source.get("license"):
            work["license"] = source["license"]
        if source.get("citation"):
            work["citation"] = source["citation"]
        based_on.append(work)
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": product,
        "description": " ".join(description),
        "conformsTo": CONFORMS_TO,
        "version": f"{_semver(header['vlprep_version'])}+{header['files_sha256'][:12]}",
        "datePublished": header["built"],
    }
    if licences:
        document["license"] = licences
    if citations:
        document["citeAs"] = "\n".join(citations)
    if based_on:
        document["isBasedOn"] = based_on
    document["distribution"] = doc.distribution
    document["recordSet"] = doc.record_sets
    return document
