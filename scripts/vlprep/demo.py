"""`make demo`: build every enabled product against the stand-in world, then say what was built.

Generates the world (cached in demo-data/world), starts the stand-in host on a free loopback
port, runs the real workflow through Snakemake on it, prints each product's tree, and stops
the host whatever happened. Exits with Snakemake's status.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from vlprep.standin.world import REPO, build_world, write_config

# What the demo lists: the layouts' top entries (the store under downloads/ and extracted/
# is an implementation detail of the layouts).
LAYOUT_GLOBS = ("g3m/*/*", "cosmos/*/*/*")


class StandinProcess:
    """The stand-in host as a child process, stopped on exit."""

    def __init__(self, root: Path, state_dir: Path) -> None:
        self.root, self.port_file = root, state_dir / "standin.port"
        self.log_path = state_dir / "standin.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        self.port_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "vlprep.standin.server", "--root", str(self.root)]
        cmd += ["--port", "0", "--port-file", str(self.port_file)]
        env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        for _ in range(200):
            if self.port_file.is_file() and self.port_file.read_text().strip():
                return f"http://127.0.0.1:{self.port_file.read_text().strip()}/"
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"the stand-in host did not start; see {self.log_path}")

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def describe(path: Path) -> str:
    """One line about a built path: what it is and how much it holds."""
    if path.is_symlink():
        return f"-> {os.readlink(path)}"
    if path.is_dir():
        tars = sorted(path.glob("*.tar"))
        files = sum(len(names) for _, _, names in os.walk(path))
        extra = f", {len(tars)} tars ({', '.join(t.name for t in tars[:3])}...)" if tars else ""
        return f"directory, {files} files{extra}"
    return f"file, {path.stat().st_size} bytes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "demo-data")
    parser.add_argument("--cores", default="all")
    parser.add_argument("targets", nargs="*", default=["all"])
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    print(f"vlprep demo: generating the stand-in world in {workdir / 'world'}", flush=True)
    catalog = build_world(workdir / "world")
    with StandinProcess(workdir / "world" / "www", workdir) as base_url:
        print(f"vlprep demo: stand-in host at {base_url}", flush=True)
        config = write_config(
            workdir / "config.yaml", data_root=workdir / "data", catalog=catalog, base_url=base_url
        )
        cmd = [sys.executable, "-m", "snakemake", "--cores", args.cores]
        cmd += [*args.targets, "--configfile", str(config)]
        status = subprocess.run(cmd, cwd=REPO).returncode
    if status != 0:
        print(f"vlprep demo: FAILED (snakemake exited {status}); logs in {workdir}/data/logs")
        return status
    data = workdir / "data"
    print(f"\nvlprep demo: built under {data}")
    for pattern in LAYOUT_GLOBS:
        for path in sorted(data.glob(pattern)):
            print(f"  {path.relative_to(data)}: {describe(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
