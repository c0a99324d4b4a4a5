"""Outputs appear only when complete: build under a hidden sibling, then rename into place.

A killed job leaves at most a hidden `.<name>.vlprep-tmp-<pid>` next to its output; the next
attempt removes such leftovers before it starts, so nothing half-written is ever at a final
path and no stale debris accumulates. Scratch folders a job needs only while it runs follow the
same naming (`scratch`), so a killed job's scratch goes the same way.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_MARK = ".vlprep-tmp-"


def _tmp_prefix(final: Path) -> str:
    return f".{final.name}{TMP_MARK}"


def remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree; no error if it is absent."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def remove_stale(final: Path) -> None:
    """Delete temporaries that earlier, killed attempts left beside `final`."""
    parent = final.parent
    if not parent.is_dir():
        return
    prefix = _tmp_prefix(final)
    for leftover in parent.iterdir():
        if leftover.name.startswith(prefix):
            remove_path(leftover)


def replace(tmp: Path, final: Path) -> None:
    """Move `tmp` to `final`, replacing whatever is there (file, link or whole tree)."""
    if final.is_dir() and not final.is_symlink():
        trash = final.parent / f"{_tmp_prefix(final)}old-{os.getpid()}"
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash)
    else:
        os.replace(tmp, final)


@contextmanager
def staged(final: str | Path, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it to `final` if the block succeeds.

    On an exception the temporary is removed and `final` is left as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(final)
    tmp = final.parent / f"{_tmp_prefix(final)}{os.getpid()}"
    if directory:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        remove_path(tmp)
        raise
    replace(tmp, final)


@contextmanager
def scratch(beside: str | Path, purpose: str) -> Iterator[Path]:
    """Yield an empty temporary folder beside `beside`, removed when the block ends.

    Named `.<name>.<purpose>.vlprep-tmp-<pid>`: the next attempt removes one a killed job left
    (before making its own), and `staged(beside)` does not mistake it for its own leftover.
    """
    anchor = Path(beside).parent / f"{Path(beside).name}.{purpose}"
    anchor.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(anchor)
    tmp = anchor.parent / f"{_tmp_prefix(anchor)}{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
    finally:
        remove_path(tmp)
