"""The roster: what staff need to pick a pupil (name, class), sealed under a roster key.

docs/PROTOCOL.md section 11. A roster key is a reader key (X25519, versioned, granted like any other)
whose private half also yields, by domain-separated KDF, the symmetric key that seals roster entries
and the key of the keyed hash that turns a UPN into the pseudonymous pupil id the server knows. So a
roster key reaches staff through the ordinary grant, checked against the listed public key, and the
server, which holds no roster key, never learns a name or a UPN.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from . import _primitives as p
from ._codec import Reader, Writer
from ._random import random_bytes
from .errors import Malformed, NoKey, UnsupportedVersion
from .keys import BoxKeyPair, SigningKey

__all__ = [
    "RosterEntry",
    "pupil_id_for",
    "seal_roster_entry",
    "open_roster_entry",
    "verify_roster_entry",
    "roster_entry_author",
    "ROSTER_PAD",
]

VERSION = 1
ROSTER_PAD = 256
MAX_CONTENT = 16 * 1024
HEADER_BYTES = 1 + 16 + 16 + 16 + 4 + 16 + 24


@dataclass(frozen=True)
class RosterEntry:
    school_id: bytes
    pupil_id: bytes
    key_id: bytes
    key_version: int
    author_device: bytes
    content: bytes


def _entry_key(roster: BoxKeyPair) -> bytes:
    return p.keyed_hash(bytes(roster), "cairn/v1/roster/key")


def pupil_id_for(roster: BoxKeyPair, upn: str) -> bytes:
    """The pseudonymous pupil id: a keyed hash of the UPN (trimmed, upper case), 16 bytes. The same
    UPN gives the same id at every re-import, and the server cannot reverse it."""
    cleaned = unicodedata.normalize("NFKC", upn).strip().upper()
    if not cleaned or len(cleaned) > 64 or not cleaned.isascii():
        raise ValueError("a UPN is 1 to 64 ASCII characters")
    upn_key = p.keyed_hash(bytes(roster), "cairn/v1/roster/upn-key")
    return p.keyed_hash(upn_key, "cairn/v1/roster/upn", cleaned.encode("ascii"))[:16]


def _padded(n: int) -> int:
    return max(ROSTER_PAD, -(-n // ROSTER_PAD) * ROSTER_PAD)


def seal_roster_entry(roster: BoxKeyPair, entry: RosterEntry, author: SigningKey) -> bytes:
    """Seal one pupil's roster content (e.g. UTF-8 JSON of name and class) and sign it."""
    if len(entry.content) > MAX_CONTENT:
        raise ValueError(f"a roster entry holds at most {MAX_CONTENT} bytes")
    header = (
        Writer()
        .u8(VERSION)
        .id(entry.school_id, "school id")
        .id(entry.pupil_id, "pupil id")
        .id(entry.key_id, "roster key id")
        .u32(entry.key_version)
        .id(entry.author_device, "author device")
        .raw(random_bytes(p.NONCE_BYTES))
        .getvalue()
    )
    plain = Writer().u32(len(entry.content)).raw(entry.content).getvalue()
    plain += bytes(_padded(len(plain)) - len(plain))
    ct = p.aead_encrypt(_entry_key(roster), header[-p.NONCE_BYTES :], p.ctx("cairn/v1/roster/entry") + header, plain)
    body = header + Writer().u32(len(ct)).raw(ct).getvalue()
    return body + author.sign(p.ctx("cairn/v1/roster/sig") + body)


def roster_entry_author(data: bytes) -> bytes:
    """The device an entry names as its author (unverified: use it only to look up the key to verify with)."""
    r = Reader(data, "reading roster entry")
    if r.u8("version") != VERSION:
        raise UnsupportedVersion("reading roster entry: unknown version")
    r.take(16 * 3 + 4, "header")
    return r.id("author device")


def verify_roster_entry(data: bytes, author_device_pk: bytes) -> RosterEntry:
    """The server's check: parse and verify the author device's signature. The content is not opened
    (the returned entry's ``content`` is empty)."""
    return _parse_and_verify(data, author_device_pk, "verifying roster entry")[0]


def open_roster_entry(
    data: bytes, keys: Mapping[tuple[bytes, int], BoxKeyPair], school_id: bytes, author_device_pk: bytes
) -> RosterEntry:
    """Verify the author device's signature, then open with the roster key version the entry names."""
    what = "opening roster entry"
    entry, body, nonce, ct = _parse_and_verify(data, author_device_pk, what)
    if not p.equal(entry.school_id, school_id):
        raise NoKey(f"{what}: the entry belongs to another school")
    roster = keys.get((entry.key_id, entry.key_version))
    if roster is None:
        raise NoKey(f"{what}: this reader holds no such roster key version")
    plain = p.aead_decrypt(_entry_key(roster), nonce, p.ctx("cairn/v1/roster/entry") + body[:HEADER_BYTES], ct, what)
    inner = Reader(plain, what)
    length = inner.u32("content length")
    if length > len(plain) - 4 or _padded(4 + length) != len(plain):
        raise Malformed(f"{what}: content length does not match the padded size")
    content = inner.take(length, "content")
    if any(inner.take(len(plain) - inner.offset, "padding")):
        raise Malformed(f"{what}: padding is not zero")
    return RosterEntry(entry.school_id, entry.pupil_id, entry.key_id, entry.key_version, entry.author_device, content)


def _parse_and_verify(data: bytes, author_device_pk: bytes, what: str) -> tuple[RosterEntry, bytes, bytes, bytes]:
    r = Reader(data, what)
    version = r.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    school, pupil, key_id = r.id("school id"), r.id("pupil id"), r.id("roster key id")
    key_version, author, nonce = r.u32("roster key version"), r.id("author device"), r.take(p.NONCE_BYTES, "nonce")
    ct_len = r.u32("ciphertext length")
    if ct_len < ROSTER_PAD + p.TAG_BYTES or (ct_len - p.TAG_BYTES) % ROSTER_PAD:
        raise Malformed(f"{what}: ciphertext length {ct_len} is not 16 plus a multiple of {ROSTER_PAD}")
    ct = r.take(ct_len, "ciphertext")
    body = r.slice(0, r.offset)
    signature = r.take(p.SIGNATURE_BYTES, "signature")
    r.end()
    p.verify(author_device_pk, p.ctx("cairn/v1/roster/sig") + body, signature, what)
    return RosterEntry(school, pupil, key_id, key_version, author, b""), body, nonce, ct
