"""The stand-in world, served on loopback, and a helper to run the real workflow against it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from standin.hub import HubStandin
from standin.imagehost import ImageHost
from standin.imagenet import STANDIN_TOKEN
from standin.server import StandinServer
from standin.world import build_world, proxied_env, write_config
from tests.trees import snapshot

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> Path:
    """The generated world (val2017 has more than 2,999 images); returns its catalog path."""
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def standin(world):
    with StandinServer(world.parent / "www") as server:
        yield server


@pytest.fixture(scope="session")
def hub_standin(world):
    with HubStandin(world.parent / "hub") as hub:
        yield hub


# What the image host does per URL: mostly fine, and every way real hosts fail.
IMAGE_MIX = {"ok": 0.75, "404": 0.08, "corrupt": 0.05, "truncated": 0.04, "redirect": 0.08}


@pytest.fixture(scope="module")
def image_host():
    """Module-scoped: a test may `recover()` it, which must not leak into other modules."""
    with ImageHost(seed=0, mix=IMAGE_MIX) as host:
        yield host


@pytest.fixture
def fresh_standin(standin):
    """The shared stand-in with no faults and zeroed counters, before and after the test."""
    standin.clear_faults()
    standin.reset_stats()
    yield standin
    standin.clear_faults()


def make_config(
    tmp_path: Path, world: Path, standin: StandinServer, hub: HubStandin | None = None, **overrides
) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        data_root=tmp_path / "data",
        catalog=world,
        base_url=standin.url,
        hub_url=hub.url if hub else None,
        **overrides,
    )


def snakemake_cmd(config: Path, *args: str) -> list[str]:
    # Targets go before --configfile, which would swallow them (it takes several files).
    return [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", str(config)]


def run_snakemake(
    config: Path,
    *args: str,
    timeout: float = 600,
    images: ImageHost | None = None,
    env: dict[str, str | None] | None = None,
) -> subprocess.CompletedProcess:
    """Run the workflow; image downloads go through `images` (as their proxy) if given.

    The run has the stand-in hub's token for its gated repos in HF_TOKEN; `env` overrides
    variables (None removes one)."""
    base = proxied_env(images.url) if images else os.environ
    env = {**base, "VLPREP_PROGRESS": "0", "HF_TOKEN": STANDIN_TOKEN, **(env or {})}
    env = {name: value for name, value in env.items() if value is not None}
    return subprocess.run(
        snakemake_cmd(config, *args),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tree_snapshot(root: Path) -> dict:
    """Every path under root and what it holds, as tests/trees.py compares trees (logs,
    Snakemake's markers, the clock's keys in reports and the data root's own path left out)."""
    return snapshot(root)
