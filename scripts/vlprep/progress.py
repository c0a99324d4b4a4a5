"""Progress bars for long steps: tqdm on stderr, sparse when stderr is not a terminal.

Set VLPREP_PROGRESS=0 to silence them (the tests do, to keep logs short).
"""

import os
import sys

from tqdm import tqdm


def bar(total: int | None, desc: str, unit: str = "it", **kwargs) -> tqdm:
    """A tqdm bar on stderr; refreshes at most every 30 s when stderr is a file or pipe."""
    disabled = os.environ.get("VLPREP_PROGRESS", "1") == "0"
    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=disabled,
        mininterval=0.5 if interactive else 30.0,
        dynamic_ncols=interactive,
        **kwargs,
    )
