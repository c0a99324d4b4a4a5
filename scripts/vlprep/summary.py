"""What a run did, said at its end (rules/common.smk: onsuccess, onerror, and a run with
nothing to do).

What it dropped: records of annotation files whose image does not open. The filtering jobs log
it too, but job logs scroll past; this reads the reports they wrote during the run
(reports/{lavis,cosmos}/**.json newer than its start) and prints one line per file that lost
records, loudly for evaluation sets, whose scores stop being comparable.

What it built: the products built, already up to date, skipped (a manual file or a token
missing) or not built, each failed job with its log's last lines (from the `Error in rule`
blocks of Snakemake's main log), and the command that makes the data report.
"""

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The layouts whose annotation files are filtered, each reporting under reports/<layout>/.
LAYOUTS = ("lavis", "cosmos")


def _reports(folder: Path, since: float) -> Iterator[dict]:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*.json")):
        try:
            if path.stat().st_mtime >= since:
                yield json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a report being replaced right now; the next run says it


def dropped_lines(data_root: str | Path, since: float) -> list[str]:
    """Lines naming each annotation file that lost records in reports written since `since`."""
    data_root = Path(data_root)
    lines = []
    reports = (r for layout in LAYOUTS for r in _reports(data_root / "reports" / layout, since))
    for report in reports:
        dropped = sum(report.get("dropped", {}).values())
        if not dropped:
            continue
        name = report["annotation"]
        if Path(name).is_relative_to(data_root):
            name = str(Path(name).relative_to(data_root))
        reasons = ", ".join(f"{reason}: {n}" for reason, n in report["dropped"].items())
        line = f"  {name}: dropped {dropped} of {report['records']} records ({reasons})"
        if report.get("eval_set"):
            line += (
                f"\n    EVALUATION SET SHRANK to {report['kept']} of {report['records']}: "
                "scores on it are not comparable with published results"
            )
        lines.append(line)
    if lines:
        lines.insert(
            0,
            "vlprep: records whose image does not open were left out of these annotation "
            f"files (examples in {data_root / 'reports'}/<layout>/):",
        )
    return lines


# ---- what the run did ----------------------------------------------------------------------

# Lines of a failing job's own log shown at the end (its last; the rest is in the file).
LOG_TAIL_LINES = 5
# How much of a log's end is read for them: a job log can be gigabytes.
LOG_TAIL_BYTES = 16 << 10


@dataclass
class FailedJob:
    """A job Snakemake's main log reports as failed: its rule, output and own log files."""

    rule: str
    output: str = ""
    logs: list[str] = field(default_factory=list)


def failed_jobs(main_logs: str | Path | Iterable[str | Path] | None) -> list[FailedJob]:
    """The jobs Snakemake's main log(s) name in its `Error in rule <rule>:` blocks, each once
    (a retried job is reported per attempt), in the order they first failed. Streamed: the main
    log of a long run is long."""
    if main_logs is None:
        return []
    if isinstance(main_logs, (str, Path)):
        main_logs = [main_logs]
    found: dict[tuple[str, str], FailedJob] = {}
    for path in main_logs:
        try:
            with open(path, encoding="utf-8", errors="replace") as lines:
                job = None
                for line in lines:
                    if line.startswith("Error in rule ") and line.rstrip().endswith(":"):
                        job = FailedJob(line.strip()[len("Error in rule ") : -1])
                        continue
                    if job is None:
                        continue
                    key, _, value = line.strip().partition(": ")
                    if not line.startswith((" ", "\t")):
                        found.setdefault((job.rule, job.output), job)
                        job = None
                    elif key == "output":
                        job.output = value
                    elif key == "log":
                        value = value.removesuffix("(check log file(s) for error details)")
                        job.logs = [part.strip() for part in value.split(", ") if part.strip()]
                if job is not None:
                    found.setdefault((job.rule, job.output), job)
        except OSError:
            continue
    return list(found.values())


def log_tail(path: str | Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last non-empty lines of a log file (read from its end only); [] if unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - LOG_TAIL_BYTES))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    if size > LOG_TAIL_BYTES and kept:
        kept = kept[1:]  # the first may be cut
    # the error our scripts log (vlprep.log: "<time> ERROR <logger>: <message>") says why
    # first, then what to do: from its first line on; else the log's last lines
    errors = [i for i, line in enumerate(kept) if " ERROR " in line]
    if errors:
        return kept[errors[-1] : errors[-1] + lines]
    return kept[-lines:]


def run_lines(
    *,
    built: Iterable[str] = (),
    up_to_date: Iterable[str] = (),
    not_built: Iterable[str] = (),
    skipped: dict[str, str] | None = None,
    failed: Iterable[FailedJob] = (),
    report_command: str | None = None,
    report_path: str | Path | None = None,
) -> list[str]:
    """The run's summary: products built, already up to date, skipped (why, in a word, and the
    command once it is fixed), not built because a job failed; each failed job with its log
    and the log's last lines; and how to make (or where to open) the data report."""
    lines = ["vlprep: what this run did:"]
    for label, names in (("built", built), ("already up to date", up_to_date)):
        names = sorted(names)
        if names:
            lines.append(f"  {label} ({len(names)}): {', '.join(names)}")
    for name, reason in sorted((skipped or {}).items()):
        why = reason.strip().splitlines()[0].rstrip(":") if reason.strip() else "unavailable"
        lines.append(f"  SKIPPED {name}: {why} (said above); then run: snakemake {name}")
    names = sorted(not_built)
    if names:
        lines.append(f"  NOT BUILT ({len(names)}): {', '.join(names)}: a job they need failed")
    for job in failed:
        lines.append(
            f"  FAILED: rule {job.rule}" + (f", output {job.output}" if job.output else "")
        )
        for log in job.logs:
            lines.append(f"    log: {log}")
            lines += [f"    | {line}" for line in log_tail(log)]
        if not job.logs:
            lines.append("    (no log of its own: see Snakemake's messages above)")
    if report_command:
        if report_path and Path(report_path).is_file():
            lines.append(f"  data report: {report_path} (remake it: {report_command})")
        else:
            lines.append(f"  data report: {report_command}")
    return lines if len(lines) > 1 else []


def call_after(target: Any, name: str, then: Callable[[], None]) -> None:
    """Make `target.name(...)` call `then()` once it has returned (not when it raises). Here,
    not in the Snakefile: Snakemake names the last Snakefile line an error went through, and an
    error of the wrapped call must not seem to come from ours."""
    wrapped = getattr(target, name)

    @functools.wraps(wrapped)
    def call(*args, **kwargs):
        result = wrapped(*args, **kwargs)
        try:
            then()
        except Exception as err:  # noqa: BLE001 - a summary must not fail the run
            print(f"vlprep: could not summarize the run: {err!r}", file=sys.stderr)
        return result

    setattr(target, name, call)
