"""``SyncClient``: a Python device on the ``/sync`` websocket, with a durable outbox.

The outbox is replayed in order, a batch at a time, with the same envelope ids after any failure: the
server's idempotency makes a replay of an already-stored envelope a plain ack. A refused envelope stays
at the head of the outbox, marked, and nothing behind it is sent past it. Pulled and pushed envelopes
land in the local store with the cursor, in one transaction. ``run`` reconnects with backoff.

Nothing a device may read is left behind when its keys arrive late: the client knows (``keys``) which key
versions and entry keys the device holds, notes which of them its pulls covered from the beginning, and
**backfills** the others (a ``pull`` naming them, docs/PROTOCOL.md 9.5), after each pull to the end and
whenever the server says a grant arrived (``grants``, then ``on_grants`` opens it) or the directory moved
(``directory``, then ``on_directory`` follows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from crypto import SigningKey, sign_delivery_auth, sign_device_auth

from .outbox import Outbox
from .protocol import LIMITS, PROTOCOL_VERSION, ProtocolError, b64d, b64e, frame, parse_server

__all__ = ["SyncClient", "SyncError", "Revoked", "KeyRef", "READER_KEY", "ENTRY_KEY"]

log = logging.getLogger("cairn.client")

RETRYABLE = {"internal_error", "rate_limited"}
READER_KEY, ENTRY_KEY = "key", "entry"
KeyRef = tuple[str, bytes, int]  # (READER_KEY, reader key id, version) or (ENTRY_KEY, concern id, entry key version)


class SyncError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


class Revoked(SyncError):
    """The server revoked this device. Its local store is wiped when it next connects (after handing over
    what it never sent), which `connect` and `run` do."""


@dataclass
class SyncReport:
    sent: int = 0
    duplicates: int = 0
    received: int = 0
    refused: list[tuple[bytes, str]] = field(default_factory=list)


class SyncClient:
    def __init__(
        self,
        url: str,
        outbox: Outbox,
        *,
        school_id: bytes,
        device_id: bytes,
        device_key: SigningKey,
        token: str,
        keep_received: bool = True,
        batch_size: int = 128,
        on_received: Callable[[list[tuple[int, int, bytes]]], None] | None = None,
        keys: Callable[[], frozenset[KeyRef]] | None = None,
        on_grants: Callable[[], Awaitable[None]] | None = None,
        on_directory: Callable[[], Awaitable[None]] | None = None,
        delivery_key: SigningKey | None = None,
    ) -> None:
        """``delivery_key``: connect as a delivery connection (PROTOCOL 3.2) with the device's delivery key
        instead of a session: it can only send what the outbox holds, already sealed and signed."""
        self.url, self.outbox, self.school_id, self.device_id = url, outbox, school_id, device_id
        self.device_key, self.token, self.keep_received = device_key, token, keep_received
        self.delivery_key = delivery_key
        self.batch_size, self.on_received = min(batch_size, LIMITS["max_put_envelopes"]), on_received
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[dict]] = {}
        self._ids = itertools.count(1)
        self._closed_reason: SyncError | None = None
        self.live = asyncio.Event()
        self.handed_over = 0  # envelopes given to the server to hold when this device was found revoked
        self.keys, self.on_grants, self.on_directory = keys, on_grants, on_directory
        self.noticed = asyncio.Event()  # the server said a grant arrived or the directory moved
        self._notices: set[str] = set()

    # --- connection ------------------------------------------------------------------------------

    async def connect(self) -> dict:
        self._closed_reason = None
        try:
            self._ws = await connect(self.url, max_size=LIMITS["max_frame_bytes"] * 2, open_timeout=10)
        except InvalidHandshake as exc:  # a server that died mid-handshake answers no valid HTTP: as gone
            raise SyncError("connection_closed", f"the handshake failed: {type(exc).__name__}") from None
        challenge = parse_server(await self._ws.recv())
        if challenge.get("type") != "challenge":
            raise SyncError("malformed_frame", "the server did not start with a challenge")
        nonce = b64d(challenge["nonce"], "nonce")
        if self.delivery_key is not None:
            proof = sign_delivery_auth(self.delivery_key, self.school_id, self.device_id, nonce)
            first = {"type": "deliver", "id": "auth", "device_id": b64e(self.device_id), "signature": b64e(proof),
                     "protocol": PROTOCOL_VERSION}
        else:
            proof = sign_device_auth(self.device_key, self.school_id, self.device_id, nonce)
            first = {"type": "auth", "id": "auth", "token": self.token, "device_id": b64e(self.device_id),
                     "signature": b64e(proof), "protocol": PROTOCOL_VERSION}
        await self._ws.send(frame(first))
        ready = parse_server(await self._ws.recv())
        if ready["type"] == "error":
            if ready["code"] == "device_revoked" and self.delivery_key is None:  # a hand-over needs the device key
                self.handed_over = await self._hand_over()
                self.outbox.wipe()
                await self._ws.close()
                raise Revoked(ready["code"], ready["detail"])
            raise SyncError(ready["code"], ready["detail"])
        self._reader = asyncio.create_task(self._read(), name="cairn-client-read")
        return ready

    async def _hand_over(self) -> int:
        """Revoked: give the server what this device wrote and never sent, to be held for a DSL to review
        (docs/PROTOCOL.md 9.7), before the wipe. Returns how many envelopes the server took."""
        assert self._ws is not None
        count = 0
        try:
            for n in itertools.count():
                head = self.outbox.head(self.batch_size, LIMITS["max_frame_bytes"] - 4096)
                if not head:
                    break
                envelopes = [b64e(p.body) for p in head]
                await self._ws.send(frame({"type": "hand_over", "id": f"h{n}", "envelopes": envelopes}))
                reply = parse_server(await asyncio.wait_for(self._ws.recv(), LIMITS["auth_timeout_seconds"]))
                if reply["type"] != "held":
                    log.warning("the server refused a hand-over (%s); wiping anyway", reply.get("code"))
                    break
                self.outbox.acknowledged([p.envelope_id for p in head])
                count += len(head)
        except (ConnectionClosed, TimeoutError, ProtocolError, KeyError):
            log.warning("the hand-over was cut short; wiping anyway")
        return count

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        self._ws, self._reader = None, None
        self.live.clear()

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for text in self._ws:
                body = parse_server(text)
                kind = body["type"]
                if kind == "push":
                    self._store(body)
                elif kind in ("grants", "directory"):  # acted on by ``catch_up``, outside the read loop
                    self._notices.add(kind)
                    self.noticed.set()
                elif kind == "revoked":  # the wipe follows on reconnecting, after the hand-over
                    self._closed_reason = Revoked("device_revoked", body.get("reason", "revoked"))
                elif kind == "error" and body.get("code") == "session_expired":  # signed out or expired: closing
                    self._closed_reason = SyncError("session_expired", body.get("detail", "sign in again"))
                    if body.get("id") in self._waiting:
                        self._waiting.pop(body["id"]).set_exception(self._closed_reason)
                elif body.get("id") in self._waiting:
                    waiter = self._waiting.pop(body["id"])
                    if not waiter.done():  # a request given up on (a pull ahead of an error) is skipped
                        waiter.set_result(body)
                elif kind == "error":
                    log.warning("server error %s", body.get("code"))
        except ConnectionClosed:
            pass
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:  # a frame this client cannot read
            log.warning("closing the connection: unreadable frame from the server (%s)", type(exc).__name__)
            self._closed_reason = SyncError("malformed_frame", "the server sent a frame this client cannot read")
            await self._ws.close()
        finally:
            reason = self._closed_reason or SyncError("connection_closed", "the connection closed")
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(reason)
            self._waiting.clear()
            self.live.clear()

    async def _request(self, body: dict) -> dict:
        return await (await self._send(body))

    async def _send(self, body: dict) -> asyncio.Future[dict]:
        """Send a request; returns the future of its reply."""
        if self._ws is None or self._reader is None or self._reader.done():
            raise self._closed_reason or SyncError("connection_closed", "not connected")
        request_id = f"r{next(self._ids)}"
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            await self._ws.send(frame({**body, "id": request_id}))
        except ConnectionClosed:
            self._waiting.pop(request_id, None)
            future.cancel()
            raise self._closed_reason or SyncError("connection_closed", "the connection closed") from None
        return future

    def _store(self, body: dict, *, move_cursor: bool = True) -> None:
        items = [(i["seq"], i["server_time_ms"], b64d(i["envelope"], "envelope")) for i in body["items"]]
        self.outbox.received(items, body.get("cursor") if move_cursor else None, keep=self.keep_received)
        if self.on_received and items:
            self.on_received(items)

    # --- the work --------------------------------------------------------------------------------

    async def flush(self, report: SyncReport | None = None) -> SyncReport:
        """Send the outbox in order until it is empty or its head is refused."""
        report = report or SyncReport()
        while True:
            head = self.outbox.head(self.batch_size, LIMITS["max_frame_bytes"] - 4096)
            if not head:
                return report
            reply = await self._request({"type": "put", "envelopes": [b64e(p.body) for p in head]})
            if reply["type"] == "error":
                if reply["code"] in RETRYABLE:
                    raise SyncError(reply["code"], reply["detail"])
                index = _failed_index(reply, len(head))
                if index:
                    continue_with = head[:index]
                    await self._resend(continue_with, report)
                self.outbox.failed(head[index].position, reply["code"], reply["detail"])
                report.refused.append((head[index].envelope_id, reply["code"]))
                return report
            self.outbox.acknowledged([b64d(r["envelope_id"], "envelope_id") for r in reply["results"]])
            report.sent += sum(1 for r in reply["results"] if not r["duplicate"])
            report.duplicates += sum(1 for r in reply["results"] if r["duplicate"])

    async def _resend(self, items: list, report: SyncReport) -> None:
        """Send the items before a refused one on their own, so good entries are not held back."""
        reply = await self._request({"type": "put", "envelopes": [b64e(p.body) for p in items]})
        if reply["type"] == "ack":
            self.outbox.acknowledged([b64d(r["envelope_id"], "envelope_id") for r in reply["results"]])
            report.sent += sum(1 for r in reply["results"] if not r["duplicate"])

    async def pull_all(self, report: SyncReport | None = None, limit: int = LIMITS["max_pull_limit"]) -> SyncReport:
        """Pull pages from the stored cursor until the server says done; then pushes arrive live.

        The next page is asked for as soon as a page arrives, before that page is stored, so the server
        reads the next page while this device stores the last. Pages are stored in order, each with its
        cursor; if anything fails, the stored cursor is that of the last page stored."""
        report = report or SyncReport()
        start = self.outbox.cursor()
        held = self.keys() if self.keys is not None and start is None else None  # a pull from the beginning
        ask = await self._send({"type": "pull", "cursor": start, "limit": limit})
        try:
            while True:
                reply = await ask
                if reply["type"] == "error":
                    raise SyncError(reply["code"], reply["detail"])
                if not reply["done"]:
                    ask = await self._send({"type": "pull", "cursor": reply["cursor"], "limit": limit})
                self._store(reply)
                report.received += len(reply["items"])
                if reply["done"]:
                    if held is not None:  # it read everything these keys opened: nothing to backfill for them
                        self.outbox.cover(held)
                    self.live.set()
                    return report
        finally:
            if not ask.done():
                ask.cancel()  # a page asked for ahead and not wanted now: its reply is dropped on arrival
            elif not ask.cancelled():
                ask.exception()  # seen: a failure of the page asked for ahead is not logged as unhandled

    async def backfill(self, report: SyncReport | None = None, limit: int = LIMITS["max_pull_limit"]) -> SyncReport:
        """Pull, from the beginning, what the keys this device holds and has not pulled from the beginning
        open (docs/PROTOCOL.md 9.5: a ``pull`` naming them), a few dozen keys at a time; the stored cursor
        does not move. Each key is noted as covered once its backfill is done."""
        report = report or SyncReport()
        if self.keys is None:
            return report
        todo = sorted(self.keys() - self.outbox.covered())
        step = LIMITS["max_backfill_keys"]
        for start in range(0, len(todo), step):
            chunk = todo[start : start + step]
            while chunk:
                refused = await self._backfill_chunk(chunk, report, limit)
                if not refused:
                    self.outbox.cover(chunk)
                    break
                chunk = [k for k in chunk if k not in refused]  # not held now (dropped meanwhile): try the rest
        return report

    async def _backfill_chunk(self, chunk: list[KeyRef], report: SyncReport, limit: int) -> set[KeyRef]:
        """One backfill to its end; returns the keys the server refused (``not_granted``), having read nothing."""
        names = {
            "keys": [k for k in chunk if k[0] == READER_KEY],
            "entry_keys": [k for k in chunk if k[0] == ENTRY_KEY],
        }
        body: dict = {"type": "pull", "limit": limit}
        body |= {name: [{"id": b64e(i), "version": v} for _, i, v in refs] for name, refs in names.items() if refs}
        cursor = None
        while True:
            reply = await self._request({**body, "cursor": cursor})
            if reply["type"] == "error":
                if reply["code"] != "not_granted":
                    raise SyncError(reply["code"], reply["detail"])
                fields = reply.get("fields", {})
                return {ref for name, refs in names.items() for n, ref in enumerate(refs) if f"{name}[{n}]" in fields}
            self._store(reply, move_cursor=False)
            report.received += len(reply["items"])
            if reply["done"]:
                return set()
            cursor = reply["cursor"]

    async def catch_up(self, report: SyncReport | None = None) -> SyncReport:
        """Act on what the server said since the last call: follow the directory, open new grants (the
        callbacks), then backfill what the keys now held open."""
        self.noticed.clear()
        notices, self._notices = self._notices, set()
        for kind, act in (("directory", self.on_directory), ("grants", self.on_grants)):
            if kind in notices and act is not None:
                try:
                    await act()
                except Exception as exc:  # offline, refused or unverifiable: the next notice or refresh retries
                    log.warning("acting on the server's %s notice failed (%s)", kind, type(exc).__name__)
        return await self.backfill(report)

    async def sync(self) -> SyncReport:
        """Connect if needed, send everything queued, pull everything readable, backfill what keys arrived
        late."""
        if self._ws is None or self._reader is None or self._reader.done():
            await self.close()
            await self.connect()
        report = await self.flush()
        report = await self.pull_all(report)
        return await self.catch_up(report)

    async def run(self, stop: asyncio.Event, *, max_backoff: float = 30.0, poll_seconds: float = 15.0) -> None:
        """Stay in sync until ``stop`` is set: reconnect with jittered exponential backoff, flush new
        outbox items every ``poll_seconds``, and catch up at once when the server says a grant arrived or the
        directory moved."""
        delay = 0.2
        while not stop.is_set():
            try:
                await self.sync()
                delay = 0.2
                while not stop.is_set() and self._reader is not None and not self._reader.done():
                    await _first(stop, self.noticed, poll_seconds)
                    if self.noticed.is_set():
                        await self.catch_up()
                    await self.flush()
            except Revoked:
                await self.close()
                with contextlib.suppress(Revoked, SyncError, OSError, ConnectionClosed, TimeoutError):
                    await self.connect()  # refused with device_revoked: hand over what is unsent, then wipe
                raise
            except (OSError, SyncError, ConnectionClosed, TimeoutError) as exc:
                if isinstance(exc, SyncError) and exc.code in ("session_expired", "auth_failed"):
                    await self.close()  # retrying cannot help: the person signs in again
                    raise
                log.info("sync interrupted (%s); retrying in %.1fs", exc, delay)
                await self.close()
                with _suppress_timeout():
                    await asyncio.wait_for(stop.wait(), delay * (0.5 + random.random()))
                delay = min(max_backoff, delay * 2)
        await self.close()


async def _first(stop: asyncio.Event, noticed: asyncio.Event, seconds: float) -> None:
    """Wait until ``stop`` or ``noticed`` is set, or ``seconds`` pass."""
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(noticed.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


def _failed_index(reply: dict, count: int) -> int:
    """Which item of a put the server refused (its ``fields`` name ``item N``); 0 when unknown."""
    where = json.dumps(reply.get("fields", {}))
    for index in range(count - 1, -1, -1):
        if f'item {index}"' in where:
            return index
    return 0


class _suppress_timeout:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, tb) -> bool:  # type: ignore[no-untyped-def]
        return kind is TimeoutError
