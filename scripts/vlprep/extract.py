"""Unpack a downloaded archive into the store, refusing anything that could land outside it.

Every archive in the catalog goes through `extract`. The tree is built in a hidden sibling of
`dest` (vlprep.atomic), so `dest` appears only complete and a refused or killed extraction
leaves nothing at a final path. Each member is checked before a byte of it is written:

* names: no absolute paths, no `..`, no device files or FIFOs;
* sizes: the declared uncompressed total may not exceed `max_ratio` times the archive's size
  (checked up front for zip, as a running total for streamed tar), and each member is copied
  only up to its declared size, so a header that understates it cannot make us write more;
* links: hard links only to files already extracted; symlinks must point inside, and are
  created only after every file is written, so nothing is ever written through one; each is
  then resolved on disk, which also catches chains of links that look harmless one by one.

Files get the archive's mtimes and modes 0644/0755 only (no setuid, no group/world write).

`extract_many` unpacks several archives into one target, each through an optional `Rename`
that says where a member's file goes (vlprep.flatten uses it to merge Visual Genome's two zips
into one flat folder). There no file may land on another: such a clash is an error naming both
members, found with the O_EXCL open that writes the file, so nothing is remembered per member.
Renamed archives contribute files only: their directories are dropped and links refused. A part
of kind "file" is a loose file (not an archive), hard-linked into the target (copied across
filesystems) under its name or the one its `Rename` gives, with the same clash check.

`extract` can also unpack archives inside the archive (`Nested`: Caltech101's zip holds two
tarballs). Each is unpacked, after the outer one and still in the staging directory, into the
folder that holds it, with every check above; it may land only in that folder and on no path
already there (a clash is an error), is never written through a link the outer archive made,
and the inner archive file is then removed: its content is what the consumer opens.

A full disk (or quota) is a DiskFullError naming the target, the bytes the archive declares
and the bytes free; the half-built tree is removed, so the space it took is free again.
"""

import bz2
import calendar
import errno
import functools
import gzip
import io
import logging
import lzma
import os
import posixpath
import re
import stat
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vlprep.atomic import staged
from vlprep.errors import (
    CatalogError,
    CorruptArchiveError,
    DiskFullError,
    UnsafeArchiveError,
    VlprepError,
)
from vlprep.progress import bar
from vlprep.space import disk_full, is_disk_full

log = logging.getLogger(__name__)

KINDS = ("zip", "tar", "tar.gz", "tgz", "tar.bz2", "tar.xz")
SUFFIXES = {
    ".zip": "zip",
    ".tar": "tar",
    ".tar.gz": "tar.gz",
    ".tgz": "tgz",
    ".tar.bz2": "tar.bz2",
    ".tbz2": "tar.bz2",
    ".tar.xz": "tar.xz",
    ".txz": "tar.xz",
}
DECOMPRESSORS: dict[str, Callable[[BinaryIO], BinaryIO]] = {
    "tar": lambda raw: raw,
    "tar.gz": lambda raw: gzip.GzipFile(fileobj=raw),
    "tgz": lambda raw: gzip.GzipFile(fileobj=raw),
    "tar.bz2": bz2.BZ2File,
    "tar.xz": lzma.LZMAFile,
}
CHUNK = 1 << 20
# Allowance on top of max_ratio * archive size, so tiny archives of text are not refused.
SLACK = 16 << 20
MAX_LINK_TARGET = 4096
# Errors the archive libraries raise for damaged data (plus OSErrors without an errno).
CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError)
LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature ... file name length, extra field length
# C:/... or C:\...: absolute on Windows, so refused in names and link targets.
DRIVE = re.compile(r"[A-Za-z]:[/\\]")
# A name that is its own relative path: "/"-separated components, none empty or starting with
# "." (so no "." or ".."), no backslash, NUL or colon (so no drive). Others take the long way.
PLAIN_NAME = re.compile(r"(?:[^/\\\0.:][^/\\\0:]*/)*[^/\\\0.:][^/\\\0:]*/?")
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Bytes of each end of a file handed to a CheckFile (enough for magic numbers and trailers).
ENDS = 64
# Members this small (both ways) are read whole, header and data in one system call.
SMALL = 1 << 20
# Errors of a path the archive makes impossible: a file where a folder is (or the reverse), a
# name too long. The staged tree starts empty, so only its members can cause them.
MEMBER_PATH_ERRNOS = (errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG)
# What zipfile can unpack; another method (deflate64, AES...) is refused before any write.
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)

FILE = "file"  # a part of extract_many that is a loose file, placed as it is

Rename = Callable[[str], str | None]
"""Where a regular file goes: its checked, "/"-separated path in the archive -> its path in the
target, or None to skip it. Raises MisplacedMember for a member that does not belong."""
CheckFile = Callable[[Path, str, bytes, bytes, int], None]
"""Called as (archive, path in the target, first ENDS bytes, last ENDS bytes, size) after each
file is written, so a cheap content check needs no second read."""


class MisplacedMember(Exception):
    """Raised by a Rename: the member has no place in the target; the message says why."""


class _Clash(Exception):
    """A file would land on a path that is already taken (merged extractions only)."""

    def __init__(self, rel: str, name: str, position: int) -> None:
        super().__init__(rel)
        self.rel, self.name, self.position = rel, name, position


