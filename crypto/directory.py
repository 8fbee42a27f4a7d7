"""The signed directory: which public keys belong to whom in one school, signed with the school's key.

docs/PROTOCOL.md section 13. A directory version lists the school's accounts (roles, identity keys, left
flag), devices (key, revoked flag), reader key versions (purpose, public key, current flag), each pupil's
reader key and the classes. It is signed with the **school signing key**, an Ed25519 key derived by KDF
from the private half of a dedicated reader key (purpose ``signing:directory``), so it reaches the
safeguarding group through ordinary grants, checked against the listed public key, as roster keys do.

Each version names the previous version's hash, the key that signs it and the key that signs the next
one: a device that pinned the school's key follows a rotation only through a version signed by the old
key that announces the new one. Canonical bytes are defined here once; every list is sorted by id and
a decoder refuses any other order, so one directory has exactly one encoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _primitives as p
from ._codec import Reader, Writer
from .errors import BadSignature, Malformed, NoKey, Rollback, UnsupportedVersion
from .keys import BoxKeyPair, SigningKey

__all__ = [
    "ROLES",
    "SIGNING_PURPOSE",
    "DirAccount",
    "DirDevice",
    "DirKey",
    "DirPupil",
    "DirClass",
    "DirectoryContent",
    "SignedDirectory",
    "encode_content",
    "sign_directory",
    "read_directory",
    "verify_directory",
    "directory_hash",
    "directory_signing_key",
    "fingerprint",
]

VERSION = 1
ROLES = ("contributor", "teacher", "sen", "safeguarding", "admin")  # bit i of the roles byte is ROLES[i]
SIGNING_PURPOSE = "signing:directory"
MAX_TEXT = 1024
MAX_ITEMS = 1_000_000
HEADER_BYTES = 1 + 16 + 8 + 32 + 8 + 32 + 32
_SIG_CTX = "cairn/v1/directory/sig"
_FP_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class DirAccount:
    id: bytes
    roles: tuple[str, ...]
    identity_x25519_pk: bytes
    identity_ed25519_pk: bytes
    left: bool
    login: str
    display_name: str


@dataclass(frozen=True)
class DirDevice:
    id: bytes
    user_id: bytes
    public_key: bytes
    revoked: bool


@dataclass(frozen=True)
class DirKey:
    id: bytes
    version: int
    purpose: str
    public_key: bytes
    current: bool


@dataclass(frozen=True)
class DirPupil:
    id: bytes
    reader_key_id: bytes


@dataclass(frozen=True)
class DirClass:
    id: bytes
    label: str
    pupils: tuple[bytes, ...]
    teachers: tuple[bytes, ...]


@dataclass(frozen=True)
class DirectoryContent:
    accounts: tuple[DirAccount, ...] = ()
    devices: tuple[DirDevice, ...] = ()
    reader_keys: tuple[DirKey, ...] = ()
    pupils: tuple[DirPupil, ...] = ()
    classes: tuple[DirClass, ...] = ()


@dataclass(frozen=True)
class SignedDirectory:
    school_id: bytes
    version: int
    prev_hash: bytes
    created_ms: int
    signing_pk: bytes
    next_signing_pk: bytes
    content: DirectoryContent
    raw: bytes = field(repr=False)

    @property
    def hash(self) -> bytes:
        return directory_hash(self.raw)


def directory_signing_key(reader: BoxKeyPair) -> SigningKey:
    """The school signing key, derived from the private half of a ``signing:directory`` reader key."""
    return SigningKey(p.keyed_hash(bytes(reader), "cairn/v1/directory/signing-key"))


def directory_hash(data: bytes) -> bytes:
    """The hash a later version names as its previous: H over the whole signed version."""
    return p.h("cairn/v1/directory/hash", data)


def fingerprint(school_id: bytes, signing_pk: bytes) -> str:
    """What people compare: 120 bits of a hash of school and key, 24 characters in six groups of four."""
    data = Writer().id(school_id, "school id").fixed(signing_pk, 32, "key").getvalue()
    digest = p.h("cairn/v1/directory/fingerprint", data)
    value = int.from_bytes(digest[:15], "big")
    chars = "".join(_FP_ALPHABET[(value >> (5 * (23 - i))) & 31] for i in range(24))
    return " ".join(chars[i : i + 4] for i in range(0, 24, 4))


# --- canonical bytes ------------------------------------------------------------------------------


def _text(w: Writer, value: str, what: str) -> None:
    raw = value.encode("utf-8")
    if not raw or len(raw) > MAX_TEXT:
        raise ValueError(f"{what} must be 1 to {MAX_TEXT} bytes of UTF-8")
    w.u32(len(raw)).raw(raw)


def _flag(value: bool) -> int:
    return 1 if value else 0


def _ascending(keys: list, what: str) -> None:
    if any(a >= b for a, b in zip(keys, keys[1:], strict=False)):
        raise ValueError(f"{what} must be sorted by id, without duplicates")


def encode_content(content: DirectoryContent) -> bytes:
    """The content's canonical bytes. Lists are sorted here, so callers may pass them in any order."""
    c = _sorted(content)
    w = Writer().u32(len(c.accounts))
    for a in c.accounts:
        unknown = set(a.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}")
        bits = sum(1 << ROLES.index(r) for r in set(a.roles))
        w.id(a.id, "account id").u8(bits).fixed(a.identity_x25519_pk, 32, "identity X25519 key")
        w.fixed(a.identity_ed25519_pk, 32, "identity Ed25519 key").u8(_flag(a.left))
        _text(w, a.login, "a login")
        _text(w, a.display_name, "a display name")
    w.u32(len(c.devices))
    for d in c.devices:
        w.id(d.id, "device id").id(d.user_id, "device user").fixed(d.public_key, 32, "device key").u8(_flag(d.revoked))
    w.u32(len(c.reader_keys))
    for k in c.reader_keys:
        if not 1 <= k.version <= 0xFFFFFFFF:
            raise ValueError("a reader key version is 1 to 2^32 - 1")
        w.id(k.id, "reader key id").u32(k.version)
        _text(w, k.purpose, "a purpose")
        w.fixed(k.public_key, 32, "reader key").u8(_flag(k.current))
    w.u32(len(c.pupils))
    for x in c.pupils:
        w.id(x.id, "pupil id").id(x.reader_key_id, "pupil reader key id")
    w.u32(len(c.classes))
    for k in c.classes:
        w.id(k.id, "class id")
        _text(w, k.label, "a class label")
        for members, what in ((k.pupils, "class pupil"), (k.teachers, "class teacher")):
            w.u32(len(members))
            for m in members:
                w.id(m, what)
    return w.getvalue()


