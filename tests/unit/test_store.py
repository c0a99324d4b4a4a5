"""Store kinds: merged folders (vlprep.store), hub archives and the catalog keys they use."""

import gzip
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from vlprep.catalog import load_catalog
from vlprep.errors import CatalogError, CorruptArchiveError
from vlprep.hub import MANIFEST
from vlprep.sources import extract_download
from vlprep.store import (
    MERGED,
    Merge,
    MergePart,
    check_groups,
    hub_archive_problem,
    merge_group,
    merge_plan,
)

MTIME = 1_600_000_000
COMMON = {"license": "test", "citation": "test"}


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in sorted({name.split("/")[0] for name in files if "/" in name}):
            info = tarfile.TarInfo(folder)
            info.type, info.mtime, info.mode = tarfile.DIRTYPE, MTIME, 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), MTIME
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def write_catalog(path: Path, entries: dict) -> dict:
    """Entries through the real schema and loader, so defaults are those of a run."""
    path.write_text(yaml.safe_dump({k: {**COMMON, **v} for k, v in entries.items()}))
    return load_catalog(path)


PETS_IMAGES = {f"images/Abyssinian_{i}.jpg": b"\xff\xd8pet" + bytes([i]) * 300 for i in range(3)}
PETS_ANNOTATIONS = {
    "annotations/list.txt": b"#Image CLASS-ID SPECIES BREED ID\nAbyssinian_1 1 1 1\n",
    "annotations/trainval.txt": b"Abyssinian_1 1 1 1\n",
}
FLOWERS = {f"image_{i:05d}.jpg": b"\xff\xd8flower" + bytes([i]) * 200 for i in range(1, 4)}


@pytest.fixture
def downloads(tmp_path):
    """Two tarballs, a tarball without a top folder and two loose files, as the store has them,
    and their catalog (no checksums: what a broken one means depends on that)."""
    files = {
        "pets_images": ("images.tar.gz", tar_gz(PETS_IMAGES)),
        "pets_annotations": ("annotations.tar.gz", tar_gz(PETS_ANNOTATIONS)),
        "flowers_jpg": ("102flowers.tgz", tar_gz(FLOWERS)),
        "flowers_labels": ("imagelabels.mat", b"MATLAB 5.0 MAT-file labels"),
        "flowers_setid": ("setid.mat", b"MATLAB 5.0 MAT-file setid"),
    }
    paths, entries = {}, {}
    for entry, (name, data) in files.items():
        path = tmp_path / "data" / "downloads" / entry / name
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        paths[entry] = path
        entries[entry] = {
            "description": name,
            "kind": "http",
            "url": f"https://example.org/{name}",
            "size": len(data),
        }
        if name.endswith(("gz", "tgz")):
            entries[entry]["archive"] = "tgz" if name.endswith(".tgz") else "tar.gz"
    return paths, write_catalog(tmp_path / "catalog.yaml", entries)


def build(group: str, merge: Merge, downloads, tmp_path: Path) -> tuple[Path, list]:
    paths, catalog = downloads
    merged = {group: merge}
    check_groups(merged, catalog)
    plan = merge_plan(group, merged, catalog)
    dest = tmp_path / "data" / "extracted" / group
    reports = merge_group(
        group,
        [paths[part.entry] for part in merge.parts],
        plan,
        dest,
        catalog=catalog,
        manual_dir=tmp_path / "manual",
    )
    return dest, reports


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_the_table_holds_cosmos_merged_folders_and_checks_against_the_catalog():
    # COSMOS's classification folders made of several downloads (vlprep.products.classification)
    assert set(MERGED) == {"oxford_iiit_pet", "flowers102", "stanford_cars"}
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "config" / "catalog.yaml")
    check_groups(MERGED, catalog)  # raises on a group the rules cannot build


def test_two_tarballs_and_two_loose_files_make_one_folder(downloads, tmp_path):
    merge = Merge(
        (
            MergePart("pets_images"),
            MergePart("pets_annotations"),
            MergePart("flowers_jpg", into="jpg"),
            MergePart("flowers_labels"),
            MergePart("flowers_setid", name="splits/setid.mat"),
        )
    )
    dest, reports = build("pets_and_flowers", merge, downloads, tmp_path)
    assert listing(dest) == sorted(
        [
            "annotations",
            "annotations/list.txt",
            "annotations/trainval.txt",
            "images",
            *sorted(PETS_IMAGES),
            "imagelabels.mat",
            "jpg",
            *sorted(f"jpg/{name}" for name in FLOWERS),
            "splits",
            "splits/setid.mat",
        ]
    )
    for name, data in {**PETS_IMAGES, **PETS_ANNOTATIONS}.items():
        assert (dest / name).read_bytes() == data
    assert (dest / "images").stat().st_mtime == MTIME  # unrenamed archives keep their folders
    paths, _ = downloads
    # Loose files are stored once: hard links to the downloads.
    assert (dest / "imagelabels.mat").stat().st_ino == paths["flowers_labels"].stat().st_ino
    assert (dest / "splits" / "setid.mat").read_bytes() == b"MATLAB 5.0 MAT-file setid"
    assert [r["files"] for r in reports] == [3, 2, 3, 1, 1]
    assert [p.name for p in dest.parent.iterdir()] == ["pets_and_flowers"]  # nothing beside


