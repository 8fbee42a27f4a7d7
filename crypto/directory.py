"""The signed directory: which public keys belong to whom in one school, and who approved each widening.

docs/PROTOCOL.md section 13. A directory version lists the school's accounts (roles, identity keys and the
binding between them, left flag), devices (key, certificate, revoked flag), reader key versions (purpose,
public key, current flag), each pupil's reader key, the classes, and the **approvals** (crypto/approval.py)
that cover what this version adds to the one before it. It is signed with the **school signing key**, an
Ed25519 key derived by KDF from the private half of a dedicated reader key (purpose ``signing:directory``),
so it reaches the safeguarding group through ordinary grants, checked against the listed public key.

Three layers of checks, each a pure function:
- ``read_directory``: the bytes parse, in their one canonical encoding, hold together (every device's
  account is listed, each group purpose has one key id, versions count up from 1, ...) and carry the
  signature of the key they name (the server's check of a stored version);
- ``check_content``: every identity binding and device certificate verifies, so nobody holding only the
  signing key can pair an account with keys of their own;
- ``check_transition``: from the version a device holds to the next, nothing listed vanishes or changes,
  pinned key ids stay, and every widening is covered by an approval signed by a keyholder's device.
``verify_directory`` (a client's check of a served version) runs all three against the pinned key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from . import _primitives as p
from ._codec import Reader, Writer
from .approval import ROLES, Approval, Item, read_approval, verify_approval
from .device import DeviceCert, make_device_cert_bytes, verify_device_cert
from .errors import BadSignature, CryptoError, Malformed, NoKey, Rollback, Unapproved, UnsupportedVersion
from .identity import verify_identity_binding
from .keys import BoxKeyPair, SigningKey

__all__ = [
    "ROLES",
    "SIGNING_PURPOSE",
    "PUPIL_PURPOSE",
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
    "check_content",
    "check_unchanged",
    "check_transition",
    "verify_directory",
    "widenings",
    "directory_hash",
    "directory_signing_key",
    "fingerprint",
]

VERSION = 2
SIGNING_PURPOSE = "signing:directory"
PUPIL_PURPOSE = "pupil"
MAX_TEXT = 1024
MAX_ITEMS = 1_000_000
MAX_APPROVAL_BYTES = 8 * 1024 * 1024
HEADER_BYTES = 1 + 16 + 8 + 32 + 8 + 32 + 32
_SIG_CTX = "cairn/v1/directory/sig"
_FP_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class DirAccount:
    id: bytes
    roles: tuple[str, ...]
    identity_x25519_pk: bytes
    identity_ed25519_pk: bytes
    binding: bytes  # the Ed25519 identity key's signature over the X25519 one (crypto/identity.py)
    left: bool
    login: str
    display_name: str


@dataclass(frozen=True)
class DirDevice:
    id: bytes
    user_id: bytes
    public_key: bytes
    certified_ms: int  # the certificate's time and signature: with the ids and key, the whole certificate
    cert_signature: bytes
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
    approvals: tuple[Approval, ...]
    raw: bytes = field(repr=False)

    @property
    def hash(self) -> bytes:
        return directory_hash(self.raw)

    @property
    def content_bytes(self) -> bytes:
        """The content's canonical bytes: between the fixed header and the approvals."""
        return encode_content(self.content)


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
        w.fixed(a.identity_ed25519_pk, 32, "identity Ed25519 key").fixed(a.binding, 64, "identity binding")
        w.u8(_flag(a.left))
        _text(w, a.login, "a login")
        _text(w, a.display_name, "a display name")
    w.u32(len(c.devices))
    for d in c.devices:
        w.id(d.id, "device id").id(d.user_id, "device user").fixed(d.public_key, 32, "device key")
        w.u64(d.certified_ms).fixed(d.cert_signature, 64, "certificate signature").u8(_flag(d.revoked))
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


def _encode_approvals(approvals: Iterable[bytes]) -> bytes:
    parsed = sorted(((read_approval(a)[0].approval_id, bytes(a)) for a in approvals), key=lambda x: x[0])
    _ascending([i for i, _ in parsed], "approvals")
    w = Writer().u32(len(parsed))
    for _, raw in parsed:
        w.u32(len(raw)).raw(raw)
    return w.getvalue()


