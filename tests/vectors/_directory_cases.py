"""Signed directory vectors (version 2): versions accepted in order, with approvals and through a rotation,
and every refusal — of the encoding, the signature, the bindings and certificates, and of a step from one
version to the next that widens who can read without a safeguarding keyholder's approval. Also the
approval statement and the identity binding on their own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from crypto import _primitives as prim
from crypto.approval import encode_item, item_json, read_approval, sign_approval, verify_approval
from crypto.device import DeviceCert, make_device_cert
from crypto.directory import (
    DirAccount,
    DirClass,
    DirDevice,
    DirectoryContent,
    DirKey,
    DirPupil,
    directory_hash,
    directory_signing_key,
    encode_content,
    fingerprint,
    read_directory,
    verify_directory,
)
from crypto.directory import _sign as unchecked_sign  # a hostile signer's versions too
from crypto.identity import sign_identity_binding, verify_identity_binding
from crypto.keys import BoxKeyPair, SigningKey
from tests.vectors._common import Case, Rng, case, expect_error, flip

T0 = 1_790_000_000_000


def content_json(c: DirectoryContent) -> dict:
    """The vector form of a directory's content (bytes become hex in ``case``)."""
    return {
        "accounts": [dataclasses.asdict(a) | {"roles": list(a.roles)} for a in c.accounts],
        "devices": [dataclasses.asdict(d) for d in c.devices],
        "reader_keys": [dataclasses.asdict(k) for k in c.reader_keys],
        "pupils": [dataclasses.asdict(x) for x in c.pupils],
        "classes": [{"id": k.id, "label": k.label, "pupils": list(k.pupils), "teachers": list(k.teachers)} for k in c.classes],
    }


@dataclasses.dataclass
class Person:
    id: bytes
    identity: SigningKey
    box: BoxKeyPair
    device_id: bytes
    device: SigningKey

    def account(self, school: bytes, roles: tuple[str, ...], login: str, name: str, left: bool = False) -> DirAccount:
        binding = sign_identity_binding(self.identity, school, self.id, self.box.public)
        return DirAccount(self.id, roles, self.box.public, self.identity.public, binding, left, login, name)

    def device_entry(self, school: bytes, revoked: bool = False) -> DirDevice:
        cert = make_device_cert(self.identity, DeviceCert(school, self.id, self.device_id, self.device.public, T0))
        return DirDevice(self.device_id, self.id, self.device.public, T0, cert[89:], revoked)


def _person(rng: Rng) -> Person:
    return Person(rng.bytes(16), SigningKey(rng.bytes(32)), BoxKeyPair(rng.bytes(32)), rng.bytes(16),
                  SigningKey(rng.bytes(32)))


