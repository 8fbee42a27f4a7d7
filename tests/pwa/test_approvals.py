"""The Approvals page and the keyholder duties in the browser: Debian's Chromium (through Playwright) against a
real Cairn server.

The DSL signs in on the browser. Its device, doing its duties, grants a newly assigned teacher the class's
pupil keys by itself. The Approvals page lists a SENCo waiting for the SEN key (with the wait), flags keys
with a single holder, and shows an entry held from a device revoked while offline, opened on the DSL's
device; approving seals the SEN key to the SENCo, accepting adds the held entry to the record. Checked at
phone and tablet sizes with axe-core and the 44-pixel rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from sync.client import Revoked
from sync.device import SEN
from sync.protocol import b64d, b64e
from sync.writer import ConcernWriter
from tests.pwa._live import LiveSchool, LiveServer
from tests.pwa._pages import PHONE, TABLET, axe, layout_problems, new_context, shot, watch
from tests.pwa._review import review_school, sign_in_reader

if TYPE_CHECKING:
    from playwright.sync_api import Browser

HELD = "MARKER-HELD written on a tablet after it was revoked"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    yield from review_school(tmp_path_factory.mktemp("pwa-approvals"))


async def _prepare(school: LiveSchool) -> dict:
    """A SENCo waiting for approval, a teacher newly assigned to oak, and an entry held from a revoked device."""
    s = school.school
    dsl = s.dsl.device
    senco = await s.invite("senco-1", ["teacher", "sen"])
    newcomer = await s.invite("teacher-new", ["teacher"])
    oak = next(b64d(c["id"], "id") for c in dsl.directory["classes"] if c["label"] == "oak")
    await dsl.call("POST", "/api/v1/admin/class-teachers", class_id=b64e(oak), user_id=b64e(newcomer.device.user_id))
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
    return {"senco": senco, "newcomer": newcomer}


@pytest.mark.browser
def test_the_approvals_page_and_the_keyholder_duties(browser: Browser, live: tuple[LiveServer, LiveSchool]) -> None:
    server, school = live
    made = server.run(_prepare(school))
    problems: list[str] = []
    for size, viewport in (("phone", PHONE), ("tablet", TABLET)):
        context = new_context(browser, viewport)
        try:
            page = context.new_page()
            sign_in_reader(page, server, school, "dsl")  # its first answer is a 401 asking for the code
            watch(page, problems)
            page.wait_for_selector("html[data-keyholder-rounds]")
            page.click("#nav-approvals")
            page.wait_for_selector("#approvals-list li.approval")
            assert "senco-1" in page.inner_text("#approvals-list") and "Waiting" in page.inner_text("#approvals-list")
            assert "Only" in page.inner_text("#keys-list")
            page.wait_for_selector(f"#held-list:has-text('{HELD}')")
            shot(page, f"{size}-approvals")
            assert axe(page) == []
            assert layout_problems(page) == []
            if size == "tablet":
                page.click("#approvals-list button:has-text('Approve')")
                page.wait_for_selector("#approvals-message:not(:empty)")
                assert "can now read" in page.inner_text("#approvals-message"), page.inner_text("#approvals-message")
                page.click("#held-list button:has-text('Accept')")
                page.wait_for_selector("#held-list:has-text('Accepted into the record')")
                shot(page, "tablet-approvals-decided")
        finally:
            context.close()

    senco, newcomer = made["senco"].device, made["newcomer"].device
    server.run(senco.refresh())
    server.run(newcomer.refresh())
    assert senco.group_key(SEN)[:2] in senco.reader_keys  # sealed by the browser DSL's device on approval
    oak = school.school.classes["oak"]
    assert {newcomer.pupil_key(p)[:2] for p in oak} <= set(newcomer.reader_keys)  # granted by its duties
    reads = server.dsl_reads()
    assert any(e.body["record"]["observed"] == HELD for _, e in reads)  # accepted: now in the record
    assert problems == []
