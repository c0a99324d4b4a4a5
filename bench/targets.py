"""Targets of the benchmarks: every check prints its verdict, and any miss fails the run.

A benchmark builds one `Targets`, checks each ratio against the target its issue names (a
constant of that benchmark, never derived from the measurement), and exits with
`targets.exit_status()`: 1 if any target was missed, after naming them, so `make bench`
can run every benchmark and still fail.
"""

import sys


class Targets:
    """The verdicts of one benchmark run; `missed` lists what fell short."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.missed: list[str] = []

    def check(self, label: str, met: bool, target: str, value: str = "") -> bool:
        """Print `label value (target ...) TARGET MET|TARGET MISSED`; remember a miss."""
        verdict = "TARGET MET" if met else "TARGET MISSED"
        print(f"{label:16s} {value:>8s}  (target {target})  {verdict}", flush=True)
        if not met:
            self.missed.append(" ".join(filter(None, (label, value, f"(target {target})"))))
        return met

    def at_least(self, label: str, ratio: float, target: float) -> bool:
        return self.check(label, ratio >= target, f">= {target}", f"{ratio:.2f}")

    def at_most(self, label: str, ratio: float, target: float) -> bool:
        return self.check(label, ratio <= target, f"<= {target}", f"{ratio:.2f}")

    def exit_status(self) -> int:
        """0 if every target was met; else 1, after naming each miss on stderr."""
        if not self.missed:
            print(f"{self.bench}: every target met", flush=True)
            return 0
        for miss in self.missed:
            print(f"{self.bench}: TARGET MISSED: {miss}", file=sys.stderr, flush=True)
        return 1
