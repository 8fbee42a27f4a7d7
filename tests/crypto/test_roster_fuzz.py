"""Fuzzing roster entries (crypto/roster.py): a damaged entry is refused by verify_roster_entry (the
server's check) and open_roster_entry with a documented CryptoError, never another exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.fuzz.junk import mutations
from tests.fuzz.sealed import check_roster_entry, roster_cases


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(roster_cases(), mutations)
def test_a_damaged_roster_entry_is_refused_with_a_documented_code(case, edits) -> None:  # type: ignore[no-untyped-def]
    check_roster_entry(case, edits)