def directory_cases() -> Iterator[Case]:
    rng = Rng("directory")
    school = rng.bytes(16)
    reader1, reader2 = BoxKeyPair(rng.bytes(32)), BoxKeyPair(rng.bytes(32))
    key1, key2 = directory_signing_key(reader1), directory_signing_key(reader2)
    dsl, teacher, admin = _person(rng), _person(rng), _person(rng)
    group_id, signing_id, pupil_key_id, pupil_id, class_id = (rng.bytes(16) for _ in range(5))
    group_pk, pupil_pk = rng.bytes(32), rng.bytes(32)

    def school_content(*, teacher_in: bool, signing_versions: int = 1, admin_roles: tuple[str, ...] = ("admin",),
                       teacher_x: BoxKeyPair | None = None) -> DirectoryContent:
        accounts = [dsl.account(school, ("safeguarding", "admin"), "dsl", "Fictional DSL"),
                    admin.account(school, admin_roles, "office", "Fictional Office \u00e9")]
        devices = [dsl.device_entry(school), admin.device_entry(school)]
        teachers: tuple[bytes, ...] = ()
        if teacher_in:
            account = teacher.account(school, ("teacher",), "t.oak", "Ms Fictional Oak")
            if teacher_x is not None:  # another X25519 key, bound by the teacher's own identity key
                account = dataclasses.replace(account, identity_x25519_pk=teacher_x.public, binding=sign_identity_binding(
                    teacher.identity, school, teacher.id, teacher_x.public))
            accounts.append(account)
            devices.append(teacher.device_entry(school))
            teachers = (teacher.id,)
        keys = [DirKey(group_id, 1, "group:safeguarding", group_pk, True), DirKey(pupil_key_id, 1, "pupil", pupil_pk, True)]
        keys += [DirKey(signing_id, v + 1, "signing:directory", r.public, v == signing_versions - 1)
                 for v, r in enumerate([reader1, reader2][:signing_versions])]
        return DirectoryContent(tuple(accounts), tuple(devices), tuple(keys), (DirPupil(pupil_id, pupil_key_id),),
                                (DirClass(class_id, "Year 3 Oak", (pupil_id,), teachers),))

    def signed(key: SigningKey, version: int, prev: bytes, content: DirectoryContent, next_pk: bytes | None = None,
               approvals: tuple[bytes, ...] = (), created: int | None = None) -> bytes:
        return unchecked_sign(key, school_id=school, version=version, prev_hash=prev,
                              created_ms=T0 + version if created is None else created,
                              next_signing_pk=next_pk or key.public, content=content, approvals=approvals)

    def approval(by: Person, base: bytes, items: set, approval_id: bytes | None = None) -> bytes:
        d = read_directory(base)
        return sign_approval(by.device, school_id=school, approval_id=approval_id or rng.bytes(16),
                             base_version=d.version, base_hash=d.hash, approver_user=by.id,
                             approver_device=by.device_id, created_ms=T0 + 100, items=items)

    c1 = school_content(teacher_in=False)
    c2 = school_content(teacher_in=True)
    c3 = school_content(teacher_in=True, signing_versions=2)
    v1 = signed(key1, 1, bytes(32), c1)
    new_teacher = {("account", teacher.id, teacher.box.public, teacher.identity.public), ("role", teacher.id, "teacher"),
                   ("teaches", class_id, teacher.id)}
    a2 = approval(dsl, v1, new_teacher)
    v2 = signed(key1, 2, directory_hash(v1), c2, approvals=(a2,))
    rotation = {("key", signing_id, 2, "signing:directory", reader2.public), ("signing", key2.public)}
    a3 = approval(dsl, v2, rotation)
    v3 = signed(key1, 3, directory_hash(v2), c3, key2.public, approvals=(a3,))  # announces the rotation to key 2
    v4 = signed(key2, 4, directory_hash(v3), c3)
    successes = [
        ("first_success", reader1, 1, bytes(32), c1, key1.public, None, key1.public, v1, (),
         "version 1 accepted at first sign-in: the device pins the key that signed it"),
        ("approved_teacher_success", reader1, 2, directory_hash(v1), c2, key1.public, v1, key1.public, v2, (a2,),
         "version 2 adds a teacher for Year 3 Oak, with the DSL device's approval of the account, the role and the class"),
        ("rotation_announced_success", reader1, 3, directory_hash(v2), c3, key1.public, v2, key2.public, v3, (a3,),
         "version 3, signed by the pinned key, announces the next signing key, with the DSL's approval of it"),
        ("rotated_success", reader2, 4, directory_hash(v3), c3, key2.public, v3, key2.public, v4, (),
         "version 4 signed by the key version 3 announced; it adds nothing, so it needs no approval"),
    ]
    for condition, reader, version, prev, content, pinned, previous, next_pk, data, approvals, comment in successes:
        inputs = {"school_id": school, "signing_reader_sk": bytes(reader), "version": version, "prev_hash": prev,
                  "created_ms": T0 + version, "next_signing_pk": next_pk, "content": content_json(content),
                  "approvals": list(approvals), "pinned_pk": pinned, "previous": previous, "signed": data}
        d = verify_directory(data, school, pinned, read_directory(previous) if previous else None)
        yield case("directory", "verify", condition, comment, "success", inputs, {
            "signing_pk": d.signing_pk, "hash": directory_hash(data), "content_bytes": encode_content(content),
            "fingerprint": fingerprint(school, d.signing_pk),
        })

    stranger = SigningKey(rng.bytes(32))
    body_end = len(v1) - 64

    def resign(body: bytes, key: SigningKey = key1) -> bytes:
        return body + key.sign(prim.ctx("cairn/v1/directory/sig") + body)

    header = 1 + 16 + 8 + 32 + 8 + 32 + 32
    unsorted_body = v1[:header] + _unsorted_accounts(c1) + v1[header + len(encode_content(c1)) : body_end]
    left_at = header + 4 + 16 + 1 + 64 + 64  # the first account's left flag
    base = {"school_id": school, "pinned_pk": key1.public, "previous": None}
    after_v1 = {"previous": v1}

    def step(content: DirectoryContent, approvals: tuple[bytes, ...] = (), **kw: object) -> bytes:
        return signed(key1, 2, directory_hash(v1), content, approvals=approvals, **kw)  # type: ignore[arg-type]

    admin_made_safeguarding = school_content(teacher_in=False, admin_roles=("admin", "safeguarding"))
    unbound = dataclasses.replace(c1, accounts=(dataclasses.replace(c1.accounts[0], identity_x25519_pk=rng.bytes(32)),
                                                *c1.accounts[1:]))
    uncertified = dataclasses.replace(c1, devices=(dataclasses.replace(c1.devices[0], public_key=SigningKey(rng.bytes(32)).public),
                                                   *c1.devices[1:]))
    second_group_id = dataclasses.replace(c1, reader_keys=(*c1.reader_keys, DirKey(rng.bytes(16), 1, "group:safeguarding",
                                                                                     rng.bytes(32), True)))
    version_gap = dataclasses.replace(c1, reader_keys=(*c1.reader_keys, DirKey(group_id, 3, "group:safeguarding",
                                                                                 rng.bytes(32), True)))
    swapped_group = dataclasses.replace(c1, reader_keys=tuple(
        DirKey(rng.bytes(16), 1, k.purpose, k.public_key, True) if k.purpose == "group:safeguarding" else k
        for k in c1.reader_keys))
    revoked_c1 = dataclasses.replace(c1, devices=(dataclasses.replace(c1.devices[0], revoked=True), *c1.devices[1:]))
    v2_revoked = signed(key1, 2, directory_hash(v1), revoked_c1)
    other_x = BoxKeyPair(rng.bytes(32))
    swapped_identity = school_content(teacher_in=True, teacher_x=other_x)
    by_admin = approval(admin, v1, new_teacher)
    against_v2 = sign_approval(dsl.device, school_id=school, approval_id=rng.bytes(16), base_version=2,
                               base_hash=rng.bytes(32), approver_user=dsl.id, approver_device=dsl.device_id,
                               created_ms=T0, items=new_teacher)
    forged = flip(approval(dsl, v1, new_teacher), 130)  # a bit of an item, past the header
    partial = approval(dsl, v1, {("account", teacher.id, teacher.box.public, teacher.identity.public),
                                 ("role", teacher.id, "teacher")})
    inflated = approval(dsl, v1, new_teacher | {("role", admin.id, "safeguarding")})
    bad = [
        ("tampered_body", {"signed": flip(v1, header + 30)}, "bad_signature", "one bit of an identity key flipped"),
        ("tampered_signature", {"signed": flip(v1, len(v1) - 3)}, "bad_signature", "one bit of the signature flipped"),
        ("unpinned_key", {"signed": signed(stranger, 2, directory_hash(v1), c1), **after_v1}, "bad_signature",
         "a valid version signed by a key the device has not pinned: a hostile server's own key"),
        ("rotation_not_announced", {"signed": signed(key2, 2, directory_hash(v1), c1), **after_v1}, "bad_signature",
         "signed by a new key, but no version signed by the old key announced it"),
        ("version_backwards", {"signed": v1, "previous": v2}, "rollback", "version 1 served to a device that holds version 2"),
        ("same_version_other_body", {"signed": signed(key1, 1, bytes(32), c2), **after_v1}, "rollback",
         "another version 1, served to a device that holds version 1: a fork"),
        ("fork", {"signed": signed(key1, 2, rng.bytes(32), c1), **after_v1}, "rollback",
         "version 2 whose previous hash is not the version 1 this device holds"),
        ("skipped_versions", {"signed": signed(key1, 5, rng.bytes(32), c1), **after_v1}, "rollback",
         "version 5 after version 1: a device must follow every version, since each is approved against the one before"),
        ("made_before_previous", {"signed": step(c1, created=T0), **after_v1}, "rollback",
         "version 2 dated before version 1"),
        ("other_school", {"school_id": rng.bytes(16)}, "no_key", "a directory of another school"),
        ("unknown_version", {"signed": bytes([1]) + v1[1:]}, "unsupported_version", "directory version byte 1: the format before approvals"),
        ("version_zero", {"signed": resign(v1[:17] + bytes(8) + v1[25:body_end])}, "parse_failure",
         "a validly signed directory version 0: versions start at 1"),
        ("unsorted_accounts", {"signed": resign(unsorted_body)}, "parse_failure",
         "validly signed, but the accounts are not sorted by id: one directory has one encoding"),
        ("flag_not_boolean", {"signed": resign(v1[:left_at] + b"\x02" + v1[left_at + 1 : body_end])}, "parse_failure",
         "validly signed, but a left flag is 2"),
        ("truncated", {"signed": v1[:-1]}, "parse_failure", "one byte short"),
        ("trailing", {"signed": v1 + b"\0"}, "parse_failure", "one trailing byte"),
        ("unbound_identity", {"signed": signed(key1, 1, bytes(32), unbound)}, "bad_signature",
         "validly signed, but an account's X25519 key is not the one its Ed25519 identity key binds: a swapped key"),
        ("uncertified_device", {"signed": signed(key1, 1, bytes(32), uncertified)}, "bad_signature",
         "validly signed, but a device's key is not the one its account's identity key certified"),
        ("second_group_key_id", {"signed": signed(key1, 1, bytes(32), second_group_id)}, "parse_failure",
         "two key ids for group:safeguarding: each group has one key id, fixed at founding"),
        ("version_gap", {"signed": signed(key1, 1, bytes(32), version_gap)}, "parse_failure",
         "version 3 of a key without version 2: versions count up from 1"),
        ("unapproved_safeguarding_role", {"signed": step(admin_made_safeguarding), **after_v1}, "unapproved",
         "the office admin made a safeguarding member with no approval: signed with the school key, refused all the same"),
        ("unapproved_teacher", {"signed": step(c2), **after_v1}, "unapproved",
         "a new teacher of Year 3 Oak with no approval: the class's pupil keys would follow"),
        ("approval_by_admin", {"signed": step(c2, (by_admin,)), **after_v1}, "unapproved",
         "the approval is signed by the office admin's device: not a safeguarding keyholder's"),
        ("approval_other_base", {"signed": step(c2, (against_v2,)), **after_v1}, "unapproved",
         "the approval was made against another version: approvals cannot be replayed into a later step"),
        ("approval_forged", {"signed": step(c2, (forged,)), **after_v1}, "bad_signature",
         "the approval's items were altered after the DSL's device signed it"),
        ("approval_partial", {"signed": step(c2, (partial,)), **after_v1}, "unapproved",
         "the approval names the account and role but not the class the version also gives the teacher"),
        ("approval_inflated", {"signed": step(c2, (inflated,)), **after_v1}, "unapproved",
         "the approval names more than the version adds: the change log must say exactly what changed"),
        ("swapped_identity", {"signed": signed(key1, 3, directory_hash(v2), swapped_identity), "previous": v2}, "unapproved",
         "the teacher's X25519 key changed (bound by its own identity key) with no approval: only an approved recovery may"),
        ("group_key_replaced", {"signed": step(swapped_group), **after_v1}, "unapproved",
         "group:safeguarding under a new key id: the pinned key id and its versions vanished"),
        ("device_unrevoked", {"signed": signed(key1, 3, directory_hash(v2_revoked), c1), "previous": v2_revoked}, "unapproved",
         "a device the previous version listed as revoked is listed as not revoked"),
    ]
    for condition, change, expect, comment in bad:
        inputs = {**base, "signed": v1, **change}
        previous = read_directory(inputs["previous"]) if inputs["previous"] else None
        expect_error(expect, lambda i=inputs, prev=previous: verify_directory(i["signed"], i["school_id"], i["pinned_pk"], prev))
        yield case("directory", "verify", condition, comment, expect, inputs)


