"""Fuzzed archives through the extractor: hostile or broken members fail with a vlprep error
naming the archive (and the member), never write outside the target, and leave nothing at the
final path; benign ones come out exactly as a reference model of tar/zip semantics says."""

import gzip
import io
import os
import shutil
import stat
import struct
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from vlprep.errors import UnsafeArchiveError, VlprepError
from vlprep.extract import Nested, extract
from vlprep.flatten import flatten_archives

ENTRY = "fuzz_entry"
ESCAPE = "@ESCAPE@"  # stands for the absolute path of the world's sentinel folder


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


# ---- members and the archives that hold them ----------------------------------------------


@dataclass(frozen=True)
class Member:
    kind: str  # file, dir, symlink, hardlink, fifo, chardev, blockdev
    name: str
    data: bytes = b""
    target: str = ""  # symlink / hardlink target
    declared: int | None = None  # a size header that lies (None: the true size)
    method: int = zipfile.ZIP_STORED  # zip compression method


# Few components, so that names collide (duplicates, a file where a folder is).
COMPONENTS = st.sampled_from(["a", "b", "c", "é", "日本", "🎉 x", "sp ace", "a.b", "x" * 256])
PLAIN_PATHS = st.lists(COMPONENTS, min_size=1, max_size=3).map("/".join)
DANGEROUS_PATHS = st.one_of(
    st.sampled_from(
        [
            "..",
            "../a",
            "a/../../b",
            "../../sentinel/evil",
            "../../../evil",
            "./a",
            "a//b",
            "a/./b",
            ".",
            "",
            "a\\..\\..\\evil",
            "C:/evil",
            "C:\\evil",
            "\\evil",
            "/",
            f"{ESCAPE}/evil",
        ]
    ),
    PLAIN_PATHS.map(lambda p: f"{ESCAPE}/{p}"),
    PLAIN_PATHS.map(lambda p: "../" + p),
)
NAMES = st.one_of(PLAIN_PATHS, PLAIN_PATHS, DANGEROUS_PATHS)
LINK_TARGETS = st.one_of(
    PLAIN_PATHS,
    st.sampled_from(["..", "../..", "../../sentinel", "a/../..", ".", "", "/etc", ESCAPE]),
    PLAIN_PATHS.map(lambda p: "../" + p),
    PLAIN_PATHS.map(lambda p: "../../" + p),
)
PAYLOADS = st.one_of(st.binary(max_size=64), st.just(b""), st.just(b"\x00" * 3000))


@st.composite
def members(draw, *, zip_format: bool) -> Member:
    kinds = ["file"] * 4 + ["dir", "symlink", "fifo", "chardev"]
    kinds += ["symlink"] if zip_format else ["hardlink", "blockdev"]
    kind = draw(st.sampled_from(kinds))
    name = draw(NAMES)
    if kind == "file":
        data = draw(PAYLOADS)
        declared = draw(
            st.one_of(st.none(), st.none(), st.none(), st.sampled_from([0, 1, 10**12, 2**33]))
        )
        methods = [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, 9, 99]
        method = draw(st.sampled_from(methods)) if zip_format else zipfile.ZIP_STORED
        return Member(kind, name, data, declared=declared, method=method)
    if kind == "symlink":
        return Member(kind, name, target=draw(LINK_TARGETS))
    if kind == "hardlink":
        return Member(kind, name, target=draw(st.one_of(PLAIN_PATHS, DANGEROUS_PATHS)))
    return Member(kind, name)


@st.composite
def archives(draw) -> tuple[str, list[Member]]:
    fmt = draw(st.sampled_from(["zip", "tar", "tar.gz"]))
    found = draw(st.lists(members(zip_format=fmt == "zip"), max_size=8))
    return fmt, found


def concrete(member: Member, escape: Path) -> Member:
    """The member with the world's absolute sentinel path put in."""
    return replace(
        member,
        name=member.name.replace(ESCAPE, str(escape)),
        target=member.target.replace(ESCAPE, str(escape)),
    )


TAR_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chardev": tarfile.CHRTYPE,
    "blockdev": tarfile.BLKTYPE,
}


def tar_bytes(found: list[Member]) -> bytes:
    """A tar written header by header, so a size field may lie about the data after it."""
    out = io.BytesIO()
    for member in found:
        info = tarfile.TarInfo(member.name)
        info.type = TAR_TYPES[member.kind]
        info.mtime = 1_600_000_000
        info.mode = 0o755 if member.kind == "dir" else 0o644
        info.linkname = member.target
        info.size = len(member.data) if member.kind == "file" else 0
        if member.declared is not None:
            info.size = member.declared
        out.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if member.kind == "file":
            out.write(member.data + bytes(-len(member.data) % tarfile.BLOCKSIZE))
    out.write(bytes(2 * tarfile.BLOCKSIZE))
    return out.getvalue()


