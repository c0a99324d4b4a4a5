"""The tar writer: deterministic, sorted, readable by tarfile and GNU tar, atomic."""

import subprocess
import tarfile
from pathlib import Path

import pytest

from vlprep.tarwriter import header, tarinfo_header, write_tar


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path | bytes]:
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 12_289)  # about 3 MB, not a multiple of 512
    link = tmp_path / "link.bin"
    link.symlink_to(big.name)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    return {
        "b.txt": "ünïcode caption".encode(),
        "a.jpg": big,
        "a.json": b'{"x": 1}',
        "c.jpg": link,
        "d.jpg": empty,
        "e.txt": b"",
        "f" * 150 + ".txt": b"long name",
        "ß.txt": b"non-ascii name",
    }


def expected(source: Path | bytes) -> bytes:
    return source if isinstance(source, bytes) else source.read_bytes()


def test_members_sorted_with_fixed_metadata_and_exact_content(tmp_path, sources):
    out = tmp_path / "out" / "shard.tar"
    size = write_tar(out, sources.items())
    assert size == out.stat().st_size
    assert size % tarfile.RECORDSIZE == 0
    with tarfile.open(out) as tar:
        infos = tar.getmembers()
        assert [i.name for i in infos] == sorted(sources)
        for info in infos:
            assert (info.mtime, info.uid, info.gid, info.mode) == (0, 0, 0, 0o644)
            assert (info.uname, info.gname, info.isreg()) == ("", "", True)
            assert tar.extractfile(info).read() == expected(sources[info.name])


def test_same_input_gives_same_bytes_and_mtime_is_honoured(tmp_path, sources):
    one, two, later = tmp_path / "1.tar", tmp_path / "2.tar", tmp_path / "3.tar"
    write_tar(one, sources.items())
    write_tar(two, reversed(list(sources.items())))
    write_tar(later, sources.items(), mtime=1_700_000_000)
    assert one.read_bytes() == two.read_bytes()
    with tarfile.open(later) as tar:
        assert {i.mtime for i in tar.getmembers()} == {1_700_000_000}


def test_gnu_tar_lists_it(tmp_path, sources):
    out = tmp_path / "shard.tar"
    write_tar(out, sources.items())
    listing = subprocess.run(["tar", "-tf", out], capture_output=True, text=True, check=True)
    assert listing.stdout.splitlines() == sorted(sources)


def test_duplicate_names_rejected(tmp_path):
    with pytest.raises(ValueError, match="a.txt"):
        write_tar(tmp_path / "x.tar", [("a.txt", b"1"), ("a.txt", b"2")])
    assert not (tmp_path / "x.tar").exists()


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "x.tar"
    with pytest.raises(FileNotFoundError):
        write_tar(out, [("a.txt", b"1"), ("b.jpg", tmp_path / "absent.jpg")])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["a.jpg", "000000139.json", "x" * 100, "x" * 101, "ß.txt"])
@pytest.mark.parametrize("size", [0, 1, 511, 512, 150_000, 8**11 - 1, 8**11])
@pytest.mark.parametrize("mtime", [0, 1_700_000_000, 8**11])
def test_fast_header_is_tarfiles_header(name, size, mtime):
    assert header(name, size, mtime) == tarinfo_header(name, size, mtime)
