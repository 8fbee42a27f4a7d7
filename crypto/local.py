"""Local sealing: what a device keeps at rest (its device key, identity keys, reader keys, drafts, unsent
audit entries, the roster cache), sealed under the device's **data key**, which the password only wraps.

docs/PROTOCOL.md sections 2.8 and 12. The data key is 32 random bytes made on the device for one account;
it is stored only wrapped: under a key derived from the password's KEK (slot 1), and under a key derived
from the account's X25519 identity key (slot 2), which a recovery or a sign-in with a changed password
opens again from the bundle. Changing the password rewraps slot 1 and re-seals nothing, so every record
sealed before it still opens. Each record is bound to its school, user, kind and record id, and each wrap
to its school, user, device and slot, so neither can be offered as another.

Version 1 records were sealed under ``local_key(kek)`` directly; ``open_legacy_local`` opens them once, so
that a device can re-seal them under a data key (docs/PROTOCOL.md 12).
"""

from __future__ import annotations

import re

from . import _primitives as p
from ._codec import Reader, Writer
from ._random import random_bytes
from .errors import Malformed, UnsupportedVersion
from .keys import SecretKey

__all__ = [
    "SLOT_PASSWORD",
    "SLOT_IDENTITY",
    "WRAP_BYTES",
    "new_data_key",
    "password_wrap_key",
    "identity_wrap_key",
    "wrap_data_key",
    "unwrap_data_key",
    "seal_local",
    "open_local",
    "local_key",
    "open_legacy_local",
]

VERSION = 2  # a record sealed under the data key
LEGACY_VERSION = 1  # a record sealed under local_key(kek): opened once, to be re-sealed
WRAP_VERSION = 1
SLOT_PASSWORD = 1
SLOT_IDENTITY = 2
WRAP_BYTES = 1 + 1 + p.NONCE_BYTES + p.KEY_BYTES + p.TAG_BYTES  # 74
_KIND = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
MAX_PLAINTEXT = 64 * 1024 * 1024


# --- the data key and its wraps (PROTOCOL 2.8) ------------------------------------------------------


def new_data_key() -> SecretKey:
    """A fresh data key for one account on one device."""
    return SecretKey.generate()


def password_wrap_key(kek: SecretKey) -> SecretKey:
    """The key that wraps the data key in the password slot, from the password's KEK (never stored)."""
    return SecretKey(p.keyed_hash(bytes(kek), "cairn/v1/local/wrap-key"))


def identity_wrap_key(identity_x25519_sk: bytes) -> SecretKey:
    """The key that wraps the data key in the identity slot, from the account's X25519 identity secret
    key (which the password bundle and the recovery bundle both hold)."""
    if len(identity_x25519_sk) != p.KEY_BYTES:
        raise ValueError("an X25519 identity secret key is exactly 32 bytes")
    return SecretKey(p.keyed_hash(bytes(identity_x25519_sk), "cairn/v1/local/identity-wrap-key"))


def _check_slot(slot: int) -> None:
    if slot not in (SLOT_PASSWORD, SLOT_IDENTITY):
        raise ValueError(f"a data key wrap slot is {SLOT_PASSWORD} (password) or {SLOT_IDENTITY} (identity), "
                         f"not {slot}")


def _wrap_ad(slot: int, school_id: bytes, user_id: bytes, device_id: bytes) -> bytes:
    return (
        Writer()
        .raw(p.ctx("cairn/v1/local/data-key"))
        .u8(WRAP_VERSION)
        .u8(slot)
        .id(school_id, "school id")
        .id(user_id, "user id")
        .id(device_id, "device id")
        .getvalue()
    )


def wrap_data_key(
    data_key: SecretKey, key: SecretKey, slot: int, school_id: bytes, user_id: bytes, device_id: bytes
) -> bytes:
    """Wrap the data key under ``key`` (``password_wrap_key`` for slot 1, ``identity_wrap_key`` for slot 2),
    bound to its slot, school, user and device: 74 bytes."""
    _check_slot(slot)
    nonce = random_bytes(p.NONCE_BYTES)
    box = p.aead_encrypt(bytes(key), nonce, _wrap_ad(slot, school_id, user_id, device_id), bytes(data_key))
    return Writer().u8(WRAP_VERSION).u8(slot).raw(nonce).raw(box).getvalue()


