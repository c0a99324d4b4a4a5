"""A product's piece of the data report (vlprep.report): its summary page from the manifest
header, on a small tree described by the real vlprep.manifest, and on headers shaped like those
of URL-list sets and filtered annotation files. The sample grid is vlprep.samples' (its own
tests); here a stub stands in for it."""

import io
import json
import re
import tarfile
from html import escape
from pathlib import Path

import pytest

from vlprep.manifest import KIND_LIMIT, manifest_paths, read_header, tally_kind, write_manifest
from vlprep.products import PRODUCTS
from vlprep.products.base import LAYOUTS
from vlprep.report import (
    annotation_reports,
    bar_chart,
    failures,
    holdings,
    layout_of,
    report_files,
    summary_html,
    write_report,
)

PATHS = ["{g3m}/coco/coco_valid", "{lavis}/coco/annotations", "{lavis}/coco/images"]


def write_tar(path: Path, keys: int) -> None:
    with tarfile.open(path, "w") as tar:
        for key in range(keys):
            for ext in ("jpg", "txt"):
                info = tarfile.TarInfo(f"{key:05d}.{ext}")
                info.size, info.mtime = 1, 0
                tar.addfile(info, io.BytesIO(b"x"))


def build_product(data: Path, scale: int = 1) -> Path:
    """`scale` times: 2 tars of 3 samples, 4 images, an annotation list of 5 records; returns
    the manifest header vlprep.manifest writes of it."""
    shards = data / "g3m" / "coco" / "coco_valid"
    shards.mkdir(parents=True)
    for i in range(2 * scale):
        write_tar(shards / f"{i:05d}.tar", 3)
    images = data / "lavis" / "coco" / "images"
    images.mkdir(parents=True)
    for i in range(4 * scale):
        (images / f"{i:012d}.JPG").write_bytes(b"\xff\xd8" + bytes([i % 256]) * 10)
    annotations = data / "lavis" / "coco" / "annotations"
    annotations.mkdir(parents=True)
    records = [{"image": f"{i}.jpg", "caption": "a"} for i in range(5 * scale)]
    (annotations / "captions.json").write_text(json.dumps(records))
    roots = {"data_root": str(data), "g3m": str(data / "g3m"), "lavis": str(data / "lavis")}
    write_manifest("coco_valid", PATHS, roots, data / "manifests")
    return manifest_paths(data / "manifests", "coco_valid")[0]


CRAWL = {
    "attempted": 600,
    "succeeded": 516,
    "success_rate": 0.86,
    "failed_to_download": 61,
    "failed_to_resize": 23,
    "failed_by_kind": {
        "HTTP Error N: Not Found": 35,
        "Image decoding error": 23,
        "IncompleteRead(N bytes read, N more expected)": 20,
        "<script>alert(1)</script> & co": 6,
    },
    "shards": 6,
}
DROPPED = {
    "records": 120,
    "kept": 110,
    "dropped": {"missing": 8, "undecodable": 2},
    "eval_set": True,
    "written": "filtered copy",
}


def header_of(**changes) -> dict:
    """A header as vlprep.manifest writes one for a URL-list set and a filtered annotation."""
    header = {
        "format": "vlprep-manifest/1",
        "product": "nocaps",
        "vlprep_version": "0.1.0",
        "built": "2026-11-30T01:25:48+00:00",
        "roots": {"lavis": "/somewhere/lavis", "data_root": "/somewhere"},
        "paths": ["{lavis}/nocaps/images", "{reports}/nocaps_val.json"],
        "config": {"link_mode": "symlink", "url_lists": {"nocaps_val": {"image_size": 64}}},
        "sources": {
            "nocaps_val_info": {
                "catalog": {
                    "kind": "http",
                    "url": "https://example.org/nocaps_val.json",
                    "size": 145039,
                    "sha256": "a" * 64,
                },
                "recorded": {"entry": "nocaps_val_info", "size": 145039, "sha256": "a" * 64},
                "license": "CC BY 2.0",
                "citation": "Agrawal et al., nocaps, ICCV 2019",
            },
            "hub_entry": {
                "catalog": {"kind": "hf", "repo": "org/set", "revision": "main"},
                "recorded": {
                    "sha": "b" * 40,
                    "files": [
                        {"path": f"part-{i}.parquet", "size": 10, "sha256": "c" * 64}
                        for i in range(25)
                    ],
                },
                "license": "CC BY 2.0",
                "citation": "Agrawal et al., nocaps, ICCV 2019",
            },
        },
        "filtered": {"nocaps_val.json": CRAWL, "lavis/nocaps/annotations/val.json": DROPPED},
        "totals": {"files": 6, "links": 178, "dirs": 2, "bytes": 204784, "samples": 0},
        "kinds": {"jpg": {"files": 178, "bytes": 200000}, "json": {"files": 2, "bytes": 4784}},
        "files": "nocaps.files.jsonl.gz",
        "files_sha256": "d" * 64,
    }
    header.update(changes)
    return header


def test_holdings_count_tars_samples_images_and_records_of_a_built_tree(tmp_path):
    header = read_header(build_product(tmp_path / "data"))
    counts = holdings(header)
    assert counts["tars"] == 2
    assert counts["tar samples"] == 6
    assert counts["images"] == 4  # .JPG counts: suffixes are tallied lower-case
    assert counts["annotation records"] == 5
    assert counts["bytes"] == header["totals"]["bytes"]


def test_a_header_stays_the_same_size_whatever_the_product_s_size(tmp_path):
    """The report reads only the header (and a bounded sample): the header must not grow
    with the product, only its numbers."""
    small = build_product(tmp_path / "small")
    large = build_product(tmp_path / "large", scale=20)
    assert holdings(read_header(large))["images"] == 20 * holdings(read_header(small))["images"]
    assert abs(large.stat().st_size - small.stat().st_size) < 64


