"""Held envelopes: what a device revoked while offline wrote before it heard, kept for a DSL to review.

A revoked device that reconnects is refused with ``device_revoked``. If its device proof over the
challenge is good, and only the first time, the socket stays open a little longer for ``hand_over``
frames: the envelopes it never sent, verified like a put and stored in ``held_envelopes`` (never
delivered), each answered by ``held``, at most ``HAND_OVER_ENVELOPES`` envelopes and ``HAND_OVER_BYTES`` of
frames within ``HAND_OVER_SECONDS``. Then the device wipes its local store; a later connection of it is
closed at once, so a stolen revoked device cannot keep a channel to the server. A safeguarding keyholder
lists them, reads them with its own keys, and accepts (stored like any envelope, with a sequence number,
and delivered) or rejects (kept as evidence, never delivered), in the order the device wrote them
(docs/PROTOCOL.md 9.7, and "Keyholder duties and leaving").
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import insert, select, update
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from crypto import CryptoError, verify_device_auth
from crypto import envelope as env
from sync.protocol import LIMITS, Auth, ProtocolError, b64e, frame, parse_hand_over

from ._body import Body
from .accounts import hash_token
from .api import _engine
from .auth import KEYHOLDER, ApiRoute, principal
from .errors import ApiError
from .models import Account, Device, Envelope, HeldEnvelope, Session
from .storage import Incoming, now_ms

__all__ = ["ROUTES", "hand_over"]

log = logging.getLogger("cairn.held")

ID = 16
# One hand-over per revoked device, bounded (docs/PROTOCOL.md 9.7): what a device wrote offline in days
# fits well within these; a revoked device cannot keep a socket, or the server's disk, for ever.
HAND_OVER_ENVELOPES = 1000
HAND_OVER_BYTES = 16 * 1024 * 1024  # of frames received, whatever they hold
HAND_OVER_SECONDS = 120


async def _revoked_device(services, auth: Auth, nonce: bytes) -> tuple[bytes, bytes, bytes, bytes] | None:  # type: ignore[no-untyped-def]
    """(school, user, device, device public key) when the token names this revoked device and its proof
    over this connection's challenge is good; None otherwise."""
    async with services.engine.connect() as conn:
        row = (
            await conn.execute(
                select(Session.school_id, Session.user_id, Device.id, Device.public_key, Device.revoked_ms)
                .join(Device, (Device.school_id == Session.school_id) & (Device.id == Session.device_id))
                .where(Session.token_hash == hash_token(auth.token))
            )
        ).first()
    if row is None or row.revoked_ms is None or bytes(row.id) != auth.device_id:
        return None
    try:
        verify_device_auth(bytes(row.public_key), bytes(row.school_id), auth.device_id, nonce, auth.signature)
    except CryptoError:
        return None
    return bytes(row.school_id), bytes(row.user_id), bytes(row.id), bytes(row.public_key)


async def hand_over(ws: WebSocket, services, auth: Auth, nonce: bytes) -> int:  # type: ignore[no-untyped-def]
    """After ``device_revoked``: the device's one hand-over. Take its unsent envelopes until it closes,
    goes quiet for ``auth_timeout_seconds``, reaches a cap or the window ends. Returns how many were newly
    held."""
    device = await _revoked_device(services, auth, nonce)
    if device is None:
        return 0
    school_id, user_id, device_id, device_pk = device
    if not await _claim(services, school_id, device_id):
        await _send(ws, ProtocolError("hand_over_limit", "this device has handed over already").to_frame())
        return 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HAND_OVER_SECONDS
    count = envelopes = received = 0
    while (left := deadline - loop.time()) > 0:
        try:
            got = await asyncio.wait_for(ws.receive(), min(LIMITS["auth_timeout_seconds"], left))
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            break
        if got["type"] == "websocket.disconnect":
            break
        text = got["text"] if got.get("text") is not None else got.get("bytes") or b""
        received += len(text)
        try:  # a binary frame is refused by the codec (malformed_frame), like any other bad frame
            message = parse_hand_over(text)
            if received > HAND_OVER_BYTES or envelopes + len(message.envelopes) > HAND_OVER_ENVELOPES:
                raise ProtocolError(
                    "hand_over_limit",
                    f"a hand-over holds at most {HAND_OVER_ENVELOPES} envelopes and {HAND_OVER_BYTES} bytes",
                    request_id=message.id,
                )
            rows = [
                _row(raw, school_id, user_id, device_id, device_pk, n, message.id)
                for n, raw in enumerate(message.envelopes)
            ]
            count += await _hold(services, school_id, rows, message.id)
            envelopes += len(rows)
            if not await _send(ws, frame({"type": "held", "id": message.id, "count": len(rows)})):
                break
        except ProtocolError as exc:
            if not await _send(ws, exc.to_frame()) or exc.code == "hand_over_limit":
                break
    if count:
        await services.audit(school_id, "held.hand_over", user=user_id, device=device_id, target=str(count))
    return count


