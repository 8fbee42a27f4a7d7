"""Approvals: a safeguarding keyholder's signed consent to the widenings of one directory version.

docs/PROTOCOL.md section 13.3. Anything that lets someone read more — a new account, a role, a teacher for
a class, a pupil in a class, a pupil's key, a new reader key version, new identity keys, a new school
signing key — is an **item**. A directory version that adds an item must carry an approval naming it,
made against the version just before it and signed by a device of an account that version lists as a
safeguarding member. So the school signing key alone (which every keyholder device holds, and a hostile
server would love to borrow) cannot widen who reads: a keyholder's own device, where the keyholder saw
the list, must have signed it.

Items are tuples, compared and sorted by their canonical bytes:

    ("account", user_id, identity_x25519_pk, identity_ed25519_pk)
    ("role", user_id, role)
    ("teaches", class_id, user_id)
    ("in_class", class_id, pupil_id)
    ("pupil", pupil_id, reader_key_id)
    ("key", reader_key_id, version, purpose, public_key)
    ("signing", next_signing_pk)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import _primitives as p
from ._codec import Reader, Writer
from .errors import Malformed, NoKey, UnsupportedVersion
from .keys import SigningKey

__all__ = [
    "ITEM_KINDS",
    "ROLES",
    "Item",
    "Approval",
    "encode_item",
    "sign_approval",
    "read_approval",
    "verify_approval",
    "item_json",
    "item_from_json",
]

VERSION = 1
ROLES = ("contributor", "teacher", "sen", "safeguarding", "admin")  # the directory's role bits, in order
ITEM_KINDS = {"account": 1, "role": 2, "teaches": 3, "in_class": 4, "pupil": 5, "key": 6, "signing": 7}
_KIND_NAMES = {v: k for k, v in ITEM_KINDS.items()}
MAX_ITEMS = 100_000
MAX_TEXT = 1024
_SIG_CTX = "cairn/v1/approval/sig"

Item = tuple  # one of the shapes in the module docstring


@dataclass(frozen=True)
class Approval:
    school_id: bytes
    approval_id: bytes
    base_version: int  # the directory version it was made against: the one before the version that carries it
    base_hash: bytes
    approver_user: bytes
    approver_device: bytes
    created_ms: int
    items: tuple[Item, ...]  # sorted by encoded bytes
    raw: bytes = field(default=b"", repr=False)


def encode_item(item: Item) -> bytes:
    """An item's canonical bytes: its kind byte, then its fields (docs/PROTOCOL.md 13.3)."""
    kind = item[0]
    if kind not in ITEM_KINDS:
        raise ValueError(f"unknown approval item kind {kind!r}")
    w = Writer().u8(ITEM_KINDS[kind])
    if kind == "account":
        w.id(item[1], "user id").fixed(item[2], 32, "identity X25519 key").fixed(item[3], 32, "identity Ed25519 key")
    elif kind == "role":
        if item[2] not in ROLES:
            raise ValueError(f"unknown role {item[2]!r}")
        w.id(item[1], "user id").u8(ROLES.index(item[2]))
    elif kind in ("teaches", "in_class", "pupil"):
        w.id(item[1], "first id").id(item[2], "second id")
    elif kind == "key":
        if not 1 <= item[2] <= 0xFFFFFFFF:
            raise ValueError("a reader key version is 1 to 2^32 - 1")
        purpose = item[3].encode("utf-8")
        if not 1 <= len(purpose) <= MAX_TEXT:
            raise ValueError(f"a purpose is 1 to {MAX_TEXT} bytes of UTF-8")
        w.id(item[1], "reader key id").u32(item[2]).u32(len(purpose)).raw(purpose).fixed(item[4], 32, "reader key")
    else:  # signing
        w.fixed(item[1], 32, "next signing key")
    return w.getvalue()


def _read_item(r: Reader, what: str) -> Item:
    code = r.u8("item kind")
    kind = _KIND_NAMES.get(code)
    if kind is None:
        raise Malformed(f"{what}: unknown item kind {code}")
    if kind == "account":
        return (kind, r.id("user id"), r.take(32, "identity X25519 key"), r.take(32, "identity Ed25519 key"))
    if kind == "role":
        user, bit = r.id("user id"), r.u8("role")
        if bit >= len(ROLES):
            raise Malformed(f"{what}: unknown role {bit}")
        return (kind, user, ROLES[bit])
    if kind in ("teaches", "in_class", "pupil"):
        return (kind, r.id("first id"), r.id("second id"))
    if kind == "key":
        key_id, version, n = r.id("reader key id"), r.u32("reader key version"), r.u32("purpose length")
        if version == 0:
            raise Malformed(f"{what}: reader key versions start at 1")
        if not 1 <= n <= MAX_TEXT:
            raise Malformed(f"{what}: a purpose is 1 to {MAX_TEXT} bytes")
        try:
            purpose = r.take(n, "purpose").decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(f"{what}: a purpose is not UTF-8") from None
        return (kind, key_id, version, purpose, r.take(32, "reader key"))
    return (kind, r.take(32, "next signing key"))


