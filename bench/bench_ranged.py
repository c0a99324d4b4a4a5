"""Parallel ranged downloads: vlprep.fetch against aria2c and curl on a slow host, same run.

    .venv/bin/python bench/bench_ranged.py [--size 1GiB] [--curl-size 256MiB] [--repeats 2]
        [--rate 4MB/s] [--latency 0.04] [--kill-trials 10] [--only capped,uncapped,kill]

Real dataset hosts cap each connection at a few MB/s and sit tens of milliseconds away, so
vlprep.fetch splits a large file into ranges fetched over several connections (issue 14). One
deterministic random file (generated once under bench-data/ranged/serve/) is served by the
stand-in host (standin.server, its own process), and three things are measured:

  capped    every connection capped at --rate, --latency before each answer's first byte:
            vlprep (a fresh Python process calling vlprep.fetch.fetch with the file's size and
            sha256 and the default connections: verifying is in its time), `aria2c -x 8 -s 8`
            and `curl` (neither verifies). Targets, on median throughputs: vlprep/aria2c >= 1.1,
            vlprep/curl >= 6; vlprep with connections=8 against aria2c is shown too (same
            connection count; no target). curl alone is slow (a 1 GiB file at 4 MB/s is 4.5
            min), so it gets a --curl-size file: one stream's throughput does not depend on it.
  uncapped  loopback at full speed: vlprep's default against connections=1 (the single stream
            it had before the parallel engine): >= 0.95.
  kill      --kill-trials times: start vlprep's download (capped at --kill-rate per
            connection), SIGKILL it when the host has sent a random fraction of the file
            (seeded), rerun it to completion. Bytes re-fetched = what the host sent for the
            file over both runs - its size; target < 2% of the file in every trial, and the
            installed file's sha256 (hashed here again) right every time.

Contenders alternate, the order rotating every round; writes of the previous run are synced
before each timed run. Every target prints TARGET MET or TARGET MISSED, and the exit status is
1 if any was missed. Passing `connections` to fetch needs the parallel engine; without it the
runs that need it are skipped and their targets reported missed.
"""

import argparse
import hashlib
import inspect
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "scripts"), str(REPO)]
os.environ.setdefault("VLPREP_PROGRESS", "0")

import requests  # noqa: E402

from bench.targets import Targets  # noqa: E402
from standin.base import ChildService  # noqa: E402
from vlprep.fetch import fetch  # noqa: E402

