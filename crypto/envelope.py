"""Envelope v1: one signed, encrypted event of one concern. docs/PROTOCOL.md section 6.

``seal`` runs on the writing device; ``verify`` is what the server does (parse and check the author
device's signature); ``open`` is what a reader does, in the order the spec fixes, releasing no
plaintext unless every step passes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import _primitives as p
from ._codec import Reader, Writer
from ._random import random_bytes
from .errors import BadSignature, DecryptionFailed, Malformed, NoKey, UnsupportedVersion
from .keys import BoxKeyPair, SecretKey, SigningKey
from .wrap import WRAP_BYTES, unwrap_key, wrap_key

__all__ = [
    "Recipient",
    "Header",
    "Parsed",
    "Opened",
    "seal",
    "parse",
    "verify",
    "open",
    "envelope_hash",
    "padded_size",
    "KIND_CONCERN_EVENT",
    "RECIPIENT_READER_KEY",
    "RECIPIENT_PERSON",
]

VERSION = 1
KIND_CONCERN_EVENT = 1
RECIPIENT_READER_KEY = 1
RECIPIENT_PERSON = 2
MAX_PUPILS = 32
MAX_RECIPIENTS = 32
INNER_HEADER_BYTES = 1 + 16 + 16 + 4
MIN_PADDED = 256
PAD_STEP = 65536
MAX_PADDED = 1048576
MAX_CONTENT = MAX_PADDED - INNER_HEADER_BYTES
ZERO_HASH = bytes(32)
# school, envelope, concern, author, counter, prev_hash, device time, entry key version, nonce, pupil count
_FIXED_HEADER = struct.Struct(">16s16s16s16sQ32sQI24sB")


@dataclass(frozen=True)
class Recipient:
    """Who the entry key is wrapped to: a reader key (id, version) or a person's identity key."""

    kind: int
    id: bytes
    version: int

    def __post_init__(self) -> None:
        if self.kind not in (RECIPIENT_READER_KEY, RECIPIENT_PERSON):
            raise ValueError(f"recipient kind must be 1 (reader key) or 2 (person), not {self.kind!r}")
        if len(self.id) != 16:
            raise ValueError("a recipient id is exactly 16 bytes")


@dataclass(frozen=True)
class Header:
    """The envelope's cleartext header: everything the server sees, all of it signed and bound."""

    kind: int
    school_id: bytes
    envelope_id: bytes
    concern_id: bytes
    author_device: bytes
    counter: int
    prev_hash: bytes
    device_time_ms: int
    entry_key_version: int
    nonce: bytes
    pupil_ids: tuple[bytes, ...]
    recipients: tuple[Recipient, ...]

    def encode(self) -> bytes:
        if not 0 <= len(self.pupil_ids) <= MAX_PUPILS:
            raise ValueError(f"an envelope names at most {MAX_PUPILS} pupils")
        if not 1 <= len(self.recipients) <= MAX_RECIPIENTS:
            raise ValueError(f"an envelope has 1 to {MAX_RECIPIENTS} recipients")
        if len({(r.kind, r.id, r.version) for r in self.recipients}) != len(self.recipients):
            raise ValueError("an envelope's recipients must be distinct")
        if self.entry_key_version < 1 or self.counter < 1:
            raise ValueError("entry key version and device counter start at 1")
        w = (
            Writer().u8(VERSION).u8(self.kind).id(self.school_id, "school id")
            .id(self.envelope_id, "envelope id").id(self.concern_id, "concern id")
            .id(self.author_device, "author device").u64(self.counter)
            .fixed(self.prev_hash, 32, "previous hash").u64(self.device_time_ms)
            .u32(self.entry_key_version).fixed(self.nonce, p.NONCE_BYTES, "nonce")
            .u8(len(self.pupil_ids))
        )
        for pupil in self.pupil_ids:
            w.id(pupil, "pupil id")
        w.u8(len(self.recipients))
        for r in self.recipients:
            w.u8(r.kind).id(r.id, "recipient id").u32(r.version)
        return w.getvalue()


@dataclass(frozen=True)
class Parsed:
    """An envelope split into its parts; ``header_bytes`` are exactly the bytes that were signed."""

    header: Header
    header_bytes: bytes
    commitment: bytes
    wraps: tuple[bytes, ...]
    ct: bytes
    signature: bytes

    @property
    def padded_size(self) -> int:
        return len(self.ct) - p.TAG_BYTES


@dataclass(frozen=True)
class Opened:
    header: Header
    content: bytes
    entry_key: SecretKey


