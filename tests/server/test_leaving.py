"""Leaving the school, a class or a group, at the protocol level: revoked at once with sockets closed
within 5 s (on every instance), the reader keys they held rotated by a keyholder device, and envelopes
of a device revoked while offline held for a DSL to review (docs/PROTOCOL.md, "Keyholder duties and
leaving")."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update

from crypto import NoKey
from crypto import envelope as env
from server.models import Account, Grant
from sync.client import Revoked
from sync.device import SEN, ApiFailure, sign_in
from sync.keyholder import run_duties
from sync.protocol import b64d, b64e
from tests.server.harness import PASSWORD, Member
from tests.server.test_grants import class_id, held_keys, read_all
from tests.server.test_instances import Two, two  # noqa: F401  (the two-instance fixture)

pytestmark = pytest.mark.asyncio


def closed_event(client) -> asyncio.Future:  # type: ignore[no-untyped-def]
    closed = asyncio.get_running_loop().create_future()
    client._reader.add_done_callback(lambda _: closed.done() or closed.set_result(True))
    return closed


async def grants_of(school, member_id: bytes) -> set[tuple[bytes, int]]:  # type: ignore[no-untyped-def]
    async with school.running.services.engine.connect() as conn:
        rows = await conn.execute(select(Grant.reader_key_id, Grant.reader_version).where(Grant.member_id == member_id))
        return {(bytes(k), int(v)) for k, v in rows}


async def write(member, running, content: bytes, **kwargs) -> bytes:  # type: ignore[no-untyped-def]
    await member.device.refresh()
    member.device.write(member.outbox, content, **kwargs)
    (pending,) = member.outbox.head(10, 10**7)
    client = await member.connect(running)
    await client.flush()
    await client.close()
    return pending.body


async def test_leaving_the_school_revokes_at_once_and_rotates_every_key_they_held(school) -> None:
    dsl, oak = school.dsl.device, school.classes["oak"]
    leaver = school.members["teacher-oak"]
    stayer = await school.invite("teacher-oak-2", ["teacher"])
    await dsl.call(
        "POST",
        "/api/v1/admin/class-teachers",
        class_id=b64e(class_id(school, "oak")),
        user_id=b64e(stayer.device.user_id),
    )
    await dsl.approve()  # the DSL approves the assignment on its device
    await run_duties(dsl)
    await write(school.dsl, school.running, b"fictional: before leaving", pupil_ids=[oak[0]])
    client = await leaver.connect(school.running)
    closed = closed_event(client)
    leavers_keys = leaver.device.keyring()

    answer = await dsl.call("POST", "/api/v1/admin/leave", user_id=b64e(leaver.device.user_id), scope="school")
    await asyncio.wait_for(closed, 5)

    assert answer["keys_to_rotate"] == 3 and isinstance(client._closed_reason, Revoked)
    assert await grants_of(school, leaver.device.user_id) == set()
    with pytest.raises(ApiFailure) as refused:
        await sign_in(school.http, school.school_id, "teacher-oak", PASSWORD, totp_secret=leaver.totp)
    assert refused.value.code == "sign_in_failed"

    report = await run_duties(dsl)
    assert sorted(v for _, v in report.rotated) == [2, 2, 2]
    assert dsl.pupil_key(oak[0])[1] == 2  # new entries use the new version
    after = await write(school.dsl, school.running, b"fictional: after leaving", pupil_ids=[oak[0]])
    assert (env.RECIPIENT_READER_KEY, *dsl.pupil_key(oak[0])[:2]) in {
        (r.kind, r.id, r.version) for r in env.parse(after).header.recipients
    }
    pupil_only = {k: v for k, v in leavers_keys.items() if k[0] == env.RECIPIENT_READER_KEY}
    with pytest.raises(NoKey):
        env.open(after, dsl.device_key.public, pupil_only)
    await stayer.device.refresh()
    assert {v for k, v in held_keys(stayer.device, "pupil") if k == dsl.pupil_key(oak[0])[0]} == {1, 2}
    assert await read_all(stayer, school.running) == [b"fictional: before leaving", b"fictional: after leaving"]
    assert (await run_duties(dsl)).rotated == []  # done once


async def test_leaving_a_class_drops_only_that_class_keys_and_the_device_starts_afresh(school) -> None:
    dsl = school.dsl.device
    teacher = school.members["teacher-oak"]
    await dsl.call(
        "POST",
        "/api/v1/admin/class-teachers",
        class_id=b64e(class_id(school, "ash")),
        user_id=b64e(teacher.device.user_id),
    )
    await dsl.approve()  # the DSL approves the assignment on its device
    await run_duties(dsl)
    assert len(await grants_of(school, teacher.device.user_id)) == 6
    client = await teacher.connect(school.running)
    closed = closed_event(client)

    answer = await dsl.call(
        "POST",
        "/api/v1/admin/leave",
        user_id=b64e(teacher.device.user_id),
        scope="class",
        class_id=b64e(class_id(school, "oak")),
    )
    await asyncio.wait_for(closed, 5)

    assert answer["keys_to_rotate"] == 3
    assert await grants_of(school, teacher.device.user_id) == {dsl.pupil_key(p)[:2] for p in school.classes["ash"]}
    with pytest.raises(Revoked):
        await teacher.connect(school.running)  # the old device wipes on reconnecting
    async with school.running.services.engine.begin() as conn:  # the code used a moment ago may come again
        await conn.execute(update(Account).values(totp_last_step=0))
    fresh = await sign_in(school.http, school.school_id, "teacher-oak", PASSWORD, totp_secret=teacher.totp)
    await fresh.refresh()
    assert set(fresh.reader_keys) == {dsl.pupil_key(p)[:2] for p in school.classes["ash"]}


async def test_leaving_a_group_drops_its_key_and_a_new_version_goes_to_those_who_stay(school) -> None:
    dsl = school.dsl.device
    senco = await school.invite("senco", ["teacher", "sen"])  # approved by the DSL on its device
    await run_duties(dsl)  # the SEN key follows the approval
    assert (dsl.group_key(SEN)[0], 1, senco.device.user_id) in {
        (k, v, senco.device.user_id) for k, v in await grants_of(school, senco.device.user_id)
    }
    old = dsl.group_key(SEN)[:2]

    await dsl.call("POST", "/api/v1/admin/leave", user_id=b64e(senco.device.user_id), scope="group", role="sen")
    report = await run_duties(dsl)

    assert report.rotated == [(old[0], 2)]
    assert await grants_of(school, senco.device.user_id) == set()
    assert dsl.group_key(SEN)[:2] == (old[0], 2)
    pending = (await dsl.call("GET", "/api/v1/approvals"))["pending"]
    assert pending == []  # leaving the group is not waiting to join it
    with pytest.raises(ApiFailure) as last:
        await dsl.call("POST", "/api/v1/admin/leave", user_id=b64e(senco.device.user_id), scope="group", role="teacher")
    assert last.value.code == "invalid_request"  # a member keeps one role; leaving entirely is "school"


async def test_envelopes_of_a_device_revoked_while_offline_are_held_for_a_dsl(school) -> None:
    dsl = school.dsl.device
    lunch = await school.invite("lunch-1", ["contributor"])
    await lunch.device.refresh()
    for text in (b"fictional: first offline", b"fictional: second offline"):
        lunch.device.write(lunch.outbox, text, pupil_ids=[school.pupils[0]])
    await dsl.call("POST", "/api/v1/devices/revoke", device_id=b64e(lunch.device.device_id))

    with pytest.raises(Revoked):
        await lunch.connect(school.running)
    assert lunch.client.handed_over == 2 and lunch.outbox.pending_count() == 0

    held = (await dsl.call("GET", "/api/v1/held"))["held"]
    assert [(h["login"], h["counter"], h["decision"]) for h in held] == [("lunch-1", 1, None), ("lunch-1", 2, None)]
    bodies = [b64d(h["envelope"], "envelope") for h in held]
    assert env.open(bodies[0], lunch.device.device_key.public, dsl.keyring()).content == b"fictional: first offline"
    assert await read_all(school.dsl, school.running) == []  # held: not delivered

    with pytest.raises(ApiFailure) as order:
        await dsl.call("POST", "/api/v1/held/decide", envelope_id=held[1]["envelope_id"], decision="accept")
    assert order.value.code == "held_out_of_order"
    await dsl.call("POST", "/api/v1/held/decide", envelope_id=held[0]["envelope_id"], decision="reject")
    accepted = await dsl.call("POST", "/api/v1/held/decide", envelope_id=held[1]["envelope_id"], decision="accept")

    assert accepted["decision"] == "accepted" and accepted["seq"] >= 1
    school.dsl.outbox.wipe()  # read from the start again
    assert await read_all(school.dsl, school.running) == [b"fictional: second offline"]
    decided = (await dsl.call("GET", "/api/v1/held"))["held"]
    assert sorted(h["decision"] for h in decided) == ["accepted", "rejected"]  # the rejected one is kept
    with pytest.raises(ApiFailure) as twice:
        await dsl.call("POST", "/api/v1/held/decide", envelope_id=held[0]["envelope_id"], decision="accept")
    assert twice.value.code == "conflict"


@pytest.mark.postgres
async def test_leaving_closes_the_leavers_sockets_on_every_instance_within_5_s(two: Two) -> None:  # noqa: F811
    teacher = two.school.members["teacher-ash"]
    on_b = await teacher.connect(two.b)
    closed = closed_event(on_b)

    answer = await two.school.dsl.device.call(
        "POST", "/api/v1/admin/leave", user_id=b64e(teacher.device.user_id), scope="school"
    )
    await asyncio.wait_for(closed, 5)

    assert answer["sockets_closed"] == 0  # the socket was on the other instance
    assert isinstance(on_b._closed_reason, Revoked)
    assert two.b.services.hub.connections(two.school.school_id) == []
    with pytest.raises(Revoked):
        await Member(teacher.device, None, teacher.outbox).connect(two.a)


async def test_a_revoked_device_may_only_hand_over_and_only_with_a_good_proof(school) -> None:
    import json

    from websockets.asyncio.client import connect

    from crypto import sign_device_auth
    from sync.protocol import frame

    lunch = await school.invite("lunch-2", ["contributor"])
    await lunch.device.refresh()
    lunch.device.write(lunch.outbox, b"fictional: offline", pupil_ids=[school.pupils[0]])
    (pending,) = lunch.outbox.head(10, 10**7)
    await school.dsl.device.call("POST", "/api/v1/devices/revoke", device_id=b64e(lunch.device.device_id))
    device = lunch.device

    async def attempt(good_proof: bool, frames: list[str]) -> list[dict]:
        async with connect(school.running.ws_url) as ws:
            nonce = b64d(json.loads(await ws.recv())["nonce"], "nonce")
            proof = sign_device_auth(
                device.device_key, device.school_id, device.device_id, nonce if good_proof else bytes(32)
            )
            await ws.send(
                frame(
                    {
                        "type": "auth",
                        "id": "a",
                        "token": device.token,
                        "device_id": b64e(device.device_id),
                        "signature": b64e(proof),
                        "protocol": 1,
                    }
                )
            )
            replies = [json.loads(await ws.recv())]
            for text in frames:
                await ws.send(text)
                replies.append(json.loads(await ws.recv()))
            return replies

    junk = frame({"type": "put", "id": "p", "envelopes": [b64e(pending.body)]})
    tampered = pending.body[:-1] + bytes([pending.body[-1] ^ 1])
    bad = frame({"type": "hand_over", "id": "h", "envelopes": [b64e(tampered)]})
    good = frame({"type": "hand_over", "id": "h", "envelopes": [b64e(pending.body)]})

    with pytest.raises(Exception):  # noqa: B017 (closed at once: no hand-over without the device's proof)
        await attempt(False, [good])
    assert (await school.dsl.device.call("GET", "/api/v1/held"))["held"] == []

    replies = await attempt(True, [junk, bad, good, good])  # the same envelope again is fine, and held once
    assert [(r["type"], r.get("code")) for r in replies] == [
        ("error", "device_revoked"),
        ("error", "device_revoked"),
        ("error", "bad_signature"),
        ("held", None),
        ("held", None),
    ]
    assert len((await school.dsl.device.call("GET", "/api/v1/held"))["held"]) == 1
