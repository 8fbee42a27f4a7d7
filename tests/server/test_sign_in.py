"""Sign-in: the challenge proof, TOTP for readers, the failure limit, sign-out, expiry and revocation."""

from __future__ import annotations

import asyncio
import os

import pyotp
import pytest
from sqlalchemy import select, update

from server.models import Account, Session
from sync.client import Revoked, SyncError
from sync.device import ApiFailure, sign_in
from sync.protocol import b64e
from tests.server.harness import PASSWORD, Member, raw_socket

pytestmark = pytest.mark.asyncio


async def _finish(http, school_id: bytes, login: str, **extra) -> dict:  # type: ignore[no-untyped-def]
    start = (await http.post("/api/v1/sign-in/start", json={"school_id": b64e(school_id), "login": login})).json()
    body = {
        "challenge_id": start["challenge_id"],
        "signature": b64e(os.urandom(64)),
        "device_id": b64e(os.urandom(16)),
        "device_pk": b64e(os.urandom(32)),
        **extra,
    }
    response = await http.post("/api/v1/sign-in/finish", json=body)
    return {"status": response.status_code, **response.json().get("error", {})}


async def test_a_wrong_proof_fails_and_ten_failures_lock_the_account_for_a_while(school) -> None:
    lunch = await school.invite("lunch-3", ["contributor"])
    for _ in range(10):
        assert (await _finish(school.http, school.school_id, "lunch-3"))["code"] == "sign_in_failed"
    with pytest.raises(ApiFailure) as locked:
        await sign_in(school.http, school.school_id, "lunch-3", PASSWORD, device=lunch.device)
    assert (locked.value.status, locked.value.code) == (429, "too_many_attempts")
    other = await school.invite("lunch-4", ["contributor"])  # the limit is per account
    assert (await sign_in(school.http, school.school_id, "lunch-4", PASSWORD, device=other.device)).token


async def test_readers_need_a_one_time_code_and_it_works_once(school) -> None:
    teacher = school.members["teacher-ash"]
    with pytest.raises(ApiFailure) as missing:
        await sign_in(school.http, school.school_id, "teacher-ash", PASSWORD, device=teacher.device)
    assert missing.value.code == "totp_required"
    assert (await _finish(school.http, school.school_id, "teacher-ash", totp="000000"))["code"] == "sign_in_failed"
    async with school.running.services.engine.connect() as conn:  # the step whose code set-up used
        used = (await conn.execute(select(Account.totp_last_step).where(Account.id == teacher.device.user_id))).one()[0]
    with pytest.raises(ApiFailure) as replay:  # that code cannot be used again, whatever the clock says now
        await sign_in(
            school.http, school.school_id, "teacher-ash", PASSWORD, totp=pyotp.TOTP(teacher.totp).at(used * 30),
            device=teacher.device,
        )
    assert replay.value.code == "sign_in_failed"


async def test_unknown_logins_get_stable_decoy_parameters(school) -> None:
    async def start(login: str) -> dict:
        body = {"school_id": b64e(school.school_id), "login": login}
        return (await school.http.post("/api/v1/sign-in/start", json=body)).json()

    a, b, real = await start("nobody"), await start("nobody"), await start("teacher-oak")
    assert a["kdf_params"] == b["kdf_params"] and a["user_id"] == b["user_id"]
    assert len(a["kdf_params"]) == len(real["kdf_params"]) and a["kdf_params"][:8] == real["kdf_params"][:8]


async def test_a_new_device_is_certified_by_the_identity_key_before_it_can_do_anything(school) -> None:
    lunch = await school.invite("lunch-5", ["contributor"])
    second = await sign_in(school.http, school.school_id, "lunch-5", PASSWORD)  # no device: a new one
    assert second.device_id != lunch.device.device_id and second.user_id == lunch.device.user_id
    await second.refresh()  # the new device is not in the signed directory until a keyholder signs it
    assert len([d for d in second.directory["devices"] if d["user_id"] == b64e(second.user_id)]) == 1
    await school.dsl.device.refresh()  # a safeguarding keyholder's device, online, signs the next version
    await second.refresh()
    directory_devices = [d for d in second.directory["devices"] if d["user_id"] == b64e(second.user_id)]
    assert len(directory_devices) == 2


