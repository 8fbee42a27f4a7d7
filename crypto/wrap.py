"""Wraps: a 32-byte key sealed to an X25519 public key with associated data.

docs/PROTOCOL.md section 4. libsodium's sealed box cannot bind associated data, so this is the sealed
box's design (ephemeral X25519, hashed shared secret, nonce derived from both public keys) with
XChaCha20-Poly1305 and domain-separated BLAKE2b, binding the caller's context.
"""

from __future__ import annotations

from . import _primitives as p
from ._random import random_bytes
from .errors import Malformed
from .keys import BoxKeyPair

__all__ = ["wrap_key", "unwrap_key", "WRAP_BYTES"]

WRAP_BYTES = 32 + p.KEY_BYTES + p.TAG_BYTES


def _key_and_nonce(shared: bytes, eph_pk: bytes, recipient_pk: bytes) -> tuple[bytes, bytes]:
    both = eph_pk + recipient_pk
    return (
        p.keyed_hash(shared, "cairn/v1/wrap/key", both),
        p.h("cairn/v1/wrap/nonce", both, size=p.NONCE_BYTES),
    )


def wrap_key(recipient_pk: bytes, payload: bytes, ad: bytes) -> bytes:
    """Seal a 32-byte ``payload`` to ``recipient_pk``; 80 bytes, bound to ``ad``."""
    if len(recipient_pk) != 32 or len(payload) != p.KEY_BYTES:
        raise ValueError("a wrap seals exactly 32 bytes to a 32-byte X25519 public key")
    eph_sk = random_bytes(32)
    eph_pk = p.x25519_base(eph_sk)
    shared = p.x25519(eph_sk, recipient_pk, "wrapping key")
    key, nonce = _key_and_nonce(shared, eph_pk, recipient_pk)
    return eph_pk + p.aead_encrypt(key, nonce, ad, payload)


def unwrap_key(wrap: bytes, recipient: BoxKeyPair, ad: bytes, what: str = "opening wrap") -> bytes:
    """Open a wrap; its length is checked before anything else touches it."""
    if len(wrap) != WRAP_BYTES:
        raise Malformed(f"{what}: a wrap is {WRAP_BYTES} bytes, not {len(wrap)}")
    eph_pk, box = wrap[:32], wrap[32:]
    shared = p.x25519(bytes(recipient), eph_pk, what)
    key, nonce = _key_and_nonce(shared, eph_pk, recipient.public)
    return p.aead_decrypt(key, nonce, ad, box, what)
