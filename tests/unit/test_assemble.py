"""Assembled layout folders: store files linked one by one, vlprep's files written beside them."""

import json
import os

import pytest

from vlprep.errors import VlprepError
from vlprep.layout import assemble

MODES = ["symlink", "hardlink", "copy"]


@pytest.fixture
def store(tmp_path):
    """A store folder of images in two sub-folders, as extracted/ holds them."""
    images = tmp_path / "data" / "extracted" / "flickr30k_images" / "flickr30k-images"
    for folder in ("a", "b"):
        (images / folder).mkdir(parents=True)
        for index in range(3):
            (images / folder / f"{index}.jpg").write_bytes(f"jpeg {folder}{index}".encode())
    return images


def store_snapshot(root):
    """Every path under root with its bytes: what must not change."""
    return {
        str(path.relative_to(root)): path.read_bytes() if path.is_file() else None
        for path in sorted(root.rglob("*"))
    }


def members_of(store):
    """(name, store file) pairs, as a generator: assemble must not need a list."""
    return ((str(p.relative_to(store)), p) for p in sorted(store.rglob("*.jpg")))


@pytest.mark.parametrize("mode", MODES)
def test_members_and_written_files_make_one_real_folder(store, tmp_path, mode):
    before = store_snapshot(store.parent.parent)
    dst = tmp_path / "data" / "lavis" / "flickr30k" / "images" / "flickr30k-images"
    labels = {"a": 0, "b": 1}

    def write_labels(path):
        path.write_text(json.dumps(labels))

    counts = assemble(
        dst,
        members_of(store),
        [("flickr30k_val.json", b'[{"image": "a/0.jpg"}]'), ("meta/labels.json", write_labels)],
        mode,
    )
    assert counts == {"members": 6, "written": 2}
    assert dst.is_dir() and not dst.is_symlink()
    assert (dst / "a").is_dir() and not (dst / "a").is_symlink()
    for folder in ("a", "b"):
        for index in range(3):
            path = dst / folder / f"{index}.jpg"
            assert path.read_bytes() == f"jpeg {folder}{index}".encode()
            assert path.is_symlink() == (mode == "symlink")
            same = path.stat().st_ino == (store / folder / f"{index}.jpg").stat().st_ino
            assert same == (mode != "copy")  # stored once in the link modes
    assert (dst / "flickr30k_val.json").read_bytes() == b'[{"image": "a/0.jpg"}]'
    assert json.loads((dst / "meta" / "labels.json").read_text()) == labels
    for name in ("flickr30k_val.json", "meta/labels.json"):
        assert not (dst / name).is_symlink()
    # Nothing was written into the store, and nothing is left beside the folder.
    assert store_snapshot(store.parent.parent) == before
    assert sorted(p.name for p in dst.parent.iterdir()) == ["flickr30k-images"]


def test_symlinks_are_relative_and_survive_moving_the_data_root(store, tmp_path):
    dst = tmp_path / "data" / "layout" / "images"
    assemble(dst, members_of(store), [("val.json", b"[]")], "symlink")
    for link in dst.rglob("*.jpg"):
        assert not os.path.isabs(os.readlink(link))
    os.rename(tmp_path / "data", tmp_path / "moved")
    moved = tmp_path / "moved" / "layout" / "images"
    assert (moved / "b" / "2.jpg").read_bytes() == b"jpeg b2"
    assert (moved / "val.json").read_bytes() == b"[]"


def test_writing_into_the_assembled_folder_never_reaches_the_store(store, tmp_path):
    """The point of a real folder: a file added later lands in the layout only."""
    dst = tmp_path / "data" / "layout" / "images"
    assemble(dst, members_of(store), [], "symlink")
    (dst / "a" / "extra.json").write_text("{}")
    assert not (store / "a" / "extra.json").exists()


