"""Envelope storage: a small protocol and its one SQLModel implementation (SQLite and PostgreSQL alike).

The write path takes several devices' batches in one transaction (group commit), checks each batch
against the database (idempotency, the device's chain, recipients and pupils the school knows), and
assigns the school's sequence numbers while holding the school's counter row, so that sequence numbers
commit in order and a reader can never skip a row.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import bindparam, func, literal_column, select, tuple_, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crypto import envelope as env
from sync.protocol import LIMITS, ProtocolError

from ._faults import point
from .models import (
    Account,
    Device,
    EntryGrant,
    Envelope,
    EnvelopePupil,
    EnvelopeRecipient,
    Grant,
    Pupil,
    ReaderKey,
    SchoolCounter,
)

__all__ = ["Incoming", "Ack", "StoredItem", "Page", "ReadableKeys", "Storage", "SqlStorage", "now_ms"]

SAFEGUARDING = "group:safeguarding"
# where an envelope's entry_key_version starts (docs/PROTOCOL.md 6.1): version, kind, four ids, counter, prev_hash,
# device time; read by SQL (1-based) to find the envelopes an entry key grant opens without parsing every body
ENTRY_KEY_VERSION_AT = 1 + 1 + 16 * 4 + 8 + 32 + 8


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Incoming:
    """An envelope that parsed and whose signature verified, waiting for the database checks."""

    raw: bytes = field(repr=False)
    parsed: env.Parsed = field(repr=False)
    digest: bytes


@dataclass(frozen=True)
class Ack:
    envelope_id: bytes
    seq: int
    server_time_ms: int
    duplicate: bool


@dataclass(frozen=True)
class StoredItem:
    seq: int
    server_time_ms: int
    body: bytes = field(repr=False)
    recipients: tuple[tuple[int, bytes, int], ...] = ()
    concern: tuple[bytes, int] | None = None  # concern id and entry key version, for entry key grants


@dataclass(frozen=True)
class Page:
    items: list[StoredItem]
    cursor_seq: int
    done: bool


@dataclass(frozen=True)
class ReadableKeys:
    """What one user may read: reader key versions it holds a current grant for, itself as a person, and the
    entry key versions of concerns it was named on (entry key grants: concern id and version). A backfill
    (docs/PROTOCOL.md 9.5) reads by a subset of these, with no ``user_id``."""

    user_id: bytes | None
    reader_keys: frozenset[tuple[bytes, int]]
    entry_keys: frozenset[tuple[bytes, int]] = frozenset()

    def allows(self, recipients: Sequence[tuple[int, bytes, int]], concern: tuple[bytes, int] | None = None) -> bool:
        if concern is not None and concern in self.entry_keys:
            return True
        for kind, key_id, version in recipients:
            if kind == env.RECIPIENT_READER_KEY and (key_id, version) in self.reader_keys:
                return True
            if kind == env.RECIPIENT_PERSON and self.user_id is not None and key_id == self.user_id:
                return True
        return False

    def covers(self, other: ReadableKeys) -> bool:
        """Whether every key of ``other`` is one of these (a backfill may name only keys the user holds)."""
        return other.reader_keys <= self.reader_keys and other.entry_keys <= self.entry_keys


@dataclass
class BatchResult:
    acks: list[Ack] | None = None
    error: ProtocolError | None = None
    new_items: list[StoredItem] = field(default_factory=list)


class Storage(Protocol):
    async def append_many(
        self, school_id: bytes, batches: Sequence[tuple[bytes, Sequence[Incoming]]]
    ) -> tuple[list[BatchResult], int, int]: ...

    async def pull_since(
        self, school_id: bytes, keys: ReadableKeys, since: int, limit: int, max_bytes: int = ...,
        backfill: bool = False,
    ) -> Page: ...

    async def readable_keys(self, school_id: bytes, user_id: bytes) -> ReadableKeys: ...

    async def last_seq(self, school_id: bytes) -> int: ...

    async def last_seqs(self, school_ids: Sequence[bytes]) -> dict[bytes, int]: ...


class SqlStorage:
    """The one implementation: SQLModel tables through SQLAlchemy's async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def last_seq(self, school_id: bytes) -> int:
        async with self.engine.connect() as conn:
            value = await conn.scalar(select(SchoolCounter.last_seq).where(SchoolCounter.school_id == school_id))
        return int(value or 0)

    async def last_seqs(self, school_ids: Sequence[bytes]) -> dict[bytes, int]:
        """Each school's last committed seq, in one query per 500 schools (a school with none: 0)."""
        found: dict[bytes, int] = {school: 0 for school in school_ids}
        ids = list(found)
        async with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = await conn.execute(
                    select(SchoolCounter.school_id, SchoolCounter.last_seq).where(
                        SchoolCounter.school_id.in_(ids[start : start + 500])
                    )
                )
                found.update({bytes(school): int(seq) for school, seq in rows})
        return found

    async def readable_keys(self, school_id: bytes, user_id: bytes) -> ReadableKeys:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(Grant.reader_key_id, Grant.reader_version).where(
                    Grant.school_id == school_id, Grant.member_id == user_id, Grant.revoked_ms.is_(None)
                )
            )
            keys = frozenset((bytes(r[0]), int(r[1])) for r in rows)
            named = await conn.execute(
                select(EntryGrant.concern_id, EntryGrant.entry_version).where(
                    EntryGrant.school_id == school_id, EntryGrant.member_id == user_id
                )
            )
            entry_keys = frozenset((bytes(r[0]), int(r[1])) for r in named)
        return ReadableKeys(user_id, keys, entry_keys)

    async def append_many(
        self, school_id: bytes, batches: Sequence[tuple[bytes, Sequence[Incoming]]]
    ) -> tuple[list[BatchResult], int, int]:
        """Check and store several devices' batches of one school in one transaction.

        Returns each batch's result, and the school's last sequence number before and after. A batch
        that fails a check stores nothing; the others are unaffected. The number of queries does not
        grow with the number of batches: what the checks need is read for the whole group at once."""
        results = [BatchResult() for _ in batches]
        received = now_ms()
        everything = [i for _, items in batches for i in items]
        async with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":  # take the write lock first: the counter read below holds it
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            before = await conn.scalar(
                select(SchoolCounter.last_seq).where(SchoolCounter.school_id == school_id).with_for_update()
            )
            if before is None:
                raise ProtocolError("wrong_school", "no such school")
            seq = int(before)
            known = await _known(conn, school_id, everything)
            stored = await _stored(conn, school_id, everything)
            chains = await _chains(conn, school_id, {device_id for device_id, _ in batches})
            moved: dict[bytes, tuple[int, bytes]] = {}  # device id -> its new chain head
            envelope_rows, recipient_rows, pupil_rows = [], [], []
            for (device_id, items), result in zip(batches, results, strict=True):
                try:
                    plan = _plan_batch(device_id, items, known, stored, chains)
                except ProtocolError as exc:
                    result.error = exc
                    continue
                acks = []
                for item, existing in plan.items:
                    if existing is not None:
                        acks.append(Ack(item.parsed.header.envelope_id, existing[0], existing[1], True))
                        continue
                    seq += 1
                    h = item.parsed.header
                    stored[h.envelope_id] = (seq, received, item.digest)  # a later batch may repeat it
                    envelope_rows.append(
                        (
                            school_id,
                            seq,
                            h.envelope_id,
                            h.concern_id,
                            h.author_device,
                            h.counter,
                            h.device_time_ms,
                            received,
                            item.parsed.padded_size,
                            item.digest,
                            item.raw,
                        )
                    )
                    recipients = tuple((r.kind, r.id, r.version) for r in h.recipients)
                    recipient_rows += [(school_id, seq, k, i, v) for k, i, v in recipients]
                    pupil_rows += [(school_id, seq, p) for p in h.pupil_ids]
                    acks.append(Ack(h.envelope_id, seq, received, False))
                    result.new_items.append(
                        StoredItem(seq, received, item.raw, recipients, (h.concern_id, h.entry_key_version))
                    )
                result.acks = acks
                if plan.last is not None:
                    chains[device_id] = moved[device_id] = plan.last
            if moved:
                await conn.execute(
                    update(Device)
                    .where(Device.school_id == bindparam("b_school"), Device.id == bindparam("b_device"))
                    .values(last_counter=bindparam("b_counter"), last_hash=bindparam("b_hash"), last_seen_ms=received),
                    [
                        {"b_school": school_id, "b_device": d, "b_counter": counter, "b_hash": digest}
                        for d, (counter, digest) in moved.items()
                    ],
                )
            if envelope_rows:  # plain driver executemany: these are the bulk of a write's work
                await conn.exec_driver_sql(_insert_sql(conn, Envelope, _ENVELOPE_COLUMNS), envelope_rows)
                point("storage.mid_batch")
                await conn.exec_driver_sql(_insert_sql(conn, EnvelopeRecipient, _RECIPIENT_COLUMNS), recipient_rows)
                if pupil_rows:
                    await conn.exec_driver_sql(_insert_sql(conn, EnvelopePupil, _PUPIL_COLUMNS), pupil_rows)
                await conn.execute(
                    update(SchoolCounter).where(SchoolCounter.school_id == school_id).values(last_seq=seq)
                )
            point("storage.before_commit")
        return results, int(before), seq

    async def pull_since(
        self,
        school_id: bytes,
        keys: ReadableKeys,
        since: int,
        limit: int,
        max_bytes: int = LIMITS["max_page_bytes"],
        backfill: bool = False,
    ) -> Page:
        """Readable envelopes after ``since``, in sequence order; reads ``limit + 1`` to know ``done``, and
        stops early (not done) when the page would pass ``max_bytes`` as it travels. A ``backfill`` reads by
        the few keys named (``keys`` holds only them) through the recipients' key index, rather than
        scanning every recipient row after ``since``.

        Only rows up to the school's counter, read first, are considered: every row up to it has committed
        (the counter moves in the same transaction as the rows it numbers), so a done page's cursor is
        the counter. Recipients are checked in Python (see ``_readable_seqs``); bodies are read by a range
        of the primary key."""
        scan_rows = max(4 * (limit + 1), 2 * env.MAX_RECIPIENTS)  # always more than one envelope's rows
        read = _backfill_seqs if backfill else _readable_seqs
        async with self.engine.connect() as conn:
            async with conn.begin():
                top = await conn.scalar(select(SchoolCounter.last_seq).where(SchoolCounter.school_id == school_id))
                top = int(top or 0)
                seqs = await read(conn, school_id, keys, since, top, limit + 1, scan_rows)
                rows = await _bodies(conn, school_id, seqs) if seqs else []
        items, size = [], 0
        for seq, server_time_ms, body in rows[:limit]:
            size += len(body) * 4 // 3 + 64  # as it travels: base64 and the item's other fields
            if items and size > max_bytes:
                break
            items.append(StoredItem(seq, server_time_ms, body))
        done = len(items) == len(rows)
        cursor = max(since, top) if done else items[-1].seq
        return Page(items, cursor, done)


