"""Replacing a forgotten password with the recovery key, on the device (docs/PROTOCOL.md 10.4).

The recovery key opens the recovery-slot bundle, so the identity keys stay the same and every grant sealed
to them still opens. The device makes new password material (fresh salt, login key, password-slot bundle),
proves the recovery key over it and the server's challenge, and is signed in as after ``sign_in``.
"""

from __future__ import annotations

import os

import httpx
import pyotp

from crypto import (
    SLOT_PASSWORD,
    SLOT_RECOVERY,
    DeviceCert,
    KdfParams,
    SigningKey,
    derive_account,
    make_device_cert,
    open_bundle,
    parse_recovery_key,
    recovery_auth_key,
    recovery_kek,
    seal_bundle,
    sign_recovery_proof,
)

from .device import ApiFailure, Device, _call, now_ms
from .protocol import b64d, b64e
from .vault import Vault

__all__ = ["recover"]


async def recover(
    http: httpx.AsyncClient,
    school_id: bytes,
    login: str,
    recovery_key: str,
    new_password: str,
    *,
    totp_secret: str | None = None,
    totp: str | None = None,
    vault: Vault | None = None,
) -> Device:
    """Set a new password with the recovery key (as printed or typed back) and sign in: as a new device, or,
    with ``vault`` (this device's sealed records, which hold its device key as kind ``device-key``), as the
    same device, whose data key the identity keys open again (PROTOCOL 2.8) and which is rewrapped under
    the new password, so every draft and unsent record still opens.

    A typo in the key raises ``Malformed`` before anything is sent; a key that does not open this account's
    recovery bundle raises ``DecryptionFailed`` (the server then learns nothing but the login asked for)."""
    secret = parse_recovery_key(recovery_key)
    start = await _call(http, "POST", "/api/v1/recover/start", school_id=b64e(school_id), login=login)
    user_id = b64d(start["user_id"], "user_id")
    identity = open_bundle(
        b64d(start["recovery_bundle"], "recovery_bundle"), recovery_kek(secret), SLOT_RECOVERY, school_id, user_id
    )
    params = KdfParams.new()
    account = derive_account(new_password, params)
    bundle = seal_bundle(identity, account.kek, SLOT_PASSWORD, school_id, user_id)
    encoded = params.encode()
    nonce = b64d(start["nonce"], "nonce")
    proof = sign_recovery_proof(
        recovery_auth_key(secret), school_id, user_id, nonce, encoded, account.login.public, bundle
    )
    device_id, device_key = os.urandom(16), SigningKey.generate()
    if vault is not None:
        if vault.user_id != user_id or vault.school_id != school_id:
            raise ValueError("this vault belongs to another account")
        vault.unlock_with_identity(bytes(identity.box))
        seed = vault.get("device-key", vault.device_id)
        if seed is None:
            raise ValueError("this vault holds no device key: recover as a new device")
        device_id, device_key = vault.device_id, SigningKey(seed)
        vault.stage(account.kek)
    body: dict[str, object] = {
        "challenge_id": start["challenge_id"],
        "signature": b64e(proof),
        "kdf_params": b64e(encoded),
        "login_pk": b64e(account.login.public),
        "bundle": b64e(bundle),
        "device_id": b64e(device_id),
        "device_pk": b64e(device_key.public),
    }
    if totp_secret or totp:
        body["totp"] = totp or pyotp.TOTP(totp_secret or "").now()
    try:
        finish = await _call(http, "POST", "/api/v1/recover/finish", **body)
    except ApiFailure:
        if vault is not None:
            vault.discard_staged()  # refused: the old wrap stays
        raise
    if vault is not None:
        vault.commit()
    device = Device(http, school_id, user_id, login, identity, device_id, device_key, set(finish["roles"]))
    device.token = finish["token"]
    if not finish["device_known"]:
        made = DeviceCert(school_id, user_id, device_id, device_key.public, now_ms())
        cert = make_device_cert(identity.signing, made)
        await _call(http, "POST", "/api/v1/devices/certify", finish["token"], cert=b64e(cert))
    return device
