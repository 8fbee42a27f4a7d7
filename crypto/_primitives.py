"""Thin libsodium primitives with no policy: the lower of crypto/'s two layers.

Everything here takes and returns bytes. The public constructions above it (wrap, envelope, grant, ...)
decide what is bound, what is checked and in which order.
"""

from __future__ import annotations

import functools

import nacl.bindings as _b
import nacl.exceptions
import nacl.pwhash
import nacl.signing

from .errors import BadSignature, DecryptionFailed

KEY_BYTES = 32
NONCE_BYTES = 24
TAG_BYTES = 16
SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


@functools.cache
def ctx(label: str) -> bytes:
    """The length-prefixed ASCII context string that starts every hashed, bound or signed input."""
    raw = label.encode("ascii")
    if not label.startswith("cairn/v1/") or len(raw) > 255:
        raise ValueError(f"context label {label!r} must start with 'cairn/v1/' and fit in 255 bytes")
    return bytes([len(raw)]) + raw


def h(label: str, data: bytes, size: int = 32) -> bytes:
    """Unkeyed BLAKE2b over ctx(label) || data."""
    return _b.crypto_generichash_blake2b_salt_personal(ctx(label) + data, digest_size=size)


def keyed_hash(key: bytes, label: str, data: bytes = b"") -> bytes:
    """BLAKE2b-256 keyed with ``key`` over ctx(label) || data; KDF(key, label) when data is empty."""
    return _b.crypto_generichash_blake2b_salt_personal(ctx(label) + data, digest_size=32, key=key)


def aead_encrypt(key: bytes, nonce: bytes, ad: bytes, message: bytes) -> bytes:
    return _b.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, nonce, key)


def aead_decrypt(key: bytes, nonce: bytes, ad: bytes, box: bytes, what: str) -> bytes:
    try:
        return _b.crypto_aead_xchacha20poly1305_ietf_decrypt(box, ad, nonce, key)
    except nacl.exceptions.CryptoError:
        raise DecryptionFailed(f"{what}: authentication tag does not verify") from None


def x25519_base(secret: bytes) -> bytes:
    return _b.crypto_scalarmult_base(secret)


def x25519(secret: bytes, public: bytes, what: str) -> bytes:
    """Diffie-Hellman; a low-order public key (all-zero result) is refused."""
    try:
        shared = _b.crypto_scalarmult(secret, public)
    except nacl.exceptions.RuntimeError:
        raise DecryptionFailed(f"{what}: the public key is of low order") from None
    if not _b.sodium_memcmp(shared, bytes(32)):
        return shared
    raise DecryptionFailed(f"{what}: the public key is of low order")  # pragma: no cover (libsodium refuses first)


def sign(seed: bytes, message: bytes) -> bytes:
    return nacl.signing.SigningKey(seed).sign(message).signature


def signing_public(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def verify(public: bytes, message: bytes, signature: bytes, what: str) -> None:
    if len(public) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        raise BadSignature(f"{what}: signature or key has the wrong length")
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        raise BadSignature(f"{what}: signature does not verify") from None


def argon2id(password: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(KEY_BYTES, password, salt, opslimit=opslimit, memlimit=memlimit)


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two byte strings of any length."""
    return len(a) == len(b) and _b.sodium_memcmp(a, b)