async def _claim(services, school_id: bytes, device_id: bytes) -> bool:  # type: ignore[no-untyped-def]
    """Mark the device's one hand-over as begun; False when it already was (on any instance)."""
    async with services.engine.begin() as conn:
        claimed = await conn.execute(
            update(Device)
            .where(Device.school_id == school_id, Device.id == device_id, Device.handed_over_ms.is_(None))
            .values(handed_over_ms=now_ms())
        )
    return claimed.rowcount == 1


async def _send(ws: WebSocket, text: str) -> bool:
    try:
        await ws.send_text(text)
    except (WebSocketDisconnect, RuntimeError):
        return False
    return True


def _row(raw: bytes, school_id: bytes, user_id: bytes, device_id: bytes, device_pk: bytes, n: int, rid: str) -> dict:
    where = {"envelopes": f"item {n}"}
    try:
        parsed = env.verify(raw, device_pk)
    except CryptoError as exc:
        code = {"unsupported_version": "unsupported_version", "bad_signature": "bad_signature"}.get(
            exc.code, "malformed_envelope"
        )
        raise ProtocolError(code, f"envelope {n}: {exc}", where, rid) from None
    h = parsed.header
    if h.school_id != school_id:
        raise ProtocolError("wrong_school", f"envelope {n} names another school", where, rid)
    if h.author_device != device_id:
        raise ProtocolError("wrong_device", f"envelope {n} was written by another device", where, rid)
    return {
        "school_id": school_id,
        "envelope_id": h.envelope_id,
        "author_device": device_id,
        "user_id": user_id,
        "concern_id": h.concern_id,
        "counter": h.counter,
        "device_time_ms": h.device_time_ms,
        "received_ms": now_ms(),
        "padded_size": parsed.padded_size,
        "digest": env.envelope_hash(raw),
        "body": raw,
    }


async def _hold(services, school_id: bytes, rows: list[dict], rid: str) -> int:  # type: ignore[no-untyped-def]
    """Store what is new; the same id with the same bytes again is fine, with other bytes refused."""
    ids = [r["envelope_id"] for r in rows]
    async with services.engine.begin() as conn:
        seen = {
            bytes(r[0]): bytes(r[1])
            for r in await conn.execute(
                select(HeldEnvelope.envelope_id, HeldEnvelope.digest).where(
                    HeldEnvelope.school_id == school_id, HeldEnvelope.envelope_id.in_(ids)
                )
            )
        }
        seen.update(
            {
                bytes(r[0]): bytes(r[1])
                for r in await conn.execute(
                    select(Envelope.envelope_id, Envelope.digest).where(
                        Envelope.school_id == school_id, Envelope.envelope_id.in_(ids)
                    )
                )
            }
        )
        fresh = []
        for n, r in enumerate(rows):
            if r["envelope_id"] in seen:
                if seen[r["envelope_id"]] != r["digest"]:
                    raise ProtocolError(
                        "conflicting_id", f"envelope {n} was stored with other bytes", {"envelopes": f"item {n}"}, rid
                    )
                continue
            seen[r["envelope_id"]] = r["digest"]
            fresh.append(r)
        if fresh:
            await conn.execute(insert(HeldEnvelope), fresh)
    return len(fresh)


# --- the DSL's review ------------------------------------------------------------------------------


