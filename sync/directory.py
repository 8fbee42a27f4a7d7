"""The client side of the signed directory (docs/PROTOCOL.md section 13): follow, pin, re-sign.

A device trusts no key the server serves unless the newest directory version signed with the school's
signing key lists it. ``follow`` checks what ``GET /api/v1/directory`` served against the key this
device pinned at its first sign-in (trust on first use, shown as a fingerprint to compare) and the
version it already holds: a version going backwards, a fork, or a version signed by any other key is
refused, except a rotation that a version signed by the pinned key announced.

A safeguarding keyholder's device, holding the ``signing:directory`` reader key, also signs the next
version when the server reports a change (``resign``), after checking what it signs: every device is
certified by its user's identity key, and no key an earlier version listed has been swapped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from crypto import BoxKeyPair, CryptoError, DeviceCert, SigningKey, verify_device_cert
from crypto.directory import (
    SIGNING_PURPOSE,
    DirAccount,
    DirClass,
    DirDevice,
    DirectoryContent,
    DirKey,
    DirPupil,
    SignedDirectory,
    directory_signing_key,
    fingerprint,
    sign_directory,
    verify_directory,
)

from .protocol import b64d, b64e

__all__ = [
    "DirectoryRefused",
    "Followed",
    "follow",
    "listing",
    "content_from_listing",
    "check_before_signing",
    "signing_key_for",
    "sign_next",
    "fingerprint_of",
    "rotate_signing_key",
    "new_signing_reader",
]


class DirectoryRefused(Exception):
    """What the server served (or asks a keyholder to sign) is not trusted; nothing was changed."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Followed:
    """The newest version this device accepted, and the key it now pins (the next version's signer)."""

    directory: SignedDirectory
    pinned_pk: bytes


def follow(
    served: dict, school_id: bytes, pinned_pk: bytes | None, held: SignedDirectory | None
) -> Followed | None:
    """Check a ``GET /api/v1/directory`` answer: rotation links in order, then the newest version.
    Returns None when the server has no signed version yet (nothing to trust), or the held version when
    the server serves it again. Raises DirectoryRefused when anything fails to verify."""
    if served.get("signed") is None:
        if held is not None:
            raise DirectoryRefused("rollback", "the server no longer serves a directory this device holds")
        return None
    chain = [b64d(x, "link") for x in served.get("links", [])] + [b64d(served["signed"], "signed")]
    previous, pin = held, pinned_pk
    for raw in chain:
        if previous is not None and raw == previous.raw:
            continue  # the version this device holds, served again: nothing new
        try:
            previous = verify_directory(raw, school_id, pin, previous)
        except CryptoError as exc:
            raise DirectoryRefused(exc.code, str(exc)) from None
        pin = previous.next_signing_pk
    assert previous is not None and pin is not None
    return Followed(previous, pin)


def fingerprint_of(school_id: bytes, pinned_pk: bytes | None) -> str | None:
    return fingerprint(school_id, pinned_pk) if pinned_pk else None


def listing(d: SignedDirectory) -> dict:
    """The verified content in the JSON shape the rest of the client reads (ids and keys as base64url)."""
    c = d.content
    return {
        "version": d.version,
        "accounts": [
            {"id": b64e(a.id), "login": a.login, "display_name": a.display_name, "roles": list(a.roles),
             "identity_x25519_pk": b64e(a.identity_x25519_pk), "identity_ed25519_pk": b64e(a.identity_ed25519_pk),
             "left": a.left}
            for a in c.accounts
        ],
        "devices": [
            {"id": b64e(x.id), "user_id": b64e(x.user_id), "public_key": b64e(x.public_key), "revoked": x.revoked}
            for x in c.devices
        ],
        "reader_keys": [
            {"id": b64e(k.id), "version": k.version, "purpose": k.purpose, "public_key": b64e(k.public_key),
             "current": k.current}
            for k in c.reader_keys
        ],
        "pupils": [{"id": b64e(x.id), "reader_key_id": b64e(x.reader_key_id)} for x in c.pupils],
        "classes": [
            {"id": b64e(k.id), "label": k.label, "pupils": [b64e(x) for x in k.pupils],
             "teachers": [b64e(x) for x in k.teachers]}
            for k in c.classes
        ],
    }


def content_from_listing(current: dict) -> DirectoryContent:
    """The content a keyholder signs, from the server's ``current`` state (JSON)."""
    return DirectoryContent(
        tuple(
            DirAccount(b64d(a["id"], "id"), tuple(a["roles"]), b64d(a["identity_x25519_pk"], "pk"),
                       b64d(a["identity_ed25519_pk"], "pk"), bool(a["left"]), a["login"], a["display_name"])
            for a in current["accounts"]
        ),
        tuple(
            DirDevice(b64d(x["id"], "id"), b64d(x["user_id"], "id"), b64d(x["public_key"], "pk"), bool(x["revoked"]))
            for x in current["devices"]
        ),
        tuple(
            DirKey(b64d(k["id"], "id"), k["version"], k["purpose"], b64d(k["public_key"], "pk"), bool(k["current"]))
            for k in current["reader_keys"]
        ),
        tuple(DirPupil(b64d(x["id"], "id"), b64d(x["reader_key_id"], "id")) for x in current["pupils"]),
        tuple(
            DirClass(b64d(k["id"], "id"), k["label"], tuple(b64d(x, "id") for x in k["pupils"]),
                     tuple(b64d(x, "id") for x in k["teachers"]))
            for k in current["classes"]
        ),
    )


