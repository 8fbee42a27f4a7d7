"""The test databases themselves: each PostgreSQL test gets an empty database of its own, dropped after."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio

SEEN: list[str] = []


@pytest.mark.postgres
@pytest.mark.parametrize("run", [1, 2])
async def test_each_postgres_test_gets_an_empty_database_of_its_own(postgres_url: str, run: int) -> None:
    import asyncpg

    url = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(url, timeout=10)
    try:
        name = await conn.fetchval("select current_database()")
        tables = await conn.fetchval("select count(*) from pg_tables where schemaname = 'public'")
        await conn.execute("create table marker (id int)")
    finally:
        await conn.close()
    assert name.startswith("cairn_test_") and name not in SEEN
    assert tables == 0
    SEEN.append(name)


@pytest.mark.postgres
async def test_databases_of_earlier_tests_were_dropped(postgres_url: str) -> None:
    import asyncpg

    url = postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(url, timeout=10)
    try:
        names = {r[0] for r in await conn.fetch("select datname from pg_database")}
    finally:
        await conn.close()
    assert not names & set(SEEN)
