"""Kill the demo's workflow with SIGKILL at random moments, rerun it, compare with a clean run.

`make kill-trials` (about a minute per trial here). One clean build of the demo's products is
the reference; then each trial starts the same build in a fresh data_root, SIGKILLs it after a
random share (5-90%) of the reference's duration, and runs the same command again, with no
`--unlock` and no other hand work. A run that finished before its kill time is reported but
not counted: trials go on until `--trials` runs were really killed. Every other kill takes the
whole run (its process group, as a scheduler or power loss would), the others only Snakemake
itself (`kill -9 <pid>`), which leaves its running jobs orphaned. A trial passes when the rerun exits 0, no process of the killed run
survives it, and its tree equals the reference's:

* every path of the reference is there, of the same kind (file, folder, symlink with the same
  target), and nothing else: a path the reference lacks is a stray file;
* files compare byte for byte, except where the data itself varies between two clean runs:
  - JSON files (reports, plans, img2dataset's `_stats.json`): the data_root itself written as
    `<data_root>` (each trial has its own), and timing keys removed (`seconds`, `duration`,
    `start_time`, `end_time`, `images_per_s`, `shard_seconds`, `sample_per_sec`...);
  - img2dataset's own shards (tars and parquets under `i2d/`): its threads finish samples in
    any order, so a tar compares as {member name: bytes} and a parquet as its rows sorted by
    `key`, with the per-row error text of failed downloads kept;
  - logs are not data and are skipped.

Prints one line per trial and a summary; exits 1 if any trial failed.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from standin.demo import DEMO_PRODUCTS, stand_in_world
from standin.world import REPO

TIMING_KEYS = {
    "seconds",
    "duration",
    "start_time",
    "end_time",
    "images_per_s",
    "shard_seconds",
    "sample_per_sec",
    "elapsed",
}
REPO_FILES = ("Snakefile", "rules", "scripts", "config", "profiles", "envs")


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def content(path: Path, rel: str, root: Path):
    """What a file holds, with img2dataset's and the clock's variation taken out."""
    if path.suffix == ".json":
        try:
            text = path.read_bytes().replace(str(root).encode(), b"<data_root>")
            return ("json", without_timing(json.loads(text)))
        except ValueError:
            pass
    if rel.startswith("i2d/") and path.suffix == ".tar":
        with tarfile.open(path) as tf:
            return ("tar", {m.name: tf.extractfile(m).read() for m in tf if m.isfile()})
    if rel.startswith("i2d/") and path.suffix == ".parquet":
        table = pq.read_table(path)
        rows = sorted(table.to_pylist(), key=lambda row: str(row.get("key")))
        return ("parquet", rows)
    return ("bytes", path.read_bytes())


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` (logs and Snakemake's markers left out) and what it is."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d != "logs"]
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            if name == ".snakemake_timestamp":
                continue
            path = here / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir",)
            else:
                found[rel] = content(path, rel, root)
    return found


def differences(expected: dict, got: dict) -> list[str]:
    stray = sorted(set(got) - set(expected))
    missing = sorted(set(expected) - set(got))
    changed = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    lines = [f"stray: {p}" for p in stray] + [f"missing: {p}" for p in missing]
    return lines + [f"differs: {p}" for p in changed]


def work_dir(base: Path) -> Path:
    """A Snakemake working directory of its own (its .snakemake/ and lock)."""
    base.mkdir(parents=True, exist_ok=True)
    for name in REPO_FILES:
        if not (base / name).exists():
            (base / name).symlink_to(REPO / name)
    return base


def command(config: Path, data: Path, cores: str) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "--cores", cores, "all",
        "--configfile", str(config), "--config", f"data_root={data}",
    ]  # fmt: skip


def session_alive(session: int) -> list[int]:
    alive = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getsid(int(name)) == session:
                    alive.append(int(name))
            except OSError:
                continue
    return alive


def trial(index, seconds, whole_group, config, env, base, cores, expected) -> dict:
    data, cwd = base / f"trial{index:02d}" / "data", work_dir(base / f"trial{index:02d}" / "work")
    log = base / f"trial{index:02d}" / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command(config, data, cores), cwd=cwd, env=env, stdout=out, stderr=out,
            start_new_session=True,
        )  # fmt: skip
        time.sleep(seconds)
        finished_first = proc.poll() is not None
        if not finished_first:
            if whole_group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    rerun = subprocess.run(
        command(config, data, cores), cwd=cwd, env=env, capture_output=True, text=True
    )
    (base / f"trial{index:02d}" / "rerun.log").write_text(rerun.stdout + rerun.stderr)
    survivors = session_alive(proc.pid)
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    diff = differences(expected, snapshot(data)) if rerun.returncode == 0 else []
    said = rerun.stderr
    return {
        "trial": index,
        "kill": "process group" if whole_group else "snakemake only",
        "after_s": round(seconds, 1),
        "finished_before_kill": finished_first,
        "rerun_rc": rerun.returncode,
        "lock_released": "vlprep: released the lock" in said,
        "jobs_stopped": "vlprep: stopping job processes" in said,
        "unlock_needed": "LockException" in said,
        "survivors": survivors,
        "differences": diff,
        "ok": rerun.returncode == 0 and not diff and not survivors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "demo-data" / "kill-trials")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--cores", default="2")
    args = parser.parse_args(argv)
    base = args.workdir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    results = []
    with stand_in_world(base) as (config, env):
        env = {**env, "VLPREP_PROGRESS": "0"}
        reference = base / "reference"
        started = time.monotonic()
        clean = subprocess.run(
            command(config, reference / "data", args.cores), cwd=work_dir(reference / "work"),
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        duration = time.monotonic() - started
        if clean.returncode != 0:
            print(clean.stderr[-4000:])
            return 1
        expected = snapshot(reference / "data")
        print(f"reference: {len(expected)} paths, {len(DEMO_PRODUCTS)} products, {duration:.0f} s")
        index = 0
        # A run that ends before its kill time tests nothing: such draws do not count.
        while sum(not r["finished_before_kill"] for r in results) < args.trials:
            seconds = rng.uniform(0.05, 0.9) * duration
            whole_group = sum(not r["finished_before_kill"] for r in results) % 2 == 0
            result = trial(index, seconds, whole_group, config, env, base, args.cores, expected)
            results.append(result)
            index += 1
            shown = {k: v for k, v in result.items() if k != "differences"}
            print(json.dumps(shown), flush=True)
            for line in result["differences"][:20]:
                print(f"    {line}")
    failed = [r for r in results if not r["ok"]]
    early = sum(r["finished_before_kill"] for r in results)
    print(
        f"{len(results) - early} killed runs (+{early} that finished before their kill time): "
        f"{len(results) - len(failed)} ok, {len(failed)} failed; "
        f"reruns failing {sum(r['rerun_rc'] != 0 for r in results)}, "
        f"manual unlocks needed {sum(r['unlock_needed'] for r in results)}, "
        f"locks released by the rerun {sum(r['lock_released'] for r in results)}, "
        f"orphaned jobs stopped {sum(r['jobs_stopped'] for r in results)}, "
        f"trees with stray or differing files {sum(bool(r['differences']) for r in results)}"
    )
    (base / "results.json").write_text(json.dumps(results, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
