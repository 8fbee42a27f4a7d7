"""Account keys: Argon2id over the password yields the login key and the key-encryption key.

docs/PROTOCOL.md section 2. The floor and ceiling on the Argon2id parameters are constants of the
client, so a hostile server can neither weaken the derivation nor make it exhaust a phone.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from . import _primitives as p
from ._codec import Reader, Writer
from ._random import random_bytes
from .errors import Malformed, ParametersBelowFloor, UnsupportedVersion
from .keys import SecretKey, SigningKey

__all__ = [
    "KdfParams",
    "AccountKeys",
    "derive_account",
    "sign_challenge",
    "verify_challenge",
    "OPSLIMIT_FLOOR",
    "MEMLIMIT_FLOOR",
]

VERSION = 1
ALG_ARGON2ID13 = 2
SALT_BYTES = 16
PARAMS_BYTES = 26
OPSLIMIT_FLOOR = 3
MEMLIMIT_FLOOR = 64 * 1024 * 1024
OPSLIMIT_CEILING = 16
MEMLIMIT_CEILING = 1024 * 1024 * 1024
CHALLENGE_BYTES = 32


@dataclass(frozen=True)
class KdfParams:
    """Argon2id parameters and salt, stored (public) by the server; 26 bytes on the wire."""

    opslimit: int
    memlimit: int
    salt: bytes

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_BYTES:
            raise ValueError(f"an Argon2id salt is exactly {SALT_BYTES} bytes, not {len(self.salt)}")
        _check_floor(self.opslimit, self.memlimit)

    @classmethod
    def new(cls) -> KdfParams:
        """Parameters for a new account: the floor, with a fresh random salt."""
        return cls(OPSLIMIT_FLOOR, MEMLIMIT_FLOOR, random_bytes(SALT_BYTES))

    def encode(self) -> bytes:
        return (
            Writer().u8(VERSION).u8(ALG_ARGON2ID13).u32(self.opslimit).u32(self.memlimit)
            .fixed(self.salt, SALT_BYTES, "salt").getvalue()
        )

    @classmethod
    def decode(cls, data: bytes) -> KdfParams:
        what = "reading KDF parameters"
        r = Reader(data, what)
        version = r.u8("version")
        if version != VERSION:
            raise UnsupportedVersion(f"{what}: unknown version {version}")
        alg = r.u8("alg")
        if alg != ALG_ARGON2ID13:
            raise UnsupportedVersion(f"{what}: unknown algorithm {alg}")
        opslimit, memlimit, salt = r.u32("opslimit"), r.u32("memlimit"), r.take(SALT_BYTES, "salt")
        r.end()
        return cls(opslimit, memlimit, salt)


@dataclass(frozen=True)
class AccountKeys:
    """What a password yields: the login key (public half on the server) and the KEK (never sent)."""

    login: SigningKey
    kek: SecretKey


def derive_account(password: str, params: KdfParams) -> AccountKeys:
    """Argon2id(password, salt), then the login key and KEK by domain-separated BLAKE2b."""
    if not isinstance(password, str) or not password:
        raise ValueError("a password is a non-empty string")
    _check_floor(params.opslimit, params.memlimit)
    secret = unicodedata.normalize("NFC", password).encode("utf-8")
    master = p.argon2id(secret, params.salt, params.opslimit, params.memlimit)
    return AccountKeys(
        login=SigningKey(p.keyed_hash(master, "cairn/v1/account/login")),
        kek=SecretKey(p.keyed_hash(master, "cairn/v1/account/kek")),
    )


def _challenge_message(school_id: bytes, user_id: bytes, challenge: bytes) -> bytes:
    return (
        Writer().raw(p.ctx("cairn/v1/account/challenge")).id(school_id, "school id")
        .id(user_id, "user id").fixed(challenge, CHALLENGE_BYTES, "challenge").getvalue()
    )


def sign_challenge(login: SigningKey, school_id: bytes, user_id: bytes, challenge: bytes) -> bytes:
    """The sign-in proof: the login key signs the server's fresh challenge, bound to school and user."""
    return login.sign(_challenge_message(school_id, user_id, challenge))


def verify_challenge(
    login_public: bytes, school_id: bytes, user_id: bytes, challenge: bytes, signature: bytes
) -> None:
    """Raise BadSignature unless ``signature`` is the user's answer to ``challenge``."""
    try:
        message = _challenge_message(school_id, user_id, challenge)
    except ValueError as exc:
        raise Malformed(f"verifying sign-in proof: {exc}") from None
    p.verify(login_public, message, signature, "verifying sign-in proof")


def _check_floor(opslimit: int, memlimit: int) -> None:
    if opslimit < OPSLIMIT_FLOOR or memlimit < MEMLIMIT_FLOOR:
        raise ParametersBelowFloor(
            f"Argon2id parameters below the floor (opslimit {opslimit} < {OPSLIMIT_FLOOR} "
            f"or memlimit {memlimit} < {MEMLIMIT_FLOOR})"
        )
    if opslimit > OPSLIMIT_CEILING or memlimit > MEMLIMIT_CEILING:
        raise ParametersBelowFloor(
            f"Argon2id parameters above the ceiling (opslimit {opslimit} > {OPSLIMIT_CEILING} "
            f"or memlimit {memlimit} > {MEMLIMIT_CEILING})"
        )