async def test_sign_out_and_expiry_end_the_session_for_http_and_sync(school) -> None:
    teacher = school.members["teacher-oak"]
    await teacher.device.call("POST", "/api/v1/sign-out")
    with pytest.raises(ApiFailure) as after:
        await teacher.device.call("GET", "/api/v1/directory")
    assert after.value.code == "unauthenticated"
    with pytest.raises(SyncError) as sync_after:
        await teacher.connect(school.running)
    assert sync_after.value.code == "session_expired"
    async with school.running.services.engine.begin() as conn:
        await conn.execute(update(Session).values(expires_ms=0))
    with pytest.raises(SyncError) as expired:
        await school.dsl.connect(school.running)
    assert expired.value.code == "session_expired"


async def test_a_revoked_device_is_told_at_once_and_wipes_its_store(school) -> None:
    lunch = await school.invite("lunch-6", ["contributor"])
    await lunch.device.refresh()
    lunch.device.write(lunch.outbox, b"fictional: unsent", pupil_ids=[school.pupils[0]])
    client = await lunch.connect(school.running)
    closed = asyncio.get_running_loop().create_future()
    reader = client._reader
    reader.add_done_callback(lambda _: closed.set_result(True))
    await school.dsl.device.call("POST", "/api/v1/devices/revoke", device_id=b64e(lunch.device.device_id))
    await asyncio.wait_for(closed, 5)
    assert lunch.outbox.pending_count() == 1  # kept until it reconnects, to hand it over
    again_client = None
    with pytest.raises(Revoked):
        again_client = Member(lunch.device, None, lunch.outbox)
        await again_client.connect(school.running)
    assert lunch.outbox.pending_count() == 0  # handed over, then wiped
    assert again_client.client.handed_over == 1
    with pytest.raises(ApiFailure) as again:
        await sign_in(school.http, school.school_id, "lunch-6", PASSWORD, device=lunch.device)
    assert again.value.code == "sign_in_failed"


async def test_only_the_owner_or_an_admin_may_revoke_a_device(school) -> None:
    teacher, other = school.members["teacher-oak"], school.members["teacher-ash"]
    with pytest.raises(ApiFailure) as refused:
        await other.device.call("POST", "/api/v1/devices/revoke", device_id=b64e(teacher.device.device_id))
    assert refused.value.code == "forbidden"
    ws = await raw_socket(school.running, teacher)
    await ws.close()


# --- attacks on sign-in: racing the failure limit and the one-time code ----------------------------


async def _challenges(http, school_id: bytes, login: str, n: int) -> list[dict]:  # type: ignore[no-untyped-def]
    body = {"school_id": b64e(school_id), "login": login}
    return [(await http.post("/api/v1/sign-in/start", json=body)).json() for _ in range(n)]


async def test_sixty_concurrent_wrong_proofs_get_at_most_ten_checked(school, monkeypatch) -> None:
    import server.accounts

    await school.invite("lunch-60", ["contributor"])
    checked = []
    real = server.accounts.verify_challenge

    def counting(*args):  # type: ignore[no-untyped-def]
        checked.append(1)
        return real(*args)

    monkeypatch.setattr(server.accounts, "verify_challenge", counting)
    starts = await _challenges(school.http, school.school_id, "lunch-60", 60)

    async def wrong(start: dict) -> str:
        body = {
            "challenge_id": start["challenge_id"],
            "signature": b64e(os.urandom(64)),
            "device_id": b64e(os.urandom(16)),
            "device_pk": b64e(os.urandom(32)),
        }
        return (await school.http.post("/api/v1/sign-in/finish", json=body)).json()["error"]["code"]

    codes = await asyncio.gather(*(wrong(s) for s in starts))
    assert len(checked) <= 10, f"{len(checked)} proofs were checked"
    assert codes.count("sign_in_failed") == len(checked) and codes.count("too_many_attempts") == 60 - len(checked)


