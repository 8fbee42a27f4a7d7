"""The demo school: a generated, fictional "Hazelbrook Primary (demo)", built through the real client code.

``ensure_demo(settings)`` builds it once in the configured database and then reuses it. The build runs
the same app as ``cairn serve`` on a loopback port of its own, and does what a school's devices would:
the operator founds the school; every account is registered and signed in once by a device of its own
(``sync.device``: keys are made on the device side, the server sees public halves and sealed bundles);
the DSL's device makes the group keys and every pupil's key and grants them; staff devices write
concerns (``sync.writer``), queue them in outboxes and sync them over the websocket; safeguarding
devices pull, decrypt and follow some of them up. The server learns pupils only as random pseudonymous
ids (keyed hashes of fictional UPNs); names, classes, dates of birth and flags are sealed into the roster
under the roster keys, which reach staff as grants.

The credentials file (``data/demo-credentials.json``, git-ignored) holds fictional demo accounts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import secrets
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import distinct, func, select, update

from crypto import envelope as env
from sync.client import SyncClient
from sync.device import ROSTER_SENSITIVE, ROSTER_STAFF, SAFEGUARDING, SEN, Device, register, sign_in
from sync.events import Event, decode
from sync.outbox import Outbox
from sync.protocol import b64d, b64e
from sync.writer import ConcernWriter, Written

from . import _demo_text as text
from .app import create_app
from .db import make_engine
from .migrate import upgrade
from .models import Account, Envelope, Pupil, School, SchoolClass
from .schools import create_school
from .services import Services
from .settings import Settings

__all__ = ["ensure_demo", "describe", "DemoInfo", "DemoSize", "DemoAccount", "DemoError", "DEMO_NAME", "CREDENTIALS"]

DEMO_NAME = "Hazelbrook Primary (demo)"
BUILDING = "Hazelbrook Primary (demo, unfinished build)"  # renamed to DEMO_NAME once built; otherwise ignored
CREDENTIALS = Path("data/demo-credentials.json")
NOTE = (
    "FICTIONAL DEMO ACCOUNTS. Hazelbrook Primary (demo) is generated: every person, pupil and concern in it is "
    "made up by server/demo.py. Never put real data into it, and never use these sign-ins for anything else."
)


class DemoError(Exception):
    """The demo cannot be built or reused as things stand; the message says what to do."""


@dataclass(frozen=True)
class DemoSize:
    classes: int = 14
    pupils: int = 420
    staff: int = 45
    concerns: int = 300


@dataclass(frozen=True)
class DemoAccount:
    login: str
    name: str
    roles: tuple[str, ...]
    job: str
    class_label: str | None = None
    totp_secret: str | None = field(default=None, repr=False)
    recovery_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class DemoInfo:
    school_id: bytes
    name: str
    password: str = field(repr=False)
    accounts: tuple[DemoAccount, ...]
    credentials: Path
    created: bool
    seconds: float
    counts: dict[str, int]


async def ensure_demo(
    settings: Settings, *, size: DemoSize = DemoSize(), credentials: Path = CREDENTIALS, seed: int = 2025
) -> DemoInfo:
    """Build the demo school in ``settings``' database unless it is there; return its sign-ins."""
    started = time.monotonic()
    await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        existing = {bytes(r[0]) for r in await _scalars(engine, select(School.id).where(School.name == DEMO_NAME))}
        saved = _load(credentials)
        if saved is not None and bytes.fromhex(saved["school"]["id"]) in existing:
            school_id = bytes.fromhex(saved["school"]["id"])
            return _info(saved, credentials, False, time.monotonic() - started, await _counts(engine, school_id))
        if existing:
            raise DemoError(
                f"the database already holds a demo school, but {credentials} does not hold its sign-ins; "
                "remove the database (data/cairn.db by default) to build a fresh demo"
            )
    finally:
        await engine.dispose()
    saved = await _build(settings, size, random.Random(seed))
    credentials.parent.mkdir(parents=True, exist_ok=True)
    with open(os.open(credentials, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
        json.dump(saved, out, indent=1, ensure_ascii=False)
        out.write("\n")
    os.chmod(credentials, 0o600)
    school_id = bytes.fromhex(saved["school"]["id"])
    engine = make_engine(settings.database_url)
    try:
        async with engine.begin() as conn:  # only a finished build, with its sign-ins saved, is the demo
            await conn.execute(update(School).where(School.id == school_id).values(name=DEMO_NAME))
        counts = await _counts(engine, school_id)
    finally:
        await engine.dispose()
    return _info(saved, credentials, True, time.monotonic() - started, counts)


# --- reading what is there -------------------------------------------------------------------------


async def _scalars(engine, query) -> list:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def _counts(engine, school_id: bytes) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        count = {
            "staff": select(func.count()).select_from(Account).where(Account.school_id == school_id),
            "pupils": select(func.count()).select_from(Pupil).where(Pupil.school_id == school_id),
            "classes": select(func.count()).select_from(SchoolClass).where(SchoolClass.school_id == school_id),
            "concerns": select(func.count(distinct(Envelope.concern_id))).where(Envelope.school_id == school_id),
            "events": select(func.count()).select_from(Envelope).where(Envelope.school_id == school_id),
        }
        return {name: int(await conn.scalar(query) or 0) for name, query in count.items()}


def _load(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DemoError(f"reading {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("school"), dict):
        raise DemoError(f"{path} is not a demo credentials file; move it away to build a fresh demo")
    return data


def _info(saved: dict, path: Path, created: bool, seconds: float, counts: dict[str, int]) -> DemoInfo:
    accounts = tuple(
        DemoAccount(
            a["login"], a["name"], tuple(a["roles"]), a["job"], a.get("class"), a.get("totp_secret"), a["recovery_key"]
        )
        for a in saved["accounts"]
    )
    school = saved["school"]
    return DemoInfo(
        bytes.fromhex(school["id"]), school["name"], saved["password"], accounts, path, created, seconds, counts
    )


# --- building ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _server(settings: Settings) -> AsyncIterator[tuple[str, Services]]:
    """The same app as ``cairn serve``, on a loopback port of its own, for as long as the build runs."""
    services = Services(settings)
    app = create_app(settings, services)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
            raise DemoError("the demo's build server stopped before it started")
        yield f"127.0.0.1:{sock.getsockname()[1]}", services
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass
class _Member:
    spec: text.StaffSpec
    device: Device
    totp_secret: str | None
    recovery_key: str
    outbox: Outbox | None = None
    writer: ConcernWriter | None = None


async def _build(settings: Settings, size: DemoSize, rng: random.Random) -> dict:
    labels = text.class_labels(size.classes)
    plan = text.staff_plan(rng, size.staff, labels)
    names = text.pupil_names(rng, size.pupils)
    password = "demo-" + secrets.token_urlsafe(9)
    with tempfile.TemporaryDirectory(prefix="cairn-demo-") as folder:
        async with _server(settings) as (host, services):
            async with httpx.AsyncClient(base_url=f"http://{host}", timeout=120) as http:
                build = _Build(http, f"ws://{host}/sync", Path(folder), password, rng)
                try:
                    await build.found(services, plan[0])
                    await build.staff(plan[1:])
                    classes = await build.roster(labels, names)
                    await build.concerns(size.concerns, classes)
                    await build.follow_ups()
                finally:
                    build.close()
    return {
        "note": NOTE,
        "school": {"id": build.school_id.hex(), "name": DEMO_NAME},
        "url": f"http://{settings.host}:{settings.port}",
        "password": password,
        "accounts": [
            {
                "login": m.spec.login,
                "name": m.spec.name,
                "job": m.spec.job,
                "roles": list(m.spec.roles),
                "class": m.spec.class_label,
                "totp_secret": m.totp_secret,
                "totp_uri": m.totp_secret
                and f"otpauth://totp/Cairn%20demo:{m.spec.login}?secret={m.totp_secret}&issuer=Cairn%20demo",
                "recovery_key": m.recovery_key,
            }
            for m in build.members.values()
        ],
        "classes": [{"label": label, "pupils": len(pupils)} for label, pupils in classes.items()],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def text_sensitive(rng: random.Random) -> dict:
    """Fictional date of birth and flags for the sensitive roster (primary-age birthdays)."""
    born = dt.date(2015, 9, 1) + dt.timedelta(days=rng.randrange(6 * 365))
    flags = [
        f
        for f, p in (("SEN support", 0.15), ("pupil premium", 0.2), ("EAL", 0.12), ("looked after", 0.02))
        if rng.random() < p
    ]
    return {"dob": born.isoformat(), "flags": flags}


class _Build:
    """The devices of the demo's staff, each with its own outbox, and what they do in order."""

    def __init__(self, http: httpx.AsyncClient, ws_url: str, folder: Path, password: str, rng: random.Random):
        self.http, self.ws_url, self.folder, self.password, self.rng = http, ws_url, folder, password, rng
        self.members: dict[str, _Member] = {}
        self.school_id = b""
        self.first_names: dict[str, str] = {}
        self.today = dt.date.today()

    @property
    def dsl(self) -> _Member:
        return self.members["dsl"]

    async def _join(self, spec: text.StaffSpec, code: str) -> _Member:
        """Accept an invitation on a new device, then sign that device in once."""
        registration, registered = await register(self.http, self.school_id, code, self.password)
        device = await sign_in(
            self.http,
            self.school_id,
            spec.login,
            self.password,
            totp_secret=registration.totp_secret,
            device=registered,
        )
        member = _Member(spec, device, registration.totp_secret, registration.recovery_key)
        self.members[spec.login] = member
        return member

    async def found(self, services: Services, founder: text.StaffSpec) -> None:
        """The operator's step (server side), then the founding DSL's device makes the group keys."""
        self.school_id, code = await create_school(services.engine, BUILDING, founder.login, founder.name)
        dsl = await self._join(founder, code)
        await dsl.device.refresh()
        await dsl.device.found_groups((SAFEGUARDING, SEN, ROSTER_STAFF, ROSTER_SENSITIVE))

    async def staff(self, plan: list[text.StaffSpec]) -> None:
        for spec in plan:
            invited = await self.dsl.device.call(
                "POST", "/api/v1/admin/invitations", login=spec.login, display_name=spec.name, roles=list(spec.roles)
            )
            code = invited["code"]
            await self._join(spec, code)

    async def roster(self, labels: list[str], names: list[str]) -> dict[str, list[tuple[bytes, str]]]:
        """Pupils (random pseudonymous ids and their keys, made by the DSL's device), classes, and grants:
        pupil keys to class teachers, the safeguarding key to the safeguarding team, the SEN key to SEN."""
        dsl = self.dsl.device
        await dsl.refresh()
        upns = [f"X{self.rng.randrange(10**12):012d}" for _ in names]  # fictional UPNs, never stored
        pupils = [(dsl.pupil_id(upn), name) for upn, name in zip(upns, names, strict=True)]
        self.first_names = {pid.hex(): name.split()[0] for pid, name in pupils}
        await dsl.add_pupils([pid for pid, _ in pupils])
        classes = {label: pupils[i :: len(labels)] for i, label in enumerate(labels)}
        teachers = {m.spec.class_label: m for m in self.members.values() if m.spec.class_label}
        await dsl.call(
            "POST",
            "/api/v1/admin/classes",
            classes=[
                {
                    "id": b64e(os.urandom(16)),
                    "label": label,
                    "pupils": [b64e(pid) for pid, _ in members],
                    "teachers": [b64e(teachers[label].device.user_id)] if label in teachers else [],
                }
                for label, members in classes.items()
            ],
        )
        await dsl.approve()  # the DSL reviews the new staff and the class lists, and approves them on its device
        grants = []
        for label, members in classes.items():
            if label in teachers:
                teacher = teachers[label].device
                for pid, _ in members:
                    key_id, version, _ = dsl.pupil_key(pid)
                    grants.append((key_id, version, teacher.user_id, teacher.identity.box.public))
        for purpose, role in ((SAFEGUARDING, "safeguarding"), (SEN, "sen")):
            key_id, version, _ = dsl.group_key(purpose)
            grants += [
                (key_id, version, m.device.user_id, m.device.identity.box.public)
                for m in self.members.values()
                if role in m.spec.roles and m is not self.dsl
            ]
        for purpose, readers in (
            (ROSTER_STAFF, self.members.values()),
            (ROSTER_SENSITIVE, [m for m in self.members.values() if set(m.spec.roles) - {"contributor"}]),
        ):
            key_id, version, _ = dsl.group_key(purpose)
            grants += [
                (key_id, version, m.device.user_id, m.device.identity.box.public) for m in readers if m is not self.dsl
            ]
        await dsl.grant(grants)
        await dsl.publish_roster(
            [
                (pid, ROSTER_STAFF, json.dumps({"name": name, "class": label}).encode())
                for label, members in classes.items()
                for pid, name in members
            ]
            + [
                (pid, ROSTER_SENSITIVE, json.dumps(text_sensitive(self.rng)).encode())
                for members in classes.values()
                for pid, _ in members
            ]
        )
        for member in self.members.values():
            await member.device.refresh()
            member.outbox = Outbox(self.folder / f"{member.spec.login}.db")
            member.writer = ConcernWriter(member.device, member.outbox)
        return classes

    def _writer(self, who: str, label: str) -> _Member:
        """A plausible author: its class teacher or an assistant for class matters, the SENCo for SEN, the
        office for calls home, the safeguarding team for decisions, anyone for a worry."""
        people = list(self.members.values())
        teacher = [m for m in people if m.spec.class_label == label]
        helpers = [m for m in people if "contributor" in m.spec.roles]
        pools = {
            "class": teacher * 3 + helpers,
            "sen": [m for m in people if "sen" in m.spec.roles] * 2 + teacher + helpers[:3],
            "office": [m for m in people if m.spec.login in ("office", "dsl")] + teacher,
            "safeguarding": [m for m in people if "safeguarding" in m.spec.roles],
            "any": people,
        }
        return self.rng.choice(pools[who] or people)

    async def concerns(self, count: int, classes: dict[str, list[tuple[bytes, str]]]) -> None:
        for _ in range(count):
            label = self.rng.choice(list(classes))
            subject, peer = (self.rng.choice(classes[label]) for _ in range(2))
            planned = text.concern_plan(
                self.rng,
                (subject[0].hex(), self.first_names[subject[0].hex()]),
                (peer[0].hex(), self.first_names[peer[0].hex()]),
                self.today,
            )
            member = self._writer(planned["writer"], label)
            assert member.writer is not None
            member.writer.create(planned["record"])
        await self._sync_all()

    async def follow_ups(self) -> None:
        """Safeguarding devices pull and decrypt every concern, then add assignments, actions, comments and
        status changes to some, each sealed to the same readers as the concern."""
        team = [m for m in self.members.values() if "safeguarding" in m.spec.roles]
        directory = self.dsl.device.directory
        device_keys = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in directory["devices"]}
        for n, member in enumerate(team):
            assert member.outbox is not None and member.writer is not None
            client = self._client(member)
            await client.connect()
            await client.pull_all()
            await client.close()
            for _, _, body in member.outbox.inbox()[n :: len(team)]:
                opened = env.open(body, device_keys[env.parse(body).header.author_device], member.device.keyring())
                h = opened.header
                event = decode(
                    opened.content,
                    event_id=h.envelope_id,
                    concern_id=h.concern_id,
                    author_device=h.author_device,
                    device_time_ms=h.device_time_ms,
                )
                if event.type != "created":
                    continue
                record = event.body["record"]
                name = self.first_names[record["pupils"][0]["pupil"]]
                owner = self.rng.choice(team).device.user_id.hex()
                parents: list[Event | Written] = [event]
                for kind, step in text.follow_up_plan(self.rng, name, record["kind"], self.today, owner):
                    parents = [member.writer.follow_up(opened, parents, kind, step)]
        await self._sync_all()

    async def _sync_all(self) -> None:
        for member in self.members.values():
            assert member.outbox is not None
            if member.outbox.pending_count():
                client = self._client(member)
                await client.connect()
                report = await client.flush()
                await client.close()
                if report.refused or member.outbox.pending_count():
                    raise DemoError(f"the server refused a demo envelope: {report.refused}")

    def _client(self, member: _Member) -> SyncClient:
        assert member.outbox is not None
        device = member.device
        return SyncClient(
            self.ws_url,
            member.outbox,
            school_id=device.school_id,
            device_id=device.device_id,
            device_key=device.device_key,
            token=device.token or "",
        )

    def close(self) -> None:
        for member in self.members.values():
            if member.outbox is not None:
                member.outbox.close()


def describe(info: DemoInfo, url: str) -> str:
    """What ``cairn demo`` prints: where to go, and every fictional sign-in."""
    how = f"built in {info.seconds:.1f} s" if info.created else "already built: reused"
    c = info.counts
    lines = [
        f"{info.name}: a fictional school of generated data ({how})",
        f"  {c['staff']} staff, {c['pupils']} pupils in {c['classes']} classes, {c['concerns']} concerns "
        f"({c['events']} events)",
        f"  open        {url}",
        f"  school id   {info.school_id.hex()}",
        f"  password    {info.password}   (every demo account)",
        f"  TOTP secrets and recovery keys: {info.credentials} (fictional demo accounts only)",
        "  sign-ins (login, roles, job):",
    ]
    width = max(len(a.login) for a in info.accounts)
    roles = max(len(", ".join(a.roles)) for a in info.accounts)
    rank = {"safeguarding": 0, "sen": 1, "admin": 2, "teacher": 3, "contributor": 4}
    ordered = sorted(info.accounts, key=lambda a: min(rank.get(r, 5) for r in a.roles))  # stable: founder first
    lines += [f"    {a.login:<{width}}  {', '.join(a.roles):<{roles}}  {a.job}" for a in ordered]
    return "\n".join(lines)