@dataclass(frozen=True)
class Part:
    """One archive (or loose file, kind "file") of `extract_many`, with how its files are
    named in the target."""

    archive: Path
    kind: str = "auto"
    declared_size: int | None = None  # from the catalog; default: the size on disk
    rename: Rename | None = None  # None: members keep their paths, directories and links
    entry: str | None = None  # the catalog entry it is, for messages; default: the target's
    max_ratio: float | None = None  # its own bomb limit; default: the call's max_ratio


@dataclass(frozen=True)
class Nested:
    """An archive inside the extracted tree (`member`: its path there) to unpack in place."""

    member: str
    kind: str


def resolve_kind(archive: Path, kind: str) -> str:
    """The archive kind, read from the file name's suffix when `kind` is "auto"."""
    if kind == "auto":
        name = archive.name.lower()
        for suffix, found in SUFFIXES.items():
            if name.endswith(suffix):
                return found
        raise CatalogError(f"{archive}: cannot tell the archive kind from its name; set it")
    if kind not in KINDS:
        raise CatalogError(f"{archive}: unknown archive kind {kind!r}; expected one of {KINDS}")
    return kind


class _Tree:
    """The staging directory being filled, with what the checks need to remember.

    Paths are kept as strings relative to `root`, with "/" separators. One tree may take
    several archives in turn (`begin`); `exclusive` makes a file landing on an existing path a
    clash instead of a replacement.
    """

    def __init__(
        self,
        entry: str,
        root: Path,
        max_members: int,
        *,
        exclusive: bool = False,
        check_file: CheckFile | None = None,
    ):
        self.entry, self.root, self.max_members = entry, str(root), max_members
        self.exclusive, self.check_file = exclusive, check_file
        self.archive, self.limit, self.rename = Path(), 0, None
        self.shown, self.part_entry = "", entry  # how messages name the archive and its entry
        # False: `root` started empty, so only our own members are there. True (a nested
        # archive's folder): others are, so paths are checked for links on disk as well.
        self.existing = False
        self.real_root = os.path.realpath(root)
        self.members = self.declared = self.files = self.bytes = self.skipped = 0
        self.position = 0  # index of the member being written in the current archive
        self.member = ""  # its name, for messages
        self.made: set[str] = {""}  # directories that exist
        self.dir_mtimes: dict[str, float] = {}
        self.links: dict[str, tuple[str, float]] = {}  # symlinks still to create: target, mtime

    def begin(
        self,
        archive: Path,
        limit: int,
        rename: Rename | None,
        *,
        entry: str | None = None,
        shown: str | None = None,
    ) -> None:
        """Start on the next archive: its own size limit and naming; `entry` and `shown` are
        its catalog entry and how to name it in messages (default: the tree's, its path)."""
        self.archive, self.limit, self.rename = archive, limit, rename
        self.part_entry, self.shown = entry or self.entry, shown or str(archive)
        self.declared = self.position = 0

    def totals(self) -> dict:
        return {"members": self.members, "files": self.files, "bytes": self.bytes}

    def unsafe(self, member: str, reason: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(
            f"{self.shown} (catalog entry {self.part_entry}): member {member!r} {reason}. "
            "The archive is corrupt or malicious and must not be trusted; nothing was "
            "extracted. Delete it and check where it came from before fetching it again."
        )

    def refused_path(self, err: OSError) -> UnsafeArchiveError | None:
        """The member being written as the cause of `err`, if its path is what failed."""
        if err.errno not in MEMBER_PATH_ERRNOS:
            return None
        return self.unsafe(
            self.member,
            f"cannot be written ({err.strerror}): a file and a folder share its path, or a "
            "name is longer than the filesystem allows",
        )

    def count(self, member: str, size: int) -> None:
        """Add a member to the running totals; refuse too many members or too many bytes."""
        self.members += 1
        self.declared += size
        if self.members > self.max_members:
            raise self.unsafe(member, f"is one more than the {self.max_members:,} allowed")
        if self.declared > self.limit:
            raise self.unsafe(
                member,
                f"brings the declared uncompressed size to {self.declared:,} bytes, more "
                f"than the {self.limit:,} this archive's size allows (a decompression bomb?). If the "
                "data really is that compressible, raise max_unpack_ratio for this entry in the catalog",
            )

    def misplaced(self, member: str, reason: str) -> CorruptArchiveError:
        return CorruptArchiveError(
            f"{self.shown} (catalog entry {self.part_entry}) is not the archive expected: member "
            f"{member!r} {reason}. Nothing was extracted. Check the entry's URL (a mirror may "
            "serve another file of the same name), then delete the file and fetch it again.",
            archive=self.archive,
        )

    def place(self, rel: str, name: str) -> str | None:
        """Where a regular file member goes (its own path unless renamed); None: skip it."""
        if self.rename is None:
            return rel
        try:
            placed = self.rename(rel)
        except MisplacedMember as why:
            raise self.misplaced(name, str(why)) from None
        if placed is None:
            return None
        target = self.relpath(placed)
        if not target:
            raise self.unsafe(name, "is renamed to an empty path")
        return target

    def refuse_renamed_link(self, name: str) -> None:
        """A renamed archive yields files only: a link's target would no longer mean the same."""
        if self.rename is not None:
            raise self.unsafe(name, "is a link, and this archive's members are renamed")

    def relpath(self, name: str) -> str:
        """The member's path relative to the target; refuse absolute paths and `..`."""
        if PLAIN_NAME.fullmatch(name):  # the common case, checked in one step
            return name[:-1] if name.endswith("/") else name
        if "\0" in name:
            raise self.unsafe(name, "has a NUL byte in its name")
        if name.startswith(("/", "\\")) or DRIVE.match(name):
            raise self.unsafe(name, "has an absolute path")
        parts = name.replace("\\", "/").split("/")
        if ".." in parts:
            raise self.unsafe(name, "has a '..' component and could land outside the target")
        return "/".join(p for p in parts if p not in ("", "."))

    def check_not_through_link(self, rel: str, name: str) -> None:
        """Refuse a path with a symlink member among its parent directories."""
        if not self.links:
            return
        parent = rel
        while (parent := parent.rpartition("/")[0]) != "":
            if parent in self.links:
                raise self.unsafe(name, f"would be written through the symlink member {parent!r}")

    def check_on_disk(self, rel: str, name: str) -> None:
        """In a folder that held files before (nested archives), refuse a path that runs
        through a link already there: it would write outside the folder, or over its files."""
        if self.existing and os.path.realpath(os.path.join(self.root, rel)) != os.path.join(
            self.real_root, rel
        ):
            raise self.unsafe(name, "would be written through a link already in the target")

    def ensure_parent(self, rel: str) -> None:
        parent = rel.rpartition("/")[0]
        if parent not in self.made:
            self.check_on_disk(parent, rel)
            os.makedirs(os.path.join(self.root, parent), exist_ok=True)
            while parent not in self.made:
                self.made.add(parent)
                parent = parent.rpartition("/")[0]

    def add_dir(self, rel: str, mtime: float) -> None:
        self.links.pop(rel, None)  # a later member of the same name wins, as in tar
        if rel not in self.made:
            self.ensure_parent(rel)
            try:
                os.mkdir(os.path.join(self.root, rel))
            except FileExistsError:  # a folder already there (nested archives) is merged into
                if not self.existing:
                    raise
                self.check_on_disk(rel, rel)
                if not os.path.isdir(os.path.join(self.root, rel)):
                    raise _Clash(rel, rel, self.position) from None
            self.made.add(rel)
        self.dir_mtimes[rel] = mtime

    def check_free(self, rel: str, name: str) -> None:
        """In a merged extraction, a path already taken is a clash, never replaced."""
        if self.exclusive:
            raise _Clash(rel, name, self.position)

    def add_file(
        self,
        rel: str,
        name: str,
        src: BinaryIO,
        size: int,
        mode: int,
        mtime: float,
        *,
        crc: bool = False,
    ) -> int:
        """Copy exactly `size` bytes of `src` into a new file; return their CRC-32 if asked."""
        self.links.pop(rel, None)
        self.ensure_parent(rel)
        path = f"{self.root}/{rel}"
        try:
            fd = os.open(path, NEW_FILE, 0o644)
        except FileExistsError:  # a later member of the same name replaces the earlier one
            self.check_free(rel, name)
            os.unlink(path)
            fd = os.open(path, NEW_FILE, 0o644)
        try:
            value, head, tail = _copy(src, fd, size, crc)
            os.fchmod(fd, 0o755 if mode & 0o111 else 0o644)
            os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)
        if self.check_file is not None:
            self.check_file(self.archive, rel, head, tail, size)
        self.files += 1
        self.bytes += size
        return value

    def add_symlink(self, rel: str, name: str, target: str, mtime: float) -> None:
        """Remember a symlink that points inside the target; it is created in `finish`."""
        if not target or target.startswith(("/", "\\")) or DRIVE.match(target):
            raise self.unsafe(name, f"is a symlink to the absolute path {target!r}")
        if "\0" in target:
            raise self.unsafe(name, f"is a symlink to {target!r}, with a NUL byte")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
        if resolved == ".." or resolved.startswith("../"):
            raise self.unsafe(name, f"is a symlink to {target!r}, outside the target")
        if self.exclusive and (rel in self.links or os.path.lexists(os.path.join(self.root, rel))):
            raise _Clash(rel, name, self.position)
        self.links[rel] = (target, mtime)

    def add_hardlink(self, rel: str, name: str, target_name: str) -> None:
        """Link to a regular file extracted earlier; anything else is refused."""
        try:
            target = self.relpath(target_name)
        except UnsafeArchiveError:
            raise self.unsafe(
                name, f"is a hard link to {target_name!r}, outside the target"
            ) from None
        self.check_not_through_link(target, name)
        self.check_on_disk(target, name)
        source = os.path.join(self.root, target)
        if target in self.links or not target or not os.path.isfile(source):
            raise self.unsafe(
                name, f"is a hard link to {target_name!r}, which is not a file earlier in it"
            )
        if target == rel:  # GNU tar stores a file named twice as a hard link to itself
            return
        self.links.pop(rel, None)
        self.ensure_parent(rel)
        path = os.path.join(self.root, rel)
        if os.path.lexists(path):
            self.check_free(rel, name)
            os.unlink(path)
        os.link(source, path, follow_symlinks=False)
        self.files += 1

    def add_loose_file(self, rel: str, name: str, source: Path) -> None:
        """Present a loose file (a part of kind "file") at `rel`: a hard link, so it is stored
        once, or a copy where links cannot be made (another filesystem)."""
        self.links.pop(rel, None)
        self.ensure_parent(rel)
        path = os.path.join(self.root, rel)
        if os.path.lexists(path):
            self.check_free(rel, name)
            os.unlink(path)
        size = os.stat(source).st_size
        try:
            os.link(source, path)
        except OSError as err:
            if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            with open(source, "rb") as src:
                self.add_file(rel, name, src, size, 0o644, os.stat(source).st_mtime)
            return
        if self.check_file is not None:
            with open(source, "rb") as src:
                head = src.read(ENDS)
                src.seek(max(0, size - ENDS))
                tail = src.read(ENDS)
            self.check_file(self.archive, rel, head, tail, size)
        self.files += 1
        self.bytes += size

    def finish(self) -> None:
        """Create the symlinks, prove each resolves inside, then fix directory modes/mtimes."""
        for rel in self.links:
            self.check_not_through_link(rel, rel)
        for rel, (target, mtime) in self.links.items():
            self.member = rel
            self.ensure_parent(rel)
            path = os.path.join(self.root, rel)
            if os.path.isdir(path):
                raise self.unsafe(rel, "is a symlink with the name of a directory in the archive")
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(target, path)
            os.utime(path, (mtime, mtime), follow_symlinks=False)
        root = os.path.realpath(self.root)
        for rel, (target, _) in self.links.items():
            real = os.path.realpath(os.path.join(self.root, rel))
            if real != root and not real.startswith(root + os.sep):
                raise self.unsafe(rel, f"is a symlink to {target!r}, which resolves outside")
        for rel in self.made - {""}:
            path = os.path.join(self.root, rel)
            os.chmod(path, 0o755)
            if rel in self.dir_mtimes:
                os.utime(path, (self.dir_mtimes[rel],) * 2)


