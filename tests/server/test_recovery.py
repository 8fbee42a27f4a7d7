"""Recovery at the protocol level: a forgotten password replaced with the recovery key keeps every grant;
a wrong key, a tampered bundle or a tampered proof changes nothing; failures are rate-limited like sign-in;
without the recovery key an admin resets the account and a keyholder re-grants reader keys to the new
identity, which cannot open what was sealed only to the old one.
"""

from __future__ import annotations

import os
import time

import pyotp
import pytest
from sqlalchemy import select, update

from crypto import (
    DecryptionFailed,
    KdfParams,
    Malformed,
    derive_account,
    envelope,
    format_recovery_key,
    generate_recovery_key,
    parse_recovery_key,
    recovery_auth_key,
    sign_recovery_proof,
)
from crypto.bundle import SLOT_PASSWORD, SLOT_RECOVERY, open_bundle, seal_bundle
from crypto.recovery import recovery_kek
from server.accounts import MAX_FAILURES
from server.models import Account, ClassTeacher
from sync.device import ApiFailure, Device, register, sign_in
from sync.outbox import Outbox
from sync.protocol import b64d, b64e
from sync.recovery import recover
from tests.server.harness import PASSWORD, Member

NEW_PASSWORD = "a new fictional passphrase after forgetting"


def _next_code(secret: str) -> str:
    """The code of the next 30-second step: the server accepts one step ahead, and each step once."""
    return pyotp.TOTP(secret).at(time.time() + 30)


async def _fails(code: str, call) -> ApiFailure:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiFailure) as caught:
        await call
    assert caught.value.code == code, caught.value
    return caught.value


async def _join(school, login: str, roles: list[str], classes: list[str]):  # type: ignore[no-untyped-def]
    made = await school.dsl.device.call(
        "POST",
        "/api/v1/admin/invitations",
        login=login,
        display_name=f"Fictional {login}",
        roles=roles,
        classes=classes,
    )
    registration, registered = await register(school.http, school.school_id, made["code"], PASSWORD)
    device = await sign_in(
        school.http, school.school_id, login, PASSWORD, totp_secret=registration.totp_secret, device=registered
    )
    return registration, device


async def _grant_class(school, label: str, device: Device) -> None:  # type: ignore[no-untyped-def]
    """The DSL approves the new account and its class on its device, then grants the class's pupil keys."""
    dsl = school.dsl.device
    await dsl.approve({i for i in await dsl.pending() if device.user_id in i[1:3]})
    grants = []
    for pupil in school.classes[label]:
        key_id, version, _ = dsl.pupil_key(pupil)
        grants.append((key_id, version, device.user_id, device.identity.box.public))
    await dsl.grant(grants)


async def _readable(school, device: Device, tmp_path) -> set[bytes]:  # type: ignore[no-untyped-def]
    """Every concern content this device pulls and opens."""
    await device.refresh()
    member = Member(device, None, Outbox(tmp_path / f"reader-{os.urandom(4).hex()}.db"))
    client = await member.connect(school.running)
    try:
        page = await client._request({"type": "pull", "cursor": None, "limit": 500})
    finally:
        await client.close()
        member.outbox.close()
    devices = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in device.directory["devices"]}
    out = set()
    for item in page["items"]:
        raw = b64d(item["envelope"], "envelope")
        author = envelope.parse(raw).header.author_device
        try:
            out.add(envelope.open(raw, devices[author], device.keyring()).content)
        except DecryptionFailed:
            continue
    return out


async def _write(school, content: bytes, **kwargs: object) -> None:  # type: ignore[no-untyped-def]
    dsl = school.dsl
    dsl.device.write(dsl.outbox, content, **kwargs)  # type: ignore[arg-type]
    client = await dsl.connect(school.running)
    await client.flush()
    await client.close()
    dsl.client = None


async def _codes_used_long_ago(school, user_id: bytes) -> None:  # type: ignore[no-untyped-def]
    """As if a minute had passed since the last one-time code was used (no sleeping in tests)."""
    async with school.running.services.engine.begin() as conn:
        await conn.execute(update(Account).where(Account.id == user_id).values(totp_last_step=0))