_ENVELOPE_COLUMNS = (
    "school_id",
    "seq",
    "envelope_id",
    "concern_id",
    "author_device",
    "counter",
    "device_time_ms",
    "server_time_ms",
    "padded_size",
    "digest",
    "body",
)
_RECIPIENT_COLUMNS = ("school_id", "seq", "kind", "key_id", "version")
_PUPIL_COLUMNS = ("school_id", "seq", "pupil_id")


def _insert_sql(conn: AsyncConnection, model: type, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) VALUES (...)`` in the driver's own parameter style (SQLite ``?``,
    asyncpg ``$n``), for an executemany of plain tuples that skips SQLAlchemy's per-value processing."""
    table = model.__table__  # type: ignore[attr-defined]
    if conn.dialect.paramstyle == "qmark":
        marks = ", ".join("?" for _ in columns)
    else:
        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"


@dataclass
class _Plan:
    items: list[tuple[Incoming, tuple[int, int] | None]]
    last: tuple[int, bytes] | None


@dataclass
class _Known:
    reader_keys: dict[tuple[bytes, int], str]
    people: set[bytes]
    pupils: set[bytes]


_IN_CHUNK = 2000  # ids per IN list, well inside SQLite's and asyncpg's limits on bound parameters


async def _known(conn: AsyncConnection, school_id: bytes, items: Sequence[Incoming]) -> _Known:
    """Every reader key, person and pupil that any of the batches names, in one query."""
    keys = {(r.id, r.version) for i in items for r in i.parsed.header.recipients if r.kind == env.RECIPIENT_READER_KEY}
    people = {r.id for i in items for r in i.parsed.header.recipients if r.kind == env.RECIPIENT_PERSON}
    pupils = {p for i in items for p in i.parsed.header.pupil_ids}
    parts = []
    if keys:
        parts.append(
            select(literal_column("0").label("what"), ReaderKey.id, ReaderKey.version, ReaderKey.purpose).where(
                ReaderKey.school_id == school_id, tuple_(ReaderKey.id, ReaderKey.version).in_(sorted(keys))
            )
        )
    if people:
        parts.append(
            select(literal_column("1"), Account.id, literal_column("0"), literal_column("''")).where(
                Account.school_id == school_id, Account.id.in_(people)
            )
        )
    if pupils:
        parts.append(
            select(literal_column("2"), Pupil.id, literal_column("0"), literal_column("''")).where(
                Pupil.school_id == school_id, Pupil.id.in_(pupils)
            )
        )
    found = _Known({}, set(), set())
    if not parts:
        return found
    for what, key_id, version, purpose in await conn.execute(union_all(*parts) if len(parts) > 1 else parts[0]):
        if what == 0:
            found.reader_keys[(bytes(key_id), int(version))] = purpose
        elif what == 1:
            found.people.add(bytes(key_id))
        else:
            found.pupils.add(bytes(key_id))
    return found


