"""Signed directory vectors: versions accepted in order and through a rotation, and every refusal."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from crypto import _primitives as prim
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
    sign_directory,
    verify_directory,
)
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


def _school(rng: Rng, signing_readers: list[BoxKeyPair]) -> DirectoryContent:
    dsl, teacher = rng.bytes(16), rng.bytes(16)
    accounts = [
        DirAccount(dsl, ("safeguarding", "admin"), rng.bytes(32), SigningKey(rng.bytes(32)).public, False, "dsl", "Fictional DSL"),
        DirAccount(teacher, ("teacher",), rng.bytes(32), SigningKey(rng.bytes(32)).public, False, "t.oak", "Ms Fictional Oak \u00e9"),
    ]
    devices = [DirDevice(rng.bytes(16), dsl, SigningKey(rng.bytes(32)).public, False),
               DirDevice(rng.bytes(16), teacher, SigningKey(rng.bytes(32)).public, True)]
    signing_id = rng.bytes(16)
    keys = [DirKey(rng.bytes(16), 1, "group:safeguarding", rng.bytes(32), True)]
    keys += [DirKey(signing_id, v + 1, "signing:directory", r.public, v == len(signing_readers) - 1) for v, r in enumerate(signing_readers)]
    pupil_key = DirKey(rng.bytes(16), 1, "pupil", rng.bytes(32), True)
    keys.append(pupil_key)
    pupil = DirPupil(rng.bytes(16), pupil_key.id)
    classes = [DirClass(rng.bytes(16), "Year 3 Oak", (pupil.id,), (teacher,))]
    return DirectoryContent(tuple(accounts), tuple(devices), tuple(keys), (pupil,), tuple(classes))


def directory_cases() -> Iterator[Case]:
    rng = Rng("directory")
    school = rng.bytes(16)
    reader1, reader2 = BoxKeyPair(rng.bytes(32)), BoxKeyPair(rng.bytes(32))
    key1, key2 = directory_signing_key(reader1), directory_signing_key(reader2)
    c1 = _school(rng, [reader1])
    c3 = _school(rng, [reader1, reader2])

    def signed(key: SigningKey, version: int, prev: bytes, content: DirectoryContent, next_pk: bytes | None = None) -> bytes:
        return sign_directory(key, school_id=school, version=version, prev_hash=prev, created_ms=T0 + version,
                              next_signing_pk=next_pk or key.public, content=content)

    v1 = signed(key1, 1, bytes(32), c1)
    v2 = signed(key1, 2, directory_hash(v1), c3, key2.public)  # announces the rotation to key 2
    v3 = signed(key2, 3, directory_hash(v2), c3)
    successes = [
        ("first_success", reader1, 1, bytes(32), c1, key1.public, None, key1.public, v1,
         "version 1 accepted at first sign-in: the device pins the key that signed it"),
        ("rotation_announced_success", reader1, 2, directory_hash(v1), c3, key1.public, v1, key2.public, v2,
         "version 2, signed by the pinned key, announces the next signing key"),
        ("rotated_success", reader2, 3, directory_hash(v2), c3, key2.public, v2, key2.public, v3,
         "version 3 signed by the key version 2 announced"),
    ]
    for condition, reader, version, prev, content, pinned, previous, next_pk, data, comment in successes:
        inputs = {"school_id": school, "signing_reader_sk": bytes(reader), "version": version, "prev_hash": prev,
                  "created_ms": T0 + version, "next_signing_pk": next_pk, "content": content_json(content),
                  "pinned_pk": pinned, "previous": previous, "signed": data}
        d = verify_directory(data, school, pinned, read_directory(previous) if previous else None)
        yield case("directory", "verify", condition, comment, "success", inputs, {
            "signing_pk": d.signing_pk, "hash": directory_hash(data), "content_bytes": encode_content(content),
            "fingerprint": fingerprint(school, d.signing_pk),
        })
    jump = signed(key1, 5, rng.bytes(32), c1)
    yield case("directory", "verify", "skipped_versions_success",
               "version 5 after version 1: a device that missed versions accepts the newest one signed by its pin",
               "success", {"school_id": school, "pinned_pk": key1.public, "previous": v1, "signed": jump},
               {"signing_pk": key1.public, "hash": directory_hash(jump), "fingerprint": fingerprint(school, key1.public)})

    stranger = SigningKey(rng.bytes(32))
    body_end = len(v1) - 64

    def resign(body: bytes, key: SigningKey = key1) -> bytes:
        return body + key.sign(prim.ctx("cairn/v1/directory/sig") + body)

    header = 1 + 16 + 8 + 32 + 8 + 32 + 32
    # the accounts are sorted by id: swapping the encoded order of the two accounts breaks the rule
    unsorted_body = v1[:header] + _unsorted_accounts(c1) + v1[header + len(encode_content(c1)) : body_end]
    left_at = header + 4 + 16 + 1 + 64  # the first account's left flag
    base = {"school_id": school, "pinned_pk": key1.public, "previous": None}
    bad = [
        ("tampered_body", {"signed": flip(v1, header + 30)}, "bad_signature", "one bit of an identity key flipped"),
        ("tampered_signature", {"signed": flip(v1, len(v1) - 3)}, "bad_signature", "one bit of the signature flipped"),
        ("unpinned_key", {"signed": signed(stranger, 2, directory_hash(v1), c1), "previous": v1}, "bad_signature",
         "a valid version signed by a key the device has not pinned: a hostile server's own key"),
        ("rotation_not_announced", {"signed": signed(key2, 2, directory_hash(v1), c3), "previous": v1}, "bad_signature",
         "signed by the new key, but no version signed by the old key announced it"),
        ("version_backwards", {"signed": v1, "previous": v2}, "rollback", "version 1 served to a device that holds version 2"),
        ("same_version_other_body", {"signed": signed(key1, 1, bytes(32), c3)}, "rollback",
         "another version 1, served to a device that holds version 1: a fork"),
        ("fork", {"signed": signed(key1, 2, rng.bytes(32), c1), "previous": v1}, "rollback",
         "version 2 whose previous hash is not the version 1 this device holds"),
        ("other_school", {"school_id": rng.bytes(16)}, "no_key", "a directory of another school"),
        ("unknown_version", {"signed": bytes([2]) + v1[1:]}, "unsupported_version", "directory version byte 2"),
        ("version_zero", {"signed": resign(v1[:17] + bytes(8) + v1[25:body_end])}, "parse_failure",
         "a validly signed directory version 0: versions start at 1"),
        ("unsorted_accounts", {"signed": resign(unsorted_body)}, "parse_failure",
         "validly signed, but the accounts are not sorted by id: one directory has one encoding"),
        ("flag_not_boolean", {"signed": resign(v1[:left_at] + b"\x02" + v1[left_at + 1 : body_end])}, "parse_failure",
         "validly signed, but a left flag is 2"),
        ("truncated", {"signed": v1[:-1]}, "parse_failure", "one byte short"),
        ("trailing", {"signed": v1 + b"\0"}, "parse_failure", "one trailing byte"),
    ]
    for condition, change, expect, comment in bad:
        inputs = {**base, "signed": v1, **change}
        if condition == "same_version_other_body":
            inputs["previous"] = v1
        if condition in ("rotation_not_announced",):
            inputs["pinned_pk"] = key1.public
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


CASES = [directory_cases]
