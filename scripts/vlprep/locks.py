"""Snakemake's lock, released by the next run when the run that held it is gone.

After a hard kill (`kill -9`, the OOM killer, a lost node) Snakemake's lock files stay in
`.snakemake/locks/` and every later run stops with LockException until someone runs
`snakemake --unlock`, which does not check whether another run is still working. Here the run
that is about to lock checks instead, and only when a lock is in its way:

* each locking run writes `vlprep-owner.<host>.<pid>.json` beside its lock files: its host,
  pid, process start time and command line, and which lock files are its own;
* a lock file whose owner is a live process of this host, whose owner is on another host
  (it cannot be checked from here), or whose owner is unknown while another Snakemake runs in
  this directory, is held: the run refuses, naming who holds it;
* a SLURM job of this user still running in this directory (`squeue`, when there is one)
  holds it too: a run killed on the login node leaves its submitted jobs running on the nodes,
  where they would write the rerun's outputs;
* otherwise the lock is stale: its files are removed, job processes the dead run left
  behind in this directory are stopped (they would write the same outputs as the rerun), and
  the run goes on, saying what it released.

Processes are read from /proc: this works on Linux, where Snakemake runs; elsewhere nothing is
released and Snakemake's own message stands.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

OWNER_PREFIX = "vlprep-owner."
STOP_GRACE = 10.0  # seconds a left-behind job gets to end after SIGTERM


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    started: int  # clock ticks after boot (/proc/<pid>/stat field 22): tells pid reuse apart
    argv: tuple[str, ...]
    cwd: str | None  # None: not readable (another user's process)

    @property
    def command(self) -> str:
        return " ".join(self.argv)[:200]


def _read_proc(pid: int) -> Proc | None:
    base = Path("/proc", str(pid))
    try:
        stat = (base / "stat").read_text()
        argv = tuple(
            a for a in (base / "cmdline").read_bytes().decode(errors="replace").split("\0") if a
        )
    except OSError:
        return None  # gone, or not a process
    # the command name in parentheses may contain spaces: split after its closing bracket
    fields = stat[stat.rindex(")") + 2 :].split()
    try:
        cwd = os.readlink(base / "cwd")
    except OSError:
        cwd = None
    return Proc(pid, int(fields[1]), int(fields[19]), argv, cwd)


def processes() -> dict[int, Proc]:
    """Every process this user can see, by pid."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (proc := _read_proc(int(name))) is not None:
            found[proc.pid] = proc
    return found


def is_job(proc: Proc) -> bool:
    """A job Snakemake started: a `script:` adapter, or a spawned Snakemake job process."""
    return any("/.snakemake/scripts/" in arg for arg in proc.argv) or (
        is_snakemake(proc) and "--mode" in proc.argv
    )


def is_snakemake(proc: Proc) -> bool:
    argv = proc.argv
    if not argv:
        return False
    names = [os.path.basename(a) for a in argv[:3]]
    return (
        "snakemake" in names
        or ("-m" in argv[:3] and "snakemake" in argv[:4])
        or any(a.endswith("snakemake/__main__.py") for a in argv[:2])
    )


def is_main(proc: Proc) -> bool:
    """A Snakemake that schedules a workflow (it may hold a lock), not one of its jobs."""
    return is_snakemake(proc) and not is_job(proc)


def ancestors(pid: int, procs: dict[int, Proc]) -> list[int]:
    chain = []
    while pid in procs and pid not in chain:
        chain.append(pid)
        pid = procs[pid].ppid
    return chain


def descendants(pid: int, procs: dict[int, Proc]) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# ---- owner records ----------------------------------------------------------------------------


def owner_path(lockdir: Path, host: str, pid: int) -> Path:
    return lockdir / f"{OWNER_PREFIX}{host}.{pid}.json"


