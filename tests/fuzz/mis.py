"""Pupil files from the MIS (sync/mis.py): fictional exports (tests/mis/_files.py) of each system and as CTFs,
damaged byte by byte, with hostile cells and XML that tries a DTD, an entity or an external reference; or junk."""

from __future__ import annotations

from datetime import date

from hypothesis import strategies as st

from sync.mis import FILE_CODES, MAX_PUPILS, MAX_TEXT, PROBLEMS, MisFileError, read_file
from tests.mis._files import HEADINGS, csv_export, ctf_export, pupils

from .junk import TEXT, mutate, mutations, storable

__all__ = ["mis_files", "check_mis_file"]

TODAY = date(2026, 12, 4)
SCHOOLS = [pupils(n, seed=n, today=TODAY) for n in (1, 3, 8)]
XML_TRICKS = [
    b'<?xml version="1.0"?><!DOCTYPE CTfile [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
    b"<CTfile>&b;</CTfile>",
    b'<?xml version="1.0"?><!DOCTYPE CTfile SYSTEM "http://127.0.0.1:9/ctf.dtd"><CTfile/>',
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/hostname">]><CTfile><CTFpupilData>&x;'
    b"</CTFpupilData></CTfile>",
    b"<CTfile><CTFpupilData>" + b"<Pupil><UPN>x</UPN></Pupil>" * 3 + b"</CTFpupilData></CTfile>",
    b"<CTfile><CTFpupilData><Pupil>" * 50,
]


@st.composite
def _hostile_csv(draw: st.DrawFn) -> bytes:
    """A real export with some cells replaced by hostile text."""
    school = draw(st.sampled_from(SCHOOLS))
    system = draw(st.sampled_from(sorted(HEADINGS)))
    text = csv_export(school, system, bom=draw(st.booleans()), crlf=draw(st.booleans())).decode("utf-8-sig")
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(0, len(lines) - 1))
        cells = lines[n].split(",")
        cells[draw(st.integers(0, len(cells) - 1))] = draw(TEXT).replace("\n", " ")
        lines[n] = ",".join(cells)
    return "\r\n".join(lines).encode("utf-8", "surrogatepass")


def mis_files() -> st.SearchStrategy[bytes]:
    exports = st.one_of(
        st.tuples(st.sampled_from(SCHOOLS), st.sampled_from(sorted(HEADINGS)))
        .map(lambda sv: csv_export(sv[0], sv[1])),
        st.tuples(st.sampled_from(SCHOOLS), st.booleans()).map(lambda sb: ctf_export(sb[0], namespace=sb[1])),
    )
    return st.one_of(
        st.tuples(exports, mutations).map(lambda em: mutate(*em)),
        _hostile_csv(),
        st.sampled_from(XML_TRICKS),
        st.binary(max_size=300),
        TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.integers(MAX_PUPILS - 1, MAX_PUPILS + 1).map(
            lambda n: ("UPN,Surname,Forename,DOB,Year\r\n" + "A201,B,C,01/01/2020,R\r\n" * n).encode()),
    )


def check_mis_file(data: bytes) -> str:
    """read_file: pupils, each field checked and storable; or problems with documented codes and no pupil; or a
    MisFileError of a documented code. Nothing else."""
    try:
        read = read_file(data, today=TODAY)
    except MisFileError as refused:
        assert refused.code in FILE_CODES, refused.code
        return f"refused:{refused.code}"
    if read.problems:
        assert read.pupils == (), "a file with a problem yielded pupils"
        assert all(p.code in PROBLEMS and p.line >= 1 and p.column for p in read.problems), read.problems
        return "problems"
    assert 1 <= len(read.pupils) <= MAX_PUPILS
    for p in read.pupils:
        for text in (p.legal_surname, p.legal_forename, p.preferred_surname, p.preferred_forename,
                     p.registration_group):
            assert len(text) <= MAX_TEXT and storable(text), p
        assert len(p.upn) == 13 and p.date_of_birth <= TODAY, p
    assert len({p.upn for p in read.pupils}) == len(read.pupils)
    return "ok"
