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
* files compare as tests/trees.py says: byte for byte, except the data root in JSON files,
  the clock's keys in them, and img2dataset's own shard order (see there).

Prints one line per trial and a summary; exits 1 if any trial failed.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: tests.trees

from standin.demo import DEMO_PRODUCTS, stand_in_world  # noqa: E402
from standin.world import REPO  # noqa: E402
from tests.processes import session_processes  # noqa: E402
from tests.trees import differences, snapshot  # noqa: E402

REPO_FILES = ("Snakefile", "rules", "scripts", "config", "profiles", "envs")


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
    survivors = session_processes(proc.pid)
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
