"""The signed directory construct (crypto/directory.py) beyond its shared vectors: canonical order, the
signing key's derivation, fingerprints, and following a rotation chain (sync/directory.py)."""

from __future__ import annotations

import dataclasses
import os
import re

import pytest

from crypto import BoxKeyPair, DeviceCert, SigningKey, make_device_cert, sign_identity_binding
from crypto.directory import (
    DirAccount,
    DirClass,
    DirDevice,
    DirectoryContent,
    DirKey,
    DirPupil,
    directory_signing_key,
    encode_content,
    fingerprint,
    read_directory,
    sign_directory,
    verify_directory,
)
from crypto.errors import BadSignature, Rollback
from sync.directory import DirectoryRefused, follow, listing
from sync.protocol import b64e

SCHOOL = os.urandom(16)


def _content(n: int = 3) -> DirectoryContent:
    """n teachers of one class, each with a device, bound and certified by their own identity keys."""
    accounts, devices = [], []
    for i in range(n):
        user, identity, box, device_id = os.urandom(16), SigningKey.generate(), BoxKeyPair.generate(), os.urandom(16)
        binding = sign_identity_binding(identity, SCHOOL, user, box.public)
        accounts.append(
            DirAccount(user, ("teacher",), box.public, identity.public, binding, False, f"t{i}", f"Teacher {i}")
        )
        device_pk = SigningKey.generate().public
        cert = make_device_cert(identity, DeviceCert(SCHOOL, user, device_id, device_pk, 5))
        devices.append(DirDevice(device_id, user, device_pk, 5, cert[89:], False))
    keys = tuple(DirKey(os.urandom(16), 1, "pupil", os.urandom(32), True) for _ in range(n))
    pupils = tuple(DirPupil(os.urandom(16), k.id) for k in keys)
    classes = (DirClass(os.urandom(16), "Year 1", tuple(p.id for p in pupils), tuple(a.id for a in accounts)),)
    return DirectoryContent(tuple(accounts), tuple(devices), keys, pupils, classes)


def _sign(key: SigningKey, version: int, prev: bytes, content: DirectoryContent, next_pk: bytes | None = None,
          approvals: tuple[bytes, ...] = ()) -> bytes:
    return sign_directory(key, school_id=SCHOOL, version=version, prev_hash=prev, created_ms=1,
                          next_signing_pk=next_pk or key.public, content=content, approvals=approvals)


def test_content_encoding_does_not_depend_on_list_order() -> None:
    c = _content()
    shuffled = dataclasses.replace(c, accounts=c.accounts[::-1], pupils=c.pupils[::-1], reader_keys=c.reader_keys[::-1])
    assert encode_content(c) == encode_content(shuffled)


def test_a_duplicate_id_cannot_be_signed() -> None:
    c = _content()
    with pytest.raises(ValueError, match="duplicates"):
        encode_content(dataclasses.replace(c, accounts=c.accounts + c.accounts[:1]))


def test_unknown_roles_and_empty_names_cannot_be_signed() -> None:
    c = _content(1)
    bad_role = dataclasses.replace(c.accounts[0], roles=("janitor",))
    with pytest.raises(ValueError, match="unknown roles"):
        encode_content(dataclasses.replace(c, accounts=(bad_role,)))
    with pytest.raises(ValueError, match="UTF-8"):
        encode_content(dataclasses.replace(c, accounts=(dataclasses.replace(c.accounts[0], display_name=""),)))


def test_the_signing_key_is_derived_from_the_reader_key_and_the_fingerprint_reads_in_groups() -> None:
    reader = BoxKeyPair.generate()
    assert directory_signing_key(reader).public == directory_signing_key(BoxKeyPair(bytes(reader))).public
    assert directory_signing_key(reader).public != directory_signing_key(BoxKeyPair.generate()).public
    fp = fingerprint(SCHOOL, directory_signing_key(reader).public)
    assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{4} ){5}[0-9A-HJKMNP-TV-Z]{4}", fp)
    assert fp != fingerprint(os.urandom(16), directory_signing_key(reader).public)  # bound to the school


def test_a_round_trip_keeps_every_field() -> None:
    key, c = SigningKey.generate(), _content()
    d = read_directory(_sign(key, 1, bytes(32), c))
    assert encode_content(d.content) == encode_content(c)
    assert {a.login for a in d.content.accounts} == {a.login for a in c.accounts}
    assert d.content.classes[0].label == "Year 1" and len(d.content.classes[0].pupils) == 3


def test_follow_takes_every_version_and_refuses_a_shortcut() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    c = _content()
    keyholder = c.accounts[0]
    c = dataclasses.replace(c, accounts=(dataclasses.replace(keyholder, roles=("safeguarding",)), *c.accounts[1:]))
    v1 = _sign(old, 1, bytes(32), c)
    held = verify_directory(v1, SCHOOL, None)
    announcing = _sign(old, 2, held.hash, c, new.public)
    with pytest.raises(DirectoryRefused) as unapproved:  # a new signing key is a widening: it needs an approval
        follow({"signed": b64e(announcing), "links": []}, SCHOOL, old.public, held)
    assert unapproved.value.code == "unapproved"
    v2 = _sign(old, 2, held.hash, c)
    v3 = _sign(old, 3, read_directory(v2).hash, c)
    v4 = _sign(old, 4, read_directory(v3).hash, c)
    followed = follow({"signed": b64e(v4), "links": [b64e(v2), b64e(v3)]}, SCHOOL, old.public, held)
    assert followed is not None and followed.directory.version == 4 and followed.pinned_pk == old.public
    with pytest.raises(DirectoryRefused) as shortcut:  # every version is followed: each is approved against the last
        follow({"signed": b64e(v4), "links": [b64e(v3)]}, SCHOOL, old.public, held)
    assert shortcut.value.code == Rollback.code
    with pytest.raises(DirectoryRefused) as backwards:
        follow({"signed": b64e(v3), "links": []}, SCHOOL, old.public, followed.directory)
    assert backwards.value.code == Rollback.code
    with pytest.raises(DirectoryRefused) as stranger:
        follow({"signed": b64e(_sign(new, 5, followed.directory.hash, c)), "links": []}, SCHOOL, old.public,
               followed.directory)
    assert stranger.value.code == BadSignature.code


def test_the_same_version_served_again_changes_nothing_and_no_version_after_one_is_refused() -> None:
    key, c = SigningKey.generate(), _content()
    v1 = _sign(key, 1, bytes(32), c)
    held = verify_directory(v1, SCHOOL, None)
    again = follow({"signed": b64e(v1), "links": []}, SCHOOL, key.public, held)
    assert again is not None and again.directory is held
    assert follow({"signed": None, "links": []}, SCHOOL, None, None) is None
    with pytest.raises(DirectoryRefused):
        follow({"signed": None, "links": []}, SCHOOL, key.public, held)


def test_the_listing_is_the_signed_content_only() -> None:
    key, c = SigningKey.generate(), _content()
    shown = listing(read_directory(_sign(key, 1, bytes(32), c)))
    assert shown["version"] == 1
    assert {k["id"] for k in shown["reader_keys"]} == {b64e(k.id) for k in c.reader_keys}
    assert all("cert" not in d for d in shown["devices"])
