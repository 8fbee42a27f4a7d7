"""Envelopes, grants, roster entries and directory versions (crypto/): made by the real writers, then damaged."""

from __future__ import annotations

import os

from hypothesis import strategies as st

from crypto import (
    BoxKeyPair,
    CryptoError,
    GrantInfo,
    RosterEntry,
    SecretKey,
    SigningKey,
    make_grant,
    open_grant,
    open_roster_entry,
    read_grant,
    seal_roster_entry,
    verify_roster_entry,
)
from crypto import envelope as env
from crypto.directory import (
    DirAccount,
    DirClass,
    DirDevice,
    DirectoryContent,
    DirKey,
    DirPupil,
    check_content,
    encode_content,
    read_directory,
    sign_directory,
    verify_directory,
)
from crypto.wrap import WRAP_BYTES

from .junk import CRYPTO_CODES, mutate

__all__ = ["envelope_cases", "check_envelope", "grant_cases", "check_grant", "roster_cases", "check_roster_entry",
           "directory_contents", "directory_cases", "check_directory"]


def check_crypto_refusal(exc: CryptoError) -> str:
    assert exc.code in CRYPTO_CODES, exc.code
    return exc.code


# --- envelopes (crypto/envelope.py) ------------------------------------------------------------------------

_READERS = [BoxKeyPair.generate() for _ in range(4)]
_DEVICE = SigningKey.generate()
_DEVICE_ID = os.urandom(16)
_SCHOOL = os.urandom(16)
_RECIPIENTS = [env.Recipient(env.RECIPIENT_READER_KEY if i < 3 else env.RECIPIENT_PERSON, os.urandom(16), i + 1)
               for i in range(4)]

ids16 = st.binary(min_size=16, max_size=16)
u53 = st.one_of(st.integers(1, 2**53 - 1), st.sampled_from([1, 2**32, 2**53 - 1]))


@st.composite
def envelope_cases(draw: st.DrawFn) -> tuple[bytes, bytes, list[int]]:
    """A real envelope (any content size, pupils, recipients, counters), and the readers it was sealed to."""
    chosen = draw(st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True))
    content = draw(st.one_of(st.binary(max_size=300), st.integers(0, 70_000).map(bytes)))
    sealed = env.seal(
        kind=env.KIND_CONCERN_EVENT, school_id=_SCHOOL, envelope_id=draw(ids16), concern_id=draw(ids16),
        author_device=_DEVICE, author_device_id=_DEVICE_ID, counter=draw(u53), prev_hash=draw(st.binary(min_size=32,
        max_size=32)), device_time_ms=draw(st.integers(0, 2**53 - 1)), entry_key=SecretKey.generate(),
        entry_key_version=draw(st.integers(1, 2**32 - 1)), pupil_ids=draw(st.lists(ids16, max_size=32)),
        recipients=[(_RECIPIENTS[i], _READERS[i].public) for i in chosen], content=content,
    )
    return sealed, content, chosen


def _keyring(i: int) -> dict:
    r = _RECIPIENTS[i]
    return {(r.kind, r.id, r.version): _READERS[i]}


def check_envelope(case: tuple[bytes, bytes, list[int]], edits: list) -> str:
    """parse, verify and open a damaged envelope: a documented CryptoError, or (undamaged) the same content.
    What parses re-encodes to the very header bytes (one encoding per header); a damaged one never verifies."""
    sealed, content, chosen = case
    data = mutate(sealed, edits)
    try:
        parsed = env.parse(data)
        assert parsed.header.encode() == parsed.header_bytes
        env.verify(data, _DEVICE.public)
        assert data == sealed, "a damaged envelope verified"
        for i in range(4):
            try:
                opened = env.open(data, _DEVICE.public, _keyring(i))
            except CryptoError as exc:
                assert i not in chosen and exc.code == "no_key", (i, chosen, exc)
            else:
                assert i in chosen and opened.content == content
    except CryptoError as exc:
        assert data != sealed, f"an undamaged envelope was refused: {exc}"
        return check_crypto_refusal(exc)
    return "ok"


# --- grants (crypto/grant.py) -----------------------------------------------------------------------------

_MEMBER = BoxKeyPair.generate()


@st.composite
def grant_cases(draw: st.DrawFn) -> tuple[bytes, GrantInfo, BoxKeyPair]:
    info = GrantInfo(_SCHOOL, draw(ids16), draw(st.integers(1, 2**32 - 1)), draw(ids16), _DEVICE_ID,
                     draw(st.integers(0, 2**53 - 1)))
    reader = _READERS[draw(st.integers(0, 3))]
    return make_grant(info, reader, _MEMBER.public, _DEVICE), info, reader


def check_grant(case: tuple[bytes, GrantInfo, BoxKeyPair], edits: list) -> str:
    """read_grant and open_grant of a damaged grant: a documented CryptoError, or (undamaged) the same
    info and reader key. A damaged grant may still parse (read_grant checks no key), but never opens."""
    raw, info, reader = case
    data = mutate(raw, edits)
    try:
        got, signed, wrap, signature = read_grant(data)
        assert signed + signature == data and len(wrap) == WRAP_BYTES
        opened = open_grant(data, _MEMBER, _SCHOOL, got.member_id, _DEVICE.public, reader.public)
        assert data == raw and got == info and opened.public == reader.public, "a damaged grant opened"
    except CryptoError as exc:
        assert data != raw, f"an undamaged grant was refused: {exc}"
        return check_crypto_refusal(exc)
    return "ok"


# --- roster entries (crypto/roster.py) -------------------------------------------------------------------