async def test_a_code_replayed_by_concurrent_sign_ins_is_accepted_once(school, monkeypatch) -> None:
    from crypto import KdfParams, derive_account, sign_challenge
    from server.accounts import Accounts
    from sync.protocol import b64d

    real, together = Accounts.second_factor, asyncio.Barrier(6)

    async def all_at_once(self, conn, account, code):  # type: ignore[no-untyped-def]
        await asyncio.wait_for(together.wait(), 10)  # the worst case: each has read the account already
        return await real(self, conn, account, code)

    monkeypatch.setattr(Accounts, "second_factor", all_at_once)
    teacher = school.members["teacher-oak"]
    async with school.running.services.engine.begin() as conn:  # as if its last code were long ago
        await conn.execute(update(Account).where(Account.id == teacher.device.user_id).values(totp_last_step=0))
    starts = await _challenges(school.http, school.school_id, "teacher-oak", 6)
    login = derive_account(PASSWORD, KdfParams.decode(b64d(starts[0]["kdf_params"], "kdf_params"))).login
    code = pyotp.TOTP(teacher.totp).now()

    async def finish(start: dict) -> int:
        nonce = b64d(start["nonce"], "nonce")
        body = {
            "challenge_id": start["challenge_id"],
            "signature": b64e(sign_challenge(login, school.school_id, teacher.device.user_id, nonce)),
            "totp": code,
            "device_id": b64e(os.urandom(16)),
            "device_pk": b64e(os.urandom(32)),
        }
        return (await school.http.post("/api/v1/sign-in/finish", json=body)).status_code

    statuses = await asyncio.gather(*(finish(s) for s in starts))
    assert sorted(statuses) == [200, 401, 401, 401, 401, 401]


# --- a second factor for every reader and admin -----------------------------------------------------


async def test_a_reading_role_added_after_joining_enrols_an_authenticator_at_the_next_sign_in(school) -> None:
    from sync.device import EnrolmentRequired

    lunch = await school.invite("lunch-7", ["contributor"])
    assert lunch.totp is None
    await school.dsl.device.call("POST", "/api/v1/admin/roles", user_id=b64e(lunch.device.user_id), roles=["teacher"])
    with pytest.raises(EnrolmentRequired) as enrol:  # a good password: the server offers the enrolment
        await sign_in(school.http, school.school_id, "lunch-7", PASSWORD, device=lunch.device)
    assert (enrol.value.status, enrol.value.code) == (401, "totp_enrolment_required")
    secret = enrol.value.secret
    assert enrol.value.uri.startswith("otpauth://totp/") and f"secret={secret}" in enrol.value.uri
    assert (await _finish(school.http, school.school_id, "lunch-7"))["code"] == "sign_in_failed"  # no password
    with pytest.raises(ApiFailure) as wrong:
        await sign_in(school.http, school.school_id, "lunch-7", PASSWORD, totp="000000", device=lunch.device)
    assert wrong.value.code == "sign_in_failed"

    shown = []
    signed = await sign_in(
        school.http,
        school.school_id,
        "lunch-7",
        PASSWORD,
        device=lunch.device,
        enrol=lambda s, uri: shown.append(s) or pyotp.TOTP(s).now(),
    )
    assert shown == [secret] and signed.token  # the same secret until it is confirmed
    with pytest.raises(ApiFailure) as after:  # confirmed: the secret is never shown again
        await sign_in(school.http, school.school_id, "lunch-7", PASSWORD, device=lunch.device)
    assert after.value.code == "totp_required" and "totp_secret" not in after.value.error


async def test_every_admin_has_a_second_factor_too(school) -> None:
    office = await school.invite("office-1", ["admin"])
    assert office.totp  # from register, like a reader's
    with pytest.raises(ApiFailure) as missing:
        await sign_in(school.http, school.school_id, "office-1", PASSWORD, device=office.device)
    assert missing.value.code == "totp_required"
    lunch = await school.invite("lunch-8", ["contributor"])
    await school.dsl.device.call("POST", "/api/v1/admin/roles", user_id=b64e(lunch.device.user_id), roles=["admin"])
    assert (await _finish(school.http, school.school_id, "lunch-8"))["code"] == "sign_in_failed"
    with pytest.raises(ApiFailure) as enrol:
        await sign_in(school.http, school.school_id, "lunch-8", PASSWORD, device=lunch.device)
    assert enrol.value.code == "totp_enrolment_required"
