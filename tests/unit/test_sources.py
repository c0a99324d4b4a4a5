"""One entry point for single files: manual_dir first (verified, never moved), then the kind's
downloader; a manual file that is missing says where to get it."""

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from standin.server import StandinServer
from vlprep.errors import CorruptArchiveError, FetchError
from vlprep.sources import (
    ManualFileMissing,
    extract_download,
    fetch_entry,
    flatten_downloads,
    where_to_get,
)

DATA = b"manual bytes " * 1000


def config(tmp_path: Path, **extra) -> dict:
    return {
        "manual_dir": str(tmp_path / "manual"),
        "mirrors": {},
        "fetch": {"retries": 0, "timeout": 5, "max_backoff": 1, "try_original": True},
        "s3_endpoint": "http://127.0.0.1:9",
        "gdrive": {"proxy": "http://127.0.0.1:9", "ca_bundle": None},
        **extra,
    }


def source(kind: str = "manual", **extra) -> dict:
    return {
        "kind": kind,
        "filename": "thing.zip",
        "size": len(DATA),
        "sha256": hashlib.sha256(DATA).hexdigest(),
        "md5": None,
        "instructions": "register at https://example.org/thing and download thing.zip",
        **extra,
    }


def test_manual_file_is_verified_and_linked_not_moved(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "thing.zip").write_bytes(DATA)
    dest = tmp_path / "downloads" / "thing" / "thing.zip"
    report = fetch_entry("thing", source(), dest, config(tmp_path))
    assert dest.read_bytes() == DATA
    assert (manual / "thing.zip").read_bytes() == DATA  # the user's copy stays
    assert os.stat(dest).st_ino == os.stat(manual / "thing.zip").st_ino  # no second copy
    assert report["sha256"] == hashlib.sha256(DATA).hexdigest() and report["bytes"] == 0


def test_wrong_manual_file_is_refused_naming_it(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "thing.zip").write_bytes(DATA[:-1] + b"X")
    dest = tmp_path / "downloads" / "thing.zip"
    with pytest.raises(FetchError) as err:
        fetch_entry("thing", source(), dest, config(tmp_path))
    assert str(manual / "thing.zip") in str(err.value) and "sha256" in str(err.value)
    assert not dest.exists() and not list(dest.parent.glob("*"))


def test_manual_file_is_checked_by_sha1_when_that_is_all_upstream_publishes(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "thing.zip").write_bytes(DATA)
    sha1 = hashlib.sha1(DATA).hexdigest()
    sha1_only = source(sha256=None, sha1=sha1)
    report = fetch_entry("thing", sha1_only, tmp_path / "d" / "thing.zip", config(tmp_path))
    assert report["sha1"] == sha1 and (tmp_path / "d" / "thing.zip").read_bytes() == DATA
    assert f"sha1: {sha1}" in where_to_get("thing", sha1_only, manual)

    wrong = DATA[:-1] + b"X"  # the right size, other bytes
    (manual / "thing.zip").write_bytes(wrong)
    dest = tmp_path / "d2" / "thing.zip"
    with pytest.raises(FetchError) as err:
        fetch_entry("thing", sha1_only, dest, config(tmp_path))
    message = str(err.value)
    assert f"{manual / 'thing.zip'} has sha1 {hashlib.sha1(wrong).hexdigest()}" in message
    assert f"the catalog says {sha1}" in message and "replace or remove it" in message
    assert not dest.exists()


def test_download_is_checked_by_the_catalogs_sha1(tmp_path):
    """The catalog's sha1 reaches the downloader: a host serving other bytes is refused."""
    (tmp_path / "www" / "host").mkdir(parents=True)
    (tmp_path / "www" / "host" / "thing.zip").write_bytes(DATA)
    dest = tmp_path / "d" / "thing.zip"
    with StandinServer(tmp_path / "www") as server:
        url = f"{server.url}host/thing.zip"
        wrong = source("http", url=url, sha256=None, sha1=hashlib.sha1(b"other").hexdigest())
        with pytest.raises(FetchError, match="sha1 mismatch"):
            fetch_entry("thing", wrong, dest, config(tmp_path))
        assert not dest.exists()
        right = source("http", url=url, sha256=None, sha1=hashlib.sha1(DATA).hexdigest())
        assert fetch_entry("thing", right, dest, config(tmp_path))["sha1"] == right["sha1"]
    assert dest.read_bytes() == DATA


