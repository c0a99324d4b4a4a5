"""Place store content into a consumer's layout without a second copy (unless asked).

`link_mode` decides how: a relative symlink (one link per directory, survives moving the
whole data_root), a tree of hardlinks (same filesystem; the layout survives deleting the
store), or a full copy.
"""

import errno
import logging
import os
import shutil
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
            raise VlprepError(
                f"cannot hardlink {src} to {dst}: they are on different filesystems; "
                "put the layout under data_root or use link_mode: symlink or copy"
            ) from None
        raise
    log.info("%s %s -> %s", mode, src, dst)


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
