"""Planning with the real catalog needs no network: the dry run lists the whole plan."""

import shutil
import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import REPO


def snakemake(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=REPO, capture_output=True, text=True
    )


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in table.splitlines()[3:]:
        name, _, count = line.rpartition(" ")
        counts[name.strip()] = int(count)
    return counts


def test_dry_run_of_coco_valid_lists_the_full_plan(tmp_path):
    result = snakemake("-n", "coco_valid", "--config", f"data_root={tmp_path}/data")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts == {
        "fetch_file": 2,
        "extract_archive": 2,
        "coco_link": 2,
        "coco_wds": 1,
        "coco_valid": 1,
        "total": 8,
    }
    assert "http" not in result.stderr.lower() or "images.cocodataset.org" not in result.stderr


def test_dry_run_of_all(tmp_path):
    result = snakemake("-n", "all", "--config", f"data_root={tmp_path}/data")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts["fetch_file"] == 3 and counts["coco_wds"] == 2 and counts["cosmos_coco_link"] == 1


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz (dot) is not installed")
@pytest.mark.parametrize("graph", ["--dag", "--rulegraph"])
def test_graphs_draw_to_svg(tmp_path, graph):
    result = snakemake("all", graph, "--config", f"data_root={tmp_path}/data")
    assert result.returncode == 0, result.stderr
    svg = subprocess.run(["dot", "-Tsvg"], input=result.stdout, capture_output=True, text=True)
    assert svg.returncode == 0 and "<svg" in svg.stdout
    assert "coco_wds" in svg.stdout


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dry_run_of_laion115m_at_real_size_plans_parts_from_row_counts(tmp_path):
    started = time.monotonic()
    result = snakemake("-n", "minigpt4", "--config", f"data_root={tmp_path}/data")
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    # 104,890,000 rows at 1,000,000 rows per part: 105 img2dataset jobs, no checkpoint.
    assert counts["i2d_part"] == 105
    assert counts["laion115m_tsv"] == 1 and counts["i2d_report"] == 1
    print(f"\ndry run of minigpt4: {counts['total']} jobs in {seconds:.1f} s")
    assert seconds < 60
