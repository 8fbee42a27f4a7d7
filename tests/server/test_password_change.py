"""Changing the password (docs/PROTOCOL.md 2.9, 10.1), on SQLite and PostgreSQL: the old login key proves it
over a fresh challenge; every other session of the account ends and its sockets close with
``session_expired``; a wrong old password, a wrong code or another account's challenge is
``password_change_failed``, changes nothing and counts with sign-ins; and a device's sealed records (its
data key only rewrapped, 2.8) still open after a change and after a recovery, with its queued entries sent.

Each test plays someone the change should stop (a stolen session elsewhere, a guesser holding a session)
or the person who must lose nothing."""

from __future__ import annotations

import logging
import os
import time

import pyotp
import pytest
from sqlalchemy import func, select

from crypto import DecryptionFailed, KdfParams, derive_account, seal_bundle, sign_password_change
from crypto.bundle import SLOT_PASSWORD
from server.accounts import MAX_FAILURES
from server.models import Account, SignInAttempt
from sync.device import ApiFailure, sign_in
from sync.outbox import Outbox
from sync.protocol import b64d, b64e, frame
from sync.recovery import recover
from sync.vault import Vault
from tests.server.harness import PASSWORD, Member, raw_socket
from tests.server.test_recovery import NEW_PASSWORD, _join, _next_code
from tests.server.test_sessions import errors, until_closed

pytestmark = pytest.mark.asyncio

CHANGED = "a fictional changed passphrase, long enough"


async def _account(school, user_id: bytes):  # type: ignore[no-untyped-def]
    async with school.running.services.engine.connect() as conn:
        return (await conn.execute(select(Account).where(Account.id == user_id))).first()


async def _attempts(school, login: str) -> int:  # type: ignore[no-untyped-def]
    async with school.running.services.engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(SignInAttempt).where(SignInAttempt.login == login))


async def _fails(code: str, call) -> ApiFailure:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiFailure) as caught:
        await call
    assert caught.value.code == code, caught.value
    return caught.value


def _vault(tmp_path, device, name: str = "vault") -> Vault:  # type: ignore[no-untyped-def]
    return Vault(tmp_path / f"{name}.db", device.school_id, device.user_id, device.device_id)


