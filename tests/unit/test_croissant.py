"""Croissant exports of manifests (vlprep.croissant), read back with mlcroissant 1.1.1, offline:
each validates, and the first records of each record set are what reading the product directly
gives (paths, labels, captions, annotation values, the bytes of images and files, which also
carry the manifest's sha256).

`check_demo_croissant(manifests_dir)` runs the same check over every manifest of a data root
(the e2e demo test calls it; VLPREP_DEMO_DATA=<data root> runs it here)."""

import contextlib
import csv
import gzip
import hashlib
import io
import itertools
import json
import math
import multiprocessing
import os
import re
import shutil
import stat
import tarfile
import tempfile
import types
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import loopback_only
from vlprep.croissant import (
    CONTEXT,
    LABEL_TREES,
    croissant_from_manifest,
    croissant_path,
    write_croissant,
)
from vlprep.manifest import manifest_paths, read_header, read_lines, write_manifest

# rdflib (under mlcroissant) warns of its own deprecations
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib")
RECORDS = 3  # records read per record set: enough to compare, few enough to stay fast


# ---- the check, shared with the e2e demo test ---------------------------------------------


def _remove_tree(path: Path) -> None:
    def writable_again(func, name, _):  # extracted shards may hold read-only members
        os.chmod(os.path.dirname(name), stat.S_IRWXU)
        with contextlib.suppress(OSError):
            os.chmod(name, stat.S_IRWXU)
        func(name)

    shutil.rmtree(path, onerror=writable_again)


@contextlib.contextmanager
def croissant_cache() -> Iterator[Path]:
    """mlcroissant's cache (extracted shards) in a fresh folder: it keys extractions by URL
    only, so a shard rebuilt at the same place would otherwise be read stale."""
    from etils import epath
    from mlcroissant._src.core import constants
    from mlcroissant._src.operation_graph.operations import extract

    saved = constants.DOWNLOAD_PATH, extract.EXTRACT_PATH
    folder = Path(tempfile.mkdtemp(prefix="vlprep-croissant-"))
    constants.DOWNLOAD_PATH = epath.Path(folder, "download")
    extract.EXTRACT_PATH = epath.Path(folder, "extract")
    try:
        yield folder
    finally:
        constants.DOWNLOAD_PATH, extract.EXTRACT_PATH = saved
        _remove_tree(folder)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _image_bytes(image: Any) -> bytes | None:
    """The bytes an ImageObject was opened from (mlcroissant opens them from memory)."""
    fp = getattr(image, "fp", None)
    return fp.getvalue() if hasattr(fp, "getvalue") else None


def _same_image(image: Any, data: bytes) -> bool:
    got = _image_bytes(image)
    if got is not None:
        return got == data
    import numpy as np
    from PIL import Image

    return np.array_equal(np.asarray(image), np.asarray(Image.open(io.BytesIO(data))))


def _same_value(got: Any, want: Any) -> bool:
    """A field's value through mlcroissant (Text as bytes) against the file's own value."""
    if got is None:  # a JSON null, or an empty cell pandas reads as missing
        return want is None or want == ""
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same_value, got, want))
    if isinstance(want, str):
        return got == want.encode()
    if isinstance(want, float) or isinstance(got, float):
        return math.isclose(float(got), float(want))
    return got == want


def _label(container: str, member: str) -> str:
    """The class of an image in a class-per-folder tree, as torchvision reads it: the folder
    it is in (SUN397: the folders after the letter one)."""
    folders = member.split("/")[:-1]
    return "/".join(folders[1:] if container.endswith("/SUN397") else folders)


def _json_rows(real: Path, fields: dict[str, dict], count: int) -> list[dict[str, Any]]:
    data = json.loads(real.read_text())
    rows: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, item in fields.items():
        found = re.fullmatch(
            r"\$(?:\.(\w+))?\[\*\](?:\.(\w+))?", item["source"]["extract"]["jsonPath"]
        )
        assert found, item["source"]["extract"]["jsonPath"]
        key, inner = found.groups()
        records = data[key] if key else data
        for row, record in zip(rows, records[:count], strict=False):
            row[name] = record[inner] if inner else record
    return rows