def _copy(src: BinaryIO, fd: int, size: int, crc: bool) -> tuple[int, bytes, bytes]:
    """Copy `size` bytes in 1 MiB chunks; the data ending early means the archive is cut.

    Returns their CRC-32 (if asked) and the first and last ENDS bytes.
    """
    value, head, tail = 0, b"", b""
    left = size
    while left:
        chunk = src.read(min(CHUNK, left))
        if not chunk:
            raise EOFError(f"member data ends {left:,} bytes early")
        if crc:
            value = zlib.crc32(chunk, value)
        if not head:
            head = chunk[:ENDS]
        tail = (tail + chunk)[-ENDS:] if len(chunk) < ENDS else chunk[-ENDS:]
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]
        left -= len(chunk)
    return value, head, tail


# ---- zip -----------------------------------------------------------------------------------


def _zip_type(info: zipfile.ZipInfo) -> tuple[int, int]:
    """(file type bits, permission bits) from the Unix mode a zip tool may have stored."""
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    # zipfile's is_dir() without its IndexError on an empty name (refused as such later)
    kind = stat.S_IFDIR if info.filename.endswith("/") else stat.S_IFMT(mode) or stat.S_IFREG
    return kind, stat.S_IMODE(mode)


def _zip_mtime(info: zipfile.ZipInfo) -> float:
    """The member's mtime: the UTC "UT" extra field if present, else its DOS time read as UTC."""
    extra, pos = info.extra, 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 0x5455 and size >= 5 and extra[pos + 4] & 1:
            return struct.unpack_from("<i", extra, pos + 5)[0]
        pos += 4 + size
    return _dos_time(info.date_time)


