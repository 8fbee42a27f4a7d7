"""Entry key grants: one entry key version of one concern, sealed to a person named on it.

docs/PROTOCOL.md section 5.1. When a safeguarding keyholder names someone on a need-to-know basis, its
device re-seals every entry key version of the concern it holds to that person's identity key, so the
person reads the concern from its first event, not only what is written after the naming. The server
stores the grant it cannot open and delivers it with the concern's envelopes; the person's device opens
it, and uses the key only for envelopes of the concern and version the grant names, whose key commitment
(6.2) then proves it is their key.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _primitives as p
from ._codec import Reader, Writer
from .errors import Malformed, NoKey, UnsupportedVersion
from .keys import BoxKeyPair, SecretKey, SigningKey
from .wrap import WRAP_BYTES, unwrap_key, wrap_key

__all__ = ["EntryGrantInfo", "make_entry_grant", "open_entry_grant", "read_entry_grant", "verify_entry_grant"]

VERSION = 1
BODY_BYTES = 1 + 16 + 16 + 4 + 16 + 16 + 8
ENTRY_GRANT_BYTES = BODY_BYTES + WRAP_BYTES + p.SIGNATURE_BYTES
_AD = "cairn/v1/entry-grant"
_SIG = "cairn/v1/entry-grant/sig"


@dataclass(frozen=True)
class EntryGrantInfo:
    """The cleartext of an entry key grant: what the server checks, stores and routes by."""

    school_id: bytes
    concern_id: bytes
    entry_version: int
    member_id: bytes
    granter_device: bytes
    created_ms: int


def _body(info: EntryGrantInfo) -> bytes:
    return (
        Writer().u8(VERSION).id(info.school_id, "school id").id(info.concern_id, "concern id")
        .u32(info.entry_version).id(info.member_id, "member id")
        .id(info.granter_device, "granter device").u64(info.created_ms).getvalue()
    )


def _ad(body: bytes) -> bytes:
    return p.ctx(_AD) + body


def make_entry_grant(info: EntryGrantInfo, entry_key: SecretKey, member_pk: bytes, granter: SigningKey) -> bytes:
    """Seal ``entry_key`` (version ``info.entry_version`` of concern ``info.concern_id``) to the member's
    identity key (taken from the signed directory); signed by the granter's device."""
    if info.entry_version < 1:
        raise ValueError("entry key versions start at 1")
    body = _body(info)
    signed = body + wrap_key(member_pk, bytes(entry_key), _ad(body))
    return signed + granter.sign(p.ctx(_SIG) + signed)


def read_entry_grant(data: bytes) -> tuple[EntryGrantInfo, bytes, bytes, bytes]:
    """Parse an entry key grant: its info, the signed bytes, the wrap and the signature (no key checked)."""
    what = "reading entry key grant"
    r = Reader(data, what)
    version = r.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    if len(data) != ENTRY_GRANT_BYTES:
        raise Malformed(f"{what}: an entry key grant is {ENTRY_GRANT_BYTES} bytes, not {len(data)}")
    info = EntryGrantInfo(
        r.id("school id"), r.id("concern id"), r.u32("entry key version"), r.id("member id"),
        r.id("granter device"), r.u64("created"),
    )
    if info.entry_version < 1:
        raise Malformed(f"{what}: entry key versions start at 1")
    wrap = r.take(WRAP_BYTES, "wrap")
    signed = r.slice(0, r.offset)
    signature = r.take(p.SIGNATURE_BYTES, "signature")
    r.end()
    return info, signed, wrap, signature


def verify_entry_grant(data: bytes, granter_device_pk: bytes) -> EntryGrantInfo:
    """Parse and check the granter device's signature: what a server can check without any key."""
    info, signed, _, signature = read_entry_grant(data)
    p.verify(granter_device_pk, p.ctx(_SIG) + signed, signature, "verifying entry key grant")
    return info


def open_entry_grant(
    data: bytes, member: BoxKeyPair, school_id: bytes, member_id: bytes, granter_device_pk: bytes
) -> tuple[EntryGrantInfo, SecretKey]:
    """Open an entry key grant addressed to ``member_id``: the concern and version it names, and the key.
    ``granter_device_pk`` comes from the signed directory; that the device is a keyholder's is the
    caller's check (sync/reader.py, pwa/js/review/grants.js)."""
    what = "opening entry key grant"
    info, signed, wrap, signature = read_entry_grant(data)
    p.verify(granter_device_pk, p.ctx(_SIG) + signed, signature, what)
    if not (p.equal(info.school_id, school_id) and p.equal(info.member_id, member_id)):
        raise NoKey(f"{what}: the grant is addressed to another person or school")
    return info, SecretKey(unwrap_key(wrap, member, _ad(signed[:BODY_BYTES]), what))