def _unsorted_accounts(c: DirectoryContent) -> bytes:
    """The content's bytes with its two accounts in descending order of id: encoded part by part."""
    c = dataclasses.replace(c, accounts=tuple(sorted(c.accounts, key=lambda a: a.id, reverse=True)))
    ordered = encode_content(c)
    one = encode_content(dataclasses.replace(c, accounts=c.accounts[:1], devices=(), reader_keys=(), pupils=(), classes=()))
    two = encode_content(dataclasses.replace(c, accounts=c.accounts[1:], devices=(), reader_keys=(), pupils=(), classes=()))
    tail_empty = 4 * 4
    first, second = one[4 : len(one) - tail_empty], two[4 : len(two) - tail_empty]
    accounts_len = 4 + len(first) + len(second)
    return ordered[:4] + first + second + ordered[accounts_len:]


def approval_cases() -> Iterator[Case]:
    rng = Rng("approval")
    school, approval_id, base_hash, user, device_id = (rng.bytes(n) for n in (16, 16, 32, 16, 16))
    device = SigningKey(rng.bytes(32))
    items = [
        ("account", rng.bytes(16), rng.bytes(32), rng.bytes(32)),
        ("role", rng.bytes(16), "sen"),
        ("teaches", rng.bytes(16), rng.bytes(16)),
        ("in_class", rng.bytes(16), rng.bytes(16)),
        ("pupil", rng.bytes(16), rng.bytes(16)),
        ("key", rng.bytes(16), 2, "group:sen", rng.bytes(32)),
        ("signing", rng.bytes(32)),
    ]
    fields = {"school_id": school, "approval_id": approval_id, "base_version": 7, "base_hash": base_hash,
              "approver_user": user, "approver_device": device_id, "created_ms": T0}
    raw = sign_approval(device, items=items, **fields)
    approval = verify_approval(raw, school, device.public)
    ordered = [item_json(i) for i in approval.items]
    inputs = {**fields, "device_seed": bytes(device), "device_pk": device.public, "items": ordered, "approval": raw}
    yield case("approval", "sign", "success", "one approval naming an item of every kind, in the order of their bytes",
               "success", inputs, {"approval": raw, "items": ordered, "item_bytes": [encode_item(i) for i in approval.items]})
    body, _, _ = read_approval(raw)
    count_at = 1 + 16 + 16 + 8 + 32 + 16 + 16 + 8

    def resigned(body_bytes: bytes) -> bytes:
        return body_bytes + device.sign(prim.ctx("cairn/v1/approval/sig") + body_bytes)

    first_len = len(encode_item(approval.items[0]))
    second_len = len(encode_item(approval.items[1]))
    items_at = count_at + 4
    swapped = (raw[:items_at] + raw[items_at + first_len : items_at + first_len + second_len]
               + raw[items_at : items_at + first_len] + raw[items_at + first_len + second_len : len(raw) - 64])
    base = {"school_id": school, "device_pk": device.public}
    bad = [
        ("tampered_item", {"approval": flip(raw, count_at + 10)}, "bad_signature", "a bit of an item flipped after signing"),
        ("other_device", {"device_pk": SigningKey(rng.bytes(32)).public}, "bad_signature",
         "checked against another device's key: a device that did not approve"),
        ("other_school", {"school_id": rng.bytes(16)}, "no_key", "an approval made for another school"),
        ("unknown_version", {"approval": bytes([2]) + raw[1:]}, "unsupported_version", "approval version byte 2"),
        ("no_items", {"approval": resigned(raw[:count_at] + bytes(4))}, "parse_failure", "an approval of nothing"),
        ("unsorted_items", {"approval": resigned(swapped)}, "parse_failure",
         "validly signed, but the items are not in the order of their bytes: one approval has one encoding"),
        ("unknown_item_kind", {"approval": resigned(raw[:items_at] + b"\x09" + raw[items_at + 1 : len(raw) - 64])},
         "parse_failure", "an item of kind 9"),
        ("truncated", {"approval": raw[:-1]}, "parse_failure", "one byte short"),
        ("trailing", {"approval": raw + b"\0"}, "parse_failure", "one trailing byte"),
    ]
    assert body  # the signed bytes of the success case, used above through raw
    for condition, change, expect, comment in bad:
        i = {**base, "approval": raw, **change}
        expect_error(expect, lambda i=i: verify_approval(i["approval"], i["school_id"], i["device_pk"]))
        yield case("approval", "verify", condition, comment, expect, i)


