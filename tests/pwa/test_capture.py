"""The staff PWA's capture side, end to end: Debian's Chromium (through Playwright) against a real Cairn server.

A contributor signs in, the network goes, three concerns are logged (one with body-map marks), the app is
reloaded with no network (the service worker serves it) and still shows three waiting; the network comes back,
they are sent, and the DSL's Python device decrypts all three with the right content. Then the contributor's
IndexedDB is read raw: it holds no envelope, no draft and no marker text, and nothing in it opens as an
envelope. Screenshots at phone and tablet sizes go to test-artifacts/pwa/ (git-ignored).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from crypto import KdfParams, derive_account, open_local, password_wrap_key, unwrap_data_key
from crypto import envelope as env
from tests.pwa._live import PASSWORD_FOR_TESTS, LiveSchool, LiveServer
from tests.pwa._pages import (
    PHONE,
    ROOT,
    TABLET,
    blobs,
    dump_indexeddb,
    new_context,
    offline_ready,
    pending,
    shot,
    sign_in,
    unlock,
    watch,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# Marker strings written through the browser: they must reach the DSL and appear nowhere on the device.
CONCERNS = [
    {
        "pupil": "Ada", "category": "neglect", "search": "negl",
        "observed": "MARKER-ONE arrived without a coat in the rain and said she was hungry.",
        "child_words": "MARKER-ONE-WORDS there was nothing for breakfast",
        "location": "Playground", "present": "Lunchtime supervisor\nClass teacher", "marks": [],
    },
    {
        "pupil": "Bilal", "category": "physical_abuse", "search": "physical ab",
        "observed": "MARKER-TWO a round bruise on the upper arm, seen when he rolled up his sleeve.",
        "child_words": "MARKER-TWO-WORDS I fell over", "location": "Dining hall", "present": "",
        "marks": [("front", 0.22, 0.32, "bruise", "20", "purple", "MARKER-TWO-MARK upper arm"),
                  ("back", 0.5, 0.45, "graze", "", "red", "")],
    },
    {
        "pupil": "Dev", "category": "bullying", "search": "bully",
        "observed": "MARKER-THREE was left out of a game by older children for the third day.",
        "child_words": "", "location": "Field", "present": "", "marks": [], "urgent": True,
    },
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    server = LiveServer(tmp_path_factory.mktemp("pwa-live"))
    with server as school:
        yield server, school


def _log(page: Page, concern: dict) -> None:
    page.fill("#pupil-search", concern["pupil"])
    page.click("#pupil-results button")
    page.fill("#category-search", concern["search"])
    page.click("#category-results button")
    page.fill("#location", concern["location"])
    page.fill("#observed", concern["observed"])
    if concern["child_words"]:
        page.fill("#child-words", concern["child_words"])
    if concern["present"]:
        page.fill("#present", concern["present"])
    for n, (side, fx, fy, kind, size, colour, note) in enumerate(concern["marks"]):
        page.locator(f"#outline-{side}").scroll_into_view_if_needed()
        box = page.locator(f"#outline-{side} svg").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
        page.wait_for_selector(f"#mark-{n}-type")
        page.select_option(f"#mark-{n}-type", kind)
        if size:
            page.fill(f"#mark-{n}-size", size)
        page.fill(f"#mark-{n}-colour", colour)
        if note:
            page.fill(f"#mark-{n}-note", note)
    if concern.get("urgent"):
        page.check("#urgent")
    page.fill("#immediate-action", "Told the class teacher.")
    page.click("#capture-save")
    page.wait_for_selector("#capture-message.ok")
    page.wait_for_selector("#draft-state:empty", state="attached")


@pytest.mark.browser
def test_offline_capture_survives_a_reload_syncs_and_only_the_dsl_can_read_it(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    problems: list[str] = []
    context = new_context(browser, PHONE)
    try:
        page = context.new_page()
        watch(page, problems)
        sign_in(page, school)
        offline_ready(page)
        shot(page, "phone-capture-empty")

        context.set_offline(True)
        page.wait_for_selector("#net-state[data-state=offline]")
        for n, concern in enumerate(CONCERNS, start=1):
            if concern["marks"]:
                page.fill("#pupil-search", concern["pupil"])
                page.click("#pupil-results button")
                shot(page, "phone-capture-pupil-chosen")
                page.click("#pupil-chosen button")  # removed again; _log picks it
            _log(page, concern)
            pending(page, n)
        shot(page, "phone-capture-saved-offline")

        page.reload()  # no network: the service worker serves the shell, modules and libsodium
        page.wait_for_selector("html[data-ready=true]")
        pending(page, 3)
        assert page.inner_text("#net-state") == "Offline"
        shot(page, "phone-people-offline-three-waiting")
        unlock(page)  # with no network: Argon2id over the stored parameters opens the sealed keys
        pending(page, 3)

        context.set_offline(False)
        pending(page, 0)
        page.wait_for_selector("#last-sync:has-text('last sent')")
        shot(page, "phone-synced")

        dump = dump_indexeddb(page)
    finally:
        context.close()

    reads = server.dsl_reads()
    mine = [(o, e) for o, e in reads if e.author == school.contributor.device.user_id.hex()]
    assert len(mine) == 3
    by_marker = {e.body["record"]["observed"].split()[0]: (o, e) for o, e in mine}
    assert set(by_marker) == {"MARKER-ONE", "MARKER-TWO", "MARKER-THREE"}
    pupils = {name.split()[0]: pid.hex() for name, pid in school.pupils.items()}
    for concern in CONCERNS:
        opened, event = by_marker[concern["observed"].split()[0]]
        record = event.body["record"]
        assert event.type == "created" and not event.parents
        assert record["observed"] == concern["observed"]
        assert record["category"] == concern["category"]
        assert record["pupils"] == [{"pupil": pupils[concern["pupil"]], "role": "subject"}]
        assert record["location"] == concern["location"]
        assert record.get("child_words") == (concern["child_words"] or None)
        assert record.get("present") == (concern["present"].split("\n") if concern["present"] else None)
        assert record.get("urgent") == concern.get("urgent")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", record["occurred_at"])
        restricted = concern["category"] == "physical_abuse"
        assert len(opened.header.recipients) == (1 if restricted else 2)  # safeguarding (+ the pupil's key)
    marks = by_marker["MARKER-TWO"][1].body["record"]["body_map"]
    assert [(m["side"], m["type"], m.get("size_mm"), m["colour"], m.get("note")) for m in marks] == [
        ("front", "bruise", 20, "purple", "MARKER-TWO-MARK upper arm"), ("back", "graze", None, "red", None)]
    assert abs(marks[0]["x"] - 220) <= 15 and abs(marks[0]["y"] - 320) <= 15
    assert abs(marks[1]["x"] - 500) <= 15 and abs(marks[1]["y"] - 450) <= 15

    # Write-only: nothing on the contributor's device opens, or reads as, any of it.
    assert dump["outbox"] == [] and dump["drafts"] == []
    assert "MARKER" not in json.dumps(dump)
    keyring = school.school.dsl.device.keyring()
    for blob in blobs(dump):
        with pytest.raises(Exception):  # noqa: B017 (any failure: it is not an envelope for anyone)
            env.open(blob, school.contributor.device.device_key.public, keyring)
    (account,) = dump["accounts"]
    kek = derive_account(PASSWORD_FOR_TESTS, KdfParams.decode(bytes.fromhex(account["kdfParams"]["hex"]))).kek
    school_id, user_id = bytes.fromhex(account["schoolId"]["hex"]), bytes.fromhex(account["userId"]["hex"])
    device_id = bytes.fromhex(account["deviceId"]["hex"])
    key = unwrap_data_key(bytes.fromhex(account["wraps"]["password"]["hex"]), password_wrap_key(kek), 1, school_id,
                          user_id, device_id)  # the data key, which only the password's wrap gives (PROTOCOL 2.8)
    ids = {"identity": user_id, "directory": user_id, "device-key": bytes.fromhex(account["deviceId"]["hex"]),
           "session": bytes.fromhex(account["deviceId"]["hex"])}
    for kind, sealed in account["sealed"].items():
        plain = open_local(key, school_id, user_id, kind, ids[kind], bytes.fromhex(sealed["hex"]))
        assert b"MARKER" not in plain  # even with the password, the device holds only keys, roster and directory
    assert problems == []


def test_the_server_sends_the_shell_with_a_strict_policy_and_the_pieces_an_installable_app_needs(
    live: tuple[LiveServer, LiveSchool]
) -> None:
    _, school = live

    def get(path: str) -> tuple[int, dict, bytes]:
        with urllib.request.urlopen(school.base + path) as response:  # noqa: S310 (loopback)
            return response.status, dict(response.headers), response.read()

    status, headers, body = get("/")
    csp = headers["content-security-policy"]
    assert status == 200 and "script-src 'self' 'wasm-unsafe-eval' 'sha256-" in csp
    assert "unsafe-inline" not in csp and "'unsafe-eval'" not in csp and "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    assert b'<script type="importmap">' in body and b"<script>" not in body
    manifest = json.loads(get("/manifest.webmanifest")[2])
    assert manifest["display"] == "standalone" and {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    worker = get("/sw.js")[2].decode()
    assert "__CAIRN_BUILD__" not in worker and '"/vendor/libsodium-sumo.mjs"' in worker
    assert get("/categories.json")[2] == (ROOT / "sync" / "data" / "categories.json").read_bytes()
    for missing in ("/vendor/../package.json", "/vendor/typescript.js", "/js/../../pyproject.toml"):
        with pytest.raises(urllib.error.HTTPError):
            get(missing)


@pytest.mark.browser
def test_an_entry_logged_offline_on_a_shared_tablet_reaches_the_dsl_with_its_author_locked_out(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    """Sending never waits for the author (PROTOCOL 3.2): a lunchtime supervisor logs a disclosure with no
    network and hides the screen; when the tablet is online again, nobody unlocked, the entry leaves over the
    device's delivery connection and the DSL reads it. Before delivery keys it waited for the next unlock."""
    server, school = live
    problems: list[str] = []
    context = new_context(browser, TABLET)
    try:
        page = context.new_page()
        watch(page, problems)
        sign_in(page, school)
        offline_ready(page)
        page.wait_for_selector("html[data-delivery=ready]", state="attached")  # the delivery key is registered

        context.set_offline(True)
        page.wait_for_selector("#net-state[data-state=offline]")
        _log(page, {"pupil": "Ada", "category": "neglect", "search": "negl", "location": "Playground",
                    "observed": "MARKER-LOCKED said there is never anyone at home after school.",
                    "child_words": "", "present": "", "marks": []})
        pending(page, 1)
        page.click("#privacy-on")  # "Hide screen": the author is locked out
        page.wait_for_selector("#privacy-screen[data-state=locked]", state="attached")
        page.click("#privacy-off")
        page.wait_for_selector("#pending-locked:has-text('Sent when online, without unlocking')")
        shot(page, "tablet-locked-waiting-offline")

        context.set_offline(False)
        pending(page, 0)  # nobody unlocked: the tablet's delivery connection sent it
        assert page.is_visible("#unlock-password") or page.is_visible("#people-list")
        shot(page, "tablet-locked-sent")
    finally:
        context.close()

    observed = [e.body["record"]["observed"] for _, e in server.dsl_reads() if e.type == "created"]
    assert "MARKER-LOCKED said there is never anyone at home after school." in observed
    assert problems == []