async def list_held(request: Request) -> Response:
    """Every held envelope of the school, undecided first, each device's in the order it wrote them."""
    p = principal(request)
    async with _engine(request).connect() as conn:
        rows = (await conn.execute(select(HeldEnvelope).where(HeldEnvelope.school_id == p.school_id))).all()
        logins = {
            bytes(r[0]): r[1]
            for r in await conn.execute(select(Account.id, Account.login).where(Account.school_id == p.school_id))
        }
    rows = sorted(rows, key=lambda r: (r.decision is not None, bytes(r.author_device), r.counter))
    return JSONResponse(
        {
            "held": [
                {
                    "envelope_id": b64e(bytes(r.envelope_id)),
                    "author_device": b64e(bytes(r.author_device)),
                    "user_id": b64e(bytes(r.user_id)),
                    "login": logins.get(bytes(r.user_id), ""),
                    "concern_id": b64e(bytes(r.concern_id)),
                    "counter": r.counter,
                    "device_time_ms": r.device_time_ms,
                    "received_ms": r.received_ms,
                    "decision": r.decision,
                    "decided_ms": r.decided_ms,
                    "seq": r.seq,
                    "envelope": b64e(bytes(r.body)),
                }
                for r in rows
            ]
        }
    )


async def decide_held(request: Request) -> Response:
    """Accept (store it as any envelope, with a sequence number) or reject (keep it, never deliver it)."""
    p = principal(request)
    body = await Body.read(request, {"envelope_id", "decision"})
    envelope_id = body.bytes("envelope_id", ID)
    decision = body.str("decision", 10, "accept|reject")
    body.done()
    services = request.app.state.services
    async with _engine(request).connect() as conn:
        row = (
            await conn.execute(
                select(HeldEnvelope).where(
                    HeldEnvelope.school_id == p.school_id, HeldEnvelope.envelope_id == envelope_id
                )
            )
        ).first()
        if row is None:
            raise ApiError("not_found", "no such held envelope in this school")
        if row.decision is not None:
            raise ApiError("conflict", f"this envelope was already {row.decision}")
        first = await conn.scalar(
            select(HeldEnvelope.counter)
            .where(
                HeldEnvelope.school_id == p.school_id,
                HeldEnvelope.author_device == row.author_device,
                HeldEnvelope.decision.is_(None),
            )
            .order_by(HeldEnvelope.counter)
            .limit(1)
        )
        device_pk = await conn.scalar(
            select(Device.public_key).where(Device.school_id == p.school_id, Device.id == row.author_device)
        )
    if first != row.counter:
        raise ApiError("held_out_of_order", "decide this device's earlier held envelopes first")
    seq = None
    if decision == "accept":
        raw = bytes(row.body)
        try:
            acks = await services.ingestor.submit(
                p.school_id,
                bytes(row.author_device),
                [Incoming(raw, env.verify(raw, bytes(device_pk)), bytes(row.digest))],
            )
        except ProtocolError as exc:
            raise ApiError("held_refused", f"storing it failed: {exc.detail}", {"envelope": exc.code}) from None
        seq = acks[0].seq
    async with _engine(request).begin() as conn:
        if decision == "reject":  # the device's chain moves past it, so its later envelopes can be accepted
            await conn.execute(
                update(Device)
                .where(
                    Device.school_id == p.school_id,
                    Device.id == row.author_device,
                    Device.last_counter == row.counter - 1,
                )
                .values(last_counter=row.counter, last_hash=bytes(row.digest))
            )
        await conn.execute(
            update(HeldEnvelope)
            .where(HeldEnvelope.school_id == p.school_id, HeldEnvelope.envelope_id == envelope_id)
            .values(decided_ms=now_ms(), decision=f"{decision}ed", decided_by=p.user_id, seq=seq)
        )
    await services.audit(p.school_id, f"held.{decision}", user=p.user_id, device=p.device_id, target=b64e(envelope_id))
    return JSONResponse({"decision": f"{decision}ed", "seq": seq})


ROUTES: list[ApiRoute] = [
    ApiRoute("/api/v1/held", "GET", list_held, (KEYHOLDER,)),
    ApiRoute("/api/v1/held/decide", "POST", decide_held, (KEYHOLDER,)),
]