def sign_directory(
    signing: SigningKey,
    *,
    school_id: bytes,
    version: int,
    prev_hash: bytes,
    created_ms: int,
    next_signing_pk: bytes,
    content: DirectoryContent,
    approvals: Iterable[bytes] = (),
) -> bytes:
    """Sign one directory version carrying ``approvals`` (signed approval statements, crypto/approval.py).
    ``next_signing_pk`` is ``signing.public`` unless this version announces a new school signing key.
    Content that does not hold together (PROTOCOL 13.1) is a programmer's error: ValueError."""
    try:
        _check_structure(_sorted(content), "signing directory")
    except Malformed as exc:
        raise ValueError(f"this content does not hold together (PROTOCOL 13.1): {exc}") from None
    return _sign(signing, school_id=school_id, version=version, prev_hash=prev_hash, created_ms=created_ms,
                 next_signing_pk=next_signing_pk, content=content, approvals=approvals)


def _sign(
    signing: SigningKey,
    *,
    school_id: bytes,
    version: int,
    prev_hash: bytes,
    created_ms: int,
    next_signing_pk: bytes,
    content: DirectoryContent,
    approvals: Iterable[bytes] = (),
) -> bytes:
    """``sign_directory`` without the check that the content holds together: for the vector generator and
    the tests that play a hostile signer, which must make versions no honest device would."""
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
        .raw(_encode_approvals(approvals))
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
    for _ in range(_count(r, what, "accounts", 16 + 1 + 128 + 1 + 8)):
        account_id, bits = r.id("account id"), r.u8("roles")
        if bits >> len(ROLES):
            raise Malformed(f"{what}: an account has unknown role bits")
        x, ed, binding = r.take(32, "identity X25519 key"), r.take(32, "identity Ed25519 key"), r.take(64, "binding")
        left = _read_flag(r, what, "left flag")
        login, name = _read_text(r, what, "login"), _read_text(r, what, "display name")
        roles = tuple(role for i, role in enumerate(ROLES) if bits >> i & 1)
        accounts.append(DirAccount(account_id, roles, x, ed, binding, left, login, name))
    _check_order([a.id for a in accounts], what, "accounts")
    devices = []
    for _ in range(_count(r, what, "devices", 16 + 16 + 32 + 8 + 64 + 1)):
        device_id, user_id, pk = r.id("device id"), r.id("device user"), r.take(32, "device key")
        certified_ms, cert_signature = r.u64("certified"), r.take(64, "certificate signature")
        devices.append(DirDevice(device_id, user_id, pk, certified_ms, cert_signature, _read_flag(r, what, "revoked")))
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


def _check_structure(c: DirectoryContent, what: str) -> None:
    """The rules one version must meet on its own, beyond its encoding (PROTOCOL 13.1)."""
    accounts = {a.id for a in c.accounts}
    if any(d.user_id not in accounts for d in c.devices):
        raise Malformed(f"{what}: a device belongs to an account the directory does not list")
    by_id: dict[bytes, list[DirKey]] = {}
    for k in c.reader_keys:
        by_id.setdefault(k.id, []).append(k)
    ids_of_purpose: dict[str, set[bytes]] = {}
    for key_id, versions in by_id.items():
        if len({k.purpose for k in versions}) != 1:
            raise Malformed(f"{what}: one reader key id is listed with two purposes")
        if [k.version for k in versions] != list(range(1, len(versions) + 1)):
            raise Malformed(f"{what}: a reader key's versions do not count up from 1 without a gap")
        if [k.current for k in versions] != [k.version == len(versions) for k in versions]:
            raise Malformed(f"{what}: the current version of a reader key is not its newest")
        ids_of_purpose.setdefault(versions[0].purpose, set()).add(key_id)
    for purpose, ids in ids_of_purpose.items():
        if purpose != PUPIL_PURPOSE and len(ids) > 1:
            raise Malformed(f"{what}: {purpose} is listed under two key ids; each group has one, fixed at founding")
    pupil_keys = ids_of_purpose.get(PUPIL_PURPOSE, set())
    used = [x.reader_key_id for x in c.pupils]
    if any(k not in pupil_keys for k in used) or len(set(used)) != len(used):
        raise Malformed(f"{what}: each pupil's reader key is a pupil key of its own")
    pupils = {x.id for x in c.pupils}
    for k in c.classes:
        if any(x not in pupils for x in k.pupils) or any(t not in accounts for t in k.teachers):
            raise Malformed(f"{what}: a class names a pupil or teacher the directory does not list")