def test_missing_manual_file_says_where_to_get_it(tmp_path):
    with pytest.raises(ManualFileMissing) as err:
        fetch_entry("thing", source(), tmp_path / "d" / "thing.zip", config(tmp_path))
    message = str(err.value)
    assert "https://example.org/thing" in message
    assert str(tmp_path / "manual" / "thing.zip") in message
    assert hashlib.sha256(DATA).hexdigest() in message


def test_manual_dir_wins_over_a_download(tmp_path):
    """A file put by hand (say after a Drive quota) is used; the host is never asked."""
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "thing.zip").write_bytes(DATA)
    with StandinServer(tmp_path / "www") as server:
        url = f"{server.url}/host/thing.zip"
        dest = tmp_path / "d" / "thing.zip"
        fetch_entry("thing", source("http", url=url), dest, config(tmp_path))
        assert server.stats() == {}
    assert dest.read_bytes() == DATA


def test_failed_download_suggests_manual_dir(tmp_path):
    with StandinServer(tmp_path / "www") as server:
        url = f"{server.url}/host/missing.zip"
        with pytest.raises(FetchError) as err:
            fetch_entry("thing", source("http", url=url), tmp_path / "d" / "x", config(tmp_path))
    assert "download it by hand" in str(err.value)
    assert str(tmp_path / "manual" / "thing.zip") in str(err.value)


def test_where_to_get_names_checksum_or_its_absence():
    text = where_to_get("e", {"filename": "f.bin", "url": "https://h/f.bin"}, Path("/m"))
    assert "/m/f.bin" in text and "https://h/f.bin" in text and "none published" in text


# -- files no checksum vouches for ---------------------------------------------------------


def annotation_source(url: str) -> dict:
    """A LAVIS annotation entry as the catalog has 25 of them: no size, no checksum."""
    return {
        "kind": "http",
        "url": url,
        "filename": "vqa_train.json",
        "archive": "none",
        "size": None,
        "sha256": None,
        "md5": None,
    }


def test_page_served_as_json_annotations_is_not_installed(tmp_path):
    """The bug: an HTML page served as application/json became lavis/.../vqa_train.json."""
    page = b"<!-- mirror notice -->\n<html><body>This file has moved.</body></html>\n"
    (tmp_path / "www" / "lavis").mkdir(parents=True)
    (tmp_path / "www" / "lavis" / "vqa_train.json").write_bytes(page)
    dest = tmp_path / "downloads" / "lavis_vqav2_train" / "vqa_train.json"
    with StandinServer(tmp_path / "www") as server:
        url = f"{server.url}lavis/vqa_train.json"
        with pytest.raises(FetchError) as err:
            fetch_entry("lavis_vqav2_train", annotation_source(url), dest, config(tmp_path))
        message = str(err.value)
        assert "lavis_vqav2_train" in message and url in message and "HTML page" in message
        assert str(tmp_path / "manual" / "vqa_train.json") in message  # the by-hand way
        assert not dest.exists() and list(dest.parent.iterdir()) == []

        (tmp_path / "www" / "lavis" / "vqa_train.json").write_text('[{"question": "why?"}]')
        fetch_entry("lavis_vqav2_train", annotation_source(url), dest, config(tmp_path))
        assert json.loads(dest.read_text()) == [{"question": "why?"}]


def test_manual_file_of_the_wrong_format_is_refused_naming_it(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "thing.zip").write_bytes(b"<head><title>Sign in</title></head>\n")
    dest = tmp_path / "downloads" / "thing" / "thing.zip"
    unverified = source(sha256=None, size=None, archive="zip")
    with pytest.raises(FetchError) as err:
        fetch_entry("thing", unverified, dest, config(tmp_path))
    message = str(err.value)
    assert f"{manual / 'thing.zip'} is not the catalog's file" in message
    assert "HTML page" in message and "Replace it with a zip archive" in message
    assert not dest.exists()


def test_manual_file_far_smaller_than_approx_size_is_refused(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "thing.zip").write_bytes(zip_of({"README": b"placeholder"}))
    unverified = source(sha256=None, size=None, archive="zip", approx_size=9_200_000_000)
    with pytest.raises(FetchError, match="about 9,200,000,000 \\(approx_size\\)"):
        fetch_entry("thing", unverified, tmp_path / "d" / "thing.zip", config(tmp_path))


# -- archives that turn out broken when unpacked -----------------------------------------------


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


