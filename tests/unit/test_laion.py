"""BLIP JSON -> MiniGPT-4 TSV: the seed's bytes where the seed is right, safe where it is not."""

import csv
import io
import itertools
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.seed_convert_laion import seed_convert
from standin.laion import make_blip_json
from vlprep import laion
from vlprep.errors import ConversionError
from vlprep.laion import convert_json_to_tsv

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


@pytest.mark.parametrize(
    ("pretty", "ensure_ascii", "seed"),
    [(False, False, 1), (False, True, 2), (True, True, 3), (True, False, 4)],
)
def test_same_bytes_as_the_seed(tmp_path, pretty, ensure_ascii, seed):
    src = tmp_path / "in.json"
    rows = make_blip_json(src, rows=6000, pretty=pretty, ensure_ascii=ensure_ascii, seed=seed)
    seed_convert(src, tmp_path / "seed.tsv")
    expected = (tmp_path / "seed.tsv").read_bytes()
    for workers in (1, 2):
        report = convert_json_to_tsv(
            src, tmp_path / f"ours{workers}.tsv", workers=workers, task_bytes=64 << 10
        )
        assert report["rows"] == rows and report["skipped"] == 0
        assert (tmp_path / f"ours{workers}.tsv").read_bytes() == expected


def test_quirks_are_quoted_like_csv_and_read_back_by_pandas(tmp_path):
    src = tmp_path / "in.json"
    records = [
        {"caption": "tab\there", "url": "http://a/1.jpg"},
        {"caption": 'say "cheese"', "url": "http://a/2.jpg?x=1&y=2"},
        {"caption": "two\nlines\r\nand cr\r", "url": "http://a/3.jpg"},
        {"caption": "", "url": "http://a/4.jpg"},
        {"caption": "東京 🎉 مرحبا", "url": "http://a/größe/5.jpg"},
        {"caption": "back\\slash \\", "url": "http://a/6.jpg"},
        {"caption": "x" * 100_000, "url": "http://a/7.jpg"},
        {"caption": "ctl \u0001 del \u007f", "url": "http://a/8.jpg"},
    ]
    text = json.dumps(records, ensure_ascii=False).replace("http://a/6", "http:\\/\\/a\\/6")
    write(src, text)
    seed_convert(src, tmp_path / "seed.tsv")
    convert_json_to_tsv(src, tmp_path / "ours.tsv")
    assert (tmp_path / "ours.tsv").read_bytes() == (tmp_path / "seed.tsv").read_bytes()
    df = pd.read_csv(tmp_path / "ours.tsv", sep="\t", keep_default_na=False)
    assert list(df.columns) == ["caption", "url"]
    assert df["caption"].tolist()[:2] == ["tab\there", 'say "cheese"']
    assert df["caption"][3] == "" and df["caption"][4] == "東京 🎉 مرحبا"
    assert len(df["caption"][6]) == 100_000 and df["url"][5] == "http://a/6.jpg"


def test_generated_file_reads_back_in_pandas(tmp_path):
    src = tmp_path / "in.json"
    make_blip_json(src, rows=3000, seed=7)
    convert_json_to_tsv(src, tmp_path / "out.tsv")
    df = pd.read_csv(tmp_path / "out.tsv", sep="\t", keep_default_na=False)
    data = json.loads(src.read_text("utf-8"))
    # pandas' C parser turns a quoted CR LF / lone CR inside a field into LF, as img2dataset sees
    norm = [r["caption"].replace("\r\n", "\n") for r in data]
    got = [c.replace("\r\n", "\n") for c in df["caption"]]
    assert len(df) == len(data)
    assert sum(a == b for a, b in zip(got, norm, strict=True)) >= len(data) - 10
    assert df["url"].tolist() == [r["url"] for r in data]


def test_other_key_order_keeps_columns(tmp_path):
    src = write(
        tmp_path / "in.json",
        '[{"caption": "a", "url": "u1"}, {"url": "u2", "caption": "b"},'
        ' {"caption": "c", "url": "u3", "extra": 1}]',
    )
    report = convert_json_to_tsv(src, tmp_path / "out.tsv")
    assert (tmp_path / "out.tsv").read_bytes() == b"caption\turl\r\na\tu1\r\nb\tu2\r\nc\tu3\r\n"
    assert report["rows"] == 3 and report["extra_keys"] == 1


MALFORMED = [
    ('[{"caption": "a", "url": "u"}, {"caption": "b"}, {"caption": "c", "url": "w"}]', "'url'"),
    (
        '[{"caption": "a", "url": "u"}, {"caption": 5, "url": "v"}, {"caption": "c", "url": "w"}]',
        "int",
    ),
    (
        '[{"caption": "a", "url": "u"}, {"caption": "b, "url": "v"}, {"caption": "c", "url": "w"}]',
        "delimiter",
    ),
    (
        '[{"caption": "a", "url": "u"}, {"caption": "\\ud83d", "url": "v"}, '
        '{"caption": "c", "url": "w"}]',
        "surrogate",
    ),
    ('[{"caption": "a", "url": "u"}, "junk", {"caption": "c", "url": "w"}]', "object"),
]


