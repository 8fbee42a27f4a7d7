"""Schools seeded straight into storage, for tests that need many writers or many schools.

A seeded school has a safeguarding reader key, one pupil (with its own reader key) and some devices,
written as rows; its envelopes are sealed with the real ``crypto.envelope.seal`` and stored through
``SqlStorage.append_many``, as the ingestor would after checking each signature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from crypto import BoxKeyPair, SecretKey, SigningKey
from crypto import envelope as env
from server.models import Device, Pupil, ReaderKey
from server.schools import create_school
from server.storage import Incoming, ReadableKeys, now_ms


@dataclass
class SeededDevice:
    device_id: bytes
    key: SigningKey = field(repr=False)
    counter: int = 0
    last_hash: bytes = bytes(32)


@dataclass
class SeededSchool:
    school_id: bytes
    safeguarding: tuple[bytes, BoxKeyPair]
    pupil_id: bytes
    pupil_key: tuple[bytes, BoxKeyPair]
    devices: list[SeededDevice]

    def recipient(self, which: tuple[bytes, BoxKeyPair]) -> tuple[env.Recipient, bytes]:
        return env.Recipient(env.RECIPIENT_READER_KEY, which[0], 1), which[1].public

    def seal(self, device: SeededDevice, *, to_pupil: bool = False, content: bytes = b"fictional") -> Incoming:
        """The device's next envelope in its chain: to safeguarding, and to the pupil's key if asked."""
        recipients = [self.recipient(self.safeguarding)]
        if to_pupil:
            recipients.append(self.recipient(self.pupil_key))
        raw = env.seal(
            kind=env.KIND_CONCERN_EVENT,
            school_id=self.school_id,
            envelope_id=os.urandom(16),
            concern_id=os.urandom(16),
            author_device=device.key,
            author_device_id=device.device_id,
            counter=device.counter + 1,
            prev_hash=device.last_hash,
            device_time_ms=now_ms(),
            entry_key=SecretKey.generate(),
            entry_key_version=1,
            pupil_ids=[self.pupil_id] if to_pupil else [],
            recipients=recipients,
            content=content,
        )
        digest = env.envelope_hash(raw)
        device.counter, device.last_hash = device.counter + 1, digest
        return Incoming(raw, env.verify(raw, device.key.public), digest)

    def reader(self, *, pupil_only: bool = False) -> ReadableKeys:
        """What a reader holding the safeguarding key (or only the pupil's key) may read."""
        key = self.pupil_key if pupil_only else self.safeguarding
        return ReadableKeys(os.urandom(16), frozenset({(key[0], 1)}))


async def seed_school(engine: AsyncEngine, name: str = "Fictional Primary", devices: int = 1) -> SeededSchool:
    school_id, _ = await create_school(engine, name, "dsl", "Fictional DSL")
    safeguarding = (os.urandom(16), BoxKeyPair.generate())
    pupil_key = (os.urandom(16), BoxKeyPair.generate())
    pupil_id = os.urandom(16)
    made = [SeededDevice(os.urandom(16), SigningKey.generate()) for _ in range(devices)]
    async with engine.begin() as conn:
        await conn.execute(
            insert(ReaderKey),
            [
                {
                    "school_id": school_id,
                    "id": key_id,
                    "version": 1,
                    "purpose": purpose,
                    "public_key": pair.public,
                    "created_ms": now_ms(),
                    "current": True,
                }
                for purpose, (key_id, pair) in (("group:safeguarding", safeguarding), ("pupil", pupil_key))
            ],
        )
        await conn.execute(
            insert(Pupil).values(school_id=school_id, id=pupil_id, reader_key_id=pupil_key[0], created_ms=now_ms())
        )
        await conn.execute(
            insert(Device),
            [
                {
                    "school_id": school_id,
                    "id": d.device_id,
                    "user_id": os.urandom(16),
                    "public_key": d.key.public,
                    "cert": b"",
                    "created_ms": now_ms(),
                    "last_counter": 0,
                    "last_hash": bytes(32),
                }
                for d in made
            ],
        )
    return SeededSchool(school_id, safeguarding, pupil_id, pupil_key, made)
