"""Fuzzing directory versions (crypto/directory.py), built through its public functions only: any content
either signs (and reads back the same, verifies against its pin, school and previous version) or is refused
by sign_directory with a sentence; a damaged version is refused by read_directory and verify_directory with
a documented CryptoError, never another exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.fuzz.junk import mutations
from tests.fuzz.sealed import check_directory, directory_cases


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(directory_cases(), mutations)
def test_a_damaged_directory_version_is_refused_with_a_documented_code(case, edits) -> None:  # type: ignore[no-untyped-def]
    check_directory(case, edits)
