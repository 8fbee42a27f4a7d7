"""A stolen device, revoked after the theft, and a thief who holds its keys and its session token (attack 5),
and races on sign-in (attack 6). What tests/server already plays as an attack is named in the README and
re-run with its defence removed in test_defences_matter.py; what it did not play is here."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed

from server.accounts import hash_token
from server.models import Device as DeviceRow
from server.models import Session
from server.storage import now_ms
from sync.protocol import b64e, frame
from tests.adversary._attack import GOT_THROUGH, refused, snapshot, unchanged
from tests.server import test_sessions as sessions
from tests.server.harness import raw_socket

pytestmark = pytest.mark.asyncio


async def test_a_stolen_device_s_open_socket_takes_no_put_once_revoked_elsewhere(school) -> None:
    """The device is revoked through another instance whose notification never arrived: the socket the thief
    holds finds out at its next frame, stores nothing, and closes."""
    lunch = await school.invite("lunch-stolen", ["contributor"])
    await lunch.device.refresh()
    lunch.device.write(lunch.outbox, b"fictional: written by the thief", pupil_ids=[school.pupils[0]])
    (forged,) = lunch.outbox.head(1, 10**7)
    ws = await raw_socket(school.running, lunch)
    async with school.running.services.engine.begin() as conn:
        await conn.execute(update(DeviceRow).where(DeviceRow.id == lunch.device.device_id).values(revoked_ms=now_ms()))
    before = await snapshot(school)

    await ws.send(frame({"type": "put", "id": "p1", "envelopes": [b64e(forged.body)]}))
    answer = json.loads(await asyncio.wait_for(ws.recv(), 5))

    assert answer["type"] != "ack", f"{GOT_THROUGH}: the put was acknowledged"
    assert answer["type"] == "revoked", answer  # the device hands over and wipes; its socket is closed
    _, code = await sessions.until_closed(ws)
    assert code is not None
    unchanged(before, await snapshot(school))


async def test_a_stolen_session_token_opens_nothing_over_http_once_it_ended(school) -> None:
    """The thief copied the token: after the owner signs out, or once it expires, or the device is revoked,
    every HTTP route answers ``unauthenticated``."""
    teacher, ash = school.members["teacher-oak"], school.members["teacher-ash"]
    async with school.running.services.engine.begin() as conn:  # expired, nobody signed out
        await conn.execute(update(Session).where(Session.token_hash == hash_token(teacher.device.token))
                           .values(expires_ms=now_ms() - 1))
    await refused("unauthenticated", teacher.device.call("GET", "/api/v1/grants"))
    await ash.device.call("POST", "/api/v1/sign-out")
    await refused("unauthenticated", ash.device.call("GET", "/api/v1/grants"))
    lunch = await school.invite("lunch-token", ["contributor"])
    await school.dsl.device.call("POST", "/api/v1/devices/revoke", device_id=b64e(lunch.device.device_id))
    await refused("unauthenticated", lunch.device.call("GET", "/api/v1/grants"))


async def test_a_stolen_device_hands_over_once_and_the_thief_gets_no_second_channel(school) -> None:
    """After its one hand-over, the thief reconnects with entries it forged with the device's key: closed
    at once, nothing more is held for the DSL."""
    lunch, bodies = await sessions.offline_then_revoked(school, "lunch-thief", 1)
    ws = await sessions.revoked_socket(school, lunch)
    await ws.send(sessions.hand_over(0, bodies))
    assert json.loads(await ws.recv())["type"] == "held"
    await ws.close()
    lunch.device.write(lunch.outbox, b"fictional: forged after the hand-over", pupil_ids=[school.pupils[0]])
    forged = [p.body for p in lunch.outbox.head(10, 10**8)][-1:]
    before = await snapshot(school)

    again = await sessions.revoked_socket(school, lunch)
    with contextlib.suppress(ConnectionClosed):  # closed already, as it should be
        await again.send(sessions.hand_over(1, forged))
    answer = json.loads(await asyncio.wait_for(again.recv(), 5))

    assert answer["type"] != "held", f"{GOT_THROUGH}: a second hand-over was held"
    assert (answer["type"], answer.get("code")) == ("error", "hand_over_limit")
    _, code = await sessions.until_closed(again)
    assert code == 4001
    unchanged(before, await snapshot(school))
