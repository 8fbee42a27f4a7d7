"""Authorisation as a generated matrix: every role against every websocket message and every HTTP route.

The rows come from the protocol's own lists (``sync.protocol.CLIENT_MESSAGES``, ``server.api.ROUTES``),
so a new message or route without an expectation here fails the build.
"""

from __future__ import annotations

import httpx
import pytest

from crypto import envelope as env
from server.api import ROUTES
from server.models import ROLES
from sync.keyholder import run_duties
from sync.protocol import CLIENT_MESSAGES, b64e

# What each role may read of the three concerns the DSL writes: about an oak pupil (open), restricted,
# and a SEN concern about an ash pupil.
READS = {
    "contributor": set(),
    "admin": set(),
    "teacher": {"oak open"},
    "sen": {"sen note"},
    "safeguarding": {"oak open", "restricted", "sen note"},
}
# Expected answer type for each client message, for every role (pull is checked against READS).
MESSAGES = {"auth": "ready", "deliver": "ready", "put": "ack", "pull": "page", "ping": "pong"}


def test_every_client_message_and_role_has_an_expectation() -> None:
    assert set(MESSAGES) == set(CLIENT_MESSAGES)
    assert set(READS) == set(ROLES)


async def _members(school):  # type: ignore[no-untyped-def]
    members = {"safeguarding": school.dsl, "teacher": school.members["teacher-oak"]}
    for role in ("contributor", "admin", "sen"):
        members[role] = await school.invite(f"{role}-1", [role])
    dsl = school.dsl.device
    await run_duties(dsl)  # the SEN member, approved on joining, is owed the SEN key
    for member in members.values():
        await member.device.refresh()
    return members


@pytest.mark.asyncio
async def test_role_by_message_matrix(school) -> None:
    members = await _members(school)
    dsl = school.dsl.device
    oak, ash = school.classes["oak"][0], school.classes["ash"][0]
    dsl.write(school.dsl.outbox, b"oak open", pupil_ids=[oak])
    dsl.write(school.dsl.outbox, b"restricted", pupil_ids=[oak], restricted=True)
    dsl.write(
        school.dsl.outbox,
        b"sen note",
        pupil_ids=[ash],
        recipients=[dsl.recipients_for([])[0], dsl.recipients_for([], groups=("group:sen",))[1]],
    )
    await (await school.dsl.connect(school.running)).flush()
    await school.dsl.client.close()
    for role, member in members.items():
        client = await member.connect(school.running)  # auth -> ready, or connect() raises
        member.device.write(member.outbox, f"written by {role}".encode(), pupil_ids=[oak])
        report = await client.flush()  # put -> ack
        assert report.sent == 1 and not report.refused, role
        assert (await client._request({"type": "ping"}))["type"] == MESSAGES["ping"]
        page = await client._request({"type": "pull", "cursor": None, "limit": 500})
        assert page["type"] == MESSAGES["pull"]
        readable = set()
        for item in page["items"]:
            from sync.protocol import b64d

            raw = b64d(item["envelope"], "envelope")
            author = env.parse(raw).header.author_device
            author_pk = next(
                b64d(d["public_key"], "pk") for d in member.device.directory["devices"] if b64d(d["id"], "id") == author
            )
            opened = env.open(raw, author_pk, member.device.keyring())  # the server sent only what opens
            if opened.content in (b"oak open", b"restricted", b"sen note"):
                readable.add(opened.content.decode())
        assert readable == READS[role], role
        await client.close()


# Who each persona of the route matrix is, as a table written here (not computed by the code under test):
# the effective roles the server must decide by (PROTOCOL 13.6), the pseudo-role "keyholder" included.
PERSONAS = {
    "dsl": {"safeguarding", "admin", "keyholder"},
    "teacher": {"teacher"},
    "contributor": {"contributor"},
    "admin": {"admin"},
    "sen": {"sen"},
    "self_made_safeguarding": {"admin"},  # an admin who gave itself the safeguarding role: a request only
    "unapproved_teacher": set(),  # invited and joined, not yet approved by a keyholder
    "deputy_without_key": {"safeguarding"},  # approved, but holding no safeguarding key yet: not a keyholder
}


async def _personas(school):  # type: ignore[no-untyped-def]
    members = await _members(school)
    dsl = school.dsl.device
    admin = members["admin"]
    await admin.device.call("POST", "/api/v1/admin/roles", user_id=b64e(admin.device.user_id), roles=["safeguarding"])
    self_made = admin  # the same account, after asking for itself
    pending = await school.invite("teacher-pending", ["teacher"], approve=False)
    deputy = await school.invite("deputy", ["safeguarding"])  # approved; no duty has sealed it a key yet
    await dsl.refresh()
    people = {
        "dsl": school.dsl, "teacher": members["teacher"], "contributor": members["contributor"],
        "sen": members["sen"], "self_made_safeguarding": self_made, "unapproved_teacher": pending,
        "deputy_without_key": deputy,
    }
    return people


@pytest.mark.asyncio
async def test_role_by_route_matrix(school) -> None:
    people = await _personas(school)
    assert set(people) | {"admin"} == set(PERSONAS)
    async with httpx.AsyncClient(base_url=school.running.base, timeout=30) as http:
        signing_out_last = sorted(ROUTES, key=lambda route: route[0] == "/api/v1/sign-out")
        for path, method, _, allow in signing_out_last:
            if allow is None:
                continue  # public: sign-in, registration, certification of a new device
            anonymous = await http.request(method, path, json={} if method == "POST" else None)
            assert anonymous.status_code == 401, (path, anonymous.text)
            for persona, member in people.items():
                headers = {"authorization": f"Bearer {member.device.token}"}
                response = await http.request(method, path, json={} if method == "POST" else None, headers=headers)
                allowed = not allow or bool(PERSONAS[persona] & set(allow))
                if allowed:
                    assert response.status_code not in (401, 403), (path, persona, response.text)
                else:
                    assert response.status_code == 403, (path, persona, response.text)
                    assert response.json()["error"]["code"] == "forbidden"
