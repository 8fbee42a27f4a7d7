"""The identity binding: an account's Ed25519 identity key vouches for its X25519 identity key.

docs/PROTOCOL.md section 2.7. Grants and named-person wraps are sealed to the X25519 key; devices and
approvals are vouched for by the Ed25519 key. Without a binding, whoever serves the directory could pair
an account's real Ed25519 key with an X25519 key of its own, and every grant sealed to that account would
open for it. The binding is made on the account's own device at registration (and again only by a
recovery that changes the identity keys, which a safeguarding keyholder approves).
"""

from __future__ import annotations

from . import _primitives as p
from ._codec import Writer
from .errors import Malformed
from .keys import SigningKey

__all__ = ["BINDING_BYTES", "sign_identity_binding", "verify_identity_binding"]

BINDING_BYTES = p.SIGNATURE_BYTES
_CTX = "cairn/v1/identity/binding"


def _message(school_id: bytes, user_id: bytes, identity_x25519_pk: bytes) -> bytes:
    return (
        Writer().raw(p.ctx(_CTX)).id(school_id, "school id").id(user_id, "user id")
        .fixed(identity_x25519_pk, 32, "identity X25519 key").getvalue()
    )


def sign_identity_binding(identity: SigningKey, school_id: bytes, user_id: bytes, identity_x25519_pk: bytes) -> bytes:
    """64 bytes: the identity Ed25519 key's signature over school, user and the X25519 identity key."""
    return identity.sign(_message(school_id, user_id, identity_x25519_pk))


def verify_identity_binding(
    binding: bytes, identity_ed25519_pk: bytes, school_id: bytes, user_id: bytes, identity_x25519_pk: bytes
) -> None:
    """Raise BadSignature unless ``binding`` is the Ed25519 identity key's signature over the X25519 key."""
    what = "verifying identity binding"
    try:
        message = _message(school_id, user_id, identity_x25519_pk)
    except ValueError as exc:
        raise Malformed(f"{what}: {exc}") from None
    if len(binding) != BINDING_BYTES:
        raise Malformed(f"{what}: a binding is {BINDING_BYTES} bytes, not {len(binding)}")
    p.verify(identity_ed25519_pk, message, binding, what)