def _sorted(c: DirectoryContent) -> DirectoryContent:
    out = DirectoryContent(
        tuple(sorted(c.accounts, key=lambda a: a.id)),
        tuple(sorted(c.devices, key=lambda d: d.id)),
        tuple(sorted(c.reader_keys, key=lambda k: (k.id, k.version))),
        tuple(sorted(c.pupils, key=lambda x: x.id)),
        tuple(
            DirClass(k.id, k.label, tuple(sorted(k.pupils)), tuple(sorted(k.teachers)))
            for k in sorted(c.classes, key=lambda k: k.id)
        ),
    )
    _ascending([a.id for a in out.accounts], "accounts")
    _ascending([d.id for d in out.devices], "devices")
    _ascending([(k.id, k.version) for k in out.reader_keys], "reader keys")
    _ascending([x.id for x in out.pupils], "pupils")
    _ascending([k.id for k in out.classes], "classes")
    for k in out.classes:
        _ascending(list(k.pupils), "a class's pupils")
        _ascending(list(k.teachers), "a class's teachers")
    return out


def sign_directory(
    signing: SigningKey,
    *,
    school_id: bytes,
    version: int,
    prev_hash: bytes,
    created_ms: int,
    next_signing_pk: bytes,
    content: DirectoryContent,
) -> bytes:
    """Sign one directory version. ``next_signing_pk`` is ``signing.public`` unless this version
    announces a rotation to a new school signing key."""
    if version < 1:
        raise ValueError("directory versions start at 1")
    if (version == 1) != (prev_hash == bytes(32)):
        raise ValueError("version 1, and only version 1, has an all-zero previous hash")
    body = (
        Writer()
        .u8(VERSION)
        .id(school_id, "school id")
        .u64(version)
        .fixed(prev_hash, 32, "previous hash")
        .u64(created_ms)
        .fixed(signing.public, 32, "signing key")
        .fixed(next_signing_pk, 32, "next signing key")
        .raw(encode_content(content))
        .getvalue()
    )
    return body + signing.sign(p.ctx(_SIG_CTX) + body)


def _read_text(r: Reader, what: str, field_name: str) -> str:
    n = r.u32(f"{field_name} length")
    if not 1 <= n <= MAX_TEXT:
        raise Malformed(f"{what}: {field_name} is {n} bytes; 1 to {MAX_TEXT} are allowed")
    try:
        return r.take(n, field_name).decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"{what}: {field_name} is not UTF-8") from None


def _read_flag(r: Reader, what: str, field_name: str) -> bool:
    value = r.u8(field_name)
    if value > 1:
        raise Malformed(f"{what}: {field_name} is neither 0 nor 1")
    return value == 1


def _count(r: Reader, what: str, field_name: str, each: int) -> int:
    n = r.u32(f"{field_name} count")
    if n > MAX_ITEMS or n * each > len(r._data) - r.offset:  # noqa: SLF001 - a cheap bound before looping
        raise Malformed(f"{what}: {field_name} count {n} is more than the input holds")
    return n


def _check_order(keys: list, what: str, field_name: str) -> None:
    if any(a >= b for a, b in zip(keys, keys[1:], strict=False)):
        raise Malformed(f"{what}: {field_name} are not sorted by id, or hold a duplicate")