@pytest.mark.parametrize("mode", MODES)
def test_a_missing_source_is_named_and_leaves_nothing(store, tmp_path, mode):
    dst = tmp_path / "layout" / "images"
    missing = store / "a" / "gone.jpg"
    members = [("a/0.jpg", store / "a" / "0.jpg"), ("a/gone.jpg", missing)]
    with pytest.raises(VlprepError, match="missing in the store") as err:
        assemble(dst, iter(members), [], mode)
    assert str(missing) in str(err.value) and str(dst / "a" / "gone.jpg") in str(err.value)
    assert not dst.parent.exists() or list(dst.parent.iterdir()) == []


@pytest.mark.parametrize("mode", MODES)
def test_two_members_of_one_name_are_refused(store, tmp_path, mode):
    dst = tmp_path / "layout" / "images"
    members = [("x.jpg", store / "a" / "0.jpg"), ("x.jpg", store / "b" / "0.jpg")]
    with pytest.raises(VlprepError, match="named twice") as err:
        assemble(dst, iter(members), [], mode)
    assert str(store / "b" / "0.jpg") in str(err.value)
    if mode == "symlink":  # the earlier one is known from the link itself
        assert str(store / "a" / "0.jpg") in str(err.value)
    assert not dst.exists()


def test_a_written_file_may_not_replace_a_store_file(store, tmp_path):
    """In symlink mode, writing there would write through the link into the store."""
    before = store_snapshot(store)
    dst = tmp_path / "layout" / "images"
    with pytest.raises(VlprepError, match="over a store file of the same name"):
        assemble(dst, members_of(store), [("a/0.jpg", b"not an image")], "symlink")
    assert store_snapshot(store) == before
    assert not dst.exists()


def test_a_file_and_a_folder_of_one_name_are_refused(store, tmp_path):
    dst = tmp_path / "layout" / "images"
    members = [("a", store / "a" / "0.jpg"), ("a/1.jpg", store / "a" / "1.jpg")]
    with pytest.raises(VlprepError, match="also the name of a file"):
        assemble(dst, iter(members), [], "hardlink")
    assert not dst.exists()


@pytest.mark.parametrize("name", ["/abs.jpg", "../up.jpg", "a/../../up.jpg", "a//b.jpg", ""])
def test_names_must_stay_inside(store, tmp_path, name):
    with pytest.raises(VlprepError, match="not a name inside the folder"):
        assemble(tmp_path / "layout", [(name, store / "a" / "0.jpg")], [], "symlink")
    assert not (tmp_path / "layout").exists()


def test_a_store_folder_is_not_a_member(store, tmp_path):
    with pytest.raises(VlprepError, match="is a folder"):
        assemble(tmp_path / "layout", [("a", store / "a")], [], "symlink")


def test_a_failure_keeps_the_older_folder_and_a_rebuild_replaces_it(store, tmp_path):
    dst = tmp_path / "layout" / "images"
    assemble(dst, members_of(store), [("val.json", b"old")], "symlink")

    def broken_writer(path):
        path.write_text("half")
        raise OSError("disk trouble")

    with pytest.raises(OSError, match="disk trouble"):
        assemble(dst, members_of(store), [("val.json", broken_writer)], "symlink")
    assert (dst / "val.json").read_bytes() == b"old"  # untouched, nothing half-written
    assert sorted(p.name for p in dst.parent.iterdir()) == ["images"]
    assemble(dst, members_of(store), [("val.json", b"new")], "copy")
    assert (dst / "val.json").read_bytes() == b"new" and not (dst / "a" / "0.jpg").is_symlink()


def test_members_are_consumed_one_at_a_time(store, tmp_path):
    """A generator is read lazily: the first member is linked before the next is asked for."""
    dst = tmp_path / "layout" / "images"
    staged_seen = []

    def members():
        for index in range(3):
            staged = list(dst.parent.glob(".images.vlprep-tmp-*/a/*.jpg"))
            staged_seen.append(len(staged))
            yield f"a/{index}.jpg", store / "a" / f"{index}.jpg"

    assemble(dst, members(), [], "symlink")
    assert staged_seen == [0, 1, 2]


def test_unknown_mode(store, tmp_path):
    with pytest.raises(VlprepError, match="link_mode 'move'"):
        assemble(tmp_path / "layout", [], [], "move")
