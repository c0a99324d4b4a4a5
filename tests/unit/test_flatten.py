"""Flattening Visual Genome's two zips: every image once, by base name, byte for byte; wrong,
hostile or broken archives refused, leaving nothing; damaged JPEGs reported."""

import io
import os
import random
import signal
import struct
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from pathlib import Path

import pytest

from standin.coco import make_bad_archives
from standin.vg import TOP_DIRS, make_vg_zips
from vlprep.errors import CatalogError, CorruptArchiveError, UnsafeArchiveError
from vlprep.extract import Part, extract_many
from vlprep.flatten import flatten_archives, jpeg_damage

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
TOPS = list(TOP_DIRS.values())  # VG_100K, VG_100K_2
ZIP_MTIME = 1_468_319_400  # 2016-07-12 10:30:00 UTC, the stand-in zips' member time
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20 + b"\xff\xd9"


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


@pytest.fixture(scope="module")
def vg(tmp_path_factory):
    return make_vg_zips(tmp_path_factory.mktemp("vg"), 60, seed=3, corrupt=6)


def listing(root: Path) -> list[str]:
    """Every path under `root`, hidden ones included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def zip_of(path: Path, members: list[tuple[str, bytes]], mode: int = 0o100644) -> Path:
    """A zip of (name, data); names ending in "/" are directories."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we want
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members:
                info = zipfile.ZipInfo(name, (2016, 7, 12, 10, 30, 0))
                info.create_system = 3
                info.external_attr = (0o40755 if name.endswith("/") else mode) << 16
                zf.writestr(info, data)
    return path


def flatten(archives: list[Path], dest: Path, tops: list[str] = TOPS) -> dict:
    return flatten_archives(archives, dest, top_dirs=tops, entry="vg_images")


def test_every_image_lands_flat_and_byte_identical(tmp_path, vg):
    archives = [vg.files["images.zip"], vg.files["images2.zip"]]
    report = flatten(archives, tmp_path / "vg" / "images")
    expected = {}
    for archive, top in zip(archives, TOPS, strict=True):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    assert info.filename.startswith(f"{top}/")
                    expected[info.filename.rpartition("/")[2]] = zf.read(info)
    images = tmp_path / "vg" / "images"
    assert listing(tmp_path / "vg") == ["images", *(f"images/{n}" for n in sorted(expected))]
    assert len(expected) == 60
    for name, data in expected.items():
        assert (images / name).read_bytes() == data, name
        assert (images / name).stat().st_mtime == ZIP_MTIME
    assert report["files"] == 60 and report["bytes"] == sum(map(len, expected.values()))
    first, second = report["archives"]
    assert (first["archive"], first["top_dir"]) == ("images.zip", "VG_100K")
    assert first["files"] + second["files"] == 60
    assert first["skipped"] == second["skipped"] == 1  # the top directory entries
    assert first["members"] == first["files"] + 1


def test_damaged_images_are_reported_and_kept(tmp_path, vg):
    report = flatten([vg.files["images.zip"], vg.files["images2.zip"]], tmp_path / "out")
    found = {s["name"]: s for s in report["suspect_images"]}
    assert found.keys() == vg.corrupt.keys()
    words = {"empty": "empty", "truncated": "truncated", "not_jpeg": "not a JPEG"}
    for name, damage in vg.corrupt.items():
        assert found[name]["reason"].startswith(words[damage]), name
        assert found[name]["archive"] == "images2.zip"
        assert found[name]["bytes"] == (tmp_path / "out" / name).stat().st_size
    assert {"empty", "truncated", "not_jpeg"} <= set(vg.corrupt.values())


def test_jpeg_markers():
    assert jpeg_damage(JPEG[:3], JPEG[-64:], len(JPEG)) is None
    padded = JPEG + b"\0" * 30 + b"\r\n"  # some writers pad after the end-of-image marker
    assert jpeg_damage(padded[:3], padded[-64:], len(padded)) is None
    assert jpeg_damage(b"", b"", 0) == "empty"
    assert jpeg_damage(b"\x89PN", b"IEND\xaeB`\x82", 500).startswith("not a JPEG")
    cut = JPEG[:-2]
    assert jpeg_damage(cut[:3], cut[-64:], len(cut)).startswith("truncated")
    junk = JPEG + b"trailing junk"
    assert jpeg_damage(junk[:3], junk[-64:], len(junk)).startswith("truncated")


def test_generator_is_deterministic(tmp_path):
    one = make_vg_zips(tmp_path / "a", 30, seed=1, corrupt=3)
    two = make_vg_zips(tmp_path / "b", 30, seed=1, corrupt=3)
    for name in TOP_DIRS:
        assert one.files[name].read_bytes() == two.files[name].read_bytes()
    assert one.corrupt == two.corrupt
    with pytest.raises(ValueError, match="fewer images"):
        make_vg_zips(tmp_path / "c", 10, corrupt=9)


