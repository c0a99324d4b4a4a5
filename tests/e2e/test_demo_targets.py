"""`python -m standin.demo <target>` checks what that target built, and refuses a mistyped one
before building anything."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_demo(workdir: Path, *targets: str, timeout: float) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "VLPREP_PROGRESS": "0",
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "PYTHONPATH": str(REPO / "scripts"),
    }
    return subprocess.run(
        [sys.executable, "-m", "standin.demo", "--workdir", str(workdir), "--cores", "2", *targets],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_refuses_a_mistyped_target_before_building_the_world(tmp_path):
    proc = run_demo(tmp_path, "coco_vlaid", timeout=120)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "coco_vlaid: no such target" in proc.stderr
    assert "Did you mean coco_valid" in proc.stderr
    assert not (tmp_path / "world").exists()


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_of_one_product_checks_only_that_product(tmp_path):
    proc = run_demo(tmp_path, "sbu", timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "vlprep demo: checking what the consumers open of sbu\n" in proc.stdout
    assert "consumer path checks (vlprep.consumers): 0 problem(s)" in proc.stdout
    assert (tmp_path / "data" / "lavis" / "sbu_captions" / "images").is_dir()
    assert not (tmp_path / "data" / "lavis" / "vg").exists()  # not asked for, not checked
