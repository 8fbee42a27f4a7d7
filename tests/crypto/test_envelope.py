"""Envelope properties: any body and recipient set round-trips; any single-bit flip is refused."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import BoxKeyPair, CryptoError, NoKey, SecretKey, SigningKey
from crypto import envelope as env

DEVICE = SigningKey.generate()
DEVICE_ID = os.urandom(16)
KEYS = [BoxKeyPair.generate() for _ in range(6)]


def _recipient(i: int) -> env.Recipient:
    kind = env.RECIPIENT_PERSON if i % 3 == 2 else env.RECIPIENT_READER_KEY
    return env.Recipient(kind, bytes([i]) * 16, 1 + i)


def seal(content: bytes, chosen: list[int], pupils: int = 1, counter: int = 1) -> bytes:
    return env.seal(
        kind=env.KIND_CONCERN_EVENT, school_id=b"S" * 16, envelope_id=os.urandom(16), concern_id=b"C" * 16,
        author_device=DEVICE, author_device_id=DEVICE_ID, counter=counter, prev_hash=bytes(32),
        device_time_ms=1_790_000_000_000, entry_key=SecretKey.generate(), entry_key_version=1,
        pupil_ids=[os.urandom(16) for _ in range(pupils)],
        recipients=[(_recipient(i), KEYS[i].public) for i in chosen], content=content,
    )


def keyring(i: int) -> dict:
    r = _recipient(i)
    return {(r.kind, r.id, r.version): KEYS[i]}


@settings(max_examples=60, deadline=None)
@given(
    content=st.binary(max_size=5000),
    chosen=st.lists(st.integers(0, 5), min_size=1, max_size=6, unique=True),
    pupils=st.integers(0, 32),
    data=st.data(),
)
def test_seal_open_round_trips_for_any_body_and_recipients(content, chosen, pupils, data) -> None:
    sealed = seal(content, chosen, pupils)
    reader = data.draw(st.sampled_from(chosen))
    opened = env.open(sealed, DEVICE.public, keyring(reader))
    assert opened.content == content
    assert env.parse(sealed).padded_size == env.padded_size(len(content))
    outsiders = [i for i in range(6) if i not in chosen]
    for outsider in outsiders[:1]:
        with pytest.raises(NoKey):
            env.open(sealed, DEVICE.public, keyring(outsider))


SAMPLE = seal(b"a fictional narrative about a fictional child " * 20, [0, 1, 2], pupils=2)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bit=st.integers(0, len(SAMPLE) * 8 - 1))
def test_any_single_bit_flip_is_refused_with_a_typed_error(bit) -> None:
    flipped = bytearray(SAMPLE)
    flipped[bit // 8] ^= 1 << (bit % 8)
    for reader in (0, 1, 2):
        with pytest.raises(CryptoError):
            env.open(bytes(flipped), DEVICE.public, keyring(reader))


def test_every_region_of_the_envelope_is_flipped_exhaustively_at_its_edges() -> None:
    """Besides the random sample above: the first and last bit of every byte of the header and
    of the first 64 bytes of each later region, so no region is left to chance."""
    parsed = env.parse(SAMPLE)
    header = len(parsed.header_bytes)
    starts = [0, header, header + 32, header + 32 + 80 * 3, header + 32 + 80 * 3 + 4, len(SAMPLE) - 64]
    positions = set(range(header))
    for start in starts[1:]:
        positions |= set(range(start, min(start + 64, len(SAMPLE))))
    for pos in sorted(positions):
        for bit in (0, 7):
            flipped = bytearray(SAMPLE)
            flipped[pos] ^= 1 << bit
            with pytest.raises(CryptoError):
                env.open(bytes(flipped), DEVICE.public, keyring(0))


def test_seal_refuses_content_over_the_limit_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="at most"):
        seal(bytes(env.MAX_CONTENT + 1), [0])


def test_seal_refuses_repeated_recipients() -> None:
    with pytest.raises(ValueError, match="distinct"):
        seal(b"x", [0, 0])


def test_envelope_hash_chains_differ_for_each_envelope() -> None:
    a, b = seal(b"x", [0]), seal(b"x", [0])
    assert env.envelope_hash(a) != env.envelope_hash(b)
    assert len(env.envelope_hash(a)) == 32


def test_verify_is_the_servers_check_and_needs_no_reader_key() -> None:
    parsed = env.verify(SAMPLE, DEVICE.public)
    assert parsed.header.author_device == DEVICE_ID
    with pytest.raises(CryptoError) as err:
        env.verify(SAMPLE, SigningKey.generate().public)
    assert err.value.code == "bad_signature"


def test_padding_hides_length_within_a_bucket() -> None:
    assert env.parse(seal(b"a" * 10, [0])).padded_size == env.parse(seal(b"a" * 200, [0])).padded_size == 256