def test_name_in_both_zips_is_an_error_naming_both(tmp_path):
    first = zip_of(tmp_path / "images.zip", [("VG_100K/", b""), ("VG_100K/1.jpg", JPEG)])
    second = zip_of(
        tmp_path / "images2.zip",
        [("VG_100K_2/", b""), ("VG_100K_2/2.jpg", JPEG), ("VG_100K_2/1.jpg", JPEG + b"x")],
    )
    before = listing(tmp_path)
    with pytest.raises(CorruptArchiveError) as caught:
        flatten([first, second], tmp_path / "out")
    message = str(caught.value)
    assert f"'VG_100K_2/1.jpg' of {second}" in message
    assert f"'VG_100K/1.jpg' of {first}" in message
    assert "vg_images" in message and "'1.jpg'" in message
    assert listing(tmp_path) == before


def test_name_twice_in_one_zip_is_an_error_naming_both(tmp_path):
    first = zip_of(tmp_path / "images.zip", [("VG_100K/1.jpg", JPEG)])
    members = [("VG_100K_2/7.jpg", JPEG), ("VG_100K_2/8.jpg", JPEG), ("VG_100K_2/7.jpg", b"")]
    second = zip_of(tmp_path / "images2.zip", members)
    with pytest.raises(CorruptArchiveError) as caught:
        flatten([first, second], tmp_path / "out")
    assert str(caught.value).count(f"'VG_100K_2/7.jpg' of {second}") == 2
    assert not (tmp_path / "out").exists()


def test_the_same_zip_twice_fails_before_writing(tmp_path, vg):
    images = vg.files["images.zip"]
    with pytest.raises(CorruptArchiveError, match="not a file directly under VG_100K_2/"):
        flatten([images, images], tmp_path / "out")
    with pytest.raises(CorruptArchiveError, match="where member 'VG_100K/"):
        flatten([images, images], tmp_path / "out", tops=["VG_100K", "VG_100K"])
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    "name",
    ["images/1.jpg", "1.jpg", "VG_100K/sub/1.jpg", "__MACOSX/VG_100K/._1.jpg"],
)
def test_file_outside_the_top_directory_is_refused(tmp_path, name):
    archive = zip_of(tmp_path / "images.zip", [("VG_100K/1.jpg", JPEG), (name, JPEG)])
    with pytest.raises(CorruptArchiveError) as caught:
        flatten([archive], tmp_path / "out", ["VG_100K"])
    message = str(caught.value)
    assert f"member {name!r} is not a file directly under VG_100K/" in message
    assert str(archive) in message and "not the archive expected" in message
    assert listing(tmp_path) == ["images.zip"]


# make_bad_archives sample -> (error, what the message must say). Its bombs sit outside data/,
# so flatten refuses them as misplaced first; test_extract covers them on the same code path.
BAD = {
    "zip_slip.zip": (UnsafeArchiveError, "'..'"),
    "zip_absolute.zip": (UnsafeArchiveError, "absolute path"),
    "zip_symlink.zip": (UnsafeArchiveError, "is a link"),
    "zip_fifo.zip": (UnsafeArchiveError, "FIFO"),
    "zip_device.zip": (UnsafeArchiveError, "device"),
    "bad_crc.zip": (CorruptArchiveError, "CRC"),
    "truncated.zip": (CorruptArchiveError, "not a zip file"),
    "tar_slip.tar.gz": (UnsafeArchiveError, "'..'"),
    "tar_symlink_escape.tar": (UnsafeArchiveError, "is a link"),
    "tar_hardlink_nonmember.tar": (UnsafeArchiveError, "is a link"),
}


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    return make_bad_archives(tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("name", sorted(BAD))
def test_hostile_or_broken_archive_is_refused_and_leaves_nothing(tmp_path, bad, name):
    good = zip_of(tmp_path / "images.zip", [("data/0.jpg", JPEG)])
    work = tmp_path / "a" / "b"  # escapes aim at ../../
    work.mkdir(parents=True)
    error, says = BAD[name]
    with pytest.raises(error, match=says) as caught:
        flatten([good, bad[name]], work / "out", ["data", "data"])
    assert str(bad[name]) in str(caught.value)
    assert listing(tmp_path) == ["a", "a/b", "images.zip"]
    assert not Path("/tmp/vlprep-evil-zip.txt").exists()


def test_every_zip_read_path_gives_the_same_bytes(tmp_path):
    """Small members are read whole, big ones (or long local headers) streamed."""
    noise = random.Random(7).randbytes(3 << 20)
    members = {
        "top/small_stored.jpg": (JPEG, zipfile.ZIP_STORED, b""),
        "top/small_deflated.jpg": (JPEG * 50, zipfile.ZIP_DEFLATED, b""),
        "top/big_stored.bin": (noise, zipfile.ZIP_STORED, b""),
        "top/big_deflated.bin": (noise + bytes(2 << 20), zipfile.ZIP_DEFLATED, b""),
        "top/empty.bin": (b"", zipfile.ZIP_DEFLATED, b""),
        # an unknown extra field of 2000 bytes pushes the data past the one-read window
        "top/long_header.bin": (
            b"x" * 500,
            zipfile.ZIP_DEFLATED,
            b"\xfe\xca\xd0\x07" + bytes(2000),
        ),
    }
    archive = tmp_path / "paths.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, (data, compress, extra) in members.items():
            info = zipfile.ZipInfo(name, (2016, 7, 12, 10, 30, 0))
            info.compress_type, info.extra = compress, extra
            zf.writestr(info, data)
    flatten([archive], tmp_path / "out", ["top"])
    for name, (data, _, _) in members.items():
        assert (tmp_path / "out" / name.removeprefix("top/")).read_bytes() == data, name


def test_deflated_member_lying_about_its_size_is_refused(tmp_path):
    """Headers claiming 0 bytes for 8 MiB of zeros: nothing is inflated past the claim."""
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("top/a.jpg", JPEG)
        zf.writestr("top/zeros.jpg", bytes(8 << 20))
    data = bytearray(archive.read_bytes())
    local = data.index(b"PK\x03\x04", 1)
    struct.pack_into("<I", data, local + 22, 0)
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 0)
    archive.write_bytes(bytes(data))
    with pytest.raises(CorruptArchiveError, match="CRC-32 for file 'top/zeros.jpg'"):
        flatten([archive], tmp_path / "out", ["top"])
    assert listing(tmp_path) == ["liar.zip"]


