"""Delivery without a session (docs/PROTOCOL.md 3.2, 9.3): a shared tablet sends what its locked-out people
wrote, with the device's delivery key, which can put already-sealed envelopes and nothing else — it reads
nothing, needs no password, and ends with the device. Played as the attacker: a thief holding only the
delivery key, a forged proof, a revoked tablet."""

from __future__ import annotations

import asyncio

import pytest

from crypto import SigningKey
from sync.client import SyncClient, SyncError
from sync.device import ApiFailure
from sync.protocol import b64e
from tests.server.test_grants import read_all

pytestmark = pytest.mark.asyncio


def _delivery(member, running, key: SigningKey, outbox=None) -> SyncClient:  # type: ignore[no-untyped-def]
    d = member.device
    return SyncClient(running.ws_url, outbox or member.outbox, school_id=d.school_id, device_id=d.device_id,
                      device_key=SigningKey.generate(),  # not the device key: a locked tablet does not hold it
                      token="", delivery_key=key)


async def test_a_locked_out_author_s_entries_leave_the_tablet_with_the_delivery_key_alone(school) -> None:
    lunch = await school.invite("lunch-1", ["contributor"])
    key = await lunch.device.register_delivery_key()
    oak = school.classes["oak"][0]
    await lunch.device.refresh()
    lunch.device.write(lunch.outbox, b"fictional: said at lunch", pupil_ids=[oak])  # sealed when written
    await lunch.device.call("POST", "/api/v1/sign-out")  # the supervisor is gone: no session at all

    client = _delivery(lunch, school.running, key)
    ready = await client.connect()
    assert ready["deliver_only"] is True and ready["roles"] == []
    report = await client.flush()
    assert report.sent == 1 and lunch.outbox.pending_count() == 0
    reads = await client._request({"type": "pull", "cursor": None, "limit": 10})
    assert (reads["type"], reads["code"]) == ("error", "deliver_only")  # it can read nothing
    await client.close()
    assert b"fictional: said at lunch" in await read_all(school.dsl, school.running)


async def test_a_forged_delivery_proof_or_a_revoked_tablet_delivers_nothing(school) -> None:
    lunch = await school.invite("lunch-2", ["contributor"])
    key = await lunch.device.register_delivery_key()
    with pytest.raises(SyncError) as forged:
        await _delivery(lunch, school.running, SigningKey.generate()).connect()
    assert forged.value.code == "auth_failed"
    teacher = school.members["teacher-oak"]  # a device that never registered a delivery key
    with pytest.raises(SyncError) as none:
        await _delivery(teacher, school.running, SigningKey.generate()).connect()
    assert none.value.code == "auth_failed"

    live = _delivery(lunch, school.running, key)
    await live.connect()
    closed = asyncio.get_running_loop().create_future()
    await school.dsl.device.call("POST", "/api/v1/devices/revoke", device_id=b64e(lunch.device.device_id))

    async def wait_closed() -> None:
        await live._ws.wait_closed()
        closed.set_result(live._ws.close_code)

    await asyncio.wait_for(wait_closed(), 5)  # revoked: the delivery connection ends on every instance
    with pytest.raises(SyncError) as revoked:
        await _delivery(lunch, school.running, key).connect()
    assert revoked.value.code == "device_revoked"
    assert lunch.outbox.pending_count() == 0  # nothing wiped or handed over by a delivery connection


async def test_only_the_device_s_own_session_registers_its_delivery_key(school) -> None:
    lunch = await school.invite("lunch-3", ["contributor"])
    with pytest.raises(ApiFailure) as bad:
        await lunch.device.call("POST", "/api/v1/devices/delivery-key", public_key="too short")
    assert bad.value.code == "invalid_request"
    with pytest.raises(ApiFailure) as anonymous:
        lunch.device.token, token = None, lunch.device.token
        try:
            await lunch.device.register_delivery_key()
        finally:
            lunch.device.token = token
    assert anonymous.value.code == "unauthenticated"
