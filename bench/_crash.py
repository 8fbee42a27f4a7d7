"""Crash safety, proven by fault injection: the core of ``python -m bench.crash`` and tests/server/test_crash.py.

A run builds a small fictional school on a real server process, then goes through a list of crash
points. Each point is a fault point (``server._faults``) and a count: ``storage.before_commit:5`` means
"the 5th time the server reaches the moment before a commit". For each point the harness starts the
process it names, armed with ``CAIRN_TEST_CRASH_AT``, while devices keep writing:

- two in-process devices (a teacher and a contributor) seal 1 to 3 concerns at a time into their
  on-disk outboxes and flush them in puts of 3, over and over, each from its own websocket;
- a third device runs as a child process (bench/_crash_client.py) with its own outbox, writing
  towards a target chain counter in puts of 2;
- the DSL's device reads: it pulls to the end and then takes live pushes into its local store.

A server point kills the server (SIGKILL, by itself); a client point kills the child device. The
harness then restarts what died (the server armed with the next point, or unarmed) and checks, after
every crash:

- **lost**: every envelope id the server acknowledged to any device is stored;
- **duplicated**: no envelope id, and no device chain position (device, counter), is stored twice;
- the school's sequence numbers are dense, 1 to the school's counter (``seq_gaps`` counts checks
  where they were not).

and at the end, after every device has flushed with the server up:

- **undrained**: every envelope any device wrote is stored (by chain counter, 1 to the device's
  last), so every outbox drained and nothing fell out of one unsent;
- **diverged**: the reader's store equals the server's: the same (seq, envelope hash) pairs.

The points are chosen deterministically from a seed: the point names in turn, each with a count drawn
from a small range. ``missed`` counts points that were not reached (the harness then ended the
process itself); it should be 0.

Processes come from a zygote (bench/_crash_zygote.py): a fresh forked child per start, so a crash point
costs a tenth of a second rather than a second of imports.

On SQLite the harness also cuts the power after each server crash (bench/_crash_disk.py): before the
database is opened again, the WAL is cut back to what the server's ``synchronous`` mode had fsynced. The
server runs with ``synchronous=FULL``, as in production, and must lose nothing; the control runs it
with ``NORMAL`` under the same model and must lose acknowledged envelopes, which shows that the harness
can see a loss when there is one.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.engine import make_url
from websockets.exceptions import ConnectionClosed

from crypto import envelope as env
from server._faults import ENV
from server.db import make_engine
from server.models import Envelope, SchoolCounter
from sync.client import SyncClient, SyncError
from sync.device import Device
from sync.outbox import Outbox

from ._crash_client import EXIT_DONE, EXIT_REFUSED, EXIT_SERVER_GONE, device_file
from ._crash_disk import power_loss
from ._crash_zygote import Child, Zygote
from ._sync_school import School, Writer, build_school, kdf_once_per_account
from ._sync_server import BenchError, _free_port

__all__ = ["CrashPoint", "CrashResult", "choose_points", "run_crash", "SERVER_POINTS", "CLIENT_POINTS"]

SERVER_POINTS = ("storage.mid_batch", "storage.before_commit", "sync.before_ack", "sync.before_push")
CLIENT_POINTS = ("client.mid_queue", "client.after_put", "client.before_ack_saved")
_MAX_COUNT = {"client.mid_queue": 12}  # how far into a process a point may be; 6 unless named here
CYCLE_SECONDS = 30.0  # a point not reached by then is missed
PACE_SECONDS = 0.005  # between an in-process device's rounds of writing
KILLED = -signal.SIGKILL


@dataclass(frozen=True)
class CrashPoint:
    name: str
    count: int

    @property
    def role(self) -> str:
        return "client" if self.name.startswith("client.") else "server"

    def __str__(self) -> str:
        return f"{self.name}:{self.count}"


def choose_points(count: int, seed: int = 1, names: Sequence[str] = SERVER_POINTS + CLIENT_POINTS) -> list[CrashPoint]:
    """``count`` points: the names in turn, each with a count drawn from its range by a seeded RNG."""
    rng = random.Random(seed)
    chosen = [names[i % len(names)] for i in range(count)]
    return [CrashPoint(name, rng.randint(1, _MAX_COUNT.get(name, 6))) for name in chosen]


@dataclass
class CrashResult:
    crash_points: int = 0
    missed: int = 0
    lost: int = 0
    duplicated: int = 0
    undrained: int = 0
    diverged: int = 0
    seq_gaps: int = 0
    acknowledged: int = 0
    stored: int = 0
    wal_frames_dropped: int = 0
    power_loss_unmodelled: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    missed_points: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """``name: value unit`` lines, as the benchmarks print them."""
        counts = [
            "crash_points", "missed", "lost", "duplicated", "undrained", "diverged", "seq_gaps",
            "acknowledged", "stored", "wal_frames_dropped", "power_loss_unmodelled",
        ]  # fmt: skip
        out = [f"{name}: {getattr(self, name)} count" for name in counts]
        out += [f"errors: {len(self.errors)} count", f"seconds: {self.seconds:.1f} s"]
        return out


class _AckedOutbox(Outbox):
    """An in-process device's outbox that notes every id the server acknowledged."""

    def __init__(self, path: Path, acked: set[bytes]) -> None:
        super().__init__(path)
        self._acked = acked

    def acknowledged(self, envelope_ids: Iterable[bytes]) -> None:
        ids = list(envelope_ids)
        self._acked.update(ids)
        super().acknowledged(ids)