async def _account(school, user_id: bytes):  # type: ignore[no-untyped-def]
    async with school.running.services.engine.connect() as conn:
        return (
            await conn.execute(select(Account).where(Account.school_id == school.school_id, Account.id == user_id))
        ).first()


@pytest.mark.asyncio
async def test_the_recovery_key_replaces_the_password_and_keeps_every_grant(school, tmp_path) -> None:
    registration, device = await _join(school, "ann@example.org", ["teacher"], ["oak"])
    before = await _account(school, device.user_id)
    await _grant_class(school, "oak", device)
    await _write(school, b"fictional oak concern", pupil_ids=[school.classes["oak"][0]])
    assert b"fictional oak concern" in await _readable(school, device, tmp_path)
    typed = registration.recovery_key.lower().replace("-", " ")  # typed back loosely
    recovered = await recover(
        school.http, school.school_id, "ann@example.org", typed, NEW_PASSWORD, totp=_next_code(registration.totp_secret)
    )
    assert recovered.user_id == device.user_id
    assert recovered.identity.box.public == device.identity.box.public  # the same identity: grants still open
    assert b"fictional oak concern" in await _readable(school, recovered, tmp_path)
    await _fails("unauthenticated", device.call("GET", "/api/v1/grants"))  # the old session ended
    await _fails(
        "sign_in_failed",
        sign_in(school.http, school.school_id, "ann@example.org", PASSWORD, totp=_next_code(registration.totp_secret)),
    )
    await _codes_used_long_ago(school, device.user_id)
    again = await sign_in(
        school.http, school.school_id, "ann@example.org", NEW_PASSWORD, totp=_next_code(registration.totp_secret)
    )
    assert again.identity.signing.public == device.identity.signing.public
    after = await _account(school, device.user_id)
    assert after.recovery_bundle == before.recovery_bundle  # the same recovery key still works
    assert (after.kdf_params, after.login_pk) != (before.kdf_params, before.login_pk)


@pytest.mark.asyncio
async def test_a_contributor_recovers_without_a_second_factor(school) -> None:  # type: ignore[no-untyped-def]
    registration, device = await _join(school, "ben@example.org", ["contributor"], [])
    recovered = await recover(school.http, school.school_id, "ben@example.org", registration.recovery_key, NEW_PASSWORD)
    assert recovered.user_id == device.user_id and recovered.roles == {"contributor"}


@pytest.mark.asyncio
async def test_a_wrong_or_mistyped_key_changes_nothing(school) -> None:  # type: ignore[no-untyped-def]
    registration, device = await _join(school, "cal@example.org", ["teacher"], [])
    before = await _account(school, device.user_id)
    other = format_recovery_key(generate_recovery_key())
    with pytest.raises(DecryptionFailed):  # opened on the device: the server is never asked to change anything
        await recover(
            school.http, school.school_id, "cal@example.org", other, NEW_PASSWORD, totp_secret=registration.totp_secret
        )
    typo = registration.recovery_key[:-1] + ("0" if registration.recovery_key[-1] != "0" else "1")
    with pytest.raises(Malformed):
        await recover(
            school.http, school.school_id, "cal@example.org", typo, NEW_PASSWORD, totp_secret=registration.totp_secret
        )
    with pytest.raises(DecryptionFailed):  # an unknown login gets a decoy bundle nobody can open
        await recover(school.http, school.school_id, "nobody@example.org", registration.recovery_key, NEW_PASSWORD)
    assert (await _account(school, device.user_id)).login_pk == before.login_pk