def record_owner(lockdir: Path, lock_files: Iterable[str]) -> None:
    """Say beside the lock files that this process holds `lock_files`."""
    me = _read_proc(os.getpid())
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": me.started if me else None,
        "command": me.command if me else " ".join(sys.argv),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        "locks": sorted(os.path.basename(f) for f in lock_files),
    }
    path = owner_path(lockdir, record["host"], record["pid"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def owners(lockdir: Path) -> list[dict]:
    found = []
    for path in sorted(lockdir.glob(f"{OWNER_PREFIX}*.json")):
        try:
            found.append({**json.loads(path.read_text()), "file": path})
        except (OSError, ValueError):
            continue  # half-written by a run killed at that very moment: no claim
    return found


def lock_files(lockdir: Path) -> list[Path]:
    return sorted(p for p in lockdir.glob("*.lock") if p.name.split(".")[0].isdigit())


def alive(owner: dict, procs: dict[int, Proc]) -> bool:
    """Whether the owner process still runs (same pid, same start: not a reused pid)."""
    proc = procs.get(owner.get("pid"))
    return proc is not None and owner.get("started") in (None, proc.started)


# ---- the check ----------------------------------------------------------------------------------


@dataclass
class Verdict:
    held_by: list[str]  # who holds a lock in the way: the run must not go on
    stale: list[Path]  # lock and owner files to remove
    dead: list[str]  # the runs those belonged to, for the message
    leftovers: list[Proc]  # their job processes still running in this directory


def examine(lockdir: Path, workdir: str, procs: dict[int, Proc], me: int) -> Verdict:
    """Who holds the locks in `lockdir` of a run in `workdir`, seen by process `me`."""
    host = socket.gethostname()
    mine = set(ancestors(me, procs))
    others = [
        p for p in procs.values() if is_main(p) and p.pid not in mine and p.cwd in (workdir, None)
    ]
    verdict = Verdict([], [], [], [])
    claimed: set[str] = set()
    for owner in owners(lockdir):
        claimed.update(owner.get("locks", []))
        who = f"pid {owner.get('pid')} on {owner.get('host')} since {owner.get('since')}: {owner.get('command')}"
        if owner.get("host") != host:
            verdict.held_by.append(f"{who} (another host: cannot check it from here)")
        elif alive(owner, procs) and owner.get("pid") not in mine:
            verdict.held_by.append(who)
        elif owner.get("pid") not in mine:
            verdict.dead.append(who)
            verdict.stale.append(owner["file"])
            verdict.stale += [lockdir / name for name in owner.get("locks", [])]
    unclaimed = [p for p in lock_files(lockdir) if p.name not in claimed]
    if unclaimed:
        if others:
            verdict.held_by += [
                f"pid {p.pid} (another Snakemake in this directory{'' if p.cwd else ', maybe'}): "
                f"{p.command}"
                for p in others
            ]
        else:
            verdict.dead.append(f"a run that left {len(unclaimed)} lock file(s) and no longer runs")
            verdict.stale += unclaimed
    if not verdict.held_by and verdict.stale:
        verdict.leftovers = [
            p
            for p in procs.values()
            if p.cwd == workdir
            and is_job(p)
            and p.pid not in mine
            and not any(
                procs[a].pid != p.pid and is_main(procs[a]) for a in ancestors(p.pid, procs)
            )
        ]
    return verdict


def slurm_jobs_in(workdir: str) -> list[str]:
    """This user's SLURM jobs, pending or running, whose working directory is `workdir`
    (Snakemake's SLURM executor submits from the run's directory); none without squeue."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return []
    try:
        listing = subprocess.run(
            [squeue, "--me", "--noheader", "--states=PENDING,RUNNING,COMPLETING",
             "--format=%i|%T|%j|%Z"],
            capture_output=True, text=True, timeout=20,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as err:
        return [
            f"maybe a SLURM job: squeue did not answer ({err}); if no job of the killed run "
            "runs any more, `snakemake --unlock`"
        ]
    if listing.returncode != 0:
        return []  # no cluster reachable from here: no job of ours can run on it
    jobs = []
    for line in listing.stdout.splitlines():
        job_id, state, name, cwd = (line.split("|", 3) + ["", "", ""])[:4]
        if os.path.realpath(cwd.strip()) == os.path.realpath(workdir):
            jobs.append(f"SLURM job {job_id.strip()} ({name.strip()}, {state.strip()})")
    return jobs


def _stop(leftovers: list[Proc], procs: dict[int, Proc]) -> None:
    pids = {pid for p in leftovers for pid in [p.pid, *descendants(p.pid, procs)]}
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline and any(_running(pid, procs) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        if _running(pid, procs):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _running(pid: int, procs: dict[int, Proc]) -> bool:
    now = _read_proc(pid)
    return now is not None and now.started == procs[pid].started and not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        stat = Path("/proc", str(pid), "stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].startswith("Z")


def release_if_stale(lockdir: Path, workdir: str, say=print) -> bool:
    """Remove `lockdir`'s locks if every run that held them is gone; True if it did."""
    if not Path("/proc/self/stat").exists() or not lockdir.is_dir():
        return False
    procs = processes()
    verdict = examine(lockdir, workdir, procs, os.getpid())
    if verdict.stale and not verdict.held_by:
        verdict.held_by = slurm_jobs_in(workdir)
    if verdict.held_by:
        say(
            f"vlprep: {workdir} is locked by a run that is still going: "
            + "; ".join(verdict.held_by)
            + ". Wait for it to end, or stop it; then run again."
        )
        return False
    if not verdict.stale:
        return False
    if verdict.leftovers:
        say(
            "vlprep: stopping job processes the gone run left in this directory: "
            + "; ".join(f"pid {p.pid}: {p.command}" for p in verdict.leftovers)
        )
        _stop(verdict.leftovers, procs)
    for path in verdict.stale:
        path.unlink(missing_ok=True)
    say(
        f"vlprep: released the lock on {workdir} left by {'; '.join(verdict.dead)} "
        "(killed or lost; it no longer runs); going on, and its unfinished jobs run again"
    )
    return True


def install(workflow) -> None:
    """Make the scheduling Snakemake of this process release stale locks before it locks.

    Wraps Snakemake's PersistenceBase.lock, which only a run that really locks calls (dry runs
    and --nolock replace it per instance), so nothing else is touched.
    """
    try:
        from snakemake.persistence import PersistenceBase
    except ImportError:  # another Snakemake: its own lock handling stands
        return
    if not workflow.is_main_process or getattr(PersistenceBase.lock, "vlprep", False):
        return
    original = PersistenceBase.lock

    @contextmanager
    def lock(self) -> Iterator[None]:
        lockdir = getattr(self, "_lockdir", None)
        if lockdir and self.locked:
            release_if_stale(Path(lockdir), os.getcwd(), say=_say)
        with original(self):
            if lockdir:
                record_owner(Path(lockdir), getattr(self, "_lockfile", {}).values())
            yield

    lock.vlprep = True
    PersistenceBase.lock = lock


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
