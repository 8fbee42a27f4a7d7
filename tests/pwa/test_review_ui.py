"""The review screens as people use them, at phone and tablet sizes: the inbox and its filters, a concern with
its body map, a pupil's chronology with its print layout (printing is audited first), search, the teacher's
read-only view and the contributor's logging-only view. Each view is checked by axe-core (no serious or
critical violation), fits the screen with 44-pixel targets, and is saved as a screenshot under
test-artifacts/pwa/. The inbox also works with the keyboard alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from server.models import AuditEvent
from tests.pwa import _pages as ui
from tests.pwa._live import LiveSchool, LiveServer
from tests.pwa._pages import PHONE, TABLET, axe, new_context, sign_in
from tests.pwa._review import pupil_hex, review_school, sign_in_reader, write_as_dsl

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    yield from review_school(tmp_path_factory.mktemp("pwa-review-ui"))


@pytest.fixture(scope="module")
def seeded(live: tuple[LiveServer, LiveSchool]) -> dict[str, str]:
    """A fictional history for Ada (class Oak): a concern with body-map marks, a behaviour incident, a parental
    contact, an SEN note and a positive note, on different days."""
    server, school = live
    ada, bilal = pupil_hex(school, "Ada"), pupil_hex(school, "Bilal")
    marks = [
        {
            "pupil": ada,
            "side": "front",
            "x": 300,
            "y": 330,
            "type": "bruise",
            "size_mm": 20,
            "colour": "purple",
            "note": "Fictional: upper arm",
        },
        {"pupil": ada, "side": "back", "x": 520, "y": 460, "type": "graze", "colour": "red"},
    ]
    records = [
        {
            "kind": "safeguarding_concern",
            "category": "neglect",
            "occurred_at": "2026-11-03T12:10",
            "observed": "VIEW-MARKER arrived without breakfast and with a bruise on the arm.",
            "child_words": "Fictional: there was no food at home",
            "location": "Playground",
            "present": ["Lunchtime supervisor"],
            "immediate_action": "Gave her toast; told the DSL.",
            "body_map": marks,
            "urgent": True,
            "pupils": [{"pupil": ada, "role": "subject"}],
        },
        {
            "kind": "behaviour_incident",
            "category": "behaviour_pa",
            "occurred_at": "2026-10-14T10:30",
            "observed": "Fictional: pushed another pupil in the lunch queue.",
            "pupils": [{"pupil": ada, "role": "alleged_perpetrator"}, {"pupil": bilal, "role": "victim"}],
        },
        {
            "kind": "parental_contact",
            "category": "pastoral_other",
            "occurred_at": "2026-10-20T15:20",
            "observed": "Fictional: spoke with her carer at pick-up about tiredness.",
            "pupils": [{"pupil": ada, "role": "subject"}],
        },
        {
            "kind": "sen_note",
            "category": "sen",
            "occurred_at": "2026-09-29T09:00",
            "observed": "Fictional: reading support twice a week from October.",
            "pupils": [{"pupil": ada, "role": "subject"}],
        },
        {
            "kind": "general_note",
            "category": "positive_behaviour",
            "occurred_at": "2026-11-10T14:00",
            "observed": "Fictional: helped a new pupil find the library.",
            "pupils": [{"pupil": ada, "role": "subject"}],
        },
    ]
    ids = write_as_dsl(server, school, records)
    return {"concern": ids[0], "ada": ada}


def _check(page: Page, where: str, found: dict[str, list]) -> None:
    found[where] = axe(page) + ui.layout_problems(page)


def _shot(page: Page, name: str) -> None:
    """A screenshot with the screen's heading at the top, as the app shows it when the screen opens."""
    page.evaluate("() => document.querySelector('section.screen:not([hidden])').scrollIntoView()")
    ui.shot(page, name)


