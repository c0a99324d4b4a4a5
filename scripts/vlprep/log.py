"""Logging for `script:` adapters: everything goes to the rule's log file and to stderr."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vlprep.errors import VlprepError
from vlprep.space import disk_full, is_disk_full


def setup_logging(log_path: str | Path | None, level: int = logging.INFO) -> logging.Logger:
    """Send the `vlprep` loggers to `log_path` (created) and to stderr; return the root one."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    logger = logging.getLogger("vlprep")
    logger.handlers.clear()
    for handler in handlers:
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


@contextmanager
def user_errors(logger: logging.Logger, *, output: str | Path | None = None) -> Iterator[None]:
    """Turn a VlprepError into its message and exit status 1, without a traceback.

    The message already names the file or URL and the fix; a traceback would bury it. A full
    disk or quota (ENOSPC, EDQUOT) raised anywhere is said the same way: which path, how much
    is free there (on `output`'s filesystem if the error names no path; default: the running
    Snakemake job's first output), and that a rerun continues. Anything else is a bug: its
    traceback goes into the log file too (Snakemake shows it, but keeps no copy), then on up.
    """
    try:
        yield
    except VlprepError as err:
        logger.error("%s", err)
        sys.exit(1)
    except OSError as err:
        if not is_disk_full(err):
            _log_traceback(logger)
            raise
        logger.error("%s", _disk_full_anywhere(err, output))
        sys.exit(1)
    except Exception:
        _log_traceback(logger)
        raise


def _disk_full_anywhere(err: OSError, output: str | Path | None) -> VlprepError:
    """The message for a full disk no step turned into a DiskFullError itself."""
    path = err.filename or output or _job_output() or Path.cwd()
    return disk_full(
        err,
        path,
        needed=None,
        then=(
            "Outputs appear only when complete, and downloads keep their `.part`: free some "
            "space (or move data_root to a bigger disk) and run the same command again; it "
            "continues from there."
        ),
    )


def _job_output() -> str | None:
    """The first output of the Snakemake job running this script, if any: Snakemake puts its
    `snakemake` object into the script's globals, which are `__main__`'s."""
    job = getattr(sys.modules.get("__main__"), "snakemake", None)
    outputs = list(getattr(job, "output", None) or [])
    return str(outputs[0]) if outputs else None


def _log_traceback(logger: logging.Logger) -> None:
    """Write the exception being handled, with its traceback, to the log files only: stderr
    gets it from the interpreter (and Snakemake) when it is re-raised."""
    record = logger.makeRecord(
        logger.name,
        logging.ERROR,
        __file__,
        0,
        "unexpected error (a bug in vlprep? please report it with this log):",
        (),
        sys.exc_info(),
    )
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
