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


@pytest.fixture(scope="session")
def school_templates(tmp_path_factory):  # type: ignore[no-untyped-def]
    """The test school, built once per database kind (on first use) and copied for each test that asks for
    ``school``: building it costs seconds of Argon2id and signing, copying it a few milliseconds."""
    import asyncio
    import concurrent.futures

    from tests.server.harness import build_template

    made: dict = {}
    names: list[str] = []

    def run(coro):  # type: ignore[no-untyped-def]  # its own loop, in a thread: the tests' loop is not running
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coro).result()

    async def _postgres_template(folder):  # type: ignore[no-untyped-def]
        import asyncpg

        admin = _admin_url()
        try:
            conn = await asyncpg.connect(admin, timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.skip(f"no PostgreSQL answers at {admin.split('@')[-1]} (set CAIRN_TEST_POSTGRES_URL): {exc}")
        name = f"cairn_template_{uuid.uuid4().hex[:16]}"
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        names.append(name)
        url = f"{admin.rsplit('/', 1)[0]}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
        return await build_template("postgres", folder, url, name)

    def get(kind: str):  # type: ignore[no-untyped-def]
        if kind not in made:
            folder = tmp_path_factory.mktemp(f"school-{kind}")
            if kind == "sqlite":
                made[kind] = run(build_template(kind, folder, f"sqlite+aiosqlite:///{folder}/cairn.db",
                                                str(folder / "cairn.db")))
            else:
                made[kind] = run(_postgres_template(folder))
        return made[kind]

    yield get

    async def drop() -> None:
        import asyncpg

        conn = await asyncpg.connect(_admin_url(), timeout=10)
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    if names:
        run(drop())


@contextlib.asynccontextmanager
async def _copy_of_postgres(template) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A database of the test's own, made from the template school's database, dropped afterwards."""
    import asyncpg

    admin = _admin_url()
    conn = await asyncpg.connect(admin, timeout=10)
    name = f"cairn_test_{uuid.uuid4().hex[:16]}"
    await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    try:
        yield template.restore_url(None, admin, name)  # type: ignore[arg-type]
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@pytest_asyncio.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def running(request, tmp_path):  # type: ignore[no-untyped-def]
    """A real server on a loopback port, with a fresh SQLite file or a fresh PostgreSQL database; for a test
    that also asks for ``school``, a copy of the template school's database."""
    from tests.server.harness import running_server

    template = request.getfixturevalue("school_templates")(request.param) if "school" in request.fixturenames else None
    async with contextlib.AsyncExitStack() as stack:
        if template is not None and request.param == "sqlite":
            url = template.restore_url(tmp_path)
        elif template is not None:
            url = await stack.enter_async_context(_copy_of_postgres(template))
        elif request.param == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path}/cairn.db"
        else:
            url = await stack.enter_async_context(postgres_database())
        server = await stack.enter_async_context(running_server(url))
        server.template = template
        yield server


@pytest_asyncio.fixture
async def school(running, tmp_path):  # type: ignore[no-untyped-def]
    """A fictional school on the running server: a DSL, two classes of three pupils, a teacher each; a copy,
    for this test alone, of one built through the real client code (tests/server/harness.py)."""
    import httpx

    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        built = running.template.restore(running, http, tmp_path)
        yield built
        for member in [built.dsl, *built.members.values()]:
            if member.client is not None:
                await member.client.close()
            member.outbox.close()
