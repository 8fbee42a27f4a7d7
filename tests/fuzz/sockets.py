"""Frames over a real websocket (``/sync``), in the three states a connection can be in: before auth, after
auth (the DSL's device), and a revoked device's hand-over (docs/PROTOCOL.md 9.7). Each frame must get the
answer the codec predicts (the same code ``parse_client`` or ``parse_hand_over`` gives here, or the reply
of a valid request), on a connection that stays open unless the protocol says it closes (4001 after a
failed auth or a hand-over's end).
"""

from __future__ import annotations

import contextlib
import json
import os
import time

from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from crypto import SecretKey, sign_device_auth
from crypto import envelope as env
from sync.protocol import (
    ERROR_CODES,
    Auth,
    Ping,
    ProtocolError,
    Pull,
    Put,
    b64d,
    b64e,
    frame,
    parse_client,
    parse_hand_over,
)
from tests.server.harness import Member

from .frames import frames
from .junk import REQUEST_ID
from .live import LiveFuzz

__all__ = ["Sockets", "socket_frames", "dsl_puts", "check_pre_auth_frame", "check_live_frame",
           "check_hand_over_frame_on_socket"]

TIMEOUT = 20
# Before auth and in a hand-over the server waits at most auth_timeout_seconds (10) for a frame: a connection
# is made again before that, so an idle moment between tests is never taken for an answer.
FRESH_SECONDS = 5
CLOSES_AUTH = {"auth_failed", "session_expired", "device_revoked", "unsupported_protocol"}
PUT_CODES = {"malformed_envelope", "unsupported_version", "bad_signature", "wrong_school", "wrong_device",
             "unknown_recipient", "missing_safeguarding_recipient", "unknown_pupil", "conflicting_id", "chain_broken"}

# a frame as text, or now and then a binary frame (always malformed_frame)
socket_frames = st.one_of(frames, frames, frames, st.binary(max_size=64))


@st.composite
def dsl_puts(draw: st.DrawFn, live: LiveFuzz) -> str:
    """A put of envelopes really signed by the DSL's device, with drawn header fields: so the server's checks
    after the signature (school, device, recipients, pupils, chain) are reached too."""
    dsl = live.dsl.device
    items = []
    for _ in range(draw(st.integers(1, 3))):
        recipients = dsl.recipients_for([])
        if draw(st.booleans()):
            recipients = [(env.Recipient(env.RECIPIENT_READER_KEY, os.urandom(16), 1), os.urandom(32))]
        pupils = draw(st.lists(st.one_of(st.sampled_from(live.known["pupils"]), st.binary(min_size=16, max_size=16)),
                               max_size=2, unique=True))
        items.append(env.seal(
            kind=env.KIND_CONCERN_EVENT,
            school_id=draw(st.sampled_from([dsl.school_id, dsl.school_id, os.urandom(16)])),
            envelope_id=os.urandom(16), concern_id=os.urandom(16), author_device=dsl.device_key,
            author_device_id=draw(st.sampled_from([dsl.device_id, dsl.device_id, os.urandom(16)])),
            counter=draw(st.integers(1, 5)), prev_hash=draw(st.sampled_from([bytes(32), os.urandom(32)])),
            device_time_ms=draw(st.integers(0, 2**53 - 1)), entry_key=SecretKey.generate(), entry_key_version=1,
            pupil_ids=pupils, recipients=recipients, content=draw(st.binary(max_size=100)),
        ))
    return frame({"type": "put", "id": "p", "envelopes": [b64e(e) for e in items]})


def _auth_frame(member: Member, nonce: bytes) -> str:
    device = member.device
    proof = sign_device_auth(device.device_key, device.school_id, device.device_id, nonce)
    return frame({"type": "auth", "id": "a", "token": device.token, "device_id": b64e(device.device_id),
                  "signature": b64e(proof), "protocol": 1})


