"""The extractor: exact trees from good archives; hostile or broken ones refused, leaving nothing."""

import io
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from standin.coco import make_bad_archives, make_coco2017
from vlprep import extract as extract_module
from vlprep.errors import CatalogError, CorruptArchiveError, UnsafeArchiveError
from vlprep.extract import extract

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
MTIME = 1_600_000_000
MTIME_2020 = 1_577_934_240  # 2020-01-02 03:04:00 UTC: zip DOS times are read as UTC
UNSAFE = "corrupt or malicious and must not be trusted"
CORRUPT = "Delete the file so the next run downloads it again"
# Bad sample -> (error, what the message must say, the member it must name if any).
BAD = {
    "zip_slip.zip": (UnsafeArchiveError, "'..'", "../evil.txt"),
    "zip_absolute.zip": (UnsafeArchiveError, "absolute path", "/tmp/vlprep-evil-zip.txt"),
    "zip_symlink.zip": (UnsafeArchiveError, "outside the target", "data/link"),
    "zip_fifo.zip": (UnsafeArchiveError, "FIFO", "pipe"),
    "zip_device.zip": (UnsafeArchiveError, "device", "dev/null"),
    "tar_slip.tar.gz": (UnsafeArchiveError, "'..'", "data/../../evil.txt"),
    "tar_absolute.tar": (UnsafeArchiveError, "absolute path", "/tmp/vlprep-evil-tar.txt"),
    "tar_symlink_escape.tar": (UnsafeArchiveError, "outside the target", "link"),
    "tar_symlink_absolute.tar": (UnsafeArchiveError, "absolute path '/etc'", "link"),
    "tar_symlink_chain.tar": (UnsafeArchiveError, "resolves outside", "b"),
    "tar_hardlink_escape.tar": (UnsafeArchiveError, "hard link", "h"),
    "tar_hardlink_nonmember.tar": (UnsafeArchiveError, "not a file earlier", "h"),
    "tar_device.tar": (UnsafeArchiveError, "device", "dev/null"),
    "tar_fifo.tar": (UnsafeArchiveError, "FIFO", "pipe"),
    "zip_bomb.zip": (UnsafeArchiveError, "decompression bomb", "zeros.bin"),
    "tar_bomb.tar.gz": (UnsafeArchiveError, "decompression bomb", "zeros.bin"),
    "zip_bomb_lying.zip": (CorruptArchiveError, "CRC", "zeros.bin"),
    "bad_crc.zip": (CorruptArchiveError, "CRC", "data/5.bin"),
    "truncated.zip": (CorruptArchiveError, "not a zip file", None),
    "truncated.tar.gz": (CorruptArchiveError, "end-of-stream", None),
    "truncated.tar": (CorruptArchiveError, "end-of-archive marker", None),
}


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, Path]:
    return make_bad_archives(tmp_path_factory.mktemp("bad"))


def listing(root: Path) -> list[str]:
    """Every path under `root`, hidden ones included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def tree(root: Path) -> dict[str, tuple]:
    """Each path under `root` -> (kind, content or link target, permission bits, mtime)."""
    found = {}
    for path in root.rglob("*"):
        info = path.lstat()
        if path.is_symlink():
            found[str(path.relative_to(root))] = ("link", os.readlink(path), None, info.st_mtime)
        elif path.is_dir():
            found[str(path.relative_to(root))] = ("dir", None, stat.S_IMODE(info.st_mode), None)
        else:
            content = path.read_bytes()
            found[str(path.relative_to(root))] = (
                "file",
                content,
                stat.S_IMODE(info.st_mode),
                info.st_mtime,
            )
    return found


def tar_bytes(members: list[tuple[str, bytes, dict]], mode: str = "w") -> bytes:
    """A tar (compressed per `mode`) of (name, data, TarInfo attributes) members."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data, attrs in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), MTIME, 0o644
            for key, value in attrs.items():
                setattr(info, key, value)
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