def sign_approval(
    device_key: SigningKey,
    *,
    school_id: bytes,
    approval_id: bytes,
    base_version: int,
    base_hash: bytes,
    approver_user: bytes,
    approver_device: bytes,
    created_ms: int,
    items: Iterable[Item],
) -> bytes:
    """Sign an approval of ``items`` with the approving device's key. Items are sorted here."""
    encoded = sorted({encode_item(i) for i in items})
    if not 1 <= len(encoded) <= MAX_ITEMS:
        raise ValueError(f"an approval names 1 to {MAX_ITEMS} items")
    body = (
        Writer().u8(VERSION).id(school_id, "school id").id(approval_id, "approval id").u64(base_version)
        .fixed(base_hash, 32, "base hash").id(approver_user, "approver").id(approver_device, "approver device")
        .u64(created_ms).u32(len(encoded)).raw(b"".join(encoded)).getvalue()
    )
    return body + device_key.sign(p.ctx(_SIG_CTX) + body)


def read_approval(data: bytes, what: str = "reading approval") -> tuple[Approval, bytes, bytes]:
    """Parse an approval: (approval, the signed bytes, the signature). Checks the form, not the signature."""
    r = Reader(data, what)
    version = r.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    school_id, approval_id, base_version = r.id("school id"), r.id("approval id"), r.u64("base version")
    base_hash, user, device = r.take(32, "base hash"), r.id("approver"), r.id("approver device")
    created_ms, count = r.u64("created"), r.u32("item count")
    if not 1 <= count <= MAX_ITEMS:
        raise Malformed(f"{what}: {count} items; 1 to {MAX_ITEMS} are allowed")
    items, encoded = [], []
    for _ in range(count):
        start = r.offset
        items.append(_read_item(r, what))
        encoded.append(r.slice(start, r.offset))
    if any(a >= b for a, b in zip(encoded, encoded[1:], strict=False)):
        raise Malformed(f"{what}: items are not sorted by their bytes, or repeat")
    body_end = r.offset
    signature = r.take(p.SIGNATURE_BYTES, "signature")
    r.end()
    approval = Approval(school_id, approval_id, base_version, base_hash, user, device, created_ms, tuple(items),
                        bytes(data))
    return approval, r.slice(0, body_end), signature


def verify_approval(data: bytes, school_id: bytes, device_pk: bytes) -> Approval:
    """Parse, check the school and the approving device's signature (``device_pk`` from the directory the
    approval was made against)."""
    what = "verifying approval"
    approval, body, signature = read_approval(data, what)
    if not p.equal(approval.school_id, school_id):
        raise NoKey(f"{what}: the approval belongs to another school")
    p.verify(device_pk, p.ctx(_SIG_CTX) + body, signature, what)
    return approval


def item_json(item: Item) -> dict:
    """An item as JSON fields (byte strings left as bytes; the caller encodes them)."""
    kind = item[0]
    if kind == "account":
        return {"kind": kind, "user_id": item[1], "identity_x25519_pk": item[2], "identity_ed25519_pk": item[3]}
    if kind == "role":
        return {"kind": kind, "user_id": item[1], "role": item[2]}
    if kind == "teaches":
        return {"kind": kind, "class_id": item[1], "user_id": item[2]}
    if kind == "in_class":
        return {"kind": kind, "class_id": item[1], "pupil_id": item[2]}
    if kind == "pupil":
        return {"kind": kind, "pupil_id": item[1], "reader_key_id": item[2]}
    if kind == "key":
        return {"kind": kind, "reader_key_id": item[1], "version": item[2], "purpose": item[3], "public_key": item[4]}
    return {"kind": kind, "next_signing_pk": item[1]}


_FIELDS = {
    "account": ("user_id", "identity_x25519_pk", "identity_ed25519_pk"),
    "role": ("user_id", "role"),
    "teaches": ("class_id", "user_id"),
    "in_class": ("class_id", "pupil_id"),
    "pupil": ("pupil_id", "reader_key_id"),
    "key": ("reader_key_id", "version", "purpose", "public_key"),
    "signing": ("next_signing_pk",),
}


def item_from_json(data: dict, decode) -> Item:  # type: ignore[no-untyped-def]
    """The inverse of ``item_json``; ``decode(value, name)`` turns a byte field's JSON form into bytes.
    Raises ValueError for an unknown kind or a missing field."""
    kind = data.get("kind")
    if kind not in _FIELDS:
        raise ValueError(f"unknown item kind {kind!r}")
    values = []
    for name in _FIELDS[kind]:
        if name not in data:
            raise ValueError(f"an item of kind {kind} needs {name}")
        value = data[name]
        values.append(value if name in ("role", "version", "purpose") else decode(value, name))
    item = (kind, *values)
    encode_item(item)  # refuses wrong lengths and values
    return item
