"""Fuzzing the staff file reader (server/_staff_csv.py): any text gets rows that can be stored as they are,
or a StaffCsvError naming each problem by line and column with a code of docs/PROTOCOL.md 10.3; never
another exception. The HTTP route that takes the file is fuzzed with the others in test_http_fuzz.py."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.fuzz.staff import check_staff_csv, staff_files


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(staff_files())
def test_a_staff_file_gets_storable_rows_or_documented_codes(text: str) -> None:
    check_staff_csv(text)
