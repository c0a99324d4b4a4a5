"""Is this the file the catalog expects? Judged from its first bytes, before it is installed.

Without a checksum in the catalog nothing else tells a dataset file from the login, quota or
error page a host sends in its place, often with status 200 and the file's own Content-Type.
So every downloader (and the manual_dir check) looks at the first bytes of such a file and
wants a positive sign of the expected format: the catalog's `archive` kind, else the file
name's suffix. A zip starts with `PK\\x03\\x04`, gzip with `\\x1f\\x8b`, JSON with `{` or `[`,
and so on; a body starting with `<` is a page (HTML, XML) and is named as one. A format we do
not know falls back to looking for the start of an HTML or XML document.

A body far smaller than the catalog's `approx_size` is refused too: a placeholder or an error
page, not a file of gigabytes.
"""

SNIFF_BYTES = 512  # enough for every magic number, and for tar's at offset 257
TINY_BYTES = 1 << 20  # a body below this and below 1% of approx_size is not the file
TINY_FRACTION = 0.01
BOM = b"\xef\xbb\xbf"
BLANK = b" \t\r\n\f\v"
PREVIEW = 48  # characters of the start shown in a message

# The catalog's `archive` kinds, and file name suffixes (longest first), by format.
ARCHIVE_FORMATS = {
    "zip": "zip",
    "tar": "tar",
    "tar.gz": "gzip",
    "tgz": "gzip",
    "tar.bz2": "bzip2",
    "tar.xz": "xz",
}
SUFFIX_FORMATS = (
    (".tar.gz", "gzip"),
    (".tar.bz2", "bzip2"),
    (".tar.xz", "xz"),
    (".tgz", "gzip"),
    (".tbz2", "bzip2"),
    (".txz", "xz"),
    (".gz", "gzip"),
    (".bz2", "bzip2"),
    (".xz", "xz"),
    (".zip", "zip"),
    (".tar", "tar"),
    (".jsonl", "jsonl"),
    (".json", "json"),
    (".parquet", "parquet"),
    (".mat", "matlab"),
    (".xml", "markup"),
    (".html", "markup"),
    (".htm", "markup"),
    (".svg", "markup"),
)
DESCRIPTIONS = {
    "zip": "a zip archive",
    "tar": "a tar archive",
    "gzip": "a gzip-compressed file",
    "bzip2": "a bzip2-compressed file",
    "xz": "an xz-compressed file",
    "json": "a JSON file",
    "jsonl": "a JSON Lines file",
    "parquet": "a Parquet file",
    "matlab": "a MATLAB MAT-file",
    "markup": "an XML or HTML document",
}
# How each binary format starts (zip: a member, an empty archive, a spanned archive).
MAGIC = {
    "zip": (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"),
    "gzip": (b"\x1f\x8b",),
    "bzip2": (b"BZh",),
    "xz": (b"\xfd7zXZ\x00",),
    "parquet": (b"PAR1",),
    # v5 files (what scipy.io.loadmat, and so torchvision, reads) and v7.3 start with a text
    # header "MATLAB 5.0 MAT-file, ..." / "MATLAB 7.3 MAT-file, ..."
    "matlab": (b"MATLAB ",),
}
# What text formats start with, after an optional BOM and blank space.
TEXT_STARTS = {"json": b"{[", "jsonl": b"{"}
TAR_MAGIC_AT, TAR_BLOCK = 257, 512
# The starts of an HTML or XML document, for files of a format not known here.
MARKUP_STARTS = (
    b"<!--",
    b"<!doctype",
    b"<?xml",
    b"<html",
    b"<head",
    b"<body",
    b"<title",
    b"<script",
    b"<meta",
)


def expected_format(filename: str, archive: str | None = None) -> str | None:
    """The format a catalog file must have: its `archive` kind, else its name's suffix;
    None when neither says (then only a page is refused)."""
    if archive and archive != "none":
        return ARCHIVE_FORMATS.get(archive)
    name = filename.lower()
    for suffix, found in SUFFIX_FORMATS:
        if name.endswith(suffix):
            return found
    return None


def describe(fmt: str | None) -> str:
    return DESCRIPTIONS.get(fmt or "", "the expected file")


def _text_start(head: bytes) -> bytes:
    """The bytes from the first that is not a BOM or blank space."""
    return head.removeprefix(BOM).lstrip(BLANK)


def _preview(data: bytes) -> str:
    """The start of `data` for a message: quoted on one line if it is text, else as bytes."""
    shown, more = data[:PREVIEW], "..." if len(data) > PREVIEW else ""
    try:
        text = " ".join(shown.decode("utf-8").split())
    except UnicodeDecodeError:
        text = ""
    if text and text.isprintable():
        return repr(text + more)
    return repr(shown) + more


def _first(data: bytes) -> str:
    return f"its first bytes are {_preview(data)}"


def looks_like_html(head: bytes) -> bool:
    """True if the first bytes of a body start an HTML or XML document (a page, not a file)."""
    return _text_start(head[:SNIFF_BYTES]).lower().startswith(MARKUP_STARTS)


def is_page(head: bytes, fmt: str | None) -> bool:
    """True if a file of format `fmt` starting with `head` is a page (HTML, XML) instead:
    any `<` start for a format known here, a document's start for others; never for a file
    that is itself a document (an .xml annotation file, say)."""
    if fmt == "markup":
        return False
    if fmt is None:
        return looks_like_html(head)
    return _text_start(head).startswith(b"<")


def _page_problem(start: bytes, fmt: str | None) -> str:
    return (
        f"it is an HTML page or other markup (a login, quota or error page?), not "
        f"{describe(fmt)}: {_first(start)}"
    )


def format_problem(head: bytes, fmt: str | None, *, complete: bool) -> str | None:
    """Why a file starting with `head` is not of format `fmt`, as "it is ..."; None if it
    may be.

    `head` is the file's first bytes, up to SNIFF_BYTES; `complete` says no more will come
    (a shorter head is then the whole file). With fewer bytes and more to come, a format
    that needs more is not judged yet (None).
    """
    start = _text_start(head)
    if is_page(head, fmt):
        return _page_problem(start, fmt)
    if fmt in (None, "markup"):
        return None
    if not head:
        return f"it is empty, not {describe(fmt)}" if complete else None
    if fmt in TEXT_STARTS:
        if not start:  # blank so far: only a whole file of blanks is known to be wrong
            whole = complete and len(head) < SNIFF_BYTES
            return f"it is blank, not {describe(fmt)}" if whole else None
        if start[:1] in TEXT_STARTS[fmt]:
            return None
        wanted = " or ".join(repr(chr(c)) for c in TEXT_STARTS[fmt])
        return f"it is not {describe(fmt)} (that starts with {wanted}): {_first(start)}"
    if fmt == "tar":
        return _tar_problem(head, complete)
    magic = MAGIC[fmt]
    if head.startswith(magic):
        return None
    if not complete and any(m.startswith(head) for m in magic):
        return None  # too few bytes yet to tell
    return f"it is not {describe(fmt)} (that starts with {_preview(magic[0])}): {_first(head)}"


def _tar_problem(head: bytes, complete: bool) -> str | None:
    """An uncompressed tar has `ustar` at offset 257 of its first 512-byte header."""
    if len(head) < TAR_BLOCK:
        if not complete:
            return None
        return f"it is not a tar archive: {len(head):,} bytes is shorter than one tar header"
    if head[TAR_MAGIC_AT : TAR_MAGIC_AT + 5] == b"ustar":
        return None
    return f"it is not a tar archive (no 'ustar' mark at byte {TAR_MAGIC_AT}): {_first(head)}"


def implausibly_small(size: int, approx_size: int | None) -> bool:
    """True when `size` bytes cannot be a file the catalog puts at about `approx_size`."""
    if not approx_size:
        return False
    return size < TINY_BYTES and size < approx_size * TINY_FRACTION