@functools.lru_cache(maxsize=4096)  # image zips repeat a few times for many members
def _dos_time(date_time: tuple[int, ...]) -> float:
    try:
        return calendar.timegm((*date_time, 0, 0, 0))
    except ValueError:  # month or day 0 in a sloppy archive
        return calendar.timegm((1980, 1, 1, 0, 0, 0, 0, 0, 0))


def _plan_zip(zf: zipfile.ZipFile, tree: _Tree) -> None:
    """Check every member and the declared total before anything is written."""
    for info in zf.infolist():
        if info.flag_bits & 1:
            raise zipfile.BadZipFile(f"{info.filename!r} is encrypted, as no catalog archive is")
        rel = tree.relpath(info.filename)
        kind, _ = _zip_type(info)
        if kind != stat.S_IFDIR and info.compress_type not in ZIP_METHODS:
            method = zipfile.compressor_names.get(info.compress_type, "unknown")
            raise zipfile.BadZipFile(
                f"{info.filename!r} is compressed with method {info.compress_type} ({method}), "
                "which Python's zipfile cannot unpack"
            )
        if kind == stat.S_IFLNK:
            tree.refuse_renamed_link(info.filename)
            if info.file_size > MAX_LINK_TARGET:
                raise tree.unsafe(info.filename, "is a symlink with an absurdly long target")
            target = zf.read(info).decode("utf-8", "surrogateescape")
            tree.add_symlink(rel, info.filename, target, _zip_mtime(info))
        elif kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise tree.unsafe(info.filename, "is a device file, FIFO or socket")
        elif kind == stat.S_IFREG and not rel:
            raise tree.unsafe(info.filename, "has an empty name")
        elif kind == stat.S_IFREG:
            tree.place(rel, info.filename)  # a misplaced member fails now, before any write
        tree.count(info.filename, info.file_size if kind == stat.S_IFREG else 0)


