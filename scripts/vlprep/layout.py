"""Place store content into a consumer's layout without a second copy (unless asked).

`link_mode` decides how: a relative symlink (one link per directory, survives moving the
whole data_root), a tree of hardlinks (same filesystem; the layout survives deleting the
store), or a full copy.

`assemble` builds the other kind of layout folder: store files plus files vlprep writes beside
them (Flickr30k's annotation JSON inside its image folder, ImageNet's `<wnid>/` folders from a
flat tar, label maps beside linked images). There the folder itself is always real, with one
relative link (or hardlink, or copy) per file, so writing into it never writes into the store.
"""

import errno
import logging
import os
import shutil
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from vlprep import atomic
from vlprep.errors import VlprepError

log = logging.getLogger(__name__)

LINK_MODES = ("symlink", "hardlink", "copy")
# Snakemake's marker for directory outputs; it describes the store, not the data.
SKIPPED_NAMES = {".snakemake_timestamp"}


def relative_symlink(src: Path, dst: Path) -> None:
    """Make `dst` a relative symlink to `src`, replacing what is there atomically."""
    target = os.path.relpath(os.path.abspath(src), os.path.abspath(dst.parent))
    with atomic.staged(dst) as tmp:
        os.symlink(target, tmp)


def _hardlink_tree(src: Path, dst: Path) -> int:
    count = 0
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        out_dir = dst if rel == "." else dst / rel
        out_dir.mkdir(exist_ok=True)
        dirnames.sort()
        for name in sorted(filenames):
            if name in SKIPPED_NAMES:
                continue
            os.link(os.path.join(dirpath, name), out_dir / name, follow_symlinks=False)
            count += 1
    return count


def _copy_tree(src: Path, dst: Path) -> None:
    ignore = shutil.ignore_patterns(*SKIPPED_NAMES)
    shutil.copytree(src, dst, symlinks=True, ignore=ignore, dirs_exist_ok=True)


def place(src: str | Path, dst: str | Path, mode: str) -> None:
    """Make `dst` present the file or directory `src` (from the store), by `mode`."""
    src, dst = Path(src), Path(dst)
    if mode not in LINK_MODES:
        raise VlprepError(f"link_mode '{mode}' is not one of {', '.join(LINK_MODES)}")
    if not src.exists():
        raise VlprepError(f"{src}: missing in the store; rerun the workflow to fetch it again")
    if mode == "symlink":
        relative_symlink(src, dst)
        return
    try:
        with atomic.staged(dst, directory=src.is_dir()) as tmp:
            if src.is_dir() and mode == "hardlink":
                _hardlink_tree(src, tmp)
            elif src.is_dir():
                _copy_tree(src, tmp)
            elif mode == "hardlink":
                os.link(src, tmp)
            else:
                shutil.copy2(src, tmp)
    except OSError as err:
        if mode == "hardlink" and err.errno == errno.EXDEV:
            raise _across_filesystems(src, dst) from None
        raise
    log.info("%s %s -> %s", mode, src, dst)


def _across_filesystems(src: Path, dst: Path) -> VlprepError:
    return VlprepError(
        f"cannot hardlink {src} into {dst}: they are on different filesystems; "
        "put the layout under data_root or use link_mode: symlink or copy"
    )


def link_file(src: Path, dst: Path, final_dir: str, mode: str) -> None:
    """Create `dst` (never overwriting: FileExistsError) presenting the file `src`, by `mode`.

    `final_dir` is where `dst`'s folder will finally be (it may be built in a staging folder),
    so relative symlinks still resolve after the rename.
    """
    if mode == "symlink":
        os.symlink(os.path.relpath(os.path.abspath(src), final_dir), dst)
    elif mode == "hardlink":
        os.link(src, dst)
    else:
        with open(src, "rb") as inp, open(dst, "xb") as out:
            shutil.copyfileobj(inp, out, 1 << 20)
        shutil.copystat(src, dst)


def gather(files: list[Path], dst_dir: str | Path, mode: str) -> int:
    """Make `dst_dir` a folder holding `files` (from the store) by name; return how many.

    Used where a consumer globs one folder for shards that several jobs wrote apart. Names
    must not collide: two sources of one name would make one of them silently unreachable.
    """
    dst_dir = Path(dst_dir)
    if mode not in LINK_MODES:
        raise VlprepError(f"link_mode '{mode}' is not one of {', '.join(LINK_MODES)}")
    seen: dict[str, Path] = {}
    for src in files:
        if src.name in seen:
            raise VlprepError(f"{src} and {seen[src.name]} would both be {dst_dir / src.name}")
        seen[src.name] = src
    final = os.path.abspath(dst_dir)
    with atomic.staged(dst_dir, directory=True) as tmp:
        for name in sorted(seen):
            link_file(seen[name], tmp / name, final, mode)
    log.info("gathered %d files into %s (%s)", len(seen), dst_dir, mode)
    return len(seen)


Written = bytes | Callable[[Path], None]
"""A file vlprep writes into an assembled folder: its bytes, or a function that writes it at
the path it is given (for content streamed from elsewhere)."""


