"""Key classes: exact lengths, constant-time equality, and no key bytes in repr, str or pickles."""

from __future__ import annotations

import pickle

import pytest

from crypto import BoxKeyPair, SecretKey, SigningKey


@pytest.mark.parametrize("cls", [SecretKey, BoxKeyPair, SigningKey])
def test_repr_and_str_never_show_key_bytes(cls) -> None:
    key = cls.generate()
    raw = bytes(key)
    for text in (repr(key), str(key), f"{key}", repr([key])):
        assert raw.hex() not in text and raw.hex()[:8] not in text
        assert str(raw) not in text


@pytest.mark.parametrize("cls", [SecretKey, BoxKeyPair, SigningKey])
@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_wrong_length_fails_at_construction_with_a_sentence(cls, length) -> None:
    with pytest.raises(ValueError, match=f"exactly 32 bytes, not {length}"):
        cls(bytes(length))


def test_keys_are_not_made_from_text() -> None:
    with pytest.raises(TypeError, match="made from bytes"):
        SecretKey("0" * 32)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [SecretKey, BoxKeyPair, SigningKey])
def test_keys_refuse_to_be_pickled(cls) -> None:
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(cls.generate())


def test_equality_compares_bytes_and_type() -> None:
    raw = bytes(range(32))
    assert SecretKey(raw) == SecretKey(raw)
    assert SecretKey(raw) != SecretKey(bytes(32))
    assert SecretKey(raw) != BoxKeyPair(raw)


def test_public_halves_are_derived() -> None:
    pair = BoxKeyPair(bytes(range(32)))
    assert len(pair.public) == 32 and pair.public != bytes(pair)
    signing = SigningKey(bytes(range(32)))
    assert len(signing.public) == 32 and len(signing.sign(b"m")) == 64
