"""Local sealing: what a device keeps at rest (its device key, identity keys, reader keys, drafts, the
roster cache), sealed under a key derived from the account's key-encryption key.

docs/PROTOCOL.md section 12. The key exists only while the user has unlocked the device with the
password, so a stolen or shared device holds nothing readable at rest. Each record is bound to its
school, user, kind and record id, so records cannot be swapped for one another.
"""

from __future__ import annotations

import re

from . import _primitives as p
from ._codec import Reader, Writer
from ._random import random_bytes
from .errors import Malformed, UnsupportedVersion
from .keys import SecretKey

__all__ = ["local_key", "seal_local", "open_local"]

VERSION = 1
_KIND = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
MAX_PLAINTEXT = 64 * 1024 * 1024


def local_key(kek: SecretKey) -> SecretKey:
    """The device's at-rest key, derived from the password's KEK (never stored)."""
    return SecretKey(p.keyed_hash(bytes(kek), "cairn/v1/local/key"))


def _ad(school_id: bytes, user_id: bytes, kind: str, record_id: bytes) -> bytes:
    if not _KIND.match(kind):
        raise ValueError(f"a local record kind is 1 to 32 of a-z, 0-9 and '-', starting with a letter, not {kind!r}")
    raw = kind.encode("ascii")
    return (
        Writer()
        .raw(p.ctx("cairn/v1/local"))
        .u8(VERSION)
        .id(school_id, "school id")
        .id(user_id, "user id")
        .u8(len(raw))
        .raw(raw)
        .id(record_id, "record id")
        .getvalue()
    )


def seal_local(
    key: SecretKey, school_id: bytes, user_id: bytes, kind: str, record_id: bytes, plaintext: bytes
) -> bytes:
    """Seal one local record: version, random nonce, XChaCha20-Poly1305 bound to its context."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError("a local record holds at most 64 MiB")
    nonce = random_bytes(p.NONCE_BYTES)
    box = p.aead_encrypt(bytes(key), nonce, _ad(school_id, user_id, kind, record_id), plaintext)
    return Writer().u8(VERSION).raw(nonce).raw(box).getvalue()


def open_local(key: SecretKey, school_id: bytes, user_id: bytes, kind: str, record_id: bytes, sealed: bytes) -> bytes:
    what = f"opening local {kind}"
    r = Reader(sealed, what)
    version = r.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    nonce = r.take(p.NONCE_BYTES, "nonce")
    if len(sealed) < 1 + p.NONCE_BYTES + p.TAG_BYTES:
        raise Malformed(f"{what}: truncated")
    box = r.take(len(sealed) - 1 - p.NONCE_BYTES, "box")
    r.end()
    return p.aead_decrypt(bytes(key), nonce, _ad(school_id, user_id, kind, record_id), box, what)
