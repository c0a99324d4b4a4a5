"""Archives inside an archive (Caltech101): unpacked in place, as safely, all or nothing."""

import calendar
import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from standin.hub import ZIP_DATE, make_caltech101_repo
from vlprep.errors import CatalogError, CorruptArchiveError, UnsafeArchiveError
from vlprep.extract import Nested, extract

MTIME = 1_600_000_000


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


def tar_bytes(members: dict[str, bytes | tuple], *, gz: bool = False) -> bytes:
    """A tar: name -> bytes (a file), ("dir",), ("sym", target) or ("link", target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, value in members.items():
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            if isinstance(value, bytes):
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE}[
                value[0]
            ]
            if len(value) > 1:
                info.linkname = value[1]
            tar.addfile(info)
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if gz else data


def zip_file(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, ZIP_DATE), data)
    return path


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def nothing_left(dest: Path) -> bool:
    """No tree at dest and no staging leftovers beside it."""
    beside = [p for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")]
    return not dest.exists() and not beside


CALTECH_NESTED = [
    Nested("caltech-101/101_ObjectCategories.tar.gz", "tar.gz"),
    Nested("caltech-101/Annotations.tar", "tar"),
]


def test_caltech101_zip_holding_a_tar_gz_and_a_tar(tmp_path):
    repo = make_caltech101_repo(tmp_path / "hub", images_per_category=2)
    dest = tmp_path / "extracted" / "caltech101"
    report = extract(
        repo / "caltech-101.zip", dest, kind="zip", entry="caltech101", nested=CALTECH_NESTED
    )
    root = dest / "caltech-101"
    assert sorted(p.name for p in root.iterdir()) == [
        "101_ObjectCategories",
        "Annotations",
        "show_annotation.m",
    ]  # the inner archives are gone: unpacked, they would only double the space
    jpgs = sorted((root / "101_ObjectCategories").rglob("*.jpg"))
    assert len(jpgs) == 10 and jpgs[0].read_bytes()[:2] == b"\xff\xd8"
    assert (root / "101_ObjectCategories" / "accordion" / "image_0002.jpg").is_file()
    assert (root / "Annotations" / "Faces_3" / "annotation_0001.mat").read_bytes()[:6] == b"MATLAB"
    # The folder that held them keeps the zip's mtime; the inner trees keep the tars'.
    assert root.stat().st_mtime == calendar.timegm((*ZIP_DATE, 0, 0, 0))
    assert (root / "Annotations").stat().st_mtime == 1_600_000_000
    assert [n["nested"] for n in report["nested"]] == [n.member for n in CALTECH_NESTED]
    assert report["nested"][0]["files"] == 10 and report["nested"][1]["files"] == 10
    assert [p.name for p in dest.parent.iterdir()] == ["caltech101"]  # no leftovers


def test_a_tar_inside_a_tar_then_a_zip_inside_that(tmp_path):
    """Nested archives are unpacked in order, so one may sit inside an earlier one."""
    inner_zip = io.BytesIO()
    with zipfile.ZipFile(inner_zip, "w") as zf:
        zf.writestr("deep.txt", b"deep")
    inner = tar_bytes(
        {"parts/": ("dir",), "parts/x.txt": b"x", "parts/more.zip": inner_zip.getvalue()}
    )
    outer = tmp_path / "outer.tar"
    outer.write_bytes(tar_bytes({"data/inner.tar": inner, "data/keep.txt": b"keep"}))
    dest = tmp_path / "out"
    extract(
        outer,
        dest,
        kind="tar",
        entry="e",
        nested=[Nested("data/inner.tar", "tar"), Nested("data/parts/more.zip", "zip")],
    )
    assert listing(dest) == [
        "data",
        "data/keep.txt",
        "data/parts",
        "data/parts/deep.txt",
        "data/parts/x.txt",
    ]


@pytest.mark.parametrize(
    ("inner", "says"),
    [
        ({"../evil.txt": b"evil"}, "'..'"),
        ({"/tmp/vlprep-nested-evil.txt": b"evil"}, "absolute path"),
        ({"ok/link": ("sym", "../../outside")}, "outside the target"),
        # Inside the outer tree, but outside the folder that holds the inner archive.
        ({"link": ("sym", "../other")}, "outside the target"),
        ({"h": ("link", "../keep.txt")}, "hard link"),
    ],
)
def test_an_inner_archive_that_tries_to_escape_is_refused(tmp_path, inner, says):
    outer = zip_file(
        tmp_path / "outer.zip",
        {"data/inner.tar": tar_bytes(inner), "keep.txt": b"keep", "other/x": b"x"},
    )
    dest = tmp_path / "extracted" / "entry"
    with pytest.raises(UnsafeArchiveError, match=says) as err:
        extract(outer, dest, kind="zip", entry="entry", nested=[Nested("data/inner.tar", "tar")])
    assert f"{outer} member 'data/inner.tar'" in str(err.value)
    assert nothing_left(dest)
    assert not Path("/tmp/vlprep-nested-evil.txt").exists()
    assert not (tmp_path / "extracted" / "evil.txt").exists()


def test_an_inner_archive_may_not_write_through_a_link_of_the_outer_one(tmp_path):
    """The outer archive's links resolve inside it; the inner one still may not use them."""
    outer = tmp_path / "outer.tar"
    outer.write_bytes(
        tar_bytes(
            {
                "store/": ("dir",),
                "store/precious.txt": b"precious",
                "data/": ("dir",),
                "data/via": ("sym", "../store"),
                "data/inner.tar": tar_bytes({"via/planted.txt": b"planted"}),
            }
        )
    )
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match="through a link already in the target"):
        extract(outer, dest, kind="tar", entry="e", nested=[Nested("data/inner.tar", "tar")])
    assert nothing_left(dest)


