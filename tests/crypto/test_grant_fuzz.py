"""Fuzzing grants (crypto/grant.py): a damaged grant is refused by read_grant or open_grant with a
documented CryptoError and never another exception; it may parse (the server's read checks no key) but
never opens; an undamaged one opens to the reader key it holds."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.fuzz.junk import mutations
from tests.fuzz.sealed import check_grant, grant_cases


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grant_cases(), mutations)
def test_a_damaged_grant_is_refused_with_a_documented_code(case, edits) -> None:  # type: ignore[no-untyped-def]
    check_grant(case, edits)
