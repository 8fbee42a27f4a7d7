"""The private bundle: a user's identity keys, sealed under the password KEK or the recovery KEK.

docs/PROTOCOL.md section 2.4. The server keeps the sealed bundle so its owner can sign in on a new
device; it cannot open it.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _primitives as p
from ._codec import Reader, Writer
from ._random import random_bytes
from .errors import Malformed, UnsupportedVersion
from .keys import BoxKeyPair, SecretKey, SigningKey

__all__ = ["IdentityKeys", "seal_bundle", "open_bundle", "SLOT_PASSWORD", "SLOT_RECOVERY"]

VERSION = 1
SLOT_PASSWORD = 1
SLOT_RECOVERY = 2
PLAIN_BYTES = 65
SEALED_BYTES = 1 + 1 + p.NONCE_BYTES + PLAIN_BYTES + p.TAG_BYTES


@dataclass(frozen=True)
class IdentityKeys:
    """A user's identity: X25519 (grants and named-person wraps are sealed to it) and Ed25519."""

    box: BoxKeyPair
    signing: SigningKey

    @classmethod
    def generate(cls) -> IdentityKeys:
        return cls(BoxKeyPair.generate(), SigningKey.generate())


def _ad(slot: int, school_id: bytes, user_id: bytes) -> bytes:
    return (
        Writer().raw(p.ctx("cairn/v1/bundle")).u8(VERSION).u8(slot)
        .id(school_id, "school id").id(user_id, "user id").getvalue()
    )


def seal_bundle(
    identity: IdentityKeys, kek: SecretKey, slot: int, school_id: bytes, user_id: bytes
) -> bytes:
    """Seal the identity keys under ``kek`` for one slot, bound to school and user."""
    if slot not in (SLOT_PASSWORD, SLOT_RECOVERY):
        raise ValueError(f"bundle slot must be {SLOT_PASSWORD} or {SLOT_RECOVERY}, not {slot!r}")
    plain = Writer().u8(VERSION).raw(bytes(identity.box)).raw(bytes(identity.signing)).getvalue()
    nonce = random_bytes(p.NONCE_BYTES)
    box = p.aead_encrypt(bytes(kek), nonce, _ad(slot, school_id, user_id), plain)
    return Writer().u8(VERSION).u8(slot).raw(nonce).raw(box).getvalue()


def open_bundle(
    sealed: bytes, kek: SecretKey, slot: int, school_id: bytes, user_id: bytes
) -> IdentityKeys:
    """Open a sealed bundle; the slot, school and user must be the ones it was sealed for."""
    what = "opening bundle"
    r = Reader(sealed, what)
    version = r.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    if len(sealed) != SEALED_BYTES:
        raise Malformed(f"{what}: a sealed bundle is {SEALED_BYTES} bytes, not {len(sealed)}")
    found = r.u8("slot")
    if found != slot:
        raise Malformed(f"{what}: sealed for slot {found}, expected slot {slot}")
    nonce, box = r.take(p.NONCE_BYTES, "nonce"), r.take(PLAIN_BYTES + p.TAG_BYTES, "box")
    r.end()
    plain = p.aead_decrypt(bytes(kek), nonce, _ad(slot, school_id, user_id), box, what)
    inner = Reader(plain, what)
    if inner.u8("inner version") != VERSION:
        raise UnsupportedVersion(f"{what}: unknown inner version")
    box_key, seed = inner.take(32, "identity X25519 key"), inner.take(32, "identity Ed25519 seed")
    inner.end()
    return IdentityKeys(BoxKeyPair(box_key), SigningKey(seed))
