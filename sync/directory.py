"""The client side of the signed directory (docs/PROTOCOL.md section 13): follow, pin, prepare, sign.

A device trusts no key the server serves unless the newest directory version signed with the school's
signing key lists it. ``follow`` checks every version the server serves after the one this device holds,
in order, against the key pinned at its first sign-in (trust on first use, shown as a fingerprint to
compare): each must chain by hash, hold bindings and certificates that verify, keep what was listed, and
carry a safeguarding keyholder's approval for everything that lets someone read more.

A safeguarding keyholder's device, holding the ``signing:directory`` reader key, signs the next version
when the school changed. ``prepare`` takes the server's current state and keeps only what the device may
sign: everything that narrows or merely certifies (the closed list of PROTOCOL 13.4: revocations, leavers,
removals, a new device certified by its own account, names and class labels) and the widenings in
``allowed`` — those its person approved on this device just now, or key versions it made itself in a
rotation. Every other widening stays out, waiting, and is returned as ``pending`` for the Approvals page.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from crypto import BoxKeyPair, CryptoError, SigningKey
from crypto.approval import Item, item_json, sign_approval
from crypto.directory import (
    SIGNING_PURPOSE,
    DirAccount,
    DirClass,
    DirDevice,
    DirectoryContent,
    DirKey,
    DirPupil,
    SignedDirectory,
    check_content,
    check_unchanged,
    directory_signing_key,
    encode_content,
    fingerprint,
    sign_directory,
    verify_directory,
    widenings,
)
from crypto.errors import Malformed

from .protocol import b64d, b64e

__all__ = [
    "DirectoryRefused",
    "Followed",
    "Prepared",
    "follow",
    "listing",
    "content_from_listing",
    "prepare",
    "make_approval",
    "signing_key_for",
    "sign_next",
    "fingerprint_of",
    "item_key",
    "items_json",
    "rotate_signing_key",
    "new_signing_reader",
]


class DirectoryRefused(Exception):
    """What the server served (or asks a keyholder to sign) is not trusted; nothing was changed."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Followed:
    """The newest version this device accepted, the key it now pins (the next version's signer), and
    whether the server has more versions to follow (``more``: ask again with the new version)."""

    directory: SignedDirectory
    pinned_pk: bytes
    more: bool = False


def follow(
    served: dict, school_id: bytes, pinned_pk: bytes | None, held: SignedDirectory | None
) -> Followed | None:
    """Check a ``GET /api/v1/directory`` answer: every version after the held one, in order, then the
    newest. Returns None when the server has no signed version yet (nothing to trust), or the held version
    when the server serves it again. Raises DirectoryRefused when anything fails to verify."""
    if served.get("signed") is None:
        if held is not None:
            raise DirectoryRefused("rollback", "the server no longer serves a directory this device holds")
        return None
    chain = [b64d(x, "link") for x in served.get("links", [])] + [b64d(served["signed"], "signed")]
    if held is None:
        chain = chain[-1:]  # first sign-in: trust on first use of the newest version, as of its key
    previous, pin = held, pinned_pk
    for raw in chain:
        if previous is not None and raw == previous.raw:
            continue  # the version this device holds, served again: nothing new
        try:
            previous = verify_directory(raw, school_id, pin, previous)
        except CryptoError as exc:
            raise DirectoryRefused(exc.code, str(exc)) from None
        pin = previous.next_signing_pk
    assert previous is not None and pin is not None
    return Followed(previous, pin, bool(served.get("more")))


def fingerprint_of(school_id: bytes, pinned_pk: bytes | None) -> str | None:
    return fingerprint(school_id, pinned_pk) if pinned_pk else None


