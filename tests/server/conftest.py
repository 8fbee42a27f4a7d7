"""Databases for server tests: SQLite in a temporary folder, and PostgreSQL in a database of the test's own.

``CAIRN_TEST_POSTGRES_URL`` names a PostgreSQL server (any database on it, usually ``postgres``); without
it the local server at 127.0.0.1:5432 is tried, and the suite is skipped, plainly, when none answers. Each
test that asks for ``postgres_url`` gets a fresh, uniquely named database, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_url() -> str:
    return os.environ.get("CAIRN_TEST_POSTGRES_URL", "") or DEFAULT_URL


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh, uniquely named PostgreSQL database (asyncpg URL form), dropped afterwards."""
    import asyncpg

    admin = _admin_url()
    try:
        conn = await asyncpg.connect(admin, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL answers at {admin.split('@')[-1]} (set CAIRN_TEST_POSTGRES_URL): {exc}")
    name = f"cairn_test_{uuid.uuid4().hex[:16]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin.rsplit("/", 1)[0]
        yield f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@pytest_asyncio.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A PostgreSQL URL (asyncpg form) for a database made for this test alone."""
    async with postgres_database() as url:
        yield url


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def running(request, tmp_path):  # type: ignore[no-untyped-def]
    """A real server on a loopback port, with a fresh SQLite file or a fresh PostgreSQL database."""
    from tests.server.harness import running_server

    async with contextlib.AsyncExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path}/cairn.db"
        else:
            url = await stack.enter_async_context(postgres_database())
        yield await stack.enter_async_context(running_server(url))


@pytest_asyncio.fixture
async def school(running, tmp_path):  # type: ignore[no-untyped-def]
    """A fictional school on the running server: a DSL, two classes of three pupils, a teacher each."""
    import httpx

    from tests.server.harness import build_school

    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        built = await build_school(running, http, tmp_path)
        yield built
        for member in [built.dsl, *built.members.values()]:
            if member.client is not None:
                await member.client.close()
            member.outbox.close()