GOOD_ZIP = zip_of({"cc_sbu_align/filter_cap.json": b'{"annotations": []}' * 200})
CUT_ZIP = GOOD_ZIP[: len(GOOD_ZIP) // 2]  # starts like a zip, so only unpacking tells


def unpack(tmp_path: Path, archive: Path, src: dict):
    return extract_download(
        "thing",
        archive,
        tmp_path / "extracted" / "thing",
        src,
        tmp_path / "manual",
        kind="zip",
    )


def test_broken_unverified_download_is_deleted_so_the_next_run_fetches_it(tmp_path):
    archive = tmp_path / "downloads" / "thing" / "thing.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(CUT_ZIP)
    with pytest.raises(CorruptArchiveError) as err:
        unpack(tmp_path, archive, source("http", url="https://h/thing.zip", sha256=None, size=None))
    message = str(err.value)
    assert str(archive) in message and "catalog entry thing" in message
    assert "deleted from the store" in message and "next run downloads it again" in message
    assert str(tmp_path / "manual" / "thing.zip") in message
    assert not archive.exists()
    assert not (tmp_path / "extracted" / "thing").exists()


@pytest.mark.parametrize("how", ["hardlink", "copy"])
def test_broken_manual_file_is_named_not_looped_on(tmp_path, how):
    """The store's copy of a manual_dir file goes, but the next run would link the same file
    again: the user's file is named as the one to replace."""
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "thing.zip").write_bytes(CUT_ZIP)
    archive = tmp_path / "downloads" / "thing" / "thing.zip"
    src = source("http", url="https://h/thing.zip", sha256=None, size=None, archive="zip")
    if how == "hardlink":  # what install_manual does on one filesystem
        fetch_entry("thing", src, archive, config(tmp_path))
        assert os.path.samefile(archive, manual / "thing.zip")
    else:  # what it does across filesystems
        archive.parent.mkdir(parents=True)
        archive.write_bytes(CUT_ZIP)
    with pytest.raises(CorruptArchiveError) as err:
        unpack(tmp_path, archive, src)
    message = str(err.value)
    assert f"It is your file {manual / 'thing.zip'} from manual_dir" in message
    assert f"replace {manual / 'thing.zip'} with a good copy" in message
    assert "next run downloads it again" not in message
    assert not archive.exists()
    assert (manual / "thing.zip").read_bytes() == CUT_ZIP  # the user's file is never touched


def test_broken_verified_archive_is_kept_and_blamed_on_upstream(tmp_path):
    archive = tmp_path / "downloads" / "thing" / "thing.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(CUT_ZIP)
    src = source("http", url="https://h/thing.zip", sha256=hashlib.sha256(CUT_ZIP).hexdigest())
    with pytest.raises(CorruptArchiveError) as err:
        unpack(tmp_path, archive, src)
    message = str(err.value)
    assert "matches the catalog's sha256" in message and "upstream" in message
    assert "it was kept" in message
    assert archive.read_bytes() == CUT_ZIP


def test_sound_archive_is_extracted(tmp_path):
    archive = tmp_path / "downloads" / "thing" / "thing.zip"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(GOOD_ZIP)
    report = unpack(
        tmp_path, archive, source("http", url="https://h/thing.zip", sha256=None, size=None)
    )
    assert report["files"] == 1 and archive.exists()


def test_vg_flattening_blames_only_the_broken_one_of_its_zips(tmp_path):
    """Visual Genome's two unverified zips unpack together: a cut-off second one is deleted
    (the next run downloads it again), the sound first one is kept."""
    good = zip_of({"VG_100K/1.jpg": b"\xff\xd8\xff\xe0" + b"x" * 2000 + b"\xff\xd9"})
    broken = zip_of({f"VG_100K_2/{i}.jpg": b"y" * 3000 for i in range(2, 6)})
    broken = broken[: len(broken) // 2]
    downloads = {}
    for entry, data in (("vg_images_part1", good), ("vg_images_part2", broken)):
        downloads[entry] = tmp_path / "downloads" / entry / f"{entry}.zip"
        downloads[entry].parent.mkdir(parents=True)
        downloads[entry].write_bytes(data)
    sources = {
        e: source("http", url=f"https://h/{e}.zip", sha256=None, size=None) for e in downloads
    }
    dest = tmp_path / "extracted" / "vg_images"
    with pytest.raises(CorruptArchiveError) as err:
        flatten_downloads(downloads, dest, sources, tmp_path / "manual",
                          top_dirs=["VG_100K", "VG_100K_2"], entry="vg_images")  # fmt: skip
    assert "vg_images_part2" in str(err.value) and "next run downloads it again" in str(err.value)
    assert downloads["vg_images_part1"].exists() and not downloads["vg_images_part2"].exists()
    assert not dest.exists()