def listing(d: SignedDirectory) -> dict:
    """The verified content in the JSON shape the rest of the client reads (ids and keys as base64url),
    with the approvals this version carries (the change log)."""
    c = d.content
    return {
        "version": d.version,
        "accounts": [
            {"id": b64e(a.id), "login": a.login, "display_name": a.display_name, "roles": list(a.roles),
             "identity_x25519_pk": b64e(a.identity_x25519_pk), "identity_ed25519_pk": b64e(a.identity_ed25519_pk),
             "left": a.left}
            for a in c.accounts
        ],
        "devices": [
            {"id": b64e(x.id), "user_id": b64e(x.user_id), "public_key": b64e(x.public_key), "revoked": x.revoked}
            for x in c.devices
        ],
        "reader_keys": [
            {"id": b64e(k.id), "version": k.version, "purpose": k.purpose, "public_key": b64e(k.public_key),
             "current": k.current}
            for k in c.reader_keys
        ],
        "pupils": [{"id": b64e(x.id), "reader_key_id": b64e(x.reader_key_id)} for x in c.pupils],
        "classes": [
            {"id": b64e(k.id), "label": k.label, "pupils": [b64e(x) for x in k.pupils],
             "teachers": [b64e(x) for x in k.teachers]}
            for k in c.classes
        ],
        "approvals": [
            {"id": b64e(a.approval_id), "approver_user": b64e(a.approver_user),
             "approver_device": b64e(a.approver_device), "created_ms": a.created_ms, "items": items_json(a.items)}
            for a in d.approvals
        ],
    }


def items_json(items: Iterable[Item]) -> list[dict]:
    """Items as JSON, byte strings as base64url, in their canonical order."""
    out = []
    for item in sorted(items, key=item_key):
        out.append({k: b64e(v) if isinstance(v, bytes) else v for k, v in item_json(item).items()})
    return out


def item_key(item: Item) -> str:
    """A short stable name of what an item is about (not its keys), to match the server's request notes:
    ``role:<user>:<role>``, ``teaches:<class>:<user>``, ``account:<user>``, ``key:<id>:<version>``, ..."""
    kind = item[0]
    if kind == "key":
        return f"key:{b64e(item[1])}:{item[2]}"
    if kind == "signing":
        return f"signing:{b64e(item[1])}"
    if kind == "account":
        return f"account:{b64e(item[1])}"
    if kind == "role":
        return f"role:{b64e(item[1])}:{item[2]}"
    return f"{kind}:{b64e(item[1])}:{b64e(item[2])}"


def content_from_listing(current: dict) -> DirectoryContent:
    """The content a keyholder checks and signs, from the server's ``current`` state (JSON)."""
    devices = []
    for x in current["devices"]:
        cert = b64d(x["cert"], "cert")
        if len(cert) != 153:
            raise DirectoryRefused("bad_certificate", f"device {x['id']} has no certificate of the right length")
        devices.append(DirDevice(b64d(x["id"], "id"), b64d(x["user_id"], "id"), b64d(x["public_key"], "pk"),
                                 int.from_bytes(cert[81:89], "big"), cert[89:], bool(x["revoked"])))
    return DirectoryContent(
        tuple(
            DirAccount(b64d(a["id"], "id"), tuple(a["roles"]), b64d(a["identity_x25519_pk"], "pk"),
                       b64d(a["identity_ed25519_pk"], "pk"), b64d(a["binding"], "binding"), bool(a["left"]),
                       a["login"], a["display_name"])
            for a in current["accounts"]
        ),
        tuple(devices),
        tuple(
            DirKey(b64d(k["id"], "id"), k["version"], k["purpose"], b64d(k["public_key"], "pk"), bool(k["current"]))
            for k in current["reader_keys"]
        ),
        tuple(DirPupil(b64d(x["id"], "id"), b64d(x["reader_key_id"], "id")) for x in current["pupils"]),
        tuple(
            DirClass(b64d(k["id"], "id"), k["label"], tuple(b64d(x, "id") for x in k["pupils"]),
                     tuple(b64d(x, "id") for x in k["teachers"]))
            for k in current["classes"]
        ),
    )


@dataclass(frozen=True)
class Prepared:
    """What a keyholder device may sign now: the content, the widenings it includes (which its approval
    names), and the widenings left out, waiting for a keyholder's approval."""

    content: DirectoryContent
    included: frozenset = field(default_factory=frozenset)
    pending: frozenset = field(default_factory=frozenset)

    def differs_from(self, held: SignedDirectory | None) -> bool:
        return held is None or encode_content(self.content) != held.content_bytes


