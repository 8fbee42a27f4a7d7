"""Alembic's environment for Cairn: SQLModel's metadata, one async engine, SQLite and PostgreSQL alike.

``server.migrate`` runs this with a connection it has already opened and locked (``config.attributes
["connection"]``). Without one, as when a developer autogenerates a revision, it opens its own engine for
the configured URL. Scripts are always rendered in batch mode, so that one script runs on SQLite (which
rebuilds a table to alter it) and on PostgreSQL (which alters in place).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from server import models  # noqa: F401  (registers the tables)
from server.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _render_item(kind: str, obj: object, autogen_context: object) -> str | bool:
    """Write SQLModel's ``AutoString`` as plain ``sa.String``: scripts depend on SQLAlchemy alone."""
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length!r})"
    return False


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=_render_item,
        **kwargs,
    )


def run_offline() -> None:
    """``--sql`` mode: print the DDL instead of running it."""
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_own_engine(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(run_on)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    run_on(connection)
else:
    asyncio.run(run_own_engine(config.get_main_option("sqlalchemy.url") or ""))
