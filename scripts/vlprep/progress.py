"""Progress bars for long steps: tqdm on stderr, with a rate, sparse when stderr is not a terminal.

VLPREP_PROGRESS=0 silences them (the tests do, to keep logs short). In a SLURM job whose stderr
is a file (its job log), there are none either: tqdm redraws a bar with carriage returns, which
a log keeps as one endless line; VLPREP_PROGRESS=1 brings them back there.
"""

import os
import sys

from tqdm import tqdm


def enabled(environ: dict[str, str] | None = None, interactive: bool | None = None) -> bool:
    """Whether bars are drawn: VLPREP_PROGRESS=0 never, =1 always; otherwise not inside a
    SLURM job (SLURM_JOB_ID set) whose stderr is no terminal, and everywhere else."""
    environ = os.environ if environ is None else environ
    setting = environ.get("VLPREP_PROGRESS", "")
    if setting in ("0", "1"):
        return setting == "1"
    if interactive is None:
        interactive = sys.stderr.isatty()
    return interactive or not environ.get("SLURM_JOB_ID")


def bar(total: int | None, desc: str, unit: str = "it", **kwargs) -> tqdm:
    """A tqdm bar on stderr (its rate in `unit`/s); refreshes at most every 30 s when stderr
    is a file or pipe."""
    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not enabled(interactive=interactive),
        mininterval=0.5 if interactive else 30.0,
        dynamic_ncols=interactive,
        **kwargs,
    )
