"""The workflow on a real (single-node) SLURM gives exactly what a local run gives.

`.ci/slurm_up.sh` brings up munged + slurmctld + slurmd on this machine (no accounting, so the
plugin is told `--slurm-status-command squeue`); `.ci/slurm_down.sh` stops them afterwards,
whatever happened. The stand-in world is served in-process on loopback. `coco_valid` is built
twice from it, once locally and once through `profiles/slurm`, each into its own data_root, and
the two trees must be identical. The SLURM run must really have gone through SLURM: every
non-local job Snakemake scheduled must show up as a COMPLETED SLURM job of that run, on the
node, with its own SLURM log, and the downloads (a localrule on the "login node") must not.

Root only (slurmd and munged run as root here); needs the packages of .ci/install_slurm.sh.
Set SLURM_SCRATCH to move the cluster's state dir (default /var/tmp/vlprep-slurm).
"""

import collections
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.trees import content

REPO = Path(__file__).resolve().parents[2]
CI = REPO / ".ci"
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
# The plugin can wait forever (e.g. when its status command fails); never let it hang CI.
RUN_TIMEOUT = ["timeout", "-k", "10", "900"]
TARGET = "coco_valid"
# Rules Snakemake runs itself, never submitted: fetch_file (a localrule while
# fetch_on_login_node is true, the default), product_report (a localrule: seconds of reading
# a bounded sample) and the target rule, which has no action.
LOCAL_RULES = {"fetch_file", "product_report", TARGET}


def _skip_reason() -> str | None:
    if sys.platform != "linux":
        return "SLURM tests run on Linux only"
    if os.geteuid() != 0:
        return "SLURM tests need root (they start slurmctld, slurmd and munged)"
    if shutil.which("slurmctld", path=SBIN_PATH) is None:
        return "slurmctld is not installed (run .ci/install_slurm.sh as root)"
    if shutil.which("timeout") is None:
        return "coreutils' timeout is missing"
    return None


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or ""),
]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PATH": SBIN_PATH, "VLPREP_PROGRESS": "0", **extra}
    # Clients must find the test cluster through /etc/slurm/slurm.conf, as jobs do.
    env.pop("SLURM_CONF", None)
    return env


