"""The checker's school, built once through the real client code and copied for every schedule.

Seven people, eight devices: the DSL (founding admin and safeguarding keyholder), a deputy DSL (safeguarding
and teacher), the Oak and Ash class teachers (the Oak teacher with a phone besides), the SENCo (SEN and a
teacher with no class), a lunchtime supervisor (contributor) and the office (admin). Two pupils per class.
Building costs Argon2id for every account; a copy (the SQLite file, or a PostgreSQL database made from the
template) costs milliseconds, so each schedule starts from the same school with a server of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
from sqlalchemy import update

import sync.device
from server.models import Account
from sync.device import sign_in
from sync.keyholder import run_duties
from sync.outbox import Outbox
from tests.server.harness import PASSWORD, Member, Running, School, Template, build_school, running_server

from ._model import CLASSES, PUPILS_PER_CLASS, Model, Person

INVITED = {"deputy": ["safeguarding", "teacher"], "sen": ["sen", "teacher"], "lunch": ["contributor"],
           "office": ["admin"]}
USERS = ("dsl", "deputy", "teacher-oak", "teacher-ash", "sen", "lunch", "office")
DEVICES = (*USERS, "teacher-oak-phone")


@functools.lru_cache(maxsize=64)
def _derive(password: str, params):  # type: ignore[no-untyped-def]
    return _real_derive(password, params)


_real_derive = sync.device.derive_account


@contextlib.contextmanager
def remembered_passwords() -> Iterator[None]:
    """Argon2id is deliberately slow and these schedules sign people in again and again with one password:
    derive each account's keys once (the same inputs give the same keys, so nothing else changes)."""
    sync.device.derive_account = _derive
    try:
        yield
    finally:
        sync.device.derive_account = _real_derive


def initial_model() -> Model:
    people = {
        "dsl": Person({"admin", "safeguarding"}),
        "deputy": Person({"safeguarding", "teacher"}),
        "teacher-oak": Person({"teacher"}, {"oak"}),
        "teacher-ash": Person({"teacher"}, {"ash"}),
        "sen": Person({"sen", "teacher"}),
        "lunch": Person({"contributor"}),
        "office": Person({"admin"}),
    }
    owners = {d: d for d in USERS} | {"teacher-oak-phone": "teacher-oak"}
    return Model(people, owners)


async def fresh_code_step(running: Running, school_id: bytes) -> None:
    """A one-time code is taken once per 30-second step; signing in again within one, a test forgets it."""
    async with running.services.engine.begin() as conn:
        await conn.execute(update(Account).where(Account.school_id == school_id).values(totp_last_step=0))


async def sign_in_again(school: School, login: str, name: str) -> Member:
    """``login`` signs in on a new device (its keys made there, certified by its identity key), pinning the
    school signing key the DSL compared; the directory lists it once a keyholder's device re-signs."""
    totp = school.members[login].totp if login != "dsl" else school.dsl.totp
    await fresh_code_step(school.running, school.school_id)
    device = await sign_in(school.http, school.school_id, login, PASSWORD, totp_secret=totp)
    device.pinned_signing_pk = school.dsl.device.pinned_signing_pk
    await device.follow_directory()
    return Member(device, totp, Outbox(school.folder / f"{name}-{os.urandom(4).hex()}.db"))


async def build(running: Running, http: httpx.AsyncClient, folder: Path) -> School:
    school = await build_school(running, http, folder, pupils_per_class=PUPILS_PER_CLASS, classes=CLASSES)
    for name, roles in INVITED.items():
        await school.invite(name, roles)
    school.members["teacher-oak-phone"] = await sign_in_again(school, "teacher-oak", "teacher-oak-phone")
    await school.dsl.device.refresh()  # lists the phone (a new device of a listed account: unattended)
    await run_duties(school.dsl.device)  # the deputy's and the SENCo's group and pupil keys, everyone's roster keys
    for member in [school.dsl, *school.members.values()]:
        await member.device.refresh()
    return school


async def build_template(kind: str, folder: Path, database_url: str, database: str) -> Template:
    with remembered_passwords():
        async with running_server(database_url) as running:
            async with httpx.AsyncClient(base_url=running.base, timeout=60) as http:
                school = await build(running, http, folder)
    for m in [school.dsl, *school.members.values()]:
        m.outbox.close()
    return Template(kind, database, folder, school)


def admin_url() -> str:
    from tests.server.conftest import _admin_url

    return _admin_url()


def in_thread(coro):  # type: ignore[no-untyped-def]
    """Run ``coro`` on a loop of its own (a template is built outside any test's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def make_template(kind: str, folder: Path) -> Template:
    if kind == "sqlite":
        return await build_template(kind, folder, f"sqlite+aiosqlite:///{folder}/cairn.db", str(folder / "cairn.db"))
    import asyncpg

    conn = await asyncpg.connect(admin_url(), timeout=10)
    name = f"cairn_vis_template_{uuid.uuid4().hex[:12]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = f"{admin_url().rsplit('/', 1)[0]}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    return await build_template("postgres", folder, url, name)


async def drop_template(template: Template) -> None:
    if template.kind != "postgres":
        return
    import asyncpg

    conn = await asyncpg.connect(admin_url(), timeout=10)
    await conn.execute(f'DROP DATABASE IF EXISTS "{template.database}" WITH (FORCE)')
    await conn.close()


SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None  # the copies live in memory where the OS allows


class Stage:
    """One server for many schedules: a real app on a loopback port whose database is swapped for a fresh copy
    of the template's before each schedule (new ``Services`` on the copy: engine, hub, ingestor), so schedules
    share nothing but the listening socket. Starting uvicorn costs more than a short schedule does."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self._server: contextlib.AbstractAsyncContextManager | None = None
        self.running: Running | None = None

    async def start(self, folder: Path) -> None:
        url = self.template.restore_url(folder) if self.template.kind == "sqlite" else None
        if url is None:
            self._copy = copy_of(self.template, folder)
            url = await self._copy.__aenter__()
        self._server = running_server(url, wrap=self._keep)
        self.running = await self._server.__aenter__()
        self.http = httpx.AsyncClient(base_url=self.running.base, timeout=30)  # one client: TLS set-up costs 80 ms

    async def stop(self) -> None:
        if self._server is not None:
            await self.http.aclose()
            await self._server.__aexit__(None, None, None)
            if self.template.kind != "sqlite":
                await self._copy.__aexit__(None, None, None)
            self._server = None

    @contextlib.asynccontextmanager
    async def serving(self, folder: Path) -> AsyncIterator[Running]:
        """The server, serving a copy of the template school made for this schedule alone."""
        from server.services import Services
        from server.settings import Settings

        assert self.running is not None, "Stage.start first"
        app = self.app
        async with copy_of(self.template, folder) as url:
            services = Services(Settings.from_env({"CAIRN_DATABASE_URL": url}))
            await services.start()
            before = app.state.services
            app.state.services = services
            try:
                yield Running(self.running.base, self.running.ws_url, services, self.template)
            finally:
                app.state.services = before
                await services.stop()

    def _keep(self, app):  # type: ignore[no-untyped-def]
        self.app = app
        return app


@contextlib.asynccontextmanager
async def copy_of(template: Template, folder: Path) -> AsyncIterator[str]:
    """A database of the schedule's own, copied from the template's."""
    if template.kind == "sqlite":
        yield template.restore_url(folder)
        return
    import asyncpg

    conn = await asyncpg.connect(admin_url(), timeout=10)
    name = f"cairn_vis_{uuid.uuid4().hex[:12]}"
    await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    try:
        yield template.restore_url(folder, admin_url(), name)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