def test_a_clash_between_parts_is_an_error_naming_both(downloads, tmp_path):
    merge = Merge((MergePart("flowers_jpg"), MergePart("flowers_labels", name="image_00002.jpg")))
    with pytest.raises(CorruptArchiveError) as err:
        build("flowers", merge, downloads, tmp_path)
    message = str(err.value)
    assert "store group flowers" in message and "'image_00002.jpg'" in message
    assert "member 'imagelabels.mat'" in message  # the second comer, and its entry
    assert "catalog entry flowers_labels" in message
    assert "give one of them its own folder (`into`)" in message
    assert (
        not (tmp_path / "data" / "extracted").exists()
        or listing(tmp_path / "data" / "extracted") == []
    )
    paths, _ = downloads
    assert all(path.exists() for path in paths.values())  # neither download is to blame


def test_a_corrupt_part_leaves_nothing_and_is_fetched_again(downloads, tmp_path):
    paths, _ = downloads
    broken = paths["pets_annotations"]
    broken.write_bytes(broken.read_bytes()[:-30])  # cut off, as a dropped download is
    merge = Merge((MergePart("pets_images"), MergePart("pets_annotations")))
    with pytest.raises(CorruptArchiveError) as err:
        build("pets", merge, downloads, tmp_path)
    message = str(err.value)
    assert f"{broken} (catalog entry pets_annotations) is not a sound tar.gz archive" in message
    assert "the next run downloads it again" in message
    assert not broken.exists()  # unverified: deleted, so the rerun fetches it
    assert paths["pets_images"].exists()
    extracted = tmp_path / "data" / "extracted"
    assert not extracted.exists() or listing(extracted) == []


def test_the_plan_holds_what_decides_the_result_and_no_paths(downloads):
    _, catalog = downloads
    merged = {"g": Merge((MergePart("pets_images", into="x"), MergePart("flowers_labels")))}
    plan = merge_plan("g", merged, catalog)
    assert plan == [
        {
            "entry": "pets_images",
            "kind": "tar.gz",
            "archive_file": None,
            "into": "x",
            "name": "",
            "size": catalog["pets_images"]["size"],
            "max_ratio": 8,
        },
        {
            "entry": "flowers_labels",
            "kind": "file",
            "archive_file": None,
            "into": "",
            "name": "",
            "size": catalog["flowers_labels"]["size"],
            "max_ratio": 8,
        },
    ]


def test_a_table_the_rules_cannot_build_is_refused_with_every_problem(downloads):
    _, catalog = downloads
    merged = {
        "pets_images": Merge((MergePart("pets_annotations"),)),  # also a catalog id
        "Bad-Name": Merge((MergePart("pets_images"),)),
        "flowers": Merge(
            (
                MergePart("flowers_labels", into="x"),  # a loose file has no `into`
                MergePart("flowers_jpg", name="a.jpg"),  # an archive has no `name`
                MergePart("flowers_setid", name="../setid.mat"),
                MergePart("not_in_this_catalog"),  # fine until built
            )
        ),
        "empty": Merge(()),
    }
    with pytest.raises(CatalogError) as err:
        check_groups(merged, catalog)
    message = str(err.value)
    assert "6 problem(s)" in message
    for needle in (
        "pets_images: also a catalog entry id",
        "Bad-Name: a group name must match",
        "flowers_labels is not an archive",
        "flowers_jpg is an archive",
        "'../setid.mat' must be a relative path",
        "empty: has no parts",
    ):
        assert needle in message


# -- hub archives ---------------------------------------------------------------------------

HUB_ENTRY = {
    "description": "Caltech101 on the hub",
    "kind": "hf",
    "repo": "vlprep-standin/caltech-101",
    "revision": "0" * 40,
    "include": ["caltech-101.zip"],
    "archive": "zip",
    "archive_file": "caltech-101.zip",
    "nested": [{"member": "caltech-101/Annotations.tar", "archive": "tar"}],
}


