"""A hostile server steers keys through the DSL's browser: it lists an office admin as owed the safeguarding
group's key and the signing key, and stores whatever grant it is sent.

The server is played by Playwright's ``page.route``: it rewrites ``GET /api/v1/keyholder/duties`` and answers
``POST /api/v1/grants`` itself, as a server that keeps the grants for the admin would. The DSL's browser runs
its keyholder round at sign-in; it checks every owed grant against the signed directory
(pwa/js/sync/keyholder.js, ``mayHold``), where the admin holds no safeguarding role, and seals neither key to
it. tests/pwa/test_hostile_directory.py plays a hostile directory against a contributor's browser; this is the
keyholder's side, which tests/adversary plays against the Python client. Without the ``mayHold`` check of
``runDuties`` this test fails (tests/adversary/README.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from crypto import read_grant
from sync.device import SAFEGUARDING, SIGNING_PURPOSE
from sync.protocol import b64d, b64e
from tests.pwa._live import LiveSchool, LiveServer
from tests.pwa._pages import PHONE, new_context, watch
from tests.pwa._review import review_school, sign_in_reader

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

DUTIES = re.compile(r".*/api/v1/keyholder/duties$")
GRANTS = re.compile(r".*/api/v1/grants$")
ADMIN = "office-steered"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveSchool]]:
    yield from review_school(tmp_path_factory.mktemp("pwa-hostile-duties"))


@pytest.mark.browser
def test_duties_a_hostile_server_invents_are_never_sealed_by_the_dsl_s_browser(
    browser: Browser, live: tuple[LiveServer, LiveSchool]
) -> None:
    server, school = live
    office = server.run(school.school.invite(ADMIN, ["admin"])).device
    dsl = school.school.dsl.device
    wanted = {dsl.group_key(SAFEGUARDING)[:2], dsl.group_key(SIGNING_PURPOSE)[:2]}
    served: list[int] = []
    sealed: list[bytes] = []

    def steer(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["grants"] = [*body["grants"], *({"reader_key_id": b64e(k), "version": v, "member_id": b64e(office.user_id)}
                                             for k, v in sorted(wanted))]
        served.append(1)
        route.fulfill(response=response, body=json.dumps(body), headers={"content-type": "application/json"})

    def keep(route: Route) -> None:  # the hostile server stores every grant it is sent, for the admin
        if route.request.method != "POST":
            route.continue_()
            return
        grants = route.request.post_data_json["grants"]
        sealed.extend(b64d(g, "grant") for g in grants)
        route.fulfill(status=201, body=json.dumps({"stored": len(grants)}),
                      headers={"content-type": "application/json"})

    problems: list[str] = []
    context = new_context(browser, PHONE)
    try:
        page = context.new_page()
        watch(page, problems)
        page.route(DUTIES, steer)
        page.route(GRANTS, keep)
        sign_in_reader(page, server, school, "dsl")  # a keyholder: its first round of duties runs at once
        page.wait_for_selector("html[data-keyholder-rounds]")
    finally:
        context.close()

    assert served, "the hostile duties were served"
    steered = [(i.reader_key_id, i.reader_version) for i in (read_grant(g)[0] for g in sealed)
               if i.member_id == office.user_id]
    assert not wanted & set(steered), "the DSL's browser sealed the safeguarding or signing key to the admin"
    assert [p for p in problems if "Failed to load resource" not in p] == []
