"""What a user sees for a config mistake, a nested --config and a mistyped target: dry runs
only, with the real catalog and no network."""

import subprocess
import sys
import time

import pytest

from tests.e2e.conftest import REPO
from tests.e2e.test_dryrun import job_counts


def snakemake(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(("rows_per_part", "parts"), [(1000000, 105), (2000000, 53)])
def test_nested_config_with_numbers_is_accepted_and_used(tmp_path, rows_per_part, parts):
    # Snakemake hands `1000000` over as the string '1000000' (YAML BaseLoader).
    nested = f'url_lists={{"laion115m": {{"rows_per_part": {rows_per_part}}}}}'
    result = snakemake("-n", "laion115m", "--config", f"data_root={tmp_path}/data", nested)
    assert result.returncode == 0, result.stderr[-3000:]
    assert job_counts(result.stdout)["i2d_part"] == parts  # 104,890,000 rows / rows_per_part


def test_unknown_config_key_is_one_line_with_the_closest_key(tmp_path):
    result = snakemake("-n", "--config", f"data_root={tmp_path}/data", "lnk_mode=copy")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "lnk_mode: unknown key; allowed at the top level: catalog," in output
    assert "did you mean 'link_mode'?" in output
    assert "Failed validating" not in output and "$schema" not in output
    assert len(output.splitlines()) < 12, output


def test_mistyped_target_suggests_the_closest_before_any_job(tmp_path):
    started = time.monotonic()
    result = snakemake("-n", "coco_vlaid", "--config", f"data_root={tmp_path}/data")
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "coco_vlaid: no such target" in output
    assert "Did you mean coco_valid" in output
    assert "No rule to produce" not in output
    assert "Traceback (most recent call last)" not in output
    assert "Job stats" not in output and not (tmp_path / "data").exists()
    assert seconds < 60


def test_a_path_is_still_left_to_snakemake(tmp_path):
    result = snakemake("-n", f"{tmp_path}/nothing/here", "--config", f"data_root={tmp_path}/d")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "No rule to produce" in output and "no such target" not in output
