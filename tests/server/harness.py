"""A real server on a loopback port, and a fictional school built through the real client code paths.

The listening socket is bound before uvicorn starts, so a client may connect at once: its connection
waits in the backlog until the server accepts it. Nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from server.app import create_app
from server.migrate import upgrade
from server.schools import create_school
from server.services import Services
from server.settings import Settings
from sync.client import SyncClient
from sync.device import SAFEGUARDING, SEN, Device, register, sign_in
from sync.outbox import Outbox

PASSWORD = "fictional staff passphrase for tests"


@dataclass
class Running:
    base: str
    ws_url: str
    services: Services
    template: Template | None = None  # the built school this server's database was copied from, if any


@contextlib.asynccontextmanager
async def running_server(database_url: str, log_config: dict | None = None, wrap=None) -> AsyncIterator[Running]:  # type: ignore[no-untyped-def]
    settings = Settings.from_env({"CAIRN_DATABASE_URL": database_url})
    await upgrade(database_url)  # before serving, so the test may write to storage at once
    services = Services(settings)
    app = create_app(settings, services)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        wrap(app) if wrap else app,
        log_level="warning",
        lifespan="on",
        ws_max_size=8 * 1024 * 1024,
        log_config=log_config,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield Running(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/sync", services)
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class Member:
    device: Device
    totp: str | None
    outbox: Outbox
    client: SyncClient | None = None

    async def connect(self, running: Running, **kwargs: object) -> SyncClient:
        self.client = SyncClient(
            running.ws_url,
            self.outbox,
            school_id=self.device.school_id,
            device_id=self.device.device_id,
            device_key=self.device.device_key,
            token=self.device.token or "",
            **kwargs,
        )  # type: ignore[arg-type]
        await self.client.connect()
        return self.client


@dataclass
class School:
    school_id: bytes
    http: httpx.AsyncClient
    running: Running
    folder: Path
    dsl: Member
    members: dict[str, Member] = field(default_factory=dict)
    pupils: list[bytes] = field(default_factory=list)
    classes: dict[str, list[bytes]] = field(default_factory=dict)

    async def invite(self, name: str, roles: list[str], *, approve: bool = True) -> Member:
        """An admin (the DSL, here) invites ``name``; the invitee joins on a device of its own; and, unless
        ``approve`` is False, the DSL approves the new account on its device, as a keyholder would."""
        code = (
            await self.dsl.device.call("POST", "/api/v1/admin/invitations", login=name, display_name=name, roles=roles)
        )["code"]
        registration, registered = await register(self.http, self.school_id, code, PASSWORD)
        device = await sign_in(
            self.http, self.school_id, name, PASSWORD, totp_secret=registration.totp_secret, device=registered
        )
        member = Member(device, registration.totp_secret, Outbox(self.folder / f"{name}-{os.urandom(4).hex()}.db"))
        self.members[name] = member
        if approve:  # the DSL saw the new account on its device and approved it (and nothing else waiting)
            pending = await self.dsl.device.pending()
            await self.dsl.device.approve({i for i in pending if device.user_id in i[1:3]})
        return member


async def build_school(
    running: Running,
    http: httpx.AsyncClient,
    folder: Path,
    *,
    pupils_per_class: int = 3,
    classes: tuple[str, ...] = ("oak", "ash"),
) -> School:
    """A fictional school: a founding DSL (admin + safeguarding), group keys, pupils in classes, and a
    teacher per class with the class's pupil keys granted by the DSL's device."""
    school_id, code = await create_school(running.services.engine, "Fictional Primary", "dsl", "Fictional DSL")
    registration, registered = await register(http, school_id, code, PASSWORD)
    dsl_device = await sign_in(
        http, school_id, "dsl", PASSWORD, totp_secret=registration.totp_secret, device=registered
    )
    await dsl_device.refresh()
    await dsl_device.found_groups((SAFEGUARDING, SEN))
    school = School(
        school_id, http, running, folder, Member(dsl_device, registration.totp_secret, Outbox(folder / "dsl.db"))
    )
    by_class = {name: [os.urandom(16) for _ in range(pupils_per_class)] for name in classes}
    await dsl_device.add_pupils([p for ps in by_class.values() for p in ps])
    school.pupils = [p for ps in by_class.values() for p in ps]
    school.classes = by_class
    teachers = {}
    for name in classes:
        teachers[name] = await school.invite(f"teacher-{name}", ["teacher"])
    await dsl_device.call(
        "POST",
        "/api/v1/admin/classes",
        classes=[
            {
                "id": _b64(os.urandom(16)),
                "label": name,
                "pupils": [_b64(p) for p in by_class[name]],
                "teachers": [_b64(teachers[name].device.user_id)],
            }
            for name in classes
        ],
    )
    await dsl_device.approve()  # the class lists: the DSL approves them as a reviewed list
    grants = []
    for name in classes:
        teacher = teachers[name].device
        for pupil in by_class[name]:
            key_id, version, _ = dsl_device.pupil_key(pupil)
            grants.append((key_id, version, teacher.user_id, teacher.identity.box.public))
    await dsl_device.grant(grants)
    for member in [school.dsl, *teachers.values()]:
        await member.device.refresh()
    return school


def _b64(raw: bytes) -> str:
    from sync.protocol import b64e

    return b64e(raw)


async def raw_socket(running: Running, member: Member):  # type: ignore[no-untyped-def]
    """An authenticated websocket without the client, for sending frames the client never would."""
    from websockets.asyncio.client import connect

    from crypto import sign_device_auth
    from sync.protocol import b64d, b64e, frame

    ws = await connect(running.ws_url, max_size=None)
    import json

    challenge = json.loads(await ws.recv())
    device = member.device
    proof = sign_device_auth(device.device_key, device.school_id, device.device_id, b64d(challenge["nonce"], "nonce"))
    await ws.send(
        frame(
            {
                "type": "auth",
                "id": "a",
                "token": device.token,
                "device_id": b64e(device.device_id),
                "signature": b64e(proof),
                "protocol": 1,
            }
        )
    )
    ready = json.loads(await ws.recv())
    assert ready["type"] == "ready", ready
    return ws


# --- a built school, copied for each test ------------------------------------------------------------


@dataclass
class Template:
    """A school built once through the real client code, kept as its database and the devices' state, so
    each test gets a copy of its own in a fraction of the time building takes (Argon2id for every account,
    approvals, grants). A test changes only its copy: the database file (SQLite) or a database made from
    the template (PostgreSQL), and the outbox files, are copied for each test."""

    kind: str
    database: str  # the SQLite file, or the PostgreSQL template database's name
    folder: Path
    school: School

    def restore_url(self, tmp_path: Path, postgres_admin: str | None = None, name: str | None = None) -> str:
        import shutil

        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                source = Path(self.database + suffix)
                if source.exists():
                    shutil.copyfile(source, tmp_path / f"cairn.db{suffix}")
            return f"sqlite+aiosqlite:///{tmp_path}/cairn.db"
        assert postgres_admin is not None and name is not None
        base = postgres_admin.rsplit("/", 1)[0]
        return f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)

    def restore(self, running: Running, http: httpx.AsyncClient, tmp_path: Path) -> School:
        import shutil

        def member(m: Member) -> Member:
            outbox = tmp_path / m.outbox.path.name
            shutil.copyfile(m.outbox.path, outbox)
            d = m.device
            device = dataclasses.replace(
                d, http=http, roles=set(d.roles), reader_keys=dict(d.reader_keys), directory=copy.deepcopy(d.directory),
                made_keys=set(d.made_keys), _directory_lock=asyncio.Lock(),
            )
            return Member(device, m.totp, Outbox(outbox))

        s = self.school
        return School(s.school_id, http, running, tmp_path, member(s.dsl),
                      {name: member(m) for name, m in s.members.items()}, list(s.pupils),
                      {k: list(v) for k, v in s.classes.items()})


async def build_template(kind: str, folder: Path, database_url: str, database: str) -> Template:
    """Build the test school once on ``database_url`` and stop the server, leaving the database to copy."""
    async with running_server(database_url) as running:
        async with httpx.AsyncClient(base_url=running.base, timeout=60) as http:
            school = await build_school(running, http, folder)
    for m in [school.dsl, *school.members.values()]:
        m.outbox.close()
    return Template(kind, database, folder, school)