class Sockets:
    """One connection per state, reused from frame to frame and made again when the server closed it."""

    def __init__(self, live: LiveFuzz) -> None:
        self.live = live
        self._open: dict[str, ClientConnection] = {}
        self._made: dict[str, float] = {}
        self._stacks: dict[str, contextlib.ExitStack] = {}
        self.hand_over_frames = 0  # sent on the current hand-over connection
        self.hand_overs = 0  # hand-over connections made

    def __repr__(self) -> str:
        return f"Sockets({sorted(self._open)})"

    def _connect(self, state: str) -> ClientConnection:
        stack = self._stacks[state] = contextlib.ExitStack()
        ws = stack.enter_context(connect(self.live.ws_url, max_size=None, open_timeout=TIMEOUT))
        challenge = json.loads(ws.recv(TIMEOUT))
        assert challenge["type"] == "challenge", challenge
        nonce = b64d(challenge["nonce"], "nonce")
        if state == "live":
            ws.send(_auth_frame(self.live.dsl, nonce))
            assert json.loads(ws.recv(TIMEOUT))["type"] == "ready"
        elif state == "hand_over":
            revoked = self.live.another_revoked() if self.hand_overs else self.live.revoked  # once per device
            self.hand_overs += 1
            ws.send(_auth_frame(revoked, nonce))
            assert json.loads(ws.recv(TIMEOUT))["code"] == "device_revoked"
        return ws

    def get(self, state: str) -> ClientConnection:
        if state != "live" and time.monotonic() - self._made.get(state, 0.0) > FRESH_SECONDS:
            self.drop(state)
        if state not in self._open:
            self._open[state] = self._connect(state)
            self._made[state] = time.monotonic()
            if state == "hand_over":
                self.hand_over_frames = 0
        return self._open[state]

    def drop(self, state: str) -> None:
        self._open.pop(state, None)
        stack = self._stacks.pop(state, None)
        if stack is not None:
            stack.close()

    def close(self) -> None:
        for state in list(self._open):
            self.drop(state)

    def exchange(self, state: str, message: str | bytes) -> dict | None:
        """Send one frame and return the reply to it (pushes skipped); None when the server closed the
        connection instead of answering. A connection closed by the server is made again next time."""
        ws = self.get(state)
        self.hand_over_frames = self.hand_over_frames + 1 if state == "hand_over" else self.hand_over_frames
        try:
            ws.send(message)
            while True:
                reply = json.loads(ws.recv(TIMEOUT))
                if reply.get("type") != "push":
                    return reply
        except ConnectionClosed:
            self.drop(state)
            return None

    def closed_with(self, state: str) -> int | None:
        """Wait for the server to close this state's connection; its close code."""
        ws = self._open[state]
        try:
            while True:
                ws.recv(TIMEOUT)
        except ConnectionClosed:
            pass
        self.drop(state)
        return ws.close_code


def _predict(parse, message: str | bytes) -> tuple[object | None, ProtocolError | None]:  # type: ignore[no-untyped-def]
    try:
        return parse(message), None
    except ProtocolError as exc:
        return None, exc


def _check_error(reply: dict | None, expected: ProtocolError) -> str:
    assert reply is not None, f"the server closed the connection instead of answering {expected.code}"
    assert reply["type"] == "error" and reply["code"] == expected.code, (reply, expected.code)
    assert reply["id"] == expected.request_id, (reply, expected.request_id)
    return expected.code


def check_pre_auth_frame(sockets: Sockets, message: str | bytes) -> str:
    """Before auth: the codec's refusal, or not_authenticated for a valid non-auth frame; an auth that cannot
    succeed (the fuzzer holds no session) is refused and the socket closes with 4001."""
    parsed, refused = _predict(parse_client, message)
    reply = sockets.exchange("pre_auth", message)
    if refused is not None and refused.code not in CLOSES_AUTH:
        return _check_error(reply, refused)
    if parsed is not None and not isinstance(parsed, Auth):
        return _check_error(reply, ProtocolError("not_authenticated", "", request_id=parsed.id))
    assert reply is not None and reply["type"] == "error" and reply["code"] in CLOSES_AUTH, reply
    assert sockets.closed_with("pre_auth") == 4001
    return reply["code"]


def check_live_frame(sockets: Sockets, message: str | bytes) -> str:
    """After auth: the codec's refusal, or the reply of a valid request (pong, page, ack, or a documented
    refusal of a put or a pull); the connection stays open."""
    parsed, refused = _predict(parse_client, message)
    reply = sockets.exchange("live", message)
    if refused is not None:
        return _check_error(reply, refused)
    assert reply is not None, "the server closed an authenticated connection"
    assert reply.get("id") == parsed.id, (reply, parsed.id)  # type: ignore[union-attr]
    if isinstance(parsed, Auth):
        assert reply["code"] == "already_authenticated", reply
    elif isinstance(parsed, Ping):
        assert reply["type"] == "pong", reply
    elif isinstance(parsed, Pull):
        assert reply["type"] == "page" or reply.get("code") == "invalid_cursor", reply
    else:
        assert isinstance(parsed, Put)
        assert reply["type"] == "ack" or reply.get("code") in PUT_CODES, reply
    return reply["type"] if reply["type"] != "error" else reply["code"]


def check_hand_over_frame_on_socket(sockets: Sockets, message: str | bytes) -> str:
    """A revoked device's hand-over: the codec's refusal, or held, or a documented refusal of an envelope;
    after its frames the server closes with 4001."""
    parsed, refused = _predict(parse_hand_over, message)
    reply = sockets.exchange("hand_over", message)
    if reply is None:  # that hand-over ended (its window or its cap): the next device's answers this frame
        reply = sockets.exchange("hand_over", message)
    assert reply is not None, "the server closed a hand-over instead of answering"
    if refused is not None:
        return _check_error(reply, refused)
    assert reply["type"] == "held" or (reply["type"] == "error" and reply["code"] in PUT_CODES), reply
    assert reply["id"] == parsed.id and REQUEST_ID.fullmatch(reply["id"])  # type: ignore[union-attr]
    return reply["type"] if reply["type"] != "error" else reply["code"]


assert PUT_CODES <= set(ERROR_CODES) and CLOSES_AUTH <= set(ERROR_CODES)
