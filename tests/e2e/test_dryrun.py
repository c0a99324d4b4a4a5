"""Planning needs no network: the dry run lists the whole plan and sends no request.

The dry runs use a config whose every host is a stand-in (files and hub), so a request the
plan should not make lands on their request counters; a real fetch through the same config
shows that the counters do see one.
"""

import shutil
import subprocess
import sys
import time

import pytest
import yaml

from standin.world import REAL_CATALOG, write_config
from tests.e2e.conftest import REPO, make_config, run_snakemake

NO_REQUESTS = {"file host": 0, "hub": 0}


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


@pytest.fixture
def stand_ins(fresh_standin, hub_standin):
    """The file host and the hub stand-in, with no faults and their counters at zero."""
    hub_standin.clear_faults()
    hub_standin.reset_stats()
    return fresh_standin, hub_standin


@pytest.fixture
def standin_config(tmp_path, world, stand_ins):
    """The stand-in world's config: every file host and the hub are the stand-ins."""
    return make_config(tmp_path, world, *stand_ins)


def requests_received(stand_ins) -> dict[str, int]:
    """Requests each stand-in has answered since `stand_ins` zeroed its counter."""
    file_host, hub = stand_ins
    return {
        "file host": sum(path["requests"] for path in file_host.stats().values()),
        "hub": len(hub.requests()),
    }


@pytest.mark.e2e
def test_dry_run_of_coco_valid_lists_the_full_plan(standin_config, stand_ins):
    result = run_snakemake(standin_config, "-n", "coco_valid")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts == {
        "fetch_file": 2,
        "extract_archive": 2,
        "coco_link": 2,
        "coco_wds": 1,
        "product_manifest": 1,
        "product_report": 1,
        "coco_valid": 1,
        "total": 10,
    }
    assert requests_received(stand_ins) == NO_REQUESTS


@pytest.mark.e2e
def test_dry_run_of_all(standin_config, stand_ins):
    result = run_snakemake(standin_config, "-n", "all")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert counts["fetch_file"] == 5 and counts["coco_wds"] == 2 and counts["cosmos_coco_link"] == 1
    assert counts["fetch_hub"] == 1 and counts["flickr30k_cosmos"] == 1  # COSMOS's Flickr30k
    assert requests_received(stand_ins) == NO_REQUESTS


@pytest.mark.e2e
def test_a_real_fetch_through_the_same_config_registers_on_the_counters(standin_config, stand_ins):
    """The counters the dry runs find at zero do count: one small file and one hub entry."""
    downloads = standin_config.parent / "data" / "downloads"
    result = run_snakemake(
        standin_config,
        f"{downloads}/nocaps_val_info/nocaps_val_4500_captions.json",
        f"{downloads}/laion_coco_meta",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    received = requests_received(stand_ins)
    assert received["file host"] > 0 and received["hub"] > 0, received


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz (dot) is not installed")
@pytest.mark.parametrize("graph", ["--dag", "--rulegraph"])
def test_graphs_draw_to_svg(standin_config, stand_ins, graph):
    result = run_snakemake(standin_config, "all", graph)
    assert result.returncode == 0, result.stderr
    svg = subprocess.run(["dot", "-Tsvg"], input=result.stdout, capture_output=True, text=True)
    assert svg.returncode == 0 and "<svg" in svg.stdout
    assert "coco_wds" in svg.stdout
    assert requests_received(stand_ins) == NO_REQUESTS


def test_lint_is_clean():
    result = snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
def test_dry_run_of_laion115m_at_real_size_plans_parts_from_row_counts(tmp_path, stand_ins):
    # The real catalog (real row counts) and the real part sizes, with every host a stand-in.
    real_url_lists = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["url_lists"]
    file_host, hub = stand_ins
    config = write_config(
        tmp_path / "config.yaml",
        data_root=tmp_path / "data",
        catalog=REAL_CATALOG,
        base_url=file_host.url,
        hub_url=hub.url,
        url_lists=real_url_lists,
    )
    started = time.monotonic()
    result = run_snakemake(config, "-n", "minigpt4")
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    # LAION-115M's 104,890,000 rows and CC+SBU's 12,560,000 at 1,000,000 rows per part:
    # 105 + 13 img2dataset jobs, no checkpoint.
    assert counts["i2d_part"] == 105 + 13
    assert counts["laion115m_tsv"] == 1 and counts["cc_sbu_tsv"] == 1
    assert counts["i2d_report"] == 2
    # stage 2: the stored cc_sbu_align download, linked as MiniGPT-4 reads it
    assert counts["minigpt4_cc_sbu_align_links"] == 1
    assert requests_received(stand_ins) == NO_REQUESTS
    print(f"\ndry run of minigpt4: {counts['total']} jobs in {seconds:.1f} s")
    assert seconds < 60