def _table_rows(real: Path, media_type: str, fields: dict[str, dict], count: int) -> list[dict]:
    if media_type == "application/json":
        return _json_rows(real, fields, count)
    if media_type == "application/x-parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(real).slice(0, count).to_pylist()
    else:
        delimiter = "\t" if media_type == "text/tab-separated-values" else ","
        with open(real, newline="", encoding="utf-8") as f:
            rows = list(itertools.islice(csv.DictReader(f, delimiter=delimiter), count))
    columns = {name: item["source"]["extract"]["column"] for name, item in fields.items()}
    return [{name: row[column] for name, column in columns.items()} for row in rows]


def _tar_members(tars: list[Path]) -> dict[str, bytes]:
    members = {}
    for path in tars:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.isfile():
                    members[member.name] = tar.extractfile(member).read()
    return members


class Reader:
    """Reads directly (tarfile, json, csv, pyarrow, open) what a Croissant's record sets
    name, to hold mlcroissant's records against."""

    def __init__(self, document: dict, base: Path) -> None:
        self.items = {item["@id"]: item for item in document["distribution"]}
        self.record_sets = {rs["@id"]: rs for rs in document["recordSet"]}
        self.base = base
        self.shards: dict[tuple[str, ...], dict[str, bytes]] = {}
        self.files: dict[str, str] = {}  # path over its root -> sha256 of what was read

    def file_set_of(self, field: dict) -> dict:
        source = field["source"]
        if "field" in source:  # a joined field: the file set of the field it comes from
            record_set, _, name = source["field"]["@id"].rpartition("/")
            fields = {f["name"]: f for f in self.record_sets[record_set]["field"]}
            return self.file_set_of(fields[name])
        return self.items[source["fileSet"]["@id"]]

    def reader_of(self, file_set: dict):
        """A function: member path under the FileSet's container -> bytes."""
        contained = file_set["containedIn"]
        contained = contained if isinstance(contained, list) else [contained]
        holders = [self.items[c["@id"]] for c in contained]
        if all(h["encodingFormat"] == "application/x-tar" for h in holders):
            ids = tuple(h["@id"] for h in holders)
            if ids not in self.shards:
                self.shards[ids] = _tar_members([self.base / h["contentUrl"] for h in holders])
            return self.shards[ids].__getitem__
        (folder,) = holders
        root, name = self.base / folder["contentUrl"], folder["name"]

        def read(member: str) -> bytes:
            data = (root / member).read_bytes()
            self.files[f"{name}/{member}"] = _sha256(data)
            return data

        return read

    def check(self, record_set: dict, records: list[dict]) -> list[str]:
        ident = record_set["@id"]
        fields = {f["name"]: f for f in record_set["field"]}
        values = [{name: r[f"{ident}/{name}"] for name in fields} for r in records]
        source = next(iter(fields.values()))["source"]
        if "fileObject" in source:
            item = self.items[source["fileObject"]["@id"]]
            want = _table_rows(
                self.base / item["contentUrl"], item["encodingFormat"], fields, len(records)
            )
            return [
                f"record {number}: {name} is {got[name]!r}, the file has {row[name]!r}"
                for number, (got, row) in enumerate(zip(values, want, strict=True))
                for name in fields
                if not _same_value(got[name], row[name])
            ]
        problems = []
        for number, got in enumerate(values):
            for name, field in fields.items():
                file_set = self.file_set_of(field)
                read = self.reader_of(file_set)
                suffix = file_set["includes"][0].rpartition(".")[2]
                if "path" in got:
                    member = got["path"].decode()
                else:
                    member = f"{got['key'].decode()}.{suffix}"
                if name in ("path", "key"):
                    continue
                if name == "label":
                    folder = self.items[file_set["containedIn"]["@id"]]["name"]
                    want = _label(folder, member)
                    ok = got[name] == want.encode()
                elif name == "image":
                    ok = _same_image(got[name], read(member))
                elif "field" in field["source"]:  # joined: the sample's caption file
                    ok = got[name] == read(f"{got['key'].decode()}.{suffix}")
                else:
                    ok = got[name] == read(member)
                if not ok:
                    problems.append(f"record {number} ({member}): {name} differs from the file")
        return problems