def _seek_stored_data(raw: BinaryIO, info: zipfile.ZipInfo) -> None:
    """Position `raw` at a member's data, past its local header."""
    raw.seek(info.header_offset)
    header = raw.read(LOCAL_HEADER.size)
    if len(header) != LOCAL_HEADER.size:
        raise zipfile.BadZipFile(f"local header of {info.filename!r} is cut off")
    signature, name_len, extra_len = LOCAL_HEADER.unpack(header)
    if signature != zipfile.stringFileHeader:
        raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
    raw.seek(info.header_offset + LOCAL_HEADER.size + name_len + extra_len)


class _Inflated:
    """A deflated member's data, inflated straight from the archive file.

    What zipfile.open does, without its per-member set-up (a ZipExtFile, another read of the
    local header), which costs more than the inflating for small files. Each read inflates
    at most what it returns, so a member cannot expand beyond what the caller asks for.
    """

    def __init__(self, raw: BinaryIO, compressed: int) -> None:
        self.raw, self.left = raw, compressed
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)

    def read(self, size: int) -> bytes:
        """Up to `size` bytes; fewer only where the compressed data ends."""
        pieces = []
        while size and not self.inflater.eof:
            data = self.inflater.unconsumed_tail
            if not data:
                if not self.left:
                    break
                data = self.raw.read(min(CHUNK, self.left))
                if not data:
                    raise EOFError("compressed member data ends early")
                self.left -= len(data)
            piece = self.inflater.decompress(data, size)
            pieces.append(piece)
            size -= len(piece)
        return b"".join(pieces)


def _member_data(raw: BinaryIO, info: zipfile.ZipInfo) -> BinaryIO:
    """A stored or deflated member's bytes, straight from the archive file.

    A small member is read whole with its local header (one system call; the name and extra
    field lengths there are allowed 1 KiB) and inflated at most to its declared size; a big
    one, or one whose header is longer, is streamed.
    """
    deflated = info.compress_type == zipfile.ZIP_DEFLATED
    if info.compress_size <= SMALL and info.file_size <= SMALL:
        want = LOCAL_HEADER.size + 1024 + info.compress_size
        buf = os.pread(raw.fileno(), want, info.header_offset)
        if len(buf) < LOCAL_HEADER.size:
            raise zipfile.BadZipFile(f"local header of {info.filename!r} is cut off")
        signature, name_len, extra_len = LOCAL_HEADER.unpack_from(buf)
        if signature != zipfile.stringFileHeader:
            raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
        start = LOCAL_HEADER.size + name_len + extra_len
        if start + info.compress_size <= len(buf):
            data = buf[start : start + info.compress_size]
            if deflated:  # (a max_length of 0 would mean no limit at all)
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                data = inflater.decompress(data, info.file_size) if info.file_size else b""
            return io.BytesIO(data)
    _seek_stored_data(raw, info)
    return _Inflated(raw, info.compress_size) if deflated else raw


def _extract_zip(archive: Path, tree: _Tree) -> None:
    """Stored and deflated members (all of a JPEG zip) are read straight from the file and
    checked against their CRC-32; others go through zipfile, which checks it."""
    with zipfile.ZipFile(archive) as zf, open(archive, "rb", buffering=0) as raw:
        _plan_zip(zf, tree)
        with bar(tree.declared, f"extract {tree.entry}", unit="B", unit_scale=True) as progress:
            for position, info in enumerate(zf.infolist()):
                tree.position, tree.member = position, info.filename
                name = info.filename
                kind, mode = _zip_type(info)
                rel = tree.relpath(name)
                if kind == stat.S_IFDIR:
                    if tree.rename is not None:  # renamed archives contribute files only
                        tree.skipped += 1
                    elif rel:
                        tree.check_not_through_link(rel, name)
                        tree.add_dir(rel, _zip_mtime(info))
                    continue
                if kind == stat.S_IFLNK:  # created by tree.finish
                    tree.check_not_through_link(rel, name)
                    continue
                rel = tree.place(rel, name)
                if rel is None:
                    tree.skipped += 1
                    continue
                tree.check_not_through_link(rel, name)
                mtime = _zip_mtime(info)
                if info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    src = _member_data(raw, info)
                    crc = tree.add_file(rel, name, src, info.file_size, mode, mtime, crc=True)
                    if crc != info.CRC:
                        raise zipfile.BadZipFile(f"Bad CRC-32 for file {name!r}")
                else:
                    with zf.open(info) as src:
                        tree.add_file(rel, name, src, info.file_size, mode, mtime)
                progress.update(info.file_size)


# ---- tar -----------------------------------------------------------------------------------


def _extract_tar_member(tf: tarfile.TarFile, member: tarfile.TarInfo, tree: _Tree) -> None:
    name = member.name
    rel = tree.relpath(name)
    if not rel and not member.isdir():
        raise tree.unsafe(name, "has an empty name")
    if member.isreg():
        rel = tree.place(rel, name)
        if rel is None:
            tree.skipped += 1
            return
    elif member.isdir() and tree.rename is not None:  # renamed archives contribute files only
        tree.skipped += 1
        return
    elif member.issym() or member.islnk():
        tree.refuse_renamed_link(name)
    tree.check_not_through_link(rel, name)
    if member.isreg():
        with tf.extractfile(member) as src:
            tree.add_file(rel, name, src, member.size, member.mode, member.mtime)
    elif member.isdir():
        if rel:
            tree.add_dir(rel, member.mtime)
    elif member.issym():
        tree.add_symlink(rel, name, member.linkname, member.mtime)
    elif member.islnk():
        tree.add_hardlink(rel, name, member.linkname)
    else:
        raise tree.unsafe(name, "is a device file or FIFO")


