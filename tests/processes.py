"""Processes a killed run left: the tests kill runs in their own sessions and look for survivors."""

import os


def session_processes(session: int) -> list[int]:
    """Pids of the live processes of `session` (a killed run's jobs, if any survived)."""
    alive = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getsid(int(name)) == session:
                    alive.append(int(name))
            except OSError:
                continue
    return alive
