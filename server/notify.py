"""Several app instances on one PostgreSQL database: commits and revocations reach every instance through
LISTEN/NOTIFY (docs/ARCHITECTURE.md, Storage and scale).

The instance that commits tells its own hub at once, with the items, and then NOTIFYs ``cairn_commits``
with the school id and the sequence numbers before and after. The NOTIFY is sent by a task of its own,
so the next group commit does not wait for it; commits of a school made while one is being sent go in
the next, as one range (a notification only says "look in storage", so a range stands for them all).
Every other instance passes that to its hub with no items, and each of its connections reads what its
user may read from storage. Ending sessions (a revocation, a sign-out, a recovery, a password change)
NOTIFYs ``cairn_revocations`` with the school, device and user ids, the session (its token hash) and the
one session kept (each or ``-``) and the reason, and every instance closes the matching sockets. A grant
stored for a user, and a new signed directory version, NOTIFY ``cairn_notices`` (``grants`` with the school
and user ids; ``directory`` with the school id and the version), and every instance tells the sockets
concerned (``Hub.granted``, ``Hub.directory_signed``).
Payloads carry ids and numbers, never content. An instance ignores its own notifications (it acted on
them already).

Nothing here is state a restart would lose: a notification only says "look in storage". One can be
missed: an instance may stop between its commit and its NOTIFY, and a listener may be reconnecting when
it is sent. So each instance also catches up on its own: every ``catch_up_seconds`` it reads the last
committed seq of each school with a socket open here (one query for them all) and, where that is past
the highest it has heard of (its own commits and every notification), tells its hub, whose connections
read the gap from storage. A push missed between commit and NOTIFY thus reaches every live reader within
that interval; a connection already at the newest seq does nothing. After a reconnect of the listener,
every school with a socket here is told at once. SQLite is one instance, and has no Notifier.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from collections.abc import Coroutine

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .hub import REASONS, Hub
from .storage import Storage

__all__ = ["Notifier", "COMMITS", "REVOCATIONS", "NOTICES"]

log = logging.getLogger("cairn.notify")

COMMITS = "cairn_commits"
REVOCATIONS = "cairn_revocations"
NOTICES = "cairn_notices"
_ID = r"[0-9a-f]{32}"  # a 16-byte id in hex
_COMMIT = re.compile(rf"(?P<instance>[0-9a-f]{{16}}) (?P<school>{_ID}) (?P<before>\d{{1,19}}) (?P<after>\d{{1,19}})")
_SESSION = r"[0-9a-f]{64}"  # a session's token hash in hex: it names the session, it cannot open it
_REVOCATION = re.compile(
    rf"(?P<instance>[0-9a-f]{{16}}) (?P<school>{_ID}) (?P<device>{_ID}|-) (?P<user>{_ID}|-)"
    rf" (?P<session>{_SESSION}|-) (?P<keep>{_SESSION}|-) (?P<reason>[a-z_]{{1,40}})"
)
_NOTICE = re.compile(
    rf"(?P<instance>[0-9a-f]{{16}}) (?P<school>{_ID}) (?:grants (?P<user>{_ID})|directory (?P<version>\d{{1,19}}))"
)
_RETRY_SECONDS = (0.1, 0.5, 1, 2, 5)


class Notifier:
    """One listening connection per instance (asyncpg), and NOTIFY through the engine's pool."""

    def __init__(self, engine: AsyncEngine, hub: Hub, storage: Storage, catch_up_seconds: float = 2.0) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("LISTEN/NOTIFY needs PostgreSQL; a SQLite server is one instance and needs no Notifier")
        if not catch_up_seconds > 0:
            raise ValueError("the catch-up interval must be a positive number of seconds")
        self.engine, self.hub, self.storage = engine, hub, storage
        self.catch_up_seconds = catch_up_seconds
        self._heard: dict[bytes, int] = {}  # school -> the highest seq this instance's hub was told of
        self._catcher: asyncio.Task[None] | None = None
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.instance = os.urandom(8).hex()
        self.connections = 0  # how many times the listener has connected: a test waits for a reconnect
        self.changed = asyncio.Condition()
        self._listener = None  # the asyncpg connection
        self._lost = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None
        self._untold: dict[bytes, tuple[int, int]] = {}  # school -> the range of commits not yet NOTIFYed
        self._wake_teller = asyncio.Event()
        self._teller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._stopping = False

    async def start(self) -> None:
        """Listen before the app serves (a failure here fails the start), then keep listening."""
        await self._listen()
        self._watch = asyncio.create_task(self._keep_listening(), name="cairn-notify")
        self._teller = asyncio.create_task(self._tell_commits(), name="cairn-notify-commits")
        self._catcher = asyncio.create_task(self._keep_catching_up(), name="cairn-notify-catch-up")

    async def stop(self) -> None:
        self._stopping = True
        if self._catcher is not None:
            self._catcher.cancel()
            await asyncio.gather(self._catcher, return_exceptions=True)
        if self._teller is not None:
            self._teller.cancel()
            await asyncio.gather(self._teller, return_exceptions=True)
            await self._send_untold()  # what was committed here is still told, if the database answers
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- telling the others ----------------------------------------------------------------------

    async def committed(self, school_id: bytes, before: int, after: int) -> None:
        """Queue a commit for the other instances; the teller task sends it (returns at once). This
        instance's hub has heard of it already."""
        self._hear(school_id, after)
        untold = self._untold.get(school_id)
        self._untold[school_id] = (min(untold[0], before), max(untold[1], after)) if untold else (before, after)
        self._wake_teller.set()

    async def _tell_commits(self) -> None:
        while True:
            await self._wake_teller.wait()
            self._wake_teller.clear()
            await self._send_untold()

    async def _send_untold(self) -> None:
        untold, self._untold = self._untold, {}
        if not untold:
            return
        payloads = [
            {"channel": COMMITS, "payload": f"{self.instance} {school.hex()} {before} {after}"}
            for school, (before, after) in untold.items()
        ]
        try:
            async with self.engine.begin() as conn:
                await conn.execute(text("SELECT pg_notify(:channel, :payload)"), payloads)
        except Exception:
            log.exception("telling the other instances of %d commits failed; they catch up later", len(payloads))

    async def ended(
        self,
        school_id: bytes,
        *,
        device_id: bytes | None = None,
        user_id: bytes | None = None,
        session: bytes | None = None,
        except_session: bytes | None = None,
        reason: str,
    ) -> None:
        """Tell the other instances to close the sockets of these sessions (as ``Hub.end``)."""
        fields = " ".join(v.hex() if v else "-" for v in (device_id, user_id, session, except_session))
        await self._notify(REVOCATIONS, f"{self.instance} {school_id.hex()} {fields} {reason}")

    async def granted(self, school_id: bytes, user_ids: set[bytes]) -> None:
        """Tell the other instances that grants for these users were stored (as ``Hub.granted``)."""
        if not user_ids:
            return
        payloads = [
            {"channel": NOTICES, "payload": f"{self.instance} {school_id.hex()} grants {user.hex()}"}
            for user in sorted(user_ids)
        ]
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_notify(:channel, :payload)"), payloads)

    async def directory_signed(self, school_id: bytes, version: int) -> None:
        """Tell the other instances that the school has a new signed directory version."""
        await self._notify(NOTICES, f"{self.instance} {school_id.hex()} directory {version}")

    async def _notify(self, channel: str, payload: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})

    # --- hearing them ----------------------------------------------------------------------------

    async def _listen(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._dsn, timeout=10)
        try:
            await conn.add_listener(COMMITS, self._on_commit)
            await conn.add_listener(REVOCATIONS, self._on_revocation)
            await conn.add_listener(NOTICES, self._on_notice)
        except BaseException:
            await conn.close()
            raise
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        self._listener = conn
        async with self.changed:
            self.connections += 1
            self.changed.notify_all()

    async def _keep_listening(self) -> None:
        """When the listening connection drops, connect again; then every school with a socket here catches
        up, in case a notification was missed meanwhile."""
        while not self._stopping:
            await self._lost.wait()
            if self._stopping:
                return
            log.warning("the LISTEN connection was lost; connecting again")
            for attempt in itertools.count():
                try:
                    await self._listen()
                    break
                except Exception:
                    log.exception("listening again failed")
                    await asyncio.sleep(_RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)])
            self._heard.clear()  # what was missed meanwhile is unknown: every school here is told
            try:
                await self.catch_up()
            except Exception as exc:
                log.warning("catching up after listening again failed (%s); the next round tries again",
                            type(exc).__name__)

    # --- catching up on what was not heard ---------------------------------------------------------

    def _hear(self, school_id: bytes, after: int) -> None:
        if after > self._heard.get(school_id, -1):
            self._heard[school_id] = after

    async def catch_up(self) -> int:
        """Tell the hub of every school with a socket here whose last committed seq is past what this
        instance heard (a school it has not heard of yet: at its last seq, which costs a connection
        already there nothing). Returns how many schools were told."""
        schools = self.hub.schools()
        for gone in self._heard.keys() - set(schools):  # no socket here any more: forget it
            del self._heard[gone]
        if not schools:
            return 0
        told = 0
        for school_id, top in (await self.storage.last_seqs(schools)).items():
            heard = self._heard.get(school_id)
            if heard is None or top > heard:
                self._hear(school_id, top)
                await self.hub.published(school_id, top if heard is None else heard, top, [])
                told += 1
        return told

    async def _keep_catching_up(self) -> None:
        """Every ``catch_up_seconds``, catch up: a push missed between a commit and its NOTIFY (an instance
        that died in between) reaches this instance's readers within the interval."""
        while not self._stopping:
            await asyncio.sleep(self.catch_up_seconds)
            try:
                await self.catch_up()
            except Exception as exc:  # the database is away for a moment: the next round tries again
                log.warning("catching up on commits failed (%s); trying again in %s s", type(exc).__name__,
                            self.catch_up_seconds)

    def _on_commit(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        match = _COMMIT.fullmatch(payload)
        if match is None:
            log.warning("ignoring a malformed %s notification", COMMITS)
            return
        if match["instance"] == self.instance:
            return
        school_id, before, after = bytes.fromhex(match["school"]), int(match["before"]), int(match["after"])
        self._hear(school_id, after)
        self._spawn(self.hub.published(school_id, before, after, []))

    def _on_revocation(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        match = _REVOCATION.fullmatch(payload)
        if match is None:
            log.warning("ignoring a malformed %s notification", REVOCATIONS)
            return
        if match["instance"] == self.instance:
            return
        device, user, session, keep = (
            bytes.fromhex(match[name]) if match[name] != "-" else None for name in ("device", "user", "session", "keep")
        )
        if match["reason"] not in REASONS:
            log.warning("ignoring a %s notification with an unknown reason", REVOCATIONS)
            return
        self._spawn(
            self.hub.end(
                bytes.fromhex(match["school"]),
                device_id=device,
                user_id=user,
                session=session,
                except_session=keep,
                reason=match["reason"],
            )
        )

    def _on_notice(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        match = _NOTICE.fullmatch(payload)
        if match is None:
            log.warning("ignoring a malformed %s notification", NOTICES)
            return
        if match["instance"] == self.instance:
            return
        school_id = bytes.fromhex(match["school"])
        if match["user"] is not None:
            self._spawn(self.hub.granted(school_id, {bytes.fromhex(match["user"])}))
        else:
            self._spawn(self.hub.directory_signed(school_id, int(match["version"])))

    def _spawn(self, work: Coroutine[object, object, object]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("acting on a notification failed", exc_info=task.exception())
