"""The demo school: built once through the real clients, reused after, readable by its DSL, and the server
holds none of its pupils' names or its narratives."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pyotp
import pytest

from crypto import envelope as env
from server.cli import main
from server.demo import DemoError, DemoSize, ensure_demo
from server.models import ROLES
from server.settings import Settings
from sync.client import SyncClient
from sync.device import sign_in
from sync.events import decode
from sync.fold import fold
from sync.outbox import Outbox
from sync.protocol import b64d
from tests.server.harness import running_server

SMALL = DemoSize(classes=2, pupils=20, staff=6, concerns=20)


def _phrases(value: object) -> list[str]:
    """Every piece of prose in an event body: strings with a space, long enough to be unmistakable."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _phrases(v)]
    if isinstance(value, list):
        return [s for v in value for s in _phrases(v)]
    return [value] if isinstance(value, str) and " " in value and len(value) >= 12 else []


@pytest.mark.asyncio
async def test_a_small_demo_is_built_once_reused_and_read_whole_by_its_dsl(tmp_path: Path, monkeypatch, capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/cairn.db"
    settings = Settings.from_env({"CAIRN_DATABASE_URL": url})
    credentials = tmp_path / "demo-credentials.json"

    first = await ensure_demo(settings, size=SMALL, credentials=credentials)
    assert first.created
    assert {k: first.counts[k] for k in ("staff", "pupils", "classes", "concerns")} == {
        "staff": 6, "pupils": 20, "classes": 2, "concerns": 20
    }
    assert {r for a in first.accounts for r in a.roles} == set(ROLES)
    saved = json.loads(credentials.read_text())
    assert saved["note"].startswith("FICTIONAL DEMO ACCOUNTS") and credentials.stat().st_mode & 0o077 == 0

    started = time.monotonic()
    again = await ensure_demo(settings, size=SMALL, credentials=credentials)
    assert (again.created, again.school_id, again.counts) == (False, first.school_id, first.counts)
    assert time.monotonic() - started < 5

    monkeypatch.setenv("CAIRN_DATABASE_URL", url)
    assert await asyncio.to_thread(main, ["demo", "--credentials", str(credentials)]) == 0
    printed = capsys.readouterr().out
    assert "already built: reused" in printed and first.password in printed and "teacher-" in printed

    dsl = next(a for a in first.accounts if a.login == "dsl")
    async with running_server(url) as running, httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        # the build signed every account in once, in this 30-second window: the next window's code is fresh
        code = pyotp.TOTP(dsl.totp_secret).at(int(time.time()) + 30)
        device = await sign_in(http, first.school_id, "dsl", first.password, totp=code)
        await device.refresh()
        outbox = Outbox(tmp_path / "dsl-device.db")
        client = SyncClient(running.ws_url, outbox, school_id=first.school_id, device_id=device.device_id,
                            device_key=device.device_key, token=device.token or "")
        await client.connect()
        await client.pull_all()
        await client.close()
        roster = await device.roster()  # names exist only sealed, under the roster keys
    authors = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in device.directory["devices"]}
    by_concern = defaultdict(list)
    for _, _, body in outbox.inbox():
        opened = env.open(body, authors[env.parse(body).header.author_device], device.keyring())
        h = opened.header
        event = decode(opened.content, event_id=h.envelope_id, concern_id=h.concern_id,
                       author_device=h.author_device, device_time_ms=h.device_time_ms)
        by_concern[event.concern].append(event)
    outbox.close()
    assert sum(len(events) for events in by_concern.values()) == first.counts["events"]
    assert len(by_concern) == 20
    kinds = set()
    for events in by_concern.values():
        assert [e.type for e in events].count("created") == 1
        state = fold(events)
        assert not state["conflicts"] and not state["missing_parents"]
        assert not any(item["flags"] for item in state["history"])
        kinds.add(next(e for e in events if e.type == "created").body["record"]["kind"])
    assert len(kinds) >= 3

    assert len(roster) == SMALL.pupils and all(r["name"] and r["class"] and "dob" in r for r in roster.values())
    secrets_ = [r["name"] for r in roster.values()]
    secrets_ += [p for events in by_concern.values() for e in events for p in _phrases(dict(e.body))]
    assert len(secrets_) > 40
    server_side = b"".join(p.read_bytes() for p in tmp_path.glob("cairn.db*"))
    for phrase in secrets_:
        assert phrase.encode() not in server_side, f"{phrase!r} is in the database"

    credentials.rename(tmp_path / "moved.json")
    with pytest.raises(DemoError, match="does not hold its sign-ins"):
        await ensure_demo(settings, size=SMALL, credentials=credentials)


def test_a_demo_too_small_for_its_roles_is_refused() -> None:
    import random

    from server._demo_text import staff_plan

    with pytest.raises(ValueError, match="at least 7 staff"):
        staff_plan(random.Random(1), 6, ["Year 1 Oak", "Year 1 Ash", "Year 2 Elm"])
