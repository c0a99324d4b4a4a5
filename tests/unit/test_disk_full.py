"""A real full disk (a 2 MiB tmpfs): every writer of big files says which path, how much is
needed and free, keeps what a rerun can continue from, and the rerun does continue.

Mounting a tmpfs needs root; elsewhere these tests are skipped, saying so.
"""

import errno
import hashlib
import logging
import os
import random
import subprocess
import zipfile
from pathlib import Path

import pytest

from standin.drive import DriveStandin
from standin.s3 import S3Standin
from standin.server import StandinServer
from vlprep.errors import DiskFullError
from vlprep.extract import extract
from vlprep.fetch import fetch
from vlprep.gdrive import fetch_gdrive
from vlprep.log import setup_logging, user_errors
from vlprep.s3 import fetch_s3
from vlprep.sources import fetch_entry

MiB = 1 << 20
SPACE = "2m"  # the full disk
BIGGER = "16m"  # the same disk once space is freed
SIZE = 4 * MiB  # more than the disk holds
FILE_ID = "1BigFileOnDrive0000000000000000"


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture(autouse=True)
def _quiet_and_local(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB filesystem of its own (tmpfs), unmounted afterwards; `resize` frees space."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SPACE}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def resize(mount: Path, size: str) -> None:
    """Free space the way an admin would: the same filesystem, grown (contents kept)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mount)], check=True)


def assert_says_how_much(message: str, path: Path, needed: int | None) -> None:
    assert "no space left on device" in message
    assert str(path) in message
    assert "bytes are free there" in message
    if needed is not None:
        assert f"{needed:,} more bytes are needed" in message


# -- downloads: the .part is kept and the rerun resumes at its last byte -------------------


def test_http_download_stops_clearly_and_the_rerun_resumes(small_disk, tmp_path):
    data = payload(SIZE, 1)
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "images.zip").write_bytes(data)
    dest = small_disk / "downloads" / "gqa_images" / "images.zip"
    part = dest.with_name("images.zip.part")
    options = {"size": SIZE, "sha256": hashlib.sha256(data).hexdigest(), "backoff": 0.01}
    with StandinServer(tmp_path / "served") as srv:
        with pytest.raises(DiskFullError) as err:
            fetch("gqa_images", [srv.url + "images.zip"], dest, **options)
        have = part.stat().st_size
        assert 0 < have < SIZE
        message = str(err.value)
        assert message.startswith("gqa_images: ")
        assert_says_how_much(message, part, SIZE - have)
        assert f"{part} is kept with the {have:,} bytes received" in message
        assert f"resumes at byte {have:,}" in message
        assert not dest.exists()
        assert srv.stats()["images.zip"]["requests"] == 1  # a full disk is not retried

        resize(small_disk, BIGGER)
        srv.reset_stats()
        report = fetch("gqa_images", [srv.url + "images.zip"], dest, **options)
        assert report["resumed_from"] == have and report["bytes"] == SIZE - have
        assert srv.stats()["images.zip"]["last_request"]["Range"] == f"bytes={have}-"
        assert dest.read_bytes() == data


def test_s3_download_stops_clearly_and_the_rerun_resumes(small_disk, tmp_path):
    data = payload(SIZE, 2)
    world = tmp_path / "world" / "open-images-dataset" / "tar"
    world.mkdir(parents=True)
    (world / "validation.tar.gz").write_bytes(data)
    dest = small_disk / "validation.tar.gz"
    part = dest.with_name("validation.tar.gz.part")
    url = "s3://open-images-dataset/tar/validation.tar.gz"
    with S3Standin(tmp_path / "world") as s3:
        options = {"size": SIZE, "sha256": hashlib.sha256(data).hexdigest()}
        options |= {"endpoint_url": s3.endpoint_url, "backoff": 0.01, "timeout": 5.0}
        with pytest.raises(DiskFullError) as err:
            fetch_s3("openimages_val", url, dest, **options)
        have = part.stat().st_size
        assert 0 < have < SIZE
        assert_says_how_much(str(err.value), part, SIZE - have)
        assert f"resumes at byte {have:,}" in str(err.value)

        resize(small_disk, BIGGER)
        report = fetch_s3("openimages_val", url, dest, **options)
        assert report["resumed_from"] == have
        assert dest.read_bytes() == data


def test_drive_download_stops_clearly_and_the_rerun_resumes(small_disk, tmp_path):
    data = payload(SIZE, 3)
    (tmp_path / "drive" / FILE_ID).mkdir(parents=True)
    (tmp_path / "drive" / FILE_ID / "cc_sbu_align.zip").write_bytes(data)
    dest = small_disk / "cc_sbu_align.zip"
    with DriveStandin(tmp_path / "drive") as drive:
        options = {"proxy": drive.proxy, "ca_bundle": str(drive.ca_file), "backoff": 0.01}
        options |= {"size": SIZE, "sha256": hashlib.sha256(data).hexdigest()}
        with pytest.raises(DiskFullError) as err:
            fetch_gdrive("cc_sbu_align", FILE_ID, dest, **options)
        (partial,) = [p for p in small_disk.iterdir() if p.name.endswith(".part")]
        have = partial.stat().st_size
        assert 0 < have < SIZE
        assert_says_how_much(str(err.value), partial, SIZE - have)
        assert f"resumes at byte {have:,}" in str(err.value)

        resize(small_disk, BIGGER)
        report = fetch_gdrive("cc_sbu_align", FILE_ID, dest, **options)
        # gdown keeps whole 512 KiB reads: it resumes at or before the last byte it kept
        assert 0 < report["resumed_from"] <= have
        assert dest.read_bytes() == data


# -- copies and extraction: nothing half-written is left, and the rerun starts again -------


def test_manual_dir_copy_stops_clearly_and_leaves_nothing(small_disk, tmp_path):
    manual = tmp_path / "manual"  # another filesystem than the store: copied, not linked
    manual.mkdir()
    data = payload(SIZE, 4)
    (manual / "thing.bin").write_bytes(data)
    dest = small_disk / "downloads" / "thing" / "thing.bin"
    source = {"kind": "manual", "filename": "thing.bin", "size": SIZE, "sha256": None}
    config = {"manual_dir": str(manual)}
    with pytest.raises(DiskFullError) as err:
        fetch_entry("thing", source, dest, config)
    assert_says_how_much(str(err.value), dest, SIZE)
    assert f"Nothing was left at {dest} and {manual / 'thing.bin'} is untouched" in str(err.value)
    assert list(dest.parent.iterdir()) == []
    resize(small_disk, BIGGER)
    fetch_entry("thing", source, dest, config)
    assert dest.read_bytes() == data


def test_extraction_stops_clearly_and_leaves_nothing(small_disk, tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(3):
            zf.writestr(f"images/{i}.jpg", payload(MiB, 10 + i))
    dest = small_disk / "extracted" / "vg_images"
    with pytest.raises(DiskFullError) as err:
        extract(archive, dest, kind="zip", entry="vg_images")
    message = str(err.value)
    assert message.startswith("vg_images: ")
    assert_says_how_much(message, dest, 3 * MiB)
    assert f"nothing is at {dest}" in message and "The download is kept" in message
    assert list(dest.parent.iterdir()) == []  # the half-built tree is gone, space freed
    resize(small_disk, BIGGER)
    assert extract(archive, dest, kind="zip", entry="vg_images")["files"] == 3


# -- the net under every adapter -----------------------------------------------------------


def test_user_errors_turns_any_full_disk_into_a_message_in_the_log(small_disk, tmp_path):
    """A step with no handling of its own (a conversion, say) fills the disk."""
    log_path = tmp_path / "logs" / "step.log"
    logger = setup_logging(log_path)
    output = small_disk / "laion" / "list.tsv"
    output.parent.mkdir()
    # A write() error names no file: the free space is looked up where `output` is.
    with (
        pytest.raises(SystemExit) as exit_status,
        user_errors(logger, output=output),
        open(output, "wb") as out,
    ):
        out.write(payload(SIZE, 5))
    assert exit_status.value.code == 1
    logged = log_path.read_text()
    assert_says_how_much(logged, output, None)
    assert "run the same command again; it continues from there" in logged
    assert "Traceback" not in logged


def test_user_errors_names_the_file_an_oserror_names(tmp_path):
    """ENOSPC from a call that names its path (no root needed: the error is the OS's own
    kind, raised as `open` or `mkdir` would)."""
    log_path = tmp_path / "step.log"
    logger = setup_logging(log_path)
    where = tmp_path / "out" / "shard-00000.tar"
    with pytest.raises(SystemExit), user_errors(logger):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), str(where))
    logged = log_path.read_text()
    assert f"the disk quota is used up while writing {where}" in logged
    assert "bytes are free there" in logged and "quota -s" in logged


def test_user_errors_logs_the_traceback_of_a_bug(tmp_path):
    """An unexpected error still reaches Snakemake, and its traceback is in the job's log."""
    log_path = tmp_path / "step.log"
    logger = setup_logging(log_path)
    with pytest.raises(KeyError), user_errors(logger):
        {}["missing-key"]
    logged = log_path.read_text()
    assert "unexpected error" in logged
    assert "Traceback (most recent call last)" in logged and "KeyError: 'missing-key'" in logged


def test_user_errors_logs_a_plain_oserror_with_its_traceback(tmp_path):
    log_path = tmp_path / "step.log"
    logger = setup_logging(log_path)
    with pytest.raises(PermissionError), user_errors(logger):
        raise PermissionError(errno.EACCES, "Permission denied", "/data/locked")
    assert "PermissionError: [Errno 13] Permission denied: '/data/locked'" in log_path.read_text()


@pytest.fixture(autouse=True)
def _no_vlprep_handlers_leak():
    """setup_logging replaces the `vlprep` handlers; close the test's file handlers after."""
    yield
    for handler in logging.getLogger("vlprep").handlers:
        handler.close()
