"""Grants over a school's life, at the protocol level (docs/PROTOCOL.md 13 and 14): a teacher assigned to a
class gets its pupil keys only once a keyholder approved the assignment, group roles wait for approval with
who asked and why, a keyholder may decline, and single holders are flagged."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from crypto import envelope as env
from server.models import AccessRequest
from sync.device import SAFEGUARDING, SEN, ApiFailure
from sync.directory import items_json
from sync.keyholder import run_duties
from sync.protocol import b64d, b64e

pytestmark = pytest.mark.asyncio

DAY_MS = 24 * 3600 * 1000


def class_id(school, label: str) -> bytes:  # type: ignore[no-untyped-def]
    return next(b64d(c["id"], "id") for c in school.dsl.device.directory["classes"] if c["label"] == label)


def held_keys(device, purpose: str | None = None) -> set[tuple[bytes, int]]:  # type: ignore[no-untyped-def]
    listed = {(b64d(k["id"], "id"), k["version"]): k["purpose"] for k in device.directory["reader_keys"]}
    return {key for key in device.reader_keys if purpose is None or listed.get(key) == purpose}


async def read_all(member, running) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Pull everything the server sends this member and open it with the member's keys."""
    client = await member.connect(running)
    page = await client._request({"type": "pull", "cursor": None, "limit": 500})
    await client.close()
    devices = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in member.device.directory["devices"]}
    out = []
    for item in page["items"]:
        raw = b64d(item["envelope"], "envelope")
        out.append(env.open(raw, devices[env.parse(raw).header.author_device], member.device.keyring()).content)
    return out


async def test_a_teacher_assigned_to_a_class_gets_its_pupil_keys_once_a_keyholder_approves(school) -> None:
    dsl = school.dsl.device
    oak = school.classes["oak"]
    dsl.write(school.dsl.outbox, b"fictional: before the new teacher", pupil_ids=[oak[0]])
    await (await school.dsl.connect(school.running)).flush()
    newcomer = await school.invite("teacher-new", ["teacher"])
    await dsl.call(
        "POST",
        "/api/v1/admin/class-teachers",
        class_id=b64e(class_id(school, "oak")),
        user_id=b64e(newcomer.device.user_id),
        reason="covering Oak this term",
    )
    assert (await run_duties(dsl)).granted == 0  # a keyholder device never acts on a request by itself
    await newcomer.device.refresh()
    assert held_keys(newcomer.device, "pupil") == set()
    pending = (await dsl.call("GET", "/api/v1/approvals"))["pending"]
    assert [(p["item"]["kind"], p["reason"], p["requested_by"]["login"]) for p in pending] == [
        ("teaches", "covering Oak this term", "dsl")
    ]

    approved = await dsl.approve({("teaches", class_id(school, "oak"), newcomer.device.user_id)})
    report = await run_duties(dsl)

    assert approved and report.granted == 3 and not report.refused
    await newcomer.device.refresh()
    assert held_keys(newcomer.device, "pupil") == {dsl.pupil_key(p)[:2] for p in oak}
    assert await read_all(newcomer, school.running) == [b"fictional: before the new teacher"]
    assert (await run_duties(dsl)).granted == 0  # nothing is owed twice
    assert (await dsl.call("GET", "/api/v1/approvals"))["pending"] == []


async def test_assigning_needs_a_teacher_and_a_class_of_this_school(school) -> None:
    lunch = await school.invite("lunch-1", ["contributor"])
    dsl = school.dsl.device
    with pytest.raises(ApiFailure) as refused:
        await dsl.call(
            "POST",
            "/api/v1/admin/class-teachers",
            class_id=b64e(class_id(school, "oak")),
            user_id=b64e(lunch.device.user_id),
        )
    assert refused.value.code == "invalid_request"
    with pytest.raises(ApiFailure) as unknown:
        await dsl.call(
            "POST", "/api/v1/admin/class-teachers", class_id=b64e(bytes(16)), user_id=b64e(lunch.device.user_id)
        )
    assert unknown.value.code == "not_found"


async def test_joining_sen_or_safeguarding_waits_for_a_keyholders_approval_and_may_be_declined(school) -> None:
    dsl = school.dsl.device
    senco = await school.invite("senco", ["teacher", "sen"], approve=False)
    teacher = school.members["teacher-ash"]
    await dsl.call("POST", "/api/v1/admin/roles", user_id=b64e(teacher.device.user_id), roles=["safeguarding"],
                   reason="deputy DSL from January")

    pending = (await dsl.call("GET", "/api/v1/approvals"))["pending"]
    kinds = {(p["item"]["kind"], p["item"].get("role")) for p in pending}
    assert kinds == {("account", None), ("role", "teacher"), ("role", "sen"), ("role", "safeguarding")}
    assert all(p["age_ms"] >= 0 and p["requested_ms"] > 0 for p in pending)
    assert {p["reason"] for p in pending if p["item"].get("role") == "safeguarding"} == {"deputy DSL from January"}

    await run_duties(dsl)  # the automatic duty never seals a key for what waits for approval
    await dsl.refresh()
    for member in (senco, teacher):
        await member.device.refresh()
        assert not held_keys(member.device, SEN) and not held_keys(member.device, SAFEGUARDING)

    await dsl.approve({i for i in await dsl.pending() if i[1] == senco.device.user_id})
    declined = [p["item"] for p in (await dsl.call("GET", "/api/v1/approvals"))["pending"]]
    assert [d["kind"] for d in declined] == ["role"]
    await dsl.call("POST", "/api/v1/approvals/decline", items=declined, reason="not this year")
    await run_duties(dsl)

    assert (await dsl.call("GET", "/api/v1/approvals"))["pending"] == []
    await senco.device.refresh()
    await teacher.device.refresh()
    assert held_keys(senco.device, SEN) == {dsl.group_key(SEN)[:2]}
    assert not held_keys(teacher.device, SAFEGUARDING)
    listed = {a["login"]: a["roles"] for a in dsl.directory["accounts"]}
    assert listed["teacher-ash"] == ["teacher"] and sorted(listed["senco"]) == ["sen", "teacher"]
    with pytest.raises(ApiFailure) as again:
        await dsl.call("POST", "/api/v1/approvals/decline", items=declined)
    assert again.value.code == "not_found"