def _read_content(r: Reader, what: str) -> DirectoryContent:
    accounts = []
    for _ in range(_count(r, what, "accounts", 16 + 1 + 64 + 1 + 8)):
        account_id, bits = r.id("account id"), r.u8("roles")
        if bits >> len(ROLES):
            raise Malformed(f"{what}: an account has unknown role bits")
        x, ed = r.take(32, "identity X25519 key"), r.take(32, "identity Ed25519 key")
        left = _read_flag(r, what, "left flag")
        login, name = _read_text(r, what, "login"), _read_text(r, what, "display name")
        roles = tuple(role for i, role in enumerate(ROLES) if bits >> i & 1)
        accounts.append(DirAccount(account_id, roles, x, ed, left, login, name))
    _check_order([a.id for a in accounts], what, "accounts")
    devices = []
    for _ in range(_count(r, what, "devices", 16 + 16 + 32 + 1)):
        device_id, user_id, pk = r.id("device id"), r.id("device user"), r.take(32, "device key")
        devices.append(DirDevice(device_id, user_id, pk, _read_flag(r, what, "revoked flag")))
    _check_order([d.id for d in devices], what, "devices")
    keys = []
    for _ in range(_count(r, what, "reader keys", 16 + 4 + 5 + 32 + 1)):
        key_id, version = r.id("reader key id"), r.u32("reader key version")
        if version == 0:
            raise Malformed(f"{what}: reader key versions start at 1")
        purpose, pk = _read_text(r, what, "purpose"), r.take(32, "reader key")
        keys.append(DirKey(key_id, version, purpose, pk, _read_flag(r, what, "current flag")))
    _check_order([(k.id, k.version) for k in keys], what, "reader keys")
    pupils = [DirPupil(r.id("pupil id"), r.id("pupil reader key id")) for _ in range(_count(r, what, "pupils", 32))]
    _check_order([x.id for x in pupils], what, "pupils")
    classes = []
    for _ in range(_count(r, what, "classes", 16 + 5 + 8)):
        class_id, label = r.id("class id"), _read_text(r, what, "class label")
        class_pupils = tuple(r.id("class pupil") for _ in range(_count(r, what, "class pupils", 16)))
        class_teachers = tuple(r.id("class teacher") for _ in range(_count(r, what, "class teachers", 16)))
        _check_order(list(class_pupils), what, "a class's pupils")
        _check_order(list(class_teachers), what, "a class's teachers")
        classes.append(DirClass(class_id, label, class_pupils, class_teachers))
    _check_order([k.id for k in classes], what, "classes")
    return DirectoryContent(tuple(accounts), tuple(devices), tuple(keys), tuple(pupils), tuple(classes))


def read_directory(data: bytes, what: str = "reading directory") -> SignedDirectory:
    """Parse a signed version and check its signature against the key it names (the server's check;
    a client must use ``verify_directory``, which also checks that key against its pin)."""
    r = Reader(data, what)
    version = r.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    school_id, dir_version = r.id("school id"), r.u64("directory version")
    prev_hash, created_ms = r.take(32, "previous hash"), r.u64("created")
    signing_pk, next_pk = r.take(32, "signing key"), r.take(32, "next signing key")
    if dir_version == 0:
        raise Malformed(f"{what}: directory versions start at 1")
    if (dir_version == 1) != (prev_hash == bytes(32)):
        raise Malformed(f"{what}: only version 1 has an all-zero previous hash")
    content = _read_content(r, what)
    body_end = r.offset
    signature = r.take(p.SIGNATURE_BYTES, "signature")
    r.end()
    p.verify(signing_pk, p.ctx(_SIG_CTX) + r.slice(0, body_end), signature, what)
    return SignedDirectory(school_id, dir_version, prev_hash, created_ms, signing_pk, next_pk, content, bytes(data))


def verify_directory(
    data: bytes, school_id: bytes, pinned_pk: bytes | None, previous: SignedDirectory | None = None
) -> SignedDirectory:
    """A client's check of a served version: it parses, is this school's, is signed by the pinned key
    (``None`` only at first sign-in: trust on first use), and moves forward from ``previous`` (the newest
    version this device accepted), chaining to it by hash when it is the very next version."""
    what = "verifying directory"
    d = read_directory(data, what)
    if not p.equal(d.school_id, school_id):
        raise NoKey(f"{what}: the directory belongs to another school")
    if pinned_pk is not None and not p.equal(d.signing_pk, pinned_pk):
        raise BadSignature(f"{what}: signed by a key this device has not pinned")
    if previous is not None:
        if d.version <= previous.version:
            raise Rollback(f"{what}: version {d.version} is not newer than version {previous.version}")
        if d.version == previous.version + 1 and not p.equal(d.prev_hash, previous.hash):
            raise Rollback(f"{what}: version {d.version} does not follow the version this device holds")
    return d