# what zipfile writes; another method (9 deflate64, 99 AES) is patched into the headers
WRITABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
ZIP_MODES = {
    "file": stat.S_IFREG | 0o644,
    "dir": stat.S_IFDIR | 0o755,
    "symlink": stat.S_IFLNK | 0o777,
    "fifo": stat.S_IFIFO | 0o644,
    "chardev": stat.S_IFCHR | 0o644,
}


def zip_bytes(found: list[Member]) -> bytes:
    """A zip of the members; lying sizes and unknown methods are patched into its headers."""
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as zf:
        warnings.simplefilter("ignore")  # duplicate names are the point
        for member in found:
            name = member.name + ("/" if member.kind == "dir" else "")
            info = zipfile.ZipInfo(name, (2020, 1, 2, 3, 4, 6))
            info.create_system = 3
            info.external_attr = ZIP_MODES[member.kind] << 16
            method = member.method if member.method in WRITABLE_METHODS else 0
            info.compress_type = method if member.kind == "file" else zipfile.ZIP_STORED
            zf.writestr(info, member.target.encode() if member.kind == "symlink" else member.data)
    data = bytearray(out.getvalue())
    for index, header in enumerate(_central_headers(data)):
        member = found[index]
        local = struct.unpack_from("<I", data, header + 42)[0]
        if member.declared is not None:
            struct.pack_into("<I", data, header + 24, member.declared % 2**32)
            struct.pack_into("<I", data, local + 22, member.declared % 2**32)
        if member.method not in WRITABLE_METHODS:
            struct.pack_into("<H", data, header + 10, member.method)
            struct.pack_into("<H", data, local + 8, member.method)
    return bytes(data)


def _central_headers(data: bytes) -> list[int]:
    """Offsets of the central directory's headers, read from the end record."""
    end = data.rfind(b"PK\x05\x06")
    count, _, start = struct.unpack_from("<HII", data, end + 10)
    offsets, pos = [], start
    for _ in range(count):
        offsets.append(pos)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        pos += 46 + name_len + extra_len + comment_len
    return offsets


def write_archive(path: Path, fmt: str, found: list[Member]) -> None:
    if fmt == "zip":
        path.write_bytes(zip_bytes(found))
        return
    raw = tar_bytes(found)
    if fmt == "tar.gz":
        raw = gzip.compress(raw, mtime=0)
    path.write_bytes(raw)