async def _stored(
    conn: AsyncConnection, school_id: bytes, items: Sequence[Incoming]
) -> dict[bytes, tuple[int, int, bytes]]:
    """Which of the envelope ids are stored already: id -> (seq, server_time_ms, digest)."""
    ids = sorted({i.parsed.header.envelope_id for i in items})
    stored = {}
    for start in range(0, len(ids), _IN_CHUNK):
        rows = await conn.execute(
            select(Envelope.envelope_id, Envelope.seq, Envelope.server_time_ms, Envelope.digest).where(
                Envelope.school_id == school_id, Envelope.envelope_id.in_(ids[start : start + _IN_CHUNK])
            )
        )
        stored.update({bytes(r[0]): (int(r[1]), int(r[2]), bytes(r[3])) for r in rows})
    return stored


async def _chains(conn: AsyncConnection, school_id: bytes, device_ids: set[bytes]) -> dict[bytes, tuple[int, bytes]]:
    """Each device's chain head (last counter and hash), its row locked until the commit."""
    rows = await conn.execute(
        select(Device.id, Device.last_counter, Device.last_hash)
        .where(Device.school_id == school_id, Device.id.in_(sorted(device_ids)))
        .order_by(Device.id)  # one lock order for every writer
        .with_for_update()
    )
    return {bytes(r[0]): (int(r[1]), bytes(r[2])) for r in rows}


