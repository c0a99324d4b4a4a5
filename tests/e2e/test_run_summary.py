"""The end of every run says what happened (vlprep.summary through rules/common.smk), on real
runs against the stand-in world: one that builds, one with nothing to do, one whose download
the host corrupts; and the LICENSES.md the build leaves beside the data (vlprep.licenses)."""

import re

import pytest
import yaml

from tests.e2e.conftest import make_config, run_snakemake

pytestmark = pytest.mark.e2e

SUMMARY = "vlprep: what this run did:"


def summary_of(stderr: str) -> list[str]:
    """The summary's lines: from its first line to the first line that is not indented."""
    lines = stderr.splitlines()
    start = lines.index(SUMMARY)
    block = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        block.append(line)
    return block


def test_a_run_that_builds_one_with_nothing_to_do_and_one_that_fails(
    tmp_path, world, fresh_standin
):
    config = make_config(tmp_path, world, fresh_standin)
    data = tmp_path / "data"
    report = f"--configfile {config} --report {data}/report.html"

    built = run_snakemake(config, "cosmos_cifar10")
    assert built.returncode == 0, built.stderr[-3000:]
    assert summary_of(built.stderr) == [
        SUMMARY,
        "  built (1): cosmos_cifar10",
        f"  data report: snakemake cosmos_cifar10 {report}",
    ]
    # the licence file beside the data names the product, its licence and its source
    catalog = yaml.safe_load(world.read_text())
    licenses = (data / "cosmos" / "LICENSES.md").read_text()
    assert "Products: cosmos_cifar10\n" in licenses
    assert f"Licence: {' '.join(catalog['cifar10']['license'].split())}" in licenses
    assert f"{catalog['cifar10']['url']}, sha256 `{catalog['cifar10']['sha256']}`" in licenses

    again = run_snakemake(config, "cosmos_cifar10")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stderr
    assert summary_of(again.stderr)[1:] == [
        "  already up to date (1): cosmos_cifar10",
        f"  data report: snakemake cosmos_cifar10 {report}",
    ]

    fresh_standin.set_faults([{"kind": "wrong_bytes", "path": "*/dtd-r1.0.1.tar.gz"}])
    failed = run_snakemake(config, "cosmos_cifar10", "cosmos_dtd")
    assert failed.returncode != 0
    download = data / "downloads" / "dtd" / "dtd-r1.0.1.tar.gz"
    log = data / "logs" / "fetch_file" / "dtd" / "dtd-r1.0.1.tar.gz.log"
    lines = summary_of(failed.stderr)
    assert lines[1:6] == [
        "  already up to date (1): cosmos_cifar10",
        "  NOT BUILT (1): cosmos_dtd: a job they need failed",
        f"  FAILED: rule fetch_file, output {download}",
        f"    log: {log}",
        lines[5],
    ]
    # why, from the job's own log: the error our script logged, then what to do
    assert re.fullmatch(r"    \| \d\d:\d\d:\d\d ERROR vlprep: dtd: could not download .*", lines[5])
    assert "sha256 mismatch" in lines[6]
    assert lines[-1] == f"  data report: snakemake cosmos_cifar10 cosmos_dtd {report}"
    # Snakemake's own last word is not said to come from our Snakefile
    assert 'WorkflowError in file "' not in failed.stderr
    assert "At least one job did not complete successfully." in failed.stderr
    # a dry run plans; it says nothing of what happened
    fresh_standin.clear_faults()
    planned = run_snakemake(config, "-n", "cosmos_dtd")
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert SUMMARY not in planned.stdout + planned.stderr
