"""The adversary suite runs on the server tests' fixtures (a built school copied for each test, on SQLite
and PostgreSQL alike): imported here, not copied, so both suites build and copy the school the same way."""

from __future__ import annotations

import pytest_asyncio

from tests.server.conftest import running, school, school_templates  # noqa: F401  (fixtures)


@pytest_asyncio.fixture
async def office(school):  # type: ignore[no-untyped-def]  # noqa: F811
    """The hostile admin: an office account with the admin role only, a second factor, approved by the DSL
    as any new admin is, and signed in on a device of its own."""
    member = await school.invite("office", ["admin"])
    await member.device.refresh()
    return member