def _forget_record_generators(dataset: Any) -> None:
    """mlcroissant 1.1.1 keeps the generator of a record set it was asked for as that record
    set's output, and hands it, consumed, to a record set that joins it later: forget it."""
    for operation in dataset.operations.operations.nodes:
        if operation.has_output() and isinstance(operation.output, types.GeneratorType):
            object.__delattr__(operation, "_output")


def check_croissant(path: Path, records: int = RECORDS) -> list[str]:
    """What is wrong with the Croissant at `path`: invalid, unreadable by mlcroissant, or
    records that differ from the files they come from, or checksums from the manifest's."""
    import mlcroissant as mlc

    document = json.loads(path.read_text())
    header = path.with_name(f"{document['name']}.json")
    try:
        dataset = mlc.Dataset(jsonld=path)
    except Exception as err:  # mlcroissant raises ValidationError and others
        return [f"{path.name}: invalid: {err}"]
    problems = [
        f"{path.name}: {kind}: {issue}"
        for kind, issues in (
            ("error", dataset.metadata.issues.errors),
            ("warning", dataset.metadata.issues.warnings),
        )
        for issue in issues
    ]
    reader = Reader(document, path.parent)
    for record_set in document["recordSet"]:
        ident = record_set["@id"]
        _forget_record_generators(dataset)
        try:
            got = list(itertools.islice(dataset.records(record_set=ident), records))
        except Exception as err:
            cause = err.__cause__ or err
            problems.append(f"{path.name}: {ident}: mlcroissant cannot read it: {cause!r}")
            continue
        if not got:
            problems.append(f"{path.name}: {ident}: no records")
            continue
        try:
            found = reader.check(record_set, got)
        except (OSError, KeyError) as err:  # a record naming a file that is not there
            found = [f"its records name what cannot be read directly: {err!r}"]
        problems += [f"{path.name}: {ident}: {p}" for p in found]
    problems += [f"{path.name}: {p}" for p in _against_manifest(header, document, reader.files)]
    return problems


