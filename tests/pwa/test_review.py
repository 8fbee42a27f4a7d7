"""The staff PWA's review side, end to end: Debian's Chromium (through Playwright) against a real Cairn server.

A contributor logs a concern on one browser context while the DSL watches the inbox on another: it appears
live. The DSL opens it (read), triages it (assign, status, an overdue action, done), and a teacher of the
pupil sees it read-only until the DSL restricts it, when it leaves the teacher's device entirely; a teacher of
another class never sees it. Two DSL devices offline change the same field: after syncing both versions are
shown side by side, one is kept, and the conflict is gone on both. Navigation follows roles: a contributor
gets logging only. Every wait is on the DOM, never a sleep.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.pwa._live import LiveSchool, LiveServer
from tests.pwa._pages import PHONE, TABLET, new_context, offline_ready, shot, sign_in, unlock, watch
from tests.pwa._review import log_concern, pupil_hex, review_school, sign_in_reader, write_as_dsl

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    yield from review_school(tmp_path_factory.mktemp("pwa-review"))


def _row(page: Page, marker: str) -> str:
    return f"#inbox-list [data-concern]:has-text('{marker}')"


def _unread(page: Page, count: int) -> None:
    page.wait_for_selector(f"#unread-count[data-count='{count}']", state="attached")


def _open_inbox(page: Page) -> None:
    page.click("#nav-inbox")
    page.wait_for_selector("#screen-inbox[data-ready]:not([hidden])")


@pytest.mark.browser
def test_a_contributor_sees_only_logging_and_a_dsl_sees_a_new_concern_live_and_triages_it(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    problems: list[str] = []
    dsl_context = new_context(browser, TABLET)
    lunch_context = new_context(browser, PHONE)
    try:
        dsl = dsl_context.new_page()
        sign_in_reader(dsl, server, school, "dsl")  # the first try answers 401 totp_required, as it should
        watch(dsl, problems)
        _open_inbox(dsl)
        expect(dsl.locator("#nav-search")).to_be_visible()
        unread_before = int(dsl.get_attribute("#unread-count", "data-count") or "0")

        lunch = lunch_context.new_page()
        watch(lunch, problems)
        sign_in(lunch, school)
        # Logging only: no sections, no inbox, nothing pulled on the contributor's screen.
        assert lunch.is_hidden("#sections") and lunch.is_hidden("#nav-inbox") and lunch.is_hidden("#nav-search")
        log_concern(
            lunch, "Cora", "negl", "LIVE-MARKER came in with no coat again and asked for breakfast.", urgent=True
        )
        assert lunch.locator("#inbox-list [data-concern]").count() == 0

        row = dsl.wait_for_selector(_row(dsl, "LIVE-MARKER"))  # pushed live while the inbox is open
        assert row.get_attribute("data-unread") == "true" and row.get_attribute("data-alert") == "true"
        assert dsl.locator("#inbox-list [data-concern]").first.get_attribute("data-alert") == "true"  # alerts first
        _unread(dsl, unread_before + 1)
        concern_id = row.get_attribute("data-concern")

        dsl.click(f"#inbox-list [data-concern='{concern_id}'] button")
        dsl.wait_for_selector("#screen-concern:not([hidden])")
        expect(dsl.locator("#concern-fields")).to_contain_text("LIVE-MARKER came in with no coat")
        expect(dsl.locator("#concern-history li").first).to_contain_text("received")
        _unread(dsl, unread_before)  # opening it marked it read

        dsl.select_option("#assign-to", label="Fictional DSL")
        dsl.click("#triage-assign button[type=submit]")
        expect(dsl.locator("#concern-fields")).to_contain_text("Assigned to")
        dsl.wait_for_selector("#concern-history li:has-text('Assigned to Fictional DSL')")
        dsl.select_option("#status-to", "awaiting")
        dsl.fill("#status-note", "Waiting for the class teacher's view")
        dsl.click("#triage-status button[type=submit]")
        dsl.wait_for_selector("#concern-history li:has-text('Status set to awaiting')")
        dsl.fill("#action-text", "Speak to the parent at pick-up")
        dsl.select_option("#action-owner", label="teacher-oak")
        dsl.fill("#action-due", "2020-01-06")
        dsl.click("#triage-action button[type=submit]")
        overdue = dsl.wait_for_selector("#concern-actions li.overdue:has-text('Speak to the parent')")
        assert "Overdue" in overdue.inner_text()
        dsl.fill("#action-text", "Check the coat cupboard")
        dsl.click("#triage-action button[type=submit]")
        dsl.wait_for_selector("#concern-history li:has-text('Check the coat cupboard')")  # the action is in, then done
        dsl.click("#concern-actions li:has-text('Check the coat cupboard') button[aria-label^='Mark done']")
        dsl.wait_for_selector("#concern-actions li.done:has-text('Check the coat cupboard')")
        dsl.click("#triage-more summary")
        dsl.select_option("#need-person", label="teacher-ash")
        dsl.click("#triage-need button[type=submit]")
        expect(dsl.locator("#concern-fields")).to_contain_text("teacher-ash")
        dsl.select_option("#sharing-decision", "no")
        dsl.fill("#sharing-with", "Fictional early help team")
        dsl.fill("#sharing-reason", "Fictional: not needed yet; review in a week.")
        dsl.click("#triage-sharing button[type=submit]")
        expect(dsl.locator("#concern-fields")).to_contain_text("Not shared with Fictional early help team")
        dsl.select_option("#reclassify-category", "attendance")
        dsl.click("#triage-reclassify button[type=submit]")
        dsl.wait_for_selector("#concern-history li:has-text('Reclassified as Attendance')")
        expect(dsl.locator("#concern-title")).to_have_text("Cora Linnet: Attendance")
        dsl.evaluate("() => document.querySelector('#screen-concern').scrollIntoView()")
        shot(dsl, "tablet-review-concern-triaged")

        dsl.click("#concern-back")
        dsl.wait_for_selector("#screen-inbox[data-ready]:not([hidden])")
        row = dsl.wait_for_selector(f"#inbox-list [data-concern='{concern_id}']")
        assert row.get_attribute("data-unread") == "false"
        assert "Awaiting" in row.inner_text() and "1 overdue" in row.inner_text()
    finally:
        dsl_context.close()
        lunch_context.close()
    assert problems == []


def _record(pupil: str, category: str, observed: str, **extra: object) -> dict:
    return {
        "kind": extra.pop("kind", "safeguarding_concern"),
        "category": category,
        "occurred_at": extra.pop("at", "2026-11-02T12:15"),
        "observed": observed,
        "pupils": [{"pupil": pupil, "role": extra.pop("role", "subject")}],
        **extra,
    }


@pytest.mark.browser
def test_a_teacher_sees_their_class_but_nothing_restricted_and_another_class_sees_none_of_it(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    cora, ada, dev = (pupil_hex(school, n) for n in ("Cora", "Ada", "Dev"))
    write_as_dsl(
        server,
        school,
        [
            _record(cora, "neglect", "TEACHER-MARKER arrived hungry three days running."),
            _record(ada, "physical_abuse", "RESTRICTED-MARKER a mark on the neck, seen at lunch."),
            _record(dev, "bullying", "ASH-CONTROL was pushed over in the line."),
        ],
    )
    problems: list[str] = []
    oak_context, ash_context, dsl_context = (new_context(browser, PHONE) for _ in range(3))
    try:
        oak = oak_context.new_page()
        sign_in_reader(oak, server, school, "teacher-oak")
        watch(oak, problems)
        expect(oak.locator("#nav-inbox-label")).to_have_text("My classes")
        assert oak.is_hidden("#nav-search")
        _open_inbox(oak)
        oak.wait_for_selector(_row(oak, "TEACHER-MARKER"))
        text = oak.inner_text("#screen-inbox")
        assert "RESTRICTED-MARKER" not in text and "ASH-CONTROL" not in text
        rows = oak.locator("#inbox-list [data-concern]").count()
        # No hidden row and no count of anything the teacher may not read.
        assert oak.locator("#inbox-list [data-concern][hidden], #inbox-list [data-concern] [hidden]").count() == 0
        assert int(oak.get_attribute("#unread-count", "data-count") or "0") <= rows
        assert f"{rows} entr" in oak.inner_text("#inbox-summary")
        oak.click(f"{_row(oak, 'TEACHER-MARKER')} button")
        oak.wait_for_selector("#screen-concern:not([hidden])")
        expect(oak.locator("#concern-fields")).to_contain_text("TEACHER-MARKER arrived hungry")
        assert oak.is_hidden("#triage") and oak.is_visible("#comment-form")  # read-only: a comment at most
        oak.fill("#comment-text", "Fictional: I will keep an eye on lunch.")
        oak.click("#comment-form button[type=submit]")
        oak.wait_for_selector("#concern-history li:has-text('I will keep an eye on lunch')")
        oak.click("#concern-back")
        oak.wait_for_selector("#screen-inbox[data-ready]:not([hidden])")

        ash = ash_context.new_page()
        sign_in_reader(ash, server, school, "teacher-ash")
        watch(ash, problems)
        _open_inbox(ash)
        ash.wait_for_selector(_row(ash, "ASH-CONTROL"))
        assert "TEACHER-MARKER" not in ash.inner_text("body") and "RESTRICTED-MARKER" not in ash.inner_text("body")

        dsl = dsl_context.new_page()
        sign_in_reader(dsl, server, school, "dsl")
        watch(dsl, problems)
        _open_inbox(dsl)
        restricted = dsl.wait_for_selector(_row(dsl, "RESTRICTED-MARKER"))
        assert "Restricted" in restricted.inner_text()
        dsl.click(f"{_row(dsl, 'TEACHER-MARKER')} button")
        dsl.wait_for_selector("#concern-history li:has-text('I will keep an eye on lunch')")  # the teacher's comment
        dsl.click("#restrict-toggle")
        dsl.wait_for_selector("#concern-badges .tag.restricted")
        expect(dsl.locator("#restrict-toggle")).to_have_text("Lift restriction")

        # Restricted now: it leaves the teacher's inbox live, with no trace.
        oak.wait_for_selector(_row(oak, "TEACHER-MARKER"), state="detached")
        assert "TEACHER-MARKER" not in oak.inner_text("body")
        assert oak.locator("#inbox-list [data-concern]").count() == rows - 1
    finally:
        for context in (oak_context, ash_context, dsl_context):
            context.close()
    assert problems == []


@pytest.mark.browser
def test_two_offline_dsl_devices_edit_one_field_see_both_versions_and_resolve_them(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    (concern,) = write_as_dsl(
        server,
        school,
        [
            _record(pupil_hex(school, "Elsie"), "attendance", "CONFLICT-MARKER late every Monday this half term."),
        ],
    )
    problems: list[str] = []
    contexts = [new_context(browser, TABLET), new_context(browser, PHONE)]
    try:
        pages = []
        for context in contexts:
            page = context.new_page()
            sign_in_reader(page, server, school, "dsl")  # the same person, two devices
            watch(page, problems)
            _open_inbox(page)
            page.click(f"#inbox-list [data-concern='{concern}'] button")
            page.wait_for_selector("#screen-concern:not([hidden])")
            pages.append(page)
        for context, page in zip(contexts, pages, strict=True):
            context.set_offline(True)
            page.wait_for_selector("#net-state[data-state=offline]")
        for page, status in zip(pages, ("awaiting", "closed"), strict=True):
            page.select_option("#status-to", status)
            page.click("#triage-status button[type=submit]")
            page.wait_for_selector(f"#concern-history li:has-text('Status set to {status}')")
            page.wait_for_selector("#pending-count[data-count='1']")
        for context, page in zip(contexts, pages, strict=True):
            context.set_offline(False)
            page.wait_for_selector("#net-state[data-state=online]")
        for page in pages:  # each device now holds both edits: shown side by side
            page.wait_for_selector("[data-conflict='status'] .version >> nth=1")
            values = page.locator("[data-conflict='status'] .version .value").all_inner_texts()
            assert sorted(values) == ["Awaiting", "Closed"]
            expect(page.locator("#concern-badges")).to_contain_text("Edited in two places")
        for page, name in zip(pages, ("tablet-review-conflict", "phone-review-conflict"), strict=True):
            page.locator("#concern-conflicts").scroll_into_view_if_needed()
            shot(page, name)
        keep = pages[0].locator("[data-conflict='status'] .version", has_text="Closed").locator("button")
        keep.click()
        for page in pages:
            page.wait_for_selector("#concern-conflicts", state="hidden")
            expect(page.locator("#concern-fields")).to_contain_text("Closed")
            page.wait_for_selector("#concern-history li:has-text('Resolved the conflict')")
    finally:
        for context in contexts:
            context.close()
    # Chromium logs a request that a device set offline cut off; the app's own errors are what must not appear
    assert [p for p in problems if "net::ERR_INTERNET_DISCONNECTED" not in p] == []


@pytest.mark.browser
def test_a_dsl_reads_the_inbox_and_a_concern_offline_after_a_reload(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    (concern,) = write_as_dsl(
        server, school, [_record(pupil_hex(school, "Finn"), "friendship", "OFFLINE-MARKER sat alone at every break.")]
    )
    problems: list[str] = []
    context = new_context(browser, PHONE)
    try:
        page = context.new_page()
        sign_in_reader(page, server, school, "dsl")
        watch(page, problems)
        offline_ready(page)
        _open_inbox(page)
        page.wait_for_selector(f"#inbox-list [data-concern='{concern}']")
        context.set_offline(True)
        page.reload()  # the service worker serves the app; the Casebook opens its sealed copy
        page.wait_for_selector("html[data-ready=true]")
        unlock(page)
        _open_inbox(page)
        page.click(f"#inbox-list [data-concern='{concern}'] button")
        page.wait_for_selector("#screen-concern:not([hidden])")
        expect(page.locator("#concern-fields")).to_contain_text("OFFLINE-MARKER sat alone at every break.")
        page.click("[data-chronology] >> nth=0")
        page.wait_for_selector(f"#chronology-list [data-entry='{concern}']")
    finally:
        context.close()
    assert problems == []