async def _proof(school, login: str, recovery_key: str, *, sign_with: str | None = None, bundle_flip: bool = False):
    """Make a recovery finish body by hand, optionally signed with another key or tampered after signing."""
    secret = parse_recovery_key(recovery_key)
    start = (
        await school.http.post("/api/v1/recover/start", json={"school_id": b64e(school.school_id), "login": login})
    ).json()
    user_id = b64d(start["user_id"], "user_id")
    identity = open_bundle(
        b64d(start["recovery_bundle"], "b"), recovery_kek(secret), SLOT_RECOVERY, school.school_id, user_id
    )
    params = KdfParams.new()
    account = derive_account(NEW_PASSWORD, params)
    bundle = seal_bundle(identity, account.kek, SLOT_PASSWORD, school.school_id, user_id)
    signer = recovery_auth_key(parse_recovery_key(sign_with) if sign_with else secret)
    proof = sign_recovery_proof(
        signer, school.school_id, user_id, b64d(start["nonce"], "nonce"), params.encode(), account.login.public, bundle
    )
    if bundle_flip:
        bundle = bundle[:50] + bytes([bundle[50] ^ 1]) + bundle[51:]
    return {
        "challenge_id": start["challenge_id"],
        "signature": b64e(proof),
        "kdf_params": b64e(params.encode()),
        "login_pk": b64e(account.login.public),
        "bundle": b64e(bundle),
        "device_id": b64e(os.urandom(16)),
        "device_pk": b64e(os.urandom(32)),
    }


@pytest.mark.asyncio
async def test_a_tampered_proof_or_bundle_changes_nothing(school) -> None:  # type: ignore[no-untyped-def]
    registration, device = await _join(school, "dot@example.org", ["contributor"], [])
    before = await _account(school, device.user_id)
    other = format_recovery_key(generate_recovery_key())
    for body in [
        await _proof(school, "dot@example.org", registration.recovery_key, sign_with=other),
        await _proof(school, "dot@example.org", registration.recovery_key, bundle_flip=True),
    ]:
        response = await school.http.post("/api/v1/recover/finish", json=body)
        assert response.status_code == 401 and response.json()["error"]["code"] == "recovery_failed"
        replay = await school.http.post("/api/v1/recover/finish", json=body)  # a challenge is single use
        assert replay.json()["error"]["code"] == "recovery_failed"
    after = await _account(school, device.user_id)
    assert (after.login_pk, after.bundle) == (before.login_pk, before.bundle)
    # the bundle the server hands out, tampered with: the device refuses to open it
    async with school.running.services.engine.begin() as conn:
        tampered = (
            bytes(before.recovery_bundle[:40])
            + bytes([before.recovery_bundle[40] ^ 1])
            + bytes(before.recovery_bundle[41:])
        )
        await conn.execute(update(Account).where(Account.id == device.user_id).values(recovery_bundle=tampered))
    with pytest.raises(DecryptionFailed):
        await recover(school.http, school.school_id, "dot@example.org", registration.recovery_key, NEW_PASSWORD)
    # and a sign-in challenge is not a recovery challenge
    async with school.running.services.engine.begin() as conn:
        await conn.execute(
            update(Account).where(Account.id == device.user_id).values(recovery_bundle=before.recovery_bundle)
        )
    body = await _proof(school, "dot@example.org", registration.recovery_key)
    start = (
        await school.http.post(
            "/api/v1/sign-in/start", json={"school_id": b64e(school.school_id), "login": "dot@example.org"}
        )
    ).json()
    response = await school.http.post("/api/v1/recover/finish", json={**body, "challenge_id": start["challenge_id"]})
    assert response.json()["error"]["code"] == "recovery_failed"


@pytest.mark.asyncio
async def test_reading_roles_need_their_code_to_recover(school) -> None:  # type: ignore[no-untyped-def]
    registration, device = await _join(school, "eli@example.org", ["sen"], [])
    before = await _account(school, device.user_id)
    await _fails(
        "totp_required",
        recover(school.http, school.school_id, "eli@example.org", registration.recovery_key, NEW_PASSWORD),
    )
    await _fails(
        "sign_in_failed",
        recover(
            school.http, school.school_id, "eli@example.org", registration.recovery_key, NEW_PASSWORD, totp="000000"
        ),
    )
    assert (await _account(school, device.user_id)).login_pk == before.login_pk
    await recover(
        school.http,
        school.school_id,
        "eli@example.org",
        registration.recovery_key,
        NEW_PASSWORD,
        totp=_next_code(registration.totp_secret),
    )


