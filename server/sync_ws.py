"""The ``/sync`` websocket: one per device, carrying auth, puts and acks, pulls and pages, pushes,
keepalive, revocation and errors (docs/PROTOCOL.md part 2).

Every frame is validated by ``sync.protocol``; every refusal is an error frame with a stable code, and
the connection stays open unless the peer cannot be trusted (failed auth, revoked device).

A connection lives no longer than its session. It re-checks the session before each frame it handles
(one lookup by primary key), closes itself at the session's expiry and re-checks at least every
``SESSION_RECHECK_SECONDS`` meanwhile, and is closed by ``Services.end_sessions`` (through the hub, on
every instance) the moment its session, device or user is ended.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from crypto import CryptoError
from crypto import envelope as env
from sync.protocol import (
    LIMITS,
    PROTOCOL_VERSION,
    Auth,
    Deliver,
    Ping,
    ProtocolError,
    Pull,
    Put,
    b64e,
    decode_cursor,
    encode_cursor,
    frame,
    items_frame,
    parse_client,
)

from ._faults import point
from .accounts import Principal
from .held import hand_over
from .hub import REVOKED_REASONS
from .storage import Incoming, ReadableKeys, StoredItem, now_ms

__all__ = ["sync_endpoint"]

log = logging.getLogger("cairn.sync")

CLOSE_POLICY = 4001  # auth failed or device revoked: the client must not retry blindly
CLOSE_REPLACED = 4002  # another connection of the same device took over
CLOSE_SESSION_ENDED = 4003  # the session expired, was signed out or ended by a recovery: sign in again
SESSION_RECHECK_SECONDS = 60  # in case a notification from another instance was lost
_CRYPTO_CODES = {
    "parse_failure": "malformed_envelope",
    "unsupported_version": "unsupported_version",
    "bad_signature": "bad_signature",
}


@dataclass
class _Commit:
    before: int
    after: int
    items: list[StoredItem]


class SyncConnection:
    def __init__(self, ws: WebSocket, services, principal: Principal) -> None:  # type: ignore[no-untyped-def]
        self.ws, self.services, self.principal = ws, services, principal
        self.school_id, self.device_id, self.user_id = principal.school_id, principal.device_id, principal.user_id
        self.keys: ReadableKeys = ReadableKeys(principal.user_id, frozenset())
        self.live_seq: int | None = None  # position of the last push, once the device has pulled to the end
        self._commits: list[_Commit] = []
        self._top = 0  # the newest commit this connection has heard of
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._position_lock = asyncio.Lock()
        self.session, self.expires_ms = principal.session, principal.expires_ms
        self.closed = False

    async def send(self, body: dict | str) -> None:
        text = body if isinstance(body, str) else frame(body)
        async with self._send_lock:
            if not self.closed and self.ws.application_state == WebSocketState.CONNECTED:
                try:
                    await self.ws.send_text(text)
                except (WebSocketDisconnect, RuntimeError, OSError):
                    self.closed = True  # the peer went away; it resends and gets a duplicate ack
                    self._wake.set()

    # --- hub callbacks ---------------------------------------------------------------------------

    def committed(self, before: int, after: int, items: list[StoredItem]) -> None:
        self._top = max(self._top, after)
        if self.live_seq is None:
            return
        self._commits.append(_Commit(before, after, items))
        if len(self._commits) > 64:  # a slow reader: drop the buffer and catch up from storage instead
            self._commits.clear()
        self._wake.set()

    async def granted(self) -> None:
        """A grant or entry key grant for this connection's user was stored (on any instance): read what the
        user may read again, so pushes carry what the new keys open from now on, and tell the device, which
        opens the grant and backfills what the key opens from the beginning (docs/PROTOCOL.md 9.5)."""
        if self.closed or self.principal.deliver_only:
            return
        async with self._position_lock:
            self.keys = await self.services.storage.readable_keys(self.school_id, self.user_id)
        await self.send({"type": "grants"})

    async def directory_signed(self, version: int) -> None:
        """The school has a new signed directory version: the device follows it (and opens what waited for an
        author's device to be listed)."""
        if not self.closed and not self.principal.deliver_only:
            await self.send({"type": "directory", "version": version})

    async def end(self, reason: str, request_id: str | None = None) -> None:
        """The session, device or user ended (a reason of server.hub.REASONS): say why, then close. A
        revocation says ``revoked`` (the device hands over, then wipes); anything else ``session_expired``
        (the person signs in again), with close code 4003."""
        if self.closed:
            return
        if reason in REVOKED_REASONS:  # the frame that found it gets no answer: the client fails it on close
            await self.send({"type": "revoked", "reason": reason})
            await self.close(CLOSE_POLICY)
        else:
            detail = {
                "signed_out": "the session was signed out",
                "password_changed": "the password changed: sign in again",
                "recovered": "the account was recovered: sign in again",
            }.get(reason, "the session expired: sign in again")
            await self.send(ProtocolError("session_expired", detail, request_id=request_id).to_frame())
            await self.close(CLOSE_SESSION_ENDED)

    async def check_session(self, request_id: str | None = None) -> bool:
        """True while the session holds (for a delivery connection: while its device is not revoked);
        otherwise end the connection and return False."""
        if self.principal.deliver_only:
            reason = await self.services.accounts.delivery_ended(self.school_id, self.device_id)
        else:
            reason = "session_expired" if now_ms() >= self.expires_ms else None
            reason = reason or await self.services.accounts.session_ended(self.session)
        if reason is None:
            return True
        await self.end(reason, request_id)
        return False

    async def close(self, code: int) -> None:
        if not self.closed:
            self.closed = True
            self._wake.set()
            try:
                await self.ws.close(code)
            except RuntimeError:
                pass

    # --- the read loop ---------------------------------------------------------------------------

    async def serve(self) -> None:
        if not self.principal.deliver_only:  # a delivery connection reads nothing
            self.keys = await self.services.storage.readable_keys(self.school_id, self.user_id)
        pusher = asyncio.create_task(self._push_loop(), name="cairn-push")
        watcher = asyncio.create_task(self._watch_session(), name="cairn-session")
        try:
            while not self.closed:
                text = await self._receive()
                if text is None:
                    break
                request_id = None
                try:
                    message = parse_client(text)
                    request_id = message.id
                    if not await self.check_session(request_id):
                        break
                    await self._handle(message)
                except ProtocolError as exc:
                    exc.request_id = exc.request_id or request_id
                    await self.send(exc.to_frame())
        finally:
            self.closed = True
            pusher.cancel()
            watcher.cancel()

    async def _watch_session(self) -> None:
        """Close at the session's expiry, and re-check it now and then meanwhile."""
        while not self.closed:
            wait_ms = min(self.expires_ms - now_ms(), SESSION_RECHECK_SECONDS * 1000)
            if wait_ms > 0:
                await asyncio.sleep(wait_ms / 1000)  # a timer, not a poll: the hub ends the socket at once
            if not await self.check_session():
                return

    async def _receive(self) -> str | bytes | None:
        """The next frame, text or binary (which ``parse_client`` refuses with one ``malformed_frame``)."""
        try:
            message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        return _frame(message)

    async def _handle(self, message: Auth | Deliver | Put | Pull | Ping) -> None:
        if isinstance(message, Ping):
            await self.send({"type": "pong", "id": message.id, "server_time_ms": now_ms()})
        elif isinstance(message, Put):
            await self._put(message)
        elif isinstance(message, Pull):
            if self.principal.deliver_only:
                raise ProtocolError("deliver_only", "a delivery connection reads nothing", request_id=message.id)
            await self._pull(message)
        else:
            raise ProtocolError(
                "already_authenticated", "this connection is already authenticated", request_id=message.id
            )

    async def _put(self, message: Put) -> None:
        items = await asyncio.to_thread(self._verify_all, message.envelopes, message.id)
        acks = await self.services.ingestor.submit(self.school_id, self.device_id, items)
        point("sync.before_ack")
        await self.send(
            {
                "type": "ack",
                "id": message.id,
                "results": [
                    {
                        "envelope_id": b64e(a.envelope_id),
                        "seq": a.seq,
                        "server_time_ms": a.server_time_ms,
                        "duplicate": a.duplicate,
                    }
                    for a in acks
                ],
            }
        )

    def _verify_all(self, raws: tuple[bytes, ...], request_id: str) -> list[Incoming]:
        """Parse and verify every envelope of a put (in a worker thread: PyNaCl releases the GIL)."""
        items = []
        for index, raw in enumerate(raws):
            where = {"envelopes": f"item {index}"}
            try:
                parsed = env.verify(raw, self.principal.device_pk)
            except CryptoError as exc:
                code = _CRYPTO_CODES.get(exc.code, "malformed_envelope")
                raise ProtocolError(code, f"envelope {index}: {exc}", where, request_id) from None
            h = parsed.header
            if h.school_id != self.school_id:
                raise ProtocolError("wrong_school", f"envelope {index} names another school", where, request_id)
            if h.author_device != self.device_id:
                raise ProtocolError(
                    "wrong_device", f"envelope {index} was written by another device", where, request_id
                )
            items.append(Incoming(raw, parsed, env.envelope_hash(raw)))
        return items

    async def _pull(self, message: Pull) -> None:
        since = decode_cursor(message.cursor)
        top = await self.services.storage.last_seq(self.school_id)
        if since > top:
            raise ProtocolError("invalid_cursor", "the cursor is ahead of this school's records", request_id=message.id)
        if message.backfill:
            await self._backfill(message, since)
            return
        async with self._position_lock:
            self.keys = await self.services.storage.readable_keys(self.school_id, self.user_id)
            page = await self.services.storage.pull_since(self.school_id, self.keys, since, message.limit)
            if page.done:
                self.live_seq = page.cursor_seq if self.live_seq is None else max(self.live_seq, page.cursor_seq)
                self._wake.set()
            await self.send(
                items_frame(_rows(page.items), encode_cursor(page.cursor_seq), done=page.done, request_id=message.id)
            )

    async def _backfill(self, message: Pull, since: int) -> None:
        """A pull naming keys the device holds and has not read from the beginning: a page of what they open
        after the cursor, like any page. It moves neither the connection's push position nor its liveness."""
        async with self._position_lock:  # pushes from now on carry what the named keys open
            self.keys = await self.services.storage.readable_keys(self.school_id, self.user_id)
        only = ReadableKeys(None, frozenset(message.keys), frozenset(message.entry_keys))
        if not self.keys.covers(only):
            fields = {f"keys[{n}]": "not_granted" for n, k in enumerate(message.keys) if k not in self.keys.reader_keys}
            fields |= {
                f"entry_keys[{n}]": "not_granted"
                for n, k in enumerate(message.entry_keys)
                if k not in self.keys.entry_keys
            }
            raise ProtocolError("not_granted", "this user holds no current grant of some of these keys", fields,
                                message.id)
        page = await self.services.storage.pull_since(self.school_id, only, since, message.limit, backfill=True)
        await self.send(
            items_frame(_rows(page.items), encode_cursor(page.cursor_seq), done=page.done, request_id=message.id)
        )

    async def _push_loop(self) -> None:
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            async with self._position_lock:
                await self._catch_up()

    async def _catch_up(self) -> None:
        """Push everything readable after ``live_seq``: from the commits in memory when they follow on
        and carry every item they numbered, from storage otherwise (a gap: a commit heard before the
        device was live, or a dropped buffer; or a commit of another instance, heard with no items)."""
        while self.live_seq is not None and not self.closed:
            commit = self._commits.pop(0) if self._commits else None
            if commit is not None and commit.after <= self.live_seq:
                continue
            if (
                commit is not None
                and commit.before == self.live_seq
                and len(commit.items) == commit.after - commit.before
            ):
                items = [i for i in commit.items if self.keys.allows(i.recipients, i.concern)]
                self.live_seq = commit.after
            elif commit is not None or self.live_seq < self._top:
                page = await self.services.storage.pull_since(
                    self.school_id, self.keys, self.live_seq, LIMITS["max_pull_limit"]
                )
                items, self.live_seq = page.items, page.cursor_seq
                if commit is not None and commit.after > self.live_seq:
                    self._commits.insert(0, commit)
            else:
                break
            chunks = _chunks(items)
            for n, chunk in enumerate(chunks):
                point("sync.before_push")
                cursor = self.live_seq if n == len(chunks) - 1 else chunk[-1].seq
                await self.send(items_frame(_rows(chunk), encode_cursor(cursor)))


def _frame(message: Message) -> str | bytes:
    """A received websocket message's frame: its text, or its bytes (which the codec refuses)."""
    return message["text"] if message.get("text") is not None else message.get("bytes") or b""


def _chunks(items: list[StoredItem]) -> list[list[StoredItem]]:
    """Split a push so no frame passes max_page_bytes or max_pull_limit items (a group commit can hold
    thousands of envelopes); each chunk but the last carries the cursor after its own last item."""
    chunks: list[list[StoredItem]] = []
    size = 0
    for item in items:
        cost = len(item.body) * 4 // 3 + 64
        if not chunks or size + cost > LIMITS["max_page_bytes"] or len(chunks[-1]) >= LIMITS["max_pull_limit"]:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += cost
    return chunks


def _rows(items: list[StoredItem]) -> Iterator[tuple[int, int, bytes]]:
    return ((i.seq, i.server_time_ms, i.body) for i in items)


async def sync_endpoint(ws: WebSocket) -> None:
    services = ws.app.state.services
    await ws.accept()
    nonce = os.urandom(32)
    await ws.send_text(
        frame({"type": "challenge", "nonce": b64e(nonce), "server_time_ms": now_ms(), "protocol": PROTOCOL_VERSION})
    )
    try:
        principal = await asyncio.wait_for(_authenticate(ws, services, nonce), LIMITS["auth_timeout_seconds"])
    except TimeoutError:
        await ws.send_text(ProtocolError("not_authenticated", "no auth frame in time").to_frame())
        await ws.close(CLOSE_POLICY)
        return
    if principal is None:
        return
    if isinstance(principal, Auth):  # a revoked device: hold what it never sent, then close
        await hand_over(ws, services, principal, nonce)
        try:
            await ws.close(CLOSE_POLICY)
        except (RuntimeError, WebSocketDisconnect):
            pass
        return
    connection = SyncConnection(ws, services, principal)
    for old in services.hub.add(connection):
        await old.close(CLOSE_REPLACED)
    if not await connection.check_session(principal.request_id):  # ended between its auth and joining the hub
        services.hub.remove(connection)
        return
    action = "sync.deliver" if principal.deliver_only else "sync.connect"
    await services.audit(principal.school_id, action, user=principal.user_id, device=principal.device_id)
    await connection.send(
        {
            "type": "ready",
            "id": principal.request_id,
            "school_id": b64e(principal.school_id),
            "user_id": b64e(principal.user_id),
            "device_id": b64e(principal.device_id),
            "roles": sorted(principal.roles),
            "limits": LIMITS,
            **({"deliver_only": True} if principal.deliver_only else {}),
        }
    )
    try:
        await connection.serve()
    finally:
        services.hub.remove(connection)


async def _authenticate(ws: WebSocket, services, nonce: bytes) -> Principal | Auth | None:  # type: ignore[no-untyped-def]
    """Read frames until a valid auth; anything else is refused. Failed auth closes the socket; a revoked
    device's auth is returned as it came (the caller takes its hand-over)."""
    while True:
        try:
            received = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if received["type"] == "websocket.disconnect":
            return None
        message = None
        try:
            message = parse_client(_frame(received))
            if isinstance(message, Deliver):
                return await services.accounts.authenticate_delivery(message, nonce)
            if not isinstance(message, Auth):
                raise ProtocolError("not_authenticated", "authenticate first", request_id=message.id)
            return await services.accounts.authenticate_device(message, nonce)
        except ProtocolError as exc:
            await ws.send_text(exc.to_frame())
            if exc.code == "device_revoked" and isinstance(message, Auth):
                return message  # the caller takes what it wrote offline, to be held for a DSL, then closes
            if exc.code in ("auth_failed", "session_expired", "device_revoked", "unsupported_protocol"):
                await ws.close(CLOSE_POLICY)
                return None