def assemble(
    dst: str | Path,
    members: Iterable[tuple[str, str | Path]],
    written: Iterable[tuple[str, Written]] = (),
    mode: str = "symlink",
) -> dict[str, int]:
    """Build the folder `dst` from store files and files vlprep writes; return the counts.

    `members` are (name in `dst`, store file) pairs: each file is presented by `mode`, one
    relative symlink, hardlink or copy per file, so the store keeps the only copy in the link
    modes. `written` are (name, bytes or writer) pairs, written as real files after the
    members. Names are relative, "/"-separated, and make the folders they need. `dst` is built
    in a staging folder and replaces any older one only when complete.

    Both are read as they come, one at a time (a generator of 1.3 M members is fine): nothing
    per file is kept but the folders made. A missing source, a source that is a folder, a
    name that is not relative and two entries of one name are VlprepErrors, and leave `dst`
    as it was.
    """
    dst = Path(dst)
    if mode not in LINK_MODES:
        raise VlprepError(f"link_mode '{mode}' is not one of {', '.join(LINK_MODES)}")
    final = os.path.abspath(dst)
    counts = {"members": 0, "written": 0}
    with atomic.staged(dst, directory=True) as tmp:
        folders = _Folders(tmp, dst)
        present = _presenter(mode, final)
        for name, src in members:
            rel = _relative_name(name, dst)
            path = folders.new_path(rel)
            _present_member(present, Path(src), path, rel, dst, mode)
            counts["members"] += 1
        for name, content in written:
            rel = _relative_name(name, dst)
            path = folders.new_path(rel)
            if os.path.lexists(path):
                raise VlprepError(
                    f"{dst / rel}: vlprep would write this file over a store file of the same "
                    "name; one of the two must have another name"
                )
            _write(path, content, dst / rel)
            counts["written"] += 1
    log.info(
        "assembled %s: %d store files (%s), %d written",
        dst,
        counts["members"],
        mode,
        counts["written"],
    )
    return counts


def _relative_name(name: str | Path, dst: Path) -> str:
    """`name` as a checked "/"-separated path inside `dst`."""
    text = str(name)
    parts = text.split("/")
    if text.startswith("/") or any(p in ("", ".", "..") or "\\" in p for p in parts):
        raise VlprepError(
            f"{dst}: {text!r} is not a name inside the folder: names are relative paths, "
            "'/'-separated, without '.', '..' or empty parts"
        )
    return text


class _Folders:
    """The staging folder's sub-folders, made as names need them (only they are remembered)."""

    def __init__(self, root: Path, dst: Path) -> None:
        self.root, self.dst = root, dst
        self.made: set[str] = {""}

    def new_path(self, rel: str) -> Path:
        """Where `rel` goes in the staging folder, its parent folders made."""
        parent = rel.rpartition("/")[0]
        if parent not in self.made:
            try:
                os.makedirs(self.root / parent, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise VlprepError(
                    f"{self.dst / rel}: a folder of it is also the name of a file in "
                    f"{self.dst}; one of the two must have another name"
                ) from None
            while parent not in self.made:
                self.made.add(parent)
                parent = parent.rpartition("/")[0]
        return self.root / rel


def _presenter(mode: str, final: str) -> Callable[[Path, Path, str], None]:
    """A function (store file, new path, its name) that presents the file by `mode`.

    Symlinks are relative to where the link will finally be (`final` is the folder's final
    path), so they resolve after the staging folder's rename and after moving the whole
    data_root. The relative way from a store folder to a layout folder is computed once per
    pair of folders: a million files live in a few thousand folders.
    """
    if mode != "symlink":
        return lambda src, path, rel: link_file(src, path, "", mode)
    ways: dict[tuple[str, str], str] = {}

    def symlink(src: Path, path: Path, rel: str) -> None:
        source = os.path.abspath(src)
        src_dir, base = os.path.split(source)
        link_dir = os.path.join(final, rel.rpartition("/")[0])
        way = ways.get((src_dir, link_dir))
        if way is None:
            way = ways[src_dir, link_dir] = os.path.relpath(src_dir, link_dir)
        os.symlink(os.path.join(way, base), path)

    return symlink


def _present_member(
    present: Callable[[Path, Path, str], None],
    src: Path,
    path: Path,
    rel: str,
    dst: Path,
    mode: str,
) -> None:
    try:
        info = os.stat(src)
    except (FileNotFoundError, NotADirectoryError):
        raise VlprepError(
            f"{src}: missing in the store (it was to be {dst / rel}); rerun the workflow to "
            "fetch it again"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise VlprepError(
            f"{src} is a folder, and {dst / rel} must be a file: an assembled folder links "
            "files one by one (a linked folder would let writes into it reach the store)"
        )
    try:
        present(src, path, rel)
    except FileExistsError:
        earlier = f" and {_link_source(path)}" if path.is_symlink() else ""
        raise VlprepError(
            f"{dst / rel} is named twice (by {src}{earlier}): two store files would have one "
            "name, and one of them would be unreachable"
        ) from None
    except OSError as err:
        if mode == "hardlink" and err.errno == errno.EXDEV:
            raise _across_filesystems(src, dst) from None
        raise


def _link_source(link: Path) -> str:
    """The file a symlink made earlier points at, for a message."""
    return os.path.normpath(os.path.join(link.parent, os.readlink(link)))


def _write(path: Path, content: Written, shown: Path) -> None:
    """Write one of vlprep's files; a writer must leave a file at `path`."""
    if callable(content):
        content(path)
        if not path.is_file() or path.is_symlink():
            raise VlprepError(f"{shown}: its writer left no file there (a bug in vlprep)")
        return
    with open(path, "xb") as out:
        out.write(content)