def _read_approvals(r: Reader, what: str, school_id: bytes) -> tuple[Approval, ...]:
    out = []
    for _ in range(_count(r, what, "approvals", 4 + 200)):
        n = r.u32("approval length")
        if n > MAX_APPROVAL_BYTES:
            raise Malformed(f"{what}: an approval of {n} bytes is too large")
        approval = read_approval(r.take(n, "approval"), what)[0]
        if approval.school_id != school_id:
            raise Malformed(f"{what}: an approval names another school")
        out.append(approval)
    _check_order([a.approval_id for a in out], what, "approvals")
    return tuple(out)


def read_directory(data: bytes, what: str = "reading directory") -> SignedDirectory:
    """Parse a signed version, check that it holds together and carries the signature of the key it names
    (the server's check of a stored version; a client must use ``verify_directory``)."""
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
    approvals = _read_approvals(r, what, school_id)
    body_end = r.offset
    signature = r.take(p.SIGNATURE_BYTES, "signature")
    r.end()
    _check_structure(content, what)
    p.verify(signing_pk, p.ctx(_SIG_CTX) + r.slice(0, body_end), signature, what)
    return SignedDirectory(
        school_id, dir_version, prev_hash, created_ms, signing_pk, next_pk, content, approvals, bytes(data)
    )


def check_content(school_id: bytes, content: DirectoryContent) -> None:
    """Every identity binding and device certificate verifies (BadSignature otherwise): the keys listed for
    an account are the ones its own Ed25519 identity key vouches for, and its devices are the ones it
    certified. A keyholder device checks this before it signs; every client checks it of what it accepts."""
    what = "checking directory"
    _check_structure(content, what)
    identities = {}
    for a in content.accounts:
        try:
            verify_identity_binding(a.binding, a.identity_ed25519_pk, school_id, a.id, a.identity_x25519_pk)
        except CryptoError:
            raise BadSignature(f"{what}: an account's X25519 key is not bound by its Ed25519 identity key") from None
        identities[a.id] = a.identity_ed25519_pk
    for x in content.devices:
        cert = make_device_cert_bytes(DeviceCert(school_id, x.user_id, x.id, x.public_key, x.certified_ms),
                                      x.cert_signature)
        try:
            verify_device_cert(cert, identities[x.user_id])
        except CryptoError:
            raise BadSignature(f"{what}: a device is not certified by its account's identity key") from None


# --- from one version to the next -----------------------------------------------------------------


def widenings(before: DirectoryContent, after: DirectoryContent) -> set[Item]:
    """What ``after`` adds to ``before`` that lets someone read more (the items an approval must name):
    accounts new or with new identity keys, roles added, teachers and pupils added to classes, pupils new or
    with another key, and reader key versions new. Everything else narrows or merely certifies."""
    out: set[Item] = set()
    old_accounts = {a.id: a for a in before.accounts}
    for a in after.accounts:
        old = old_accounts.get(a.id)
        if old is None or (old.identity_x25519_pk, old.identity_ed25519_pk) != (a.identity_x25519_pk,
                                                                               a.identity_ed25519_pk):
            out.add(("account", a.id, a.identity_x25519_pk, a.identity_ed25519_pk))
        out |= {("role", a.id, r) for r in set(a.roles) - set(old.roles if old else ())}
    old_classes = {k.id: k for k in before.classes}
    for k in after.classes:
        old = old_classes.get(k.id)
        out |= {("teaches", k.id, t) for t in set(k.teachers) - set(old.teachers if old else ())}
        out |= {("in_class", k.id, x) for x in set(k.pupils) - set(old.pupils if old else ())}
    old_pupils = {x.id: x.reader_key_id for x in before.pupils}
    out |= {("pupil", x.id, x.reader_key_id) for x in after.pupils if old_pupils.get(x.id) != x.reader_key_id}
    old_keys = {(k.id, k.version) for k in before.reader_keys}
    out |= {
        ("key", k.id, k.version, k.purpose, k.public_key)
        for k in after.reader_keys
        if (k.id, k.version) not in old_keys
    }
    return out


