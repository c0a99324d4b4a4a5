"""The demo's data report, opened in Debian's headless chromium and clicked through.

`python -m standin.demo` builds one or two products of every layout against the stand-in world
and writes Snakemake's report of them (<workdir>/data/report.html, as `make demo` does). The walk
(tests/browser/report_ui.py) opens every layout's category, every product's section and both of
its views; every product built must have its section under its layout (its first bundle, as
vlprep.report files it) holding a sample grid that loads and a summary, with no image broken,
no console error and no request leaving the file. The screenshots are kept in the artifacts
folder (printed; run pytest with -s or -rA to see the paths and timings).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser.chromium import skip_reason
from tests.browser.report_ui import walk
from vlprep.products import PRODUCTS

REPO = Path(__file__).resolve().parents[2]
# One product per layout, two under cosmos: a category listing its sections and categories
# that open their lone section at once are both walked.
BUILT = (
    "coco_valid",
    "cosmos_cifar10",
    "flickr30k",
    "gqa",
    "minigpt4_cc_sbu_align",
    "glamm_llava",
)
GRID_SHOWN = "coco_valid"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ""),
]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory) -> tuple[Path, float]:
    """The demo's report of BUILT, and the seconds the demo took (world, build and report)."""
    workdir = tmp_path_factory.mktemp("demo")
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "standin.demo", "--workdir", str(workdir), "--cores", "2", *BUILT],
        cwd=REPO,
        env={**os.environ, "VLPREP_PROGRESS": "0"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    took = time.monotonic() - started
    assert run.returncode == 0, f"the demo failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    report = workdir / "data" / "report.html"
    assert report.is_file(), f"the demo wrote no report at {report}:\n{run.stdout[-2000:]}"
    return report, took


def test_the_demo_report_renders_every_product(tab, demo_report, artifacts):
    report, build_seconds = demo_report
    expected: dict[str, list[str]] = {}
    for product in BUILT:
        expected.setdefault(PRODUCTS[product].bundles[0], []).append(product)

    started = time.monotonic()
    seen = walk(tab, report, expected, artifacts, require=("img", "html"), grid_of=GRID_SHOWN)
    walk_seconds = time.monotonic() - started

    size = report.stat().st_size / 2**20
    print(f"\n{tab.browser.version()}; the demo's report of {', '.join(BUILT)}: {size:.1f} MiB")
    print(f"demo (world, build, report) {build_seconds:.0f} s; browser walk {walk_seconds:.1f} s")
    print(f"views opened: {len(seen.results)}")
    for shot in seen.screenshots:
        print(f"screenshot: {shot}")
    assert seen.problems == []
    # Exactly what was built, each under its layout: no section missing, none extra.
    assert seen.sections == {layout: sorted(products) for layout, products in expected.items()}
    for product in BUILT:
        views = sorted(r.kind for r in seen.results if r.subcategory == product)
        assert views == ["html", "img"], f"{product}: views {views}"
    # The grid was shown (the navbar's logo is the other picture) and kept as a screenshot.
    grids = [r for r in seen.results if r.subcategory == GRID_SHOWN and r.kind == "img"]
    assert grids and grids[0].images == 2
    assert [p.name for p in seen.screenshots] == [
        "report-main.png",
        f"report-{GRID_SHOWN}-grid.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in seen.screenshots)