def prepare(school_id: bytes, current: dict, held: SignedDirectory | None, allowed: Iterable[Item] = ()) -> Prepared:
    """The next content a keyholder device may sign from the server's ``current`` state: every binding and
    certificate must verify and nothing the held version lists may vanish or change (DirectoryRefused
    otherwise); of the widenings, only those in ``allowed`` are kept, the rest (and what depends on them)
    are left out and returned as ``pending``. Version 1 (nothing held) is the founding device's own."""
    try:
        content = content_from_listing(current)
    except (KeyError, TypeError, ValueError) as exc:
        raise DirectoryRefused("malformed", f"the server's current state does not read: {exc}") from None
    try:
        check_content(school_id, content)
    except Malformed as exc:  # it does not hold together (two key ids for a group, say): not a certificate
        raise DirectoryRefused("malformed", str(exc)) from None
    except CryptoError as exc:
        raise DirectoryRefused("bad_certificate", str(exc)) from None
    if held is None:
        return Prepared(_recurrent(content))
    try:
        check_unchanged(held.content, content)
    except CryptoError as exc:
        raise DirectoryRefused("swapped_key", str(exc)) from None
    wide = widenings(held.content, content)
    allowed_set = set(allowed)
    pending = wide - allowed_set
    kept = _without(content, pending, held.content)
    try:
        check_content(school_id, kept)
    except CryptoError as exc:  # pragma: no cover - leaving things out never breaks a binding or certificate
        raise DirectoryRefused("malformed", str(exc)) from None
    included = widenings(held.content, kept)
    return Prepared(kept, frozenset(included), frozenset(widenings(held.content, content) - included))


def _without(c: DirectoryContent, pending: set[Item], before: DirectoryContent) -> DirectoryContent:
    """``c`` without the pending widenings and what depends on them (a new account's devices and classes,
    a new pupil's class places). Changes that cannot be left out (new identity keys for an account listed
    before, another key for a listed pupil) raise DirectoryRefused: they need a decision first."""
    old_accounts = {a.id for a in before.accounts}
    old_pupils = {x.id for x in before.pupils}
    drop_accounts = {i[1] for i in pending if i[0] == "account" and i[1] not in old_accounts}
    if any(i[0] == "account" and i[1] in old_accounts for i in pending):
        raise DirectoryRefused("identity_changed", "the server lists new identity keys for an account: "
                               "approve them only if that person recovered their account with a keyholder")
    if any(i[0] == "pupil" and i[1] in old_pupils for i in pending):
        raise DirectoryRefused("pupil_key_changed", "the server lists another reader key for a pupil")
    roles = {(i[1], i[2]) for i in pending if i[0] == "role"}
    teaches = {(i[1], i[2]) for i in pending if i[0] == "teaches"}
    in_class = {(i[1], i[2]) for i in pending if i[0] == "in_class"}
    keys = {(i[1], i[2]) for i in pending if i[0] == "key"}
    reader_keys = [k for k in c.reader_keys if (k.id, k.version) not in keys]
    listed_keys = {k.id for k in reader_keys}
    drop_pupils = {i[1] for i in pending if i[0] == "pupil"}
    pupils = [x for x in c.pupils if x.id not in drop_pupils and x.reader_key_id in listed_keys]
    pupil_ids = {x.id for x in pupils}
    accounts = [
        replace(a, roles=tuple(r for r in a.roles if (a.id, r) not in roles))
        for a in c.accounts
        if a.id not in drop_accounts
    ]
    account_ids = {a.id for a in accounts}
    classes = [
        DirClass(
            k.id,
            k.label,
            tuple(x for x in k.pupils if (k.id, x) not in in_class and x in pupil_ids),
            tuple(t for t in k.teachers if (k.id, t) not in teaches and t in account_ids),
        )
        for k in c.classes
    ]
    devices = [d for d in c.devices if d.user_id in account_ids]
    return _recurrent(DirectoryContent(tuple(accounts), tuple(devices), tuple(reader_keys), tuple(pupils),
                                       tuple(classes)))


def _recurrent(c: DirectoryContent) -> DirectoryContent:
    """Each reader key's newest listed version is its current one (PROTOCOL 13.1)."""
    newest: dict[bytes, int] = {}
    for k in c.reader_keys:
        newest[k.id] = max(newest.get(k.id, 0), k.version)
    return replace(c, reader_keys=tuple(replace(k, current=k.version == newest[k.id]) for k in c.reader_keys))


