"""``cairn backup`` and ``cairn restore``: a backup taken while devices write restores to a database that
opens, whose sequence numbers are dense, whose every envelope verifies against its author device and
chain, and which holds everything acknowledged before the backup began (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from crypto import envelope as env
from server.backup import SEQ_GAP
from server.db import is_sqlite, make_engine
from server.migrate import current, head
from server.models import Device, Envelope, SchoolCounter
from tests.server.conftest import postgres_database

pytestmark = pytest.mark.asyncio


async def _cairn(url: str, *args: str) -> tuple[int, str, str]:
    """Run the ``cairn`` command in its own process against the database at ``url``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    environment["CAIRN_DATABASE_URL"] = url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return int(process.returncode or 0), out.decode(), err.decode()


async def _write(member, pupils: list[bytes], running, acked: set[bytes], stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    """A device writing a few concerns at a time and flushing them, until stopped."""
    client = await member.connect(running, batch_size=4)
    n = 0
    while not stop.is_set():
        for _ in range(3):
            n += 1
            note = f"fictional: note {n} from {member.device.login}, tearful at break"
            member.device.write(member.outbox, note.encode(), pupil_ids=[pupils[n % len(pupils)]])
        sending = {p.envelope_id for p in member.outbox.head(1000, 1 << 30)}
        report = await client.flush()
        assert not report.refused
        acked |= sending
        await asyncio.sleep(0.01)


async def _restored(url: str, school_id: bytes) -> tuple[list, dict[bytes, bytes], int]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            columns = (Envelope.seq, Envelope.envelope_id, Envelope.author_device, Envelope.counter, Envelope.body)
            rows = (
                await conn.execute(select(*columns).where(Envelope.school_id == school_id).order_by(Envelope.seq))
            ).all()
            keys = dict((await conn.execute(select(Device.id, Device.public_key))).all())
            top = await conn.scalar(select(SchoolCounter.last_seq).where(SchoolCounter.school_id == school_id))
    finally:
        await engine.dispose()
    return rows, {bytes(k): bytes(v) for k, v in keys.items()}, int(top)


async def test_a_backup_taken_while_devices_write_restores_whole_and_verifies(running, school, tmp_path) -> None:
    source_url = running.services.settings.database_url
    acked: set[bytes] = set()
    stop = asyncio.Event()
    writers = [
        asyncio.create_task(_write(school.dsl, school.pupils, running, acked, stop)),
        asyncio.create_task(_write(school.members["teacher-oak"], school.classes["oak"], running, acked, stop)),
        asyncio.create_task(_write(school.members["teacher-ash"], school.classes["ash"], running, acked, stop)),
    ]
    while len(acked) < 30:
        await asyncio.sleep(0.01)
    before = set(acked)
    code, out, err = await _cairn(source_url, "backup", str(tmp_path / "school.backup"))
    during = len(acked) - len(before)
    stop.set()
    await asyncio.gather(*writers)
    assert code == 0, err
    assert out.startswith(f"backup written to {tmp_path / 'school.backup'}")
    assert during > 0  # the devices kept writing while the backup ran
    assert (tmp_path / "school.backup").stat().st_mode & 0o777 == 0o600

    async with contextlib.AsyncExitStack() as stack:
        if is_sqlite(source_url):
            target = f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'cairn.db'}"
        else:
            target = await stack.enter_async_context(postgres_database())
        code, out, err = await _cairn(target, "restore", str(tmp_path / "school.backup"))
        assert code == 0, err
        assert await current(target) == head()  # it opens, at the newest schema

        rows, device_keys, top = await _restored(target, school.school_id)
        seqs = [int(r[0]) for r in rows]
        assert seqs == list(range(1, len(rows) + 1))  # dense
        assert top >= len(rows) + SEQ_GAP  # and the counter moved on past anything a device has seen
        ids = {bytes(r[1]) for r in rows}
        assert before <= ids
        chains: dict[bytes, tuple[int, bytes]] = {}
        for _, envelope_id, author, counter, body in rows:
            parsed = env.verify(bytes(body), device_keys[bytes(author)])
            assert parsed.header.envelope_id == bytes(envelope_id)
            last_counter, last_hash = chains.get(bytes(author), (0, bytes(32)))
            assert parsed.header.counter == counter == last_counter + 1
            assert parsed.header.prev_hash == last_hash  # the device's chain holds: nothing missing inside it
            chains[bytes(author)] = (counter, env.envelope_hash(bytes(body)))

        code, _, err = await _cairn(target, "restore", str(tmp_path / "school.backup"))
        assert code == 1 and "not empty" in err and "--force" in err
        code, _, err = await _cairn(target, "restore", "--force", str(tmp_path / "school.backup"))
        assert code == 0, err


async def test_a_backup_never_overwrites_a_file(tmp_path) -> None:
    (tmp_path / "taken").write_bytes(b"an older backup")
    code, _, err = await _cairn(f"sqlite+aiosqlite:///{tmp_path / 'cairn.db'}", "backup", str(tmp_path / "taken"))
    assert code == 1 and err.startswith("Error: ") and "already exists" in err
    assert (tmp_path / "taken").read_bytes() == b"an older backup"


async def test_restore_refuses_a_sqlite_database_a_server_has_open(tmp_path) -> None:
    from tests.server.harness import running_server

    url = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    async with running_server(url) as live:
        await live.services.storage.last_seq(b"\0" * 16)  # the server now holds a connection
        code, _, err = await _cairn(url, "backup", str(tmp_path / "copy.db"))
        assert code == 0, err
        code, _, err = await _cairn(url, "restore", "--force", str(tmp_path / "copy.db"))
    assert code == 1 and "in use: stop the server" in err


async def test_restore_refuses_a_backup_of_the_other_kind(tmp_path) -> None:
    dump = tmp_path / "school.dump"
    dump.write_bytes(b"PGDMP\x01\x0f\x00" + bytes(64))
    code, _, err = await _cairn(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", "restore", str(dump))
    assert code == 1 and "PostgreSQL dump" in err
    assert not Path(tmp_path / "x.db").exists()