@pytest.mark.browser
@pytest.mark.parametrize("size", ["phone", "tablet"])
def test_review_views_pass_axe_fit_the_screen_and_print_an_audited_chronology(
    browser: Browser, live: tuple[LiveServer, LiveSchool], seeded: dict[str, str], size: str
) -> None:
    server, school = live
    viewport = PHONE if size == "phone" else TABLET
    problems: list[str] = []
    found: dict[str, list] = {}
    contexts = [new_context(browser, viewport) for _ in range(3)]
    try:
        dsl = contexts[0].new_page()
        sign_in_reader(dsl, server, school, "dsl")
        ui.watch(dsl, problems)
        dsl.click("#nav-inbox")
        dsl.wait_for_selector(f"#inbox-list [data-concern='{seeded['concern']}']")
        _check(dsl, "inbox", found)
        _shot(dsl, f"{size}-review-inbox")

        dsl.click("#inbox-filters summary")
        dsl.select_option("#filter-category", "neglect")
        dsl.wait_for_selector("#inbox-filter-note:has-text('1 on')")
        assert "VIEW-MARKER" in dsl.inner_text("#inbox-list")
        assert "lunch queue" not in dsl.inner_text("#inbox-list")
        _check(dsl, "inbox (filtered)", found)
        _shot(dsl, f"{size}-review-inbox-filtered")
        dsl.select_option("#filter-class", label="ash")
        dsl.wait_for_selector("#inbox-empty:has-text('Nothing matches these filters')")
        assert dsl.locator("#inbox-list [data-concern]").count() == 0
        dsl.select_option("#filter-class", label="oak")
        dsl.wait_for_selector("#inbox-list [data-concern]:has-text('VIEW-MARKER')")
        dsl.fill("#filter-from", "2099-01-01")  # logged after today: nothing
        dsl.wait_for_selector("#inbox-empty:has-text('Nothing matches these filters')")
        dsl.fill("#filter-from", "2020-01-01")
        dsl.wait_for_selector("#inbox-list [data-concern]:has-text('VIEW-MARKER')")
        dsl.click("#filter-clear")
        dsl.wait_for_selector("#inbox-list [data-concern]:has-text('lunch queue')")

        dsl.click(f"#inbox-list [data-concern='{seeded['concern']}'] button")
        dsl.wait_for_selector("#screen-concern:not([hidden])")
        expect(dsl.locator("#concern-marks li")).to_have_count(2)
        expect(dsl.locator("#concern-outlines .marks circle")).to_have_count(2)
        expect(dsl.locator("#concern-fields")).to_contain_text("there was no food at home")
        _check(dsl, "concern", found)
        _shot(dsl, f"{size}-review-concern")
        dsl.locator("#concern-bodymap").scroll_into_view_if_needed()
        ui.shot(dsl, f"{size}-review-concern-body-map")

        dsl.click(f"[data-chronology='{seeded['ada']}']")
        dsl.wait_for_selector("#screen-chronology:not([hidden])")
        entries = dsl.locator("#chronology-list [data-entry]")
        expect(entries).to_have_count(5)
        assert "Alleged perpetrator" in entries.nth(1).inner_text()  # oldest first: the SEN note, then this
        _check(dsl, "chronology", found)
        _shot(dsl, f"{size}-review-chronology")
        dsl.select_option("#chronology-kind", "behaviour_incident")
        expect(entries).to_have_count(1)
        assert entries.first.get_attribute("data-kind") == "behaviour_incident"
        dsl.select_option("#chronology-kind", "")
        expect(entries).to_have_count(5)

        dsl.evaluate(  # a stand-in for the print dialog that leaves a mark a selector wait can see
            "() => { let n = 0; window.print = () => { document.documentElement.dataset.printed = String(++n); }; }"
        )
        with dsl.expect_response(lambda r: r.url.endswith("/api/v1/audit") and r.request.method == "POST") as sent:
            dsl.click("#chronology-print")
        assert sent.value.ok
        dsl.wait_for_selector("html[data-printed='1']", state="attached")
        dsl.emulate_media(media="print")
        head = dsl.inner_text(".print-head")
        assert "Chronology of Ada Fernsby" in head and "by Fictional DSL" in head and "Printed" in head
        assert "Fictional Primary" in head  # the school, as the directory answer names it
        assert dsl.is_hidden("#chronology-print") and dsl.is_hidden(".topbar")
        _shot(dsl, f"{size}-review-chronology-print")
        dsl.emulate_media(media="screen")
        printed = server.run(_audit(school, "chronology.printed"))
        assert seeded["ada"] in printed

        dsl.click("#nav-search")
        dsl.fill("#search-input", "breakfast bruise")
        dsl.wait_for_selector(f"#search-results [data-concern='{seeded['concern']}']")
        assert dsl.locator("#search-results [data-concern]").count() == 1
        _check(dsl, "search", found)
        _shot(dsl, f"{size}-review-search")

        teacher = contexts[1].new_page()
        sign_in_reader(teacher, server, school, "teacher-oak")
        ui.watch(teacher, problems)
        teacher.click("#nav-inbox")
        teacher.wait_for_selector(f"#inbox-list [data-concern='{seeded['concern']}']")
        _check(teacher, "teacher: my classes", found)
        _shot(teacher, f"{size}-review-teacher")
        teacher.click(f"#inbox-list [data-concern='{seeded['concern']}'] button")
        teacher.wait_for_selector("#screen-concern:not([hidden])")
        assert teacher.is_hidden("#triage")
        _check(teacher, "teacher: concern", found)
        _shot(teacher, f"{size}-review-teacher-concern")

        lunch = contexts[2].new_page()
        ui.watch(lunch, problems)
        sign_in(lunch, school)
        assert lunch.is_hidden("#sections")
        _check(lunch, "contributor", found)
        _shot(lunch, f"{size}-review-contributor")
    finally:
        for context in contexts:
            context.close()
    assert {k: v for k, v in found.items() if v} == {}
    assert problems == []


