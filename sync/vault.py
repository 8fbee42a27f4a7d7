"""The Python device's sealed local records: one account's data key, wrapped, and what it seals.

docs/PROTOCOL.md 2.8 and 12. One SQLite file (WAL, ``synchronous=FULL``; it may be the outbox's file) holds
the data key's wraps and records sealed under the data key (drafts, unsent audit entries, the device key,
...). The data key never reaches the disk unwrapped. It is wrapped twice: under the password's KEK (slot 1)
and under the account's X25519 identity key (slot 2). Changing the password rewraps slot 1 only; a device
that lost its password opens slot 2 with the identity keys a recovery (or a sign-in with the new password)
opens from the server's bundle, then rewraps slot 1. No record is ever re-sealed, so none can be lost.

A rewrap is staged first (``stage``: the new wrap beside the old), then committed (``commit``: the new wrap
replaces the old in one transaction). A crash between the two, or a server that stored the new password
but whose answer was lost, leaves a store that opens with either password.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

from crypto import DecryptionFailed, SecretKey
from crypto.local import (
    SLOT_IDENTITY,
    SLOT_PASSWORD,
    identity_wrap_key,
    new_data_key,
    open_local,
    password_wrap_key,
    seal_local,
    unwrap_data_key,
    wrap_data_key,
)

__all__ = ["Vault", "Locked"]

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS vault_wraps (name TEXT PRIMARY KEY, wrap BLOB NOT NULL)",
    """CREATE TABLE IF NOT EXISTS vault_records (
        kind TEXT NOT NULL, record_id BLOB NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (kind, record_id))""",
]
PASSWORD, IDENTITY, STAGED = "password", "identity", "password-staged"


class Locked(Exception):
    """The vault is locked (no data key in memory): unlock it with the password or the identity keys."""


class Vault:
    """Not thread-safe: one device, one account, one Vault."""

    def __init__(self, path: str | Path, school_id: bytes, user_id: bytes, device_id: bytes) -> None:
        self.path = Path(path)
        self.school_id, self.user_id, self.device_id = school_id, user_id, device_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        self._key: SecretKey | None = None

    def close(self) -> None:
        self.lock()
        self._db.close()

    def __repr__(self) -> str:
        return f"<Vault {self.path.name} {'unlocked' if self._key else 'locked'}>"

    # --- the data key ------------------------------------------------------------------------------

    @property
    def unlocked(self) -> bool:
        return self._key is not None

    @property
    def exists(self) -> bool:
        return self._wrap(PASSWORD) is not None

    def create(self, kek: SecretKey, identity_x25519_sk: bytes) -> None:
        """Make this device's data key and store it wrapped in both slots; the vault is then unlocked."""
        if self.exists:
            raise ValueError("this vault has a data key already; unlock it")
        key = new_data_key()
        with _Transaction(self._db):
            self._put_wrap(PASSWORD, self._wrapped(key, kek))
            self._put_wrap(IDENTITY, self._identity_wrapped(key, identity_x25519_sk))
        self._key = key

    def unlock(self, kek: SecretKey) -> None:
        """Open the data key with the password's KEK. A staged wrap (a change whose answer was lost) opens
        too, and is then committed. A wrong password raises ``DecryptionFailed``."""
        wrap = self._wrap(PASSWORD)
        if wrap is None:
            raise Locked("this vault has no data key yet")
        try:
            self._key = unwrap_data_key(wrap, password_wrap_key(kek), SLOT_PASSWORD, *self._ids)
            return
        except DecryptionFailed:
            staged = self._wrap(STAGED)
            if staged is None:
                raise
        self._key = unwrap_data_key(staged, password_wrap_key(kek), SLOT_PASSWORD, *self._ids)
        self.commit()

    def unlock_with_identity(self, identity_x25519_sk: bytes) -> None:
        """Open the data key with the account's X25519 identity key (after a recovery, or a sign-in with a
        password changed on another device); then ``rewrap`` it under the new password."""
        wrap = self._wrap(IDENTITY)
        if wrap is None:
            raise Locked("this vault has no identity-slot wrap")
        self._key = unwrap_data_key(wrap, identity_wrap_key(identity_x25519_sk), SLOT_IDENTITY, *self._ids)

    def open_after_sign_in(self, kek: SecretKey, identity_x25519_sk: bytes) -> None:
        """After signing in (the bundle gave the identity keys): open with the password's KEK, or, if the
        password changed on another device or was recovered, with the identity keys, then rewrap the data key
        under this password's KEK."""
        try:
            self.unlock(kek)
        except DecryptionFailed:
            self.unlock_with_identity(identity_x25519_sk)
            self.rewrap(kek)

    def stage(self, new_kek: SecretKey) -> None:
        """Write the data key wrapped under a new password's KEK beside the current wrap (step one)."""
        with _Transaction(self._db):
            self._put_wrap(STAGED, self._wrapped(self._unlocked(), new_kek))

    def commit(self) -> None:
        """The staged wrap replaces the current one, in one transaction (step two)."""
        with _Transaction(self._db):
            staged = self._wrap(STAGED)
            if staged is None:
                raise ValueError("nothing is staged")
            self._put_wrap(PASSWORD, staged)
            self._db.execute("DELETE FROM vault_wraps WHERE name = ?", (STAGED,))

    def discard_staged(self) -> None:
        """The server refused the change: drop the staged wrap, keep the current one."""
        with _Transaction(self._db):
            self._db.execute("DELETE FROM vault_wraps WHERE name = ?", (STAGED,))

    def rewrap(self, new_kek: SecretKey) -> None:
        self.stage(new_kek)
        self.commit()

    def lock(self) -> None:
        self._key = None

    # --- records -----------------------------------------------------------------------------------

    def put(self, kind: str, record_id: bytes, plaintext: bytes) -> None:
        sealed = seal_local(self._unlocked(), self.school_id, self.user_id, kind, record_id, plaintext)
        with _Transaction(self._db):
            self._db.execute(
                "INSERT INTO vault_records (kind, record_id, sealed) VALUES (?, ?, ?) "
                "ON CONFLICT(kind, record_id) DO UPDATE SET sealed = excluded.sealed",
                (kind, record_id, sealed),
            )

    def get(self, kind: str, record_id: bytes) -> bytes | None:
        row = self._db.execute(
            "SELECT sealed FROM vault_records WHERE kind = ? AND record_id = ?", (kind, record_id)
        ).fetchone()
        if row is None:
            return None
        return open_local(self._unlocked(), self.school_id, self.user_id, kind, record_id, bytes(row[0]))

    def records(self, kind: str) -> Iterator[tuple[bytes, bytes]]:
        """Every record of ``kind``, opened: (record id, plaintext)."""
        key = self._unlocked()
        rows = self._db.execute("SELECT record_id, sealed FROM vault_records WHERE kind = ? ORDER BY record_id",
                                (kind,)).fetchall()
        for record_id, sealed in rows:
            yield bytes(record_id), open_local(key, self.school_id, self.user_id, kind, bytes(record_id), bytes(sealed))

    def delete(self, kind: str, record_id: bytes) -> None:
        with _Transaction(self._db):
            self._db.execute("DELETE FROM vault_records WHERE kind = ? AND record_id = ?", (kind, record_id))

    # --- helpers -----------------------------------------------------------------------------------

    @property
    def _ids(self) -> tuple[bytes, bytes, bytes]:
        return self.school_id, self.user_id, self.device_id

    def _unlocked(self) -> SecretKey:
        if self._key is None:
            raise Locked("the vault is locked")
        return self._key

    def _wrapped(self, key: SecretKey, kek: SecretKey) -> bytes:
        return wrap_data_key(key, password_wrap_key(kek), SLOT_PASSWORD, *self._ids)

    def _identity_wrapped(self, key: SecretKey, identity_x25519_sk: bytes) -> bytes:
        return wrap_data_key(key, identity_wrap_key(identity_x25519_sk), SLOT_IDENTITY, *self._ids)

    def _wrap(self, name: str) -> bytes | None:
        row = self._db.execute("SELECT wrap FROM vault_wraps WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def _put_wrap(self, name: str, wrap: bytes) -> None:
        self._db.execute(
            "INSERT INTO vault_wraps (name, wrap) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET wrap = excluded.wrap",
            (name, wrap),
        )


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, tb) -> None:  # type: ignore[no-untyped-def]
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