async def test_a_change_keeps_this_session_and_closes_every_other_sessions_socket(school, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    cara = await school.invite("cara-contributor", ["contributor"])
    other = await sign_in(school.http, school.school_id, "cara-contributor", PASSWORD)  # a second device
    here = await raw_socket(school.running, cara)
    there = await raw_socket(school.running, Member(other, None, cara.outbox))
    before = await _account(school, cara.device.user_id)
    await cara.device.change_password(PASSWORD, CHANGED)
    frames, code = await until_closed(there)
    assert (errors(frames), code) == ([(None, "session_expired")], 4003)
    await here.send(frame({"type": "ping", "id": "p"}))  # this session goes on
    assert '"pong"' in await here.recv()
    await here.close()
    await cara.device.call("GET", "/api/v1/grants")
    await _fails("unauthenticated", other.call("GET", "/api/v1/grants"))
    after = await _account(school, cara.device.user_id)
    assert (after.kdf_params, after.login_pk, after.bundle) != (before.kdf_params, before.login_pk, before.bundle)
    assert (after.identity_x25519_pk, after.recovery_bundle) == (before.identity_x25519_pk, before.recovery_bundle)
    await _fails("sign_in_failed", sign_in(school.http, school.school_id, "cara-contributor", PASSWORD))
    fresh = await sign_in(school.http, school.school_id, "cara-contributor", CHANGED, device=cara.device)
    assert fresh.identity.box.public == before.identity_x25519_pk  # the same identity: every grant still opens
    for secret in (PASSWORD, CHANGED):
        assert secret not in caplog.text


async def test_a_wrong_old_password_is_refused_counted_and_changes_nothing(school, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    dan = await school.invite("dan-contributor", ["contributor"])
    before = await _account(school, dan.device.user_id)
    tried = await _attempts(school, "dan-contributor")
    failure = await _fails("password_change_failed", dan.device.change_password("not the password at all", CHANGED))
    assert failure.status == 403
    assert "not the password" not in failure.detail and CHANGED not in failure.detail
    assert await _attempts(school, "dan-contributor") == tried + 1  # counted with sign-ins
    after = await _account(school, dan.device.user_id)
    assert (after.kdf_params, after.login_pk, after.bundle) == (before.kdf_params, before.login_pk, before.bundle)
    await dan.device.call("GET", "/api/v1/grants")  # the session holds
    for _ in range(MAX_FAILURES - 1):
        await _fails("password_change_failed", dan.device.change_password("still guessing, fictional", CHANGED))
    # the limit is the account's: the right password is refused too now, and so is a sign-in
    await _fails("too_many_attempts", dan.device.change_password(PASSWORD, CHANGED))
    await _fails("too_many_attempts", sign_in(school.http, school.school_id, "dan-contributor", PASSWORD))
    assert (await _account(school, dan.device.user_id)).login_pk == before.login_pk
    assert "still guessing" not in caplog.text and CHANGED not in caplog.text


async def test_a_reader_changes_its_password_only_with_its_one_time_code(school) -> None:
    teacher = school.members["teacher-oak"]
    before = await _account(school, teacher.device.user_id)
    await _fails("totp_required", teacher.device.change_password(PASSWORD, CHANGED))
    totp = pyotp.TOTP(teacher.totp)
    valid = {totp.at(time.time() + offset) for offset in (-30, 0, 30, 60)}
    wrong = next(code for code in ("000000", "111111", "222222", "333333", "444444") if code not in valid)
    await _fails("password_change_failed", teacher.device.change_password(PASSWORD, CHANGED, totp=wrong))
    assert (await _account(school, teacher.device.user_id)).login_pk == before.login_pk
    await teacher.device.change_password(PASSWORD, CHANGED, totp=_next_code(teacher.totp))
    assert (await _account(school, teacher.device.user_id)).login_pk != before.login_pk


async def test_a_challenge_serves_one_account_once(school) -> None:
    """A session holder replays another account's challenge and proof, or a used one: refused."""
    eve = await school.invite("eve-contributor", ["contributor"])
    fay = await school.invite("fay-contributor", ["contributor"])
    start = await fay.device.call("POST", "/api/v1/account/password/start")
    old = derive_account(PASSWORD, KdfParams.decode(b64d(start["kdf_params"], "kdf_params")))
    params = KdfParams.new()
    new = derive_account(CHANGED, params)
    bundle = seal_bundle(fay.device.identity, new.kek, SLOT_PASSWORD, school.school_id, fay.device.user_id)
    proof = sign_password_change(old.login, school.school_id, fay.device.user_id, b64d(start["nonce"], "nonce"),
                                 params.encode(), new.login.public, bundle)
    body = {"challenge_id": start["challenge_id"], "signature": b64e(proof), "kdf_params": b64e(params.encode()),
            "login_pk": b64e(new.login.public), "bundle": b64e(bundle)}
    fay_before = await _account(school, fay.device.user_id)
    await _fails("password_change_failed", eve.device.call("POST", "/api/v1/account/password", **body))
    # the challenge was taken by that refusal: fay's own proof over it is refused too
    await _fails("password_change_failed", fay.device.call("POST", "/api/v1/account/password", **body))
    assert (await _account(school, fay.device.user_id)).login_pk == fay_before.login_pk


async def test_drafts_queued_entries_and_unsent_audit_survive_a_change_and_a_recovery(school, tmp_path) -> None:
    """The person who must lose nothing: what this device holds sealed opens with each new password, and
    the entry queued before both is sent from the same device afterwards."""
    registration, device = await _join(school, "gil@example.org", ["contributor"], [])
    await school.dsl.device.approve({i for i in await school.dsl.device.pending() if device.user_id in i[1:3]})
    await device.refresh()
    vault = _vault(tmp_path, device)
    vault.create(derive_account(PASSWORD, KdfParams.decode((await _account(school, device.user_id)).kdf_params)).kek,
                 bytes(device.identity.box))
    vault.put("device-key", device.device_id, bytes(device.device_key))
    draft_id, audit_id = os.urandom(16), os.urandom(16)
    vault.put("draft", draft_id, b'{"narrative": "fictional: a half-written note"}')
    vault.put("audit", audit_id, b'{"action": "concern.opened", "target": "fictional"}')
    member = Member(device, None, Outbox(tmp_path / "gil-outbox.db"))
    device.write(member.outbox, b"fictional: queued before both changes", pupil_ids=[school.classes["oak"][0]])
    assert member.outbox.pending_count() == 1

    await device.change_password(PASSWORD, CHANGED, vault=vault)
    vault.close()
    params = KdfParams.decode((await _account(school, device.user_id)).kdf_params)
    reopened = _vault(tmp_path, device)
    with pytest.raises(DecryptionFailed):
        reopened.unlock(derive_account(PASSWORD, params).kek)  # the old password no longer opens it
    reopened.unlock(derive_account(CHANGED, params).kek)
    assert reopened.get("draft", draft_id) == b'{"narrative": "fictional: a half-written note"}'
    assert reopened.get("audit", audit_id) is not None
    reopened.close()

    # the password is forgotten: the recovery key, on this same device, rewraps the same data key
    locked = _vault(tmp_path, device)
    recovered = await recover(school.http, school.school_id, "gil@example.org", registration.recovery_key,
                              NEW_PASSWORD, vault=locked)
    assert recovered.device_id == device.device_id
    locked.close()
    params = KdfParams.decode((await _account(school, device.user_id)).kdf_params)
    again = _vault(tmp_path, device)
    again.unlock(derive_account(NEW_PASSWORD, params).kek)
    assert dict(again.records("draft")) == {draft_id: b'{"narrative": "fictional: a half-written note"}'}
    assert [rid for rid, _ in again.records("audit")] == [audit_id]
    again.close()
    await recovered.refresh()
    member.device = recovered
    client = await member.connect(school.running)
    try:
        await client.flush()
    finally:
        await client.close()
    assert member.outbox.pending_count() == 0  # acknowledged: the queued entry reached the server


async def test_another_device_of_the_person_keeps_its_records_after_a_change_made_elsewhere(school, tmp_path) -> None:
    """The person changes the password on one device; the other, signing in with the new password, opens its
    data key with the identity keys the bundle gives, rewraps it, and loses nothing."""
    hal = await school.invite("hal-contributor", ["contributor"])
    tablet = await sign_in(school.http, school.school_id, "hal-contributor", PASSWORD)
    params = KdfParams.decode((await _account(school, tablet.user_id)).kdf_params)
    vault = _vault(tmp_path, tablet, "tablet")
    vault.create(derive_account(PASSWORD, params).kek, bytes(tablet.identity.box))
    vault.put("draft", bytes(16), b"fictional: written on the tablet")
    vault.close()
    await hal.device.change_password(PASSWORD, CHANGED)
    again = await sign_in(school.http, school.school_id, "hal-contributor", CHANGED, device=tablet)
    new_kek = derive_account(CHANGED, KdfParams.decode((await _account(school, tablet.user_id)).kdf_params)).kek
    reopened = _vault(tmp_path, tablet, "tablet")
    with pytest.raises(DecryptionFailed):
        reopened.unlock(new_kek)  # the tablet's wrap is still under the old password
    reopened.open_after_sign_in(new_kek, bytes(again.identity.box))
    assert reopened.get("draft", bytes(16)) == b"fictional: written on the tablet"
    reopened.close()
    final = _vault(tmp_path, tablet, "tablet")
    final.unlock(new_kek)  # rewrapped: the new password opens it directly now
    with pytest.raises(DecryptionFailed):
        final.lock()
        final.unlock(derive_account(PASSWORD, params).kek)
