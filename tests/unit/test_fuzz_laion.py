"""Fuzzed BLIP JSON through the LAION converter, against a reference written from its rule:
skip mode keeps exactly the good records (never loses one, never keeps a bad one); fail mode
raises a ConversionError naming the file and the first bad record, and writes nothing.

test_laion.py covers the byte-level layouts and the resync after broken JSON at length; these
examples add values json itself chokes on (numbers too long for int(), nesting too deep),
duplicate keys, NaN, BOMs, and random damage to a whole file."""

import csv
import io
import json
import re

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from vlprep import laion
from vlprep.errors import ConversionError
from vlprep.laion import convert_json_to_tsv


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


# ---- the reference: one item at a time through json and csv ---------------------------------


def is_good(item: bytes) -> bool:
    """laion's rule: the item decodes (json, the file read as UTF-8 with surrogateescape) as an
    object whose caption and url are strings of valid Unicode."""
    try:
        obj = json.loads(item.decode("utf-8", "surrogateescape"))
    except (ValueError, RecursionError):  # broken JSON, or a value json cannot build
        return False
    if not isinstance(obj, dict) or not all(isinstance(obj.get(c), str) for c in laion.COLUMNS):
        return False
    try:
        (obj["caption"] + obj["url"]).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def reference_rows(items: list[bytes]) -> bytes:
    """The TSV of the good items, header first, as csv.writer(delimiter="\\t") writes it."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter="\t")
    writer.writerow(laion.COLUMNS)
    for item in items:
        if is_good(item):
            obj = json.loads(item.decode("utf-8"))
            writer.writerow([obj["caption"], obj["url"]])
    return out.getvalue().encode("utf-8")


# ---- items ----------------------------------------------------------------------------------

TEXT = st.one_of(
    st.text(max_size=20),
    st.text(st.sampled_from('ab ,:{}[]"\\\t\n\r\x00\x1fé東🎉\u2028'), max_size=20),
    st.just("a dog on a sofa"),
)
URLS = st.integers(0, 10**9).map(lambda n: f"http://h/{n}.jpg")
DEEP = 3000  # past json's recursion limit (and far past anything a real record holds)
ODD_VALUES = st.sampled_from(
    [
        "NaN",
        "-Infinity",
        "1e999",
        "-0.0",
        "9" * 4000,  # a long number int() still takes
        "9" * 5000,  # past int()'s 4300 digits: json raises ValueError, not JSONDecodeError
        "[" * DEEP + "]" * DEEP,  # past the recursion limit: RecursionError
        '{"a": ' * DEEP + "1" + "}" * DEEP,
        '[1, {"a": "b"}]',
        "null",
        "true",
    ]
)
GAPS = st.sampled_from(["", " ", "\n  ", "\t", "\r\n"])


@st.composite
def good_item(draw) -> bytes:
    """A record json decodes to an object with the columns as strings: other key orders,
    extra keys with odd values, a duplicated column (json keeps the last)."""
    fields = [("caption", json.dumps(draw(TEXT))), ("url", json.dumps(draw(URLS)))]
    if draw(st.booleans()):
        fields.reverse()
    for _ in range(draw(st.integers(0, 2))):
        extra = draw(st.sampled_from(["extra", "similarity", "caption", "url"]))
        value = draw(st.one_of(ODD_VALUES, TEXT.map(json.dumps)))
        if extra in laion.COLUMNS:  # an earlier duplicate, overridden by the column after it
            fields.insert(0, (extra, value))
        else:
            fields.insert(draw(st.integers(0, len(fields))), (extra, value))
    gap = draw(GAPS)
    return ("{" + gap + f",{gap}".join(f'"{k}":{gap}{v}' for k, v in fields) + "}").encode()


@st.composite
def bad_item(draw) -> bytes:
    """An item that is not a good record: it decodes to something else, or it does not
    decode (json's errors, or values it cannot build)."""
    kind = draw(
        st.sampled_from(
            [
                "odd column",
                "missing column",
                "not an object",
                "lone surrogate",
                "invalid UTF-8",
                "raw control",
                "bad escape",
                "truncated",
                "dropped quote",
            ]
        )
    )
    caption, url = json.dumps(draw(TEXT)), json.dumps(draw(URLS))
    if kind == "odd column":
        return f'{{"caption": {draw(ODD_VALUES)}, "url": {url}}}'.encode()
    if kind == "missing column":
        return f'{{"caption": {caption}, "extra": {draw(ODD_VALUES)}}}'.encode()
    if kind == "not an object":
        return draw(ODD_VALUES).encode()
    if kind == "lone surrogate":
        return f'{{"caption": "x\\ud83d", "url": {url}}}'.encode()
    if kind == "invalid UTF-8":
        return b'{"caption": "caf\xc3 ", "url": ' + url.encode() + b"}"
    if kind == "raw control":
        return b'{"caption": "a\x01b", "url": ' + url.encode() + b"}"
    if kind == "bad escape":
        return f'{{"caption": "a\\x41", "url": {url}}}'.encode()
    text = f'{{"caption": {caption}, "url": {url}}}'.encode()
    if kind == "truncated":
        return text[: draw(st.integers(1, len(text) - 1))]
    quotes = [i for i, byte in enumerate(text) if byte == ord('"')]
    i = draw(st.sampled_from(quotes))
    return text[:i] + text[i + 1 :]


@st.composite
def json_files(draw) -> tuple[bytes, list[bytes], list[int]]:
    """(file, items, each item's offset): good and bad items, each bad one followed by a good
    one or the end (two broken ones side by side are test_laion's subject)."""
    items: list[bytes] = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 2)) == 0 and (not items or is_good(items[-1])):
            items.append(draw(bad_item()))
        else:
            items.append(draw(good_item()))
    head = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\n"])) + b"[" + draw(GAPS).encode()
    sep = (draw(GAPS) + "," + draw(GAPS)).encode()
    offsets, at = [], len(head)
    for item in items:
        offsets.append(at)
        at += len(item) + len(sep)
    return head + sep.join(items) + draw(GAPS).encode() + b"]", items, offsets


# ---- the properties -------------------------------------------------------------------------


def array_of(*items: bytes) -> tuple[bytes, list[bytes], list[int]]:
    """What json_files draws, for explicit examples: `[a, b, ...]`."""
    offsets = [1 + sum(len(item) + 2 for item in items[:i]) for i in range(len(items))]
    return b"[" + b", ".join(items) + b"]", list(items), offsets


HUGE_INT = b'{"caption": "c", "url": "u", "n": ' + b"9" * 5000 + b"}"
DEEP_LIST = b'{"caption": "c", "url": "u", "d": ' + b"[" * DEEP + b"]" * DEEP + b"}"
GOOD = b'{"caption": "a", "url": "http://h/1.jpg"}'


@fuzz(150)
@given(case=json_files(), workers=st.sampled_from([1, 1, 1, 2]))
@example(case=array_of(HUGE_INT, GOOD), workers=1)
@example(case=array_of(DEEP_LIST, GOOD), workers=1)
@example(case=array_of(GOOD, HUGE_INT, GOOD), workers=2)
@example(case=array_of(GOOD, DEEP_LIST), workers=2)
def test_skip_keeps_exactly_the_good_records_and_fail_names_the_first_bad_one(
    tmp_path, case, workers
):
    data, items, offsets = case
    src = tmp_path / "in.json"
    src.write_bytes(data)
    expected = reference_rows(items)
    good = sum(map(is_good, items))
    options = {"workers": workers, "task_bytes": 256}

    dest = tmp_path / "skip.tsv"
    dest.unlink(missing_ok=True)  # the examples share tmp_path
    report = convert_json_to_tsv(src, dest, on_error="skip", **options)
    assert dest.read_bytes() == expected  # no good record lost, no bad one kept
    assert report["rows"] == good
    assert (report["skipped"] > 0) == (good < len(items)) and report["skipped"] <= len(items)

    dest = tmp_path / "fail.tsv"
    dest.unlink(missing_ok=True)
    bad = [i for i, item in enumerate(items) if not is_good(item)]
    if not bad:
        assert convert_json_to_tsv(src, dest, **options)["rows"] == good
        assert dest.read_bytes() == expected
        return
    event("fail mode raises")
    with pytest.raises(ConversionError) as err:
        convert_json_to_tsv(src, dest, **options)
    message = str(err.value)
    assert message.startswith(f"{src}: malformed record at byte "), message
    first = offsets[bad[0]]
    match = re.search(r"at byte (\d+)(?: \(record starts at byte (\d+)\))?", message)
    start = int(match.group(2) or match.group(1))
    assert start == first, message
    assert not dest.exists()


@fuzz(150)
@given(
    case=json_files(),
    damage=st.lists(
        st.tuples(st.integers(0, 10**6), st.sampled_from(["drop", "flip", "insert"])),
        min_size=1,
        max_size=4,
    ),
    filler=st.sampled_from(
        [
            b"{",
            b"}",
            b'"',
            b",",
            b"]",
            b"[",
            b"\\",
            b"\x00",
            b"\xff",
            b" ",
            b"[" * DEEP,
            b"9" * 5000,
        ]
    ),
)
@example(case=array_of(), damage=[(0, "drop")], filler=b"[")
@example(case=array_of(GOOD), damage=[(43, "insert")], filler=b",")
@example(case=array_of(GOOD), damage=[(1, "insert")], filler=b"[" * DEEP)
def test_random_damage_gives_rows_or_a_clear_error(tmp_path, case, damage, filler):
    """A file cut, patched or stuffed anywhere: a report, or a ConversionError naming the file
    with nothing written; never another exception. If the damage leaves a JSON array, skip
    mode keeps exactly its good records."""
    data = bytearray(case[0])
    for where, how in damage:
        at = where % (len(data) + 1)
        if how == "drop":
            del data[at : at + 1]
        elif how == "flip" and at < len(data):
            data[at] ^= 0x20
        else:
            data[at:at] = filler
    src = tmp_path / "in.json"
    src.write_bytes(bytes(data))
    for on_error in ("skip", "fail"):
        dest = tmp_path / f"{on_error}.tsv"
        dest.unlink(missing_ok=True)  # the examples share tmp_path
        try:
            convert_json_to_tsv(src, dest, on_error=on_error)
        except ConversionError as err:
            assert str(src) in str(err)
            assert not dest.exists()
    try:
        items = json.loads(bytes(data).decode("utf-8", "surrogateescape").lstrip("\ufeff"))
    except (ValueError, RecursionError):
        event("no longer JSON")  # the mix, with --hypothesis-show-statistics
        return
    event("still JSON")
    if isinstance(items, list) and (tmp_path / "skip.tsv").exists():
        texts = [
            json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass") for item in items
        ]
        expected = reference_rows([t if is_good(t) else b"null" for t in texts])
        assert (tmp_path / "skip.tsv").read_bytes() == expected