def identity_binding_cases() -> Iterator[Case]:
    rng = Rng("identity_binding")
    school, user = rng.bytes(16), rng.bytes(16)
    identity, box = SigningKey(rng.bytes(32)), BoxKeyPair(rng.bytes(32))
    binding = sign_identity_binding(identity, school, user, box.public)
    inputs = {"identity_ed25519_seed": bytes(identity), "identity_ed25519_pk": identity.public, "school_id": school,
              "user_id": user, "identity_x25519_pk": box.public, "binding": binding}
    yield case("identity_binding", "sign", "success", "an account's Ed25519 identity key binds its X25519 identity key",
               "success", inputs, {"binding": binding})
    bad = [
        ("other_x25519_key", {"identity_x25519_pk": BoxKeyPair(rng.bytes(32)).public}, "bad_signature",
         "a hostile server pairs the account's Ed25519 key with an X25519 key of its own"),
        ("other_user", {"user_id": rng.bytes(16)}, "bad_signature", "a binding of one account replayed for another"),
        ("other_school", {"school_id": rng.bytes(16)}, "bad_signature", "a binding made in another school"),
        ("tampered", {"binding": flip(binding, 5)}, "bad_signature", "one bit of the binding flipped"),
        ("short", {"binding": binding[:63]}, "parse_failure", "a binding one byte short"),
    ]
    for condition, change, expect, comment in bad:
        i = {**inputs, **change}
        i.pop("identity_ed25519_seed")
        expect_error(expect, lambda i=i: verify_identity_binding(i["binding"], i["identity_ed25519_pk"], i["school_id"],
                                                                 i["user_id"], i["identity_x25519_pk"]))
        yield case("identity_binding", "verify", condition, comment, expect, i)


CASES = [directory_cases, approval_cases, identity_binding_cases]
