"""Fuzzed Localized Narratives JSONL through the Open Images reader: every line gives the
script's `.txt`/`.json` bytes or a ConversionError naming the file and the line; a whole
build gives the tar a reference says, or a clear error with nothing at the output path."""

import json
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from vlprep.errors import ConversionError
from vlprep.openimages import build_openimages_wds, parse_line


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


SOURCE = Path("/data/open_images_validation_localized_narratives.jsonl")
DEEP = 3000  # past json's recursion limit

# ---- the reference: what the seed script writes for a line, or that it must be refused ----


def reference(raw: bytes) -> tuple[str, bytes, bytes] | None:
    """(image_id, .txt bytes, .json bytes) as openimages_to_wds.py writes them for a line it
    can use, or None for a line it cannot (not JSON, not a narrative, an id that is not a
    plain name, a caption that is not text)."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    image_id, caption = record.get("image_id"), record.get("caption")
    if not isinstance(image_id, str) or not image_id or set("./\\\0") & set(image_id):
        return None
    if not isinstance(caption, str):
        return None
    try:
        txt = caption.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return image_id, txt, json.dumps(record).encode("ascii")


# ---- lines ----------------------------------------------------------------------------------

IDS = ["0001eeaf4aed83f9", "000a1249af2bc5f0", "ünï", "id with space", "0" * 40]
ODD_IDS = ["", "a.b", "../x", "a/b", "a\\b", "a\0b", "\udcff", 7, None, ["x"]]
TEXT = st.text(max_size=30) | st.sampled_from(["", "In this image", "a\nb\r\n", '"\\'])
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.lists(st.fixed_dictionaries({"x": st.floats(0, 1), "y": st.floats(0, 1)}), max_size=3),
)


DAMAGES = ["odd id", "odd caption", "missing", "list", "truncated", "bad UTF-8"]
DAMAGES += ["lone surrogate", "huge int", "deep", "blank"]


@st.composite
def narrative_lines(draw, damages=(None,) * 6 + tuple(DAMAGES) + ("extra key",)) -> bytes:
    """One JSONL line, good or bad in one of the ways a damaged download is."""
    record = {
        "dataset_id": "open_images",
        "image_id": draw(st.sampled_from(IDS)),
        "annotator_id": draw(st.integers(0, 200)),
        "caption": draw(TEXT),
        "timed_caption": draw(st.lists(st.fixed_dictionaries({"utterance": TEXT}), max_size=2)),
        "traces": draw(st.lists(VALUES, max_size=2)),
    }
    keys = draw(st.permutations(list(record)))
    record = {k: record[k] for k in keys}
    damage = draw(st.sampled_from(damages))
    if damage == "odd id":
        record["image_id"] = draw(st.sampled_from(ODD_IDS))
    elif damage == "odd caption":
        record["caption"] = draw(st.sampled_from([None, 3, ["a"], {"a": "b"}]))
    elif damage == "missing":
        del record[draw(st.sampled_from(["image_id", "caption"]))]
    elif damage == "extra key":
        record["extra"] = draw(VALUES)
    ascii_only = draw(st.booleans())
    line = json.dumps(record, ensure_ascii=ascii_only, separators=(",", ":"))
    if damage == "list":
        line = f"[{line}]"
    elif damage == "truncated":
        line = line[: draw(st.integers(0, len(line) - 1))]
    elif damage == "lone surrogate":
        line = line.replace('"caption":"', '"caption":"\\ud83d', 1)
    elif damage == "huge int":
        line = line[:-1] + ',"n":' + "9" * 5000 + "}"
    elif damage == "deep":
        line = line[:-1] + ',"d":' + "[" * DEEP + "]" * DEEP + "}"
    elif damage == "blank":
        line = ""
    raw = line.encode("utf-8", "surrogatepass")
    if damage == "bad UTF-8":
        raw = raw.replace(b'"caption":"', b'"caption":"\xff', 1)
    return raw + draw(st.sampled_from([b"\n", b"\r\n"]))


@fuzz(300)
@given(raw=narrative_lines(), line=st.integers(1, 10**7))
@example(raw=b'{"image_id": "a", "caption": "c", "n": ' + b"9" * 5000 + b"}\n", line=1)
@example(raw=b"[" * DEEP + b"\n", line=2)
@example(raw=b'{"image_id": "a", "caption": "\\ud83d"}\n', line=3)
def test_a_line_gives_the_scripts_bytes_or_an_error_naming_file_and_line(raw, line):
    want = reference(raw)
    try:
        got = parse_line(raw, line, SOURCE)
    except ConversionError as err:
        assert str(err).startswith(f"{SOURCE}, line {line}"), err
        assert want is None, f"a usable line was refused: {err}"
        return
    assert want is not None, "an unusable line was accepted"
    assert (got.line, got.image_id, got.txt, got.json) == (line, *want)


# ---- whole builds ---------------------------------------------------------------------------

PRESENT = IDS[:3]  # the other ids' images are missing from the extracted folder


@pytest.fixture
def numbered(tmp_path):
    """A fresh folder per example (the examples share tmp_path)."""
    count = iter(range(1_000_000))
    return lambda: tmp_path / str(next(count))


def expected_tar(lines: list[bytes], images: Path) -> tuple[dict[str, bytes], list[str]]:
    """The one tar's members (a folder holds 2998 lines) when every line is usable, a later
    narrative of an image replacing an earlier one; and the ids whose image is missing."""
    members: dict[str, bytes] = {}
    missing = []
    for raw in lines:
        image_id, txt, doc = reference(raw)
        if image_id not in PRESENT:
            missing.append(image_id)
            continue
        members[f"{image_id}.jpg"] = (images / f"{image_id}.jpg").read_bytes()
        members[f"{image_id}.json"] = doc
        members[f"{image_id}.txt"] = txt
    return members, missing


@fuzz(120)
@given(
    lines=st.one_of(
        st.lists(narrative_lines(), max_size=12),
        st.lists(narrative_lines(damages=(None, "extra key")), max_size=12),
    ),
    allow_missing=st.booleans(),
    final_newline=st.booleans(),
)
def test_a_build_gives_the_reference_tar_or_fails_leaving_nothing(
    numbered, lines, allow_missing, final_newline
):
    folder = numbered()
    images = folder / "validation"
    images.mkdir(parents=True)
    for number, image_id in enumerate(PRESENT):
        (images / f"{image_id}.jpg").write_bytes(b"\xff\xd8 jpeg %d \xff\xd9" % number)
    if lines and not final_newline:
        lines[-1] = lines[-1].rstrip(b"\r\n")
        if not lines[-1]:  # a blank last line without its newline is no line at all
            lines.pop()
    source = folder / "narratives.jsonl"
    source.write_bytes(b"".join(lines))
    out = folder / "out" / "openimages_v7_valid"
    usable = all(reference(raw) is not None for raw in lines)
    try:
        report = build_openimages_wds(source, images, out, allow_missing=allow_missing)
    except ConversionError as err:
        assert str(source) in str(err), err
        assert not out.parent.exists() or os.listdir(out.parent) == []  # no tar, no temporary
        # refused: a bad line, no line at all, or images missing and not allowed
        missing = expected_tar(lines, images)[1] if usable else []
        assert not usable or not lines or (missing and not allow_missing), err
        event("refused")
        return
    assert usable and lines
    members, missing = expected_tar(lines, images)
    assert not missing or allow_missing
    assert (report["lines"], report["images_missing"]) == (len(lines), len(missing))
    assert sorted(os.listdir(out)) == ["00000.tar"]
    with tarfile.open(out / "00000.tar") as tar:
        got = {info.name: tar.extractfile(info).read() for info in tar.getmembers()}
        assert [info.name for info in tar.getmembers()] == sorted(members)
    assert got == members
    event("built")
