"""The sync protocol's messages, limits and error codes, shared by the server and the Python client.

docs/PROTOCOL.md part 2 is the prose of this module. Every frame is one UTF-8 JSON object with a
``type``; byte strings travel as unpadded base64url. ``parse_client`` and ``parse_server`` are the only
places frames are read; ``frame`` (and ``items_frame``, its fast path for pages and pushes) the only
places they are written.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PROTOCOL_VERSION",
    "LIMITS",
    "ERROR_CODES",
    "CLIENT_MESSAGES",
    "SERVER_MESSAGES",
    "ProtocolError",
    "Auth",
    "Deliver",
    "Put",
    "Pull",
    "Ping",
    "HandOver",
    "parse_client",
    "parse_hand_over",
    "parse_server",
    "frame",
    "items_frame",
    "b64e",
    "b64d",
    "decode_field",
    "encode_cursor",
    "decode_cursor",
]

PROTOCOL_VERSION = 1

LIMITS = {
    "max_frame_bytes": 4 * 1024 * 1024,
    "max_envelope_bytes": 1_050_000,
    "max_put_envelopes": 256,
    "max_pull_limit": 500,
    "max_backfill_keys": 64,
    "max_page_bytes": 3 * 1024 * 1024,
    "max_request_id_chars": 64,
    "keepalive_seconds": 20,
    "auth_timeout_seconds": 10,
}

# code -> what it means; docs/PROTOCOL.md lists each (a test keeps the two in step).
ERROR_CODES: dict[str, str] = {
    "malformed_frame": "the frame is not a JSON object, or not UTF-8",
    "frame_too_large": "the frame is larger than max_frame_bytes",
    "unknown_type": "the message type is not one this end accepts",
    "invalid_field": "a field is missing, of the wrong type or out of range (see fields)",
    "unsupported_protocol": "the client speaks a protocol version the server does not",
    "not_authenticated": "a message other than auth before authentication",
    "already_authenticated": "a second auth on an authenticated connection",
    "deliver_only": "a delivery connection may only put envelopes (and ping)",
    "auth_failed": "the session token, device or device signature is not valid",
    "session_expired": "the session has expired or was signed out",
    "device_revoked": "the device was revoked: the client wipes its local store",
    "batch_too_large": "more than max_put_envelopes envelopes in one put",
    "malformed_envelope": "an envelope does not parse (docs/PROTOCOL.md section 6)",
    "unsupported_version": "an envelope of an unknown version or kind",
    "bad_signature": "an envelope's signature does not verify against its author device",
    "wrong_school": "an envelope names another school",
    "wrong_device": "an envelope's author is not the authenticated device",
    "unknown_recipient": "an envelope is sealed to a reader key or person the directory does not list",
    "missing_safeguarding_recipient": "an envelope is not sealed to the safeguarding group's current key",
    "unknown_pupil": "an envelope names a pupil that is not in this school",
    "conflicting_id": "an envelope id already stored with different bytes",
    "chain_broken": "an envelope's counter or previous hash does not follow the device's last envelope",
    "invalid_cursor": "the cursor was not issued by this server for this school",
    "not_granted": "a backfill pull names a key this user holds no current grant for (see fields)",
    "hand_over_limit": "a revoked device's one hand-over is over, or would pass its caps (docs/PROTOCOL.md 9.7)",
    "rate_limited": "too many requests; retry after the given number of seconds",
    "internal_error": "the server failed; nothing was stored; retry",
}

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MAX_DEPTH = 16  # levels of arrays and objects in a frame; a real one has three


class ProtocolError(Exception):
    """A frame or field the receiver refuses; carries a stable ``code`` from ERROR_CODES."""

    def __init__(self, code: str, detail: str, fields: Mapping[str, str] | None = None, request_id: str | None = None):
        if code not in ERROR_CODES:
            raise ValueError(f"{code!r} is not a protocol error code")
        super().__init__(detail)
        self.code, self.detail, self.fields, self.request_id = code, detail, dict(fields or {}), request_id

    def to_frame(self) -> str:
        body: dict[str, Any] = {"type": "error", "id": self.request_id, "code": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        return frame(body)


_TO_URL = bytes.maketrans(b"+/", b"-_")
# base64url to base64; "+", "/" and "=" become "!", which strict decoding refuses like any other stray byte
_FROM_URL = bytes.maketrans(b"-_+/=", b"+/!!!")


def b64e(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_TO_URL).rstrip(b"=").decode("ascii")


def b64d(text: str, what: str) -> bytes:
    """Decode unpadded base64url (only ``A-Z a-z 0-9 - _``); anything else is ``invalid_field``."""
    if not isinstance(text, str) or len(text) % 4 == 1:
        raise ProtocolError("invalid_field", f"{what} is not unpadded base64url", {what: "not_base64url"})
    try:
        raw = text.encode("ascii").translate(_FROM_URL)
        return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)
    except (binascii.Error, ValueError):  # a non-ASCII character is a UnicodeEncodeError, a ValueError
        raise ProtocolError("invalid_field", f"{what} is not unpadded base64url", {what: "not_base64url"}) from None


def decode_field(
    errors: dict[str, str], name: str, value: Any, length: int | None = None, max_len: int | None = None
) -> bytes:
    """Decode one base64url field of a frame or request body, recording a per-field error code in
    ``errors`` (and returning b"") instead of raising, so every bad field is reported at once."""
    if not isinstance(value, str):
        errors[name] = "missing" if value is None else "invalid"
        return b""
    try:
        raw = b64d(value, name)
    except ProtocolError:
        errors[name] = "not_base64url"
        return b""
    if (length is not None and len(raw) != length) or (max_len is not None and len(raw) > max_len):
        errors[name] = f"must be {length} bytes" if length is not None else "too long"
    return raw


def encode_cursor(seq: int) -> str:
    """An opaque cursor for a position in a school's sequence (``c1.`` then the position)."""
    return "c1." + b64e(seq.to_bytes(8, "big"))