@dataclass
class _Stored:
    ids: Counter[bytes]
    positions: Counter[tuple[bytes, int]]
    seqs: list[int]
    top: int
    digests: set[tuple[int, bytes]]


async def run_crash(
    points: int | Sequence[CrashPoint],
    folder: Path,
    *,
    database_url: str | None = None,
    synchronous: str = "FULL",
    power_cut: bool = True,
    seed: int = 1,
    say: Callable[[str], None] | None = None,
) -> CrashResult:
    """Run the harness through ``points`` (a number: chosen by ``choose_points``) in ``folder``, on an
    empty database (default: a new SQLite file in ``folder``)."""
    plan = choose_points(points, seed) if isinstance(points, int) else list(points)
    url = database_url or f"sqlite+aiosqlite:///{folder / 'cairn.db'}"
    sqlite = url.startswith("sqlite")
    if not sqlite and synchronous != "FULL":
        raise BenchError("synchronous applies to SQLite only")
    started = time.monotonic()
    async with Zygote(folder / "zygote.log") as zygote:
        run = _Run(zygote, url, folder, synchronous, power_cut and sqlite, seed, say or (lambda _: None))
        try:
            await run.setup()
            for index, point in enumerate(plan, 1):
                await run.cycle(point)
                if index % 25 == 0 or index == len(plan):
                    run.say(f"{index}/{len(plan)} points, last {point}")
            await run.finish()
        finally:
            await run.close()
    run.result.seconds = time.monotonic() - started
    return run.result


