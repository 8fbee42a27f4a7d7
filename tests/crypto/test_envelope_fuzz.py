"""Fuzzing envelopes (crypto/envelope.py): real envelopes of every shape, damaged by bit flips, cuts,
insertions and extreme counts, are refused by parse, verify and open with a documented CryptoError (docs/
PROTOCOL.md 1.1) and never another exception; a header that parses has one encoding; a damaged envelope
never verifies; an undamaged one opens for its recipients only."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.fuzz.junk import mutations
from tests.fuzz.sealed import check_envelope, envelope_cases


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelope_cases(), mutations)
def test_a_damaged_envelope_is_refused_with_a_documented_code(case, edits) -> None:  # type: ignore[no-untyped-def]
    check_envelope(case, edits)
