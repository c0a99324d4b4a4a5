"""Nothing half-built is ever at a final path; leftovers of killed attempts are cleared."""

import os

import pytest

from vlprep import atomic


def test_directory_appears_only_on_success(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic.staged(final, directory=True) as tmp:
        (tmp / "a").write_text("partial")
        raise RuntimeError("killed")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []

    with atomic.staged(final, directory=True) as tmp:
        (tmp / "a").write_text("done")
    assert (final / "a").read_text() == "done"
    assert list(tmp_path.iterdir()) == [final]


def test_leftovers_of_a_killed_attempt_are_removed(tmp_path):
    final = tmp_path / "out.tar"
    leftover = tmp_path / f".out.tar{atomic.TMP_MARK}12345"
    leftover.mkdir()
    (leftover / "junk").write_text("x")
    with atomic.staged(final) as tmp:
        tmp.write_bytes(b"tar")
    assert sorted(os.listdir(tmp_path)) == ["out.tar"]


def test_existing_tree_is_replaced_whole(tmp_path):
    final = tmp_path / "tree"
    (final / "old").mkdir(parents=True)
    with atomic.staged(final, directory=True) as tmp:
        (tmp / "new").write_text("n")
    assert sorted(os.listdir(final)) == ["new"]
    assert sorted(os.listdir(tmp_path)) == ["tree"]