class _Run:
    def __init__(
        self, zygote: Zygote, url: str, folder: Path, synchronous: str, power_cut: bool, seed: int, say
    ) -> None:  # type: ignore[no-untyped-def]
        self.zygote, self.url, self.folder, self.say = zygote, url, folder, say
        self.synchronous, self.power_cut = synchronous, power_cut
        self.sqlite_path = Path(make_url(url).database or "") if url.startswith("sqlite") else None
        self.rng = random.Random(seed)
        self.port = _free_port()
        self.ws_url = f"ws://127.0.0.1:{self.port}/sync"
        self.result = CrashResult()
        self.acked: set[bytes] = set()
        self.lost: set[bytes] = set()
        self.duplicated: set[object] = set()
        self.server: Child | None = None
        self.school: School | None = None
        self.writers: list[Writer] = []
        self.rngs: dict[str, random.Random] = {}
        self.child_device: Device | None = None
        self.reader_outbox: Outbox | None = None
        self.child_outbox = folder / "child-outbox.db"
        self.child_acks = folder / "child-acks.log"

    # --- processes ---------------------------------------------------------------------------------

    async def start_server(self, point: CrashPoint | None) -> None:
        env_vars = {"CAIRN_DATABASE_URL": self.url, "CAIRN_HOST": "127.0.0.1", "CAIRN_PORT": str(self.port)}
        if point is not None:
            env_vars[ENV] = str(point)
        spec = {"port": self.port, "synchronous": self.synchronous}
        self.server = await self.zygote.spawn("server", env_vars, spec, self.folder / "server.log")
        deadline = time.monotonic() + CYCLE_SECONDS
        while time.monotonic() < deadline:
            if not self.server.alive:
                raise BenchError(f"the server exited with {self.server.exited.result()} while starting{self._tail()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.005)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise BenchError(f"the server did not listen within {CYCLE_SECONDS:.0f} s{self._tail()}")

    async def stop_server(self) -> None:
        """A planned stop (SIGTERM, as a platform stops a process), when the server was not the victim."""
        if self.server is not None and self.server.alive:
            self.server.kill(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.server.exited), 15)
            except TimeoutError:
                self.server.kill()
                await self.server.exited
            await self.server_down(crashed=False)

    async def spawn_child_device(self, point: CrashPoint | None, more: int) -> Child:
        target = _chain(self.child_outbox) + more
        spec = {
            "device": str(self.folder / "child-device.json"),
            "outbox": str(self.child_outbox),
            "ack_log": str(self.child_acks),
            "target": target,
            "batch": 2,
            "seed": self.rng.randrange(1 << 32),
        }
        env_vars = {ENV: str(point)} if point is not None else {}
        return await self.zygote.spawn("client", env_vars, spec, self.folder / "client.log")

    def _tail(self) -> str:
        log = self.folder / "server.log"
        text = log.read_text(errors="replace")[-2000:].strip() if log.exists() else ""
        return f"; the server's log ends:\n{text}" if text else ""

    # --- the school and its devices ----------------------------------------------------------------

    async def setup(self) -> None:
        await self.start_server(None)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30) as http:
            with kdf_once_per_account():
                self.school = await build_school(self.url, http, devices=4, seed=self.rng.randrange(1 << 32))
        for writer in [self.school.dsl, *self.school.writers]:
            writer.outbox.close()
        *self.writers, child = self.school.writers
        for writer in self.writers:
            writer.outbox = _AckedOutbox(self.folder / f"{writer.name}.db", self.acked)
        self.reader_outbox = Outbox(self.folder / "dsl.db")
        self.child_device = child.device
        device_file(
            self.folder / "child-device.json", self.ws_url, child.device, {p: child.recipients(p) for p in child.pupils}
        )
        self.rngs = {w.name: random.Random(self.rng.randrange(1 << 32)) for w in self.writers}

    def _client(self, device: Device, outbox: Outbox, *, keep: bool) -> SyncClient:
        return SyncClient(
            self.ws_url,
            outbox,
            school_id=device.school_id,
            device_id=device.device_id,
            device_key=device.device_key,
            token=device.token or "",
            keep_received=keep,
            batch_size=3,
        )

    async def write(self, writer: Writer, stop: asyncio.Event) -> bool:
        """An in-process device: write a few, flush, again, until stopped or the server goes away.
        Returns True when the server refused the head of its outbox (it can write no more)."""
        client = self._client(writer.device, writer.outbox, keep=False)
        rng = self.rngs[writer.name]
        try:
            await client.connect()
            if (await client.flush()).refused:
                return True
            await client.pull_all()  # live from here: pushes reach this device too
            while not stop.is_set():
                for _ in range(rng.randint(1, 3)):
                    pupil = rng.choice(writer.pupils)
                    note = f"fictional crash-test note by {writer.name}: upset at drop-off, settled by nine"
                    chosen = writer.recipients(pupil)
                    writer.device.write(writer.outbox, note.encode(), pupil_ids=[pupil], recipients=chosen)
                if (await client.flush()).refused:
                    return True
                await asyncio.sleep(PACE_SECONDS)
        except (SyncError, ConnectionClosed, OSError, TimeoutError):
            pass
        finally:
            await client.close()
        return False

    async def read(self, stop: asyncio.Event) -> None:
        """The DSL's device: pull to the end, then take pushes until stopped or disconnected."""
        assert self.school is not None and self.reader_outbox is not None
        client = self._client(self.school.dsl.device, self.reader_outbox, keep=True)
        try:
            await client.connect()
            await client.pull_all()
            while not stop.is_set() and client.live.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.02)
        except (SyncError, ConnectionClosed, OSError, TimeoutError):
            pass
        finally:
            await client.close()

    # --- one crash point ---------------------------------------------------------------------------

    async def cycle(self, point: CrashPoint) -> None:
        if point.role == "server":
            await self.stop_server()
            await self.start_server(point)
            child = await self.spawn_child_device(None, 4)
        else:
            if self.server is None or not self.server.alive:
                await self.start_server(None)
            child = await self.spawn_child_device(point, 30)
        assert self.server is not None
        victim = self.server if point.role == "server" else child
        stop = asyncio.Event()
        writers = [asyncio.create_task(self.write(w, stop)) for w in self.writers]
        reader = asyncio.create_task(self.read(stop))
        deadline = time.monotonic() + CYCLE_SECONDS
        while victim.alive and time.monotonic() < deadline:
            idle = all(t.done() for t in writers) and not (child.alive and child is not victim)
            if point.role == "server" and idle:
                # Every device stopped: every one was refused and nothing can reach the point any more,
                # or the server died (devices see that before the zygote reports it).
                if not all(t.result() for t in writers):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(victim.exited), 2.0)
                break
            await asyncio.sleep(0.005)
        stop.set()
        forced = victim.alive
        victim.kill()
        code = await victim.exited
        if code == KILLED and not forced:
            self.result.crash_points += 1
        else:
            self.result.missed += 1
            waited = CYCLE_SECONDS - (deadline - time.monotonic())
            why = f"{point}: the {point.role} exited with {code} after {waited:.1f} s"
            if point.role == "client" and code != KILLED:
                why += f" ({_last_line(self.folder / 'client.log')})"
            self.result.missed_points.append(why)
        await asyncio.gather(*writers, reader)
        await asyncio.wait_for(asyncio.shield(child.exited), CYCLE_SECONDS)
        if child.exited.result() not in (KILLED, EXIT_DONE, EXIT_REFUSED, EXIT_SERVER_GONE):
            self.result.errors.append(f"{point}: the client device exited with {child.exited.result()}")
        if self.server.alive:
            await self.check(server_down=False)
        else:
            code = self.server.exited.result()
            if code != KILLED:
                self.result.errors.append(f"{point}: the server exited with {code}{self._tail()}")
            await self.server_down(crashed=True)

    async def server_down(self, *, crashed: bool) -> None:
        """After the server ended: cut the power (SQLite, after a crash), check, and checkpoint."""
        if crashed and self.power_cut and self.sqlite_path is not None:
            cut = power_loss(self.sqlite_path, self.synchronous)
            self.result.wal_frames_dropped += cut.dropped
            self.result.power_loss_unmodelled += 0 if cut.modelled else 1
        await self.check(server_down=True)

    # --- checks ------------------------------------------------------------------------------------

    async def stored(self, *, checkpoint: bool = False) -> _Stored:
        assert self.school is not None
        school_id = self.school.school_id
        engine = make_engine(self.url)
        try:
            async with engine.connect() as conn:
                e = Envelope
                columns = (e.seq, e.envelope_id, e.author_device, e.counter, e.digest)
                query = select(*columns).where(Envelope.school_id == school_id).order_by(Envelope.seq)
                top = await conn.scalar(select(SchoolCounter.last_seq).where(SchoolCounter.school_id == school_id))
                rows = (await conn.execute(query)).all()
                await conn.rollback()
                if checkpoint and self.sqlite_path is not None:
                    await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await engine.dispose()
        return _Stored(
            ids=Counter(bytes(r[1]) for r in rows),
            positions=Counter((bytes(r[2]), int(r[3])) for r in rows),
            seqs=[int(r[0]) for r in rows],
            top=int(top or 0),
            digests={(int(r[0]), bytes(r[4])) for r in rows},
        )

    async def check(self, *, server_down: bool) -> _Stored:
        stored = await self.stored(checkpoint=server_down)
        acked = self.acked | _acks(self.child_acks)
        self.lost |= acked - set(stored.ids)
        self.duplicated |= {i for i, n in stored.ids.items() if n > 1}
        self.duplicated |= {p for p, n in stored.positions.items() if n > 1}
        # the counter is read before the rows, so rows committed in between may follow it (server up)
        if stored.seqs != list(range(1, len(stored.seqs) + 1)) or len(stored.seqs) < stored.top:
            self.result.seq_gaps += 1
        self.result.lost, self.result.duplicated = len(self.lost), len(self.duplicated)
        self.result.acknowledged = len(acked)
        return stored

    async def finish(self) -> None:
        """Bring the server up unarmed, let every device drain and the reader catch up; compare."""
        assert self.school is not None and self.reader_outbox is not None and self.child_device is not None
        if self.server is None or not self.server.alive:
            await self.start_server(None)
        for writer in self.writers:
            client = self._client(writer.device, writer.outbox, keep=False)
            with contextlib.suppress(SyncError, ConnectionClosed, OSError):
                await client.sync()
            await client.close()
        child = await self.spawn_child_device(None, 0)
        await asyncio.wait_for(asyncio.shield(child.exited), CYCLE_SECONDS)
        reader = self._client(self.school.dsl.device, self.reader_outbox, keep=True)
        pulled = True
        try:
            await reader.sync()
        except (SyncError, ConnectionClosed, OSError):
            pulled = False  # e.g. invalid_cursor: the reader is ahead of a server that lost writes
        await reader.close()
        stored = await self.check(server_down=False)
        self.result.stored = len(stored.ids)
        devices = [(w.device.device_id, w.outbox) for w in self.writers]
        child_outbox = Outbox(self.child_outbox)
        try:
            for device_id, outbox in [*devices, (self.child_device.device_id, child_outbox)]:
                written = outbox.chain().counter
                here = sum(1 for c in range(1, written + 1) if (device_id, c) in stored.positions)
                self.result.undrained += written - here
        finally:
            child_outbox.close()
        mine = {(seq, env.envelope_hash(body)) for seq, _, body in self.reader_outbox.inbox()}
        self.result.diverged = len(mine ^ stored.digests) + (0 if pulled else 1)
        await self.stop_server()

    async def close(self) -> None:
        if self.server is not None and self.server.alive:
            self.server.kill()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.server.exited), 15)
        for writer in self.writers:
            writer.outbox.close()
        if self.reader_outbox is not None:
            self.reader_outbox.close()


def _chain(path: Path) -> int:
    outbox = Outbox(path)
    try:
        return outbox.chain().counter
    finally:
        outbox.close()


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return lines[-1][:300] if lines else "no log"


def _acks(path: Path) -> set[bytes]:
    if not path.exists():
        return set()
    return {bytes.fromhex(line) for line in path.read_text().split()}


def _say(message: str) -> None:
    print(f"bench.crash: {message}", file=sys.stderr, flush=True)
