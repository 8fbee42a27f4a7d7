"""Migrations: an empty database upgraded to head has exactly the tables of server/models.py, on SQLite and
PostgreSQL; upgrading again changes nothing; upgrades started together wait for one another."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from server import models  # noqa: F401  (registers the tables)
from server.cli import main
from server.db import make_engine
from server.migrate import MIGRATION_LOCK, current, head, upgrade

ROOT = Path(__file__).resolve().parents[2]


async def _differences(url: str) -> list[object]:
    """What Alembic's autogenerate would change to make the database match models.py: [] when equal."""

    def compare(connection: Connection) -> list[object]:
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), SQLModel.metadata)

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(compare)
    finally:
        await engine.dispose()


async def _audit_row_ids(url: str) -> list[int]:
    """Insert two audit rows without ids, as the server does: the database must number them."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for _ in range(2):
                await conn.execute(
                    text("INSERT INTO audit_events (school_id, at_ms, action, target) VALUES (:s, 1, 'test', '')"),
                    {"s": b"\x01" * 16},
                )
            return list((await conn.execute(text("SELECT id FROM audit_events ORDER BY id"))).scalars())
    finally:
        await engine.dispose()


def _sqlite(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite+aiosqlite:///{tmp_path}/cairn.db"


def test_the_shipped_scripts_have_one_head_the_newest_revision() -> None:
    from pathlib import Path

    import server.migrate

    versions = sorted(
        p.name.split("_")[0] for p in (Path(server.migrate.__file__).parent / "migrations" / "versions").glob("0*.py")
    )
    assert head() == versions[-1] and len(versions) == len(set(versions))


@pytest.mark.asyncio
async def test_upgrading_an_empty_sqlite_database_gives_exactly_the_models(tmp_path) -> None:
    url = _sqlite(tmp_path)
    assert await current(url) is None
    await upgrade(url)
    assert await current(url) == head()
    assert await _differences(url) == []
    assert await _audit_row_ids(url) == [1, 2]


@pytest.mark.asyncio
@pytest.mark.postgres
async def test_upgrading_an_empty_postgres_database_gives_exactly_the_models(postgres_url: str) -> None:
    assert await current(postgres_url) is None
    await upgrade(postgres_url)
    assert await current(postgres_url) == head()
    assert await _differences(postgres_url) == []
    assert await _audit_row_ids(postgres_url) == [1, 2]


@pytest.mark.asyncio
async def test_upgrading_twice_changes_nothing_and_keeps_the_rows(tmp_path) -> None:
    url = _sqlite(tmp_path)
    await upgrade(url)
    assert await _audit_row_ids(url) == [1, 2]
    await upgrade(url)
    assert await current(url) == head()
    assert await _differences(url) == []
    assert await _audit_row_ids(url) == [1, 2, 3, 4]


@pytest.mark.asyncio
async def test_two_cairn_migrate_processes_started_together_on_sqlite_both_succeed(tmp_path) -> None:
    """Two processes, as two app instances would be: without the write lock one fails on a table the other
    has just made."""
    url = _sqlite(tmp_path)
    env = {**os.environ, "CAIRN_DATABASE_URL": url}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "migrate", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    for process in processes:
        _, err = await process.communicate()
        assert process.returncode == 0, err.decode()
    assert await current(url) == head()
    assert await _differences(url) == []


@pytest.mark.asyncio
@pytest.mark.postgres
async def test_upgrades_started_together_on_postgres_wait_for_the_lock_and_both_succeed(postgres_url: str) -> None:
    import asyncpg

    holder = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=10)
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        upgrades = [asyncio.create_task(upgrade(postgres_url)) for _ in range(2)]
        waiting = 0
        for _ in range(1000):  # until both upgrades wait on the lock (or one has failed)
            waiting = await holder.fetchval(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
            )
            if waiting == 2 or any(u.done() for u in upgrades):
                break
            await asyncio.sleep(0.01)
        await held.commit()  # releases the lock: one upgrade creates everything, the other finds it done
        await asyncio.gather(*upgrades)
    finally:
        await holder.close()
    assert waiting == 2
    assert await current(postgres_url) == head()
    assert await _differences(postgres_url) == []


def test_cairn_migrate_upgrades_the_configured_database(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CAIRN_DATABASE_URL", _sqlite(tmp_path))
    assert main(["migrate"]) == 0
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out == f"database at revision {head()}\n" * 2


def test_cairn_migrate_refuses_a_database_from_a_newer_cairn(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    with sqlite3.connect(tmp_path / "cairn.db") as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('9999')")
    db.close()
    monkeypatch.setenv("CAIRN_DATABASE_URL", _sqlite(tmp_path))
    assert main(["migrate"]) == 1
    assert capsys.readouterr().err.startswith("Error: migrating the database: Can't locate revision")
