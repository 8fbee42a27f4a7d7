"""Fuzzing the websocket codec (sync/protocol.py): every frame a client or server could send, hostile or
broken, gets a typed message or a ProtocolError with a documented code (docs/PROTOCOL.md 9.6), never
another exception. The same frames go over a real socket in tests/server/test_sync_ws_fuzz.py."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.fuzz.frames import (
    check_client_frame,
    check_cursor,
    check_hand_over_frame,
    check_server_frame,
    cursors,
    frames,
)

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(frames)
def test_parse_client_answers_every_frame_with_a_message_or_a_documented_code(text: str) -> None:
    check_client_frame(text)


@FAST
@given(frames)
def test_parse_hand_over_answers_every_frame_with_a_message_or_a_documented_code(text: str) -> None:
    check_hand_over_frame(text)


@FAST
@given(frames)
def test_parse_server_answers_every_frame_with_an_object_or_a_documented_code(text: str) -> None:
    check_server_frame(text)


@FAST
@given(cursors)
def test_a_cursor_decodes_to_a_position_that_encodes_back_or_is_invalid_cursor(cursor: object) -> None:
    check_cursor(cursor)