def check_before_signing(school_id: bytes, current: dict, held: SignedDirectory | None) -> DirectoryContent:
    """What a keyholder device checks before it signs the server's current state: each device's
    certificate verifies with its user's identity key, for that school, user, device and key; and no
    device key, reader key or identity key an earlier version listed was swapped, nor a revoked device
    brought back. Raises DirectoryRefused otherwise."""
    content = content_from_listing(current)
    identities = {a.id: a.identity_ed25519_pk for a in content.accounts}
    for raw in current["devices"]:
        device_id, user_id, pk = b64d(raw["id"], "id"), b64d(raw["user_id"], "id"), b64d(raw["public_key"], "pk")
        try:
            cert = verify_device_cert(b64d(raw.get("cert", ""), "cert"), identities.get(user_id, bytes(32)))
        except CryptoError:
            raise DirectoryRefused("bad_certificate", f"device {raw['id']} is not certified by its user") from None
        if cert != DeviceCert(school_id, user_id, device_id, pk, cert.created_ms):
            raise DirectoryRefused("bad_certificate", f"device {raw['id']}'s certificate names something else")
    if held is not None:
        before = held.content
        _unchanged(
            "device", {d.id: d.public_key for d in before.devices}, {d.id: d.public_key for d in content.devices}
        )
        _unchanged(
            "reader key",
            {(k.id, k.version): k.public_key for k in before.reader_keys},
            {(k.id, k.version): k.public_key for k in content.reader_keys},
        )
        revoked = {d.id for d in before.devices if d.revoked}
        if any(d.id in revoked and not d.revoked for d in content.devices):
            raise DirectoryRefused("swapped_key", "a revoked device is listed as not revoked")
    return content


def _unchanged(what: str, before: dict, after: dict) -> None:
    for key, pk in before.items():
        if key in after and after[key] != pk:
            raise DirectoryRefused("swapped_key", f"a {what} listed before now has another public key")
        if key not in after:
            raise DirectoryRefused("swapped_key", f"a {what} listed before is missing")


def signing_key_for(
    reader_keys: dict[tuple[bytes, int], BoxKeyPair], listed: Iterable[dict], want_pk: bytes | None
) -> SigningKey | None:
    """The school signing key this device holds whose public key is ``want_pk`` (or, before any version
    exists, the current ``signing:directory`` key it holds); None when it holds none."""
    for k in sorted(listed, key=lambda k: -k["version"]):
        if k["purpose"] != SIGNING_PURPOSE:
            continue
        pair = reader_keys.get((b64d(k["id"], "id"), k["version"]))
        if pair is None:
            continue
        key = directory_signing_key(pair)
        if (want_pk is None and k["current"]) or key.public == want_pk:
            return key
    return None


def sign_next(
    key: SigningKey,
    school_id: bytes,
    content: DirectoryContent,
    held: SignedDirectory | None,
    created_ms: int,
    next_signing_pk: bytes | None = None,
) -> bytes:
    """The version after ``held`` (or version 1), signed with ``key``."""
    return sign_directory(
        key,
        school_id=school_id,
        version=held.version + 1 if held else 1,
        prev_hash=held.hash if held else bytes(32),
        created_ms=created_ms,
        next_signing_pk=next_signing_pk or key.public,
        content=content,
    )


def new_signing_reader() -> tuple[bytes, BoxKeyPair]:
    """A fresh ``signing:directory`` reader key (id, pair): the school signing key is derived from it."""
    return os.urandom(16), BoxKeyPair.generate()


async def rotate_signing_key(device) -> bytes:  # type: ignore[no-untyped-def]
    """Rotate the school signing key from a keyholder device (a ``sync.device.Device`` holding it): make a
    new version of the ``signing:directory`` reader key, grant it to every safeguarding member the signed
    directory lists, and publish a version signed by the old key that announces the new one. Devices
    follow the rotation through that version; the fingerprint people compare changes. Returns the new
    signing key's public key."""
    await device.refresh()
    old = signing_key_for(device.reader_keys, device.directory["reader_keys"], device.pinned_signing_pk)
    if old is None:
        raise DirectoryRefused("no_key", "this device does not hold the school signing key")
    listed = [k for k in device.directory["reader_keys"] if k["purpose"] == SIGNING_PURPOSE]
    key_id = b64d(max(listed, key=lambda k: k["version"])["id"], "id")
    version = max(k["version"] for k in listed if b64d(k["id"], "id") == key_id) + 1
    pair = BoxKeyPair.generate()
    await device.call(
        "POST",
        "/api/v1/keys",
        keys=[{"id": b64e(key_id), "version": version, "purpose": SIGNING_PURPOSE, "public_key": b64e(pair.public)}],
    )
    device.reader_keys[(key_id, version)] = pair
    holders = [a for a in device.directory["accounts"] if "safeguarding" in a["roles"] and not a["left"]]
    await device.grant(
        [(key_id, version, b64d(a["id"], "id"), b64d(a["identity_x25519_pk"], "pk")) for a in holders]
    )
    new = directory_signing_key(pair)
    served = await device.follow_directory()
    if not served.get("changed") or "current" not in served:
        raise DirectoryRefused("stale_directory", "the server does not list the new key version")
    content = check_before_signing(device.school_id, served["current"], device.signed_directory)
    raw = sign_next(old, device.school_id, content, device.signed_directory, int(time.time() * 1000), new.public)
    await device.call("POST", "/api/v1/directory", signed=b64e(raw))
    await device.follow_directory()
    return new.public
