"""Debian's headless chromium for the report's browser tests: one browser per module, a fresh
tab per test, and the folder the screenshots are kept in.

Root installs chromium through the project's setup (`make test` runs .ci/install_browser.sh);
without it the tests skip, saying what to run. Screenshots are kept in $VLPREP_ARTIFACTS
(default tests/artifacts/, ignored by git).
"""

import os
from pathlib import Path

import pytest

from tests.browser.chromium import Chromium, Tab, chromium_path

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("VLPREP_ARTIFACTS", REPO / "tests" / "artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Per module, so that no idle browser outlives the browser tests through the rest of the suite.
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    log = tmp_path_factory.mktemp("chromium") / "chromium.log"
    with Chromium(chromium_path(), log) as chromium:
        yield chromium


@pytest.fixture
def tab(browser):
    page = Tab(browser)
    yield page
    page.close()