def test_the_schema_takes_a_hub_archive_with_its_file_and_nested_members(tmp_path):
    catalog = write_catalog(tmp_path / "c.yaml", {"caltech101": HUB_ENTRY})
    assert catalog["caltech101"]["archive_file"] == "caltech-101.zip"
    assert "filename" not in catalog["caltech101"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"archive_file": None}, "'archive_file' is a required property"),
        ({"archive": None}, "'archive' is a required property"),  # archive_file needs one
        ({"archive_file": "../x.zip"}, "archive_file"),
        ({"archive_file": "/x.zip"}, "archive_file"),
        ({"nested": [{"member": "../x.tar", "archive": "tar"}]}, "nested.0.member"),
        ({"nested": [{"member": "x.tar"}]}, "'archive' is a required property"),
        ({"nested": [{"member": "x.tar", "archive": "rar"}]}, "nested.0.archive"),
        (
            {"kind": "http", "url": "https://example.org/c.zip", "repo": None, "revision": None},
            "False schema does not allow 'caltech-101.zip'",  # archive_file is for hub entries
        ),
    ],
)
def test_the_schema_refuses_what_cannot_be_unpacked(tmp_path, change, says):
    entry = {k: v for k, v in {**HUB_ENTRY, **change}.items() if v is not None}
    with pytest.raises(CatalogError, match="entry 'caltech101'") as err:
        write_catalog(tmp_path / "c.yaml", {"caltech101": entry})
    assert says in str(err.value)


def test_nested_needs_an_archive_to_be_in(tmp_path):
    entry = {
        "description": "x",
        "kind": "http",
        "url": "https://example.org/x.bin",
        "nested": [{"member": "a.tar", "archive": "tar"}],
    }
    with pytest.raises(CatalogError, match="'archive' is a required property"):
        write_catalog(tmp_path / "c.yaml", {"x": entry})


def test_include_patterns_must_fetch_the_archive_file(tmp_path):
    catalog = write_catalog(tmp_path / "c.yaml", {"caltech101": HUB_ENTRY})
    entry = catalog["caltech101"]
    assert hub_archive_problem("caltech101", entry) is None
    assert hub_archive_problem("caltech101", {**entry, "include": None}) is None  # all files
    assert hub_archive_problem("caltech101", {**entry, "include": ["*.zip"]}) is None
    problem = hub_archive_problem("caltech101", {**entry, "include": ["data/*.parquet"]})
    assert "archive_file caltech-101.zip is not among the files" in problem
    assert "add it to include" in problem


def hub_download(tmp_path: Path, zip_bytes: bytes) -> Path:
    """A hub entry's download folder, as vlprep.hub leaves it."""
    folder = tmp_path / "data" / "downloads" / "caltech101"
    folder.mkdir(parents=True)
    (folder / "caltech-101.zip").write_bytes(zip_bytes)
    (folder / MANIFEST).write_text(json.dumps({"sha": "0" * 40, "files": []}))
    return folder


def caltech_zip(annotations: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("caltech-101/Annotations.tar", annotations)
        zf.writestr("caltech-101/show_annotation.m", b"% show\n")
    return buf.getvalue()


def tar_of(files: dict[str, bytes]) -> bytes:
    return gzip.decompress(tar_gz(files))


def test_a_hub_archive_is_taken_from_its_download_folder(tmp_path):
    catalog = write_catalog(tmp_path / "c.yaml", {"caltech101": HUB_ENTRY})
    folder = hub_download(tmp_path, caltech_zip(tar_of({"Annotations/a/x.mat": b"MATLAB"})))
    dest = tmp_path / "data" / "extracted" / "caltech101"
    report = extract_download(
        "caltech101",
        folder,
        dest,
        catalog["caltech101"],
        tmp_path / "manual",
        kind="zip",
        nested=[],
    )
    assert report["files"] == 2
    assert (dest / "caltech-101" / "Annotations.tar").is_file()  # not nested in this call
    assert not (dest / MANIFEST).exists()


def test_a_broken_hub_archive_is_kept_and_the_repository_named(tmp_path):
    """Verified against the hub's listing when fetched: a new download brings the same bytes."""
    catalog = write_catalog(tmp_path / "c.yaml", {"caltech101": HUB_ENTRY})
    folder = hub_download(tmp_path, caltech_zip(b"not a tar at all" * 64))
    from vlprep.extract import Nested

    with pytest.raises(CorruptArchiveError) as err:
        extract_download(
            "caltech101",
            folder,
            tmp_path / "data" / "extracted" / "caltech101",
            catalog["caltech101"],
            tmp_path / "manual",
            kind="zip",
            nested=[Nested("caltech-101/Annotations.tar", "tar")],
        )
    message = str(err.value)
    assert "member 'caltech-101/Annotations.tar'" in message
    assert "of the hub repository vlprep-standin/caltech-101" in message
    assert str(folder / MANIFEST) in message and "it was kept" in message
    assert (folder / "caltech-101.zip").is_file()
    assert not (tmp_path / "data" / "extracted" / "caltech101").exists()


def test_a_hub_download_without_the_archive_file_says_how_to_fix_it(tmp_path):
    catalog = write_catalog(tmp_path / "c.yaml", {"caltech101": HUB_ENTRY})
    folder = tmp_path / "data" / "downloads" / "caltech101"
    folder.mkdir(parents=True)
    with pytest.raises(CatalogError, match="has no caltech-101.zip, the file the catalog says"):
        extract_download(
            "caltech101", folder, tmp_path / "out", catalog["caltech101"], tmp_path, kind="zip"
        )
