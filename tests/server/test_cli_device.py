"""``cairn school create`` and the ``cairn device`` verbs against a real server: a founder registers and makes
the school's keys, a contributor logs a concern that its class teacher then syncs, and failures print
``Error: ...`` with a non-zero exit. Nothing secret is left in a store folder."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from crypto import envelope as env
from server.cli import main
from sync.client import SyncClient
from sync.device import sign_in
from sync.events import decode
from sync.outbox import Outbox
from sync.protocol import b64d, b64e

pytestmark = pytest.mark.asyncio

PASSWORD = "fictional cli passphrase"


async def _cairn(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


async def test_founder_contributor_and_teacher_work_through_the_device_verbs(
    running, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("CAIRN_DATABASE_URL", running.services.settings.database_url)
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    code, out, _ = await _cairn(
        capsys, "school", "create", "--name", "Fictional CLI Primary", "--founder-login", "dsl",
        "--founder-name", "Fictional DSL",
    )
    assert code == 0
    school = re.search(r"school id: ([0-9a-f]{32})", out)[1]  # type: ignore[index]
    invitation = re.search(r"founding invitation code: (\S+)", out)[1]  # type: ignore[index]

    code, out, _ = await _cairn(
        capsys, "device", "register", "--server", running.base, "--school", school, "--code", invitation,
        "--password-file", password, "--store", tmp_path / "dsl",
    )
    assert code == 0 and "made the school's group keys" in out and "recovery key: " in out
    dsl_totp = re.search(r"TOTP secret: (\S+)", out)[1]  # type: ignore[index]

    # the roster has no device verb yet: the founder adds pupils and a class from a Python device
    school_id = bytes.fromhex(school)
    async with httpx.AsyncClient(base_url=running.base, timeout=30) as http:
        dsl = await sign_in(http, school_id, "dsl", PASSWORD, totp=pyotp.TOTP(dsl_totp).at(int(time.time()) + 30))
        await dsl.refresh()
        pupils = [bytes([n]) * 16 for n in (1, 2)]
        await dsl.add_pupils(pupils)
        stores = {}
        for login, roles in (("lunch-cli", ["contributor"]), ("teacher-cli", ["teacher"])):
            invited = await dsl.call("POST", "/api/v1/admin/invitations", login=login, display_name=login, roles=roles)
            stores[login] = tmp_path / login
            code, out, _ = await _cairn(
                capsys, "device", "register", "--server", running.base, "--school", school, "--code",
                invited["code"], "--password-file", password, "--store", stores[login],
            )
            assert code == 0 and "registered " + login in out
        (tmp_path / "teacher.totp").write_text(re.search(r"TOTP secret: (\S+)", out)[1])  # type: ignore[index]
        teacher_id = bytes.fromhex(json.loads((stores["teacher-cli"] / "device.json").read_text())["user_id"])
        await dsl.call("POST", "/api/v1/admin/classes", classes=[
            {"id": b64e(bytes(16)), "label": "Fictional Oak", "pupils": [b64e(p) for p in pupils],
             "teachers": [b64e(teacher_id)]},
        ])
        await dsl.approve()  # the DSL approves the two new accounts and the class, as one reviewed list
        teacher_pk = next(
            b64d(a["identity_x25519_pk"], "pk") for a in dsl.directory["accounts"] if a["login"] == "teacher-cli"
        )
        await dsl.grant([(*dsl.pupil_key(p)[:2], teacher_id, teacher_pk) for p in pupils])

        code, out, _ = await _cairn(
            capsys, "device", "log", "--store", stores["lunch-cli"], "--pupil", pupils[0].hex(),
            "--text", "Fictional: said a dog chased them on the way in", "--category", "pastoral_other",
            "--password-file", password,
        )
        assert code == 0 and out.endswith("sent 1\n")
        assert sorted(p.name for p in stores["lunch-cli"].iterdir()) == ["device.json", "directory.bin"]

        code, out, _ = await _cairn(
            capsys, "device", "sign-in", "--server", running.base, "--school", school, "--login", "lunch-cli",
            "--password-file", password, "--store", tmp_path / "lunch-tablet",
        )
        assert code == 0 and "signed in as lunch-cli" in out

        sync = ["device", "sync", "--store", stores["teacher-cli"], "--password-file", password,
                "--totp-secret-file", tmp_path / "teacher.totp"]
        code, out, _ = await _cairn(capsys, *sync)
        assert code == 0 and out.startswith("sent 0, received 1 ")

        # the teacher's store holds the concern sealed; the DSL's device opens it
        inbox = Outbox(stores["teacher-cli"] / "inbox.db")
        ((_, _, body),) = inbox.inbox()
        inbox.close()
        await dsl.refresh()  # the DSL's device signs the directory listing the CLI session's device
        devices = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in dsl.directory["devices"]}
        opened = env.open(body, devices[env.parse(body).header.author_device], dsl.keyring())
        h = opened.header
        event = decode(opened.content, event_id=h.envelope_id, concern_id=h.concern_id,
                       author_device=h.author_device, device_time_ms=h.device_time_ms)
        assert event.body["record"]["observed"] == "Fictional: said a dog chased them on the way in"

        outbox = Outbox(tmp_path / "dsl-check.db")
        client = SyncClient(running.ws_url, outbox, school_id=school_id, device_id=dsl.device_id,
                            device_key=dsl.device_key, token=dsl.token or "")
        await client.connect()
        await client.pull_all()
        await client.close()
        assert len(outbox.inbox()) == 1
        outbox.close()

    for store in stores.values():
        for path in store.iterdir():
            data = path.read_bytes()
            assert PASSWORD.encode() not in data and b"Fictional: said a dog" not in data


async def test_device_verbs_fail_with_an_error_and_a_non_zero_exit(
    running, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("CAIRN_DATABASE_URL", running.services.settings.database_url)
    password = tmp_path / "password"
    password.write_text(PASSWORD)
    code, out, _ = await _cairn(
        capsys, "school", "create", "--name", "Fictional Failing Primary", "--founder-login", "dsl",
        "--founder-name", "Fictional DSL",
    )
    school = re.search(r"school id: ([0-9a-f]{32})", out)[1]  # type: ignore[index]

    code, _, err = await _cairn(
        capsys, "device", "register", "--server", running.base, "--school", school, "--code", "not-a-real-code",
        "--password-file", password, "--store", tmp_path / "nobody",
    )
    assert code == 1 and err.startswith("Error: the server refused: ") and "invalid_invitation" in err
    assert not (tmp_path / "nobody").exists()

    code, _, err = await _cairn(capsys, "device", "sync", "--store", tmp_path / "nobody", "--password-file", password)
    assert code == 1 and err.startswith("Error: ") and "not a device store" in err

    (tmp_path / "store").mkdir()
    state = {"server": running.base, "school_id": school, "login": "dsl"}
    (tmp_path / "store" / "device.json").write_text(json.dumps(state))
    (tmp_path / "wrong").write_text("not the password")
    code, _, err = await _cairn(
        capsys, "device", "log", "--store", tmp_path / "store", "--pupil", "ab" * 16, "--text", "Fictional text",
        "--password-file", tmp_path / "wrong",
    )
    assert code == 1 and err.startswith("Error: the server refused: ") and "sign_in_failed" in err

    code, _, err = await _cairn(
        capsys, "device", "log", "--store", tmp_path / "store", "--pupil", "ab" * 16, "--text", "Fictional text",
        "--category", "no_such_category", "--password-file", password,
    )
    assert code == 1 and err.startswith("Error: ") and "category: unknown_value" in err

    code, _, err = await _cairn(
        capsys, "school", "create", "--name", "Fictional", "--founder-login", "has spaces", "--founder-name", "F"
    )
    assert code == 1 and err.startswith("Error: a login is")

    code, _, err = await _cairn(
        capsys, "device", "sync", "--store", tmp_path / "store", "--password-file", password,
    )
    assert code == 1 and err.startswith("Error: ")


async def test_a_keyholder_reviews_and_approves_waiting_widenings_from_the_command_line(
    school, tmp_path, capsys
) -> None:
    import pyotp
    from sqlalchemy import update

    from server.models import Account
    from tests.server.harness import PASSWORD as SCHOOL_PASSWORD

    newcomer = await school.invite("teacher-new", ["teacher"], approve=False)
    ash = school.members["teacher-ash"].device.user_id
    await school.dsl.device.call("POST", "/api/v1/admin/roles", user_id=b64e(ash), roles=["sen"],
                                 reason="SENCo from January")
    (tmp_path / "password").write_text(SCHOOL_PASSWORD + "\n")
    (tmp_path / "dsl.totp").write_text(school.dsl.totp or "")
    store = tmp_path / "dsl-store"
    common = ["--password-file", tmp_path / "password", "--totp-secret-file", tmp_path / "dsl.totp"]
    now_code = ["--password-file", tmp_path / "password", "--totp", ""]

    async def fresh_code() -> None:  # each CLI run signs in anew: let this 30-second step be used again
        async with school.running.services.engine.begin() as conn:
            await conn.execute(update(Account).values(totp_last_step=0))
        # and give this step's code itself: from the secret file the CLI waits for the next step rather
        # than use one twice (tested above), which would make this test wait half a minute a run
        now_code[-1] = pyotp.TOTP(school.dsl.totp or "").now()

    await fresh_code()
    code, out, _ = await _cairn(capsys, "device", "sign-in", "--server", school.running.base, "--school",
                                school.school_id.hex(), "--login", "dsl", "--store", store, *common)
    assert code == 0, out
    await fresh_code()
    code, out, _ = await _cairn(capsys, "device", "approvals", "--store", store, *now_code)
    assert code == 0 and out.strip().endswith("3 waiting for approval"), out
    assert "gets the role sen (asked by dsl, because: SENCo from January)" in out
    account_line = next(line for line in out.splitlines() if line.startswith("account:"))
    await fresh_code()
    code, _, err = await _cairn(capsys, "device", "approve", "--store", store, *now_code)
    assert code == 1 and "--item" in err  # nothing is approved without naming it, or --all
    await fresh_code()
    code, out, _ = await _cairn(capsys, "device", "approve", "--store", store, "--item", account_line.split()[0],
                                *now_code)
    assert code == 0 and "approved 1" in out
    await school.dsl.device.refresh()
    listed = {a["id"]: a["roles"] for a in school.dsl.device.directory["accounts"]}
    assert listed[b64e(newcomer.device.user_id)] == []  # the account alone: its role still waits
    await fresh_code()
    code, out, _ = await _cairn(capsys, "device", "approve", "--store", store, "--all", *now_code)
    assert code == 0 and "approved 2" in out