MiB = 1 << 20
ARIA2_TARGET = 1.1  # vlprep/aria2c, capped
CURL_TARGET = 6.0  # vlprep/curl, capped
SINGLE_TARGET = 0.95  # vlprep default / connections=1, uncapped
REFETCH_TARGET = 2.0  # % of the file re-fetched after a kill, every trial
CHILD = "fetch-child"  # argv[1] of this script run as vlprep's download process
PHASES = ("capped", "uncapped", "kill")
_SIZE_RE = re.compile(r"(\d+(?:\.\d*)?)\s*([kmg]?)(i?)b?(?:/s)?", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """`1073741824`, `1GiB` (powers of 1024), `4MB` or `4MB/s` (powers of 1000)."""
    match = _SIZE_RE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (say 1GiB, 256MiB, 4MB/s)")
    number, prefix, binary = match.groups()
    return int(float(number) * (1024 if binary else 1000) ** " kmg".index(prefix.lower() or " "))


def megabytes(size: int) -> str:
    return f"{size / MiB:.0f} MiB" if size % MiB == 0 else f"{size:,} bytes"


# -- the file, the host ----------------------------------------------------------------


def make_source(path: Path, size: int) -> str:
    """Write `size` deterministic random bytes to `path` (reused if present); their sha256."""
    digest_file = path.with_name(path.name + ".sha256")
    if path.exists() and path.stat().st_size == size and digest_file.exists():
        return digest_file.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    rng, digest = random.Random(20240614), hashlib.sha256()
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        for start in range(0, size, MiB):
            block = rng.randbytes(min(MiB, size - start))
            out.write(block)
            digest.update(block)
    tmp.replace(path)
    digest_file.write_text(digest.hexdigest() + "\n")
    return digest.hexdigest()


def warm(path: Path) -> None:
    """Read the served file into the page cache, so no contender pays its first disk read."""
    with path.open("rb") as src:
        while src.read(16 * MiB):
            pass


def sha256_of(path: Path) -> str:
    with path.open("rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()


def offline_env() -> dict[str, str]:
    """The environment for every client: no proxy can ever take 127.0.0.1's traffic away."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return env | {"NO_PROXY": "*", "no_proxy": "*", "PYTHONPATH": str(REPO / "scripts")}


class Host:
    """The stand-in host process, its settings and its statistics over HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.trust_env = False

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def settings(self, **changes: object) -> dict:
        """Turn every setting off, then apply `changes`; returns what is in force."""
        self.session.delete(self.url("_standin/settings")).raise_for_status()
        resp = self.session.post(self.url("_standin/settings"), json=changes)
        resp.raise_for_status()
        return resp.json()

    def bytes_sent(self, name: str, settle: float = 2.0) -> int:
        """Body bytes sent for `name` since the last reset; settle=0: without waiting for
        running answers (their bytes so far are in it)."""
        stats = self.session.get(self.url(f"_standin/stats?settle={settle}")).json()
        return stats.get(name, {}).get("bytes_sent", 0)

    def stats(self, name: str) -> dict:
        return self.session.get(self.url("_standin/stats")).json().get(name, {})

    def reset_stats(self) -> None:
        self.session.delete(self.url("_standin/stats")).raise_for_status()


# -- the contenders: each a process, timed from start to exit --------------------------


def vlprep_command(url: str, dest: Path, size: int, sha256: str, connections: int | None):
    """vlprep's download as a fresh process (this script, CHILD mode); None: the default."""
    conns = "default" if connections is None else str(connections)
    return [sys.executable, __file__, CHILD, url, str(dest), str(size), sha256, conns]


def child_fetch(url: str, dest: str, size: str, sha256: str, connections: str) -> int:
    """vlprep's side: fetch() as the workflow calls it; prints its report as JSON."""
    # `connections` only as a keyword, and only when asked for: the default is fetch's own.
    extra = {} if connections == "default" else {"connections": int(connections)}
    report = fetch("bench/ranged", [url], Path(dest), size=int(size), sha256=sha256, **extra)
    print(json.dumps(report, default=str), flush=True)
    return 0


def aria2c_command(url: str, dest: Path) -> list[str]:
    """The issue's aria2c; the options after it only quieten it and ignore user config."""
    return [
        "aria2c", "-x", "8", "-s", "8", "--file-allocation=none", "--allow-overwrite=true",
        "-d", str(dest.parent), "-o", dest.name,
        "--no-conf=true", "--console-log-level=error", "--summary-interval=0",
        "--download-result=hide", url,
    ]  # fmt: skip


def curl_command(url: str, dest: Path) -> list[str]:
    return ["curl", "-s", "--noproxy", "*", "-o", str(dest), url]


def run_timed(command: list[str], dest: Path, size: int, timeout: float) -> float:
    """Seconds `command` takes to write `size` bytes to `dest` (from scratch; deleted after)."""
    shutil.rmtree(dest.parent, ignore_errors=True)
    dest.parent.mkdir(parents=True)
    os.sync()  # nobody pays for writing back the previous run's output
    began = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env=offline_env(), timeout=timeout
    )
    seconds = time.perf_counter() - began
    try:
        if done.returncode != 0:
            raise SystemExit(
                f"{command[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
            )
        if not dest.is_file() or dest.stat().st_size != size:
            got = dest.stat().st_size if dest.is_file() else "no file"
            raise SystemExit(f"{' '.join(command[:4])}: wrote {got}, expected {size} bytes")
    finally:
        shutil.rmtree(dest.parent, ignore_errors=True)
    return seconds


def measure(
    contenders: dict[str, Callable[[], float]], sizes: dict[str, int], repeats: int
) -> dict[str, float]:
    """Median MB/s per contender over `repeats` rounds, the order rotating every round."""
    names = list(contenders)
    width = max(map(len, names))
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            seconds = contenders[name]()
            rates[name].append(sizes[name] / 1e6 / seconds)
            print(
                f"round {round_ + 1} {name:{width}s} {seconds:8.2f} s {rates[name][-1]:8.1f} MB/s",
                flush=True,
            )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, values in rates.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:{width}s} median {medians[name]:8.1f} MB/s   runs {runs}", flush=True)
    return medians


# -- the three phases ----------------------------------------------------------------


@dataclass
class Bench:
    """What the phases share: the options, the host, the served files (path, sha256) by
    role, where runs write, the verdicts, and whether fetch takes `connections`."""

    args: argparse.Namespace
    host: Host
    files: dict[str, tuple[Path, str]]
    runs: Path
    targets: Targets
    has_connections: bool


