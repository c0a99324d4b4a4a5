"""Deterministic tar shards for webdataset, written without copying file bytes through Python.

Same inputs give the same bytes: members are sorted by name (so webdataset sees each sample's
files together) and carry a fixed mtime, uid/gid 0, empty owner names and mode 0o644. File
payloads go from the source descriptor to the shard with os.sendfile (kernel to kernel), which
is what keeps a shard write close to the speed of `tar` itself; small payloads such as captions
are passed as bytes and written directly.
"""

import functools
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from vlprep.atomic import staged

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
NAME_FIELD = 100
MAX_USTAR_SIZE = 8**11
FLUSH_AT = 1 << 20  # small members are gathered into one write of up to about this size

Source = bytes | str | Path  # bytes are the payload; anything else is a file to copy
Member = tuple[str, Source]


def sorted_members(members: Iterable[Member]) -> list[Member]:
    """Members in name order; duplicate names are an error because readers keep only one,
    and so is a NUL byte, where a ustar name ends (`a\\0b.txt` would be read as `a`)."""
    ordered = sorted(members, key=lambda member: member[0])
    for name, _ in ordered:
        if "\0" in name:
            raise ValueError(f"tar member name {name!r} has a NUL byte")
    for (prev, _), (name, _) in zip(ordered, ordered[1:], strict=False):
        if prev == name:
            raise ValueError(f"duplicate tar member name {name!r}")
    return ordered


def tarinfo_header(name: str, size: int, mtime: int) -> bytes:
    """Header block(s) of a regular file as tarfile makes them (pax records when needed)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@functools.cache
def template(mtime: int) -> tuple[bytes, int]:
    """tarfile's header for an unnamed empty member, and its checksum without name and size."""
    block = tarinfo_header("", 0, mtime)
    return block, sum(block[:124]) + sum(block[136:148]) + 8 * ord(" ") + sum(block[156:])


def header(name: str, size: int, mtime: int) -> bytes:
    """Same bytes as `tarinfo_header`, several times faster for plain ustar members.

    Shards hold three members per image, so tarfile's generic header code would otherwise
    cost as much as copying the image bytes.
    """
    raw = name.encode("utf-8", "surrogateescape")
    block, partial = template(mtime)
    if len(raw) > NAME_FIELD or not raw.isascii() or size >= MAX_USTAR_SIZE or len(block) > BLOCK:
        return tarinfo_header(name, size, mtime)
    size_field = b"%011o\0" % size
    checksum = partial + sum(raw) + sum(size_field)
    return b"".join(
        (
            raw.ljust(NAME_FIELD, b"\0"),
            block[NAME_FIELD:124],
            size_field,
            block[136:148],
            b"%06o\0 " % checksum,
            block[156:],
        )
    )


def padding(size: int) -> bytes:
    """Zeros that fill the last 512-byte block of a payload of `size` bytes."""
    return bytes(-size % BLOCK)


def flush(fd: int, pending: bytearray) -> int:
    """Write out and empty `pending` (os.write may take fewer bytes per call); return its size."""
    size = len(pending)
    view = memoryview(pending)
    while view:
        view = view[os.write(fd, view) :]
    view.release()
    pending.clear()
    return size


def send(out_fd: int, src: str | Path, size: int, in_fd: int) -> None:
    """Copy `size` bytes of `in_fd` to `out_fd` in the kernel."""
    offset = 0
    while offset < size:
        sent = os.sendfile(out_fd, in_fd, offset, size - offset)
        if sent == 0:
            raise OSError(f"{src} shrank while it was being written to a tar")
        offset += sent


def write_stream(out_fd: int, members: list[Member], mtime: int) -> int:
    """Write sorted `members` and the end-of-archive marker to `out_fd`; return bytes written.

    Headers, paddings and small payloads are gathered so that a file member costs one write
    and one sendfile.
    """
    pending = bytearray()
    total = 0
    for name, source in members:
        if isinstance(source, bytes):
            pending += header(name, len(source), mtime)
            pending += source
            pending += padding(len(source))
            if len(pending) >= FLUSH_AT:
                total += flush(out_fd, pending)
            continue
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            pending += header(name, size, mtime)
            total += flush(out_fd, pending)
            send(out_fd, source, size, f.fileno())
        total += size
        pending += padding(size)
    pending += bytes(2 * BLOCK)
    pending += bytes(-(total + len(pending)) % RECORD)
    return total + flush(out_fd, pending)


def write_tar(path: str | Path, members: Iterable[Member], *, mtime: int = 0) -> int:
    """Write a tar of `members` ((name, bytes or path of a file) pairs) to `path` atomically.

    Returns the size of the tar in bytes. Members are sorted by name, so callers need not.
    """
    ordered = sorted_members(members)
    with staged(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            size = write_stream(fd, ordered, mtime)
        finally:
            os.close(fd)
    return size
