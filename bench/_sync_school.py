"""The sync benchmark's fictional school, built through the real client code over HTTP.

The operator step (``create_school``) writes to the server's database directly, as ``cairn`` would;
everything after it goes through ``sync.device``: the DSL registers and founds the group keys, adds
pupils and classes, invites staff and grants each teacher their class's pupil keys. Writers are
teachers and contributors (lunch staff, office, teaching assistants); idle devices are extra devices of
a few contributor accounts (contributors have no TOTP, so one account may sign in many times at once).

Argon2id costs each device about 90 ms of CPU by design. The benchmark derives each account's keys once
and reuses them for that account's later sign-ins (same password, same salt, same result), so making a
thousand idle devices takes seconds; the server's side of every sign-in is unchanged.

Every name, pupil and note here is fictional.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

import sync.device as device_module
from crypto import envelope as env
from server.db import make_engine
from server.schools import create_school
from sync.device import SAFEGUARDING, SEN, Device, register, sign_in
from sync.outbox import Outbox
from sync.protocol import b64e

__all__ = ["Writer", "School", "build_school", "add_idle_devices", "preseal", "PASSWORD"]

T = TypeVar("T")
R = TypeVar("R")

PASSWORD = "fictional staff passphrase for the benchmark"
PUPILS_PER_CLASS = 25
DEVICES_PER_IDLE_ACCOUNT = 50
SETUP_CONCURRENCY = 16


@dataclass
class Writer:
    """A staff device that writes concerns: its signed-in device, an in-memory outbox (the chain state
    the sealing needs; the benchmark measures the server, not the device's disk), its pupils."""

    name: str
    device: Device
    pupils: list[bytes]
    outbox: Outbox = field(default_factory=lambda: Outbox(":memory:"))
    _recipients: dict[bytes, list] = field(default_factory=dict, repr=False)

    def recipients(self, pupil: bytes) -> list:
        if pupil not in self._recipients:
            self._recipients[pupil] = self.device.recipients_for([pupil])
        return self._recipients[pupil]


@dataclass
class School:
    school_id: bytes
    dsl: Writer
    writers: list[Writer]
    pupils: list[bytes]


@contextlib.contextmanager
def kdf_once_per_account() -> Iterator[None]:
    """Reuse each account's Argon2id result for its later sign-ins (see the module's docstring)."""
    real = device_module.derive_account
    done: dict[tuple[str, bytes], object] = {}

    def derive(password: str, params):  # type: ignore[no-untyped-def]
        key = (password, params.encode())
        if key not in done:
            done[key] = real(password, params)
        return done[key]

    device_module.derive_account = derive  # type: ignore[assignment]
    try:
        yield
    finally:
        device_module.derive_account = real


async def _member(http: httpx.AsyncClient, school_id: bytes, dsl: Device, login: str, role: str) -> Device:
    """Invite, register and sign in one account on one device."""
    invite = await dsl.call("POST", "/api/v1/admin/invitations", login=login, display_name=login, roles=[role])
    registration, registered = await register(http, school_id, invite["code"], PASSWORD)
    return await sign_in(http, school_id, login, PASSWORD, totp_secret=registration.totp_secret, device=registered)


async def build_school(database_url: str, http: httpx.AsyncClient, devices: int, seed: int = 7) -> School:
    """A school of ``devices`` staff devices: the DSL, a third of the rest teachers (one class each,
    25 pupils a class), the others contributors."""
    if devices < 3:
        raise ValueError("the sync benchmark needs at least 3 devices (the DSL, a teacher, a contributor)")
    engine = make_engine(database_url)
    try:
        school_id, code = await create_school(engine, "Fictional Bench Academy", "dsl", "Fictional DSL")
    finally:
        await engine.dispose()
    rng = random.Random(seed)
    registration, registered = await register(http, school_id, code, PASSWORD)
    dsl = await sign_in(http, school_id, "dsl", PASSWORD, totp_secret=registration.totp_secret, device=registered)
    await dsl.refresh()
    await dsl.found_groups((SAFEGUARDING, SEN))

    classes = max(1, (devices - 1) // 3)
    by_class = [[os.urandom(16) for _ in range(PUPILS_PER_CLASS)] for _ in range(classes)]
    pupils = [p for ps in by_class for p in ps]
    await dsl.add_pupils(pupils)

    teachers = await _gather_limited(
        lambda n: _member(http, school_id, dsl, f"teacher-{n:03d}", "teacher"), range(classes)
    )
    contributors = await _gather_limited(
        lambda n: _member(http, school_id, dsl, f"staff-{n:03d}", "contributor"), range(devices - 1 - classes)
    )
    await dsl.call(
        "POST",
        "/api/v1/admin/classes",
        classes=[
            {
                "id": b64e(os.urandom(16)),
                "label": f"class {n:03d}",
                "pupils": [b64e(p) for p in by_class[n]],
                "teachers": [b64e(teachers[n].user_id)],
            }
            for n in range(classes)
        ],
    )
    await dsl.approve()  # the DSL approves the new staff and the class lists, as one reviewed list
    grants = []
    for teacher, class_pupils in zip(teachers, by_class, strict=True):
        for pupil in class_pupils:
            key_id, version, _ = dsl.pupil_key(pupil)
            grants.append((key_id, version, teacher.user_id, teacher.identity.box.public))
    await dsl.grant(grants)
    await _gather_limited(Device.refresh, [*teachers, *contributors])

    writers = [Writer(d.login, d, class_pupils) for d, class_pupils in zip(teachers, by_class, strict=True)]
    writers += [Writer(d.login, d, rng.sample(pupils, min(8, len(pupils)))) for d in contributors]
    return School(school_id, Writer("dsl", dsl, pupils[:8]), writers, pupils)


async def add_idle_devices(http: httpx.AsyncClient, school: School, count: int) -> list[Device]:
    """``count`` more signed-in devices, spread over contributor accounts made for them."""
    accounts = await _gather_limited(
        lambda n: _member(http, school.school_id, school.dsl.device, f"idle-{n:03d}", "contributor"),
        range(-(-count // DEVICES_PER_IDLE_ACCOUNT)),
    )
    logins = [accounts[n // DEVICES_PER_IDLE_ACCOUNT].login for n in range(count)]
    return await _gather_limited(lambda login: sign_in(http, school.school_id, login, PASSWORD), logins)


def preseal(writer: Writer, count: int, rng: random.Random) -> list[tuple[bytes, str]]:
    """Seal ``count`` concern events, in the device's chain order, before any timing starts.

    Returns each envelope's id and its base64url text as it travels in a put."""
    for n in range(count):
        pupil = rng.choice(writer.pupils)
        note = f"fictional note {n:06d} by {writer.name}: seemed withdrawn at break, said home was noisy"
        writer.device.write(writer.outbox, note.encode(), pupil_ids=[pupil], recipients=writer.recipients(pupil))
    pending = writer.outbox.head(writer.outbox.pending_count(), 1 << 40)[-count:] if count else []
    return [(p.envelope_id, b64e(p.body)) for p in pending]


def envelope_id(body: bytes) -> bytes:
    return env.parse(body).header.envelope_id


async def _gather_limited(
    step: Callable[[T], Awaitable[R]], items: Iterable[T], limit: int = SETUP_CONCURRENCY
) -> list[R]:
    """``step(item)`` for every item, at most ``limit`` at once, results in order. Each coroutine is made
    only when it starts, so an interrupted run leaves none un-awaited."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await step(item)

    return list(await asyncio.gather(*(one(i) for i in items)))
