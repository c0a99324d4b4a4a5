"""The first-bytes check: each catalog format is recognised, pages in its place are not, and
every file of the stand-in world passes it against its own catalog entry."""

import bz2
import gzip
import io
import json
import lzma
import tarfile
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from standin.world import REAL_CATALOG, build_world, served_at
from vlprep.catalog import load_catalog
from vlprep.sniff import (
    SNIFF_BYTES,
    expected_format,
    format_problem,
    implausibly_small,
    looks_like_html,
)

PAGES = [
    b"<!DOCTYPE html>\n<html><body>Sign in</body></html>",
    b"<!-- served by the quota proxy -->\n<html><head><title>Quota</title></head></html>",
    b"<head><title>Download limit reached</title></head><body>try later</body>",
    b"\xef\xbb\xbf\r\n  <?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
    b"<HTML><BODY>Not Found</BODY></HTML>",
    b"\n\n<script>location.href='/login'</script>",
]


def zip_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("a/b.txt", "hello")
    return out.getvalue()


def empty_zip_bytes() -> bytes:
    out = io.BytesIO()
    zipfile.ZipFile(out, "w").close()
    return out.getvalue()


def tar_bytes() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        info = tarfile.TarInfo("a.txt")
        info.size = 5
        tf.addfile(info, io.BytesIO(b"hello"))
    return out.getvalue()


def parquet_bytes() -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.table({"url": ["http://x/1.jpg"]}), out)
    return out.getvalue()


# A real file of each format, under a name (and archive kind) the catalog could give it.
GOOD = {
    ("images.zip", "zip"): zip_bytes(),
    ("empty.zip", "zip"): empty_zip_bytes(),
    ("data.tar", "tar"): tar_bytes(),
    ("validation.tar.gz", "tar.gz"): gzip.compress(tar_bytes()),
    ("data.tgz", "tgz"): gzip.compress(tar_bytes()),
    ("data.tar.bz2", "tar.bz2"): bz2.compress(tar_bytes()),
    ("data.tar.xz", "tar.xz"): lzma.compress(tar_bytes()),
    ("vqa_train.json", None): json.dumps([{"question": "why?"}]).encode(),
    ("captions.json", "none"): b"\xef\xbb\xbf \n" + json.dumps({"annotations": []}).encode(),
    ("narratives.jsonl", None): b'{"image_id": "1"}\n{"image_id": "2"}\n',
    ("part-0.parquet", None): parquet_bytes(),
}


@pytest.mark.parametrize(("name", "archive"), list(GOOD))
def test_real_files_of_each_format_pass(name, archive):
    data = GOOD[(name, archive)]
    fmt = expected_format(name, archive)
    assert fmt is not None
    assert format_problem(data[:SNIFF_BYTES], fmt, complete=True) is None
    assert format_problem(data[:SNIFF_BYTES], fmt, complete=False) is None


@pytest.mark.parametrize(("name", "archive"), list(GOOD))
@pytest.mark.parametrize("page", PAGES, ids=range(len(PAGES)))
def test_a_page_in_place_of_any_format_is_named_a_page(name, archive, page):
    problem = format_problem(page, expected_format(name, archive), complete=True)
    assert problem is not None and "HTML page" in problem


@pytest.mark.parametrize(
    ("name", "archive", "data", "said"),
    [
        ("images.zip", "zip", b"Rar!\x1a\x07\x00" + b"\0" * 600, "not a zip archive"),
        ("data.tar.gz", "tar.gz", zip_bytes(), "not a gzip-compressed file"),
        ("data.tar", "tar", b"\0" * 600, "no 'ustar' mark"),
        ("data.tar", "tar", b"a.txt" + b"\0" * 100, "shorter than one tar header"),
        ("vqa_train.json", None, b"Access denied\n", "not a JSON file"),
        ("x.jsonl", None, b"[1, 2]\n", "not a JSON Lines file"),
        ("x.json", None, b"", "empty"),
        ("x.json", None, b" \n\t", "blank"),
        ("x.parquet", None, b"PAR0", "not a Parquet file"),
    ],
)
def test_wrong_starts_are_named(name, archive, data, said):
    assert said in format_problem(data, expected_format(name, archive), complete=True)


def test_too_few_bytes_are_not_judged_until_the_file_is_complete():
    assert format_problem(b"PK", "zip", complete=False) is None
    assert "not a zip archive" in format_problem(b"PK", "zip", complete=True)
    assert format_problem(tar_bytes()[:300], "tar", complete=False) is None
    assert format_problem(b"  ", "json", complete=False) is None
    assert format_problem(b" " * SNIFF_BYTES, "json", complete=True) is None  # JSON may follow
    assert format_problem(b"<", "zip", complete=False) is not None  # a page at once


def test_archive_kind_wins_over_the_name_and_unknown_names_fall_back_to_pages():
    assert expected_format("images", "zip") == "zip"
    assert expected_format("x.zip", "none") == "zip"
    assert expected_format("validation.tar.gz", None) == "gzip"
    assert expected_format("list.tsv", None) is None
    assert expected_format("data.npz", "none") is None
    # MAT-files (Flowers102, StanfordCars, the ImageNet devkit) are told from a page
    assert expected_format("setid.mat", "none") == "matlab"
    assert format_problem(b"MATLAB 5.0 MAT-file, Platform: posix", "matlab", complete=True) is None
    assert "not a MATLAB MAT-file" in format_problem(b"\x00\x01rest", "matlab", complete=True)
    assert format_problem(b"url\tcaption\n", None, complete=True) is None
    assert format_problem(b"<?xml version='1.0'?>", None, complete=True) is not None
    assert format_problem(b"<2 items>", None, complete=True) is None  # not a document start
    # a file that is itself XML or HTML (VOC-style annotations) is no page
    assert format_problem(b"<?xml version='1.0'?><annotation/>", "markup", complete=True) is None
    assert expected_format("2007_000027.xml") == "markup"


def test_html_markers_are_case_insensitive_after_bom_and_blanks():
    for page in PAGES:
        assert looks_like_html(page)
    assert not looks_like_html(b"PK\x03\x04 ... <html>")


def test_implausibly_small():
    assert implausibly_small(12_000, 20_300_000_000)
    assert not implausibly_small(12_000, None)
    assert not implausibly_small(12_000, 1_000_000)  # more than 1% of it
    assert not implausibly_small(2 << 20, 20_300_000_000)  # over 1 MiB: maybe a small real file


def test_every_file_entry_of_the_real_catalog_has_a_known_format():
    """So each one gets the positive check, not only the fallback for pages."""
    for entry_id, entry in load_catalog(REAL_CATALOG).items():
        if entry["kind"] != "hf":
            assert expected_format(entry["filename"], entry["archive"]), entry_id


@pytest.mark.slow
def test_every_file_of_the_standin_world_passes_against_its_entry(tmp_path):
    """The demo's files (real zips, tarballs, JSON, JSONL) pass the check their catalog entry
    asks for, so sniffing can never fail a good run."""
    catalog_path = build_world(tmp_path / "world")
    world = catalog_path.parent
    checked = 0
    for entry_id, entry in load_catalog(catalog_path).items():
        if entry["kind"] == "hf":
            continue
        path = world / served_at(entry)
        fmt = expected_format(entry["filename"], entry["archive"])
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
        assert fmt is not None, entry_id
        assert format_problem(head, fmt, complete=True) is None, (entry_id, path)
        checked += 1
    assert checked == sum(e["kind"] != "hf" for e in load_catalog(REAL_CATALOG).values())