def unwrap_data_key(
    wrap: bytes, key: SecretKey, slot: int, school_id: bytes, user_id: bytes, device_id: bytes
) -> SecretKey:
    """Open a data key wrap: version first, then the length, the slot the caller expects, the tag."""
    _check_slot(slot)
    what = "opening data key wrap"
    r = Reader(wrap, what)
    version = r.u8("version")
    if version != WRAP_VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    if len(wrap) != WRAP_BYTES:
        raise Malformed(f"{what}: {len(wrap)} bytes, not {WRAP_BYTES}")
    got = r.u8("slot")
    if got != slot:
        raise Malformed(f"{what}: slot {got}, not the slot {slot} expected")
    nonce = r.take(p.NONCE_BYTES, "nonce")
    box = r.take(p.KEY_BYTES + p.TAG_BYTES, "box")
    r.end()
    return SecretKey(p.aead_decrypt(bytes(key), nonce, _wrap_ad(slot, school_id, user_id, device_id), box, what))


# --- records (PROTOCOL 12) -------------------------------------------------------------------------


def _ad(version: int, school_id: bytes, user_id: bytes, kind: str, record_id: bytes) -> bytes:
    if not _KIND.match(kind):
        raise ValueError(f"a local record kind is 1 to 32 of a-z, 0-9 and '-', starting with a letter, not {kind!r}")
    raw = kind.encode("ascii")
    return (
        Writer()
        .raw(p.ctx("cairn/v1/local"))
        .u8(version)
        .id(school_id, "school id")
        .id(user_id, "user id")
        .u8(len(raw))
        .raw(raw)
        .id(record_id, "record id")
        .getvalue()
    )


def seal_local(
    data_key: SecretKey, school_id: bytes, user_id: bytes, kind: str, record_id: bytes, plaintext: bytes
) -> bytes:
    """Seal one local record under the data key: version 2, random nonce, XChaCha20-Poly1305 bound to its
    context."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError("a local record holds at most 64 MiB")
    nonce = random_bytes(p.NONCE_BYTES)
    box = p.aead_encrypt(bytes(data_key), nonce, _ad(VERSION, school_id, user_id, kind, record_id), plaintext)
    return Writer().u8(VERSION).raw(nonce).raw(box).getvalue()


def _open(version: int, key: SecretKey, school_id: bytes, user_id: bytes, kind: str, record_id: bytes,
          sealed: bytes) -> bytes:
    what = f"opening local {kind}"
    r = Reader(sealed, what)
    got = r.u8("version")
    if got != version:
        raise UnsupportedVersion(f"{what}: version {got}, not {version}")
    nonce = r.take(p.NONCE_BYTES, "nonce")
    if len(sealed) < 1 + p.NONCE_BYTES + p.TAG_BYTES:
        raise Malformed(f"{what}: truncated")
    box = r.take(len(sealed) - 1 - p.NONCE_BYTES, "box")
    r.end()
    return p.aead_decrypt(bytes(key), nonce, _ad(version, school_id, user_id, kind, record_id), box, what)


def open_local(
    data_key: SecretKey, school_id: bytes, user_id: bytes, kind: str, record_id: bytes, sealed: bytes
) -> bytes:
    """Open a version 2 record; a version 1 record is ``UnsupportedVersion`` here (``open_legacy_local``)."""
    return _open(VERSION, data_key, school_id, user_id, kind, record_id, sealed)


def local_key(kek: SecretKey) -> SecretKey:
    """The version 1 at-rest key, derived from the password's KEK: only to open version 1 records once."""
    return SecretKey(p.keyed_hash(bytes(kek), "cairn/v1/local/key"))


def open_legacy_local(
    key: SecretKey, school_id: bytes, user_id: bytes, kind: str, record_id: bytes, sealed: bytes
) -> bytes:
    """Open a version 1 record under ``local_key(kek)``, to re-seal it under the data key."""
    return _open(LEGACY_VERSION, key, school_id, user_id, kind, record_id, sealed)
