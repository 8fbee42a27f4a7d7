"""A real server for fuzzing over sockets: uvicorn on a loopback port, on an event loop of its own in a
background thread (so hypothesis drives it from plain synchronous tests), a fictional school built through
the real client code, and a trap on the server's log that keeps every traceback and every ERROR line.

The school is tests/server/harness.py's (a DSL who is admin and safeguarding, two classes of three pupils,
a teacher each), plus a contributor whose device was revoked with an envelope still unsent, so the
hand-over path (docs/PROTOCOL.md 9.7) can be fuzzed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import traceback
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import select
from sqlmodel import SQLModel

from sync.protocol import b64e
from tests.server.conftest import postgres_database
from tests.server.harness import Member, Running, School, build_school, running_server

__all__ = ["LogTrap", "LiveFuzz", "live_fuzz", "CHURN_TABLES"]

T = TypeVar("T")

# Tables a refused request may change by design: the audit trail, sign-in challenges (single use) and
# failed attempts (counted towards the limit), and the approvals list (made when it is first read).
CHURN_TABLES = frozenset({"audit_events", "challenges", "sign_in_attempts", "pending_grants"})


class LogTrap(logging.Handler):
    """Keeps every log record at ERROR or above, and every record that carries a traceback, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []
        self._lock_bad = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        traced = record.exc_info or record.stack_info or "Traceback" in record.getMessage()
        if record.levelno >= logging.ERROR or traced:
            text = f"{record.levelname} {record.name}: {record.getMessage()}"
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            with self._lock_bad:
                self.bad.append(text)

    @contextlib.contextmanager
    def installed(self) -> Iterator[LogTrap]:
        root = logging.getLogger()
        root.addHandler(self)
        try:
            yield self
        finally:
            root.removeHandler(self)

    def since(self, mark: int) -> list[str]:
        """What was kept after the first ``mark`` records (``len(trap.bad)`` taken earlier)."""
        with self._lock_bad:
            return self.bad[mark:]

    def tracebacks(self) -> int:
        return sum(1 for text in self.bad if "Traceback" in text)


class LiveFuzz:
    """What the fuzz tests reach: the server's addresses, the school and its known ids, the revoked device.
    (A plain class, not a dataclass: hypothesis prints a failing case's arguments, and this one briefly.)"""

    def __init__(self, running: Running, school: School, revoked: Member, loop: asyncio.AbstractEventLoop,
                 trap: LogTrap, known: dict[str, list[bytes]]) -> None:
        self.running, self.school, self.revoked, self.loop, self.trap, self.known = (
            running, school, revoked, loop, trap, known
        )

    def __repr__(self) -> str:
        return f"LiveFuzz({self.base})"

    @property
    def base(self) -> str:
        return self.running.base

    @property
    def ws_url(self) -> str:
        return self.running.ws_url

    @property
    def dsl(self) -> Member:
        return self.school.dsl

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def another_revoked(self) -> Member:
        """A device hands over once (PROTOCOL 9.7): each later hand-over connection of the fuzz is made by a
        revoked device of its own."""
        self.revocations = getattr(self, "revocations", 0) + 1
        self.revoked = self.run(_revoked(self.school, f"lunch-revoked-{self.revocations}"))
        return self.revoked

    def digest(self) -> str:
        """A hash of every row of every table but CHURN_TABLES: equal before and after a refused request."""
        return self.run(self._digest())

    async def _digest(self) -> str:
        h = hashlib.sha256()
        async with self.running.services.engine.connect() as conn:
            for name, table in sorted(SQLModel.metadata.tables.items()):
                if name in CHURN_TABLES:
                    continue
                rows = (await conn.execute(select(table))).all()
                h.update(name.encode() + repr(sorted(repr(tuple(r)) for r in rows)).encode())
        return h.hexdigest()


async def _revoked(school: School, login: str) -> Member:
    """A contributor whose device was revoked with an envelope still unsent."""
    revoked = await school.invite(login, ["contributor"])
    await revoked.device.refresh()
    revoked.device.write(revoked.outbox, b"fictional: written before the device was revoked",
                         pupil_ids=[school.pupils[0]])
    await school.dsl.device.call("POST", "/api/v1/devices/revoke", device_id=b64e(revoked.device.device_id))
    await school.dsl.device.refresh()
    return revoked


async def _build(running: Running, http: httpx.AsyncClient, folder: Path) -> tuple[School, Member, dict]:
    school = await build_school(running, http, folder)
    revoked = await _revoked(school, "lunch-revoked")
    directory = school.dsl.device.directory
    from sync.protocol import b64d

    teachers = [m.device.user_id for name, m in school.members.items() if name.startswith("teacher-")]
    known = {
        "pupils": list(school.pupils),
        "classes": [b64d(c["id"], "id") for c in directory["classes"]],
        "reader_keys": sorted({b64d(k["id"], "id") for k in directory["reader_keys"]}),
        "teachers": teachers,
        "devices": [revoked.device.device_id],
        "school": [school.school_id],
        "dsl": [school.dsl.device.user_id],
    }
    return school, revoked, known


@contextlib.contextmanager
def live_fuzz(database: str, folder: Path) -> Iterator[LiveFuzz]:
    """Start the server on ``database`` (``sqlite``: a file in ``folder``; ``postgres``: a database of its own,
    dropped afterwards) and build the school. The log trap is installed first, so set-up is checked too."""
    trap = LogTrap()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="cairn-fuzz-server", daemon=True)
    stack = contextlib.AsyncExitStack()

    async def start() -> LiveFuzz:
        if database == "sqlite":
            url = f"sqlite+aiosqlite:///{folder}/cairn.db"
        else:
            url = await stack.enter_async_context(postgres_database())
        running = await stack.enter_async_context(running_server(url))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=running.base, timeout=60))
        school, revoked, known = await _build(running, http, folder)
        return LiveFuzz(running, school, revoked, loop, trap, known)

    async def stop(live: LiveFuzz) -> None:
        for member in [live.school.dsl, *live.school.members.values()]:
            if member.client is not None:
                await member.client.close()
            member.outbox.close()
        await stack.aclose()

    with trap.installed():
        thread.start()
        try:
            live = asyncio.run_coroutine_threadsafe(start(), loop).result(300)
            try:
                yield live
            finally:
                asyncio.run_coroutine_threadsafe(stop(live), loop).result(120)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
