"""Sessions end everywhere at once: sign-out, expiry, recovery, leaving and revocation close every open
socket of that session, device or person, on every app instance (docs/PROTOCOL.md 9.1, 9.5).

Each test plays someone holding a socket the server should no longer serve."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select, update
from websockets.exceptions import ConnectionClosed

from server.accounts import hash_token
from server.models import Envelope, Session
from server.storage import now_ms
from sync.protocol import b64e, frame
from sync.recovery import recover
from tests.server.harness import Member, raw_socket
from tests.server.test_instances import Two, two  # noqa: F401  (the two-instance fixture)
from tests.server.test_recovery import NEW_PASSWORD, _join, _next_code

pytestmark = pytest.mark.asyncio


async def until_closed(ws, seconds: float = 5) -> tuple[list[dict], int | None]:  # type: ignore[no-untyped-def]
    """Every frame the server sends until it closes the socket, and the close code."""

    async def read() -> list[dict]:
        frames = []
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except ConnectionClosed:
            return frames

    frames = await asyncio.wait_for(read(), seconds)
    return frames, ws.close_code


def errors(frames: list[dict]) -> list[tuple[str | None, str]]:
    return [(f.get("id"), f["code"]) for f in frames if f["type"] == "error"]


async def envelopes(school) -> int:  # type: ignore[no-untyped-def]
    async with school.running.services.engine.connect() as conn:
        count = select(func.count()).select_from(Envelope).where(Envelope.school_id == school.school_id)
        return await conn.scalar(count)


async def test_signing_out_closes_that_sessions_socket_at_once(school) -> None:
    teacher, dsl = school.members["teacher-oak"], school.dsl
    ws = await raw_socket(school.running, teacher)
    other = await raw_socket(school.running, dsl)
    await teacher.device.call("POST", "/api/v1/sign-out")
    frames, code = await until_closed(ws)
    assert (errors(frames), code) == ([(None, "session_expired")], 4003)
    await other.send(frame({"type": "ping", "id": "p"}))  # another person's session is untouched
    assert json.loads(await other.recv())["type"] == "pong"
    await other.close()


async def test_a_socket_refuses_a_put_once_its_session_ended_elsewhere(school) -> None:
    """Another instance ended the session and its notification was lost: the next frame finds out."""
    teacher = school.members["teacher-ash"]
    await teacher.device.refresh()
    teacher.device.write(teacher.outbox, b"fictional: after sign-out", pupil_ids=[school.classes["ash"][0]])
    (pending,) = teacher.outbox.head(10, 10**7)
    ws = await raw_socket(school.running, teacher)
    async with school.running.services.engine.begin() as conn:
        await conn.execute(
            update(Session).where(Session.token_hash == hash_token(teacher.device.token)).values(revoked_ms=now_ms())
        )
    before = await envelopes(school)
    await ws.send(frame({"type": "put", "id": "p1", "envelopes": [b64e(pending.body)]}))
    frames, code = await until_closed(ws)
    assert (errors(frames), code) == ([("p1", "session_expired")], 4003)
    assert not [f for f in frames if f["type"] == "ack"]
    assert await envelopes(school) == before  # nothing stored


async def test_a_socket_closes_when_its_session_expires(school) -> None:
    teacher = school.members["teacher-oak"]
    async with school.running.services.engine.begin() as conn:
        await conn.execute(
            update(Session)
            .where(Session.token_hash == hash_token(teacher.device.token))
            .values(expires_ms=now_ms() + 3000)
        )
    ws = await raw_socket(school.running, teacher)  # the session still holds: ready
    frames, code = await until_closed(ws, 15)  # no frame sent: the expiry timer closes it
    assert (errors(frames), code) == ([(None, "session_expired")], 4003)


async def test_recovery_closes_every_other_socket_of_the_account(school, tmp_path) -> None:
    registration, device = await _join(school, "cara@example.org", ["teacher"], [])
    member = Member(device, registration.totp_secret, teacher_outbox(tmp_path))
    ws = await raw_socket(school.running, member)
    recovered = await recover(
        school.http,
        school.school_id,
        "cara@example.org",
        registration.recovery_key,
        NEW_PASSWORD,
        totp=_next_code(registration.totp_secret),
    )
    frames, code = await until_closed(ws)
    assert (errors(frames), code) == ([(None, "session_expired")], 4003)
    fresh = await raw_socket(school.running, Member(recovered, None, teacher_outbox(tmp_path)))  # the new one holds
    await fresh.close()


def teacher_outbox(tmp_path):  # type: ignore[no-untyped-def]
    import os

    from sync.outbox import Outbox

    return Outbox(tmp_path / f"outbox-{os.urandom(4).hex()}.db")


@pytest.mark.postgres
async def test_signing_out_through_one_instance_closes_the_socket_on_another(two: Two) -> None:  # noqa: F811
    teacher = two.school.members["teacher-ash"]
    ws = await raw_socket(two.b, teacher)
    await teacher.device.call("POST", "/api/v1/sign-out")  # asked of instance a
    frames, code = await until_closed(ws)
    assert (errors(frames), code) == ([(None, "session_expired")], 4003)
    assert two.b.services.hub.connections(two.school.school_id) == []


# --- a revoked device's one hand-over -------------------------------------------------------------


async def revoked_socket(school, member):  # type: ignore[no-untyped-def]
    """A revoked device's connection, past its refused auth (good proof): what a thief of it could open."""
    from websockets.asyncio.client import connect

    from crypto import sign_device_auth
    from sync.protocol import b64d

    ws = await connect(school.running.ws_url, max_size=None)
    nonce = b64d(json.loads(await ws.recv())["nonce"], "nonce")
    device = member.device
    proof = sign_device_auth(device.device_key, device.school_id, device.device_id, nonce)
    auth = {"type": "auth", "id": "a", "token": device.token, "device_id": b64e(device.device_id)}
    await ws.send(frame({**auth, "signature": b64e(proof), "protocol": 1}))
    assert json.loads(await ws.recv())["code"] == "device_revoked"
    return ws


