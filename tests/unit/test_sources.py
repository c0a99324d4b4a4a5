"""One entry point for single files: manual_dir first (verified, never moved), then the kind's
downloader; a manual file that is missing says where to get it; annotations reshaped."""

import hashlib
import json
import os
from pathlib import Path

import pytest

from vlprep.annotations import annotations_as_list
from vlprep.errors import ConversionError, FetchError
from vlprep.sources import ManualFileMissing, fetch_entry, where_to_get
from vlprep.standin.server import StandinServer

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


@pytest.mark.parametrize(
    "content",
    [{"annotations": [{"image_id": "2", "caption": "a"}, {"image_id": "3", "caption": "é"}]}],
)
def test_minigpt4_annotations_become_a_list(tmp_path, content):
    src, dst = tmp_path / "filter_cap.json", tmp_path / "out" / "filter_cap.json"
    src.write_text(json.dumps(content))
    assert annotations_as_list(src, dst) == 2
    assert json.loads(dst.read_text()) == content["annotations"]
    # a list already (VPGTrans's own copy) passes through unchanged
    again = tmp_path / "again.json"
    annotations_as_list(dst, again)
    assert json.loads(again.read_text()) == content["annotations"]


@pytest.mark.parametrize("text", ['{"annotations": [', '"just a string"', '{"other": []}'])
def test_bad_annotations_fail_and_write_nothing(tmp_path, text):
    src, dst = tmp_path / "filter_cap.json", tmp_path / "out" / "filter_cap.json"
    src.write_text(text)
    with pytest.raises(ConversionError) as err:
        annotations_as_list(src, dst)
    assert str(src) in str(err.value)
    assert not dst.exists()
