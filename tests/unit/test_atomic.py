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


def test_scratch_is_removed_after_use_and_after_a_kill(tmp_path):
    scratch, staged, TMP_MARK = atomic.scratch, atomic.staged, atomic.TMP_MARK
    final = tmp_path / "parts" / "00000"
    with scratch(final, "rows") as tmp:
        (tmp / "part.parquet").write_bytes(b"rows")
        # staging the part itself inside must not take the scratch for its own leftover
        with staged(final, directory=True) as part:
            (part / "x").write_text("1")
        assert tmp.is_dir()
    assert not tmp.exists() and (final / "x").is_file()
    # a killed job's scratch (another pid) is removed by the next attempt
    left = final.parent / f".00000.rows{TMP_MARK}99999999"
    left.mkdir()
    (left / "part.parquet").write_bytes(b"old")
    with scratch(final, "rows"):
        assert not left.exists()
    assert sorted(p.name for p in final.parent.iterdir()) == ["00000"]
