"""Run the consumers' own loaders (torchvision, mmsegmentation) on built trees.

They live in their own venv (.venv-loaders, `make loaders`, part of `make test`): each test
runs a script of this folder there, in a subprocess, and reads what it prints (one JSON
document). The scripts import only the loader packages, never vlprep, so what they prove is
what the consumer's class does with the tree.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOADERS_PYTHON = REPO / ".venv-loaders" / "bin" / "python"


@pytest.fixture(scope="session")
def run_loader():
    """run_loader(script, *args) -> the JSON the script printed (it fails the test on exit != 0)."""
    if not LOADERS_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{LOADERS_PYTHON} is missing: `make loaders` must run before the tests")
        pytest.skip("the consumers' loaders are not installed: run `make loaders`")

    def run(script: str, *args: str) -> dict:
        result = subprocess.run(
            [str(LOADERS_PYTHON), str(Path(__file__).parent / script), *map(str, args)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": "", "PYTHONWARNINGS": "ignore"},
        )
        assert result.returncode == 0, f"{script} {args}:\n{result.stdout}\n{result.stderr}"
        return json.loads(result.stdout.strip().splitlines()[-1])

    return run
