"""Websocket frames and cursors (sync/protocol.py): what a client or a server could send, hostile or broken."""

from __future__ import annotations

import json
import re

from hypothesis import strategies as st

from sync.protocol import (
    CLIENT_MESSAGES,
    ERROR_CODES,
    LIMITS,
    Auth,
    HandOver,
    Ping,
    ProtocolError,
    Pull,
    Put,
    b64e,
    decode_cursor,
    encode_cursor,
    parse_client,
    parse_hand_over,
    parse_server,
)

from .junk import NUMBERS, REQUEST_ID, TEXT, b64, b64_of, json_values, junk

__all__ = ["frame_objects", "frames", "cursors", "check_refusal", "check_client_frame", "check_hand_over_frame",
           "check_server_frame", "check_cursor"]


REQUEST_IDS = st.one_of(st.from_regex(REQUEST_ID, fullmatch=True), junk, st.just("x" * 65))
ISSUED_CURSORS = st.integers(0, 2**64 - 1).map(lambda n: "c1." + b64e(n.to_bytes(8, "big")))
CURSOR_VALUES = st.one_of(st.none(), ISSUED_CURSORS, TEXT, junk)
FIELD_VALUES: dict[str, st.SearchStrategy[object]] = {
    "id": REQUEST_IDS,
    "token": st.one_of(st.from_regex(r"[A-Za-z0-9_-]{20,128}", fullmatch=True), junk),
    "device_id": b64(16),
    "signature": b64(64),
    "protocol": st.one_of(st.just(1), NUMBERS, junk),
    "envelopes": st.one_of(
        st.lists(st.one_of(b64_of(st.integers(0, 600)), junk), min_size=0, max_size=6),
        st.integers(250, 260).map(lambda n: ["AAAA"] * n),
        junk,
    ),
    "cursor": CURSOR_VALUES,
    "limit": st.one_of(st.integers(-5, 600), NUMBERS, junk),
}
FIELDS_OF = {
    "auth": ("id", "token", "device_id", "signature", "protocol"),
    "put": ("id", "envelopes"),
    "hand_over": ("id", "envelopes"),
    "pull": ("id", "cursor", "limit"),
    "ping": ("id",),
}
TYPES = st.one_of(st.sampled_from(sorted(FIELDS_OF)), st.sampled_from(["challenge", "error", "PUT", ""]), junk)


@st.composite
def frame_objects(draw: st.DrawFn) -> dict[str, object]:
    """A frame's object: a type (known, unknown, or not a string at all), most of that type's fields with
    plausible or junk values, sometimes with fields missing or extra ones added."""
    kind = draw(TYPES)
    body: dict[str, object] = {}
    if draw(st.integers(0, 9)):
        body["type"] = kind
    names = FIELDS_OF.get(kind, ()) if isinstance(kind, str) else ()
    for name in names:
        if draw(st.integers(0, 9)):  # now and then a field is missing
            body[name] = draw(FIELD_VALUES[name])
    for name in draw(st.lists(st.one_of(st.sampled_from(sorted(FIELD_VALUES)), TEXT), max_size=2)):
        body[name] = draw(FIELD_VALUES.get(name, junk))
    return body


def _dumps(value: object) -> str:
    return json.dumps(value, allow_nan=True)


frames = st.one_of(
    frame_objects().map(_dumps),
    frame_objects().map(_dumps),
    frame_objects().map(_dumps),
    json_values.map(_dumps),
    st.text(max_size=60),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: '{"type":' * n + "1" + "}" * n),
    frame_objects().map(_dumps).flatmap(lambda t: st.integers(0, max(len(t) - 1, 0)).map(lambda cut: t[:cut])),
)


def check_refusal(exc: ProtocolError) -> str:
    assert exc.code in ERROR_CODES, exc.code
    reply = json.loads(exc.to_frame())
    assert reply["type"] == "error" and reply["code"] == exc.code, reply
    assert reply["id"] is None or REQUEST_ID.fullmatch(reply["id"]), f"an error echoes a bad id {reply['id']!r:.80}"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in reply.get("fields", {}).items()), reply
    assert parse_server(exc.to_frame())["code"] == exc.code  # the client reads it back
    return exc.code


def _check_envelopes(envelopes: tuple[bytes, ...]) -> None:
    assert 1 <= len(envelopes) <= LIMITS["max_put_envelopes"]
    assert all(isinstance(e, bytes) and len(e) <= LIMITS["max_envelope_bytes"] for e in envelopes)


def check_client_frame(text: str | bytes) -> str:
    """``parse_client``: a typed message with valid fields, or a ProtocolError with a documented code."""
    try:
        message = parse_client(text)
    except ProtocolError as exc:
        return check_refusal(exc)
    assert type(message) in CLIENT_MESSAGES.values()
    assert REQUEST_ID.fullmatch(message.id)
    if isinstance(message, Auth):
        assert len(message.device_id) == 16 and len(message.signature) == 64 and message.protocol == 1
        assert re.fullmatch(r"[A-Za-z0-9_-]{20,128}", message.token)
    elif isinstance(message, Put):
        _check_envelopes(message.envelopes)
    elif isinstance(message, Pull):
        assert type(message.limit) is int and 1 <= message.limit <= LIMITS["max_pull_limit"]
        assert message.cursor is None or isinstance(message.cursor, str)
    else:
        assert isinstance(message, Ping)
    return "ok"


def check_hand_over_frame(text: str | bytes) -> str:
    """``parse_hand_over`` (a revoked device's only frame): a HandOver, or a documented refusal."""
    try:
        message = parse_hand_over(text)
    except ProtocolError as exc:
        return check_refusal(exc)
    assert isinstance(message, HandOver) and REQUEST_ID.fullmatch(message.id)
    _check_envelopes(message.envelopes)
    return "ok"


def check_server_frame(text: str) -> str:
    """``parse_server`` (the client's side): an object with a known type, or a documented refusal."""
    try:
        body = parse_server(text)
    except ProtocolError as exc:
        return check_refusal(exc)
    assert isinstance(body, dict) and isinstance(body["type"], str)
    return "ok"


# --- cursors -------------------------------------------------------------------------------------------

cursors = st.one_of(
    ISSUED_CURSORS,
    st.from_regex(r"c1\.[A-Za-z0-9_\-+/=]{9,13}", fullmatch=True),
    TEXT,
    junk,
)


def check_cursor(cursor: object) -> str:
    """``decode_cursor``: a position that encodes back to the same cursor, or ``invalid_cursor``."""
    try:
        seq = decode_cursor(cursor)  # type: ignore[arg-type]
    except ProtocolError as exc:
        assert exc.code == "invalid_cursor", exc.code
        return exc.code
    assert type(seq) is int and seq >= 0
    assert cursor is None or encode_cursor(seq) == cursor, f"{cursor!r} decodes to {seq}, which encodes otherwise"
    return "ok"

