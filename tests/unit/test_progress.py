"""Progress bars (vlprep.progress): drawn with a rate, and never in SLURM job logs or under
VLPREP_PROGRESS=0, unless VLPREP_PROGRESS=1 asks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vlprep.progress import enabled

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.mark.parametrize(
    ("environ", "interactive", "expected"),
    [
        ({}, False, True),  # a log file or pipe outside SLURM: sparse bars
        ({}, True, True),
        ({"SLURM_JOB_ID": "42"}, False, False),  # a SLURM job log
        ({"SLURM_JOB_ID": "42"}, True, True),  # srun --pty: a terminal
        ({"SLURM_JOB_ID": "42", "VLPREP_PROGRESS": "1"}, False, True),
        ({"VLPREP_PROGRESS": "0"}, True, False),
        ({"VLPREP_PROGRESS": "0", "SLURM_JOB_ID": "42"}, True, False),
        ({"VLPREP_PROGRESS": ""}, False, True),
    ],
)
def test_when_bars_are_drawn(environ, interactive, expected):
    assert enabled(environ, interactive) is expected


def stderr_of_a_step(tmp_path: Path, **env: str) -> str:
    """What a step with a 100-item bar writes to stderr, redirected to a file as a job log is."""
    code = (
        "from vlprep.progress import bar\n"
        "with bar(100, 'convert', 'img') as progress:\n"
        "    for _ in range(100):\n"
        "        progress.update(1)\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "VLPREP_PROGRESS")}
    log = tmp_path / "job.log"
    with open(log, "w") as stderr:
        subprocess.run(
            [sys.executable, "-c", code],
            env={**clean, "PYTHONPATH": str(SCRIPTS), **env},
            stderr=stderr,
            check=True,
        )
    return log.read_text()


def test_a_log_outside_slurm_gets_the_bar_with_its_rate(tmp_path):
    said = stderr_of_a_step(tmp_path)
    assert "convert: 100%" in said and "img/s" in said


def test_a_slurm_job_log_gets_no_bar(tmp_path):
    assert stderr_of_a_step(tmp_path, SLURM_JOB_ID="42") == ""


def test_vlprep_progress_brings_it_back_in_slurm_and_silences_it_anywhere(tmp_path):
    assert "img/s" in stderr_of_a_step(tmp_path, SLURM_JOB_ID="42", VLPREP_PROGRESS="1")
    assert stderr_of_a_step(tmp_path, VLPREP_PROGRESS="0") == ""