def capped(bench: Bench) -> None:
    """vlprep (default and 8 connections), aria2c and curl, every connection capped."""
    args, host, targets, runs = bench.args, bench.host, bench.targets, bench.runs
    has_connections = bench.has_connections
    shown = host.settings(
        rate=args.rate, latency=args.latency, max_connections=args.max_connections
    )
    (big, sha256), (small, _) = bench.files["big"], bench.files["curl"]
    size, curl_size = big.stat().st_size, small.stat().st_size
    print(
        f"\n== capped: {args.rate / 1e6:g} MB/s per connection, {args.latency * 1000:g} ms before "
        f"each first byte, {megabytes(size)}; host settings {shown}",
        flush=True,
    )
    if curl_size != size:
        print(
            f"curl fetches a {megabytes(curl_size)} file (--curl-size): "
            "one stream's MB/s does not depend on the size",
            flush=True,
        )
    slowest = size / args.rate + 120  # one capped stream, and then some
    dest = runs / "out" / big.name
    contenders = {
        "vlprep": lambda: run_timed(
            vlprep_command(host.url(big.name), dest, size, sha256, None), dest, size, slowest
        ),
        "aria2c": lambda: run_timed(aria2c_command(host.url(big.name), dest), dest, size, slowest),
        "curl": lambda: run_timed(
            curl_command(host.url(small.name), dest), dest, curl_size, curl_size / args.rate + 120
        ),
    }
    if has_connections:
        contenders["vlprep c=8"] = lambda: run_timed(
            vlprep_command(host.url(big.name), dest, size, sha256, 8), dest, size, slowest
        )
    sizes = dict.fromkeys(contenders, size) | {"curl": curl_size}
    warm(big)
    warm(small)
    medians = measure(contenders, sizes, args.repeats)
    targets.at_least("vlprep/aria2c", medians["vlprep"] / medians["aria2c"], ARIA2_TARGET)
    targets.at_least("vlprep/curl", medians["vlprep"] / medians["curl"], CURL_TARGET)
    if has_connections:
        ratio = medians["vlprep c=8"] / medians["aria2c"]
        print(
            f"{'c=8/aria2c':16s} {ratio:8.2f}  (info: vlprep with aria2c's 8 connections)",
            flush=True,
        )


def uncapped(bench: Bench) -> None:
    """vlprep's default against its single stream, at loopback speed."""
    host, targets = bench.host, bench.targets
    host.settings()
    big, sha256 = bench.files["big"]
    size = big.stat().st_size
    print(f"\n== uncapped: loopback at full speed, {megabytes(size)}", flush=True)
    if not bench.has_connections:
        print(
            "vlprep.fetch.fetch takes no `connections` yet (the parallel engine is not in): "
            "nothing to compare its default with",
            flush=True,
        )
        targets.check("default/single", False, f">= {SINGLE_TARGET}", "n/a")
        return
    dest = bench.runs / "out" / big.name
    url, timeout = host.url(big.name), size / 20e6 + 120

    def vlprep(connections: int | None) -> Callable[[], float]:
        return lambda: run_timed(
            vlprep_command(url, dest, size, sha256, connections), dest, size, timeout
        )

    warm(big)
    medians = measure(
        {"default": vlprep(None), "single": vlprep(1)},
        dict.fromkeys(("default", "single"), size),
        bench.args.uncapped_repeats,
    )
    targets.at_least("default/single", medians["default"] / medians["single"], SINGLE_TARGET)


