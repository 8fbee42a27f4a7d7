"""A hostile server that holds the school signing key cannot widen who reads in the browser app.

The server (played here by Playwright's ``page.route``, which rewrites ``GET /api/v1/directory``) serves the
next directory version signed with the real school signing key, taken from the DSL's Python device, but adding
what no keyholder approved: a safeguarding role for the contributor, or a new version of the safeguarding
group's key whose private half the attacker holds. The app refuses it (it says the directory did not verify)
and keeps the version it held, so a concern written afterwards is sealed only to the keys that version lists:
the outbox envelope in IndexedDB names the real safeguarding key, version 1, and the pupil's key, never the
attacker's. The defence is the transition check of pwa/js/crypto/directory.js (``checkTransition``); without
it this test fails.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from crypto import BoxKeyPair
from crypto import envelope as env
from crypto.directory import DirKey, sign_directory
from sync.device import SAFEGUARDING
from sync.directory import signing_key_for
from sync.protocol import b64e
from tests.pwa._live import CONTRIBUTOR, PASSWORD_FOR_TESTS, LiveSchool, LiveServer
from tests.pwa._pages import PHONE, dump_indexeddb, new_context, pending, shot, sign_in, watch

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

DIRECTORY = re.compile(r".*/api/v1/directory\?since=\d+$")
MARKER = "MARKER-HOSTILE written after the server served an unapproved directory"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    server = LiveServer(tmp_path_factory.mktemp("pwa-hostile"))
    with server as school:
        yield server, school


def hostile_version(school: LiveSchool, widening: str, attacker: BoxKeyPair) -> bytes:
    """The version after the newest, signed with the real school signing key, adding ``widening`` with no
    approval: ``role`` (the contributor joins the safeguarding team) or ``key`` (a second version of the
    safeguarding key, the attacker's)."""
    dsl = school.school.dsl.device
    held = dsl.signed_directory
    assert held is not None
    key = signing_key_for(dsl.reader_keys, dsl.directory["reader_keys"], dsl.pinned_signing_pk)
    assert key is not None
    content = held.content
    if widening == "role":
        contributor = school.contributor.device.user_id
        content = replace(content, accounts=tuple(
            replace(a, roles=(*a.roles, "safeguarding")) if a.id == contributor else a for a in content.accounts
        ))
    else:
        (sg,) = [k for k in content.reader_keys if k.purpose == SAFEGUARDING]
        content = replace(content, reader_keys=(
            *(replace(k, current=False) if k.id == sg.id else k for k in content.reader_keys),
            DirKey(sg.id, sg.version + 1, SAFEGUARDING, attacker.public, True),
        ))
    return sign_directory(
        key, school_id=held.school_id, version=held.version + 1, prev_hash=held.hash,
        created_ms=max(int(time.time() * 1000), held.created_ms), next_signing_pk=key.public, content=content,
    )


def serve(page: Page, signed: bytes) -> list[int]:
    """Rewrite every directory answer to serve ``signed`` as the newest version; returns a list that counts
    the answers rewritten."""
    served: list[int] = []

    def handle(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body.update(signed=b64e(signed), links=[], more=False, version=body["version"] + 1)
        served.append(1)
        headers = {**response.headers, "content-type": "application/json"}
        route.fulfill(response=response, body=json.dumps(body), headers=headers)

    page.route(DIRECTORY, handle)
    return served


@pytest.mark.browser
@pytest.mark.parametrize("widening", ["role", "key"])
def test_a_directory_widened_without_approval_is_refused_and_nothing_is_sealed_to_it(
    browser: Browser, live: tuple[LiveServer, LiveSchool], widening: str
) -> None:
    server, school = live
    attacker = BoxKeyPair.generate()
    problems: list[str] = []
    context = new_context(browser, PHONE)
    try:
        page = context.new_page()
        watch(page, problems)
        sign_in(page, school, CONTRIBUTOR)  # holds the newest signed version, pinned at this first sign-in
        page.wait_for_selector("#pupil-search")
        served = serve(page, hostile_version(school, widening, attacker))

        page.click("#lock-now")  # unlocking again refreshes the directory from the (now hostile) server
        page.fill("#unlock-password", PASSWORD_FOR_TESTS)
        page.click("#unlock-submit")
        page.wait_for_selector("#screen-capture:not([hidden])")
        refused = page.wait_for_selector("#pending-refused:has-text('did not verify')")
        assert "unapproved" in (refused.inner_text() if refused else "")
        assert served, "the hostile answer was served"
        shot(page, f"phone-hostile-directory-{widening}")

        context.set_offline(True)  # the concern stays in the outbox, to be read there
        page.wait_for_selector("#net-state[data-state=offline]")
        page.fill("#pupil-search", "Ada")
        page.click("#pupil-results button")
        page.fill("#category-search", "negl")
        page.click("#category-results button")
        page.fill("#observed", MARKER)
        page.click("#capture-save")
        page.wait_for_selector("#capture-message.ok")
        pending(page, 1)
        outbox = dump_indexeddb(page)["outbox"]
    finally:
        context.close()

    (item,) = outbox
    header = env.parse(bytes.fromhex(item["body"]["hex"])).header
    dsl = school.school.dsl.device
    safeguarding = dsl.group_key(SAFEGUARDING)
    ada = dsl.pupil_key(school.pupils["Ada Fernsby"])
    sealed_to = {(r.id, r.version) for r in header.recipients}
    assert sealed_to == {safeguarding[:2], ada[:2]}, "sealed only to the keys the held version lists"
    assert safeguarding[1] == 1 and (safeguarding[0], 2) not in sealed_to
    assert [p for p in problems if "Failed to load resource" not in p] == []