async def test_pending_widenings_say_who_asked_and_how_long_they_have_waited(school) -> None:
    dsl = school.dsl.device
    first = await school.invite("senco-1", ["teacher"])
    await dsl.call("POST", "/api/v1/admin/roles", user_id=b64e(first.device.user_id), roles=["sen"])
    async with school.running.services.engine.begin() as conn:
        await conn.execute(
            update(AccessRequest).values(requested_ms=AccessRequest.requested_ms - 3 * DAY_MS)
        )
    (pending,) = (await dsl.call("GET", "/api/v1/approvals"))["pending"]
    assert pending["item"] == items_json([("role", first.device.user_id, "sen")])[0]
    assert pending["requested_by"]["login"] == "dsl"
    assert 3 * DAY_MS <= pending["age_ms"] < 4 * DAY_MS


async def test_reader_keys_with_a_single_holder_are_flagged(school) -> None:
    dsl = school.dsl.device
    flagged = {k["purpose"] for k in (await dsl.call("GET", "/api/v1/keys/single-holder"))["keys"]}
    assert flagged - {"signing:directory"} == {SAFEGUARDING, SEN}  # pupil keys: the DSL and the class teacher

    deputy = await school.invite("deputy", ["safeguarding"])
    await run_duties(dsl)  # an approved safeguarding member is owed the group, SEN, signing and pupil keys

    assert (await dsl.call("GET", "/api/v1/keys/single-holder"))["keys"] == []
    await deputy.device.refresh()
    assert len(held_keys(deputy.device, "pupil")) == len(school.pupils)
    assert held_keys(deputy.device, SEN) == {dsl.group_key(SEN)[:2]}
    assert held_keys(deputy.device, SAFEGUARDING) == {dsl.group_key(SAFEGUARDING)[:2]}


BAD_BODIES = [
    {},
    {"user_id": "!!"},
    {"user_id": b64e(bytes(16)), "scope": "galaxy"},
    {"grants": ["x"]},
    {"reader_key_id": b64e(bytes(16)), "version": 1, "public_key": b64e(bytes(32)), "grants": []},
    {"items": [{"kind": "role", "user_id": b64e(bytes(16)), "role": "sen"}]},
    {"items": [{"kind": "galaxy"}], "reason": 5},
    {"envelope_id": b64e(bytes(16)), "decision": "accept"},
    {"class_id": 5, "user_id": None},
]


async def test_bad_input_to_the_grant_and_leaving_routes_gets_a_stable_code_and_changes_nothing(school) -> None:
    from server.api_grants import ROUTES as GRANT_ROUTES
    from server.held import ROUTES as HELD_ROUTES

    dsl = school.dsl.device
    before = await dsl.call("GET", "/api/v1/keyholder/duties")
    for path, method, _, _ in GRANT_ROUTES + HELD_ROUTES:
        if method != "POST":
            continue
        for body in BAD_BODIES:
            with pytest.raises(ApiFailure) as refused:
                await dsl.call("POST", path, **body)
            assert 400 <= refused.value.status < 500, (path, body, refused.value)
            assert refused.value.code in {"invalid_request", "not_found", "unknown_key", "forbidden"}, (path, body)
    assert await dsl.call("GET", "/api/v1/keyholder/duties") == before
    assert (await dsl.call("GET", "/api/v1/held"))["held"] == []


async def test_a_decline_naming_a_user_id_that_is_not_base64url_is_a_400_with_field_errors(school) -> None:
    """Found by the HTTP fuzz: an item whose ``user_id`` is not base64url was a 500 with a traceback."""
    with pytest.raises(ApiFailure) as refused:
        await school.dsl.device.call("POST", "/api/v1/approvals/decline", reason="no",
                                     items=[{"kind": "role", "user_id": "not base64!", "role": "sen"}])
    assert (refused.value.status, refused.value.code) == (400, "invalid_request")
    assert refused.value.error.get("fields") == {"items[0]": "invalid"}


async def test_a_reason_holding_a_nul_is_a_400_and_changes_nothing(school) -> None:
    """Found by the HTTP fuzz on PostgreSQL, which refuses a NUL in text: the route answered 500."""
    teacher = school.members["teacher-ash"]
    with pytest.raises(ApiFailure) as refused:
        await school.dsl.device.call("POST", "/api/v1/admin/roles", user_id=b64e(teacher.device.user_id),
                                     roles=["teacher", "sen"], reason="covering\x00")
    assert (refused.value.status, refused.value.error.get("fields")) == (400, {"reason": "invalid"})
    assert (await school.dsl.device.call("GET", "/api/v1/approvals"))["pending"] == []