async def _audit(school: LiveSchool, action: str) -> list[str]:
    async with school.running.services.engine.connect() as conn:
        rows = await conn.execute(
            select(AuditEvent.target).where(
                AuditEvent.school_id == school.school.school_id, AuditEvent.action == action
            )
        )
        return [r[0] for r in rows]


def _tab_to(page: Page, selector: str, limit: int = 80, key: str = "Tab") -> None:
    """Press Tab (or Shift+Tab) until `selector` has the focus: it can be reached by keyboard."""
    for _ in range(limit):
        if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{selector} was not reached with the Tab key")


@pytest.mark.browser
def test_the_inbox_a_concern_and_its_triage_work_with_the_keyboard_alone(
    browser: Browser, live: tuple[LiveServer, LiveSchool], seeded: dict[str, str]
) -> None:
    server, school = live
    context = new_context(browser, TABLET)
    try:
        page = context.new_page()
        sign_in_reader(page, server, school, "dsl")
        _tab_to(page, "#nav-inbox", key="Shift+Tab")  # the sections come just before the screen's heading
        page.keyboard.press("Enter")
        page.wait_for_selector("#screen-inbox[data-ready]:not([hidden])")
        row = f"#inbox-list [data-concern='{seeded['concern']}'] button"
        page.wait_for_selector(row)
        _tab_to(page, row)
        page.keyboard.press("Enter")
        page.wait_for_selector("#screen-concern:not([hidden])")
        _tab_to(page, "#status-to")
        page.keyboard.press("End")  # the last status: reopened
        _tab_to(page, "#triage-status button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_selector("#concern-history li:has-text('Status set to reopened')")
        _tab_to(page, "#concern-back", key="Shift+Tab")
        page.keyboard.press("Enter")
        page.wait_for_selector("#screen-inbox[data-ready]:not([hidden])")
    finally:
        context.close()
