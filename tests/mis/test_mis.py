"""Pupil files from the MIS (sync/mis.py): SIMS, Arbor and Bromcom CSV exports and Common Transfer Files, made up
by tests/mis/_files.py with the quirks of real ones; every problem found by line and column with a stable code,
and a file with any problem yields no pupil at all."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings

from sync.mis import FILE_CODES, PROBLEMS, MisFileError, detect_columns, read_csv, read_file
from tests.fuzz.mis import check_mis_file, mis_files

from ._files import HEADINGS, csv_export, ctf_expected, ctf_export, expected, make_upn, pupils

SCHOOL = pupils(60, seed=3)


@pytest.mark.parametrize("system", sorted(HEADINGS))
def test_each_system_s_export_is_read_whole_with_its_columns_found_and_the_rest_listed(system: str) -> None:
    read = read_file(csv_export(SCHOOL, system))
    assert read.ok and read.format == "csv"
    assert list(read.pupils) == expected(SCHOOL, system)
    assert set(read.columns.values()) == set(HEADINGS[system].values())
    assert read.ignored  # Gender, Ethnicity, House, Attendance %: shown to the person, not read


def test_the_quirks_of_real_files_change_nothing() -> None:
    plain = read_csv(csv_export(SCHOOL, "sims", bom=False, crlf=False))
    for quirky in (csv_export(SCHOOL, "sims", bom=True, crlf=True), csv_export(SCHOOL, "sims", encoding="cp1252")):
        assert read_csv(quirky).pupils == plain.pupils
    assert any("," in p.legal_surname for p in plain.pupils)  # a quoted comma stayed in its column
    assert any("ë" in p.legal_surname for p in plain.pupils)  # Windows-1252 and UTF-8 alike
    blank = [p for p in plain.pupils if p.preferred_forename == p.legal_forename]
    assert blank and all(p.preferred_surname == p.legal_surname for p in plain.pupils)  # blank preferred: legal


@pytest.mark.parametrize("namespace", [False, True])
def test_a_common_transfer_file_is_read_with_what_a_ctf_carries(namespace: bool) -> None:
    read = read_file(ctf_export(SCHOOL, namespace=namespace))
    assert read.ok and read.format == "ctf"
    assert list(read.pupils) == ctf_expected(SCHOOL)


def test_every_problem_is_named_by_line_and_column_and_nothing_is_read() -> None:
    rows = pupils(6, seed=9)
    bad_upn = rows[1].upn[0] + rows[1].upn[1:12] + ("1" if rows[1].upn[12] != "1" else "2")
    rows[1] = replace(rows[1], upn=bad_upn)  # the check letter no longer matches
    rows[3] = replace(rows[3], upn=rows[0].upn)  # the same pupil twice
    data = csv_export(rows, "sims", bom=False, crlf=False).decode()
    lines = data.split("\n")
    lines[3] = lines[3].replace(rows[2].date_of_birth.strftime("%d/%m/%Y"), "31/02/2019")  # no such day
    lines[5] = lines[5].replace(f",{rows[4].year_group},", ",Year 19,")
    lines[6] = lines[6].replace(f"{rows[5].legal_forename},", ",", 1)  # no legal forename
    read = read_csv("\n".join(lines).encode())
    assert not read.ok and read.pupils == ()
    found = {(p.line, p.column, p.code) for p in read.problems}
    assert found == {
        (3, "UPN", "bad_check_letter"), (5, "UPN", "duplicate_upn"), (4, "DOB", "bad_date"),
        (6, "Year", "bad_year_group"), (7, "Legal Forename", "missing"),
    }
    assert all(p.message.startswith(f"line {p.line}, {p.column}: ") for p in read.problems)
    assert all(p.code in PROBLEMS for p in read.problems)


def test_columns_found_twice_missing_or_chosen_by_hand() -> None:
    with pytest.raises(MisFileError) as twice:
        detect_columns(["UPN", "Surname", "Legal Surname", "Forename", "DOB", "Year"])
    assert twice.value.code == "ambiguous_columns" and "legal_surname" in str(twice.value)
    with pytest.raises(MisFileError) as missing:
        read_csv(b"UPN,Surname,Forename\r\nA,B,C\r\n")
    assert missing.value.code == "missing_columns" and "date_of_birth" in str(missing.value)
    rows = pupils(3, seed=4)
    data = csv_export(rows, "sims").replace(b"Reg Group", b"Bubble")  # a heading no system uses
    chosen = {f: h for f, h in HEADINGS["sims"].items() if f != "registration_group"} | {"registration_group": "Bubble"}
    assert [p.registration_group for p in read_csv(data, chosen).pupils] == [p.registration_group for p in rows]
    with pytest.raises(MisFileError) as unknown:
        read_csv(data, chosen | {"eal": "No such column"})
    assert unknown.value.code == "unknown_column"


@pytest.mark.parametrize(("data", "code"), [
    (b"", "empty"),
    (b"UPN\r\n", "unknown_format"),
    (b"<CTfile><Header/>", "bad_xml"),
    (b"<roster><pupil/></roster>", "not_ctf"),
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><CTfile>&b;</CTfile>',
     "forbidden_xml"),
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><CTfile>&x;</CTfile>',
     "forbidden_xml"),
    (b"<CTfile><CTFpupilData></CTFpupilData></CTfile>", "empty"),
])
def test_a_file_that_cannot_be_read_gets_its_code(data: bytes, code: str) -> None:
    with pytest.raises(MisFileError) as refused:
        read_file(data)
    assert refused.value.code == code and code in FILE_CODES


def test_a_upn_of_a_local_authority_newer_than_the_library_s_list_is_checked_by_its_letter() -> None:
    import random

    rows = pupils(2, seed=5)
    newer = make_upn(random.Random(1), la=942)  # Cumberland (2023): not in python-stdnum's 2011 list
    read = read_csv(csv_export([replace(rows[0], upn=newer), rows[1]], "sims"))
    assert read.ok and read.pupils[0].upn == newer
    wrong = ("B" if newer[0] != "B" else "C") + newer[1:]
    assert read_csv(csv_export([replace(rows[0], upn=wrong)], "sims")).problems[0].code == "bad_check_letter"


@settings(max_examples=150, deadline=None)
@given(mis_files())
def test_any_bytes_give_pupils_problems_or_a_file_code_and_nothing_else(data: bytes) -> None:
    check_mis_file(data)  # the same check as python -m bench.fuzz, there with many more cases
