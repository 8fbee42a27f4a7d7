"""Account and device ids are chosen by the client (they are inside the device certificate and the bundle's
associated data), so one school's registration must never take another school's: the server refuses an id
any school uses (``id_taken``, the client makes new ones), and nothing looks a user or device up without
its school."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import func, select

from crypto import (
    SLOT_PASSWORD,
    SLOT_RECOVERY,
    DeviceCert,
    IdentityKeys,
    KdfParams,
    SigningKey,
    derive_account,
    generate_recovery_key,
    make_device_cert,
    recovery_auth_key,
    recovery_kek,
    seal_bundle,
    sign_challenge,
    sign_identity_binding,
)
from server.models import Account, AuditEvent, Device
from server.schools import create_school
from sync.device import now_ms, register, sign_in
from sync.protocol import b64d, b64e
from tests.server.harness import PASSWORD

pytestmark = pytest.mark.asyncio


async def register_as(http, school_id: bytes, code: str, user_id: bytes, device_id: bytes):  # type: ignore[no-untyped-def]
    """``register`` with ids of the caller's choice: what a hostile client sends."""
    params = KdfParams.new()
    account = derive_account(PASSWORD, params)
    identity, device_key, recovery = IdentityKeys.generate(), SigningKey.generate(), generate_recovery_key()
    cert = make_device_cert(identity.signing, DeviceCert(school_id, user_id, device_id, device_key.public, now_ms()))
    body = {
        "school_id": b64e(school_id),
        "code": code,
        "kdf_params": b64e(params.encode()),
        "login_pk": b64e(account.login.public),
        "identity_x25519_pk": b64e(identity.box.public),
        "identity_ed25519_pk": b64e(identity.signing.public),
        "identity_binding": b64e(sign_identity_binding(identity.signing, school_id, user_id, identity.box.public)),
        "bundle": b64e(seal_bundle(identity, account.kek, SLOT_PASSWORD, school_id, user_id)),
        "recovery_bundle": b64e(seal_bundle(identity, recovery_kek(recovery), SLOT_RECOVERY, school_id, user_id)),
        "recovery_auth_pk": b64e(recovery_auth_key(recovery).public),
        "device_id": b64e(device_id),
        "device_pk": b64e(device_key.public),
        "device_cert": b64e(cert),
    }
    return await http.post("/api/v1/register", json=body)


async def rows_of(school, school_id: bytes) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    async with school.running.services.engine.connect() as conn:
        return tuple(
            [
                await conn.scalar(select(func.count()).select_from(table).where(table.school_id == school_id))
                for table in (AuditEvent, Account, Device)
            ]
        )


async def test_registering_in_school_b_with_an_id_of_school_a_is_refused_and_writes_nothing_to_a(school) -> None:
    engine, http = school.running.services.engine, school.http
    victim = school.members["teacher-oak"].device
    other, code = await create_school(engine, "Other Fictional Primary", "head-b", "Fictional Head B")
    before = await rows_of(school, school.school_id)

    for user_id, device_id, field in (
        (victim.user_id, os.urandom(16), "user_id"),
        (os.urandom(16), victim.device_id, "device_id"),
    ):
        answer = await register_as(http, other, code, user_id, device_id)
        error = answer.json()["error"]
        assert (answer.status_code, error["code"], error["fields"]) == (409, "id_taken", {field: "taken"})

    registration, device = await register(http, other, code, PASSWORD)  # the invitation is not used up
    signed = await sign_in(http, other, "head-b", PASSWORD, totp_secret=registration.totp_secret, device=device)
    await signed.call("POST", "/api/v1/sign-out")
    assert await rows_of(school, school.school_id) == before  # not one row reached school A


async def test_a_new_device_may_not_take_another_schools_device_id(school) -> None:
    engine, http = school.running.services.engine, school.http
    victim = school.members["teacher-ash"].device
    other, code = await create_school(engine, "Third Fictional Primary", "head-c", "Fictional Head C")
    registration, _ = await register(http, other, code, PASSWORD)
    start = (await http.post("/api/v1/sign-in/start", json={"school_id": b64e(other), "login": "head-c"})).json()
    login = derive_account(PASSWORD, KdfParams.decode(b64d(start["kdf_params"], "kdf_params"))).login
    import pyotp

    answer = await http.post(
        "/api/v1/sign-in/finish",
        json={
            "challenge_id": start["challenge_id"],
            "signature": b64e(
                sign_challenge(login, other, b64d(start["user_id"], "user_id"), b64d(start["nonce"], "nonce"))
            ),
            "totp": pyotp.TOTP(registration.totp_secret).now(),
            "device_id": b64e(victim.device_id),
            "device_pk": b64e(os.urandom(32)),
        },
    )
    error = answer.json()["error"]
    assert (answer.status_code, error["code"], error["fields"]) == (409, "id_taken", {"device_id": "taken"})