def _check_tar_end(tf: tarfile.TarFile, stream: BinaryIO) -> None:
    """Insist on the end-of-archive zero block: tarfile quietly stops at a cut or garbled
    header. Reading to the end also makes gzip/bz2/xz verify their trailing checksums."""
    if stream.tell() < tf.offset + tarfile.BLOCKSIZE:
        raise tarfile.ReadError("it ends without an end-of-archive marker")
    while chunk := stream.read(CHUNK):
        if chunk.count(0) != len(chunk):
            raise tarfile.ReadError("it has data after its end-of-archive marker")


def _extract_tar(archive: Path, kind: str, tree: _Tree) -> None:
    """Stream the members in order, checking each before writing it; memory stays flat."""
    size = archive.stat().st_size
    with (
        open(archive, "rb", buffering=CHUNK) as raw,
        DECOMPRESSORS[kind](raw) as stream,
        tarfile.open(fileobj=stream, mode="r:") as tf,
        bar(size, f"extract {tree.entry}", unit="B", unit_scale=True) as progress,
    ):
        while (member := tf.next()) is not None:
            tf.members.clear()  # tarfile keeps every header it read; we never look back
            tree.count(member.name, member.size if member.isreg() else 0)
            tree.member = member.name
            _extract_tar_member(tf, member, tree)
            tree.position += 1
            progress.update(raw.tell() - progress.n)
        _check_tar_end(tf, stream)


# ---- entry point ---------------------------------------------------------------------------


def _corrupt(archive: Path, entry: str, err: BaseException) -> CorruptArchiveError:
    return CorruptArchiveError(
        f"{archive} (catalog entry {entry}) is corrupt or truncated: {err}. Nothing was "
        "extracted. Delete the file so the next run downloads it again.",
        archive=archive,
    )


def _file_members(archive: Path, kind: str) -> Iterator[tuple[int, str]]:
    """(position, name) of each regular file member, in the order extraction meets them."""
    if kind == FILE:
        yield 0, archive.name
        return
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for position, info in enumerate(zf.infolist()):
                if _zip_type(info)[0] == stat.S_IFREG:
                    yield position, info.filename
        return
    with (
        open(archive, "rb", buffering=CHUNK) as raw,
        DECOMPRESSORS[kind](raw) as stream,
        tarfile.open(fileobj=stream, mode="r:") as tf,
    ):
        position = 0
        while (member := tf.next()) is not None:
            tf.members.clear()
            if member.isreg():
                yield position, member.name
            position += 1


def _first_writer(parts: Sequence[Part], upto: tuple[int, int], rel: str) -> tuple[Path, str]:
    """The archive and member that first wrote `rel`, among members before position `upto`.

    Runs only after a clash, so nothing per member is kept while extracting: the archives are
    read again (headers only, for zips) and their names placed the same way.
    """
    for index, part in enumerate(parts[: upto[0] + 1]):
        for position, name in _file_members(part.archive, part.kind):
            if (index, position) >= upto:
                break
            rel_name = "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
            try:
                placed = part.rename(rel_name) if part.rename else rel_name
            except MisplacedMember:
                continue
            if placed == rel:
                return part.archive, name
    raise LookupError(rel)


def _place_loose_file(path: Path, tree: _Tree) -> None:
    """A part of kind "file": the file itself goes into the tree, under its name or the one
    its rename gives."""
    name = path.name
    tree.member = name
    tree.count(name, os.stat(path).st_size)
    rel = tree.place(tree.relpath(name), name)
    if rel is None:
        tree.skipped += 1
        return
    tree.check_not_through_link(rel, name)
    tree.add_loose_file(rel, name, path)


def _clash_error(parts: Sequence[Part], index: int, clash: _Clash, entry: str) -> VlprepError:
    try:
        archive, name = _first_writer(parts, (index, clash.position), clash.rel)
    except LookupError:
        taken = "which is already taken in the target"
    else:
        taken = f"where member {name!r} of {archive} already is"
    return CorruptArchiveError(
        f"catalog entry {parts[index].entry or entry}: member {clash.name!r} of "
        f"{parts[index].archive} would land on "
        f"{clash.rel!r}, {taken}. These are not the archives expected (the same file twice, "
        "or a mirror serving another file?). Nothing was extracted. Check the entries' URLs, "
        "then delete the files and fetch them again."
    )


def _unpack_part(part: Part, tree: _Tree, entry: str) -> None:
    """Unpack one archive into the tree, turning damaged data into CorruptArchiveError."""
    try:
        if part.kind == FILE:
            _place_loose_file(part.archive, tree)
        elif part.kind == "zip":
            _extract_zip(part.archive, tree)
        else:
            _extract_tar(part.archive, part.kind, tree)
    except CORRUPT as err:
        raise _corrupt(part.archive, part.entry or entry, err) from err
    except OSError as err:
        if err.errno is not None:  # a real I/O error (disk full, ...), not damaged data
            raise
        raise _corrupt(part.archive, part.entry or entry, err) from err


