"""The visibility checker's shared set-up: one template school and server per database kind and pytest worker,
built on first use and shared by the checker's test files (they are split so that the workers share the
schedules; each file goes to one worker)."""

from __future__ import annotations

import pytest

from ._run import Staged, staged


@pytest.fixture(scope="session")
def stages(tmp_path_factory):  # type: ignore[no-untyped-def]
    made: dict[str, Staged] = {}

    def get(kind: str) -> Staged:
        if kind not in made:
            if kind == "postgres":
                _postgres_or_skip()
            made[kind] = staged(kind, tmp_path_factory.mktemp(f"visibility-{kind}"))
        return made[kind]

    yield get
    for s in made.values():
        s.close()


def _postgres_or_skip() -> None:
    import asyncio

    import asyncpg

    from ._school import admin_url

    async def probe() -> None:
        conn = await asyncpg.connect(admin_url(), timeout=10)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL answers at {admin_url().split('@')[-1]} (set CAIRN_TEST_POSTGRES_URL): {exc}")