@pytest.mark.parametrize(("text", "why"), MALFORMED)
def test_malformed_fails_with_offset_and_excerpt(tmp_path, text, why):
    src = write(tmp_path / "in.json", text)
    dest = tmp_path / "out.tsv"
    with pytest.raises(ConversionError) as err:
        convert_json_to_tsv(src, dest)
    msg = str(err.value)
    assert str(src) in msg and why in msg
    offset = int(re.search(r"at byte (\d+)", msg).group(1))
    assert 30 <= offset < len(text) - 20  # within the second record
    assert "near: " in msg
    assert not dest.exists() and list(tmp_path.iterdir()) == [src]


@pytest.mark.parametrize(("text", "why"), MALFORMED)
def test_skip_mode_counts_and_keeps_the_rest(tmp_path, text, why):
    src = write(tmp_path / "in.json", text)
    report = convert_json_to_tsv(src, tmp_path / "out.tsv", on_error="skip")
    assert report["skipped"] == 1 and report["rows"] == 2
    assert why in report["skip_reasons"][0]
    assert (tmp_path / "out.tsv").read_bytes() == b"caption\turl\r\na\tu\r\nc\tw\r\n"


def test_invalid_utf8_and_truncation(tmp_path):
    good = b'[{"caption": "a", "url": "u"}, '
    src = tmp_path / "in.json"
    src.write_bytes(good + b'{"caption": "b\xff", "url": "v"}, {"caption": "c", "url": "w"}]')
    with pytest.raises(ConversionError, match="not valid Unicode"):
        convert_json_to_tsv(src, tmp_path / "out.tsv")
    src.write_bytes(good + b'{"caption": "b", "ur')
    with pytest.raises(ConversionError, match="at byte"):
        convert_json_to_tsv(src, tmp_path / "out.tsv")
    src.write_bytes(b'{"caption": "b"}')
    with pytest.raises(ConversionError, match="JSON array"):
        convert_json_to_tsv(src, tmp_path / "out.tsv")
    src.write_bytes(b"[ ]")
    assert convert_json_to_tsv(src, tmp_path / "out.tsv")["rows"] == 0
    assert (tmp_path / "out.tsv").read_bytes() == b"caption\turl\r\n"


def test_skip_mode_in_a_big_file_with_workers(tmp_path):
    src = tmp_path / "in.json"
    make_blip_json(src, rows=5000, seed=9)
    data = bytearray(src.read_bytes())
    # break three records in the middle of the file (drop a closing quote)
    for frac in (0.25, 0.5, 0.75):
        i = data.index(b'", "url"', int(len(data) * frac))
        data[i : i + 1] = b""
    src.write_bytes(bytes(data))
    one = convert_json_to_tsv(src, tmp_path / "a.tsv", on_error="skip")
    two = convert_json_to_tsv(
        src, tmp_path / "b.tsv", on_error="skip", workers=2, task_bytes=32 << 10
    )
    assert one["skipped"] == two["skipped"] == 3
    assert one["rows"] == two["rows"] and 4994 <= one["rows"] <= 4997
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()


def good_rows(n: int) -> tuple[list[str], bytes]:
    """n good records (JSON text) and the TSV (header included) they make."""
    records = [f'{{"caption": "a cat {i}", "url": "http://x/{i}.jpg"}}' for i in range(n)]
    tsv = "caption\turl\r\n" + "".join(f"a cat {i}\thttp://x/{i}.jpg\r\n" for i in range(n))
    return records, tsv.encode()


@pytest.mark.parametrize("at", [0, 1, 300, 599, 600])
def test_skip_keeps_the_good_record_after_a_truncated_one(tmp_path, at):
    """The bug report's case: a truncated record must not swallow its good neighbour."""
    good, expected = good_rows(600)
    records = [*good[:at], '{"caption": "x", "url', *good[at:]]
    src = write(tmp_path / "in.json", "[" + ", ".join(records) + "]")
    for workers, task_bytes in ((1, laion.TASK_BYTES), (2, 1 << 10), (2, 4 << 10)):
        dest = tmp_path / f"out{workers}-{task_bytes}.tsv"
        report = convert_json_to_tsv(
            src, dest, on_error="skip", workers=workers, task_bytes=task_bytes
        )
        assert (report["rows"], report["skipped"]) == (600, 1), (workers, task_bytes)
        assert dest.read_bytes() == expected
    with pytest.raises(ConversionError, match=r"at byte \d+ \(record starts at byte \d+\)"):
        convert_json_to_tsv(src, tmp_path / "fail.tsv")
    assert not (tmp_path / "fail.tsv").exists()


