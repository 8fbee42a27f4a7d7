"""Helpers of the review-side browser tests: a live school whose teachers can read the roster's names, signing
in accounts that need a one-time code (as often as a test needs), and concerns written by the DSL's Python
device (fictional text) so a chronology has several kinds of entry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyotp
from sqlalchemy import update

from server.models import Account
from sync.device import ROSTER_STAFF
from sync.writer import ConcernWriter
from tests.pwa._live import PASSWORD_FOR_TESTS, LiveSchool, LiveServer
from tests.pwa._pages import open_app

if TYPE_CHECKING:
    from playwright.sync_api import Page


def review_school(folder: Path) -> Iterator[tuple[LiveServer, LiveSchool]]:
    """The capture tests' school, with the staff roster key granted to both class teachers too."""
    server = LiveServer(folder)
    with server as school:
        server.run(_grant_roster_to_teachers(school))
        yield server, school


async def _grant_roster_to_teachers(school: LiveSchool) -> None:
    dsl = school.school.dsl.device
    key, version, _ = dsl.group_key(ROSTER_STAFF)
    teachers = [school.school.members[f"teacher-{c}"].device for c in ("oak", "ash")]
    await dsl.grant([(key, version, t.user_id, t.identity.box.public) for t in teachers])
    for t in teachers:
        await t.refresh()


def totp_secret(school: LiveSchool, login: str) -> str:
    member = school.school.dsl if login == "dsl" else school.school.members[login]
    assert member.totp
    return member.totp


def fresh_code(server: LiveServer, school: LiveSchool, login: str) -> str:
    """A one-time code the server will take: a code is accepted once per 30-second step, so the account's
    last used step is reset in storage first (tests reach storage directly)."""

    async def reset() -> None:
        async with school.running.services.engine.begin() as conn:
            await conn.execute(
                update(Account)
                .where(Account.school_id == school.school.school_id, Account.login == login)
                .values(totp_last_step=0)
            )

    server.run(reset())
    return pyotp.TOTP(totp_secret(school, login)).at(time.time())


def sign_in_reader(page: Page, server: LiveServer, school: LiveSchool, login: str) -> None:
    """Sign in an account that reads concerns (password, then a one-time code) on a fresh context."""
    open_app(page, school)
    if page.is_visible("#add-person"):
        page.click("#add-person")
    page.fill("#sign-in-login", login)
    page.fill("#sign-in-password", PASSWORD_FOR_TESTS)
    page.click("#sign-in-submit")
    page.wait_for_selector("#sign-in-totp-field:not([hidden])")
    page.fill("#sign-in-totp", fresh_code(server, school, login))
    page.click("#sign-in-submit")
    page.wait_for_selector("#screen-capture:not([hidden])")


def log_concern(page: Page, pupil: str, search: str, observed: str, *, urgent: bool = False) -> None:
    """Log a concern through the capture form (the contributor's one screen)."""
    page.fill("#pupil-search", pupil)
    page.click("#pupil-results button")
    page.fill("#category-search", search)
    page.click("#category-results button")
    page.fill("#observed", observed)
    if urgent:
        page.check("#urgent")
    page.click("#capture-save")
    page.wait_for_selector("#capture-message.ok")
    page.wait_for_selector("#pending-count[data-count='0']")


def write_as_dsl(server: LiveServer, school: LiveSchool, records: list[dict[str, Any]]) -> list[str]:
    """Write concerns from the DSL's Python device and send them; their ids, hex."""

    async def write() -> list[str]:
        member = school.school.dsl
        writer = ConcernWriter(member.device, member.outbox)
        ids = [writer.create(record).concern_id.hex() for record in records]
        client = member.client or await member.connect(school.running)
        await client.flush()
        return ids

    return server.run(write())


def pupil_hex(school: LiveSchool, first_name: str) -> str:
    (pid,) = [p for name, p in school.pupils.items() if name.split()[0] == first_name]
    return pid.hex()
