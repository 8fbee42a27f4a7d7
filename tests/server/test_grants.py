"""Grants over a school's life, at the protocol level (docs/PROTOCOL.md 14): automatic pupil-key grants
for a teacher assigned to a class, approvals for group keys, their age, and single holders."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from crypto import envelope as env
from server.models import PendingGrant
from sync.device import SAFEGUARDING, SEN, ApiFailure
from sync.keyholder import approve, decline, run_duties
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


async def test_a_teacher_assigned_to_a_class_gets_its_pupil_keys_from_the_next_keyholder_device(school) -> None:
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
    )
    await newcomer.device.refresh()
    assert held_keys(newcomer.device) == set()  # the server makes no grant: a keyholder device does

    report = await run_duties(dsl)

    assert report.granted == 3 and not report.refused
    await newcomer.device.refresh()
    assert held_keys(newcomer.device) == {dsl.pupil_key(p)[:2] for p in oak}
    assert await read_all(newcomer, school.running) == [b"fictional: before the new teacher"]
    assert (await run_duties(dsl)).granted == 0  # nothing is owed twice


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


async def test_joining_sen_or_safeguarding_waits_for_a_safeguarding_keyholders_approval(school) -> None:
    dsl = school.dsl.device
    senco = await school.invite("senco", ["teacher", "sen"])
    teacher = school.members["teacher-ash"]
    await dsl.call("POST", "/api/v1/admin/roles", user_id=b64e(teacher.device.user_id), roles=["safeguarding"])

    pending = (await dsl.call("GET", "/api/v1/approvals"))["pending"]
    assert {(p["login"], p["purpose"]) for p in pending} == {("senco", SEN), ("teacher-ash", SAFEGUARDING)}
    assert all(p["age_ms"] >= 0 and p["requested_ms"] > 0 for p in pending)

    await run_duties(dsl)  # the automatic duty never seals a group key that waits for approval
    for member in (senco, teacher):
        await member.device.refresh()
        assert not held_keys(member.device, SEN) and not held_keys(member.device, SAFEGUARDING)
    with pytest.raises(ApiFailure) as early:  # an approval is the grant: it cannot come first
        await dsl.call(
            "POST", "/api/v1/approvals", member_id=b64e(senco.device.user_id), purpose=SEN, decision="approve"
        )
    assert early.value.code == "grant_missing"

    await dsl.refresh()
    await approve(dsl, senco.device.user_id, SEN)
    await decline(dsl, teacher.device.user_id, SAFEGUARDING)

    assert (await dsl.call("GET", "/api/v1/approvals"))["pending"] == []
    await senco.device.refresh()
    await teacher.device.refresh()
    assert held_keys(senco.device, SEN) == {dsl.group_key(SEN)[:2]}
    assert not held_keys(teacher.device, SAFEGUARDING)
    with pytest.raises(ApiFailure) as again:
        await decline(dsl, teacher.device.user_id, SAFEGUARDING)
    assert again.value.code == "not_found"


async def test_pending_grants_are_listed_oldest_first_with_their_age(school) -> None:
    dsl = school.dsl.device
    first = await school.invite("senco-1", ["sen"])
    await school.invite("senco-2", ["sen"])
    await dsl.call("GET", "/api/v1/approvals")  # the rows are made when first seen
    async with school.running.services.engine.begin() as conn:
        await conn.execute(
            update(PendingGrant)
            .where(PendingGrant.member_id == first.device.user_id)
            .values(requested_ms=PendingGrant.requested_ms - 3 * DAY_MS)
        )
    pending = (await dsl.call("GET", "/api/v1/approvals"))["pending"]
    assert [p["login"] for p in pending] == ["senco-1", "senco-2"]
    assert 3 * DAY_MS <= pending[0]["age_ms"] < 4 * DAY_MS
    assert pending[1]["age_ms"] < DAY_MS


async def test_reader_keys_with_a_single_holder_are_flagged(school) -> None:
    dsl = school.dsl.device
    flagged = {k["purpose"] for k in (await dsl.call("GET", "/api/v1/keys/single-holder"))["keys"]}
    assert flagged - {"signing:directory"} == {SAFEGUARDING, SEN}  # pupil keys: the DSL and the class teacher

    deputy = await school.invite("deputy", ["safeguarding"])
    await dsl.refresh()
    await approve(dsl, deputy.device.user_id, SAFEGUARDING)
    await run_duties(dsl)  # an approved safeguarding member is then owed the SEN and pupil keys

    assert (await dsl.call("GET", "/api/v1/keys/single-holder"))["keys"] == []
    await deputy.device.refresh()
    assert len(held_keys(deputy.device, "pupil")) == len(school.pupils)
    assert held_keys(deputy.device, SEN) == {dsl.group_key(SEN)[:2]}


BAD_BODIES = [
    {},
    {"user_id": "!!"},
    {"user_id": b64e(bytes(16)), "scope": "galaxy"},
    {"grants": ["x"]},
    {"reader_key_id": b64e(bytes(16)), "version": 1, "public_key": b64e(bytes(32)), "grants": []},
    {"member_id": b64e(bytes(16)), "purpose": "group:sen", "decision": "maybe"},
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
