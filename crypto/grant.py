"""Grants: a reader key's private half, sealed to a member's identity key by a current keyholder.

docs/PROTOCOL.md section 5. The server stores grants it cannot open. Opening checks the granter's
signature and that the key inside is the one the signed directory lists, so a server that invents a
key pair and seals it to a member gains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _primitives as p
from ._codec import Reader, Writer
from .errors import DecryptionFailed, Malformed, NoKey, UnsupportedVersion
from .keys import BoxKeyPair, SigningKey
from .wrap import WRAP_BYTES, unwrap_key, wrap_key

__all__ = ["GrantInfo", "make_grant", "open_grant", "read_grant", "verify_grant"]

VERSION = 1
BODY_BYTES = 1 + 16 + 16 + 4 + 16 + 16 + 8
GRANT_BYTES = BODY_BYTES + WRAP_BYTES + p.SIGNATURE_BYTES


@dataclass(frozen=True)
class GrantInfo:
    """The cleartext of a grant: what the server routes and audits by."""

    school_id: bytes
    reader_key_id: bytes
    reader_version: int
    member_id: bytes
    granter_device: bytes
    created_ms: int


def _body(info: GrantInfo) -> bytes:
    return (
        Writer().u8(VERSION).id(info.school_id, "school id").id(info.reader_key_id, "reader key id")
        .u32(info.reader_version).id(info.member_id, "member id")
        .id(info.granter_device, "granter device").u64(info.created_ms).getvalue()
    )


def _ad(body: bytes) -> bytes:
    return p.ctx("cairn/v1/grant") + body


def make_grant(info: GrantInfo, reader: BoxKeyPair, member_pk: bytes, granter: SigningKey) -> bytes:
    """Seal ``reader``'s private key to the member's identity key; signed by the granter's device."""
    if info.reader_version < 1:
        raise ValueError("reader key versions start at 1")
    body = _body(info)
    signed = body + wrap_key(member_pk, bytes(reader), _ad(body))
    return signed + granter.sign(p.ctx("cairn/v1/grant/sig") + signed)


def read_grant(data: bytes) -> tuple[GrantInfo, bytes, bytes, bytes]:
    """Parse a grant: its info, the signed bytes, the wrap and the signature (no checks of keys)."""
    what = "reading grant"
    r = Reader(data, what)
    version = r.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    if len(data) != GRANT_BYTES:
        raise Malformed(f"{what}: a grant is {GRANT_BYTES} bytes, not {len(data)}")
    info = GrantInfo(
        r.id("school id"), r.id("reader key id"), r.u32("reader version"), r.id("member id"),
        r.id("granter device"), r.u64("created"),
    )
    if info.reader_version < 1:
        raise Malformed(f"{what}: reader key versions start at 1")
    wrap = r.take(WRAP_BYTES, "wrap")
    signed = r.slice(0, r.offset)
    signature = r.take(p.SIGNATURE_BYTES, "signature")
    r.end()
    return info, signed, wrap, signature


def verify_grant(data: bytes, granter_device_pk: bytes) -> GrantInfo:
    """Parse a grant and check its granter device's signature (what a server can check without any key)."""
    info, signed, _, signature = read_grant(data)
    p.verify(granter_device_pk, p.ctx("cairn/v1/grant/sig") + signed, signature, "verifying grant")
    return info


def open_grant(
    data: bytes,
    member: BoxKeyPair,
    school_id: bytes,
    member_id: bytes,
    granter_device_pk: bytes,
    reader_pk: bytes,
) -> BoxKeyPair:
    """Open a grant addressed to ``member_id`` and return the reader key it holds."""
    what = "opening grant"
    info, signed, wrap, signature = read_grant(data)
    p.verify(granter_device_pk, p.ctx("cairn/v1/grant/sig") + signed, signature, what)
    if not (p.equal(info.school_id, school_id) and p.equal(info.member_id, member_id)):
        raise NoKey(f"{what}: the grant is addressed to another member")
    reader = BoxKeyPair(unwrap_key(wrap, member, _ad(signed[:BODY_BYTES]), what))
    if not p.equal(reader.public, reader_pk):
        raise DecryptionFailed(f"{what}: the key inside is not the listed reader key")
    return reader
