"""The Approvals page and the keyholder duties in the browser: Debian's Chromium (through Playwright) against a
real Cairn server.

An admin (not a keyholder) invites Ms Fictional Oak on the Staff screen as a teacher of class oak and a member of
the SEN team, with a reason; she joins. The admin's screen shows the four requests waiting for the safeguarding
team. The DSL's browser lists the widenings its device computed itself (the new account, both roles, the class)
in plain words, grouped by person and class, with the admin's name and reason from the server's note. The DSL
approves the account, the teacher role and the class with one confirmation that repeats the list, and declines
the SEN role. Ms Oak's device then reads the class's concerns (the DSL's browser granted the pupils' keys in its
duties) and holds no SEN key; the change log shows the approval verified on the device; the admin's screen shows
nothing waits. The page also flags keys with one holder and shows an entry held from a device revoked while
offline, accepted here into the record. Checked at phone and tablet sizes with axe-core and the 44-pixel rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from crypto import envelope as env
from sync.client import Revoked
from sync.device import SEN, register, sign_in
from sync.events import decode
from sync.outbox import Outbox
from sync.protocol import b64d, b64e
from sync.writer import ConcernWriter
from tests.pwa._live import PASSWORD_FOR_TESTS, LiveSchool, LiveServer
from tests.pwa._pages import PHONE, TABLET, axe, layout_problems, new_context, shot, watch
from tests.pwa._review import review_school, sign_in_reader, write_as_dsl
from tests.server.harness import Member

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

HELD = "MARKER-HELD written on a tablet after it was revoked"
OAK = "MARKER-OAK a concern about a pupil of class oak"
ADMIN = "office-1"
NAME, LOGIN = "Ms Fictional Oak", "ms.oak@example.org"
REASON = "Covering Year 3 Oak from Monday; SEN lead from January"
LINES = (f"New staff: {NAME}, teacher, SEN team", f"{NAME} as a teacher", f"{NAME} to join the SEN team",
         f"{NAME} to teach oak")  # what the DSL's device shows, worked out on the device


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    yield from review_school(tmp_path_factory.mktemp("pwa-approvals"))


async def _prepare(school: LiveSchool) -> None:
    """An admin (approved by the DSL's Python device), and an entry held from a revoked device."""
    s = school.school
    dsl = s.dsl.device
    await s.invite(ADMIN, ["admin"])
    lunch = await s.invite("lunch-9", ["contributor"])
    await lunch.device.refresh()
    record = {
        "kind": "safeguarding_concern",
        "category": "neglect",
        "occurred_at": "2026-11-02T12:15",
        "observed": HELD,
        "pupils": [{"pupil": s.pupils[0].hex(), "role": "subject"}],
    }
    ConcernWriter(lunch.device, lunch.outbox).create(record)  # written while it did not know it was revoked
    await dsl.call("POST", "/api/v1/devices/revoke", device_id=b64e(lunch.device.device_id))
    try:
        await lunch.connect(school.running)
    except Revoked:
        pass


async def _join(school: LiveSchool, link: str) -> Member:
    """Ms Oak accepts the invitation on a device of her own (the Python client: joining in the browser is
    test_onboarding's part) and signs in."""
    found = re.search(r"#join=([0-9a-f]{32})\.([0-9a-f]+)$", link)
    assert found and found.group(1) == school.school_code
    s = school.school
    registration, registered = await register(s.http, s.school_id, found.group(2), PASSWORD_FOR_TESTS)
    device = await sign_in(s.http, s.school_id, LOGIN, PASSWORD_FOR_TESTS, totp_secret=registration.totp_secret,
                           device=registered)
    member = Member(device, registration.totp_secret, Outbox(s.folder / "ms-oak.db"))
    await device.refresh()
    return member


async def _reads(school: LiveSchool, member: Member) -> list[str]:
    """What Ms Oak's device pulls and opens now: each concern's observed text."""
    await member.device.refresh()
    devices = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in member.device.directory["devices"]}
    client = member.client or await member.connect(school.running)
    await client.pull_all()
    out = []
    for _, _, body in member.outbox.inbox():
        header = env.parse(body).header
        opened = env.open(body, devices[header.author_device], member.device.keyring())
        event = decode(opened.content, event_id=header.envelope_id, concern_id=header.concern_id,
                       author_device=header.author_device, device_time_ms=header.device_time_ms)
        out.append(event.body["record"]["observed"])
    return out


def _admin_invites(page: Page) -> str:
    page.click("#nav-admin")
    page.wait_for_selector("#screen-admin:not([hidden])")
    page.fill("#invite-name", NAME)
    page.fill("#invite-login", LOGIN)
    page.check("#invite-role-teacher")
    page.check("#invite-role-sen")
    page.locator("#invite-classes label", has_text="oak").click()
    page.fill("#invite-reason", REASON)
    page.click("#invite-submit")
    return page.wait_for_selector("#links-list li input.link").get_attribute("value") or ""


def _open_approvals(page: Page) -> None:
    page.click("#nav-approvals")
    page.wait_for_selector("#approvals-form[data-state=ready]")


def _confirmation_repeats_the_list(page: Page) -> None:
    """The confirmation repeats the list; Escape leaves it, and nothing is signed."""
    page.click("#approvals-select-all")
    page.click("#approvals-approve")
    page.wait_for_selector("#approvals-confirm[open]")
    assert page.inner_text("#approvals-confirm-title") == "Approve 4 changes:"
    assert page.locator("#approvals-confirm-list li").count() == 4
    shot(page, "phone-approvals-confirm")
    assert axe(page) == []
    page.keyboard.press("Escape")
    page.wait_for_selector("#approvals-confirm:not([open])", state="attached")