def check_unchanged(before: DirectoryContent, after: DirectoryContent) -> None:
    """Nothing a version listed vanishes or changes, what was revoked or left stays so, and each group's
    key id stays the one pinned at founding (Unapproved otherwise)."""
    what = "checking directory change"
    accounts = {a.id: a for a in after.accounts}
    for a in before.accounts:
        now = accounts.get(a.id)
        if now is None:
            raise Unapproved(f"{what}: an account listed before is missing")
        if a.left and not now.left:
            raise Unapproved(f"{what}: an account that left is listed again")
    devices = {d.id: d for d in after.devices}
    for d in before.devices:
        now = devices.get(d.id)
        if now is None or (now.user_id, now.public_key, now.certified_ms, now.cert_signature) != (
            d.user_id, d.public_key, d.certified_ms, d.cert_signature
        ):
            raise Unapproved(f"{what}: a device listed before was swapped or dropped")
        if d.revoked and not now.revoked:
            raise Unapproved(f"{what}: a revoked device is listed as not revoked")
    keys = {(k.id, k.version): k for k in after.reader_keys}
    pinned = {k.purpose: k.id for k in before.reader_keys if k.purpose != PUPIL_PURPOSE}
    for k in before.reader_keys:
        now = keys.get((k.id, k.version))
        if now is None or (now.purpose, now.public_key) != (k.purpose, k.public_key):
            raise Unapproved(f"{what}: a reader key listed before was swapped or dropped")
    for k in after.reader_keys:
        if k.purpose in pinned and k.id != pinned[k.purpose]:
            raise Unapproved(f"{what}: {k.purpose} is listed under a key id other than the one pinned at founding")


def check_transition(before: SignedDirectory, after: SignedDirectory) -> set[Item]:
    """Check the step from ``before`` (the version a device holds) to ``after`` (the very next): nothing
    listed vanishes or changes, and every widening is named by an approval made against ``before`` and
    signed by a device that ``before`` lists for a safeguarding member who has not left. Returns the
    widenings. Raises Unapproved, Rollback, BadSignature or NoKey."""
    what = "checking directory change"
    if after.created_ms < before.created_ms:
        raise Rollback(f"{what}: version {after.version} was made before the version it follows")
    check_unchanged(before.content, after.content)
    keyholders = {a.id for a in before.content.accounts if "safeguarding" in a.roles and not a.left}
    devices = {d.id: d for d in before.content.devices if not d.revoked}
    covered: set[Item] = set()
    for approval in after.approvals:
        if approval.base_version != before.version or not p.equal(approval.base_hash, before.hash):
            raise Unapproved(f"{what}: an approval was made against another version")
        device = devices.get(approval.approver_device)
        if approval.approver_user not in keyholders or device is None or device.user_id != approval.approver_user:
            raise Unapproved(f"{what}: an approval is not signed by a safeguarding keyholder's device")
        verify_approval(approval.raw, before.school_id, device.public_key)
        covered |= set(approval.items)
    wide = widenings(before.content, after.content)
    if after.next_signing_pk != after.signing_pk:
        wide.add(("signing", after.next_signing_pk))
    if wide - covered:
        raise Unapproved(f"{what}: {len(wide - covered)} widenings of who can read have no keyholder's approval")
    if covered - wide:
        raise Unapproved(f"{what}: an approval names something this version does not add")
    return wide


def verify_directory(
    data: bytes, school_id: bytes, pinned_pk: bytes | None, previous: SignedDirectory | None = None
) -> SignedDirectory:
    """A client's check of a served version: it parses and holds together, is this school's, is signed by
    the pinned key (``None`` only at first sign-in: trust on first use), its bindings and certificates
    verify, and it moves forward from ``previous`` (the newest version this device accepted). The very
    next version must also pass ``check_transition``; a device that missed versions must follow them
    (``GET /api/v1/directory?since=N`` serves them), except at first sign-in."""
    what = "verifying directory"
    d = read_directory(data, what)
    if not p.equal(d.school_id, school_id):
        raise NoKey(f"{what}: the directory belongs to another school")
    if pinned_pk is not None and not p.equal(d.signing_pk, pinned_pk):
        raise BadSignature(f"{what}: signed by a key this device has not pinned")
    if previous is not None:
        if d.version <= previous.version:
            raise Rollback(f"{what}: version {d.version} is not newer than version {previous.version}")
        if d.version != previous.version + 1:
            raise Rollback(f"{what}: version {d.version} skips versions after {previous.version}; follow each")
        if not p.equal(d.prev_hash, previous.hash):
            raise Rollback(f"{what}: version {d.version} does not follow the version this device holds")
    check_content(d.school_id, d.content)
    if previous is not None:
        check_transition(previous, d)
    elif d.approvals and d.version == 1:
        raise Unapproved(f"{what}: version 1 has nothing before it to approve against")
    return d