def _plan_batch(
    device_id: bytes,
    items: Sequence[Incoming],
    known: _Known,
    stored: dict[bytes, tuple[int, int, bytes]],
    chains: dict[bytes, tuple[int, bytes]],
) -> _Plan:
    """Check one device's batch against what is stored (this group's earlier batches included) and the
    device's chain; raises ProtocolError for the first envelope that fails."""
    if device_id not in chains:
        raise ProtocolError("wrong_device", "this device is not registered in this school")
    counter, last_hash = chains[device_id]
    plan = _Plan([], None)
    seen: set[bytes] = set()
    for index, item in enumerate(items):
        h = item.parsed.header
        where = {"envelopes": f"item {index}"}
        if h.envelope_id in seen:
            raise ProtocolError("conflicting_id", f"envelope {index} repeats an id in the same batch", where)
        seen.add(h.envelope_id)
        if h.envelope_id in stored:
            seq, received, digest = stored[h.envelope_id]
            if digest != item.digest:
                raise ProtocolError(
                    "conflicting_id", f"envelope {index}: this id is stored with different bytes", where
                )
            plan.items.append((item, (seq, received)))
            continue
        if h.counter != counter + 1 or h.prev_hash != last_hash:
            raise ProtocolError(
                "chain_broken", f"envelope {index}: counter {h.counter} does not follow {counter} with its hash", where
            )
        has_safeguarding = False
        for r in h.recipients:
            if r.kind == env.RECIPIENT_READER_KEY:
                purpose = known.reader_keys.get((r.id, r.version))
                if purpose is None:
                    raise ProtocolError(
                        "unknown_recipient", f"envelope {index} is sealed to an unlisted reader key", where
                    )
                has_safeguarding |= purpose == SAFEGUARDING
            elif r.id not in known.people:
                raise ProtocolError(
                    "unknown_recipient", f"envelope {index} is sealed to a person not in this school", where
                )
        if not has_safeguarding:
            raise ProtocolError(
                "missing_safeguarding_recipient", f"envelope {index} is not sealed to the safeguarding group", where
            )
        if any(p not in known.pupils for p in h.pupil_ids):
            raise ProtocolError("unknown_pupil", f"envelope {index} names a pupil not in this school", where)
        plan.items.append((item, None))
        counter, last_hash = h.counter, item.digest
        plan.last = (counter, last_hash)
    return plan


