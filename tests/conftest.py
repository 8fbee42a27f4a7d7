"""Shared pytest set-up: the browser fixture, and CI's rule that required suites may not be skipped.

CI sets ``CAIRN_TEST_REQUIRE_BROWSER=1`` and ``CAIRN_TEST_REQUIRE_POSTGRES=1``. Then a test marked
``browser`` or ``postgres`` that would be skipped (no Chromium, no PostgreSQL) fails instead, and a run
that collected no such test at all fails too, so a suite can never vanish silently.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
REQUIRED = {
    "browser": "CAIRN_TEST_REQUIRE_BROWSER",
    "postgres": "CAIRN_TEST_REQUIRE_POSTGRES",
}
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _required(marker: str) -> bool:
    return os.environ.get(REQUIRED[marker], "") not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        for marker in REQUIRED:
            if item.get_closest_marker(marker) and _required(marker):
                report.outcome = "failed"
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
                report.longrepr = f"{REQUIRED[marker]} is set, so this {marker} test may not be skipped: {reason}"


# The longest files, started first: with workers taking a file at a time (pytest-xdist, `make test`), a long
# file collected last would run alone at the end while the other cores idle.
LONG_FILES = ("tests/visibility/test_visibility.py", "tests/visibility/test_visibility_more.py",
              "tests/server/test_http_fuzz.py", "tests/server/test_cli_device.py")


def _rank(nodeid: str) -> int:
    return next((n for n, start in enumerate(LONG_FILES) if nodeid.startswith(start)), len(LONG_FILES))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: _rank(item.nodeid))  # stable: each file stays in one piece, and in its order


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """With ``--dist loadfile``, hand out LONG_FILES first. xdist itself orders files by how many tests they
    hold, most first, which put the visibility checker's few long tests last: alone at the end of CI."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongFilesFirst(LoadFileScheduling):
        def _assign_work_unit(self, node):  # type: ignore[no-untyped-def]
            for scope in sorted((s for s in self.workqueue if _rank(s) < len(LONG_FILES)), key=_rank, reverse=True):
                self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongFilesFirst(config, log)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or session.config.args != session.config.getini("testpaths"):
        return  # a partial run (one file, -k) need not hold every suite
    for marker in REQUIRED:
        if _required(marker) and not any(item.get_closest_marker(marker) for item in session.items):
            raise pytest.UsageError(f"{REQUIRED[marker]} is set but no test marked {marker!r} was collected")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Say plainly, at the end, whether the browser and PostgreSQL suites ran or were skipped."""
    counts = {marker: {"passed": 0, "failed": 0, "skipped": 0} for marker in REQUIRED}
    for outcome in ("passed", "failed", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            for marker in REQUIRED:
                if marker in getattr(report, "keywords", {}) and report.when in ("call", "setup"):
                    counts[marker][outcome] += 1
    for marker, c in counts.items():
        total = sum(c.values())
        if total and c["skipped"] == total:
            state = "SKIPPED (every test skipped; see the reasons above)"
        else:
            state = f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
        terminalreporter.write_line(f"{marker} suite: {state}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"required suites: {', '.join(m for m in REQUIRED if _required(m)) or 'none'}"]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (never a downloaded browser).

    Module-scoped on purpose: Playwright's sync API keeps an event loop running while it is open, which
    would break the asyncio tests of later modules; closing it at the end of each module avoids that."""
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
