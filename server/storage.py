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

from sqlalchemy import and_, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from crypto import envelope as env
from sync.protocol import LIMITS, ProtocolError

from ._faults import point
from .models import Account, Device, Envelope, EnvelopePupil, EnvelopeRecipient, Grant, Pupil, ReaderKey, SchoolCounter

__all__ = ["Incoming", "Ack", "StoredItem", "Page", "ReadableKeys", "Storage", "SqlStorage", "now_ms"]

SAFEGUARDING = "group:safeguarding"


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


@dataclass(frozen=True)
class Page:
    items: list[StoredItem]
    cursor_seq: int
    done: bool


@dataclass(frozen=True)
class ReadableKeys:
    """What one user may read: reader key versions it holds a current grant for, and itself as a person."""

    user_id: bytes
    reader_keys: frozenset[tuple[bytes, int]]

    def allows(self, recipients: Sequence[tuple[int, bytes, int]]) -> bool:
        for kind, key_id, version in recipients:
            if kind == env.RECIPIENT_READER_KEY and (key_id, version) in self.reader_keys:
                return True
            if kind == env.RECIPIENT_PERSON and key_id == self.user_id:
                return True
        return False


@dataclass
class BatchResult:
    acks: list[Ack] | None = None
    error: ProtocolError | None = None
    new_items: list[StoredItem] = field(default_factory=list)


class Storage(Protocol):
    async def append_many(
        self, school_id: bytes, batches: Sequence[tuple[bytes, Sequence[Incoming]]]
    ) -> tuple[list[BatchResult], int, int]: ...

    async def pull_since(self, school_id: bytes, keys: ReadableKeys, since: int, limit: int) -> Page: ...

    async def readable_keys(self, school_id: bytes, user_id: bytes) -> ReadableKeys: ...

    async def last_seq(self, school_id: bytes) -> int: ...


