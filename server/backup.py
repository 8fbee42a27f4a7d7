"""Backups: ``cairn backup DEST`` copies the database while the server runs; ``cairn restore SRC`` brings
a copy back (docs/OPERATIONS.md, "Backups").

- SQLite: ``VACUUM INTO`` a temporary file beside DEST. It reads in one transaction, so the copy is one
  consistent moment even while the server commits (WAL readers never block the writer), and it is a
  single compact file. Restore copies the backup's pages into the configured database file with
  SQLite's online backup API, holding the file's exclusive lock, which also proves that no server has
  the file open.
- PostgreSQL: ``pg_dump --format=custom`` (one snapshot) and ``pg_restore --clean --if-exists
  --single-transaction``: all of the backup or nothing.

A backup is written to a temporary name, checked (SQLite: ``quick_check``; PostgreSQL: the dump's table
of contents reads back), fsynced and only then renamed to DEST; an existing DEST is never overwritten.
A restore refuses a database that holds any row unless ``force`` is given, and refuses a backup made
by a newer Cairn (an unknown schema revision).

Restoring rolls the server back to the backup's moment, but devices have already seen sequence numbers
beyond it. So that none of those numbers is ever given to a different envelope (a reader would skip the
new one, or keep the old one under its number), a restore moves each school's sequence counter forward
to at least the restore time in milliseconds and at least ``SEQ_GAP`` past the backup's last number.
Sequence numbers stay increasing; after a restore they are no longer dense.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.engine import URL, make_url

from .db import is_sqlite, make_engine
from .migrate import SCRIPTS
from .models import Envelope, SchoolCounter
from .storage import now_ms

__all__ = ["BackupError", "Summary", "backup", "restore", "SEQ_GAP"]

SEQ_GAP = 10**9  # more envelopes than a school writes in centuries
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"


class BackupError(Exception):
    """A backup or restore could not be made; the message says what to do."""


@dataclass(frozen=True)
class Summary:
    path: Path
    size: int
    revision: str | None
    schools: int | None = None
    envelopes: int | None = None

    def describe(self, verb: str) -> str:
        counts = "" if self.schools is None else f", {self.schools} school(s), {self.envelopes:,} envelope(s)"
        return f"{verb} {self.path}: {self.size:,} bytes{counts}, schema revision {self.revision or 'none'}"


def backup(url: str, dest: Path) -> Summary:
    """Write a consistent copy of the database at ``url`` to ``dest`` (a new file)."""
    dest = Path(dest)
    if dest.exists():
        raise BackupError(f"{dest} already exists; a backup never overwrites one: choose a new name")
    if not dest.parent.is_dir():
        raise BackupError(f"the folder {dest.parent} does not exist")
    partial = dest.with_name(f".{dest.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        if is_sqlite(url):
            _sqlite_backup(_sqlite_path(url, must_exist=True), partial)
        else:
            _pg_backup(make_url(url), partial)
        partial.chmod(0o600)  # ciphertext and public keys, but also metadata and sealed key bundles
        _fsync(partial)
        partial.rename(dest)
        _fsync(dest.parent)
    finally:
        partial.unlink(missing_ok=True)
    if is_sqlite(url):
        return Summary(dest, dest.stat().st_size, *_sqlite_counts(dest, read_only=True))
    return Summary(dest, dest.stat().st_size, _pg_dump_revision(make_url(url), dest))


def restore(url: str, src: Path, *, force: bool = False) -> Summary:
    """Bring the backup ``src`` back into the database at ``url`` (empty, unless ``force``)."""
    src = Path(src)
    if not src.is_file():
        raise BackupError(f"no backup file at {src}")
    with open(src, "rb") as f:
        magic = f.read(16)
    if is_sqlite(url):
        if not magic.startswith(SQLITE_MAGIC):
            kind = "a PostgreSQL dump" if magic.startswith(PGDUMP_MAGIC) else "not a SQLite database"
            raise BackupError(f"{src} is {kind}; restore a SQLite backup into a SQLite database")
        target = _sqlite_path(url, must_exist=False)
        _sqlite_restore(src, target, force)
        return Summary(target, target.stat().st_size, *_sqlite_counts(target, read_only=False))
    if not magic.startswith(PGDUMP_MAGIC):
        raise BackupError(f"{src} is not a pg_dump custom-format file; restore a PostgreSQL backup into PostgreSQL")
    return asyncio.run(_pg_restore(url, src, force))


# --- SQLite --------------------------------------------------------------------------------------


def _sqlite_path(url: str, *, must_exist: bool) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("CAIRN_DATABASE_URL names an in-memory SQLite database: there is nothing to back up")
    path = Path(database)
    if must_exist and not path.is_file():
        raise BackupError(f"no database file at {path} (CAIRN_DATABASE_URL)")
    return path


def _sqlite_backup(path: Path, partial: Path) -> None:
    source = sqlite3.connect(path, timeout=30)
    try:
        source.execute("VACUUM INTO ?", (str(partial),))
    except sqlite3.Error as exc:
        raise BackupError(f"copying {path}: {exc}") from None
    finally:
        source.close()
    _sqlite_checked(partial)


def _sqlite_checked(path: Path) -> str | None:
    """``quick_check`` the SQLite file at ``path`` and return its schema revision."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise BackupError(f"{path} fails SQLite's quick_check: {verdict}")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "alembic_version" not in tables:
            raise BackupError(f"{path} is not a Cairn database (it has no schema revision)")
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"reading {path}: {exc}") from None
    finally:
        db.close()
    return row[0] if row else None