async def offline_then_revoked(school, name: str, count: int):  # type: ignore[no-untyped-def]
    lunch = await school.invite(name, ["contributor"])
    await lunch.device.refresh()
    for n in range(count):
        lunch.device.write(lunch.outbox, f"fictional: offline {n}".encode(), pupil_ids=[school.pupils[0]])
    await school.dsl.device.call("POST", "/api/v1/devices/revoke", device_id=b64e(lunch.device.device_id))
    return lunch, [p.body for p in lunch.outbox.head(count, 10**8)]


async def held_count(school) -> int:  # type: ignore[no-untyped-def]
    return len((await school.dsl.device.call("GET", "/api/v1/held"))["held"])


def hand_over(n: int, bodies: list[bytes]) -> str:
    return frame({"type": "hand_over", "id": f"h{n}", "envelopes": [b64e(b) for b in bodies]})


async def test_a_revoked_device_hands_over_once_and_is_then_closed_at_once(school) -> None:
    lunch, bodies = await offline_then_revoked(school, "lunch-a", 2)
    ws = await revoked_socket(school, lunch)
    await ws.send(hand_over(0, bodies[:1]))
    assert json.loads(await ws.recv())["type"] == "held"
    await ws.close()

    again = await revoked_socket(school, lunch)  # the thief reconnects: nothing more is taken
    frames, code = await until_closed(again)
    assert (errors(frames), code) == ([(None, "hand_over_limit")], 4001)
    assert await held_count(school) == 1


async def test_a_hand_over_is_capped_in_envelopes_and_bytes(school, monkeypatch) -> None:
    import server.held

    lunch, bodies = await offline_then_revoked(school, "lunch-b", 4)
    monkeypatch.setattr(server.held, "HAND_OVER_ENVELOPES", 3)
    ws = await revoked_socket(school, lunch)
    await ws.send(hand_over(0, bodies[:2]))
    assert json.loads(await ws.recv())["type"] == "held"
    await ws.send(hand_over(1, bodies[2:]))  # the fourth envelope passes the cap: refused whole, and closed
    frames, code = await until_closed(ws)
    assert (errors(frames), code) == ([("h1", "hand_over_limit")], 4001)
    assert await held_count(school) == 2

    other, more = await offline_then_revoked(school, "lunch-c", 2)
    monkeypatch.setattr(server.held, "HAND_OVER_BYTES", len(hand_over(0, more[:1])) + 10)
    ws = await revoked_socket(school, other)
    await ws.send(hand_over(0, more[:1]))
    assert json.loads(await ws.recv())["type"] == "held"
    await ws.send(hand_over(1, more[1:]))
    frames, code = await until_closed(ws)
    assert (errors(frames), code) == ([("h1", "hand_over_limit")], 4001)
    assert await held_count(school) == 3


async def test_a_hand_over_ends_with_its_window_however_busy(school, monkeypatch) -> None:
    import server.held

    lunch, bodies = await offline_then_revoked(school, "lunch-d", 1)
    monkeypatch.setattr(server.held, "HAND_OVER_SECONDS", 1)
    monkeypatch.setattr(server.held, "HAND_OVER_ENVELOPES", 10**9)  # only the window can end it
    monkeypatch.setattr(server.held, "HAND_OVER_BYTES", 10**12)
    ws = await revoked_socket(school, lunch)

    async def keep_busy() -> int:  # the same envelope again and again: each is answered, none is new
        for n in range(100_000):
            try:
                await ws.send(hand_over(n, bodies))
                await ws.recv()
            except ConnectionClosed:
                return n
        return -1

    frames = await asyncio.wait_for(keep_busy(), 20)
    assert frames > 0 and ws.close_code == 4001
