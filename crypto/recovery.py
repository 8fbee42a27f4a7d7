"""Recovery keys: 160 random bits and a 16-bit check, written as nine groups of four characters.

docs/PROTOCOL.md section 2.5. Crockford's base32 alphabet avoids letters that are easily misread;
the check catches a mistyped group before any key is tried.
"""

from __future__ import annotations

from . import _primitives as p
from ._codec import Writer
from ._random import random_bytes
from .errors import Malformed
from .keys import SecretKey, SigningKey

__all__ = [
    "generate_recovery_key",
    "format_recovery_key",
    "parse_recovery_key",
    "recovery_kek",
    "recovery_auth_key",
    "sign_recovery_proof",
    "verify_recovery_proof",
    "sign_password_change",
    "verify_password_change",
]

SECRET_BYTES = 20
CHALLENGE_BYTES = 32
PARAMS_BYTES = 26
BUNDLE_BYTES = 107
CHECK_BYTES = 2
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHARS = 36  # ceil((20 + 2) * 8 / 5)
_DECODE = {c: i for i, c in enumerate(ALPHABET)} | {"O": 0, "I": 1, "L": 1}


def generate_recovery_key() -> bytes:
    """A new recovery secret (20 bytes); show it with ``format_recovery_key``."""
    return random_bytes(SECRET_BYTES)


def _check(secret: bytes) -> bytes:
    return p.h("cairn/v1/recovery/check", secret)[:CHECK_BYTES]


def format_recovery_key(secret: bytes) -> str:
    """The printable form: 36 characters in nine groups of four, e.g. ``7K2M-...``."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a recovery secret is exactly {SECRET_BYTES} bytes, not {len(secret)}")
    value = int.from_bytes(secret + _check(secret), "big") << (CHARS * 5 - 8 * (SECRET_BYTES + CHECK_BYTES))
    chars = "".join(ALPHABET[(value >> (5 * (CHARS - 1 - i))) & 31] for i in range(CHARS))
    return "-".join(chars[i : i + 4] for i in range(0, CHARS, 4))


def parse_recovery_key(text: str) -> bytes:
    """Read a recovery key as typed back by a person; a typo raises Malformed, never a wrong key."""
    typo = Malformed("reading recovery key: the recovery key has a typo; check each group")
    if not text.isascii():
        raise typo
    cleaned = "".join(ch for ch in text.upper() if ch not in " -")
    if len(cleaned) != CHARS or any(ch not in _DECODE for ch in cleaned):
        raise typo
    value = 0
    for ch in cleaned:
        value = (value << 5) | _DECODE[ch]
    pad = CHARS * 5 - 8 * (SECRET_BYTES + CHECK_BYTES)
    if value & ((1 << pad) - 1):
        raise typo
    raw = (value >> pad).to_bytes(SECRET_BYTES + CHECK_BYTES, "big")
    secret, check = raw[:SECRET_BYTES], raw[SECRET_BYTES:]
    if not p.equal(check, _check(secret)):
        raise typo
    return secret


def recovery_kek(secret: bytes) -> SecretKey:
    """The key that seals the bundle's recovery slot."""
    return SecretKey(p.keyed_hash(_checked(secret), "cairn/v1/recovery/kek"))


def recovery_auth_key(secret: bytes) -> SigningKey:
    """The Ed25519 key that proves possession of the recovery key to the server."""
    return SigningKey(p.keyed_hash(_checked(secret), "cairn/v1/recovery/auth"))


def _checked(secret: bytes) -> bytes:
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"a recovery secret is exactly {SECRET_BYTES} bytes, not {len(secret)}")
    return secret


def _proof_message(
    school_id: bytes, user_id: bytes, challenge: bytes, kdf_params: bytes, login_pk: bytes, bundle: bytes,
    label: str = "cairn/v1/recovery/proof",
) -> bytes:
    return (
        Writer().raw(p.ctx(label)).id(school_id, "school id").id(user_id, "user id")
        .fixed(challenge, CHALLENGE_BYTES, "challenge").fixed(kdf_params, PARAMS_BYTES, "KDF parameters")
        .fixed(login_pk, 32, "login public key").fixed(bundle, BUNDLE_BYTES, "sealed bundle").getvalue()
    )


def sign_recovery_proof(
    auth: SigningKey,
    school_id: bytes,
    user_id: bytes,
    challenge: bytes,
    kdf_params: bytes,
    login_pk: bytes,
    bundle: bytes,
) -> bytes:
    """The password-reset proof: the recovery auth key signs the server's fresh challenge and the new
    password material (KDF parameters, login public key, password-slot bundle), so none can be swapped."""
    return auth.sign(_proof_message(school_id, user_id, challenge, kdf_params, login_pk, bundle))


def verify_recovery_proof(
    auth_public: bytes,
    school_id: bytes,
    user_id: bytes,
    challenge: bytes,
    kdf_params: bytes,
    login_pk: bytes,
    bundle: bytes,
    signature: bytes,
) -> None:
    """Raise BadSignature unless ``signature`` is the recovery key's proof over exactly these bytes."""
    try:
        message = _proof_message(school_id, user_id, challenge, kdf_params, login_pk, bundle)
    except ValueError as exc:
        raise Malformed(f"verifying recovery proof: {exc}") from None
    p.verify(auth_public, message, signature, "verifying recovery proof")


def sign_password_change(
    old_login: SigningKey,
    school_id: bytes,
    user_id: bytes,
    challenge: bytes,
    kdf_params: bytes,
    login_pk: bytes,
    bundle: bytes,
) -> bytes:
    """The password-change proof (docs/PROTOCOL.md 2.9): the *old* login key signs the server's fresh
    challenge and the new password material, laid out as the recovery proof under its own context."""
    return old_login.sign(_proof_message(school_id, user_id, challenge, kdf_params, login_pk, bundle, _CHANGE))


def verify_password_change(
    old_login_public: bytes,
    school_id: bytes,
    user_id: bytes,
    challenge: bytes,
    kdf_params: bytes,
    login_pk: bytes,
    bundle: bytes,
    signature: bytes,
) -> None:
    """Raise BadSignature unless ``signature`` is the old login key's proof over exactly these bytes."""
    try:
        message = _proof_message(school_id, user_id, challenge, kdf_params, login_pk, bundle, _CHANGE)
    except ValueError as exc:
        raise Malformed(f"verifying password change proof: {exc}") from None
    p.verify(old_login_public, message, signature, "verifying password change proof")


_CHANGE = "cairn/v1/account/password-change"