@pytest.mark.asyncio
async def test_failed_recoveries_are_limited_like_sign_in(school) -> None:  # type: ignore[no-untyped-def]
    registration, device = await _join(school, "fin@example.org", ["contributor"], [])
    other = format_recovery_key(generate_recovery_key())
    for _ in range(MAX_FAILURES):
        body = await _proof(school, "fin@example.org", registration.recovery_key, sign_with=other)
        assert (await school.http.post("/api/v1/recover/finish", json=body)).json()["error"][
            "code"
        ] == "recovery_failed"
    good = await _proof(school, "fin@example.org", registration.recovery_key)
    response = await school.http.post("/api/v1/recover/finish", json=good)
    assert response.status_code == 429 and response.json()["error"]["code"] == "too_many_attempts"
    await _fails("too_many_attempts", sign_in(school.http, school.school_id, "fin@example.org", PASSWORD))


@pytest.mark.asyncio
async def test_without_the_key_a_reset_makes_a_new_identity_that_keyholders_re_grant(school, tmp_path) -> None:
    registration, old = await _join(school, "gil@example.org", ["teacher"], ["oak"])
    await _grant_class(school, "oak", old)
    oak_pupil = school.classes["oak"][0]
    await _write(school, b"fictional class concern", pupil_ids=[oak_pupil])
    people = ((old.user_id, old.identity.box.public),)
    await _write(school, b"fictional need-to-know note", recipients=school.dsl.device.recipients_for([], people=people))
    assert {b"fictional class concern", b"fictional need-to-know note"} <= await _readable(school, old, tmp_path)

    await _fails(
        "forbidden",
        school.dsl.device.call("POST", "/api/v1/admin/accounts/reset", user_id=b64e(school.dsl.device.user_id)),
    )
    await _fails(
        "not_found", school.dsl.device.call("POST", "/api/v1/admin/accounts/reset", user_id=b64e(os.urandom(16)))
    )
    out = await school.dsl.device.call("POST", "/api/v1/admin/accounts/reset", user_id=b64e(old.user_id))
    assert out["invitation"]["login"] == "gil@example.org" and out["invitation"]["classes"] == ["oak"]
    await _fails("unauthenticated", old.call("GET", "/api/v1/grants"))  # sessions and devices ended
    await _fails(
        "sign_in_failed",
        sign_in(school.http, school.school_id, "gil@example.org", PASSWORD, totp=_next_code(registration.totp_secret)),
    )
    with pytest.raises(DecryptionFailed):  # the old account is gone: its login now gets a decoy
        await recover(
            school.http,
            school.school_id,
            "gil@example.org",
            registration.recovery_key,
            NEW_PASSWORD,
            totp_secret=registration.totp_secret,
        )

    new_registration, joined = await register(school.http, school.school_id, out["invitation"]["code"], NEW_PASSWORD)
    new = await sign_in(
        school.http,
        school.school_id,
        "gil@example.org",
        NEW_PASSWORD,
        totp_secret=new_registration.totp_secret,
        device=joined,
    )
    assert new.user_id != old.user_id and new.identity.box.public != old.identity.box.public
    async with school.running.services.engine.connect() as conn:
        teaches = {bytes(r[0]) for r in await conn.execute(select(ClassTeacher.user_id))}
    assert new.user_id in teaches and old.user_id not in teaches  # the classes moved to the new identity
    assert await _readable(school, new, tmp_path) == set()  # nothing until a keyholder re-grants
    await _grant_class(school, "oak", new)
    readable = await _readable(school, new, tmp_path)
    assert b"fictional class concern" in readable  # reader-key access comes back with the re-grant
    assert b"fictional need-to-know note" not in readable  # sealed only to the old identity: not recoverable
    listed = {
        (i["login"], i["status"])
        for i in (await school.dsl.device.call("GET", "/api/v1/admin/invitations"))["invitations"]
    }
    assert ("gil@example.org", "left") in listed and ("gil@example.org", "active") in listed
