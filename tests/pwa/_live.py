"""A real Cairn server and a small fictional school, run on an event loop of their own in a background thread,
so that Playwright's sync API can drive Chromium from the test's thread.

The school is built through the real client code (tests/server/harness.py): a DSL who founds the groups and the
staff roster key, two classes of three pupils, a roster sealed under the staff roster key with fictional names,
and a contributor (a lunchtime supervisor) who holds the roster key and nothing else. Used by the PWA tests and
by ``python -m bench.pwa``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from crypto import envelope as env
from sync.device import ROSTER_STAFF
from sync.events import Event, decode
from sync.protocol import b64d
from tests.server.harness import PASSWORD, Member, Running, School, build_school, running_server

T = TypeVar("T")

# Fictional pupils: made up for tests, never real children.
NAMES = {
    "oak": ["Ada Fernsby", "Bilal Hartwell", "Cora Linnet"],
    "ash": ["Dev Marrow", "Elsie Quillon", "Finn Ostrander"],
}
CONTRIBUTOR = "lunch-1"


@dataclass
class LiveSchool:
    running: Running
    school: School
    contributor: Member
    pupils: dict[str, bytes] = field(default_factory=dict)  # fictional name -> pupil id

    @property
    def base(self) -> str:
        return self.running.base

    @property
    def school_code(self) -> str:
        return self.school.school_id.hex()


class LiveServer:
    """Start with ``with LiveServer(folder) as live:``; ``live.run(coro)`` runs a coroutine on the server's loop."""

    def __init__(self, folder: Path, contributors: int = 1) -> None:
        self.folder, self.contributors = folder, contributors
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="cairn-live-server", daemon=True)
        self._stack: contextlib.AsyncExitStack | None = None
        self.school: LiveSchool | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> LiveSchool:
        self.thread.start()
        self.school = self.run(self._start())
        return self.school

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    async def _start(self) -> LiveSchool:
        self._stack = contextlib.AsyncExitStack()
        running = await self._stack.enter_async_context(
            running_server(f"sqlite+aiosqlite:///{self.folder}/cairn.db")
        )
        http = await self._stack.enter_async_context(httpx.AsyncClient(base_url=running.base, timeout=60))
        school = await build_school(running, http, self.folder)
        dsl = school.dsl.device
        await dsl.found_groups((ROSTER_STAFF,))
        await dsl.refresh()
        contributor = await school.invite(CONTRIBUTOR, ["contributor"])
        staff_key, version, _ = dsl.group_key(ROSTER_STAFF)
        await dsl.grant([(staff_key, version, contributor.device.user_id, contributor.device.identity.box.public)])
        pupils: dict[str, bytes] = {}
        entries = []
        for label, names in NAMES.items():
            for name, pupil in zip(names, school.classes[label], strict=True):
                pupils[name] = pupil
                entries.append((pupil, ROSTER_STAFF, json.dumps({"name": name, "class": label.title()}).encode()))
        await dsl.publish_roster(entries)
        return LiveSchool(running, school, contributor, pupils)

    async def _stop(self) -> None:
        assert self._stack is not None and self.school is not None
        school = self.school.school
        for member in [school.dsl, *school.members.values()]:
            if member.client is not None:
                await member.client.close()
            member.outbox.close()
        await self._stack.aclose()

    # --- what the DSL reads -------------------------------------------------------------------------

    def dsl_reads(self) -> list[tuple[env.Opened, Event]]:
        """Everything the DSL's Python device pulls and decrypts now: (opened envelope, decoded event)."""
        return self.run(self._dsl_reads())

    async def _dsl_reads(self) -> list[tuple[env.Opened, Event]]:
        assert self.school is not None
        dsl = self.school.school.dsl
        await dsl.device.refresh()
        devices = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in dsl.device.directory["devices"]}
        client = dsl.client or await dsl.connect(self.school.running)
        await client.pull_all()
        out = []
        for _, _, body in dsl.outbox.inbox():
            header = env.parse(body).header
            opened = env.open(body, devices[header.author_device], dsl.device.keyring())
            event = decode(
                opened.content,
                event_id=header.envelope_id,
                concern_id=header.concern_id,
                author_device=header.author_device,
                device_time_ms=header.device_time_ms,
            )
            out.append((opened, event))
        return out


@contextlib.contextmanager
def live_school(folder: Path) -> Iterator[tuple[LiveServer, LiveSchool]]:
    server = LiveServer(folder)
    with server as school:
        yield server, school


PASSWORD_FOR_TESTS = PASSWORD
