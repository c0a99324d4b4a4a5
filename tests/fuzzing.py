"""The hypothesis budget the fuzz tests (tests/unit/test_fuzz_*.py) share."""

import os

from hypothesis import HealthCheck, settings


def fuzz(examples: int) -> settings:
    """A fixed budget, the same examples on every run (CI is deterministic); FUZZ_SCALE and
    FUZZ_RANDOM widen a local run. The examples share the test's tmp_path: each works in its
    own files or folder."""
    return settings(
        max_examples=examples * int(os.environ.get("FUZZ_SCALE", "1")),
        deadline=None,
        derandomize=os.environ.get("FUZZ_RANDOM") is None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
