"""What a run dropped, said at its end: records of annotation files whose image does not open.

The filtering jobs log it too, but job logs scroll past; this reads the reports they wrote
during the run (reports/{lavis,cosmos}/**.json newer than its start) and prints one line per file
that lost records, loudly for evaluation sets, whose scores stop being comparable.
"""

import json
from collections.abc import Iterator
from pathlib import Path

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
