"""Account keys, bundles and recovery keys: behaviour the vectors do not pin down by themselves."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto import (
    SLOT_PASSWORD,
    SLOT_RECOVERY,
    CryptoError,
    IdentityKeys,
    KdfParams,
    Malformed,
    ParametersBelowFloor,
    SecretKey,
    UnsupportedVersion,
    derive_account,
    format_recovery_key,
    generate_recovery_key,
    open_bundle,
    parse_recovery_key,
    recovery_kek,
    seal_bundle,
)
from crypto.account import MEMLIMIT_FLOOR, OPSLIMIT_FLOOR


def test_new_parameters_meet_the_floor_with_a_fresh_salt() -> None:
    a, b = KdfParams.new(), KdfParams.new()
    assert (a.opslimit, a.memlimit) == (OPSLIMIT_FLOOR, MEMLIMIT_FLOOR)
    assert a.salt != b.salt
    assert KdfParams.decode(a.encode()) == a


def test_parameters_below_floor_cannot_even_be_constructed() -> None:
    with pytest.raises(ParametersBelowFloor):
        KdfParams(2, MEMLIMIT_FLOOR, bytes(16))
    assert issubclass(ParametersBelowFloor, UnsupportedVersion)


def test_different_passwords_and_salts_give_different_keys() -> None:
    params = KdfParams.new()
    a = derive_account("a long fictional passphrase", params)
    b = derive_account("a long fictional passphrase!", params)
    c = derive_account("a long fictional passphrase", KdfParams.new())
    assert len({a.login.public, b.login.public, c.login.public}) == 3
    assert a.kek != b.kek and bytes(a.kek) != bytes(a.login)


def test_bundle_opens_from_either_slot_and_only_its_own() -> None:
    identity, school, user = IdentityKeys.generate(), os.urandom(16), os.urandom(16)
    password_kek, secret = SecretKey.generate(), generate_recovery_key()
    by_password = seal_bundle(identity, password_kek, SLOT_PASSWORD, school, user)
    by_recovery = seal_bundle(identity, recovery_kek(secret), SLOT_RECOVERY, school, user)
    slots = [(by_password, password_kek, SLOT_PASSWORD), (by_recovery, recovery_kek(secret), SLOT_RECOVERY)]
    for sealed, kek, slot in slots:
        opened = open_bundle(sealed, kek, slot, school, user)
        assert opened.box == identity.box and opened.signing == identity.signing
    with pytest.raises(Malformed):
        open_bundle(by_password, password_kek, SLOT_RECOVERY, school, user)


def test_errors_never_carry_key_bytes() -> None:
    identity, kek = IdentityKeys.generate(), SecretKey.generate()
    sealed = bytearray(seal_bundle(identity, kek, SLOT_PASSWORD, bytes(16), bytes(16)))
    sealed[40] ^= 1
    with pytest.raises(CryptoError) as err:
        open_bundle(bytes(sealed), kek, SLOT_PASSWORD, bytes(16), bytes(16))
    message = str(err.value) + repr(err.value)
    for secret in (bytes(kek), bytes(identity.box), bytes(identity.signing)):
        assert secret.hex()[:8] not in message
    assert message.startswith("opening bundle")


@settings(max_examples=200)
@given(secret=st.binary(min_size=20, max_size=20))
def test_recovery_keys_round_trip_through_their_printed_form(secret) -> None:
    text = format_recovery_key(secret)
    groups = text.split("-")
    assert len(groups) == 9 and all(len(g) == 4 for g in groups)
    assert parse_recovery_key(text) == secret
    assert parse_recovery_key(text.lower().replace("-", " ")) == secret


def test_every_single_mistyped_character_is_caught() -> None:
    """Exhaustive for one fixed key: all 36 x 31 substitutions raise, none yields a wrong key."""
    chars = list(format_recovery_key(bytes(range(20))).replace("-", ""))
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    for pos in range(len(chars)):
        for replacement in alphabet:
            if replacement == chars[pos]:
                continue
            typo = chars.copy()
            typo[pos] = replacement
            with pytest.raises(Malformed, match="typo"):
                parse_recovery_key("".join(typo))
