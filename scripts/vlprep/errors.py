"""Errors a user can act on. Their message names the file or URL and says what to do."""

from pathlib import Path


class VlprepError(Exception):
    """Base class: a failure with a message meant for the person running the workflow."""


class CatalogError(VlprepError):
    """The catalog or config is malformed."""


class FetchError(VlprepError):
    """A download failed for good (after retries) or delivered the wrong bytes."""


class UnsafeArchiveError(VlprepError):
    """An archive holds a member that would land outside its target, or is implausibly large."""


class CorruptArchiveError(VlprepError):
    """An archive is damaged or truncated; downloading it again is the fix.

    `archive` is the damaged file, when one file is to blame (not for a clash between two).
    """

    def __init__(self, message: str, archive: Path | None = None) -> None:
        super().__init__(message)
        self.archive = archive


class ConversionError(VlprepError):
    """An input to a conversion step is malformed."""


class DiskFullError(VlprepError):
    """A write failed because the filesystem is full or the quota is used up."""