def test_an_inner_file_may_not_replace_one_of_the_outer_archive(tmp_path):
    outer = zip_file(
        tmp_path / "outer.zip",
        {"data/README": b"outer", "data/inner.tar": tar_bytes({"README": b"inner"})},
    )
    dest = tmp_path / "out"
    with pytest.raises(CorruptArchiveError, match="already in the folder that holds it") as err:
        extract(outer, dest, kind="zip", entry="e", nested=[Nested("data/inner.tar", "tar")])
    assert "'README'" in str(err.value) and err.value.archive == outer
    assert nothing_left(dest)


def test_a_missing_member_is_named(tmp_path):
    outer = zip_file(tmp_path / "caltech-101.zip", {"caltech-101/Annotations.tar": tar_bytes({})})
    dest = tmp_path / "out"
    with pytest.raises(CatalogError, match="'caltech-101/101_ObjectCategories.tar.gz' is not in"):
        extract(outer, dest, kind="zip", entry="caltech101", nested=CALTECH_NESTED)
    assert nothing_left(dest)


def test_a_folder_named_as_a_member_is_not_an_archive(tmp_path):
    outer = zip_file(tmp_path / "o.zip", {"data/inner.tar/x": b"x"})
    with pytest.raises(CatalogError, match="is not a regular file"):
        extract(
            outer, tmp_path / "out", kind="zip", entry="e", nested=[Nested("data/inner.tar", "tar")]
        )


@pytest.mark.parametrize("member", ["../inner.tar", "/inner.tar", "a//inner.tar", "./inner.tar"])
def test_a_member_path_must_be_relative_and_plain(tmp_path, member):
    outer = zip_file(tmp_path / "o.zip", {"inner.tar": tar_bytes({})})
    with pytest.raises(CatalogError, match="relative"):
        extract(outer, tmp_path / "out", kind="zip", entry="e", nested=[Nested(member, "tar")])
    assert nothing_left(tmp_path / "out")


def test_a_corrupt_inner_archive_leaves_nothing_and_blames_the_download(tmp_path):
    good = tar_bytes({"101_ObjectCategories/a/image_0001.jpg": b"\xff\xd8" + b"x" * 5000}, gz=True)
    outer = zip_file(
        tmp_path / "caltech-101.zip",
        {
            "caltech-101/101_ObjectCategories.tar.gz": good[: len(good) // 2],  # cut off
            "caltech-101/Annotations.tar": tar_bytes({"Annotations/a/annotation_0001.mat": b"m"}),
        },
    )
    dest = tmp_path / "extracted" / "caltech101"
    dest.mkdir(parents=True)
    (dest / "older.txt").write_text("an older, complete extraction")
    with pytest.raises(CorruptArchiveError, match="corrupt or truncated") as err:
        extract(outer, dest, kind="zip", entry="caltech101", nested=CALTECH_NESTED)
    message = str(err.value)
    assert f"{outer} member 'caltech-101/101_ObjectCategories.tar.gz'" in message
    assert f"Delete {outer}" in message and err.value.archive == outer
    # The older tree stays as it was; nothing of the failed one is anywhere.
    assert listing(dest) == ["older.txt"]
    assert [p.name for p in dest.parent.iterdir()] == ["caltech101"]


def test_a_bomb_inside_is_refused_by_its_own_size(tmp_path):
    bomb = tar_bytes({"zeros.bin": bytes(64 << 20)}, gz=True)  # ~64 KiB of gzip
    outer = zip_file(tmp_path / "o.zip", {"data/bomb.tar.gz": bomb})
    with pytest.raises(UnsafeArchiveError, match="decompression bomb"):
        extract(
            outer,
            tmp_path / "out",
            kind="zip",
            entry="e",
            max_ratio=8,
            nested=[Nested("data/bomb.tar.gz", "tar.gz")],
        )
    assert nothing_left(tmp_path / "out")
