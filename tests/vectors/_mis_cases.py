"""Pupil file vectors (PROTOCOL 11.1): fictional MIS exports (tests/mis/_files.py) and what the readers of both
languages must make of them: the pupils, or the problems by line and column, or the file's code. Rules, not a
construction: the Python reader (sync/mis.py) writes them and both readers must give the same answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import date

from sync.mis import MisFile, MisFileError, read_file
from tests.mis._files import HEADINGS, csv_export, ctf_expected, ctf_export, expected, make_upn, pupils
from tests.vectors._common import Case, case

TODAY = date(2026, 12, 4)


def _pupils(read: MisFile) -> list[dict]:
    return [{k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(p).items()} for p in read.pupils]


def _read(area: str, condition: str, comment: str, data: bytes, columns: dict | None = None,
          must_be: list | None = None) -> Case:
    inputs = {"file": data, "today": TODAY.isoformat(), **({"columns": columns} if columns else {})}
    try:
        read = read_file(data, columns, TODAY)
    except MisFileError as refused:
        return case("mis", area, condition, comment, "parse_failure", inputs, {"file_code": refused.code})
    if read.problems:
        problems = [[p.line, p.column, p.code] for p in read.problems]
        return case("mis", area, condition, comment, "parse_failure", inputs, {"problems": problems})
    if must_be is not None:  # the generator's own check: the reader gives back what the file was made from
        assert list(read.pupils) == must_be, condition
    return case("mis", area, condition, comment, "success", inputs,
                {"format": read.format, "pupils": _pupils(read), "columns": dict(read.columns),
                 "ignored": list(read.ignored)})


def mis_cases() -> Iterator[Case]:
    rows = pupils(6, seed=11, today=TODAY)
    for system, kwargs, comment in [
        ("sims", {}, "SIMS headings, a byte-order mark, Windows line endings, dd/mm/yyyy, blank preferred names"),
        ("arbor", {"bom": False, "crlf": False}, "Arbor headings and words (Year 3, SEN Support, Yes); EAL from the first language"),
        ("bromcom", {"encoding": "cp1252"}, "Bromcom headings, True/False flags, a Windows-1252 file"),
    ]:
        yield _read("csv", f"{system}_success", comment, csv_export(rows, system, **kwargs), must_be=expected(rows, system))
    bubble = csv_export(rows, "sims").replace(b"Reg Group", b"Bubble")
    chosen = {f: h for f, h in HEADINGS["sims"].items() if f != "registration_group"} | {"registration_group": "Bubble"}
    yield _read("csv", "columns_chosen_success", "columns chosen by hand: the class is under a heading no system uses",
                bubble, chosen, must_be=rows)
    text = ("UPN\tSurname\tForename\tDOB\tYear\tSEN\tPP\tCLA\r\n"
            f"{rows[0].upn}\tFernsby\tAda\t1/9/2019\tReception\tSEN Support\tyes\tno\r\n"
            f"{rows[1].upn}\tLinnet\tCora\t2018-03-07\tY3\tEHC Plan\tTRUE\t0\r\n"
            f"{rows[2].upn}\tMarrow\tDev\t07.03.2017\tYear 4\t\t\t\r\n"
            f"{rows[3].upn}\tQuillon\tElsie\t07-03-2016\t5\tK\tN\tY\r\n")
    yield _read("csv", "tab_dates_and_words_success",
                "tab-separated; each date form (d/m/yyyy, ISO, dd.mm.yyyy, dd-mm-yyyy) and the words for year, SEN and flags",
                text.encode())
    import random

    newer = make_upn(random.Random(1), la=942)
    yield _read("csv", "newer_local_authority_success",
                "a local authority number newer than python-stdnum's list: the check letter decides",
                csv_export([replace(rows[0], upn=newer)], "sims"), must_be=[replace(rows[0], upn=newer)])
    for namespace in (False, True):
        yield _read("ctf", f"{'namespace' if namespace else 'plain'}_success",
                    "a Common Transfer File" + (" in the CBDS namespace" if namespace else ""),
                    ctf_export(rows, namespace=namespace), must_be=ctf_expected(rows))

    bad = list(rows)
    bad[1] = replace(bad[1], upn=bad[1].upn[:12] + ("1" if bad[1].upn[12] != "1" else "2"))
    bad[3] = replace(bad[3], upn=bad[0].upn)
    lines = csv_export(bad, "sims", bom=False, crlf=False).decode().split("\n")
    lines[3] = lines[3].replace(bad[2].date_of_birth.strftime("%d/%m/%Y"), "31/02/2019")
    lines[5] = lines[5].replace(f",{bad[4].year_group},", ",Year 19,")
    lines[6] = lines[6].replace(f"{bad[5].legal_forename},", ",", 1)
    yield _read("csv", "problems_parse_failure",
                "a check letter, a duplicate UPN, no such day, no such year group, an empty legal forename",
                "\n".join(lines).encode())
    wrong = ("UPN,Surname,Forename,DOB,Year,Pupil Premium,Admission Date,Leaving Date\r\n"
             f"{rows[0].upn},Fernsby,Ada,01/09/2031,R,maybe,01/09/2025,01/09/2024\r\n")
    yield _read("csv", "dates_and_flags_parse_failure",
                "a birth in the future, a flag that is neither yes nor no, leaving before admission", wrong.encode())
    head = "UPN,Surname,Forename,DOB,Year\r\n"
    ok = f"{rows[0].upn},Fernsby,Ada,01/09/2019,R\r\n"
    yield _read("csv", "stray_quote_success", "a quote inside an unquoted field is an ordinary character",
                (head + f'{rows[1].upn},O"Dowd,Bilal,01/09/2019,R\r\n' + ok).encode())
    yield _read("csv", "lone_cr_parse_failure", "a lone carriage return ends a line, as in any CSV reader",
                (head + f"{rows[1].upn},Lin\rnet,Cora,01/09/2019,R\r\n").encode())
    yield _read("csv", "edge_characters_parse_failure",
                "only space, tab and line ends are trimmed: a byte-order mark or a unit separator in a cell is text"
                " that is refused; a superscript digit is no year group",
                (head + f"{rows[1].upn},\ufeff,Cora,01/09/2019,R\r\n{rows[2].upn},Linnet,\x1fCora,01/09/2019,\u00b2\r\n")
                .encode())
    for condition, data, comment in [
        ("closing_quote", (head + f'{rows[1].upn},"Linnet"x,Cora,01/09/2019,R\r\n').encode(),
         "something after a closing quote"),
        ("empty", b"", "nothing at all"),
        ("missing_columns", b"UPN,Surname,Forename\r\nA,B,C\r\n", "no date of birth or year group"),
        ("ambiguous_columns", b"UPN,Surname,Legal Surname,Forename,DOB,Year\r\n", "two columns could be the surname"),
        ("unclosed_quote", b'UPN,Surname,Forename,DOB,Year\r\n"A201,x,y,z,w\r\n', "a quoted field never closed"),
    ]:
        yield _read("csv", f"{condition}_parse_failure", comment, data)
    for condition, data, comment in [
        ("doctype", b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><CTfile>&a;</CTfile>',
         "a DTD with an entity: refused, never expanded"),
        ("bad_xml", b"<CTfile><CTFpupilData><Pupil></CTFpupilData>", "not well formed"),
        ("not_ctf", b"<roster><pupil/></roster>", "XML, but not a Common Transfer File"),
        ("no_pupils", b"<CTfile><CTFpupilData></CTFpupilData></CTfile>", "a CTF of no pupils"),
        ("latin_1", '<CTfile><CTFpupilData><Pupil><Surname>Bront\u00eb</Surname></Pupil></CTFpupilData></CTfile>'
         .encode("latin-1"), "not UTF-8"),
        ("declared_encoding", b'<?xml version="1.0" encoding="ISO-8859-1"?><CTfile/>',
         "an encoding other than UTF-8 declared"),
        ("declaration", b'<?xml wersion="1.0"?><CTfile/>', "a malformed XML declaration"),
        ("declaration_late", b'  <?xml version="1.0"?><CTfile/>', "the XML declaration after white space"),
    ]:
        yield _read("ctf", f"{condition}_parse_failure", comment, data)


CASES = [mis_cases]
