"""Who holds Snakemake's lock, read from real processes: a live owner keeps it, a dead one's
lock is released, another host's is never touched, and jobs a dead run left are stopped."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vlprep import locks

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

SLEEPER = "import time; time.sleep(60)"


def spawn(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def started(pid: int) -> int:
    for _ in range(100):
        proc = locks._read_proc(pid)
        if proc and proc.argv:  # argv is empty until the exec is done
            return proc.started
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} did not start")


def lock_dir(tmp_path: Path, owner: dict | None) -> Path:
    lockdir = tmp_path / ".snakemake" / "locks"
    lockdir.mkdir(parents=True)
    for kind in ("input", "output"):
        (lockdir / f"0.{kind}.lock").write_text("/data/x\n")
    if owner is not None:
        record = {"locks": ["0.input.lock", "0.output.lock"], "since": "now", "command": "sm"}
        path = locks.owner_path(lockdir, owner["host"], owner["pid"])
        path.write_text(json.dumps({**record, **owner}))
    return lockdir


def verdict(lockdir: Path, workdir: Path) -> locks.Verdict:
    return locks.examine(lockdir, str(workdir), locks.processes(), os.getpid())


@pytest.fixture
def live(tmp_path):
    proc = spawn([sys.executable, "-c", SLEEPER], tmp_path)
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_owner_holds_its_lock(tmp_path, live):
    host = socket.gethostname()
    lockdir = lock_dir(tmp_path, {"host": host, "pid": live.pid, "started": started(live.pid)})
    result = verdict(lockdir, tmp_path)
    assert result.held_by and f"pid {live.pid} on {host}" in result.held_by[0]
    assert not locks.release_if_stale(lockdir, str(tmp_path), say=lambda m: None)
    assert len(locks.lock_files(lockdir)) == 2


def test_a_reused_pid_is_not_the_owner(tmp_path, live):
    """Same pid, another start time: the owner is gone, whoever has its pid now."""
    owner = {"host": socket.gethostname(), "pid": live.pid, "started": started(live.pid) - 1}
    result = verdict(lock_dir(tmp_path, owner), tmp_path)
    assert not result.held_by and result.dead


def test_a_dead_owners_lock_is_released(tmp_path):
    gone = spawn([sys.executable, "-c", "pass"], tmp_path)
    gone.wait()
    lockdir = lock_dir(tmp_path, {"host": socket.gethostname(), "pid": gone.pid, "started": 1})
    said = []
    assert locks.release_if_stale(lockdir, str(tmp_path), say=said.append)
    assert list(lockdir.iterdir()) == []
    assert "released the lock" in said[-1] and f"pid {gone.pid}" in said[-1]


def test_another_hosts_lock_is_never_released(tmp_path):
    owner = {"host": "login2.cluster.example", "pid": 4242, "started": 1}
    lockdir = lock_dir(tmp_path, owner)
    said = []
    assert not locks.release_if_stale(lockdir, str(tmp_path), say=said.append)
    assert "login2.cluster.example" in said[0] and "cannot check" in said[0]
    assert len(locks.lock_files(lockdir)) == 2


def test_an_unowned_lock_is_held_while_a_snakemake_runs_in_the_directory(tmp_path):
    fake = tmp_path / "bin" / "snakemake"
    fake.parent.mkdir()
    fake.write_text(SLEEPER)
    lockdir = lock_dir(tmp_path, None)
    runner = spawn([sys.executable, str(fake), "--cores", "2"], tmp_path)
    try:
        started(runner.pid)
        result = verdict(lockdir, tmp_path)
        assert result.held_by and f"pid {runner.pid}" in result.held_by[0]
    finally:
        runner.kill()
        runner.wait()
    assert verdict(lockdir, tmp_path).held_by == []  # once it is gone, the lock is stale


def test_jobs_left_by_a_dead_run_are_stopped(tmp_path):
    script = tmp_path / ".snakemake" / "scripts" / "tmpabc.fetch_file.py"
    script.parent.mkdir(parents=True)
    script.write_text(SLEEPER)
    orphan = spawn([sys.executable, str(script)], tmp_path)
    unrelated = spawn([sys.executable, "-c", SLEEPER], tmp_path)
    gone = spawn([sys.executable, "-c", "pass"], tmp_path)  # the run that held the lock
    gone.wait()
    try:
        started(orphan.pid), started(unrelated.pid)
        owner = {"host": socket.gethostname(), "pid": gone.pid, "started": 1}
        lockdir = lock_dir(tmp_path, owner)
        said = []
        assert locks.release_if_stale(lockdir, str(tmp_path), say=said.append)
        assert orphan.wait(timeout=15) is not None
        assert f"pid {orphan.pid}" in said[0]
        assert unrelated.poll() is None  # not a Snakemake job: left alone
    finally:
        for proc in (orphan, unrelated):
            proc.kill()
            proc.wait()


def test_process_kinds_are_told_apart(tmp_path):
    def proc(*argv):
        return locks.Proc(1, 0, 0, tuple(argv), str(tmp_path))

    assert locks.is_main(proc("/v/bin/python", "/v/bin/snakemake", "--cores", "2"))
    assert locks.is_main(proc("/usr/bin/python3", "-m", "snakemake", "all"))
    assert locks.is_job(proc("/bin/bash", "-c", "python /w/.snakemake/scripts/tmp1.fetch_file.py"))
    assert locks.is_job(proc("/v/bin/python", "-m", "snakemake", "--mode", "subprocess"))
    assert not locks.is_main(proc("/v/bin/python", "-m", "snakemake", "--mode", "remote"))
    assert not locks.is_snakemake(proc("/v/bin/python", "-m", "standin.demo"))
