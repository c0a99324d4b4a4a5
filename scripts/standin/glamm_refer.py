"""Stand-in sources of GLaMM's data (filled in below)."""

from pathlib import Path


def make_glamm_refer(out: Path) -> dict[str, Path]:
    """Write the stand-in files into `out`; return {catalog file name or entry id: path}."""
    return {}