def _unpack(
    parts: Sequence[Part],
    dest: Path,
    *,
    entry: str,
    max_ratio: float,
    max_members: int,
    exclusive: bool,
    check_file: CheckFile | None,
    nested: Sequence[Nested] = (),
) -> list[dict]:
    """Unpack `parts` in order into `dest`, then the `nested` archives found there; `dest`
    appears only once all are done. A report per part, then one per nested archive."""
    reports: list[dict] = []
    tree = None
    try:
        with staged(dest, directory=True) as tmp:
            tree = _Tree(entry, tmp, max_members, exclusive=exclusive, check_file=check_file)
            _unpack_into(tree, parts, dest, entry=entry, max_ratio=max_ratio, reports=reports)
            for inner in nested:
                reports.append(_unpack_nested(tmp, parts[-1], inner, entry, max_ratio, max_members))
    except OSError as err:
        if tree is not None and (refused := tree.refused_path(err)) is not None:
            raise refused from None
        if not is_disk_full(err):
            raise
        raise _disk_full(err, dest, parts, reports, tree) from None
    return reports


def _disk_full(
    err: OSError, dest: Path, parts: Sequence[Part], reports: list[dict], tree: _Tree | None
) -> DiskFullError:
    """The disk filled up while unpacking; the staged tree is gone, so all of it is needed.

    A zip's members are declared up front, so the total is known; a tar's only as it streams.
    """
    part = parts[len(reports)] if len(reports) < len(parts) else parts[-1]
    needed = None
    if tree is not None and part.kind == "zip":
        needed = sum(report["bytes"] for report in reports) + tree.declared
    written = f" (it had written {tree.bytes:,} bytes)" if tree is not None else ""
    return disk_full(
        err,
        dest,
        entry=tree.entry if tree is not None else None,
        needed=needed,
        then=(
            f"Unpacking {part.archive} stopped{written}; the half-built tree was removed and "
            f"nothing is at {dest}. The download is kept: free some space (or move data_root "
            "to a bigger disk) and run the same command again to unpack it."
        ),
    )


def _unpack_into(
    tree: _Tree,
    parts: Sequence[Part],
    dest: Path,
    *,
    entry: str,
    max_ratio: float,
    reports: list[dict],
) -> None:
    """Unpack `parts` in order into the staged tree, appending a report per part."""
    sizes = [
        p.archive.stat().st_size if p.declared_size is None else p.declared_size for p in parts
    ]
    for index, (part, size) in enumerate(zip(parts, sizes, strict=True)):
        log.info("extracting %s (%s, %s bytes) into %s", part.archive, part.kind, f"{size:,}", dest)
        before, skipped, start = tree.totals(), tree.skipped, time.monotonic()
        ratio = max_ratio if part.max_ratio is None else part.max_ratio
        tree.begin(part.archive, int(ratio * size) + SLACK, part.rename, entry=part.entry)
        try:
            _unpack_part(part, tree, entry)
        except _Clash as clash:
            raise _clash_error(parts, index, clash, entry) from None
        report = {key: value - before[key] for key, value in tree.totals().items()}
        report["skipped"] = tree.skipped - skipped
        report["seconds"] = round(time.monotonic() - start, 3)
        log.info(
            "extracted %s: %d members, %d files, %s bytes (%d skipped) in %.1f s",
            part.archive.name,
            report["members"],
            report["files"],
            f"{report['bytes']:,}",
            report["skipped"],
            report["seconds"],
        )
        reports.append(report)
    tree.finish()


def nested_member_path(member: str) -> str:
    """A nested archive's path in the tree, checked: relative, no `.`/`..`/empty component."""
    parts = member.split("/")
    if member.startswith("/") or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        raise CatalogError(
            f"nested archive {member!r}: give its path inside the extracted tree, relative, "
            "with '/' between folders and no '.' or '..' (e.g. caltech-101/Annotations.tar)"
        )
    return member