def test_a_header_without_a_tally_by_suffix_gives_its_totals():
    header = header_of()
    del header["kinds"]
    counts = holdings(header)
    assert counts["files"] == 6 and "images" not in counts


def test_summary_shows_the_crawl_s_success_rate_and_each_failure_as_a_row_and_a_bar():
    page = summary_html(header_of(), [])
    assert "<b>86.0%</b> of 600 rows arrived: 516 succeeded, 84 failed, in 6 shards" in page
    reasons = failures(CRAWL)
    assert list(reasons)[0] == "HTTP Error N: Not Found"  # most first
    for reason, count in reasons.items():
        assert f"<td>{escape(reason)}</td>" in page
        assert f'<td class="n">{count}</td>' in page
    svg = page[page.index("<svg") : page.index("</svg>")]
    bars = [int(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="(\d+)"', svg)]
    assert len(bars) == 1 + len(reasons)  # succeeded, then every reason
    assert bars[0] == max(bars) and bars[1] == round(bars[0] * 35 / 516)


def test_summary_escapes_every_text_and_loads_nothing():
    page = summary_html(header_of(), ["<img src=http://x/y.jpg>", "a & b"])
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "&lt;img src=http://x/y.jpg&gt;" in page and "a &amp; b" in page
    # nothing a browser would fetch: no src/href attribute, no CSS url(), no import
    assert not re.search(r"<[^>]*\s(src|href)\s*=|url\(|@import", page)


def test_summary_names_checksums_pinned_and_found_licence_citation_and_revision():
    page = summary_html(header_of(), [])
    assert page.count("a" * 64) == 2  # catalog and download
    assert "revision (downloaded)</td><td>" + "b" * 40 in page
    assert "part-19.parquet" in page and "part-20.parquet" not in page
    assert "and 5 more files" in page
    assert "CC BY 2.0" in page and "Agrawal et al., nocaps, ICCV 2019" in page
    assert page.count("Agrawal et al.") == 1  # one row per distinct licence and citation
    assert "url_lists.nocaps_val" in page
    assert "(layout <code>lavis</code> for LAVIS/VPGTrans)" in page


def test_summary_says_what_annotation_files_dropped_and_warns_of_evaluation_sets():
    header = header_of()
    assert list(annotation_reports(header)) == ["lavis/nocaps/annotations/val.json"]
    page = summary_html(header, [])
    assert "missing: 8, undecodable: 2" in page
    assert "Evaluation sets shrank (lavis/nocaps/annotations/val.json)" in page
    kept = header_of(filtered={"v.json": {**DROPPED, "dropped": {}, "kept": 120}})
    assert "shrank" not in summary_html(kept, [])


def test_summary_has_no_clock_and_no_data_root():
    """A tree rebuilt later or elsewhere reports the same."""
    one = summary_html(header_of(), ["x"])
    other = summary_html(
        header_of(built="2030-01-01T00:00:00+00:00", roots={"data_root": "/elsewhere"}), ["x"]
    )
    assert one == other
    assert "/somewhere" not in one and "2026-11-30" not in one


def test_bar_chart_draws_zero_as_no_bar_and_cuts_long_labels():
    svg = bar_chart({"succeeded": 10, "x" * 80: 0}, "t")
    assert 'width="0"' in svg
    assert "x" * 44 + "\u2026" in svg and f"<title>{'x' * 80}: 0</title>" in svg


def test_write_report_draws_the_grid_then_writes_the_summary(tmp_path):
    header = build_product(tmp_path / "data")
    summary, grid = report_files(tmp_path / "reports", "coco_valid")
    seen = {}

    def draw(product, roots, out):
        seen.update(product=product, roots=roots)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"\xff\xd8stub")
        return ["a caption"]

    counts = write_report(header, {"g3m": "/r/g3m"}, summary, grid, draw=draw)
    assert seen == {"product": "coco_valid", "roots": {"g3m": "/r/g3m"}}
    assert counts["tar samples"] == 6
    assert "<li>a caption</li>" in summary.read_text()
    assert grid.read_bytes() == b"\xff\xd8stub"


def test_a_failed_grid_leaves_no_summary(tmp_path):
    header = build_product(tmp_path / "data")
    summary, grid = report_files(tmp_path / "reports", "coco_valid")

    def draw(product, roots, out):
        raise OSError("cannot read")

    with pytest.raises(OSError):
        write_report(header, {}, summary, grid, draw=draw)
    assert not summary.exists() and not list(summary.parent.glob("*"))


def test_every_product_is_filed_under_one_of_the_layouts():
    for name in PRODUCTS:
        assert layout_of(name) in LAYOUTS
    assert layout_of("coco_valid") == "g3m" and layout_of("laion115m") == "minigpt4"


def test_the_tally_by_suffix_is_bounded_and_sums_records_of_json_objects():
    kinds: dict = {}
    for i in range(KIND_LIMIT + 8):
        tally_kind(kinds, {"path": f"{{g3m}}/odd/name.s{i}", "size": 1})
    tally_kind(kinds, {"path": "{lavis}/a/.hidden", "size": 2})  # a dot file: no suffix
    tally_kind(kinds, {"path": "{lavis}/a/q.JSON", "size": 3, "records": {"a": 2, "b": 5}})
    assert len(kinds) == KIND_LIMIT + 1  # then every new suffix is "other"
    assert kinds["other"]["files"] == 8 + 2 and kinds["other"]["records"] == 7