def _sqlite_counts(path: Path, *, read_only: bool) -> tuple[str | None, int, int]:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}", uri=True)
    try:
        revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
        schools = db.execute("SELECT count(*) FROM school_counters").fetchone()[0]
        envelopes = db.execute("SELECT count(*) FROM envelopes").fetchone()[0]
    finally:
        db.close()
    return (revision[0] if revision else None), int(schools), int(envelopes)


def _sqlite_restore(src: Path, target: Path, force: bool) -> None:
    _known_revision(_sqlite_checked(src), src)
    target.parent.mkdir(parents=True, exist_ok=True)
    dest = sqlite3.connect(target, timeout=0.5, isolation_level=None)
    try:
        try:
            dest.execute("PRAGMA journal_mode=WAL")
            dest.execute("PRAGMA synchronous=FULL")
            dest.execute("PRAGMA locking_mode=EXCLUSIVE")
            dest.execute("BEGIN EXCLUSIVE")  # held until this connection closes (exclusive locking mode)
            dest.execute("COMMIT")
        except sqlite3.OperationalError:
            raise BackupError(f"{target} is in use: stop the server before restoring") from None
        tables = [r[0] for r in dest.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        filled = [t for t in tables if t != "alembic_version" and dest.execute(f'SELECT 1 FROM "{t}"').fetchone()]
        if filled and not force:
            raise BackupError(f"{target} is not empty (table {filled[0]} holds rows); add --force to replace it")
        source = sqlite3.connect(f"{src.resolve().as_uri()}?mode=ro", uri=True)
        try:
            source.backup(dest)
        finally:
            source.close()
        _move_counters(dest)
    finally:
        dest.close()


def _move_counters(db: sqlite3.Connection) -> None:
    now = now_ms()
    with_rows = db.execute("SELECT school_id, last_seq FROM school_counters").fetchall()
    db.execute("BEGIN IMMEDIATE")
    for school_id, last_seq in with_rows:
        db.execute(
            "UPDATE school_counters SET last_seq = ? WHERE school_id = ?",
            (max(int(last_seq) + SEQ_GAP, now), school_id),
        )
    db.execute("COMMIT")


# --- PostgreSQL ----------------------------------------------------------------------------------


def _pg_command(tool: str, url: URL) -> tuple[list[str], dict[str, str]]:
    """``tool``'s connection arguments for ``url``; the password travels in the environment, never argv."""
    if shutil.which(tool) is None:
        raise BackupError(f"{tool} is not installed; install PostgreSQL's client tools (the same major version)")
    args = [tool, "--no-password", "--dbname", url.database or ""]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    mode = url.query.get("sslmode") or url.query.get("ssl")
    if isinstance(mode, str):
        env["PGSSLMODE"] = mode
    return args, env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        raise BackupError(f"{what} failed: {' / '.join(detail[-5:]) or f'exit status {done.returncode}'}")


def _pg_backup(url: URL, partial: Path) -> None:
    args, env = _pg_command("pg_dump", url)
    _run([*args, "--format=custom", "--file", str(partial)], env, "pg_dump")
    if _pg_dump_revision(url, partial) is None:
        raise BackupError("the dump holds no schema revision: is CAIRN_DATABASE_URL a Cairn database?")


def _pg_dump_revision(url: URL, dump: Path) -> str | None:
    """The schema revision inside a custom-format dump (reading it back also proves the dump is whole)."""
    args, env = _pg_command("pg_restore", url)
    read = [args[0], "--data-only", "--table", "alembic_version", "--file", "-", str(dump)]
    done = subprocess.run(read, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"reading the dump {dump} back failed: {done.stderr.strip()[-500:]}")
    lines = done.stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line and index + 1 < len(lines):
            return None if lines[index + 1] == "\\." else lines[index + 1].strip()
    return None


async def _pg_restore(url: str, src: Path, force: bool) -> Summary:
    revision = _pg_dump_revision(make_url(url), src)
    _known_revision(revision, src)
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            filled = []
            for table in tables:
                query = text(f'SELECT 1 FROM "{table}" LIMIT 1')
                if table != "alembic_version" and (await conn.execute(query)).first():
                    filled.append(table)
        if filled and not force:
            raise BackupError(f"the database is not empty (table {filled[0]} holds rows); add --force to replace it")
        args, env = _pg_command("pg_restore", make_url(url))
        options = ["--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"]
        await asyncio.to_thread(_run, [*args, *options, str(src)], env, "pg_restore")
        async with engine.begin() as conn:
            now = now_ms()
            counters = (await conn.execute(select(SchoolCounter.school_id, SchoolCounter.last_seq))).all()
            for school_id, last_seq in counters:
                await conn.execute(
                    update(SchoolCounter)
                    .where(SchoolCounter.school_id == school_id)
                    .values(last_seq=max(int(last_seq) + SEQ_GAP, now))
                )
            envelopes = await conn.scalar(select(func.count()).select_from(Envelope))
    finally:
        await engine.dispose()
    return Summary(src, src.stat().st_size, revision, len(counters), int(envelopes or 0))


# --- shared --------------------------------------------------------------------------------------


def _known_revision(revision: str | None, src: Path) -> None:
    """Refuse a backup whose schema this Cairn does not know (made by a newer version)."""
    known = {p.stem.split("_", 1)[0] for p in (SCRIPTS / "versions").glob("*.py")}
    if revision is not None and revision not in known:
        raise BackupError(f"{src} has schema revision {revision}, unknown to this Cairn: restore it with a newer one")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