def kill_trials(bench: Bench) -> None:
    """Kill vlprep's download at random points, rerun it; count what was fetched twice."""
    args, host, targets, runs = bench.args, bench.host, bench.targets, bench.runs
    big, sha256 = bench.files["big"]
    size = big.stat().st_size
    shown = host.settings(
        rate=args.kill_rate, latency=args.latency, max_connections=args.max_connections
    )
    print(
        f"\n== kill: {args.kill_trials} trials, {megabytes(size)} at {args.kill_rate / 1e6:g} MB/s "
        f"per connection; SIGKILL at a random point, then rerun; host settings {shown}",
        flush=True,
    )
    rng = random.Random(args.seed)
    url, timeout = host.url(big.name), size / args.kill_rate + 120
    dest = runs / "kill" / big.name
    worst, right, killed = 0.0, 0, 0
    for trial in range(1, args.kill_trials + 1):
        shutil.rmtree(dest.parent, ignore_errors=True)
        dest.parent.mkdir(parents=True)
        host.reset_stats()
        kill_at = int(size * rng.uniform(0.02, 0.95))
        command = vlprep_command(url, dest, size, sha256, None)
        # Its own process group, so the kill takes any helper process it started along.
        proc = subprocess.Popen(
            command,
            env=offline_env(),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while proc.poll() is None and host.bytes_sent(big.name, settle=0) < kill_at:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        finished_first = proc.poll() is not None
        if not finished_first:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        sent_by_kill = host.bytes_sent(big.name)
        rerun = subprocess.run(
            command, capture_output=True, text=True, env=offline_env(), timeout=timeout
        )
        if rerun.returncode != 0:
            print(
                f"trial {trial}: the rerun failed ({rerun.returncode}):\n{rerun.stderr[-2000:]}",
                flush=True,
            )
        sent = host.bytes_sent(big.name)
        refetched = sent - size
        ok = dest.is_file() and sha256_of(dest) == sha256
        killed += not finished_first
        right += ok
        share = 100 * refetched / size
        worst = max(worst, share)
        status = host.stats(big.name).get("statuses", {})
        note = "  NOT KILLED: finished first" if finished_first else ""
        print(
            f"trial {trial:2d} killed at {100 * sent_by_kill / size:5.1f}% sent, "
            f"re-fetched {refetched / MiB:8.2f} MiB = {share:5.2f}%  "
            f"sha256 {'right' if ok else 'WRONG'}  statuses {status}{note}",
            flush=True,
        )
        shutil.rmtree(dest.parent, ignore_errors=True)
    n = args.kill_trials
    targets.check(
        "kill re-fetch",
        worst < REFETCH_TARGET and killed == n,
        f"< {REFETCH_TARGET:g}% every trial",
        f"{worst:.2f}%",
    )
    targets.check("kill sha256", right == n, "right every trial", f"{right}/{n}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_bytes, default=1 << 30, help="file size (1GiB)")
    parser.add_argument(
        "--curl-size",
        type=parse_bytes,
        default=256 * MiB,
        help="curl's file when capped (256MiB; 0: the same file)",
    )
    parser.add_argument(
        "--rate", type=parse_bytes, default=4_000_000, help="per connection, capped (4MB/s)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.04, help="seconds before each first byte"
    )
    parser.add_argument(
        "--max-connections", type=int, help="host's limit per client (default: none)"
    )
    parser.add_argument("--repeats", type=int, default=2, help="rounds, capped")
    parser.add_argument("--uncapped-repeats", type=int, default=5, help="rounds, uncapped (quick)")
    parser.add_argument("--kill-trials", type=int, default=10)
    parser.add_argument(
        "--kill-rate",
        type=parse_bytes,
        default=16_000_000,
        help="per connection in the kill trials (16MB/s: seconds per download)",
    )
    parser.add_argument("--seed", type=int, default=14, help="of the kill moments")
    parser.add_argument(
        "--only", default=",".join(PHASES), help="phases to run (capped,uncapped,kill)"
    )
    parser.add_argument("--workdir", type=Path, default=REPO / "bench-data" / "ranged")
    args = parser.parse_args()
    phases = [phase.strip() for phase in args.only.split(",") if phase.strip()]
    if set(phases) - set(PHASES):
        parser.error(f"--only takes {','.join(PHASES)}")
    for tool in ("aria2c", "curl"):
        if "capped" in phases and not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed: `make system-deps` (as root) installs it")

    serve, runs = args.workdir / "serve", args.workdir / "runs"
    big = serve / f"blob-{megabytes(args.size).replace(' ', '').replace(',', '')}.bin"
    files = {"big": (big, make_source(big, args.size))}
    curl_size = args.curl_size or args.size
    small = serve / f"blob-{megabytes(curl_size).replace(' ', '').replace(',', '')}.bin"
    files["curl"] = (
        files["big"] if curl_size == args.size else (small, make_source(small, curl_size))
    )
    has_connections = "connections" in inspect.signature(fetch).parameters
    print(
        f"file {megabytes(args.size)}, {os.cpu_count()} CPUs; vlprep.fetch "
        f"{'takes' if has_connections else 'does not take'} `connections`",
        flush=True,
    )

    targets = Targets("bench_ranged")
    shutil.rmtree(runs, ignore_errors=True)
    with ChildService("standin.server", ["--root", str(serve)], args.workdir) as base:
        bench = Bench(args, Host(base), files, runs, targets, has_connections)
        try:
            for phase in phases:
                {"capped": capped, "uncapped": uncapped, "kill": kill_trials}[phase](bench)
        finally:
            bench.host.session.close()
            shutil.rmtree(runs, ignore_errors=True)
    return targets.exit_status()


if __name__ == "__main__":
    if sys.argv[1:2] == [CHILD]:
        sys.exit(child_fetch(*sys.argv[2:]))
    sys.exit(main())
