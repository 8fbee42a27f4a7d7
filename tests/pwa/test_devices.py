"""The devices page, end to end in Chromium against a real Cairn server.

A contributor signs in on a phone: the app pins the school signing key and shows its fingerprint, the same
one the DSL's device shows. The contributor's lost tablet (a second device, signed in from Python) is listed
with its last-seen time and revoked in one step: the server marks it revoked, its session stops working,
and the next directory version the DSL's device signs lists it as revoked. The page is checked at phone and
tablet sizes for sideways scrolling, small targets and axe-core violations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from server.models import Device as DeviceRow
from sync.device import ApiFailure, sign_in
from sync.protocol import b64e
from tests.pwa._live import CONTRIBUTOR, PASSWORD_FOR_TESTS, LiveSchool, LiveServer
from tests.pwa._pages import PHONE, TABLET, axe, layout_problems, new_context, shot, watch
from tests.pwa._pages import sign_in as sign_in_page

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    server = LiveServer(tmp_path_factory.mktemp("pwa-devices"))
    with server as school:
        yield server, school


@pytest.mark.browser
def test_a_lost_tablet_is_revoked_in_one_step_and_the_fingerprint_matches_the_dsls(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    dsl = school.school.dsl.device
    tablet = server.run(sign_in(school.school.http, school.school.school_id, CONTRIBUTOR, PASSWORD_FOR_TESTS))
    context = new_context(browser, PHONE)
    page = context.new_page()
    problems: list[str] = []
    watch(page, problems)
    sign_in_page(page, school)

    page.wait_for_selector("#fingerprint-notice:not([hidden])")
    assert page.text_content("#fingerprint-notice-text") == dsl.fingerprint
    page.click("#fingerprint-notice-compare")
    page.wait_for_selector("#screen-devices:not([hidden])")
    assert page.text_content("#fingerprint-text") == dsl.fingerprint
    row = f"#devices-list li[data-device='{b64e(tablet.device_id)}']"
    page.wait_for_selector(row)
    assert "last seen" in (page.text_content(row) or "")
    assert page.locator("#devices-list li").count() >= 3  # registered at set-up, this phone, the tablet
    assert page.locator("#devices-list li", has_text="(this device)").locator("button").count() == 0
    shot(page, "devices-phone")
    assert layout_problems(page) == []
    assert axe(page) == []

    page.click(f"{row} button")  # one step: no second question
    page.wait_for_selector(f"{row}:has-text('revoked')")
    assert "Revoked" in (page.text_content("#devices-message") or "")
    assert page.locator(f"{row} button").count() == 0

    async def after() -> tuple[int | None, str, bool]:
        async with school.running.services.engine.connect() as conn:
            revoked = await conn.scalar(select(DeviceRow.revoked_ms).where(DeviceRow.id == tablet.device_id))
        try:
            await tablet.call("GET", "/api/v1/devices")
            code = "still signed in"
        except ApiFailure as exc:
            code = exc.code
        await dsl.refresh()  # the DSL's device signs the next directory version, listing the revocation
        listed = next(d for d in dsl.directory["devices"] if d["id"] == b64e(tablet.device_id))
        return revoked, code, listed["revoked"]

    revoked_ms, code, listed_revoked = server.run(after())
    assert revoked_ms is not None and code == "unauthenticated" and listed_revoked

    page.set_viewport_size(TABLET)
    assert layout_problems(page) == []
    shot(page, "devices-tablet")
    assert problems == []
    context.close()
