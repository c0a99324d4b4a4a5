"""Layouts reference the store by relative symlink, hardlink or copy, replaced atomically."""

import os

import pytest

from vlprep.errors import VlprepError
from vlprep.layout import place


@pytest.fixture
def store(tmp_path):
    tree = tmp_path / "data" / "extracted" / "coco2017_val" / "val2017"
    (tree / "sub").mkdir(parents=True)
    (tree / "000000000139.jpg").write_bytes(b"\xff\xd8jpeg")
    (tree / "sub" / "x.txt").write_text("x")
    (tree.parent / ".snakemake_timestamp").write_text("")
    return tree


def test_symlink_is_relative_and_resolves(store, tmp_path):
    dst = tmp_path / "data" / "g3m" / "coco" / "val2017"
    place(store, dst, "symlink")
    assert dst.is_symlink() and not os.path.isabs(os.readlink(dst))
    assert (dst / "000000000139.jpg").read_bytes() == b"\xff\xd8jpeg"
    # Moving the whole data_root keeps the link valid.
    moved = tmp_path / "moved"
    os.rename(tmp_path / "data", moved)
    assert (moved / "g3m" / "coco" / "val2017" / "sub" / "x.txt").read_text() == "x"


def test_hardlink_shares_inodes(store, tmp_path):
    dst = tmp_path / "data" / "g3m" / "coco" / "val2017"
    place(store, dst, "hardlink")
    assert not dst.is_symlink()
    src_stat, dst_stat = (store / "000000000139.jpg").stat(), (dst / "000000000139.jpg").stat()
    assert src_stat.st_ino == dst_stat.st_ino
    assert (dst / "sub" / "x.txt").read_text() == "x"


def test_copy_is_independent(store, tmp_path):
    dst = tmp_path / "layout" / "val2017"
    place(store, dst, "copy")
    assert (dst / "000000000139.jpg").stat().st_ino != (store / "000000000139.jpg").stat().st_ino
    assert (dst / "000000000139.jpg").read_bytes() == b"\xff\xd8jpeg"


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_replacing_an_existing_layout(store, tmp_path, mode):
    dst = tmp_path / "data" / "g3m" / "coco" / "val2017"
    dst.mkdir(parents=True)
    (dst / "stale.jpg").write_text("old")
    place(store, dst, mode)
    assert not (dst / "stale.jpg").exists()
    assert (dst / "000000000139.jpg").exists()
    assert [p.name for p in dst.parent.iterdir()] == ["val2017"]


def test_file_link(store, tmp_path):
    dst = tmp_path / "data" / "cosmos" / "coco" / "annotations" / "x.txt"
    place(store / "sub" / "x.txt", dst, "symlink")
    assert dst.read_text() == "x"


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(VlprepError, match="missing in the store"):
        place(tmp_path / "nope", tmp_path / "dst", "symlink")
    assert not (tmp_path / "dst").exists()