@st.composite
def roster_cases(draw: st.DrawFn) -> tuple[bytes, RosterEntry, BoxKeyPair]:
    reader = _READERS[draw(st.integers(0, 3))]
    entry = RosterEntry(_SCHOOL, draw(ids16), draw(ids16), draw(st.integers(0, 2**32 - 1)), _DEVICE_ID,
                        draw(st.one_of(st.binary(max_size=600), st.integers(0, 16 * 1024).map(bytes))))
    return seal_roster_entry(reader, entry, _DEVICE), entry, reader


def check_roster_entry(case: tuple[bytes, RosterEntry, BoxKeyPair], edits: list) -> str:
    """verify_roster_entry (the server's check) and open_roster_entry of a damaged entry."""
    raw, entry, reader = case
    data = mutate(raw, edits)
    try:
        verified = verify_roster_entry(data, _DEVICE.public)
        assert data == raw, "a damaged roster entry verified"
        assert verified.pupil_id == entry.pupil_id and verified.content == b""
        opened = open_roster_entry(data, {(entry.key_id, entry.key_version): reader}, _SCHOOL, _DEVICE.public)
        assert opened == entry
    except CryptoError as exc:
        assert data != raw, f"an undamaged roster entry was refused: {exc}"
        return check_crypto_refusal(exc)
    return "ok"


# --- directory versions (crypto/directory.py) ----------------------------------------------------------------
# Built with the public functions only (sign_directory, read_directory, verify_directory), and the content
# classes by keyword through st.builds, so fields added to them later are drawn by hypothesis from their types.

_SIGNING = SigningKey.generate()
_NEXT = SigningKey.generate()
bytes32 = st.binary(min_size=32, max_size=32)
labels = st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(["Year 3 Oak", "é", "\u202e", "x" * 1024]))
roles = st.lists(st.sampled_from(["contributor", "teacher", "sen", "safeguarding", "admin"]), max_size=5, unique=True)


def _unique(strategy: st.SearchStrategy, key, size: int = 4) -> st.SearchStrategy[tuple]:  # type: ignore[no-untyped-def]
    return st.lists(strategy, max_size=size, unique_by=key).map(tuple)


accounts = st.builds(DirAccount, id=ids16, roles=roles.map(tuple), identity_x25519_pk=bytes32,
                     identity_ed25519_pk=bytes32, left=st.booleans(), login=labels, display_name=labels)
devices = st.builds(DirDevice, id=ids16, user_id=ids16, public_key=bytes32, revoked=st.booleans())
purposes = st.sampled_from(["pupil", "group:safeguarding", "group:sen", "roster:staff", "signing:directory"])
reader_keys = st.builds(DirKey, id=ids16, version=st.integers(1, 2**32 - 1), purpose=purposes, public_key=bytes32,
                        current=st.booleans())
pupils = st.builds(DirPupil, id=ids16, reader_key_id=ids16)
members = st.lists(ids16, max_size=3, unique=True).map(tuple)
classes = st.builds(DirClass, id=ids16, label=labels, pupils=members, teachers=members)
directory_contents = st.builds(
    DirectoryContent,
    accounts=_unique(accounts, lambda a: a.id),
    devices=_unique(devices, lambda d: d.id),
    reader_keys=_unique(reader_keys, lambda k: (k.id, k.version)),
    pupils=_unique(pupils, lambda x: x.id),
    classes=_unique(classes, lambda k: k.id, 3),
)


@st.composite
def directory_cases(draw: st.DrawFn) -> tuple[bytes, DirectoryContent, int]:
    """A version signed by ``_SIGNING`` (version 1 or a later one), or None when the content is one
    sign_directory refuses (a programmer's error, with a sentence)."""
    version = draw(st.one_of(st.just(1), st.integers(2, 2**53 - 1)))
    prev = bytes(32) if version == 1 else draw(bytes32.filter(any))
    content = draw(directory_contents)
    try:
        signed = sign_directory(_SIGNING, school_id=_SCHOOL, version=version, prev_hash=prev,
                                created_ms=draw(st.integers(0, 2**53 - 1)),
                                next_signing_pk=draw(st.sampled_from([_SIGNING.public, _NEXT.public])), content=content)
    except ValueError as exc:
        assert str(exc), "sign_directory refuses without a sentence"
        signed = b""
    return signed, content, version


def check_directory(case: tuple[bytes, DirectoryContent, int], edits: list) -> str:
    """read_directory and verify_directory of a damaged version: a documented CryptoError, or (undamaged)
    the content that was signed; the pin, the school and the previous version are each checked."""
    signed, content, version = case
    if not signed:
        return "not_signed"
    data = mutate(signed, edits)
    try:
        read = read_directory(data)
        assert data == signed, "a damaged directory read"
        assert encode_content(read.content) == encode_content(content) and read.version == version
        try:  # random bindings and certificates: verify_directory must refuse those, with bad_signature
            check_content(_SCHOOL, read.content)
        except CryptoError as exc:
            assert exc.code == "bad_signature", exc
            return check_crypto_refusal(exc)
        verify_directory(data, _SCHOOL, _SIGNING.public)
        wrong = ((os.urandom(16), _SIGNING.public, "no_key"), (_SCHOOL, _NEXT.public, "bad_signature"))
        for school, pin, code in wrong:
            try:
                verify_directory(data, school, pin)
            except CryptoError as exc:
                assert exc.code == code, exc
            else:
                raise AssertionError(f"verify_directory accepted a version it should refuse with {code}")
        try:
            verify_directory(data, _SCHOOL, _SIGNING.public, previous=read)
        except CryptoError as exc:
            assert exc.code == "rollback", exc
        else:
            raise AssertionError("verify_directory accepted the version it already holds")
    except CryptoError as exc:
        assert data != signed, f"an undamaged directory was refused: {exc}"
        return check_crypto_refusal(exc)
    return "ok"