def _against_manifest(header: Path, document: dict, read: dict[str, str]) -> list[str]:
    """Checksums of the Croissant (files, folders) and of the files read, from the manifest."""
    objects = [i for i in document["distribution"] if i["@type"] == "cr:FileObject"]
    want = {i["name"]: i["sha256"] for i in objects if i["encodingFormat"] != "inode/directory"}
    folders = {i["name"]: hashlib.sha256() for i in objects if i["name"] not in want}
    lines = {}
    for line in read_lines(header):
        if line["path"] in want or line["path"] in read:
            lines[line["path"]] = line
        data = (json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n").encode()
        for folder, digest in folders.items():
            if line["path"].startswith(folder + "/"):
                digest.update(data)
    problems = [
        f"{path}: sha256 {digest} is not the manifest's"
        for path, digest in [*want.items(), *read.items()]
        if lines.get(path, {}).get("sha256") != digest
    ]
    problems += [
        f"{i['name']}/: sha256 is not that of its lines in the manifest"
        for i in objects
        if i["name"] in folders and i["sha256"] != folders[i["name"]].hexdigest()
    ]
    return problems


def _check_in_worker(path: str, records: int) -> list[str]:
    with loopback_only(), croissant_cache():
        return check_croissant(Path(path), records)


def check_demo_croissant(
    manifests_dir: str | Path, records: int = RECORDS, workers: int = 1
) -> list[str]:
    """What is wrong with the Croissant of every manifest in `manifests_dir` (each must be
    there): [] when each validates offline and its first records match the product's files.
    `workers` > 1 checks products in that many processes (mlcroissant reads a FileSet's
    files whole before its first record: the COCO sets take seconds each)."""
    manifests_dir = Path(manifests_dir)
    headers = [
        h for h in sorted(manifests_dir.glob("*.json")) if not h.name.endswith(".croissant.json")
    ]
    if not headers:
        return [f"{manifests_dir}: no manifests"]
    problems = [f"{croissant_path(h)}: missing" for h in headers if not croissant_path(h).is_file()]
    paths = [str(croissant_path(h)) for h in headers if croissant_path(h).is_file()]
    if workers > 1:
        context = multiprocessing.get_context("spawn")  # no fork of mlcroissant's threads
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            for found in pool.map(_check_in_worker, paths, [records] * len(paths)):
                problems += found
    else:
        for path in paths:
            problems += _check_in_worker(path, records)
    return problems


# ---- a small product, built here -----------------------------------------------------------


def jpeg(seed: int, size: tuple[int, int] = (16, 12)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (seed * 37 % 256, seed * 11 % 256, 90)).save(out, "JPEG")
    return out.getvalue()


def write_tar(path: Path, samples: dict[str, dict[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for key, members in samples.items():
            for suffix, data in members.items():
                info = tarfile.TarInfo(f"{key}.{suffix}")
                info.size, info.mtime = len(data), 0
                tar.addfile(info, io.BytesIO(data))


WNIDS = ("n01440764", "n01443537", "n01484850")
KARPATHY = [
    {
        "image": f"val2014/COCO_val2014_{i:012d}.jpg",
        "caption": [f"a cat {i}", "a dog"],
        "image_id": i,
    }
    for i in range(4)
]
INSTANCES = {
    "info": {"year": 2014},
    "images": [{"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg", "width": 16} for i in range(4)],
    "annotations": [
        {
            "id": 10 + i,
            "image_id": i,
            "bbox": [1.0, 2.0, 3.5, 4.0],
            "area": 12.5 * i,
            "iscrowd": False,
            "segmentation": [[1, 2, 3]],
        }  # fmt: skip
        for i in range(3)
    ],
}
PATHS = [
    "{lavis}/coco/images/val2014",
    "{lavis}/coco/annotations",
    "{g3m}/cc3m/cc3m",
    "{cosmos}/imagenet/data/val_images",
    "{g3m}/coco/coco_valid",
    "{lavis}/vg/images",
]
SOURCES = {
    "coco2014_val": {
        "kind": "http",
        "url": "http://images.example/val2014.zip",
        "sha256": "ab" * 32,
        "license": "CC BY 4.0",
        "citation": "Lin et al., Microsoft COCO, ECCV 2014",
    },
    "karpathy": {
        "kind": "http",
        "url": "http://example/karpathy.json",
        "license": "BSD-3-Clause",
        "citation": "Karpathy and Fei-Fei, CVPR 2015",
    },
    "cc3m": {"kind": "hub", "repo": "x/cc3m", "revision": "abc", "license": "CC BY 4.0"},
}


def build_tree(data: Path) -> None:
    """A store and layouts showing it as vlprep links them: a linked image folder, annotation
    files, webdataset shards and an ImageNet-style class tree."""
    store = data / "extracted" / "coco2014_val" / "val2014"
    store.mkdir(parents=True)
    for i in range(4):
        (store / f"COCO_val2014_{i:012d}.jpg").write_bytes(jpeg(i))
    images = data / "lavis" / "coco" / "images"
    images.mkdir(parents=True)
    os.symlink("../../../extracted/coco2014_val/val2014", images / "val2014")
    annotations = data / "lavis" / "coco" / "annotations"
    annotations.mkdir()
    (annotations / "coco_karpathy_val.json").write_text(json.dumps(KARPATHY))
    (annotations / "instances_val2014.json").write_text(json.dumps(INSTANCES))
    (annotations / "answer_list.json").write_text(json.dumps(["yes", "no", "2"]))
    (annotations / "pairs.tsv").write_text(
        "caption\turl\na cat\thttp://x/1.jpg\na dog\thttp://x/2\n"
    )
    shards = data / "g3m" / "cc3m" / "cc3m"
    shards.mkdir(parents=True)
    for shard in range(2):
        write_tar(
            shards / f"cc3m-train-{shard:04d}.tar",
            {
                f"{shard:04d}{i:05d}": {
                    "jpg": jpeg(10 * shard + i),
                    "json": json.dumps({"key": i}).encode(),
                    "txt": f"caption {shard} {i}".encode(),
                }
                for i in range(3)
            },
        )
    (shards / ".snakemake_timestamp").write_text("")
    unpacked = data / "g3m" / "coco" / "coco_valid" / "00000"  # a shard as files
    unpacked.mkdir(parents=True)
    for i in range(3):
        (unpacked / f"{i:012d}.jpg").write_bytes(jpeg(30 + i))
        (unpacked / f"{i:012d}.txt").write_text(f"a caption of {i}")
        (unpacked / f"{i:012d}.json").write_text(json.dumps({"key": i}))
    vg = data / "lavis" / "vg" / "images"  # Visual Genome ships non-images among its JPEGs
    vg.mkdir(parents=True)
    for name, data_ in (("1.jpg", jpeg(40)), ("2.jpg", b""), ("3.jpg", b"<html></html>")):
        (vg / name).write_bytes(data_)
    tree = data / "cosmos" / "imagenet" / "data" / "val_images"
    for number, wnid in enumerate(WNIDS):
        (tree / wnid).mkdir(parents=True)
        for i in range(2):
            (tree / wnid / f"ILSVRC2012_val_{number}{i:07d}.JPEG").write_bytes(jpeg(50 + i))


def roots_of(data: Path) -> dict[str, str]:
    names = ("lavis", "g3m", "cosmos", "downloads", "extracted", "reports")
    return {"data_root": str(data), **{name: str(data / name) for name in names}}


@pytest.fixture(autouse=True)
def _offline():
    with loopback_only():
        yield


@pytest.fixture
def cache():
    with croissant_cache() as folder:
        yield folder


@pytest.fixture
def built(tmp_path) -> tuple[Path, Path]:
    """The tree, its manifest and its Croissant: (data root, the Croissant's path)."""
    data = tmp_path / "data"
    build_tree(data)
    write_manifest(
        "demo",
        PATHS,
        roots_of(data),
        data / "manifests",
        entries=list(SOURCES),
        catalog=SOURCES,
    )
    return data, write_croissant(manifest_paths(data / "manifests", "demo")[0])


def records_of(path: Path, record_set: str) -> list[dict]:
    import mlcroissant as mlc

    prefix = f"{record_set}/"
    return [
        {k.removeprefix(prefix): v for k, v in record.items()}
        for record in mlc.Dataset(jsonld=path).records(record_set=record_set)
    ]


def test_the_croissant_validates_and_its_records_are_the_products_files(built, cache):
    data, path = built
    assert path == data / "manifests" / "demo.croissant.json"
    assert check_croissant(path, records=100) == []


def test_each_shape_has_its_record_set(built, cache):
    data, path = built
    document = json.loads(path.read_text())
    assert {rs["@id"] for rs in document["recordSet"]} == {
        "val2014",  # the linked image folder
        "cc3m",  # the shards' samples ...
        "cc3m_captions",  # ... joined with their .txt
        "val_images",  # the class tree
        "coco_karpathy_val",
        "instances_val2014.images",
        "instances_val2014.annotations",
        "answer_list",
        "pairs",
        "00000",  # the unpacked shard's images ...
        "00000_captions",  # ... and its .txt files, by key
        "images",  # Visual Genome's images, some no image
    }
    val2014 = records_of(path, "val2014")
    assert [r["path"] for r in val2014] == [f"COCO_val2014_{i:012d}.jpg".encode() for i in range(4)]
    assert [_image_bytes(r["image"]) for r in val2014] == [jpeg(i) for i in range(4)]

    samples = sorted(records_of(path, "cc3m"), key=lambda r: r["key"])
    assert [(r["key"], r["caption"]) for r in samples] == [
        (f"{s:04d}{i:05d}".encode(), f"caption {s} {i}".encode())
        for s in range(2)
        for i in range(3)
    ]
    assert _image_bytes(samples[4]["image"]) == jpeg(11)

    classes = records_of(path, "val_images")
    assert sorted((r["label"], r["path"].decode().split("/")[1]) for r in classes) == sorted(
        (wnid.encode(), f"ILSVRC2012_val_{n}{i:07d}.JPEG")
        for n, wnid in enumerate(WNIDS)
        for i in range(2)
    )

    karpathy = records_of(path, "coco_karpathy_val")
    assert [(r["image"], r["caption"], r["image_id"]) for r in karpathy] == [
        (k["image"].encode(), [c.encode() for c in k["caption"]], k["image_id"]) for k in KARPATHY
    ]
    annotations = records_of(path, "instances_val2014.annotations")
    # bbox and segmentation are lists of lists or numbers: not columns; the scalars are
    assert set(annotations[0]) == {"id", "image_id", "area", "iscrowd", "bbox"}
    assert [a["area"] for a in annotations] == [0.0, 12.5, 25.0]
    assert [r["value"] for r in records_of(path, "answer_list")] == [b"yes", b"no", b"2"]
    assert [r["caption"] for r in records_of(path, "pairs")] == [b"a cat", b"a dog"]

    unpacked = records_of(path, "00000_captions")
    assert [(r["key"], r["caption"]) for r in unpacked] == [
        (f"{i:012d}".encode(), f"a caption of {i}".encode()) for i in range(3)
    ]
    # files that are no image would fail mlcroissant as ImageObjects: bytes, said so
    (vg,) = [rs for rs in document["recordSet"] if rs["@id"] == "images"]
    assert [f["name"] for f in vg["field"]] == ["path", "content"]
    assert "2 of these files are no image" in vg["field"][1]["description"]
    assert [(r["path"], r["content"]) for r in records_of(path, "images")] == [
        (b"1.jpg", jpeg(40)),
        (b"2.jpg", b""),
        (b"3.jpg", b"<html></html>"),
    ]


def test_dataset_metadata_comes_from_the_manifests_header(built):
    data, path = built
    header = read_header(data / "manifests" / "demo.json")
    document = json.loads(path.read_text())
    assert document["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    assert document["@context"] == CONTEXT
    assert document["name"] == "demo"
    assert document["license"] == ["CC BY 4.0", "BSD-3-Clause"]  # distinct, in entry order
    assert document["citeAs"].splitlines() == [
        "Lin et al., Microsoft COCO, ECCV 2014",
        "Karpathy and Fei-Fei, CVPR 2015",
    ]
    assert document["version"] == f"{header['vlprep_version']}+{header['files_sha256'][:12]}"
    assert document["datePublished"] == header["built"]
    assert [w["name"] for w in document["isBasedOn"]] == list(SOURCES)
    assert header["files_sha256"] in document["description"]


def test_the_mlcroissant_context_is_the_one_written():
    """The inline context is Croissant 1.1's own: mlcroissant warns of any other, and nothing
    has to be fetched."""
    from mlcroissant._src.core.context import Context, CroissantVersion
    from mlcroissant._src.core.rdf import make_context

    assert make_context(Context(conforms_to=CroissantVersion.V_1_1)) == CONTEXT


def test_locations_are_relative_so_a_moved_data_root_still_reads(built, tmp_path, cache):
    data, path = built
    document = json.loads(path.read_text())
    urls = [item["contentUrl"] for item in document["distribution"] if "contentUrl" in item]
    assert urls and all(url.startswith("../") for url in urls)
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(data, moved, symlinks=True)
    shutil.rmtree(data)
    assert check_croissant(moved / "manifests" / "demo.croissant.json") == []


def test_folders_are_file_sets_whatever_their_size(tmp_path):
    """300 images in 100 class folders: one FileSet, no entry per image or per folder."""
    data = tmp_path / "data"
    tree = data / "cosmos" / "imagenet" / "data" / "val_images"
    for n in range(100):
        (tree / f"n{n:08d}").mkdir(parents=True)
        for i in range(3):
            (tree / f"n{n:08d}" / f"{i}.JPEG").write_bytes(b"x")
    header = write_manifest("many", PATHS[3:4], roots_of(data), data / "manifests")
    document = croissant_from_manifest(data / "manifests" / "many.json")
    assert header["totals"]["files"] == 300
    assert [(i["@type"], i.get("includes")) for i in document["distribution"]] == [
        ("cr:FileObject", None),  # the tree's folder
        ("cr:FileSet", ["*/*.JPEG"]),
    ]
    assert len(json.dumps(document)) < 8000


def test_a_folders_sha256_is_that_of_its_lines_in_the_manifest(built):
    data, path = built
    header = data / "manifests" / "demo.json"
    document = json.loads(path.read_text())
    (tree,) = [i for i in document["distribution"] if i["name"] == PATHS[3]]
    with gzip.open(header.with_name("demo.files.jsonl.gz"), "rb") as f:
        under = [line for line in f if json.loads(line)["path"].startswith(PATHS[3] + "/")]
    assert len(under) == 9 and tree["sha256"] == hashlib.sha256(b"".join(under)).hexdigest()
    assert tree["encodingFormat"] == "inode/directory" and tree["contentUrl"].endswith("/")


def test_sibling_folders_merge_but_not_through_links(tmp_path):
    """Three cities merge into their split folder; the linked split folders of lavis/coco
    stay one FileSet each (mlcroissant's walk does not enter links); two siblings stay two."""
    data = tmp_path / "data"
    for city in ("frankfurt", "lindau", "munster"):
        (data / "cosmos" / "cityscapes" / "val" / city).mkdir(parents=True)
        (data / "cosmos" / "cityscapes" / "val" / city / "a.png").write_bytes(b"p")
    for split in ("training", "validation"):
        (data / "cosmos" / "ade" / split).mkdir(parents=True)
        (data / "cosmos" / "ade" / split / "a.jpg").write_bytes(b"j")
    for split in ("train2014", "val2014", "test2014"):
        (data / "extracted" / split).mkdir(parents=True)
        (data / "extracted" / split / "a.jpg").write_bytes(b"j")
        (data / "lavis" / "images").mkdir(parents=True, exist_ok=True)
        os.symlink(f"../../extracted/{split}", data / "lavis" / "images" / split)
    paths = ["{cosmos}/cityscapes", "{cosmos}/ade", "{lavis}/images"]
    write_manifest("shapes", paths, roots_of(data), data / "manifests")
    document = croissant_from_manifest(data / "manifests" / "shapes.json")
    assert sorted(i["name"] for i in document["distribution"] if i["@type"] == "cr:FileSet") == [
        "{cosmos}/ade/training/*.jpg",
        "{cosmos}/ade/validation/*.jpg",
        "{cosmos}/cityscapes/val/*/*.png",
        "{lavis}/images/test2014/*.jpg",
        "{lavis}/images/train2014/*.jpg",
        "{lavis}/images/val2014/*.jpg",
    ]


def test_a_product_without_samples_gets_a_files_record_set(tmp_path, cache):
    """CIFAR's pickles have no suffix and nothing reads them as records: path and bytes."""
    data = tmp_path / "data"
    folder = data / "cosmos" / "classification" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        (folder / name).write_bytes(name.encode() * 3)
    catalog = {"cifar10": {"kind": "http", "license": "unknown", "citation": "Krizhevsky, 2009"}}
    write_manifest("cifar", ["{cosmos}/classification/cifar-10-batches-py"], roots_of(data),
                   data / "manifests", entries=["cifar10"], catalog=catalog)  # fmt: skip
    path = write_croissant(data / "manifests" / "cifar.json")
    assert check_croissant(path) == []
    files = records_of(path, "cifar-10-batches-py_files")
    assert {r["path"]: r["content"] for r in files} == {
        b"data_batch_1": b"data_batch_1" * 3,
        b"test_batch": b"test_batch" * 3,
    }


def test_the_check_names_records_that_differ_from_the_files(built, cache):
    data, path = built
    image = data / "extracted" / "coco2014_val" / "val2014" / "COCO_val2014_000000000001.jpg"
    image.write_bytes(jpeg(99))
    problems = check_croissant(path)
    assert any("sha256" in p and "COCO_val2014_000000000001.jpg" in p for p in problems)


def test_label_trees_are_folders_of_registered_products():
    """The class-per-folder trees are named by layout path: each is in a product's files."""
    from vlprep.products import PRODUCTS

    files = [path for product in PRODUCTS.values() for path in product.files]
    for tree in LABEL_TREES:
        assert any(tree == path or tree.startswith(path + "/") for path in files), tree
