"""A full disk, said plainly: which path, how many bytes are needed and free, what a rerun does.

A full filesystem (ENOSPC) or a used-up quota (EDQUOT) is not a bug, and a traceback ending
in `OSError: [Errno 28]` tells nobody how much to free or whether the work done is lost. The
writers of big files (downloads, extraction, manual_dir copies) turn it into a DiskFullError
with those facts; vlprep.log.user_errors does the same for any other step.
"""

import errno
import shutil
from pathlib import Path

from vlprep.errors import DiskFullError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(err: BaseException) -> bool:
    """True for the OSErrors of a full filesystem or an exceeded quota."""
    return isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS


def free_bytes(path: str | Path) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem holding `path` (or its
    nearest existing parent, since a failed write may leave the path itself absent)."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def disk_full(
    err: OSError, path: str | Path, *, needed: int | None, then: str, entry: str | None = None
) -> DiskFullError:
    """The error for `err` (ENOSPC/EDQUOT) while writing `path`.

    `needed` is how many more bytes the step must write (None: not known); `then` says what
    is kept and what a rerun does, once space is freed.
    """
    what = (
        "the disk quota is used up"
        if err.errno == errno.EDQUOT
        else "the filesystem is full (no space left on device)"
    )
    free = free_bytes(path)
    facts = [
        f"{needed:,} more bytes are needed" if needed is not None else None,
        f"{free:,} bytes are free there" if free is not None else None,
    ]
    amounts = "; ".join(fact for fact in facts if fact)
    quota = " (a quota is per user: see `quota -s`)" if err.errno == errno.EDQUOT else ""
    prefix = f"{entry}: " if entry else ""
    return DiskFullError(
        f"{prefix}{what} while writing {path}{quota}"
        + (f": {amounts}" if amounts else "")
        + f". {then}"
    )
