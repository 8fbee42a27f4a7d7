"""The server never receives plaintext: unique markers written through the real client appear nowhere
on the server side — not in the database files (WAL included), not in any log line, not in any frame."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx
import pytest

from tests.server.harness import build_school, running_server

pytestmark = pytest.mark.asyncio


class FrameTap:
    """ASGI wrapper recording every websocket and HTTP message the server sends or receives."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app, self.seen = app, bytearray()

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        async def tapped_receive():  # type: ignore[no-untyped-def]
            message = await receive()
            self._record(message)
            return message

        async def tapped_send(message):  # type: ignore[no-untyped-def]
            self._record(message)
            await send(message)

        await self.app(scope, tapped_receive, tapped_send)

    def _record(self, message: dict) -> None:
        for key in ("text", "bytes", "body"):
            value = message.get(key)
            if isinstance(value, str):
                self.seen += value.encode()
            elif isinstance(value, (bytes, bytearray)):
                self.seen += value


def _forms(marker: str) -> list[bytes]:
    """The marker as it could leak: raw UTF-8, UTF-16, and inside base64 at each of three alignments."""
    import base64

    raw = marker.encode()
    forms = [raw, marker.encode("utf-16-le")]
    for shift in range(3):
        encoded = base64.urlsafe_b64encode(b"\0" * shift + raw).rstrip(b"=")
        forms.append(encoded[4 * ((shift + 2) // 3) + 2 : -2])
    return [f for f in forms if len(f) >= 8]


async def test_markers_never_reach_the_database_logs_or_frames(tmp_path: Path) -> None:
    markers = [f"MARKER-{os.urandom(8).hex()}-{kind}" for kind in ("narrative", "words", "category", "bodymap")]
    log_path = tmp_path / "server.log"
    handler = logging.FileHandler(log_path)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    taps: list[FrameTap] = []

    def wrap(app):  # type: ignore[no-untyped-def]
        taps.append(FrameTap(app))
        return taps[0]

    db = tmp_path / "cairn.db"
    try:
        async with running_server(f"sqlite+aiosqlite:///{db}", wrap=wrap) as running:
            async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
                school = await build_school(running, http, tmp_path)
                lunch = await school.invite("lunch-marker", ["contributor"])
                await lunch.device.refresh()
                for n, marker in enumerate(markers):
                    lunch.device.write(
                        lunch.outbox,
                        f'{{"seen": "{marker}", "n": {n}}}'.encode(),
                        pupil_ids=[school.pupils[n % len(school.pupils)]],
                        restricted=n == 3,
                    )
                await (await lunch.connect(running)).flush()
                dsl = await school.dsl.connect(running)
                await dsl.pull_all()
                assert len(school.dsl.outbox.inbox()) == len(markers)  # the markers did travel, sealed
                await dsl.close()
                await lunch.client.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    server_side = {p.name: p.read_bytes() for p in tmp_path.glob("cairn.db*")}
    assert "cairn.db" in server_side
    server_side["server.log"] = log_path.read_bytes()
    server_side["frames"] = bytes(taps[0].seen)
    assert len(server_side["frames"]) > 10_000 and len(server_side["server.log"]) > 0
    for marker in markers:
        for form in _forms(marker):
            for where, data in server_side.items():
                assert form not in data, f"{marker} found in {where}"