async def _readable_seqs(
    conn: AsyncConnection, school_id: bytes, keys: ReadableKeys, since: int, top: int, want: int, scan_rows: int
) -> list[int]:
    """The first ``want`` sequence numbers after ``since`` and up to ``top`` that ``keys`` may read.

    Recipient rows are read in windows of sequence numbers (doubling, for a reader who may read few) of
    at most ``scan_rows`` rows: each query touches only its window's rows, whatever plan the database
    picks (a bare ``ORDER BY seq LIMIT`` can make PostgreSQL read and sort every row after the cursor)."""
    reader_keys, user_id = keys.reader_keys, keys.user_id
    seqs: list[int] = []
    scanned, window = since, want
    while len(seqs) < want and scanned < top:
        high = min(scanned + window, top)
        raw = (
            await conn.execute(
                select(
                    EnvelopeRecipient.seq, EnvelopeRecipient.kind, EnvelopeRecipient.key_id, EnvelopeRecipient.version
                )
                .where(
                    EnvelopeRecipient.school_id == school_id,
                    EnvelopeRecipient.seq > scanned,
                    EnvelopeRecipient.seq <= high,
                )
                .order_by(EnvelopeRecipient.seq)
                .limit(scan_rows)
            )
        ).all()
        full = len(raw) == scan_rows
        cut = raw[-1][0] if full else None  # the last seq's rows may be cut: leave it for the next scan
        upto = raw[-1][0] - 1 if full else high
        found: set[int] = set()
        for seq, kind, key_id, version in raw:
            if seq == cut:
                continue
            if (kind == env.RECIPIENT_READER_KEY and (bytes(key_id), version) in reader_keys) or (
                kind == env.RECIPIENT_PERSON and key_id == user_id
            ):
                found.add(seq)
        if keys.entry_keys:
            found |= await _entry_key_seqs(conn, school_id, keys.entry_keys, scanned, upto)
        seqs += sorted(found)
        scanned = upto
        window = min(window * 2, 1 << 20)
    return seqs[:want]


async def _entry_key_seqs(
    conn: AsyncConnection, school_id: bytes, entry_keys: frozenset[tuple[bytes, int]], low: int, high: int
) -> set[int]:
    """Sequence numbers in ``(low, high]`` of envelopes of the named concerns under the named entry key
    versions (what entry key grants open): found by the concern index, the version read from the header."""
    concerns = sorted({c for c, _ in entry_keys})
    version = func.substr(Envelope.body, ENTRY_KEY_VERSION_AT + 1, 4)
    found: set[int] = set()
    for start in range(0, len(concerns), _IN_CHUNK):
        query = (
            select(Envelope.seq, Envelope.concern_id, version)
            .where(
                Envelope.school_id == school_id,
                Envelope.concern_id.in_(concerns[start : start + _IN_CHUNK]),
                Envelope.seq > low,
                Envelope.seq <= high,
            )
            .order_by(Envelope.seq)
        )
        for seq, concern_id, raw_version in await conn.execute(query):
            if (bytes(concern_id), int.from_bytes(bytes(raw_version), "big")) in entry_keys:
                found.add(int(seq))
    return found


async def _backfill_seqs(
    conn: AsyncConnection, school_id: bytes, keys: ReadableKeys, since: int, top: int, want: int, _scan_rows: int
) -> list[int]:
    """The first ``want`` sequence numbers after ``since`` and up to ``top`` sealed to one of the few reader
    key versions ``keys`` names (by the index of recipients by key), or under one of its entry keys."""
    found: set[int] = set()
    for key_id, version in sorted(keys.reader_keys):
        rows = await conn.execute(
            select(EnvelopeRecipient.seq)
            .where(
                EnvelopeRecipient.school_id == school_id,
                EnvelopeRecipient.kind == env.RECIPIENT_READER_KEY,
                EnvelopeRecipient.key_id == key_id,
                EnvelopeRecipient.version == version,
                EnvelopeRecipient.seq > since,
                EnvelopeRecipient.seq <= top,
            )
            .order_by(EnvelopeRecipient.seq)
            .limit(want)
        )
        found.update(int(r[0]) for r in rows)
    if keys.entry_keys:
        found |= await _entry_key_seqs(conn, school_id, keys.entry_keys, since, top)
    return sorted(found)[:want]


async def _bodies(conn: AsyncConnection, school_id: bytes, seqs: list[int]) -> list[tuple[int, int, bytes]]:
    """The envelopes of ascending ``seqs``: by a range of the primary key, and by the list only when the
    range has gaps (a plain list can make PostgreSQL visit every row of the school)."""
    query = select(Envelope.seq, Envelope.server_time_ms, Envelope.body).where(
        Envelope.school_id == school_id, Envelope.seq >= seqs[0], Envelope.seq <= seqs[-1]
    )
    if seqs[-1] - seqs[0] + 1 != len(seqs):
        query = query.where(Envelope.seq.in_(seqs))
    rows = (await conn.execute(query.order_by(Envelope.seq))).all()
    return [(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]