def _unpack_nested(
    root: Path, outer: Part, inner: Nested, entry: str, max_ratio: float, max_members: int
) -> dict:
    """Unpack the archive `inner.member` of the staged tree `root` into the folder that holds
    it, then remove it; that folder keeps its mtime."""
    rel = nested_member_path(inner.member)
    kind = resolve_kind(Path(rel), inner.kind)
    path = Path(root, rel)
    shown = f"{outer.archive} member {rel!r}"
    try:
        info = os.lstat(path)
        # A link (or a path through one) is not the member: only a file the archive holds.
        real = os.path.realpath(path) == os.path.join(os.path.realpath(root), rel)
    except (FileNotFoundError, NotADirectoryError):
        info, real = None, False
    if info is None or not stat.S_ISREG(info.st_mode) or not real:
        what = "is not in it" if info is None else "is not a regular file in it"
        raise CatalogError(
            f"{outer.archive} (catalog entry {entry}): the nested archive {rel!r} {what}. "
            "Check the entry's `nested` list in the catalog: each member is a path inside "
            "the extracted tree, as the archive holds it (e.g. caltech-101/Annotations.tar)."
        )
    holder = path.parent
    holder_info = holder.stat()
    # The holder folder becomes the root, so nothing of the inner archive lands outside it.
    inner_tree = _Tree(entry, holder, max_members, exclusive=True)
    inner_tree.existing = True
    inner_tree.begin(path, int(max_ratio * info.st_size) + SLACK, None, shown=shown)
    log.info("extracting nested %s (%s, %s bytes)", shown, kind, f"{info.st_size:,}")
    start = time.monotonic()
    try:
        if kind == "zip":
            _extract_zip(path, inner_tree)
        else:
            _extract_tar(path, kind, inner_tree)
        inner_tree.finish()
    except _Clash as clash:
        raise CorruptArchiveError(
            f"{shown} (catalog entry {entry}): its member {clash.name!r} would land on "
            f"{clash.rel!r}, which is already in the folder that holds it. This is not the "
            "archive expected (or the catalog's `nested` list names the wrong member). "
            "Nothing was extracted.",
            archive=outer.archive,
        ) from None
    except CORRUPT as err:
        raise _nested_corrupt(shown, outer, entry, err) from _inner_damage(rel, kind, err)
    except OSError as err:
        if (refused := inner_tree.refused_path(err)) is not None:
            raise refused from None
        if err.errno is not None:
            raise
        raise _nested_corrupt(shown, outer, entry, err) from _inner_damage(rel, kind, err)
    os.unlink(path)  # unpacked: keeping it would only double the space
    os.utime(holder, ns=(holder_info.st_atime_ns, holder_info.st_mtime_ns))
    report = {**inner_tree.totals(), "skipped": inner_tree.skipped, "nested": rel}
    report["seconds"] = round(time.monotonic() - start, 3)
    log.info(
        "extracted nested %s: %d members, %d files, %s bytes in %.1f s",
        rel,
        report["members"],
        report["files"],
        f"{report['bytes']:,}",
        report["seconds"],
    )
    return report


def _inner_damage(rel: str, kind: str, err: BaseException) -> CorruptArchiveError:
    """The cause of a nested archive's error, saying which member it is: vlprep.sources
    names the download as broken, with the cause."""
    damage = CorruptArchiveError(f"its member {rel!r}, a {kind} archive, is damaged: {err}")
    damage.__cause__ = err
    return damage


def _nested_corrupt(shown: str, outer: Part, entry: str, err: BaseException) -> CorruptArchiveError:
    """A damaged nested archive: the outer download is the file to blame (and fetch again)."""
    return CorruptArchiveError(
        f"{shown} (catalog entry {entry}), an archive inside it, is corrupt or truncated: "
        f"{err}. Nothing was extracted. Delete {outer.archive} so the next run downloads it "
        "again.",
        archive=outer.archive,
    )


def extract(
    archive: Path,
    dest: Path,
    *,
    kind: str,
    entry: str,
    declared_size: int | None = None,
    max_ratio: float = 8.0,
    max_members: int = 50_000_000,
    nested: Sequence[Nested] = (),
) -> dict:
    """Unpack `archive` into `dest`, which appears only once complete; return a report.

    `declared_size` is the archive's size in bytes from the catalog (default: on disk); the
    members may declare at most `max_ratio` times that, plus 16 MiB. `nested` archives
    (paths in the extracted tree) are then unpacked, in order, each into the folder holding
    it, and removed; each may declare `max_ratio` times its own size. Raises
    UnsafeArchiveError for a hostile or absurd archive, CorruptArchiveError for a damaged
    one and CatalogError for a nested archive that is not there; in every case nothing is
    left at `dest` or beside it. With `nested`, the report has a "nested" list of theirs.
    """
    archive = Path(archive)
    part = Part(archive, resolve_kind(archive, kind), declared_size)
    nested = [Nested(nested_member_path(n.member), n.kind) for n in nested]
    report, *inner = _unpack(
        [part],
        Path(dest),
        entry=entry,
        max_ratio=max_ratio,
        max_members=max_members,
        exclusive=False,
        check_file=None,
        nested=nested,
    )
    result = {key: report[key] for key in ("members", "files", "bytes", "seconds")}
    if nested:
        result["nested"] = inner
    return result


def extract_many(
    parts: Sequence[Part],
    dest: Path,
    *,
    entry: str,
    max_ratio: float = 8.0,
    max_members: int = 50_000_000,
    check_file: CheckFile | None = None,
) -> list[dict]:
    """Unpack several archives, in order, into one `dest` that appears only once all are done.

    Each part's files go where its `rename` says (default: their own paths); a part of kind
    "file" is itself the one file, linked in (see the module's docstring). A file landing on
    a path an earlier member took is a CorruptArchiveError naming both members. `check_file`,
    if given, sees each file just written. Limits and errors are those of `extract`, per
    archive, except that `max_members` counts them all. Returns a report per part: members,
    files, bytes, skipped (dropped directories, files renamed to None), seconds.
    """
    if not parts:
        raise CatalogError(f"catalog entry {entry}: no archives to extract into {dest}")
    resolved = [
        Part(
            Path(p.archive),
            FILE if p.kind == FILE else resolve_kind(Path(p.archive), p.kind),
            p.declared_size,
            p.rename,
            p.entry,
            p.max_ratio,
        )
        for p in parts
    ]
    return _unpack(
        resolved,
        Path(dest),
        entry=entry,
        max_ratio=max_ratio,
        max_members=max_members,
        exclusive=True,
        check_file=check_file,
    )