GOOD_TAR = [
    ("top", b"", {"type": tarfile.DIRTYPE, "mode": 0o775, "mtime": MTIME - 5}),
    ("top/a.txt", b"alpha\n", {}),
    ("top/sub/b.bin", bytes(range(256)) * 5000, {"mode": 0o664}),
    ("top/run.sh", b"#!/bin/sh\n", {"mode": 0o4775}),
    ("top/empty", b"", {}),
    ("top/ünï ☃.txt", "ünïcode".encode(), {}),
    ("top/link", b"", {"type": tarfile.SYMTYPE, "linkname": "sub/b.bin"}),
    ("top/sub/up", b"", {"type": tarfile.SYMTYPE, "linkname": "../a.txt"}),
    ("top/hard", b"", {"type": tarfile.LNKTYPE, "linkname": "top/a.txt"}),
]
EXPECTED_TAR = {
    "top": ("dir", None, 0o755, None),
    "top/a.txt": ("file", b"alpha\n", 0o644, MTIME),
    "top/sub": ("dir", None, 0o755, None),
    "top/sub/b.bin": ("file", bytes(range(256)) * 5000, 0o644, MTIME),
    "top/run.sh": ("file", b"#!/bin/sh\n", 0o755, MTIME),
    "top/empty": ("file", b"", 0o644, MTIME),
    "top/ünï ☃.txt": ("file", "ünïcode".encode(), 0o644, MTIME),
    "top/link": ("link", "sub/b.bin", None, MTIME),
    "top/sub/up": ("link", "../a.txt", None, MTIME),
    "top/hard": ("file", b"alpha\n", 0o644, MTIME),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_archive_is_refused_and_leaves_nothing(tmp_path, bad, name):
    error, says, member = BAD[name]
    work = tmp_path / "a" / "b"  # escapes aim at ../../ of the staging directory
    work.mkdir(parents=True)
    before = listing(tmp_path)
    with pytest.raises(error) as caught:
        extract(bad[name], work / "out", kind="auto", entry="demo_entry")
    message = str(caught.value)
    assert str(bad[name]) in message and "demo_entry" in message
    assert says in message
    assert member is None or f"'{member}'" in message
    assert (UNSAFE if error is UnsafeArchiveError else CORRUPT) in message
    assert listing(tmp_path) == before
    assert not Path("/tmp/vlprep-evil-zip.txt").exists()
    assert not Path("/tmp/vlprep-evil-tar.txt").exists()


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "tgz", "tar.bz2", "tar.xz"])
def test_tar_extracts_exactly(tmp_path, kind):
    mode = {"tar": "w", "tar.gz": "w:gz", "tgz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}
    archive = tmp_path / f"good.{kind}"
    archive.write_bytes(tar_bytes(GOOD_TAR, mode[kind]))
    report = extract(archive, tmp_path / "out" / "x", kind=kind, entry="good")
    got = tree(tmp_path / "out" / "x")
    assert got.keys() == EXPECTED_TAR.keys()
    for path, (kind_, content, perm, mtime) in EXPECTED_TAR.items():
        assert got[path][:3] == (kind_, content, perm), path
        assert mtime is None or got[path][3] == mtime, path
    assert (tmp_path / "out/x/top").stat().st_mtime == MTIME - 5
    assert os.path.samefile(tmp_path / "out/x/top/hard", tmp_path / "out/x/top/a.txt")
    assert report["members"] == len(GOOD_TAR) and report["files"] == 6
    assert report["bytes"] == sum(len(data) for _, data, _ in GOOD_TAR)
    assert listing(tmp_path / "out") == ["x", *(f"x/{p}" for p in sorted(EXPECTED_TAR))]


def test_zip_extracts_exactly(tmp_path):
    members = {
        "top/": (b"", 0o40755),
        "top/a.txt": (b"alpha\n", 0o100644),
        "top/deep/er/b.bin": (bytes(range(256)) * 5000, 0o100664),
        "top/run.sh": (b"#!/bin/sh\n", 0o104775),
        "top/ünï.txt": ("ünïcode".encode(), 0o100644),
        "top/link": (b"deep/er/b.bin", 0o120777),
        "bare.txt": (b"no unix mode", 0),
    }
    archive = tmp_path / "good.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for index, (name, (data, mode)) in enumerate(members.items()):
            info = zipfile.ZipInfo(name, (2020, 1, 2, 3, 4, 6 + 2 * index))
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED if index % 2 else zipfile.ZIP_STORED
            zf.writestr(info, data)
    extract(archive, tmp_path / "out", kind="zip", entry="good")
    got = tree(tmp_path / "out")
    assert got.keys() == set(members) - {"top/"} | {"top", "top/deep", "top/deep/er"}
    for index, (name, (data, mode)) in enumerate(members.items()):
        mtime = MTIME_2020 + 6 + 2 * index
        if stat.S_ISLNK(mode):
            assert got[name] == ("link", data.decode(), None, mtime)
        elif not name.endswith("/"):
            perm = 0o755 if mode & 0o111 else 0o644
            assert got[name] == ("file", data, perm, mtime), name
    assert (tmp_path / "out/top").stat().st_mtime == MTIME_2020 + 6
    assert got["top/deep"][2] == 0o755


def test_coco_zip_round_trips(tmp_path):
    made = make_coco2017(tmp_path / "src", n_train=1, n_val=60)
    report = extract(made["val2017.zip"], tmp_path / "val", kind="zip", entry="coco2017_val")
    with zipfile.ZipFile(made["val2017.zip"]) as zf:
        expected = {i.filename.rstrip("/"): i for i in zf.infolist()}
        for name, info in expected.items():
            path = tmp_path / "val" / name
            assert path.is_dir() if info.is_dir() else path.read_bytes() == zf.read(info)
    assert listing(tmp_path / "val") == sorted(expected)
    assert report["files"] == 60 and report["members"] == 61


def test_member_written_through_an_inside_symlink_is_refused(tmp_path):
    archive = tmp_path / "through.tar"
    archive.write_bytes(
        tar_bytes(
            [
                ("sub", b"", {"type": tarfile.DIRTYPE}),
                ("d", b"", {"type": tarfile.SYMTYPE, "linkname": "sub"}),
                ("d/x.txt", b"x", {}),
            ]
        )
    )
    with pytest.raises(UnsafeArchiveError, match="written through the symlink member 'd'"):
        extract(archive, tmp_path / "out", kind="tar", entry="e")
    assert listing(tmp_path) == ["through.tar"]


def test_later_member_of_the_same_name_wins(tmp_path):
    archive = tmp_path / "dup.tar"
    archive.write_bytes(tar_bytes([("f", b"old", {}), ("f", b"new", {})]))
    extract(archive, tmp_path / "out", kind="tar", entry="e")
    assert (tmp_path / "out/f").read_bytes() == b"new"


def test_limits_on_members_and_ratio(tmp_path, monkeypatch):
    archive = tmp_path / "good.tar"
    archive.write_bytes(tar_bytes(GOOD_TAR))
    with pytest.raises(UnsafeArchiveError, match="one more than the 3 allowed"):
        extract(archive, tmp_path / "out", kind="tar", entry="e", max_members=3)
    monkeypatch.setattr(extract_module, "SLACK", 0)
    with pytest.raises(UnsafeArchiveError, match="raise max_unpack_ratio"):
        extract(archive, tmp_path / "out", kind="tar", entry="e", declared_size=1000)
    assert listing(tmp_path) == ["good.tar"]
    extract(archive, tmp_path / "out", kind="tar", entry="e", declared_size=1000, max_ratio=2000)
    assert (tmp_path / "out/top/a.txt").is_file()


def test_unknown_kind_is_a_catalog_error(tmp_path):
    with pytest.raises(CatalogError, match="rar"):
        extract(tmp_path / "x.rar", tmp_path / "out", kind="rar", entry="e")
    with pytest.raises(CatalogError, match="cannot tell"):
        extract(tmp_path / "x.rar", tmp_path / "out", kind="auto", entry="e")


def test_failure_mid_way_leaves_nothing_and_rerun_succeeds(tmp_path, monkeypatch):
    made = make_coco2017(tmp_path / "src", n_train=1, n_val=40)
    calls = []

    def failing_utime(*args, **kwargs):
        calls.append(args)
        if len(calls) == 20:
            raise RuntimeError("simulated crash")
        return real_utime(*args, **kwargs)

    real_utime = os.utime
    monkeypatch.setattr(os, "utime", failing_utime)
    with pytest.raises(RuntimeError, match="simulated"):
        extract(made["val2017.zip"], tmp_path / "out" / "val", kind="zip", entry="e")
    assert listing(tmp_path / "out") == []
    monkeypatch.undo()
    extract(made["val2017.zip"], tmp_path / "out" / "val", kind="zip", entry="e")
    assert len(list((tmp_path / "out/val/val2017").iterdir())) == 40


def test_killed_extraction_leaves_no_dest_and_rerun_succeeds(tmp_path):
    """SIGKILL a real extraction as soon as its first file appears, then extract again."""
    members = [(f"data/{i:04d}.bin", i.to_bytes(2, "big") * 2048, {}) for i in range(1000)]
    archive, out = tmp_path / "big.tar", tmp_path / "store" / "out"
    archive.write_bytes(tar_bytes(members))
    code = (
        "import sys; from pathlib import Path; from vlprep.extract import extract; "
        "extract(Path(sys.argv[1]), Path(sys.argv[2]), kind='tar', entry='e')"
    )
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS), "VLPREP_PROGRESS": "0"}
    child = subprocess.Popen([sys.executable, "-c", code, str(archive), str(out)], env=env)
    first = out.parent / f".out.vlprep-tmp-{child.pid}" / members[0][0]
    deadline = time.monotonic() + 60
    while not first.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL, "the extraction ended before the kill"
    assert not out.exists()
    assert listing(out.parent)[0] == f".out.vlprep-tmp-{child.pid}"

    extract(archive, out, kind="tar", entry="e")
    assert listing(out.parent) == ["out", "out/data", *(f"out/{m[0]}" for m in members)]
    assert (out / members[-1][0]).read_bytes() == members[-1][1]
