"""A run killed hard leaves Snakemake's lock behind; the next run releases it by itself once
no process holds it, and refuses, naming the holder, while one does (vlprep.locks)."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, make_config, snakemake_cmd, tree_snapshot
from tests.processes import session_processes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A working directory of its own (the repository's files linked in), so that its
    .snakemake/locks is this test's alone: Snakemake removes the whole folder when any run in
    a directory ends."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("Snakefile", "rules", "scripts", "config", "profiles", "envs"):
        (work / name).symlink_to(REPO / name)
    return work


def start(config: Path, target: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        snakemake_cmd(config, target),
        cwd=cwd,
        env={**os.environ, "VLPREP_PROGRESS": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def run_snakemake(config: Path, target: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        snakemake_cmd(config, target),
        cwd=cwd,
        env={**os.environ, "VLPREP_PROGRESS": "0"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def wait_for_part(data: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until a download is under way (a non-empty .part): the run holds its lock then."""
    deadline = time.monotonic() + timeout
    while not any(p.stat().st_size for p in data.glob("downloads/*/*.part") if p.exists()):
        assert proc.poll() is None and time.monotonic() < deadline, "no download started"
        time.sleep(0.02)


@pytest.fixture
def slow_world(fresh_standin):
    # Slow the archives down so that a download is in flight when the run is killed.
    fresh_standin.set_faults([{"kind": "trickle", "path": "*.zip", "rate": 400_000}])
    return fresh_standin


def test_killed_run_is_unlocked_by_the_next_one(tmp_path, workdir, world, slow_world):
    """kill -9 of Snakemake alone: its lock stays and its download job runs on, orphaned. The
    rerun stops that job (it would write the same file), releases the lock and finishes."""
    config = make_config(tmp_path, world, slow_world)
    proc = start(config, "cosmos_coco", workdir)
    wait_for_part(tmp_path / "data", proc)
    os.kill(proc.pid, signal.SIGKILL)  # the scheduler only: its jobs are orphaned
    proc.wait()
    orphans = session_processes(proc.pid)
    assert orphans, "the killed run left no job running: the test does not test orphans"
    assert list((workdir / ".snakemake" / "locks").glob("*.lock")), "no stale lock to release"
    slow_world.clear_faults()
    result = run_snakemake(config, "cosmos_coco", workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "LockException" not in output
    assert "vlprep: stopping job processes the gone run left" in output
    assert "vlprep: released the lock" in output
    assert session_processes(proc.pid) == []


def test_a_live_run_keeps_its_lock_and_is_named(tmp_path, workdir, world, slow_world):
    config = make_config(tmp_path, world, slow_world)
    holder = start(config, "cosmos_coco", workdir)
    try:
        wait_for_part(tmp_path / "data", holder)
        result = run_snakemake(config, "cosmos_coco", workdir)
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert f"is locked by a run that is still going: pid {holder.pid}" in output
        assert "LockException" in output or "cannot be locked" in output
        assert holder.poll() is None, "the refused run must not touch the holder"
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    # the holder is gone now (its whole session killed): the next run goes on by itself
    slow_world.clear_faults()
    result = run_snakemake(config, "cosmos_coco", workdir)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "vlprep: released the lock" in result.stderr


def test_an_unkilled_run_leaves_no_lock(tmp_path, workdir, world, fresh_standin):
    config = make_config(tmp_path, world, fresh_standin)
    assert run_snakemake(config, "cosmos_coco", workdir).returncode == 0
    assert not list((workdir / ".snakemake" / "locks").glob("*"))
    snapshot = tree_snapshot(tmp_path / "data")
    again = run_snakemake(config, "cosmos_coco", workdir)
    assert "released the lock" not in again.stderr
    assert tree_snapshot(tmp_path / "data") == snapshot