class SqlStorage:
    """The one implementation: SQLModel tables through SQLAlchemy's async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def last_seq(self, school_id: bytes) -> int:
        async with self.engine.connect() as conn:
            value = await conn.scalar(select(SchoolCounter.last_seq).where(SchoolCounter.school_id == school_id))
        return int(value or 0)

    async def readable_keys(self, school_id: bytes, user_id: bytes) -> ReadableKeys:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(Grant.reader_key_id, Grant.reader_version).where(
                    Grant.school_id == school_id, Grant.member_id == user_id, Grant.revoked_ms.is_(None)
                )
            )
            keys = frozenset((bytes(r[0]), int(r[1])) for r in rows)
        return ReadableKeys(user_id, keys)

    async def append_many(
        self, school_id: bytes, batches: Sequence[tuple[bytes, Sequence[Incoming]]]
    ) -> tuple[list[BatchResult], int, int]:
        """Check and store several devices' batches of one school in one transaction.

        Returns each batch's result, and the school's last sequence number before and after. A batch
        that fails a check stores nothing; the others are unaffected."""
        results = [BatchResult() for _ in batches]
        received = now_ms()
        async with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":  # take the write lock first: the counter read below holds it
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            before = await conn.scalar(
                select(SchoolCounter.last_seq).where(SchoolCounter.school_id == school_id).with_for_update()
            )
            if before is None:
                raise ProtocolError("wrong_school", "no such school")
            seq = int(before)
            known = await _known(conn, school_id, [i for _, items in batches for i in items])
            envelope_rows, recipient_rows, pupil_rows = [], [], []
            for (device_id, items), result in zip(batches, results, strict=True):
                try:
                    plan = await _plan_batch(conn, school_id, device_id, items, known)
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
                    envelope_rows.append(
                        {
                            "school_id": school_id,
                            "seq": seq,
                            "envelope_id": h.envelope_id,
                            "concern_id": h.concern_id,
                            "author_device": h.author_device,
                            "counter": h.counter,
                            "device_time_ms": h.device_time_ms,
                            "server_time_ms": received,
                            "padded_size": item.parsed.padded_size,
                            "digest": item.digest,
                            "body": item.raw,
                        }
                    )
                    recipients = tuple((r.kind, r.id, r.version) for r in h.recipients)
                    recipient_rows += [
                        {"school_id": school_id, "seq": seq, "kind": k, "key_id": i, "version": v}
                        for k, i, v in recipients
                    ]
                    pupil_rows += [{"school_id": school_id, "seq": seq, "pupil_id": p} for p in h.pupil_ids]
                    acks.append(Ack(h.envelope_id, seq, received, False))
                    result.new_items.append(StoredItem(seq, received, item.raw, recipients))
                result.acks = acks
                if plan.last is not None:
                    counter, digest = plan.last
                    await conn.execute(
                        update(Device)
                        .where(Device.school_id == school_id, Device.id == device_id)
                        .values(last_counter=counter, last_hash=digest, last_seen_ms=received)
                    )
            if envelope_rows:
                await conn.execute(insert(Envelope), envelope_rows)
                point("storage.mid_batch")
                await conn.execute(insert(EnvelopeRecipient), recipient_rows)
                if pupil_rows:
                    await conn.execute(insert(EnvelopePupil), pupil_rows)
                await conn.execute(
                    update(SchoolCounter).where(SchoolCounter.school_id == school_id).values(last_seq=seq)
                )
            point("storage.before_commit")
        return results, int(before), seq

    async def pull_since(
        self, school_id: bytes, keys: ReadableKeys, since: int, limit: int, max_bytes: int = LIMITS["max_page_bytes"]
    ) -> Page:
        """Readable envelopes after ``since``, in sequence order; reads ``limit + 1`` to know ``done``, and
        stops early (not done) when the page would pass ``max_bytes`` as it travels."""
        conditions = [and_(EnvelopeRecipient.kind == env.RECIPIENT_PERSON, EnvelopeRecipient.key_id == keys.user_id)]
        key_ids = sorted({key_id for key_id, _ in keys.reader_keys})
        if key_ids:  # a plain IN on one column (hashed by PostgreSQL); versions are checked below
            conditions.append(
                and_(EnvelopeRecipient.kind == env.RECIPIENT_READER_KEY, EnvelopeRecipient.key_id.in_(key_ids))
            )
        scan_rows = max(4 * (limit + 1), 2 * env.MAX_RECIPIENTS)  # always more than one envelope's rows
        async with self.engine.connect() as conn:
            async with conn.begin():
                top = await conn.scalar(select(SchoolCounter.last_seq).where(SchoolCounter.school_id == school_id))
                seqs: list[int] = []
                scanned = since
                while len(seqs) <= limit:
                    raw = (
                        await conn.execute(
                            select(
                                EnvelopeRecipient.seq,
                                EnvelopeRecipient.kind,
                                EnvelopeRecipient.key_id,
                                EnvelopeRecipient.version,
                            )
                            .where(
                                EnvelopeRecipient.school_id == school_id,
                                EnvelopeRecipient.seq > scanned,
                                or_(*conditions),
                            )
                            .order_by(EnvelopeRecipient.seq)
                            .limit(scan_rows)
                        )
                    ).all()
                    full = len(raw) == scan_rows
                    if full:  # the last seq's rows may be cut: leave it for the next scan
                        cut = raw[-1][0]
                        raw = [r for r in raw if r[0] != cut]
                    for seq, kind, key_id, version in raw:
                        if (not seqs or seqs[-1] != seq) and keys.allows([(kind, bytes(key_id), int(version))]):
                            seqs.append(int(seq))
                    if not full:
                        break
                    scanned = cut - 1
                seqs = seqs[: limit + 1]
                rows = (
                    (
                        await conn.execute(
                            select(Envelope.seq, Envelope.server_time_ms, Envelope.body)
                            .where(Envelope.school_id == school_id, Envelope.seq.in_(seqs))
                            .order_by(Envelope.seq)
                        )
                    ).all()
                    if seqs
                    else []
                )
        items, size = [], 0
        for r in rows[:limit]:
            size += len(r[2]) * 4 // 3 + 64  # as it travels: base64 and the item's other fields
            if items and size > max_bytes:
                break
            items.append(StoredItem(int(r[0]), int(r[1]), bytes(r[2])))
        done = len(items) == len(rows)
        # ``top`` is read first, the rows after it (not in one snapshot: PostgreSQL reads committed), so the
        # rows may include later commits; a done cursor is the greater: every readable row up to it is here.
        cursor = max(since, int(top or 0), items[-1].seq if items else 0) if done else items[-1].seq
        return Page(items, cursor, done)


@dataclass
class _Plan:
    items: list[tuple[Incoming, tuple[int, int] | None]]
    last: tuple[int, bytes] | None


@dataclass
class _Known:
    reader_keys: dict[tuple[bytes, int], str]
    people: set[bytes]
    pupils: set[bytes]


async def _known(conn, school_id: bytes, items: Sequence[Incoming]) -> _Known:  # type: ignore[no-untyped-def]
    """One query each for every reader key, person and pupil that any of the batches names."""
    keys = {(r.id, r.version) for i in items for r in i.parsed.header.recipients if r.kind == env.RECIPIENT_READER_KEY}
    people = {r.id for i in items for r in i.parsed.header.recipients if r.kind == env.RECIPIENT_PERSON}
    pupils = {p for i in items for p in i.parsed.header.pupil_ids}
    found = _Known({}, set(), set())
    if keys:
        rows = await conn.execute(
            select(ReaderKey.id, ReaderKey.version, ReaderKey.purpose).where(
                ReaderKey.school_id == school_id, tuple_(ReaderKey.id, ReaderKey.version).in_(sorted(keys))
            )
        )
        found.reader_keys = {(bytes(r[0]), int(r[1])): r[2] for r in rows}
    if people:
        rows = await conn.execute(select(Account.id).where(Account.school_id == school_id, Account.id.in_(people)))
        found.people = {bytes(r[0]) for r in rows}
    if pupils:
        rows = await conn.execute(select(Pupil.id).where(Pupil.school_id == school_id, Pupil.id.in_(pupils)))
        found.pupils = {bytes(r[0]) for r in rows}
    return found


async def _plan_batch(conn, school_id: bytes, device_id: bytes, items: Sequence[Incoming], known: _Known) -> _Plan:  # type: ignore[no-untyped-def]
    ids = [i.parsed.header.envelope_id for i in items]
    rows = await conn.execute(
        select(Envelope.envelope_id, Envelope.seq, Envelope.server_time_ms, Envelope.digest).where(
            Envelope.school_id == school_id, Envelope.envelope_id.in_(ids)
        )
    )
    stored = {bytes(r[0]): (int(r[1]), int(r[2]), bytes(r[3])) for r in rows}
    device = (
        await conn.execute(
            select(Device.last_counter, Device.last_hash)
            .where(Device.school_id == school_id, Device.id == device_id)
            .with_for_update()
        )
    ).first()
    counter, last_hash = int(device[0]), bytes(device[1])
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
