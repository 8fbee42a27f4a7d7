"""A second factor for an account that gains a reading role after joining, in the staff PWA: the admin
adds the teacher role to a contributor; at the next sign-in, after the password, the app shows the
authenticator set-up (a QR code drawn as SVG, the key to type, a link) and signs in with the first code.
Debian's Chromium through Playwright against a real Cairn server; every wait is on the DOM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyotp
import pytest

from sync.protocol import b64e
from tests.pwa import _pages as ui
from tests.pwa._live import CONTRIBUTOR, PASSWORD_FOR_TESTS, LiveSchool, LiveServer
from tests.pwa._pages import PHONE, axe, new_context, shot

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    server = LiveServer(tmp_path_factory.mktemp("pwa-enrolment"))
    with server as school:
        yield server, school


@pytest.mark.browser
def test_a_role_added_after_joining_enrols_the_authenticator_at_sign_in(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    user_id = school.contributor.device.user_id
    dsl = school.school.dsl.device
    server.run(dsl.call("POST", "/api/v1/admin/roles", user_id=b64e(user_id), roles=["teacher"]))
    problems: list[str] = []
    context = new_context(browser, PHONE)
    page = context.new_page()
    ui.watch(page, problems)
    try:
        ui.open_app(page, school)
        if page.is_visible("#add-person"):
            page.click("#add-person")
        page.fill("#sign-in-login", CONTRIBUTOR)
        page.fill("#sign-in-password", PASSWORD_FOR_TESTS)
        page.click("#sign-in-submit")
        page.wait_for_selector("#sign-in-enrol:not([hidden])")
        assert page.locator("#sign-in-enrol-qr svg[role=img] path").count() == 1
        secret = page.inner_text("#sign-in-enrol-secret").replace(" ", "")
        assert page.get_attribute("#sign-in-enrol-link", "href").startswith("otpauth://totp/")
        assert f"secret={secret}" in page.get_attribute("#sign-in-enrol-link", "href")
        found = axe(page) + ui.layout_problems(page)
        shot(page, "phone-sign-in-enrol")
        page.fill("#sign-in-totp", "000000")  # a wrong code: refused, the set-up stays on screen
        page.click("#sign-in-submit")
        page.wait_for_selector("#sign-in-message:has-text('not right')")
        assert page.is_visible("#sign-in-enrol")
        page.fill("#sign-in-totp", pyotp.TOTP(secret).now())
        page.click("#sign-in-submit")
        page.wait_for_selector("#screen-capture:not([hidden])")
        expected = "status of 401"  # the enrolment answer and the wrong code, as the browser logs them
        assert found == [] and [p for p in problems if expected not in p] == []
    finally:
        context.close()