def decode_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not isinstance(cursor, str) or not cursor.startswith("c1.") or len(cursor) != 14:
        raise ProtocolError("invalid_cursor", "the cursor was not issued by this server")
    try:
        raw = b64d(cursor[3:], "cursor")
    except ProtocolError:
        raise ProtocolError("invalid_cursor", "the cursor was not issued by this server") from None
    seq = int.from_bytes(raw, "big")
    if len(raw) != 8 or encode_cursor(seq) != cursor:  # base64url has spare bits: only the issued spelling
        raise ProtocolError("invalid_cursor", "the cursor was not issued by this server")
    return seq


def frame(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True)


def items_frame(
    items: Iterable[tuple[int, int, bytes]], cursor: str, *, done: bool | None = None, request_id: str | None = None
) -> str:
    """A ``page`` (when ``done`` is given, answering ``request_id``) or a ``push`` of ``(seq,
    server_time_ms, envelope)`` items: the very text ``frame`` writes for it, built directly (no dict per
    item, no JSON escaping of base64url, which needs none), as pages are the server's largest frames."""
    entries = ",".join(
        f'{{"seq":{int(seq)},"server_time_ms":{int(at)},"envelope":"{b64e(envelope)}"}}' for seq, at, envelope in items
    )
    if done is None:
        return f'{{"type":"push","items":[{entries}],"cursor":{json.dumps(cursor)}}}'
    return (
        f'{{"type":"page","id":{json.dumps(request_id)},"items":[{entries}],'
        f'"cursor":{json.dumps(cursor)},"done":{json.dumps(done)}}}'
    )


@dataclass(frozen=True)
class Auth:
    """First frame from the client: the session token and the device's signature over the challenge."""

    id: str
    token: str
    device_id: bytes
    signature: bytes
    protocol: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class Deliver:
    """First frame of a delivery connection: a device's delivery proof (PROTOCOL 3.2), no session. The
    connection may only ``put`` envelopes the device key already signed (a shared tablet whose people are
    locked out still sends what they wrote)."""

    id: str
    device_id: bytes
    signature: bytes
    protocol: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class Put:
    """A batch of envelopes, in the device's outbox order."""

    id: str
    envelopes: tuple[bytes, ...] = field(repr=False)


@dataclass(frozen=True)
class Pull:
    """Ask for a page of readable envelopes after ``cursor`` (``None``: from the beginning). A backfill names
    ``keys`` (reader key versions: id, version) and ``entry_keys`` (entry key grants: concern id, version)
    the device holds but has not read from the beginning: its pages hold only what those open."""

    id: str
    cursor: str | None
    limit: int
    keys: tuple[tuple[bytes, int], ...] = ()
    entry_keys: tuple[tuple[bytes, int], ...] = ()

    @property
    def backfill(self) -> bool:
        return bool(self.keys or self.entry_keys)


