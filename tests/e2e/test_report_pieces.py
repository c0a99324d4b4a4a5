"""The data report (vlprep.report, rules/report.smk) as the demo writes it: Snakemake's own
report of three products, one per layout it covers, each filed under its layout with its summary
and sample grid embedded as built, nothing loaded from elsewhere, and each summary saying what
the build's own reports say (img2dataset's success rate, what an annotation file dropped)."""

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vlprep.report import layout_of

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# nxtp tars (g3m), a URL-list set through img2dataset (minigpt4), filtered annotations (lavis)
PRODUCTS = ("coco_valid", "laion115m", "vg")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """The demo of PRODUCTS in a fresh work directory, and what it printed."""
    workdir = tmp_path_factory.mktemp("report")
    env = {**os.environ, "VLPREP_PROGRESS": "0"}
    command = [sys.executable, "-m", "standin.demo", "--workdir", str(workdir), "--cores", "2"]
    proc = subprocess.run(
        [*command, *PRODUCTS], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return workdir, proc.stdout


def embedded(html: str, name: str):
    """A JSON value the report's page declares as `var <name> = ...;`."""
    match = re.search(rf"<script id=\"\w+\">\s*var {name} = (.*?);\n\s*</script>", html, re.S)
    assert match, f"no `var {name}` in the report"
    return json.loads(match.group(1))


def test_the_demo_says_where_its_report_is_and_how_big(demo):
    workdir, out = demo
    report = workdir / "data" / "report.html"
    assert f"open file://{report}" in out
    said = re.search(r"wrote the data report, ([\d.]+) MiB in ([\d.]+) s", out)
    assert said and float(said.group(1)) == pytest.approx(report.stat().st_size / 2**20, abs=0.06)


def test_every_product_is_filed_under_its_layout_with_its_summary_and_grid(demo):
    workdir, _ = demo
    html = (workdir / "data" / "report.html").read_text()
    pieces = workdir / "data" / "reports" / "products"
    filed = {
        layout: {name: sorted(files) for name, files in products.items()}
        for layout, products in embedded(html, "categories").items()
    }
    expected: dict[str, dict[str, list[str]]] = {}
    for product in PRODUCTS:
        files = [str(pieces / product / "samples.jpg"), str(pieces / product / "summary.html")]
        expected.setdefault(layout_of(product), {})[product] = files
    assert filed == expected
    results = embedded(html, "results")
    for product in PRODUCTS:
        for name, mime in (("summary.html", "text/html"), ("samples.jpg", "image/jpeg")):
            result = results[str(pieces / product / name)]
            assert result["mime_type"] == mime
            assert result["labels"]["product"] == product
            data = base64.b64decode(result["data_uri"].split("base64,", 1)[1])
            assert data == (pieces / product / name).read_bytes(), (product, name)
        assert data[:2] == b"\xff\xd8"  # the grid is a JPEG
        assert (
            f"<strong>{product}</strong>"
            in results[str(pieces / product / "summary.html")]["caption"]
        )


def test_the_report_loads_nothing_from_elsewhere(demo):
    """Every script, style and image is in the file: no tag points outside it (the page's
    scripts name URLs in comments and licences, which nothing loads)."""
    workdir, _ = demo
    html = (workdir / "data" / "report.html").read_text()
    outside = r"""\s(src|href)\s*=\s*["']?(\w+:)?//"""
    assert not re.search(r"<(script|img|iframe|link|source|embed)[^>]*" + outside, html)
    assert "<link" not in html and not re.search(r"@import|url\(\s*[\"']?(\w+:)?//", html)
    for product in PRODUCTS:
        page = (workdir / "data" / "reports" / "products" / product / "summary.html").read_text()
        assert "<script" not in page
        assert not re.search(r"<[^>]*\s(src|href)\s*=|url\(|@import", page), product


def test_summaries_say_what_the_build_s_reports_say(demo):
    workdir, _ = demo
    data = workdir / "data"
    crawl = json.loads((data / "reports" / "laion115m.json").read_text())
    page = (data / "reports" / "products" / "laion115m" / "summary.html").read_text()
    attempted, succeeded = crawl["attempted"], crawl["succeeded"]
    assert f"<b>{succeeded / attempted:.1%}</b> of {attempted:,} rows arrived" in page
    svg = page[page.index("<svg") : page.index("</svg>")]
    reasons = {k: v for k, v in crawl["failed_by_kind"].items() if v}
    assert len(re.findall(r"<rect ", svg)) == 1 + len(reasons)

    page = (data / "reports" / "products" / "vg" / "summary.html").read_text()
    for name in ("vg_caption.json", "vg_qa.json"):
        report = json.loads((data / "reports" / "lavis" / "vg" / "annotations" / name).read_text())
        dropped = ", ".join(f"{r}: {n:,}" for r, n in sorted(report["dropped"].items()))
        row = (
            f'<td>lavis/vg/annotations/{name}</td><td class="n">{report["records"]:,}</td>'
            f'<td class="n">{report["kept"]:,}</td>'
        )
        assert row in page and dropped in page, name

    header = json.loads((data / "manifests" / "coco_valid.json").read_text())
    page = (data / "reports" / "products" / "coco_valid" / "summary.html").read_text()
    for source in header["sources"].values():
        assert source["catalog"]["sha256"] in page
    assert f'<td>tar samples</td><td class="n">{header["totals"]["samples"]:,}</td>' in page
