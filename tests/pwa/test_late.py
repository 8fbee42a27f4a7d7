"""Nothing hidden, nothing delayed, in the browser (docs/PROTOCOL.md 5.1, 9.5): Debian's Chromium through Playwright
against a real Cairn server.

- A new teacher signs in while the class's concerns already exist: the inbox says "Nothing here yet" (it holds no
  key of the class). The DSL's device approves the teacher for the class and its duties grant the pupils' keys:
  the same page, with no reload and no second device, shows every earlier entry.
- The DSL names a teacher of another class on a concern with three earlier events: that teacher's open inbox
  shows the concern and every earlier event, live.

Every wait is on the DOM (an event the app signals), never a sleep or a polled function.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from sync.keyholder import run_duties
from sync.protocol import b64d, b64e
from tests.pwa._live import LiveSchool, LiveServer
from tests.pwa._pages import PHONE, TABLET, new_context, watch
from tests.pwa._review import pupil_hex, review_school, sign_in_reader, write_as_dsl

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    yield from review_school(tmp_path_factory.mktemp("pwa-late"))


def _record(pupil: str, observed: str) -> dict:
    return {
        "kind": "safeguarding_concern",
        "category": "neglect",
        "occurred_at": "2026-11-02T12:15",
        "observed": observed,
        "pupils": [{"pupil": pupil, "role": "subject"}],
    }


def _row(marker: str) -> str:
    return f"#inbox-list [data-concern]:has-text('{marker}')"


def _open_inbox_live(page: Page) -> None:
    """The inbox, once the device pulled to the end and listens for pushes (the app says so on <html>)."""
    page.click("#nav-inbox")
    page.wait_for_selector("#screen-inbox[data-ready]:not([hidden])")
    page.wait_for_selector("html[data-live=true]", state="attached")


async def _teach(school: LiveSchool, login: str, label: str) -> int:
    """An admin (the DSL here) assigns the teacher to the class; the DSL's device approves it and runs its
    duties, which seal the class's pupil keys to the teacher. Returns how many grants it made."""
    dsl = school.school.dsl.device
    member = school.school.members[login].device
    class_id = next(b64d(c["id"], "id") for c in dsl.directory["classes"] if c["label"] == label)
    await dsl.call("POST", "/api/v1/admin/class-teachers", class_id=b64e(class_id), user_id=b64e(member.user_id),
                   reason="fictional: new to the class")
    await dsl.approve({("teaches", class_id, member.user_id)})
    return (await run_duties(dsl)).granted


@pytest.mark.browser
def test_a_new_teacher_s_inbox_shows_the_class_s_earlier_entries_once_granted_without_a_reload(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    oak = [pupil_hex(school, n) for n in ("Ada", "Bilal", "Cora")]
    markers = [f"LATE-MARKER-{n}" for n in range(len(oak))]
    write_as_dsl(server, school, [_record(p, f"{m} fictional: written before the new teacher joined.")
                                  for p, m in zip(oak, markers, strict=True)])
    server.run(school.school.invite("teacher-new", ["teacher"]))  # invited, joined, approved: no class yet
    problems: list[str] = []
    context = new_context(browser, TABLET)
    try:
        page = context.new_page()
        sign_in_reader(page, server, school, "teacher-new")
        watch(page, problems)
        _open_inbox_live(page)
        page.wait_for_selector("#inbox-empty:not([hidden])")
        assert page.locator("#inbox-list [data-concern]").count() == 0

        assert server.run(_teach(school, "teacher-new", "oak")) >= len(oak)  # the pupil keys, and the rosters owed

        for marker in markers:  # the same page: no reload, no reconnect by hand, no second device
            page.wait_for_selector(_row(marker))
        assert page.locator("#inbox-list [data-concern]").count() == len(oak)
        assert page.is_hidden("#inbox-empty") and page.is_hidden("#inbox-waiting")
    finally:
        context.close()
    assert problems == []


@pytest.mark.browser
def test_a_person_named_on_a_concern_reads_its_three_earlier_events_live(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    (concern,) = write_as_dsl(server, school, [
        _record(pupil_hex(school, "Cora"), "NAMED-MARKER fictional: a concern the Ash teacher is named on later."),
    ])
    problems: list[str] = []
    dsl_context, ash_context = new_context(browser, TABLET), new_context(browser, PHONE)
    try:
        ash = ash_context.new_page()
        sign_in_reader(ash, server, school, "teacher-ash")  # another class: no key of this concern
        watch(ash, problems)
        _open_inbox_live(ash)
        assert ash.locator(_row("NAMED-MARKER")).count() == 0

        dsl = dsl_context.new_page()
        sign_in_reader(dsl, server, school, "dsl")
        watch(dsl, problems)
        _open_inbox_live(dsl)
        dsl.click(f"#inbox-list [data-concern='{concern}'] button")
        dsl.wait_for_selector("#screen-concern:not([hidden])")
        dsl.fill("#comment-text", "EARLIER-COMMENT fictional: spoke to the pupil at break.")
        dsl.click("#comment-form button[type=submit]")
        dsl.wait_for_selector("#concern-history li:has-text('EARLIER-COMMENT')")
        dsl.select_option("#status-to", "awaiting")
        dsl.click("#triage-status button[type=submit]")
        dsl.wait_for_selector("#concern-history li:has-text('Status set to awaiting')")
        dsl.click("#triage-more summary")
        dsl.select_option("#need-person", label="teacher-ash")
        dsl.click("#triage-need button[type=submit]")
        expect(dsl.locator("#concern-fields")).to_contain_text("teacher-ash")

        row = ash.wait_for_selector(_row("NAMED-MARKER"))  # live: the earlier events, opened by the granted key
        row.query_selector("button").click()  # type: ignore[union-attr]
        ash.wait_for_selector("#screen-concern:not([hidden])")
        expect(ash.locator("#concern-fields")).to_contain_text("NAMED-MARKER fictional: a concern the Ash teacher")
        ash.wait_for_selector("#concern-history li:has-text('EARLIER-COMMENT')")
        ash.wait_for_selector("#concern-history li:has-text('Status set to awaiting')")
        assert ash.is_hidden("#triage")  # named to read, not to triage
    finally:
        dsl_context.close()
        ash_context.close()
    assert problems == []