@dataclass(frozen=True)
class Ping:
    id: str


CLIENT_MESSAGES: dict[str, type] = {"auth": Auth, "deliver": Deliver, "put": Put, "pull": Pull, "ping": Ping}
SERVER_MESSAGES = (
    "challenge", "ready", "ack", "page", "push", "pong", "revoked", "error", "held", "grants", "directory",
)


@dataclass(frozen=True)
class HandOver:
    """A revoked device's unsent envelopes, sent after its auth was refused with ``device_revoked``:
    the server holds them for a DSL to review (docs/PROTOCOL.md 9.7). Not a message of a live session."""

    id: str
    envelopes: tuple[bytes, ...] = field(repr=False)


class _Fields:
    """Reads one frame's fields, collecting per-field errors."""

    def __init__(self, body: Mapping[str, Any], allowed: set[str]) -> None:
        self.body, self.errors = body, {}
        self.request_id = _request_id(body)
        for name in body:
            if name not in allowed:
                self.errors[name] = "unknown_field"

    def str(self, name: str, pattern: re.Pattern[str] | None = None, optional: bool = False) -> Any:
        value = self.body.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            self.errors[name] = "missing" if value is None else "invalid"
            return ""
        return value

    def int(self, name: str, low: int, high: int) -> int:
        value = self.body.get(name)
        if type(value) is not int or not low <= value <= high:
            self.errors[name] = "missing" if value is None else f"must be an integer from {low} to {high}"
            return low
        return value

    def bytes(self, name: str, length: int | None = None) -> bytes:
        return decode_field(self.errors, name, self.body.get(name), length)

    def key_refs(self, name: str) -> tuple[tuple[bytes, int], ...]:
        """An optional list of ``{"id": 16 bytes, "version": u32 >= 1}`` (a backfill's keys), no repeats."""
        value = self.body.get(name)
        if value is None:
            return ()
        if not isinstance(value, list) or not 1 <= len(value) <= LIMITS["max_backfill_keys"]:
            self.errors[name] = f"a list of 1 to {LIMITS['max_backfill_keys']} keys"
            return ()
        refs = []
        for n, item in enumerate(value):
            where = f"{name}[{n}]"
            version = item.get("version") if isinstance(item, dict) else None
            if not isinstance(item, dict) or set(item) != {"id", "version"}:
                self.errors[where] = "must be an object with id and version"
            elif type(version) is not int or not 1 <= version <= 0xFFFFFFFF:
                self.errors[where] = "version must be an integer from 1 to 2^32 - 1"
            else:
                refs.append((decode_field(self.errors, where, item["id"], 16), version))
        if len(set(refs)) != len(refs):
            self.errors[name] = "repeats a key"
        return tuple(refs)

    def done(self) -> None:
        if self.errors:
            raise ProtocolError("invalid_field", "some fields are not valid", self.errors, self.request_id)


def _request_id(body: Mapping[str, Any]) -> str | None:
    """The frame's ``id`` when it is a valid request id, for the reply to carry; None otherwise (an error
    never echoes what the client should not have sent)."""
    value = body.get("id")
    return value if isinstance(value, str) and _REQUEST_ID.fullmatch(value) else None


def _kind(body: Mapping[str, Any]) -> str | None:
    """The frame's ``type`` when it is a string; None for anything else (a list or an object is unhashable,
    and is no type at all)."""
    value = body.get("type")
    return value if isinstance(value, str) else None


def _shown(kind: str | None) -> str:
    return "none" if kind is None else repr(kind[:40])


