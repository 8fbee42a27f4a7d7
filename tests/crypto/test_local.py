"""Local sealing under the device data key (docs/PROTOCOL.md 2.8, 12): a round trip through a rewrap, every
bit of a wrap and a record bound, and no key bytes or plaintext in any error a refusal raises."""

from __future__ import annotations

import os

import pytest

from crypto import (
    CryptoError,
    DecryptionFailed,
    Malformed,
    SecretKey,
    UnsupportedVersion,
    identity_wrap_key,
    new_data_key,
    open_local,
    password_wrap_key,
    seal_local,
    unwrap_data_key,
    wrap_data_key,
)
from crypto.local import SLOT_IDENTITY, SLOT_PASSWORD, WRAP_BYTES

IDS = (os.urandom(16), os.urandom(16), os.urandom(16))
PLAINTEXT = b'{"observed": "fictional: a draft kept across a password change"}'


def test_a_rewrap_under_a_new_password_opens_every_record_sealed_before_it() -> None:
    data_key, old, new, identity = new_data_key(), SecretKey.generate(), SecretKey.generate(), os.urandom(32)
    sealed = seal_local(data_key, IDS[0], IDS[1], "draft", bytes(16), PLAINTEXT)
    wrap = wrap_data_key(data_key, password_wrap_key(old), SLOT_PASSWORD, *IDS)
    by_identity = wrap_data_key(data_key, identity_wrap_key(identity), SLOT_IDENTITY, *IDS)
    assert len(wrap) == len(by_identity) == WRAP_BYTES
    opened = unwrap_data_key(wrap, password_wrap_key(old), SLOT_PASSWORD, *IDS)
    rewrapped = wrap_data_key(opened, password_wrap_key(new), SLOT_PASSWORD, *IDS)
    for key, slot, w in ((new, SLOT_PASSWORD, rewrapped), (None, SLOT_IDENTITY, by_identity)):
        wrapping = password_wrap_key(key) if key else identity_wrap_key(identity)
        again = unwrap_data_key(w, wrapping, slot, *IDS)
        assert open_local(again, IDS[0], IDS[1], "draft", bytes(16), sealed) == PLAINTEXT
    with pytest.raises(DecryptionFailed):
        unwrap_data_key(rewrapped, password_wrap_key(old), SLOT_PASSWORD, *IDS)


def test_every_bit_of_a_wrap_is_bound_and_no_refusal_shows_key_bytes() -> None:
    data_key, kek = new_data_key(), SecretKey.generate()
    wrap = wrap_data_key(data_key, password_wrap_key(kek), SLOT_PASSWORD, *IDS)
    for i in range(len(wrap)):
        for bit in (0, 7):
            bad = bytearray(wrap)
            bad[i] ^= 1 << bit
            with pytest.raises(CryptoError) as caught:
                unwrap_data_key(bytes(bad), password_wrap_key(kek), SLOT_PASSWORD, *IDS)
            expected = UnsupportedVersion if i == 0 else Malformed if i == 1 else DecryptionFailed
            assert isinstance(caught.value, expected), (i, bit, caught.value)
            for secret in (bytes(data_key), bytes(kek)):
                assert secret.hex() not in str(caught.value) and str(secret) not in str(caught.value)


def test_every_bit_of_a_record_is_bound_and_no_refusal_shows_plaintext() -> None:
    data_key = new_data_key()
    sealed = seal_local(data_key, IDS[0], IDS[1], "audit", bytes(16), PLAINTEXT)
    for i in range(len(sealed)):
        bad = bytearray(sealed)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError) as caught:
            open_local(data_key, IDS[0], IDS[1], "audit", bytes(16), bytes(bad))
        assert b"fictional" not in str(caught.value).encode() and bytes(data_key).hex() not in str(caught.value)


def test_a_wrap_refuses_a_slot_that_is_not_one() -> None:
    with pytest.raises(ValueError, match="slot is 1"):
        wrap_data_key(new_data_key(), SecretKey.generate(), 3, *IDS)