def padded_size(content_length: int) -> int:
    """The padded plaintext size for ``content_length`` bytes of content (section 6.3)."""
    n = INNER_HEADER_BYTES + content_length
    if n <= PAD_STEP:
        size = MIN_PADDED
        while size < n:
            size *= 2
        return size
    return -(-n // PAD_STEP) * PAD_STEP


def _is_padded_size(size: int) -> bool:
    if MIN_PADDED <= size <= PAD_STEP:
        return size & (size - 1) == 0
    return PAD_STEP < size <= MAX_PADDED and size % PAD_STEP == 0


def _wrap_ad(header: Header, r: Recipient) -> bytes:
    return (
        Writer().raw(p.ctx("cairn/v1/envelope/wrap")).id(header.school_id).id(header.concern_id)
        .u32(header.entry_key_version).u8(r.kind).id(r.id).u32(r.version).getvalue()
    )


def _commitment(entry_key: bytes, header_bytes: bytes) -> bytes:
    return p.keyed_hash(entry_key, "cairn/v1/envelope/commit", header_bytes)


def _body_ad(header_bytes: bytes, commitment: bytes) -> bytes:
    return p.ctx("cairn/v1/envelope/body") + header_bytes + commitment


def _signed(header_bytes: bytes, commitment: bytes, wraps: Iterable[bytes], ct: bytes) -> bytes:
    return (
        p.ctx("cairn/v1/envelope/sig") + header_bytes + commitment + b"".join(wraps)
        + p.h("cairn/v1/envelope/ct", ct)
    )


def seal(
    *,
    kind: int,
    school_id: bytes,
    envelope_id: bytes,
    concern_id: bytes,
    author_device: SigningKey,
    author_device_id: bytes,
    counter: int,
    prev_hash: bytes,
    device_time_ms: int,
    entry_key: SecretKey,
    entry_key_version: int,
    pupil_ids: Sequence[bytes],
    recipients: Sequence[tuple[Recipient, bytes]],
    content: bytes,
) -> bytes:
    """Encrypt and sign one event. ``recipients`` pairs each Recipient with its X25519 public key,
    which the caller has taken from the newest signed directory."""
    if kind != KIND_CONCERN_EVENT:
        raise ValueError(f"envelope kind must be {KIND_CONCERN_EVENT}, not {kind!r}")
    if len(content) > MAX_CONTENT:
        raise ValueError(f"envelope content is at most {MAX_CONTENT} bytes, not {len(content)}")
    header = Header(
        kind, school_id, envelope_id, concern_id, author_device_id, counter, prev_hash,
        device_time_ms, entry_key_version, random_bytes(p.NONCE_BYTES), tuple(pupil_ids),
        tuple(r for r, _ in recipients),
    )
    header_bytes = header.encode()
    key = bytes(entry_key)
    commitment = _commitment(key, header_bytes)
    inner = (
        Writer().u8(VERSION).id(author_device_id).id(envelope_id).u32(len(content)).raw(content)
        .getvalue()
    )
    inner += bytes(padded_size(len(content)) - len(inner))
    ct = p.aead_encrypt(key, header.nonce, _body_ad(header_bytes, commitment), inner)
    wraps = [wrap_key(pk, key, _wrap_ad(header, r)) for r, pk in recipients]
    signature = author_device.sign(_signed(header_bytes, commitment, wraps, ct))
    return (
        Writer().raw(header_bytes).raw(commitment).raw(b"".join(wraps)).u32(len(ct)).raw(ct)
        .raw(signature).getvalue()
    )


def parse(data: bytes) -> Parsed:
    """Split an envelope into its parts; any deviation from the layout raises Malformed."""
    what = "parsing envelope"
    r = Reader(data, what)
    version = r.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    kind = r.u8("kind")
    if kind != KIND_CONCERN_EVENT:
        raise UnsupportedVersion(f"{what}: unknown kind {kind}")
    (school_id, envelope_id, concern_id, author, counter, prev_hash, device_time, entry_key_version, nonce,
     pupil_count) = r.fields(_FIXED_HEADER, "header")
    if pupil_count > MAX_PUPILS:
        raise Malformed(f"{what}: {pupil_count} pupils, at most {MAX_PUPILS}")
    pupils = tuple(r.id("pupil id") for _ in range(pupil_count))
    recipient_count = r.u8("recipient count")
    if not 1 <= recipient_count <= MAX_RECIPIENTS:
        raise Malformed(f"{what}: {recipient_count} recipients, 1 to {MAX_RECIPIENTS} allowed")
    recipients = []
    for _ in range(recipient_count):
        rkind, rid, rversion = r.u8("recipient kind"), r.id("recipient id"), r.u32("recipient version")
        if rkind not in (RECIPIENT_READER_KEY, RECIPIENT_PERSON):
            raise Malformed(f"{what}: unknown recipient kind {rkind}")
        recipients.append(Recipient(rkind, rid, rversion))
    if len({(x.kind, x.id, x.version) for x in recipients}) != len(recipients):
        raise Malformed(f"{what}: recipients repeat")
    if counter < 1 or entry_key_version < 1:
        raise Malformed(f"{what}: counter and entry key version start at 1")
    header_bytes = r.slice(0, r.offset)
    commitment = r.take(32, "commitment")
    wraps = tuple(r.take(WRAP_BYTES, "wrap") for _ in recipients)
    ct_len = r.u32("ciphertext length")
    if not _is_padded_size(ct_len - p.TAG_BYTES):
        raise Malformed(f"{what}: ciphertext length {ct_len} is not 16 plus a padded size")
    ct = r.take(ct_len, "ciphertext")
    signature = r.take(p.SIGNATURE_BYTES, "signature")
    r.end()
    header = Header(
        kind, school_id, envelope_id, concern_id, author, counter, prev_hash, device_time,
        entry_key_version, nonce, pupils, tuple(recipients),
    )
    return Parsed(header, header_bytes, commitment, wraps, ct, signature)


def verify(data: bytes, author_device_pk: bytes) -> Parsed:
    """Steps 1 and 2 of opening (the server's check): parse, then verify the author's signature."""
    parsed = parse(data)
    p.verify(
        author_device_pk,
        _signed(parsed.header_bytes, parsed.commitment, parsed.wraps, parsed.ct),
        parsed.signature,
        "verifying envelope",
    )
    return parsed


def open(  # noqa: A001 - mirrors seal/open in the JavaScript twin
    data: bytes,
    author_device_pk: bytes,
    reader_keys: Mapping[tuple[int, bytes, int], BoxKeyPair],
    entry_keys: Mapping[tuple[bytes, int], SecretKey] | None = None,
) -> Opened:
    """Open an envelope with one of ``reader_keys`` (keyed by recipient kind, id and version), or else
    with an entry key from an entry key grant (section 5.1), keyed by concern id and entry key version."""
    what = "opening envelope"
    parsed = verify(data, author_device_pk)
    header = parsed.header
    found = next(
        ((i, r, reader_keys[(r.kind, r.id, r.version)]) for i, r in enumerate(header.recipients)
         if (r.kind, r.id, r.version) in reader_keys),
        None,
    )
    granted = (entry_keys or {}).get((header.concern_id, header.entry_key_version))
    if found is not None:
        index, r, reader = found
        key = unwrap_key(parsed.wraps[index], reader, _wrap_ad(header, r), what)
    elif granted is not None:
        key = bytes(granted)  # not a wrap of this envelope: the commitment below proves it is its key
    else:
        raise NoKey(f"{what}: none of this reader's keys is a recipient")
    if not p.equal(_commitment(key, parsed.header_bytes), parsed.commitment):
        raise DecryptionFailed(f"{what}: key commitment does not match")
    inner = p.aead_decrypt(key, header.nonce, _body_ad(parsed.header_bytes, parsed.commitment), parsed.ct, what)
    ir = Reader(inner, what)
    if ir.u8("inner version") != VERSION:
        raise UnsupportedVersion(f"{what}: unknown plaintext version")
    author, envelope_id, length = ir.id("inner author"), ir.id("inner envelope id"), ir.u32("content length")
    if length > len(inner) - INNER_HEADER_BYTES or padded_size(length) != len(inner):
        raise Malformed(f"{what}: content length does not match the padded size")
    content = ir.take(length, "content")
    if any(ir.take(len(inner) - ir.offset, "padding")):
        raise Malformed(f"{what}: padding is not zero")
    if not (p.equal(author, header.author_device) and p.equal(envelope_id, header.envelope_id)):
        raise BadSignature(f"{what}: the signer is not the author named inside")
    return Opened(header, content, SecretKey(key))


def envelope_hash(data: bytes) -> bytes:
    """The hash a device's next envelope names as ``prev_hash`` (section 6.5)."""
    return p.h("cairn/v1/envelope/hash", data)