def _load(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        raise ProtocolError("malformed_frame", "frames are UTF-8 JSON text, not binary")
    if len(text) > LIMITS["max_frame_bytes"]:
        raise ProtocolError("frame_too_large", f"a frame is at most {LIMITS['max_frame_bytes']} bytes")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("malformed_frame", "the frame is not valid JSON") from None
    if not isinstance(body, dict):
        raise ProtocolError("malformed_frame", "a frame is a JSON object")
    if _deeper_than(body, MAX_DEPTH):
        raise ProtocolError("malformed_frame", f"a frame nests at most {MAX_DEPTH} levels of arrays and objects")
    return body


def _deeper_than(value: object, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels, walked without recursion. How deep
    json.loads itself can go depends on the caller's stack, so without this the same frame could be
    refused on one connection and read on another."""
    level: list[tuple[object, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                level.append((child, depth + 1))
    return False


def _envelopes(body: dict[str, Any]) -> tuple[str, tuple[bytes, ...]]:
    """The fields of a put (or a hand_over): an id and 1 to max_put_envelopes envelopes."""
    f = _Fields(body, {"type", "id", "envelopes"})
    rid = f.str("id", _REQUEST_ID)
    items = body.get("envelopes")
    envelopes: list[bytes] = []
    if not isinstance(items, list) or not items:
        f.errors["envelopes"] = "must be a non-empty list"
    elif len(items) > LIMITS["max_put_envelopes"]:
        raise ProtocolError(
            "batch_too_large", f"at most {LIMITS['max_put_envelopes']} envelopes in one put", request_id=f.request_id
        )
    else:
        for index, item in enumerate(items):
            try:
                raw = b64d(item, f"envelopes[{index}]")
            except ProtocolError:
                f.errors[f"envelopes[{index}]"] = "not_base64url"
                continue
            if len(raw) > LIMITS["max_envelope_bytes"]:
                f.errors[f"envelopes[{index}]"] = f"larger than {LIMITS['max_envelope_bytes']} bytes"
            envelopes.append(raw)
    f.done()
    return rid, tuple(envelopes)


def parse_client(text: str | bytes) -> Auth | Deliver | Put | Pull | Ping:
    """Parse and validate one frame from a client; any problem raises ProtocolError."""
    body = _load(text)
    kind = _kind(body)
    if kind not in CLIENT_MESSAGES:
        raise ProtocolError("unknown_type", f"unknown message type {_shown(kind)}", request_id=_request_id(body))
    if kind == "auth":
        f = _Fields(body, {"type", "id", "token", "device_id", "signature", "protocol"})
        msg: Auth | Deliver | Put | Pull | Ping = Auth(
            f.str("id", _REQUEST_ID),
            f.str("token", re.compile(r"^[A-Za-z0-9_-]{20,128}$")),
            f.bytes("device_id", 16),
            f.bytes("signature", 64),
            f.int("protocol", 1, 255),
        )
        f.done()
        if msg.protocol != PROTOCOL_VERSION:
            raise ProtocolError(
                "unsupported_protocol", f"this server speaks protocol {PROTOCOL_VERSION}", request_id=msg.id
            )
        return msg
    if kind == "deliver":
        f = _Fields(body, {"type", "id", "device_id", "signature", "protocol"})
        deliver = Deliver(f.str("id", _REQUEST_ID), f.bytes("device_id", 16), f.bytes("signature", 64),
                          f.int("protocol", 1, 255))
        f.done()
        if deliver.protocol != PROTOCOL_VERSION:
            raise ProtocolError(
                "unsupported_protocol", f"this server speaks protocol {PROTOCOL_VERSION}", request_id=deliver.id
            )
        return deliver
    if kind == "put":
        rid, envelopes = _envelopes(body)
        return Put(rid, envelopes)
    if kind == "pull":
        f = _Fields(body, {"type", "id", "cursor", "limit", "keys", "entry_keys"})
        msg = Pull(
            f.str("id", _REQUEST_ID),
            f.str("cursor", optional=True),
            f.int("limit", 1, LIMITS["max_pull_limit"]),
            f.key_refs("keys"),
            f.key_refs("entry_keys"),
        )
        if len(msg.keys) + len(msg.entry_keys) > LIMITS["max_backfill_keys"]:
            f.errors["keys"] = f"at most {LIMITS['max_backfill_keys']} keys and entry keys in one backfill"
        f.done()
        return msg
    f = _Fields(body, {"type", "id"})
    msg = Ping(f.str("id", _REQUEST_ID))
    f.done()
    return msg


def parse_hand_over(text: str | bytes) -> HandOver:
    """Parse a ``hand_over`` frame (the only frame a revoked device may send); same rules as ``put``."""
    body = _load(text)
    if _kind(body) != "hand_over":
        raise ProtocolError(
            "device_revoked", "this device was revoked: only hand_over is accepted", request_id=_request_id(body)
        )
    rid, envelopes = _envelopes(body)
    return HandOver(rid, envelopes)


def parse_server(text: str) -> dict[str, Any]:
    """Parse one frame from the server (the client's side); refuses unknown types."""
    body = _load(text)
    kind = _kind(body)
    if kind not in SERVER_MESSAGES:
        raise ProtocolError("unknown_type", f"unknown server message type {_shown(kind)}")
    return body
