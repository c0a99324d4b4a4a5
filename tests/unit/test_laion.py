"""BLIP JSON -> MiniGPT-4 TSV: the seed's bytes where the seed is right, safe where it is not."""

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.seed_convert_laion import seed_convert
from vlprep.errors import ConversionError
from vlprep.laion import convert_json_to_tsv
from vlprep.standin.laion import make_blip_json

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
    small, big = tmp_path / "25.json", tmp_path / "50.json"
    make_blip_json(small, target_bytes=25 << 20, seed=1)
    make_blip_json(big, target_bytes=50 << 20, seed=1)
    rss_small = _peak_rss_mb(small, tmp_path / "s.tsv", 1)
    rss_big = _peak_rss_mb(big, tmp_path / "b.tsv", 1)
    assert rss_big < 256
    assert rss_big < rss_small * 1.25 + 10, (rss_small, rss_big)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 < 1024
