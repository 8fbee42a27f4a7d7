"""One error family for every construction in crypto/.

Each error carries a stable ``code``, the same string the shared test vectors use in their ``expect``
field and that the JavaScript twin (pwa/js/crypto/errors.js) uses. Messages name the construction and
the step that failed; they never contain key bytes or plaintext.
"""

from __future__ import annotations

__all__ = [
    "CryptoError",
    "Malformed",
    "DecryptionFailed",
    "BadSignature",
    "NoKey",
    "UnsupportedVersion",
    "ParametersBelowFloor",
    "Rollback",
    "Unapproved",
]


class CryptoError(Exception):
    """Root of every error raised by crypto/."""

    code = "crypto_error"


class Malformed(CryptoError):
    """Truncated or trailing bytes, a count or length out of range, bad padding, a mistyped key."""

    code = "parse_failure"


class DecryptionFailed(CryptoError):
    """An AEAD tag failed, a key commitment did not match, or a grant held an unlisted key."""

    code = "auth_failure"


class BadSignature(CryptoError):
    """An Ed25519 signature failed, or the signer is not the author named inside the plaintext."""

    code = "bad_signature"


class NoKey(CryptoError):
    """None of the caller's keys can open this object, or it is addressed to someone else."""

    code = "no_key"


class UnsupportedVersion(CryptoError):
    """An unknown version byte or algorithm id."""

    code = "unsupported_version"


class ParametersBelowFloor(UnsupportedVersion):
    """Argon2id parameters below the client's floor (or above its ceiling)."""


class Rollback(CryptoError):
    """A signed directory version that is not newer than the one already accepted, or does not chain."""

    code = "rollback"


class Unapproved(CryptoError):
    """A signed directory version that widens who can read without a safeguarding keyholder's approval, or
    changes what may never change (a listed key swapped or dropped, a revoked device or a leaver back)."""

    code = "unapproved"