# ---- the world around the target, and what extraction may change in it ---------------------


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` (links not followed): its kind and its content or target."""
    seen: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                seen[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                seen[rel] = ("dir",)
            elif stat.S_ISREG(info.st_mode):
                seen[rel] = ("file", Path(path).read_bytes())
            else:
                seen[rel] = ("special", stat.S_IFMT(info.st_mode))
    return seen


def make_world(tmp_path: Path) -> Path:
    """A fresh world: sentinel/ beside store/ (the target's parent, with a neighbour file),
    one folder deeper than the snapshot's root so that `../../../x` from the target (three
    levels down) still lands where the snapshot sees it."""
    world = Path(tempfile.mkdtemp(dir=tmp_path)) / "world"
    (world / "sentinel" / "sub").mkdir(parents=True)
    (world / "sentinel" / "keep.txt").write_bytes(b"keep")
    (world / "store").mkdir()
    (world / "store" / "neighbour.txt").write_bytes(b"neighbour")
    (world / "downloads").mkdir()
    return world


def without(tree: dict[str, tuple], prefix: str) -> dict[str, tuple]:
    return {rel: v for rel, v in tree.items() if rel != prefix and not rel.startswith(prefix + "/")}


def normalized(name: str) -> str:
    """A member's path in the target, as extract normalizes a name it accepts."""
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def model(found: list[Member], fmt: str) -> dict[str, tuple]:
    """What a successful extraction leaves in the target: per path, the last member's file
    (its bytes; a hard link's are its target's at that point), symlink or folder. A zip's
    symlinks are all read before its files are written, so there a file or folder of the same
    path wins whatever the order."""
    final: dict[str, tuple] = {}
    for member in found:
        rel = normalized(member.name)
        if member.kind == "dir" or (fmt == "zip" and member.name.endswith("/")):
            final[rel] = ("dir",)
        elif member.kind == "file":
            final[rel] = ("file", member.data)
        elif member.kind == "symlink":
            if fmt != "zip" or final.get(rel, ("link",))[0] == "link":
                final[rel] = ("link", member.target)
        elif member.kind == "hardlink":
            final[rel] = final[normalized(member.target)]
    for rel in list(final):  # parent folders appear as folders
        while "/" in rel:
            rel = rel.rpartition("/")[0]
            final.setdefault(rel, ("dir",))
    final.pop("", None)
    return final


def check_error_names_the_member(err: VlprepError, archive: Path, found: list[Member]) -> None:
    message = str(err)
    assert str(archive) in message, message
    if isinstance(err, UnsafeArchiveError):
        named = {m.name for m in found} | {m.name + "/" for m in found}
        named |= {normalized(m.name) for m in found}
        assert any(f"member {n!r}" in message for n in named), message


def inside(dest: Path) -> None:
    """Every path of the extracted tree resolves inside it (a symlink to `.` is the tree)."""
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            real = os.path.realpath(os.path.join(folder, name))
            assert real == str(dest) or real.startswith(str(dest) + os.sep), real


@contextmanager
def watched(world: Path, dest: Path) -> Iterator[dict]:
    """Run the block (an extraction into `dest`), catching a vlprep error into `outcome`;
    then check that nothing around the target changed, and nothing is at `dest` after an
    error. The world is removed afterwards."""
    root = world.parent
    before = snapshot(root)
    outcome: dict = {}
    try:
        yield outcome
    except VlprepError as err:
        outcome["error"] = err
    after = snapshot(root)
    dest_rel = os.path.relpath(dest, root)
    assert without(after, dest_rel) == before
    if "error" in outcome:
        assert dest_rel not in after
    else:
        inside(dest)
        outcome["tree"] = snapshot(dest)
    shutil.rmtree(root)


# ---- the properties -------------------------------------------------------------------------


def extract_fuzzed(tmp_path: Path, fmt: str, found: list[Member]) -> tuple[dict, list[Member]]:
    """Extract the members' archive in a fresh world: (outcome, the concrete members)."""
    world = make_world(tmp_path)
    found = [concrete(m, world / "sentinel") for m in found]
    archive = world / "downloads" / f"fuzz.{fmt}"
    write_archive(archive, fmt, found)
    dest = world / "store" / "out"
    with watched(world, dest) as outcome:
        outcome["report"] = extract(archive, dest, kind="auto", entry=ENTRY)
    if "error" in outcome:
        check_error_names_the_member(outcome["error"], archive, found)
    event(type(outcome.get("error")).__name__)  # the mix, with --hypothesis-show-statistics
    return outcome, found


@fuzz(600)
@given(case=archives())
@example(case=("tar", [Member("file", "a"), Member("dir", "a")]))
@example(case=("tar", [Member("dir", "a"), Member("file", "a")]))
@example(case=("zip", [Member("file", "a"), Member("file", "a/b")]))
@example(case=("tar", [Member("file", "x" * 256)]))
@example(case=("tar", [Member("file", "f", b"1"), Member("hardlink", "f", target="f")]))
@example(case=("zip", [Member("symlink", "l", target="a\0b")]))
@example(case=("zip", [Member("file", "f", b"data", method=99)]))
@example(case=("zip", [Member("file", "f", b"data", method=9)]))
@example(case=("zip", [Member("file", "")]))
def test_any_archive_extracts_inside_the_target_or_fails_cleanly(tmp_path, case):
    """Whatever the members: a vlprep error naming the archive (and, for a refused member,
    the member), or a tree wholly inside the target that matches the reference model; either
    way nothing outside the target changed and a failure left nothing at the final path."""
    fmt, found = case
    outcome, found = extract_fuzzed(tmp_path, fmt, found)
    # a tar size field that lies moves the member boundaries: the bytes then say something
    # else (which may well be a valid archive), so only the safety properties apply
    honest = all(m.declared in (None, len(m.data)) for m in found)
    if "error" not in outcome and honest:
        assert outcome["tree"] == model(found, fmt)


SAFE_COMPONENTS = st.sampled_from(["a", "b", "é", "日本", "🎉 x", "sp ace", "a.b", "x" * 200])


@st.composite
def benign_archives(draw) -> tuple[str, list[Member]]:
    """Members that any careful extractor must accept: plain names (unicode, duplicates of
    files), folders, hard links to earlier files, symlinks to files inside."""
    fmt = draw(st.sampled_from(["zip", "tar", "tar.gz"]))
    folders = draw(st.lists(SAFE_COMPONENTS, max_size=2, unique=True))
    found: list[Member] = [Member("dir", d) for d in folders if draw(st.booleans())]
    files: list[str] = []
    for _ in range(draw(st.integers(0, 8))):
        folder = draw(st.sampled_from(["", *folders]))
        name = draw(SAFE_COMPONENTS.filter(lambda c: c not in folders))
        path = f"{folder}/{name}" if folder else name
        roll = draw(st.integers(0, 5))
        if roll == 0 and files and fmt != "zip":
            found.append(Member("hardlink", path, target=draw(st.sampled_from(files))))
        elif roll == 1 and files and path not in files:
            target = draw(st.sampled_from(files))
            found.append(Member("symlink", path, target=os.path.relpath(target, folder or ".")))
        else:
            method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
            found.append(Member("file", path, draw(PAYLOADS), method=method))
            files.append(path)
    # a symlink is kept only where no later member lands and no hard link points: a hard
    # link to a symlink member is refused (it could point anywhere once created)
    last = {m.name: i for i, m in enumerate(found)}
    targets = {m.target for m in found if m.kind == "hardlink"}
    found = [
        m
        for i, m in enumerate(found)
        if m.kind != "symlink" or (last[m.name] == i and m.name not in targets)
    ]
    return fmt, found


@fuzz(150)
@given(case=benign_archives())
@example(case=("tar", []))
@example(case=("zip", []))
def test_benign_archives_extract_exactly(tmp_path, case):
    """Nothing a well-formed archive holds is refused or lost."""
    fmt, found = case
    outcome, found = extract_fuzzed(tmp_path, fmt, found)
    assert "error" not in outcome, outcome["error"]
    assert outcome["tree"] == model(found, fmt)


@fuzz(100)
@given(outer=archives(), inner=archives())
def test_nested_archive_stays_in_its_folder(tmp_path, outer, inner):
    """An archive inside the archive (unpacked into the folder holding it) is held to the same
    rules: nothing outside the target, nothing at the final path on failure."""
    (outer_fmt, outer_members), (inner_fmt, inner_members) = outer, inner
    world = make_world(tmp_path)
    inner_members = [concrete(m, world / "sentinel") for m in inner_members]
    outer_members = [concrete(m, world / "sentinel") for m in outer_members]
    inner_path = world / f"inner.{inner_fmt}"
    write_archive(inner_path, inner_fmt, inner_members)
    holder = Member("file", f"pack/inner.{inner_fmt}", inner_path.read_bytes())
    inner_path.unlink()
    archive = world / "downloads" / f"outer.{outer_fmt}"
    write_archive(archive, outer_fmt, [*outer_members, holder])
    dest = world / "store" / "out"
    with watched(world, dest) as outcome:
        extract(archive, dest, kind="auto", entry=ENTRY, nested=[Nested(holder.name, "auto")])
    if "error" in outcome:
        assert str(archive) in str(outcome["error"]), outcome["error"]


TOP = "VG_100K"


def damaged_jpeg(data: bytes) -> bool:
    """What vlprep.flatten's sniffer must flag: empty, or no SOI first / EOI last (padding
    of NUL and whitespace after it allowed)."""
    return not (
        data.startswith(b"\xff\xd8\xff") and data.rstrip(b"\0 \t\r\n").endswith(b"\xff\xd9")
    )


@st.composite
def flatten_inputs(draw) -> list[list[Member]]:
    """Two zips that should each hold files right under TOP/, with stray members mixed in."""
    good = st.builds(
        lambda name, data: Member("file", f"{TOP}/{name}", data),
        st.sampled_from(["1.jpg", "2.jpg", "3.jpg", "é.jpg", "a.txt"]),
        st.one_of(st.just(b"\xff\xd8\xff\xe0 body \xff\xd9\0"), st.binary(max_size=16)),
    )
    stray = st.one_of(members(zip_format=True), st.just(Member("dir", TOP)))
    parts = st.lists(st.one_of(good, good, good, stray), max_size=6)
    return [draw(parts), draw(parts)]


@fuzz(100)
@given(zips=flatten_inputs())
def test_flatten_merges_by_base_name_or_fails_cleanly(tmp_path, zips):
    """vlprep.flatten over fuzzed zips: the flat folder holds each file under its base name,
    or a vlprep error names an archive; nothing outside the target changes."""
    world = make_world(tmp_path)
    archives = []
    for index, found in enumerate(zips):
        found = [concrete(m, world / "sentinel") for m in found]
        path = world / "downloads" / f"images{index}.zip"
        write_archive(path, "zip", found)
        archives.append((path, found))
    dest = world / "store" / "flat"
    with watched(world, dest) as outcome:
        outcome["report"] = flatten_archives(
            [path for path, _ in archives], dest, top_dirs=[TOP, TOP], entry=ENTRY
        )
    if "error" in outcome:
        assert any(str(path) in str(outcome["error"]) for path, _ in archives), outcome["error"]
        return
    files = [m for _, found in archives for m in found if m.kind == "file"]
    expected = {m.name.rpartition("/")[2]: ("file", m.data) for m in files}
    assert len(expected) == len(files)  # two files of one base name fail
    assert outcome["tree"] == expected
    suspects = {s["name"] for s in outcome["report"]["suspect_images"]}
    assert suspects == {
        n for n, (_, data) in expected.items() if n.endswith(".jpg") and damaged_jpeg(data)
    }