@pytest.mark.parametrize("blocks", ["default", "small"])
@pytest.mark.parametrize("size", [3000, 20_000, 100_000])
def test_skip_keeps_a_long_good_record_after_a_broken_one(tmp_path, monkeypatch, blocks, size):
    """The record after a broken one is found however long it is (not only within a probe
    window) and wherever the read buffer happens to end."""
    if blocks == "small":
        monkeypatch.setattr(laion, "BLOCK", 4096)
        monkeypatch.setattr(laion, "MIN_FAST", 256)
    good, _ = good_rows(300)
    long = {"caption": "long " * (size // 5), "url": "http://x/long.jpg"}
    records = [*good[:100], '{"caption": "x", "url', json.dumps(long), *good[100:]]
    src = write(tmp_path / "in.json", "[" + ", ".join(records) + "]")
    report = convert_json_to_tsv(src, tmp_path / "out.tsv", on_error="skip")
    assert (report["rows"], report["skipped"]) == (301, 1)
    df = pd.read_csv(tmp_path / "out.tsv", sep="\t", keep_default_na=False)
    assert df["caption"][100] == long["caption"]


@pytest.mark.parametrize(
    ("pad", "value"),
    [(2032, '"x\\u00e9"'), (2030, '"\\ud83d\\ude00"'), (2013, "true"), (2012, "false")],
)
def test_a_window_that_cuts_an_escape_or_a_literal_is_grown(tmp_path, pad, value):
    """A record decoded in a first window of FIRST_GUESS bytes whose end falls inside an
    escape or a literal (`tru|e`) is valid: the window grows instead of the record failing."""
    assert laion.FIRST_GUESS == 2048
    # the array's last record is always decoded by _decode_at, from a first 2048-byte window
    last = '{"caption": "' + "a" * pad + '", "url": "u", "x": ' + value + "}"
    if value.startswith('"'):
        last = '{"caption": "' + "a" * pad + value[1:] + ', "url": "u"}'
    assert 2040 < last.index(value.strip('"')[:3]) + 3 < 2056
    src = write(tmp_path / "in.json", '[{"caption": "c", "url": "w"}, ' + last + "]")
    expected, skipped, _ = reference_tsv(src)
    assert skipped == 0
    for on_error in ("fail", "skip"):
        report = convert_json_to_tsv(src, tmp_path / "out.tsv", on_error=on_error)
        assert (report["rows"], report["skipped"]) == (2, 0)
        assert (tmp_path / "out.tsv").read_bytes() == expected


def test_skip_keeps_records_after_a_missing_comma_or_a_stray_bracket(tmp_path):
    """A missing `,` between two records drops nothing (and counts one); a `]` followed by
    more records is damage from the `]` to the next record, not the end of the array."""
    good, expected = good_rows(40)
    text = "[" + ", ".join(good[:10]) + " " + ", ".join(good[10:20]) + "], "
    text += ", ".join(good[20:]) + "]"
    src = write(tmp_path / "in.json", text)
    for workers in (1, 2):
        dest = tmp_path / f"out{workers}.tsv"
        report = convert_json_to_tsv(src, dest, on_error="skip", workers=workers, task_bytes=256)
        assert (report["rows"], report["skipped"]) == (40, 2)
        assert dest.read_bytes() == expected
    with pytest.raises(ConversionError, match="expected `,` or `]`"):
        convert_json_to_tsv(src, tmp_path / "fail.tsv")


def _peak_rss_mb(src: Path, dest: Path, workers: int) -> float:
    code = (
        "from vlprep.laion import convert_json_to_tsv; "
        f"convert_json_to_tsv({str(src)!r}, {str(dest)!r}, workers={workers}); "
        "print([int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')][0])"
    )
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's RSS (kept across exec),
    # i.e. at pytest's, whatever the child does.
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'scripts'}:{REPO}", VLPREP_PROGRESS="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return int(out.stdout) / 1024


@pytest.mark.slow
def test_memory_is_bounded_and_flat(tmp_path):
    import tracemalloc

    small, big = tmp_path / "25.json", tmp_path / "50.json"
    make_blip_json(small, target_bytes=25 << 20, seed=1)
    tracemalloc.start()  # the generator streams too (not the process's peak: other tests')
    make_blip_json(big, target_bytes=50 << 20, seed=1)
    generated_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_small = _peak_rss_mb(small, tmp_path / "s.tsv", 1)
    rss_big = _peak_rss_mb(big, tmp_path / "b.tsv", 1)
    assert rss_big < 256
    assert rss_big < rss_small * 1.25 + 10, (rss_small, rss_big)
    assert generated_peak < 64 << 20, generated_peak


# ---- the fast path against the seed and against json + csv, on generated records ------------

SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f"}
SHORT_ESCAPES |= {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
ALPHABET = (
    list("abc xyz ,:{}[]'") * 6
    + ['"', "\\", "/", "\t", "\n", "\r", "\x00", "\x01", "\x1f", "\x7f", "\x85"]
    + ["é", "ß", "東", "京", "م", "ש", "\u200b", "\u2028", "\ufeff", "\ufffe", "\uffff"]
    + ["🎉", "🐍", "\U0010ffff", "\U00010000"]
)
# whitespace JSON allows between tokens, as one layout may use it
GAPS = ["", " ", "  ", "\n", "\n    ", "\r\n\t", "\t"]


def random_text(rng: random.Random) -> str:
    size = rng.choice([0, 1, 2, 5, 20, 60, 200])
    return "".join(rng.choice(ALPHABET) for _ in range(size))


def json_string(text: str, rng: random.Random, escape_rate: float) -> str:
    """`text` as a JSON string literal, each character written raw or escaped at random."""
    out = []
    for ch in text:
        must = ch in '"\\' or ch < " "
        if not must and rng.random() >= escape_rate:
            out.append(ch)
        elif ch in SHORT_ESCAPES and rng.random() < 0.7:
            out.append(SHORT_ESCAPES[ch])
        elif ord(ch) > 0xFFFF:  # a surrogate pair
            hi, lo = divmod(ord(ch) - 0x10000, 0x400)
            out.append(f"\\u{0xD800 + hi:04x}\\u{0xDC00 + lo:04X}")
        else:
            out.append(f"\\u{ord(ch):04{rng.choice('xX')}}")
    return '"' + "".join(out) + '"'


def random_layout(rng: random.Random) -> list[str]:
    """Whitespace around `{`, the keys, the colons, the comma and `}`: 8 gaps."""
    return [rng.choice(GAPS) for _ in range(8)]


def encode_record(fields: list[tuple[str, object]], rng, layout, escape_rate: float) -> str:
    g = layout
    parts = []
    for key, value in fields:
        text = json_string(value, rng, escape_rate) if isinstance(value, str) else json.dumps(value)
        parts.append(f'"{key}"{g[1]}:{g[2]}{text}')
    return "{" + g[0] + (g[3] + "," + g[4]).join(parts) + g[5] + "}"


def write_records(path: Path, records: list[str], rng: random.Random, layout) -> None:
    sep = layout[6] + "," + layout[7]
    path.write_bytes(("[" + rng.choice(GAPS) + sep.join(records) + "\n]").encode("utf-8"))


def random_file(path: Path, rng: random.Random, n: int, *, mixed: bool) -> None:
    """n records sharing a layout (with a few that change it), with random text and escapes;
    with `mixed`, also records the seed mishandles: other key order, extra keys, non-strings,
    missing keys, items that are not objects."""
    layout = random_layout(rng)
    escape_rate = rng.choice([0.0, 0.01, 0.3])
    plain = rng.random() < 0.5  # mostly short ASCII values, like the real file
    records = []
    for _ in range(n):
        caption = random_text(rng) if not plain or rng.random() < 0.05 else "a dog on a sofa"
        url = f"http://h/{rng.getrandbits(40):x}.jpg"
        fields = [("caption", caption), ("url", url)]
        kind = rng.random() if mixed else 1.0
        if kind < 0.03:
            fields.reverse()
        elif kind < 0.06:
            fields.insert(rng.randrange(3), ("extra", rng.choice([None, 1, "x", [1, {"a": "b"}]])))
        elif kind < 0.08:
            fields[rng.randrange(2)] = (fields[0][0], rng.choice([None, 5, 2.5, True, ["l"]]))
        elif kind < 0.09:
            del fields[rng.randrange(2)]
        elif kind < 0.1:
            records.append(rng.choice(['"junk"', "[1, 2]", "null", "7"]))
            continue
        rec_layout = layout if rng.random() < 0.98 else random_layout(rng)
        records.append(encode_record(fields, rng, rec_layout, escape_rate))
    write_records(path, records, rng, layout)


def reference_tsv(src: Path) -> tuple[bytes, int, int]:
    """(TSV, skipped, extra_keys) by json + csv, one object at a time: the documented output."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter="\t")
    writer.writerow(["caption", "url"])
    skipped = extra = 0
    for obj in json.loads(src.read_text("utf-8")):
        ok = isinstance(obj, dict) and all(isinstance(obj.get(c), str) for c in ("caption", "url"))
        if ok and not any(0xD800 <= ord(ch) < 0xE000 for ch in obj["caption"] + obj["url"]):
            writer.writerow([obj["caption"], obj["url"]])
            extra += len(obj) > 2
        else:
            skipped += 1
    return out.getvalue().encode("utf-8"), skipped, extra


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few KB, so a few hundred records cross many block and fill boundaries."""
    monkeypatch.setattr(laion, "BLOCK", 4096)
    monkeypatch.setattr(laion, "MIN_FAST", 256)


@pytest.mark.parametrize("seed", range(12))
def test_random_records_match_the_seed(tmp_path, small_blocks, seed):
    rng = random.Random(seed)
    src = tmp_path / "in.json"
    random_file(src, rng, rng.choice([300, 1500]), mixed=False)
    seed_convert(src, tmp_path / "seed.tsv")
    expected = (tmp_path / "seed.tsv").read_bytes()
    for workers in (1, 2):
        dest = tmp_path / f"ours{workers}.tsv"
        report = convert_json_to_tsv(src, dest, workers=workers, task_bytes=16 << 10)
        assert report["skipped"] == 0
        assert dest.read_bytes() == expected, f"workers={workers}"


@pytest.mark.parametrize("seed", range(8))
def test_random_mixed_records_match_json_and_csv(tmp_path, small_blocks, seed):
    rng = random.Random(1000 + seed)
    src = tmp_path / "in.json"
    random_file(src, rng, 1500, mixed=True)
    expected, skipped, extra = reference_tsv(src)
    for workers in (1, 2):
        dest = tmp_path / f"ours{workers}.tsv"
        report = convert_json_to_tsv(
            src, dest, on_error="skip", workers=workers, task_bytes=16 << 10
        )
        assert (report["skipped"], report["extra_keys"]) == (skipped, extra)
        assert dest.read_bytes() == expected, f"workers={workers}"


# ---- skip mode drops exactly the malformed records: the documented rule against a reference --

COLUMNS = ("caption", "url")
TEXTS = st.one_of(
    st.text(st.sampled_from(ALPHABET), max_size=30),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=10),
    st.just("a dog on a sofa"),
)
EXTRA_KEYS = ["extra", "width", "similarity", "meta"]
EXTRA_VALUES = st.sampled_from([None, 1, 2.5, True, "x", [1, {"a": "b"}], {"a": ["b"]}])
NOT_STRINGS = st.sampled_from([None, 5, 2.5, False, ["l"], {"a": "b"}])
NOT_OBJECTS = ['"junk"', "[1, 2]", "null", "7", "true", '[1, {"a": "b"}]', '"{\\"caption\\": 1}"']
# what each injected kind puts right after the caption's opening quote
INJECTED = {
    "control byte": [b"\x00", b"\x01", b"\t", b"\n", b"\x1f"],
    "bad escape": [b"\\x41", b"\\q", b"\\u12G4", b"\\ "],
    "lone surrogate": [b"\\ud83d", b"\\uDC00", b"\\ud800 "],
    "invalid UTF-8": [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe6\x9d"],
}
MALFORMED_KINDS = [  # those that can swallow the next record's start are listed twice
    "the report's",
    "the report's",
    "truncated",
    "truncated",
    "dropped quote",
    "dropped quote",
    *INJECTED,
    "not a string",
    "missing key",
    "not an object",
]


def expected_with_skip(items: list[bytes]) -> tuple[bytes, int, int]:
    """(TSV, rows, skipped) that on_error="skip" must give for these array items, by laion's rule:
    an item that decodes (json, UTF-8 read with surrogateescape) as an object with every
    column a string is a record: its row is written unless a column is not valid Unicode
    (then it is skipped). Any other item that decodes is skipped. An item that does not
    decode (broken JSON) is skipped with every item after it up to the next record: that
    stretch counts once."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter="\t")
    writer.writerow(COLUMNS)
    rows, skipped, stretch = 0, 0, False
    for item in items:
        try:
            obj = json.loads(item.decode("utf-8", "surrogateescape"))
        except ValueError:
            skipped += not stretch
            stretch = True
            continue
        if isinstance(obj, dict) and all(isinstance(obj.get(c), str) for c in COLUMNS):
            stretch = False
            values = [obj[c] for c in COLUMNS]
            try:
                "".join(values).encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate, or invalid UTF-8 in the file
                skipped += 1
                continue
            writer.writerow(values)
            rows += 1
        else:
            skipped += not stretch
    return out.getvalue().encode("utf-8"), rows, skipped


@st.composite
def encoded(draw, fields, layout) -> bytes:
    """`fields` as a record's JSON text: `layout`'s whitespace (or another), random escapes."""
    rng = draw(st.randoms(use_true_random=False))
    own = layout if draw(st.integers(0, 4)) else random_layout(rng)
    escape_rate = draw(st.sampled_from([0.0, 0.01, 0.3]))
    return encode_record(fields, rng, own, escape_rate).encode("utf-8")


@st.composite
def good_record(draw, layout) -> bytes:
    fields = [("caption", draw(TEXTS)), ("url", draw(TEXTS))]
    if draw(st.integers(0, 9)) == 0:
        fields.reverse()
    for key in draw(st.lists(st.sampled_from(EXTRA_KEYS), unique=True, max_size=2)):
        fields.insert(draw(st.integers(0, len(fields))), (key, draw(EXTRA_VALUES)))
    return draw(encoded(fields, layout))


@st.composite
def malformed_record(draw, layout) -> bytes:
    kind = draw(st.sampled_from(MALFORMED_KINDS))
    if kind == "the report's":
        return b'{"caption": "x", "url'
    if kind == "not an object":
        return draw(st.sampled_from(NOT_OBJECTS)).encode()
    fields = [("caption", draw(TEXTS)), ("url", draw(TEXTS))]
    if kind == "not a string":
        i = draw(st.integers(0, 1))
        fields[i] = (fields[i][0], draw(NOT_STRINGS))
    elif kind == "missing key":
        del fields[draw(st.integers(0, 1))]
    text = draw(encoded(fields, layout))
    if kind == "truncated":
        return text[: draw(st.integers(1, len(text) - 1))]
    if kind == "dropped quote":
        i = draw(st.sampled_from([i for i, byte in enumerate(text) if byte == ord('"')]))
        return text[:i] + text[i + 1 :]
    if kind in INJECTED:
        at = re.match(rb'\{\s*"caption"\s*:\s*"', text).end()
        return text[:at] + draw(st.sampled_from(INJECTED[kind])) + text[at:]
    return text


@st.composite
def damaged_array(draw) -> tuple[bytes, list[bytes]]:
    """A JSON array (bytes) and its items: runs of plain records in one layout, which the
    fast path takes, other good records, and malformed records of every kind, anywhere."""
    layout = [draw(st.sampled_from(GAPS)) for _ in range(8)]
    rng = random.Random(0)  # escape_rate 0: plain ASCII is written as it is
    plain = [
        encode_record([("caption", f"a dog {i}"), ("url", f"http://x/{i}.jpg")], rng, layout, 0)
        for i in range(80)
    ]
    malformed = malformed_record(layout).map(lambda r: [r])
    segments = st.one_of(
        st.integers(1, 80).map(lambda n: [r.encode() for r in plain[:n]]),
        good_record(layout).map(lambda r: [r]),
        malformed,
        malformed,  # twice as likely: more of them side by side
    )
    items = [
        item for segment in draw(st.lists(segments, min_size=1, max_size=20)) for item in segment
    ]
    sep = (layout[6] + "," + layout[7]).encode()
    head = draw(st.sampled_from(GAPS)).encode()
    return b"[" + head + sep.join(items) + b"\n]", items


def array_of(items: list[bytes]) -> tuple[bytes, list[bytes]]:
    return b"[" + b", ".join(items) + b"]", items


PLAIN = [f'{{"caption": "a dog {i}", "url": "http://x/{i}.jpg"}}'.encode() for i in range(80)]


@settings(
    max_examples=100,
    deadline=None,
    # tmp_path and the autouse `quiet` are fine to share between examples (files are rewritten)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    case=damaged_array(),
    block=st.sampled_from([4096, laion.BLOCK]),
    split=st.sampled_from([(2, 256), (2, 1000), (3, 4096)]),
)
@example(case=array_of([b'{"caption": "x", "url', *PLAIN]), block=4096, split=(2, 256))
@example(
    case=array_of([b'{"caption": "x", "url', b"7", *PLAIN, b'{"caption": 5}', b'{"caption": "\\']),
    block=laion.BLOCK,
    split=(2, 1000),
)
def test_skip_drops_exactly_the_malformed_records(tmp_path, case, block, split):
    """Every kind of malformed record, anywhere (first, last, next to one another), through the
    fast path, the slow path and the task cuts: skip mode writes exactly the good records'
    rows, and `skipped` counts every malformed item once, except that the items after broken
    JSON up to the next record (an object with the columns as strings) go with it as one
    stretch, one count (laion's docstring; expected_with_skip)."""
    data, items = case
    src = tmp_path / "in.json"
    src.write_bytes(data)
    expected, rows, skipped = expected_with_skip(items)
    with mock.patch.object(laion, "BLOCK", block), mock.patch.object(laion, "MIN_FAST", 256):
        for workers, task_bytes in [(1, laion.TASK_BYTES), split]:
            dest = tmp_path / f"out{workers}.tsv"
            report = convert_json_to_tsv(
                src, dest, on_error="skip", workers=workers, task_bytes=task_bytes
            )
            assert dest.read_bytes() == expected, (workers, task_bytes)
            got = (report["rows"], report["skipped"])
            assert got == (rows, skipped), (workers, task_bytes, report["skip_reasons"])
        if skipped:
            with pytest.raises(ConversionError, match=r"malformed record at byte \d+"):
                convert_json_to_tsv(src, tmp_path / "fail.tsv")
            assert not (tmp_path / "fail.tsv").exists()


EXAMPLES = {
    "the report's": b'{"caption": "x", "url',
    "truncated in a value": b'{"caption": "a dog, {',
    "dropped quote": b'{"caption": "b, "url": "v"}',
    "control byte": b'{"caption": "raw \x01", "url": "v"}',
    "bad escape": b'{"caption": "bad \\x41", "url": "v"}',
    "lone surrogate": b'{"caption": "\\ud83d", "url": "v"}',
    "invalid UTF-8": b'{"caption": "caf\xc3 ", "url": "v"}',
    "not a string": b'{"caption": 5, "url": "v"}',
    "missing key": b'{"caption": "no url"}',
    "not an object": b'"junk"',
    "nested junk": b'[1, {"a": "b"}]',
}


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_skip_with_two_malformed_records_side_by_side(tmp_path, where):
    """Each ordered pair of malformed kinds, side by side, at the start, middle or end."""
    good, _ = good_rows(120)
    good = [r.encode() for r in good]
    at = {"first": 0, "middle": 60, "last": 120}[where]
    src = tmp_path / "in.json"
    for a, b in itertools.product(EXAMPLES, repeat=2):
        items = [*good[:at], EXAMPLES[a], EXAMPLES[b], *good[at:]]
        src.write_bytes(b"[" + b", ".join(items) + b"]")
        expected, rows, skipped = expected_with_skip(items)
        assert rows == 120 and 1 <= skipped <= 2
        report = convert_json_to_tsv(src, tmp_path / "out.tsv", on_error="skip")
        assert (tmp_path / "out.tsv").read_bytes() == expected, (a, b)
        assert (report["rows"], report["skipped"]) == (120, skipped), (a, b)


def test_tsv_row_matches_csv_for_every_code_point():
    lines = []
    writer = csv.writer(laion._Lines(lines), delimiter="\t")
    # every code point but the surrogates, which no UTF-8 row can hold
    chars = [chr(c) for c in [*range(0xD800), *range(0xE000, 0x110000)]]
    for i in range(0, len(chars), 1 << 16):
        for field in (lambda c: c, lambda c: f"a{c}", lambda c: f"{c}b{c}"):
            values = [field(c) for c in chars[i : i + (1 << 16)]]
            lines.clear()
            writer.writerow(values)
            assert lines[0].encode("utf-8") == laion._tsv_row(values)
    for values in ([""], ["", ""], ["", "x"], ['"'], ["a\tb", 'c"d', "e\r\nf"]):
        lines.clear()
        writer.writerow(values)
        assert lines[0].encode("utf-8") == laion._tsv_row(values)


BAD_RECORDS = [
    ('{"caption": "raw \x01 control", "url": "http://x/1.jpg"}', "control character"),
    ('{"caption": "bad \\x41 escape", "url": "http://x/1.jpg"}', "escape"),
    ('{"caption": "lone \\ud800 surrogate", "url": "http://x/1.jpg"}', "not valid Unicode"),
    ('{"caption": "x", "url": null}', "'url' is a NoneType"),
    ('{"caption": 12, "url": "http://x/1.jpg"}', "'caption' is a int"),
    ('{"caption": "no url"}', "'url' is missing"),
    ('"just a string"', "expected an object"),
    ('{"caption": "unterminated, "url": "http://x/1.jpg"}', "delimiter"),
]


@pytest.mark.parametrize(("bad", "why"), BAD_RECORDS)
def test_malformed_record_inside_a_fast_run(tmp_path, bad, why):
    # the good records have the bad one's layout, so the fast path meets it
    good = [f'{{"caption": "a cat {i}", "url": "http://x/{i}.jpg"}}' for i in range(20_000)]
    records = [*good[:12_000], bad, *good[12_000:]]
    src = tmp_path / "in.json"
    src.write_bytes(("[" + ", ".join(records) + "]").encode("utf-8"))
    start = src.read_bytes().index(bad.encode())
    with pytest.raises(ConversionError) as err:
        convert_json_to_tsv(src, tmp_path / "out.tsv")
    msg = str(err.value)
    assert why in msg and "near: " in msg
    offset = int(re.search(r"at byte (\d+)", msg).group(1))
    assert start <= offset <= start + len(bad.encode())
    assert not (tmp_path / "out.tsv").exists()

    report = convert_json_to_tsv(src, tmp_path / "out.tsv", on_error="skip")
    assert (report["rows"], report["skipped"]) == (20_000, 1)
    expected = "caption\turl\r\n" + "".join(
        f"a cat {i}\thttp://x/{i}.jpg\r\n" for i in range(20_000)
    )
    assert (tmp_path / "out.tsv").read_bytes() == expected.encode()


def test_invalid_utf8_inside_a_fast_run(tmp_path):
    good = b"".join(b'{"caption": "c%d", "url": "u%d"}, ' % (i, i) for i in range(30_000))
    bad = b'{"caption": "caf\xc3 \xe9", "url": "u"}, '
    src = tmp_path / "in.json"
    src.write_bytes(b"[" + good + bad + good + b'{"caption": "end", "url": "e"}]')
    with pytest.raises(ConversionError, match="not valid Unicode") as err:
        convert_json_to_tsv(src, tmp_path / "out.tsv")
    assert f"at byte {1 + len(good)}:" in str(err.value)  # where the record starts
    report = convert_json_to_tsv(src, tmp_path / "out.tsv", on_error="skip")
    assert (report["rows"], report["skipped"]) == (60_001, 1)


def test_records_larger_than_a_block(tmp_path):
    src = tmp_path / "in.json"
    records = [{"caption": f"c{i}", "url": f"http://x/{i}.jpg"} for i in range(50_000)]
    records[100]["caption"] = "huge " * (3 << 20)  # 15 MB, well over a block
    records[30_000]["caption"] = 'huge with "quotes" ' * (1 << 18)
    write(src, json.dumps(records, ensure_ascii=False))
    seed_convert(src, tmp_path / "seed.tsv")
    report = convert_json_to_tsv(src, tmp_path / "ours.tsv")
    assert report["rows"] == 50_000
    assert (tmp_path / "ours.tsv").read_bytes() == (tmp_path / "seed.tsv").read_bytes()


def test_layout_with_tabs_and_crlf_and_a_change_of_layout(tmp_path):
    records = [{"caption": f"c {i}\u00e9", "url": f"http://x/{i}.jpg"} for i in range(20_000)]
    pretty = json.dumps(records[:10_000], indent="\t", ensure_ascii=False).replace("\n", "\r\n")
    compact = json.dumps(records[10_000:], separators=(",", ":"), ensure_ascii=False)
    src = write(tmp_path / "in.json", pretty[:-1] + "," + compact[1:])
    seed_convert(src, tmp_path / "seed.tsv")
    for workers in (1, 2):
        convert_json_to_tsv(src, tmp_path / "ours.tsv", workers=workers, task_bytes=200 << 10)
        assert (tmp_path / "ours.tsv").read_bytes() == (tmp_path / "seed.tsv").read_bytes()


def fast_rows(monkeypatch) -> list[int]:
    """Record how many rows each call of the fast path converts (the conversion is real)."""
    counts = []
    fast = laion._Converter._fast

    def counted(self, lim):
        before = self.res.rows
        ok = fast(self, lim)
        counts.append(self.res.rows - before)
        return ok

    monkeypatch.setattr(laion._Converter, "_fast", counted)
    return counts


def test_escaped_records_stay_on_the_fast_path(tmp_path, monkeypatch):
    """Records with escapes (escaped quotes, `\\/`, surrogate pairs...) are decoded in batches
    inside a fast run, even when every record has one."""
    rng = random.Random(3)
    texts = ['say "cheese"', "back\\slash\\", "tab\there", "ünï 🎉", "a/b", 'q\\"', '"']
    records = []
    for i in range(40_000):
        caption = rng.choice(texts) if i % 7 == 0 else f"a dog {i}"
        value = json_string(caption, rng, 0.2 if i % 11 == 0 else 0.0)
        records.append(f'{{"caption": {value}, "url": "http:\\/\\/x\\/{i}.jpg"}}')
    src = write(tmp_path / "in.json", "[" + ", ".join(records) + "]")
    counts = fast_rows(monkeypatch)
    convert_json_to_tsv(src, tmp_path / "ours.tsv")
    seed_convert(src, tmp_path / "seed.tsv")
    assert (tmp_path / "ours.tsv").read_bytes() == (tmp_path / "seed.tsv").read_bytes()
    assert sum(counts) >= 40_000 - 10 * len(counts), (sum(counts), len(counts))


@pytest.mark.parametrize(
    "columns", [("c", "u"), ("url",), ("a", "b", "c")], ids=["short-keys", "one", "three"]
)
def test_other_columns(tmp_path, monkeypatch, columns):
    """Short keys, one column (a lone empty field is written `""`), three columns."""
    rng = random.Random(len(columns))
    objs = []
    for i in range(30_000):
        obj = {c: rng.choice(["", "x", f"v{i}", 'q"', "é"]) for c in columns}
        if i % 1000 == 7:
            obj = dict(reversed(list(obj.items())))
        objs.append(obj)
    compact = (",", ":")  # `","u":"` is shorter than the 8 bytes a check compares at once
    src = write(tmp_path / "in.json", json.dumps(objs, ensure_ascii=False, separators=compact))
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter="\t")
    writer.writerow(columns)
    writer.writerows([obj[c] for c in columns] for obj in objs)
    counts = fast_rows(monkeypatch)
    report = convert_json_to_tsv(src, tmp_path / "ours.tsv", columns=columns)
    assert report["rows"] == 30_000
    assert (tmp_path / "ours.tsv").read_bytes() == out.getvalue().encode("utf-8")
    assert sum(counts) >= 25_000  # the fast path took the runs between reversed records