def make_approval(device_key: SigningKey, device_id: bytes, user_id: bytes, held: SignedDirectory,
                  items: Iterable[Item], created_ms: int | None = None) -> bytes:
    """This keyholder device's signed approval of ``items``, made against the version it holds."""
    return sign_approval(
        device_key,
        school_id=held.school_id,
        approval_id=os.urandom(16),
        base_version=held.version,
        base_hash=held.hash,
        approver_user=user_id,
        approver_device=device_id,
        created_ms=created_ms if created_ms is not None else int(time.time() * 1000),
        items=items,
    )


def signing_key_for(
    reader_keys: dict[tuple[bytes, int], BoxKeyPair], listed: Iterable[dict], want_pk: bytes | None
) -> SigningKey | None:
    """The school signing key this device holds whose public key is ``want_pk`` (or, before any version
    exists, the current ``signing:directory`` key it holds); None when it holds none."""
    for k in sorted(listed, key=lambda k: -k["version"]):
        if k["purpose"] != SIGNING_PURPOSE:
            continue
        pair = reader_keys.get((b64d(k["id"], "id"), k["version"]))
        if pair is None:
            continue
        key = directory_signing_key(pair)
        if (want_pk is None and k["current"]) or key.public == want_pk:
            return key
    return None


def sign_next(
    key: SigningKey,
    school_id: bytes,
    content: DirectoryContent,
    held: SignedDirectory | None,
    created_ms: int,
    next_signing_pk: bytes | None = None,
    approvals: Iterable[bytes] = (),
) -> bytes:
    """The version after ``held`` (or version 1), signed with ``key``, carrying ``approvals``."""
    return sign_directory(
        key,
        school_id=school_id,
        version=held.version + 1 if held else 1,
        prev_hash=held.hash if held else bytes(32),
        created_ms=max(created_ms, held.created_ms if held else 0),
        next_signing_pk=next_signing_pk or key.public,
        content=content,
        approvals=approvals,
    )


def new_signing_reader() -> tuple[bytes, BoxKeyPair]:
    """A fresh ``signing:directory`` reader key (id, pair): the school signing key is derived from it."""
    return os.urandom(16), BoxKeyPair.generate()


async def rotate_signing_key(device) -> bytes:  # type: ignore[no-untyped-def]
    """A safeguarding keyholder rotates the school signing key (a deliberate act, approved on this device):
    make the next version of the ``signing:directory`` reader key, grant it to every safeguarding member the
    signed directory lists, and publish a version signed by the old key that announces the new one, with
    this device's approval of both. Devices follow the rotation through that version; the fingerprint people
    compare changes. Returns the new signing key's public key."""
    await device.refresh()
    old = signing_key_for(device.reader_keys, device.directory["reader_keys"], device.pinned_signing_pk)
    if old is None:
        raise DirectoryRefused("no_key", "this device does not hold the school signing key")
    listed = [k for k in device.directory["reader_keys"] if k["purpose"] == SIGNING_PURPOSE]
    key_id = b64d(listed[0]["id"], "id")  # one key id per purpose, pinned at founding
    version = max(k["version"] for k in listed) + 1
    pair = BoxKeyPair.generate()
    holders = [a for a in device.directory["accounts"] if "safeguarding" in a["roles"] and not a["left"]]
    await device.rotate_key(key_id, version, pair, [b64d(a["id"], "id") for a in holders])
    new = directory_signing_key(pair)
    items = {("key", key_id, version, SIGNING_PURPOSE, pair.public), ("signing", new.public)}
    served = await device.follow_directory()  # rotate_key has listed the new version (its own rotation)
    held = device.signed_directory
    if not any(k.id == key_id and k.version == version for k in held.content.reader_keys):
        raise DirectoryRefused("stale_directory", "the signed directory does not list the new key version")
    prepared = prepare(device.school_id, served["current"], held, items) if served.get("current") else None
    content = prepared.content if prepared else held.content
    included = set(prepared.included) if prepared else set()
    approval = make_approval(device.device_key, device.device_id, device.user_id, held,
                             included | {("signing", new.public)})
    raw = sign_next(old, device.school_id, content, held, int(time.time() * 1000), new.public, [approval])
    await device.call("POST", "/api/v1/directory", signed=b64e(raw))
    await device.follow_directory()
    return new.public

