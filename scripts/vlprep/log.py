"""Logging for `script:` adapters: everything goes to the rule's log file and to stderr."""

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vlprep.errors import VlprepError


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
def user_errors(logger: logging.Logger) -> Iterator[None]:
    """Turn a VlprepError into its message and exit status 1, without a traceback.

    The message already names the file or URL and the fix; a traceback would bury it.
    """
    try:
        yield
    except VlprepError as err:
        logger.error("%s", err)
        sys.exit(1)