def _dsl_decides(page: Page) -> None:
    """Approve the account, the teacher role and the class; decline the SEN role; accept the held entry."""
    for box in page.locator("#approvals-groups input[type=checkbox]").all():
        box.check()
    page.locator(".approval-item[data-kind=role]:has-text('SEN team') input").uncheck()
    page.click("#approvals-approve")
    page.wait_for_selector("#approvals-confirm[open]")
    assert page.inner_text("#approvals-confirm-title") == "Approve 3 changes:"
    assert "SEN" not in page.inner_text("#approvals-confirm-list").replace(f"{NAME}, teacher, SEN team", "")
    page.click("#approvals-confirm-yes")
    page.wait_for_selector("#approvals-message[data-kind=approved]")
    assert page.inner_text("#approvals-message") == "Approved 3 changes."
    page.wait_for_selector("#approvals-form[data-state=ready]")
    assert page.inner_text("#approvals-count") == "1 change waiting."
    entry = page.locator("#approvals-log li.log-entry").first
    assert entry.get_attribute("data-verified") == "true"
    assert f"{NAME} to teach oak" in entry.inner_text() and "approved by Fictional DSL" in entry.inner_text()

    page.locator(".approval-item[data-kind=role] input").check()  # the SEN role: declined
    page.fill("#approvals-reason", "Not until January")
    page.click("#approvals-decline")
    page.wait_for_selector("#approvals-confirm[open]")
    assert page.inner_text("#approvals-confirm-title") == "Decline 1 change:"
    page.click("#approvals-confirm-yes")
    page.wait_for_selector("#approvals-message[data-kind=declined]")
    page.wait_for_selector("#approvals-form[data-state=ready]")
    assert not page.is_visible("#approvals-actions") and page.is_visible("#approvals-none")
    page.click("#held-list button:has-text('Accept')")
    page.wait_for_selector("#held-list:has-text('Accepted into the record')")
    shot(page, "tablet-approvals-decided")
    assert axe(page) == [] and layout_problems(page) == []


@pytest.mark.browser
def test_an_admin_asks_and_the_dsl_approves_and_declines_on_its_own_device(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    server.run(_prepare(school))
    problems: list[str] = []
    admin_context = new_context(browser, PHONE)
    try:
        admin = admin_context.new_page()
        watch(admin, problems)
        sign_in_reader(admin, server, school, ADMIN)  # an admin reads no concerns, but manages them: a second factor
        link = _admin_invites(admin)
        oak = server.run(_join(school, link))
        assert server.run(_reads(school, oak)) == []  # asked for, not approved: nothing to read yet
        admin.click("#nav-admin")  # the admin sees what waits for the safeguarding team
        admin.wait_for_selector("#waiting-summary[data-mine='4']")
        waiting = admin.inner_text("#waiting-list")
        assert f"{NAME} to teach oak" in waiting and REASON in waiting, waiting
        shot(admin, "phone-admin-waiting")
        assert axe(admin) == [] and layout_problems(admin) == []

        for size, viewport in (("phone", PHONE), ("tablet", TABLET)):
            context = new_context(browser, viewport)
            try:
                page = context.new_page()
                sign_in_reader(page, server, school, "dsl")  # its first answer is a 401 asking for the code
                watch(page, problems)
                page.wait_for_selector("html[data-keyholder-rounds]")
                _open_approvals(page)
                assert page.inner_text("#approvals-count") == "4 changes waiting."
                groups = page.inner_text("#approvals-groups")
                assert all(line in groups for line in LINES), groups
                assert groups.count(f"asked by {ADMIN}") == 4 and groups.count(REASON) == 4, groups
                assert len(re.findall(r"Waiting (?:less than a minute|\d+ minutes?)\.", groups)) == 4, groups
                assert page.locator("#approvals-groups legend", has_text=NAME).count() == 1
                assert page.locator("#approvals-groups legend", has_text="Class oak").count() == 1
                assert "Only" in page.inner_text("#keys-list")
                page.wait_for_selector(f"#held-list:has-text('{HELD}')")
                shot(page, f"{size}-approvals")
                assert axe(page) == []
                assert layout_problems(page) == []
                if size == "phone":
                    _confirmation_repeats_the_list(page)
                else:
                    _dsl_decides(page)
            finally:
                context.close()

        admin.click("#nav-admin")
        admin.wait_for_selector("#waiting-summary[data-mine='0']")
        shot(admin, "phone-admin-nothing-waits")
    finally:
        admin_context.close()

    write_as_dsl(server, school, [{
        "kind": "safeguarding_concern", "category": "neglect", "occurred_at": "2026-11-03T09:00", "observed": OAK,
        "pupils": [{"pupil": school.pupils["Ada Fernsby"].hex(), "role": "subject"}],
    }])
    assert OAK in server.run(_reads(school, oak))  # approved: the class's keys reached her from the browser
    device = oak.device
    (me,) = [a for a in device.directory["accounts"] if a["login"] == LOGIN]
    assert me["roles"] == ["teacher"]  # declined: the SEN role was taken back
    assert device.group_key(SEN)[:2] not in device.reader_keys
    assert {device.pupil_key(p)[:2] for p in school.school.classes["oak"]} <= set(device.reader_keys)
    reads = server.dsl_reads()
    assert any(e.body["record"]["observed"] == HELD for _, e in reads)  # accepted: now in the record
    assert [p for p in problems if "Failed to load resource" not in p] == []
