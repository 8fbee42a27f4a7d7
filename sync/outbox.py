"""The Python device's durable local store: outbox, device chain state, cursor and pulled envelopes.

One SQLite file per device (WAL, ``synchronous=FULL``). An envelope is written to the outbox, with the
device's counter and chain hash, in one transaction before anything is sent; it leaves the outbox only
when the server's ack for it arrives. Everything stored here is already sealed and signed: envelopes
are ciphertext, and no key is kept in this file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Outbox", "Pending", "ChainState"]

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS outbox (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        envelope_id BLOB NOT NULL UNIQUE,
        body BLOB NOT NULL,
        queued_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        failed_code TEXT,
        failed_detail TEXT)""",
    "CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
    """CREATE TABLE IF NOT EXISTS inbox (
        seq INTEGER PRIMARY KEY, server_time_ms INTEGER NOT NULL, body BLOB NOT NULL)""",
]


@dataclass(frozen=True)
class Pending:
    position: int
    envelope_id: bytes
    body: bytes
    queued_ms: int
    failed_code: str | None


@dataclass(frozen=True)
class ChainState:
    counter: int
    last_hash: bytes


class Outbox:
    """Not thread-safe: one device, one event loop, one Outbox."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    # --- writing: seal and queue in one transaction ----------------------------------------------

    def chain(self) -> ChainState:
        return ChainState(int(self._get("counter", b"\0" * 8).hex(), 16), self._get("last_hash", bytes(32)))

    def queue(self, seal: Callable[[ChainState], tuple[bytes, bytes, bytes]]) -> bytes:
        """Seal the next envelope against the device's chain and queue it, atomically.

        ``seal(chain)`` returns ``(envelope_id, envelope, envelope_hash)`` for counter ``chain.counter + 1``.
        Returns the envelope id. If anything fails, neither the chain nor the outbox changes."""
        with self._transaction():
            chain = self.chain()
            envelope_id, body, digest = seal(chain)
            self._db.execute(
                "INSERT INTO outbox (envelope_id, body, queued_ms) VALUES (?, ?, ?)",
                (envelope_id, body, int(time.time() * 1000)),
            )
            self._set("counter", (chain.counter + 1).to_bytes(8, "big"))
            self._set("last_hash", digest)
        return envelope_id

    # --- sending ---------------------------------------------------------------------------------

    def head(self, limit: int, max_bytes: int) -> list[Pending]:
        """The oldest queued envelopes, in order, up to ``limit`` items and about ``max_bytes``."""
        rows = self._db.execute(
            "SELECT position, envelope_id, body, queued_ms, failed_code FROM outbox ORDER BY position LIMIT ?", (limit,)
        ).fetchall()
        out, size = [], 0
        for row in rows:
            size += len(row[2]) * 4 // 3 + 8
            if out and size > max_bytes:
                break
            out.append(Pending(row[0], bytes(row[1]), bytes(row[2]), row[3], row[4]))
        return out

    def acknowledged(self, envelope_ids: Iterable[bytes]) -> None:
        """The server stored these durably: they leave the outbox (a write-only device keeps no copy)."""
        with self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE envelope_id = ?", [(i,) for i in envelope_ids])

    def failed(self, position: int, code: str, detail: str) -> None:
        """The server refused the head item: it stays at the head, marked, for a person to see."""
        with self._transaction():
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, failed_code = ?, failed_detail = ? WHERE position = ?",
                (code, detail[:500], position),
            )

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def oldest_pending_ms(self) -> int | None:
        row = self._db.execute("SELECT min(queued_ms) FROM outbox").fetchone()
        return None if row[0] is None else int(row[0])

    # --- receiving -------------------------------------------------------------------------------

    def cursor(self) -> str | None:
        value = self._get("cursor", b"")
        return value.decode("ascii") or None

    def received(self, items: list[tuple[int, int, bytes]], cursor: str | None, keep: bool = True) -> None:
        """Store pulled or pushed envelopes and move the cursor, in one transaction."""
        with self._transaction():
            if keep and items:
                self._db.executemany("INSERT OR IGNORE INTO inbox (seq, server_time_ms, body) VALUES (?, ?, ?)", items)
            if cursor is not None:
                self._set("cursor", cursor.encode("ascii"))

    def covered(self) -> frozenset[tuple[str, bytes, int]]:
        """The keys whose envelopes this device has pulled from the beginning: ``("key", reader key id,
        version)`` and ``("entry", concern id, entry key version)`` (public ids, no key)."""
        raw = self._get("covered", b"")
        kinds = {1: "key", 2: "entry"}
        return frozenset(
            (kinds[raw[i]], raw[i + 1 : i + 17], int.from_bytes(raw[i + 17 : i + 21], "big"))
            for i in range(0, len(raw), 21)
        )

    def cover(self, refs: Iterable[tuple[str, bytes, int]]) -> None:
        """Note that these keys' envelopes are pulled from the beginning (a first pull, or a backfill)."""
        codes = {"key": 1, "entry": 2}
        with self._transaction():
            everything = sorted(self.covered() | set(refs))
            self._set("covered", b"".join(bytes([codes[k]]) + i + v.to_bytes(4, "big") for k, i, v in everything))

    def inbox(self) -> list[tuple[int, int, bytes]]:
        return [
            (r[0], r[1], bytes(r[2]))
            for r in self._db.execute("SELECT seq, server_time_ms, body FROM inbox ORDER BY seq")
        ]

    def wipe(self) -> None:
        """Remove every local record (a revoked device). Unsent items are dropped only here."""
        with self._transaction():
            for table in ("outbox", "inbox", "state"):
                self._db.execute(f"DELETE FROM {table}")

    # --- helpers ---------------------------------------------------------------------------------

    def _get(self, name: str, default: bytes) -> bytes:
        row = self._db.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return default if row is None else bytes(row[0])

    def _set(self, name: str, value: bytes) -> None:
        self._db.execute(
            "INSERT INTO state (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _transaction(self):  # type: ignore[no-untyped-def]
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, tb) -> None:  # type: ignore[no-untyped-def]
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
