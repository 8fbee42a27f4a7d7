"""Bad input gets an error frame with a stable code, changes nothing, and never a 500 or a traceback."""

from __future__ import annotations

import json
import logging
import os

import pytest

from crypto import SigningKey
from crypto import envelope as env
from sync.device import uuid7
from sync.outbox import ChainState
from sync.protocol import LIMITS, b64e, frame
from tests.server.harness import raw_socket

pytestmark = pytest.mark.asyncio


def _seal(device, chain: ChainState, **overrides):  # type: ignore[no-untyped-def]
    """An envelope from ``device`` with any field overridden, signed by ``overrides['key']`` if given."""
    args = dict(
        kind=env.KIND_CONCERN_EVENT,
        school_id=device.school_id,
        envelope_id=uuid7(),
        concern_id=os.urandom(16),
        author_device=device.device_key,
        author_device_id=device.device_id,
        counter=chain.counter + 1,
        prev_hash=chain.last_hash,
        device_time_ms=1_790_000_000_000,
        entry_key=__import__("crypto").SecretKey.generate(),
        entry_key_version=1,
        pupil_ids=[],
        recipients=device.recipients_for([]),
        content=b"fictional",
    )
    args.update(overrides)
    return env.seal(**args)


async def _send(ws, body) -> dict:  # type: ignore[no-untyped-def]
    await ws.send(body if isinstance(body, str) else frame(body))
    return json.loads(await ws.recv())


FRAMES = [
    ("not json", "{nope", "malformed_frame"),
    ("a json list", "[1, 2]", "malformed_frame"),
    ("no type", {"id": "1"}, "unknown_type"),
    ("unknown type", {"type": "delete_everything", "id": "1"}, "unknown_type"),
    (
        "a second auth",
        {
            "type": "auth",
            "id": "1",
            "token": "x" * 30,
            "device_id": b64e(bytes(16)),
            "signature": b64e(bytes(64)),
            "protocol": 1,
        },
        "already_authenticated",
    ),
    ("put without envelopes", {"type": "put", "id": "1"}, "invalid_field"),
    ("put with a number", {"type": "put", "id": "1", "envelopes": [42]}, "invalid_field"),
    ("put with bad base64", {"type": "put", "id": "1", "envelopes": ["***"]}, "invalid_field"),
    ("put with an unknown field", {"type": "put", "id": "1", "envelopes": ["AA"], "force": True}, "invalid_field"),
    ("put of garbage bytes", {"type": "put", "id": "1", "envelopes": [b64e(b"\x01\x01garbage")]}, "malformed_envelope"),
    (
        "put of an unknown version",
        {"type": "put", "id": "1", "envelopes": [b64e(b"\x09" + bytes(300))]},
        "unsupported_version",
    ),
    (
        "too many envelopes",
        {"type": "put", "id": "1", "envelopes": ["AA"] * (LIMITS["max_put_envelopes"] + 1)},
        "batch_too_large",
    ),
    ("pull with a string limit", {"type": "pull", "id": "1", "cursor": None, "limit": "10"}, "invalid_field"),
    ("pull with a huge limit", {"type": "pull", "id": "1", "cursor": None, "limit": 10**9}, "invalid_field"),
    (
        "pull with a forged cursor",
        {"type": "pull", "id": "1", "cursor": "c1.AAAAAAAAAP8", "limit": 10},
        "invalid_cursor",
    ),
    ("pull with a garbage cursor", {"type": "pull", "id": "1", "cursor": "anything", "limit": 10}, "invalid_cursor"),
    ("ping with a bad id", {"type": "ping", "id": "x" * 200}, "invalid_field"),
]


async def test_bad_frames_get_a_stable_error_and_store_nothing(school, caplog) -> None:
    caplog.set_level(logging.WARNING)
    ws = await raw_socket(school.running, school.dsl)
    for name, body, code in FRAMES:
        reply = await _send(ws, body)
        assert (reply["type"], reply["code"]) == ("error", code), (name, reply)
        pong = await _send(ws, {"type": "ping", "id": "still-open"})
        assert pong["type"] == "pong", name  # the connection survives a bad frame
    await ws.close()
    assert await school.running.services.storage.last_seq(school.school_id) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_oversize_frame_is_refused(school) -> None:
    ws = await raw_socket(school.running, school.dsl)
    reply = await _send(ws, frame({"type": "ping", "id": "x", "pad": "a" * (LIMITS["max_frame_bytes"] + 10)}))
    assert reply["code"] == "frame_too_large"
    await ws.close()


def _cases(school):  # type: ignore[no-untyped-def]
    dsl = school.dsl.device
    other_school_pupil = os.urandom(16)
    stranger = SigningKey.generate()
    unlisted = [(env.Recipient(env.RECIPIENT_READER_KEY, os.urandom(16), 1), os.urandom(32))]
    sen_only = [dsl.recipients_for([], groups=("group:sen",))[1]]
    chain = ChainState(0, bytes(32))
    return [
        ("signed by another key", _seal(dsl, chain, author_device=stranger), "bad_signature"),
        ("written by another device", _seal(dsl, chain, author_device_id=os.urandom(16)), "wrong_device"),
        ("for another school", _seal(dsl, chain, school_id=os.urandom(16)), "wrong_school"),
        (
            "sealed to an unlisted key",
            _seal(dsl, chain, recipients=dsl.recipients_for([]) + unlisted),
            "unknown_recipient",
        ),
        ("not sealed to safeguarding", _seal(dsl, chain, recipients=sen_only), "missing_safeguarding_recipient"),
        ("naming another school's pupil", _seal(dsl, chain, pupil_ids=[other_school_pupil]), "unknown_pupil"),
        ("skipping a counter", _seal(dsl, ChainState(5, bytes(32))), "chain_broken"),
        ("forking the chain", _seal(dsl, ChainState(0, os.urandom(32))), "chain_broken"),
    ]


async def test_bad_envelopes_are_refused_with_their_code_and_nothing_is_stored(school, caplog) -> None:
    caplog.set_level(logging.WARNING)
    ws = await raw_socket(school.running, school.dsl)
    for name, sealed, code in _cases(school):
        reply = await _send(ws, {"type": "put", "id": "p", "envelopes": [b64e(sealed)]})
        assert (reply["type"], reply.get("code")) == ("error", code), (name, reply)
    good = _seal(school.dsl.device, ChainState(0, bytes(32)))
    bad = _seal(school.dsl.device, ChainState(1, env.envelope_hash(good)), school_id=os.urandom(16))
    reply = await _send(ws, {"type": "put", "id": "p", "envelopes": [b64e(good), b64e(bad)]})
    assert reply["code"] == "wrong_school" and reply["fields"] == {"envelopes": "item 1"}
    await ws.close()
    assert await school.running.services.storage.last_seq(school.school_id) == 0  # the good one was not half-stored
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_frames_before_auth_are_refused_and_a_bad_token_closes_the_socket(running) -> None:
    from websockets.asyncio.client import connect

    async with connect(running.ws_url) as ws:
        json.loads(await ws.recv())
        reply = await _send(ws, {"type": "pull", "id": "1", "cursor": None, "limit": 1})
        assert reply["code"] == "not_authenticated"
        reply = await _send(
            ws,
            {
                "type": "auth",
                "id": "a",
                "token": "t" * 43,
                "device_id": b64e(bytes(16)),
                "signature": b64e(bytes(64)),
                "protocol": 1,
            },
        )
        assert reply["code"] == "session_expired"
        await ws.wait_closed()
        assert ws.close_code == 4001
