"""Fuzzing websocket frames over a real socket, on SQLite and PostgreSQL: before auth, after auth (with puts
of envelopes really signed by the device, to reach the checks after the signature) and in a revoked
device's hand-over. Every frame gets the answer the codec predicts, on a connection that stays open unless
the protocol closes it, and the server's log holds no traceback and no ERROR line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.live import LiveFuzz, live_fuzz
from tests.fuzz.sockets import (
    Sockets,
    check_hand_over_frame_on_socket,
    check_live_frame,
    check_pre_auth_frame,
    dsl_puts,
    socket_frames,
)

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request, tmp_path_factory) -> Iterator[LiveFuzz]:  # type: ignore[no-untyped-def]
    with live_fuzz(request.param, tmp_path_factory.mktemp("ws-fuzz")) as server:
        yield server
    assert not server.trap.bad, "the server logged:\n" + "\n".join(server.trap.bad)


@pytest.fixture(scope="module")
def sockets(live: LiveFuzz) -> Iterator[Sockets]:
    made = Sockets(live)
    yield made
    made.close()


def _clean(live: LiveFuzz) -> None:
    assert not live.trap.bad, "the server logged:\n" + "\n".join(live.trap.bad)


@FAST
@given(message=socket_frames)
def test_a_frame_before_auth_gets_the_codecs_answer(live: LiveFuzz, sockets: Sockets, message) -> None:  # type: ignore[no-untyped-def]
    check_pre_auth_frame(sockets, message)
    _clean(live)


@FAST
@given(data=st.data())
def test_a_frame_after_auth_gets_the_codecs_answer_and_the_connection_stays_open(  # type: ignore[no-untyped-def]
    live: LiveFuzz, sockets: Sockets, data
) -> None:
    check_live_frame(sockets, data.draw(st.one_of(socket_frames, socket_frames, dsl_puts(live))))
    _clean(live)


@FAST
@given(message=socket_frames)
def test_a_frame_of_a_revoked_devices_hand_over_gets_the_codecs_answer(  # type: ignore[no-untyped-def]
    live: LiveFuzz, sockets: Sockets, message
) -> None:
    check_hand_over_frame_on_socket(sockets, message)
    _clean(live)