def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def _check(cmd: list[str], timeout: float = 30) -> str:
    return subprocess.run(
        cmd, env=_env(), capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


@pytest.fixture(scope="module")
def timings() -> dict[str, float]:
    """Measured durations, printed at the end of the module (run pytest with -s or -rA)."""
    measured: dict[str, float] = {}
    yield measured
    print("\nSLURM test timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in measured.items()))


@pytest.fixture(scope="module")
def slurm_cluster(timings):
    """A single-node SLURM on this machine; stopped after the module, even on failure."""
    scratch = os.environ.get("SLURM_SCRATCH", "/var/tmp/vlprep-slurm")
    env = _env(SLURM_SCRATCH=scratch)
    started = time.monotonic()
    try:
        up = subprocess.run(
            ["bash", str(CI / "slurm_up.sh")], env=env, capture_output=True, text=True, timeout=120
        )
        timings["bring-up"] = time.monotonic() - started
        if up.returncode != 0:
            pytest.fail(f"slurm_up.sh failed (rc {up.returncode}):\n{up.stdout}\n{up.stderr}")
        cpus, mem = _check(["sinfo", "-h", "-N", "-o", "%c %m"]).split()[:2]
        yield {"scratch": Path(scratch), "cpus": int(cpus), "mem_mb": int(mem)}
    finally:
        down = subprocess.run(
            ["bash", str(CI / "slurm_down.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if down.returncode != 0:
            print(f"slurm_down.sh failed:\n{down.stdout}\n{down.stderr}", file=sys.stderr)


@pytest.fixture(scope="module")
def standin_world(tmp_path_factory, timings):
    """The generated world, served on loopback for the module; yields (catalog, server)."""
    from standin.server import StandinServer
    from standin.world import build_world

    world = tmp_path_factory.mktemp("world")
    started = time.monotonic()
    catalog = build_world(world)
    timings["world"] = time.monotonic() - started
    with StandinServer(world / "www") as server:
        yield catalog, server


def _snakemake(config: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [*RUN_TIMEOUT, _python(), "-m", "snakemake", "--configfile", str(config), *args]
    started = time.monotonic()
    # `timeout` kills the run itself; the extra margin only guards against `timeout` failing.
    result = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=960)
    return result, time.monotonic() - started


def _explain(result: subprocess.CompletedProcess, *logs: Path) -> str:
    parts = [f"rc {result.returncode}", "---- stderr (tail) ----", result.stderr[-6000:]]
    for log in logs:
        for path in sorted(Path(log).rglob("*.log")) if Path(log).is_dir() else []:
            parts += [f"---- {path} ----", path.read_text(errors="replace")[-2000:]]
    return "\n".join(parts)


def _job_stats(output: str) -> collections.Counter:
    """Snakemake's own 'Job stats' table (the first one printed): rule -> job count."""
    stats: collections.Counter = collections.Counter()
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    for line in lines[start + 3 :]:
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit() or fields[0] == "total":
            break
        stats[fields[0]] = int(fields[1])
    return stats


def _snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every path under data_root except logs: a file's sha256, a link's target, or 'dir'.

    Absolute link targets inside root are written relative to '<root>' so that two roots can
    be compared; relative targets (link_mode: symlink) are kept exactly as they are.
    """
    snap: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d != "logs"]
        for name in dirnames + filenames:
            if name == ".snakemake_timestamp":
                continue
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                target = os.readlink(path)
                if os.path.isabs(target) and Path(target).is_relative_to(root):
                    target = "<root>/" + str(Path(target).relative_to(root))
                snap[rel] = ("link", target)
            elif path.is_dir():
                snap[rel] = ("dir", "")
            else:
                # run records and manifests as tests/trees.py compares them (without the
                # clock, the data root's path or where the bytes came from)
                kind, value = content(path, rel, root)
                held = (
                    value
                    if kind == "bytes"
                    else json.dumps(value, sort_keys=True, default=repr).encode()
                )
                snap[rel] = ("file", hashlib.sha256(held).hexdigest())
    return snap


def test_coco_valid_on_slurm_matches_local_run(slurm_cluster, standin_world, tmp_path, timings):
    from standin.world import write_config

    catalog, server = standin_world
    configs = {
        name: write_config(
            tmp_path / f"{name}.yaml",
            data_root=tmp_path / name / "data",
            catalog=catalog,
            base_url=server.url,
        )
        for name in ("local", "slurm")
    }

    # ---- local reference run ------------------------------------------------------------
    local, timings["local run"] = _snakemake(configs["local"], "--cores", "2", TARGET)
    assert local.returncode == 0, _explain(local, tmp_path / "local" / "data" / "logs")

    # ---- the same through SLURM -----------------------------------------------------------
    slurm_logs = tmp_path / "slurm_logs"
    args = [
        "--profile", "profiles/slurm",
        # Replaces the profile's default-resources, so its runtime is repeated (README).
        "--default-resources", "slurm_partition=debug", "runtime=30",
        # No accounting on the test cluster: sacct cannot report states or guess an account.
        "--slurm-status-command", "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "1",
        "--jobs", "4",
        # Keep every job's SLURM log, out of the repository, to check them below.
        "--slurm-logdir", str(slurm_logs),
        "--slurm-keep-successful-logs",
        # The profile asks for cluster-sized threads; sbatch rejects more CPUs than the node has.
        "--max-threads", str(slurm_cluster["cpus"]),
    ]  # fmt: skip
    if slurm_cluster["mem_mb"] < 4096:  # the profile's largest request (coco_wds)
        mem = slurm_cluster["mem_mb"] // 2
        args += ["--set-resources", f"coco_wds:mem_mb={mem}", f"extract_archive:mem_mb={mem}"]
    slurm, timings["SLURM run"] = _snakemake(configs["slurm"], *args, TARGET)
    output = slurm.stdout + slurm.stderr
    assert slurm.returncode == 0, _explain(slurm, tmp_path / "slurm" / "data" / "logs", slurm_logs)

    # ---- it really went through SLURM ------------------------------------------------------
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    assert run_id, "the SLURM executor did not start:\n" + output[-4000:]
    # Finished jobs stay in squeue --states=all for MinJobAge (300 s in slurm_up.sh).
    rows = _check(
        ["squeue", "--states=all", "-h", "--name", run_id.group(1), "-o", "%i|%T|%k|%N"]
    ).splitlines()
    jobs = [row.split("|") for row in rows if row.strip()]
    assert jobs, f"no SLURM job of run {run_id.group(1)} in squeue --states=all"
    assert {state for _, state, _, _ in jobs} == {"COMPLETED"}, rows
    assert {node for _, _, _, node in jobs} == {os.uname().nodename.split(".")[0]}, rows
    # The plugin labels each job `rule_<rule>[_wildcards_<w>]`.
    on_slurm = collections.Counter(
        re.match(r"rule_(.+?)(_wildcards_.*)?$", comment).group(1) for _, _, comment, _ in jobs
    )
    scheduled = _job_stats(output)
    expected = collections.Counter({r: n for r, n in scheduled.items() if r not in LOCAL_RULES})
    assert on_slurm == expected, f"SLURM ran {dict(on_slurm)}; Snakemake scheduled {scheduled}"
    assert {"extract_archive", "coco_link", "coco_wds"} <= set(on_slurm), on_slurm
    assert scheduled["fetch_file"] >= 1, scheduled  # ran, but locally (not in on_slurm)
    # Each submission was acknowledged with its SLURM id and wrote its own SLURM log.
    job_ids = {job_id for job_id, _, _, _ in jobs}
    acknowledged = set(re.findall(r"has been submitted with SLURM jobid (\d+)", output))
    assert acknowledged == job_ids, (acknowledged, job_ids)
    log_ids = {p.stem for p in slurm_logs.rglob("*.log")}
    assert job_ids <= log_ids, f"SLURM logs missing for jobs {job_ids - log_ids}"

    # ---- and built exactly the same thing ------------------------------------------------------
    local_tree = _snapshot(tmp_path / "local" / "data")
    slurm_tree = _snapshot(tmp_path / "slurm" / "data")
    coco = [p for p in local_tree if p.startswith("g3m/coco/")]
    assert any(p.endswith(".tar") for p in coco), "the local run built no coco_valid tars"
    assert sorted(slurm_tree) == sorted(local_tree), {
        "only local": sorted(set(local_tree) - set(slurm_tree))[:20],
        "only slurm": sorted(set(slurm_tree) - set(local_tree))[:20],
    }
    differ = [p for p in local_tree if local_tree[p] != slurm_tree[p]]
    assert not differ, f"{len(differ)} paths differ, e.g. {differ[:20]}"
    kinds = collections.Counter(kind for kind, _ in local_tree.values())
    print(
        f"\nSLURM jobs {dict(on_slurm)} (ids {sorted(job_ids, key=int)}); identical trees: {dict(kinds)}"
    )


def test_a_stale_lock_is_kept_while_a_slurm_job_runs_in_the_directory(slurm_cluster, tmp_path):
    """A run killed on the login node leaves its submitted jobs running: the next run must not
    take the lock from them (vlprep.locks asks squeue), and takes it once they are gone."""
    from vlprep import locks

    work = tmp_path / "work"
    lockdir = work / ".snakemake" / "locks"
    lockdir.mkdir(parents=True)
    (lockdir / "0.output.lock").write_text("/data/x\n")  # nobody's: no Snakemake runs here
    job = _check(
        ["sbatch", "--parsable", f"--chdir={work}", "-J", "vlprep-left-behind", "--wrap",
         "sleep 300"]
    ).strip().split(";")[0]  # fmt: skip
    said: list[str] = []
    try:
        assert not locks.release_if_stale(lockdir, str(work), say=said.append)
        assert f"SLURM job {job} (vlprep-left-behind" in said[-1]
        assert (lockdir / "0.output.lock").exists()
    finally:
        _check(["scancel", job])
    for _ in range(100):
        if job not in _check(["squeue", "--noheader", "--format=%i"]).split():
            break
        time.sleep(0.2)
    assert locks.release_if_stale(lockdir, str(work), say=said.append)
    assert "released the lock" in said[-1] and not (lockdir / "0.output.lock").exists()
