"""Revoke → the device wipes, end to end: Debian's Chromium (through Playwright) against a real Cairn server.

A contributor signs in on the browser and logs a concern with no network. Meanwhile an admin records that
the contributor left the school: every device of theirs is revoked at once. When the network returns, the
browser connects, is refused with ``device_revoked``, hands over the entry it never sent (held for a DSL to
review, not added to the record), and wipes: its IndexedDB holds nothing of that account afterwards. The
DSL's Python device finds the held entry and reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from crypto import envelope as env
from sync.events import decode
from sync.protocol import b64d, b64e
from tests.pwa._live import LiveSchool, LiveServer
from tests.pwa._pages import PHONE, new_context, offline_ready, pending, shot, sign_in, watch

if TYPE_CHECKING:
    from playwright.sync_api import Browser

MARKER = "MARKER-REVOKED written after the device was revoked"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    server = LiveServer(tmp_path_factory.mktemp("pwa-revoke"))
    with server as school:
        yield server, school


@pytest.mark.browser
def test_a_device_revoked_while_offline_hands_over_its_entry_and_wipes_on_reconnecting(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    dsl = school.school.dsl.device
    problems: list[str] = []
    context = new_context(browser, PHONE)
    try:
        page = context.new_page()
        watch(page, problems)
        sign_in(page, school)
        offline_ready(page)
        context.set_offline(True)
        page.wait_for_selector("#net-state[data-state=offline]")
        page.fill("#pupil-search", "Ada")
        page.click("#pupil-results button")
        page.fill("#category-search", "negl")
        page.click("#category-results button")
        page.fill("#location", "Playground")
        page.fill("#observed", MARKER)
        page.fill("#immediate-action", "Told the class teacher.")
        page.click("#capture-save")
        page.wait_for_selector("#capture-message.ok")
        pending(page, 1)
        before = _account_ids(page)
        assert before, "the browser keeps the signed-in account"

        answer = server.run(
            dsl.call("POST", "/api/v1/admin/leave", user_id=b64e(school.contributor.device.user_id), scope="school")
        )
        assert answer["left"] == "school"

        context.set_offline(False)  # the app reconnects on `online`: refused, hands over, wipes
        page.wait_for_selector("#pending-refused:has-text('wiped')")
        page.wait_for_selector("#screen-sign-in:not([hidden])")  # nobody is left on this device
        shot(page, "phone-revoked-wiped")
        dump = page.evaluate(_DUMP)
    finally:
        context.close()

    kept = {name: rows for name, rows in dump.items() if name != "settings" and rows}
    assert kept == {}, kept  # nothing of the account: no keys, roster, chain, cursor, outbox, drafts or cache
    text = json.dumps(dump)
    assert MARKER not in text and not any(i in text for i in before)

    held = server.run(dsl.call("GET", "/api/v1/held"))["held"]
    (entry,) = [h for h in held if h["login"] == "lunch-1"]
    assert entry["decision"] is None
    server.run(dsl.refresh())
    author = next(b64d(d["public_key"], "pk") for d in dsl.directory["devices"] if d["id"] == entry["author_device"])
    body = b64d(entry["envelope"], "envelope")
    opened = env.open(body, author, dsl.keyring())
    h = opened.header
    event = decode(
        opened.content,
        event_id=h.envelope_id,
        concern_id=h.concern_id,
        author_device=h.author_device,
        device_time_ms=h.device_time_ms,
    )
    assert event.body["record"]["observed"] == MARKER
    # a revoked device's HTTP requests are refused (401), which Chromium logs; nothing else may go wrong
    assert [p for p in problems if "status of 401 (Unauthorized)" not in p] == []


def _account_ids(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The hex ids (account and device) of the accounts the browser keeps."""
    return page.evaluate(
        """async () => {
          const r = (q) => new Promise((ok, no) => {
            q.onsuccess = () => ok(q.result);
            q.onerror = () => no(q.error);
          });
          const db = await r(indexedDB.open('cairn'));
          const rows = await r(db.transaction('accounts').objectStore('accounts').getAll());
          db.close();
          const hex = (v) => v instanceof Uint8Array
            ? Array.from(v, b => b.toString(16).padStart(2, '0')).join('') : String(v);
          return rows.flatMap(a => [hex(a.id), hex(a.deviceId)]);
        }"""
    )


_DUMP = """async () => {
  const r = (q) => new Promise((ok, no) => { q.onsuccess = () => ok(q.result); q.onerror = () => no(q.error); });
  const hex = (v) => v instanceof Uint8Array ? Array.from(v, b => b.toString(16).padStart(2, '0')).join('')
    : Array.isArray(v) ? v.map(hex) : v && typeof v === 'object'
      ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hex(x)])) : v;
  const db = await r(indexedDB.open('cairn'));
  const out = {};
  for (const name of db.objectStoreNames) out[name] = hex(await r(db.transaction(name).objectStore(name).getAll()));
  db.close();
  return out;
}"""