def test_tar_archives_flatten_too(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in [("imgs", None), ("imgs/a.jpg", JPEG), ("imgs/b.jpg", b"")]:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    archive = tmp_path / "part.tar.gz"
    archive.write_bytes(buf.getvalue())
    report = flatten([archive], tmp_path / "out", ["imgs"])
    assert listing(tmp_path / "out") == ["a.jpg", "b.jpg"]
    assert (tmp_path / "out/a.jpg").read_bytes() == JPEG
    assert [s["name"] for s in report["suspect_images"]] == ["b.jpg"]
    assert report["archives"][0]["skipped"] == 1


def test_merging_without_renames_still_refuses_overwrites(tmp_path):
    one = zip_of(tmp_path / "one.zip", [("d/", b""), ("d/a.txt", b"1"), ("d/b.txt", b"2")])
    two = zip_of(tmp_path / "two.zip", [("d/", b""), ("d/c.txt", b"3")])
    reports = extract_many([Part(one), Part(two)], tmp_path / "merged", entry="e")
    assert listing(tmp_path / "merged") == ["d", "d/a.txt", "d/b.txt", "d/c.txt"]
    assert [r["files"] for r in reports] == [2, 1]
    three = zip_of(tmp_path / "three.zip", [("d/b.txt", b"other")])
    with pytest.raises(CorruptArchiveError, match=f"'d/b.txt' of {one}"):
        extract_many([Part(one), Part(two), Part(three)], tmp_path / "merged2", entry="e")
    assert not (tmp_path / "merged2").exists()


def test_top_dirs_must_match_the_archives(tmp_path, vg):
    with pytest.raises(CatalogError, match="one top directory per archive"):
        flatten([vg.files["images.zip"]], tmp_path / "out", TOPS)
    with pytest.raises(CatalogError, match="one plain directory name"):
        flatten([vg.files["images.zip"]], tmp_path / "out", ["VG_100K/x"])


def test_failure_in_the_second_zip_leaves_nothing_and_rerun_succeeds(tmp_path, vg, monkeypatch):
    archives = [vg.files["images.zip"], vg.files["images2.zip"]]
    calls = []
    real_utime = os.utime

    def failing_utime(*args, **kwargs):
        calls.append(args)
        if len(calls) == 50:  # images.zip has 36 of the 60 images
            raise RuntimeError("simulated crash")
        return real_utime(*args, **kwargs)

    monkeypatch.setattr(os, "utime", failing_utime)
    with pytest.raises(RuntimeError, match="simulated"):
        flatten(archives, tmp_path / "store" / "images")
    assert listing(tmp_path / "store") == []
    monkeypatch.undo()
    flatten(archives, tmp_path / "store" / "images")
    assert len(listing(tmp_path / "store" / "images")) == 60


def test_killed_run_leaves_no_dest_and_rerun_succeeds(tmp_path):
    """SIGKILL a real flatten once its first file is written, then flatten again."""
    made = make_vg_zips(tmp_path / "zips", 3000, seed=5, corrupt=0)
    archives = [made.files[name] for name in TOP_DIRS]
    dest = tmp_path / "store" / "images"
    code = (
        "import sys; from pathlib import Path; from vlprep.flatten import flatten_archives; "
        f"flatten_archives([Path(a) for a in sys.argv[2:]], Path(sys.argv[1]), top_dirs={TOPS!r}, "
        "entry='vg_images')"
    )
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS), "VLPREP_PROGRESS": "0"}
    argv = [sys.executable, "-c", code, str(dest), *map(str, archives)]
    child = subprocess.Popen(argv, env=env)
    staging = dest.parent / f".images.vlprep-tmp-{child.pid}"
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline:
        if staging.is_dir() and any(staging.iterdir()):
            break
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL, "the flatten ended before the kill"
    assert not dest.exists()
    assert listing(dest.parent)[0] == staging.name

    report = flatten(archives, dest)
    assert listing(dest.parent) == ["images", *(f"images/{n}" for n in sorted(os.listdir(dest)))]
    assert report["files"] == len(os.listdir(dest)) == 3000
