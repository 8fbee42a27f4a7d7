"""Fictional MIS exports, made here for the tests: pupils with made-up names and valid-looking UPNs, written as
SIMS, Arbor and Bromcom write their CSV exports and as a Common Transfer File, with the quirks real files have
(a byte-order mark, Windows line endings, quoted commas, dd/mm/yyyy dates, blank preferred names, Windows-1252).
Nothing here is about a real child."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import replace
from datetime import date, timedelta
from xml.sax.saxutils import escape

from stdnum.gb import upn as stdnum_upn

from sync.mis import MisPupil

FORENAMES = ("Ada", "Bilal", "Cora", "Dev", "Elsie", "Finn", "Greta", "Hamza", "Ines", "Jonah", "Kaia", "Luca",
             "Maren", "Nico", "Orla", "Pavel", "Rosa", "Soren", "Tilde", "Umar", "Vera", "Wren", "Yusuf", "Zara")
SURNAMES = ("Fernsby", "Hartwell", "Linnet", "Marrow", "Quillon", "Ostrander", "Pellow", "Rainford", "Steyning",
            "Thorley", "Upcott", "Varley", "Wendover", "Yardley", "O'Dowd-Amberley", "Zeal, Jr", "Brontë-Ashe")
CLASSES = {"R": ("Robins",), "1": ("Oak", "Ash"), "2": ("Hazel", "Rowan"), "3": ("Elm",), "4": ("Birch",),
           "5": ("Cedar",), "6": ("Willow",)}

# The headings each system's export gives the fields, in its column order (as their report builders name them).
HEADINGS = {
    "sims": {"upn": "UPN", "legal_surname": "Legal Surname", "legal_forename": "Legal Forename",
             "preferred_surname": "Preferred Surname", "preferred_forename": "Preferred Forename",
             "date_of_birth": "DOB", "year_group": "Year", "registration_group": "Reg Group",
             "sen_status": "SEN Status", "pupil_premium": "Pupil Premium Indicator", "looked_after": "In Care",
             "eal": "EAL", "admission_date": "Admission Date", "leaving_date": "Leaving Date"},
    "arbor": {"upn": "UPN", "legal_forename": "Legal First Name", "legal_surname": "Legal Last Name",
              "preferred_forename": "Preferred First Name", "preferred_surname": "Preferred Last Name",
              "date_of_birth": "Date of Birth", "year_group": "Year Group", "registration_group": "Registration Form",
              "sen_status": "SEN Status", "pupil_premium": "Pupil Premium", "looked_after": "Looked After",
              "first_language": "First Language", "admission_date": "Start Date", "leaving_date": "End Date"},
    "bromcom": {"upn": "Unique Pupil Number", "legal_surname": "Surname", "legal_forename": "Forename",
                "preferred_forename": "Known As", "date_of_birth": "Date Of Birth", "year_group": "NC Year",
                "registration_group": "Tutor Group", "sen_status": "SEN Provision", "pupil_premium": "PP",
                "looked_after": "CLA", "eal": "EAL Status", "admission_date": "Date of Admission",
                "leaving_date": "Date of Leaving"},
}
EXTRA = {"sims": ["Gender"], "arbor": ["Ethnicity", "House"], "bromcom": ["Gender", "Attendance %"]}


def make_upn(rng: random.Random, la: int = 201) -> str:
    body = f"{la:03d}{rng.randrange(1000, 10000):04d}{rng.randrange(0, 100):02d}{rng.randrange(0, 1000):03d}"
    return stdnum_upn.calc_check_digit(body) + body


def pupils(count: int, seed: int = 1, today: date | None = None) -> list[MisPupil]:
    """``count`` fictional pupils of a primary school, reproducible from ``seed``."""
    rng = random.Random(seed)
    today = today or date.today()
    out, upns = [], set()
    for n in range(count):
        year = rng.choice(list(CLASSES))
        age = 4 if year == "R" else 4 + int(year)
        born = date(today.year - age - 1, 9, 1) + timedelta(days=rng.randrange(365))
        upn = make_upn(rng)
        while upn in upns:
            upn = make_upn(rng)
        upns.add(upn)
        forename, surname = rng.choice(FORENAMES), rng.choice(SURNAMES)
        preferred = rng.choice(FORENAMES) if rng.random() < 0.1 else forename
        left = today - timedelta(days=rng.randrange(1, 60)) if rng.random() < 0.05 else None
        out.append(MisPupil(
            upn=upn, legal_surname=surname, legal_forename=forename, preferred_surname=surname,
            preferred_forename=preferred, date_of_birth=born, year_group=year,
            registration_group=rng.choice(CLASSES[year]), sen_status=rng.choice("NNNNNKKE"),
            pupil_premium=rng.random() < 0.25, looked_after=rng.random() < 0.03, eal=rng.random() < 0.2,
            admission_date=date(born.year + 4, 9, 3), leaving_date=left, line=n + 2,
        ))
    return out


def _cell(p: MisPupil, name: str, system: str) -> str:
    value = getattr(p, name) if name != "first_language" else ("Polish" if p.eal else "English")
    if isinstance(value, bool):
        return {"sims": "Y" if value else "N", "arbor": "Yes" if value else "No",
                "bromcom": "True" if value else "False"}[system]
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if value is None:
        return ""
    if name == "year_group" and system == "arbor":
        return "Reception" if value == "R" else f"Year {value}"
    if name == "sen_status" and system == "arbor":
        return {"N": "No SEN", "K": "SEN Support", "E": "EHC Plan"}[value]
    if name.startswith("preferred_") and value == getattr(p, name.replace("preferred_", "legal_")):
        return ""  # blank when the same as the legal name, as exports leave it
    return str(value)


def csv_export(rows: list[MisPupil], system: str = "sims", *, bom: bool = True, crlf: bool = True,
               encoding: str = "utf-8") -> bytes:
    """The pupils as ``system`` exports them: its headings, its values, and columns Cairn does not use."""
    headings = HEADINGS[system]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow([*headings.values(), *EXTRA[system]])
    for p in rows:
        writer.writerow([*(_cell(p, f, system) for f in headings), *("X" for _ in EXTRA[system])])
    data = out.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom and encoding == "utf-8" else data


def expected(rows: list[MisPupil], system: str) -> list[MisPupil]:
    """What reading ``csv_export(rows, system)`` must give back (what the system's file cannot carry dropped)."""
    out = []
    for p in rows:
        q = p
        if system == "bromcom":
            q = replace(q, preferred_surname=q.legal_surname)
        out.append(q)
    return out


def ctf_export(rows: list[MisPupil], *, namespace: bool = False) -> bytes:
    """The pupils as a Common Transfer File (names on the pupil, preferred names in BasicDetails)."""
    xmlns = ' xmlns="http://www.dcsf.gov.uk/schemas/cbds"' if namespace else ""
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\r\n<CTfile{xmlns}><Header><Document>CTF</Document>'
             "<Version>21.0</Version><SourceSchool><LEA>201</LEA><Estab>3614</Estab>"
             "<SchoolName>Fictional Primary</SchoolName></SourceSchool></Header><CTFpupilData>"]
    for p in rows:
        sen = f"<SENhistory><SEN><SENprovision>{p.sen_status}</SENprovision></SEN></SENhistory>"
        history = (f"<SchoolHistory><School><LEA>201</LEA><Estab>3614</Estab>"
                   f"<EntryDate>{p.admission_date.isoformat() if p.admission_date else ''}</EntryDate>"
                   + (f"<LeavingDate>{p.leaving_date.isoformat()}</LeavingDate>" if p.leaving_date else "")
                   + "</School></SchoolHistory>")
        parts.append(
            f"<Pupil><UPN>{p.upn}</UPN><Surname>{escape(p.legal_surname)}</Surname>"
            f"<Forename>{escape(p.legal_forename)}</Forename><DOB>{p.date_of_birth.isoformat()}</DOB>"
            f"<Gender>F</Gender><BasicDetails><PreferredSurname>{escape(p.preferred_surname)}</PreferredSurname>"
            f"<PreferredForename>{escape(p.preferred_forename)}</PreferredForename>"
            f"<NCyearActual>{p.year_group}</NCyearActual>"
            f"<Languages><Type><LanguageType>F</LanguageType><Language>{'POL' if p.eal else 'ENG'}</Language>"
            f"</Type></Languages></BasicDetails>"
            f"<LookedAfter><InCare>{'true' if p.looked_after else 'false'}</InCare></LookedAfter>"
            f"{sen}{history}</Pupil>")
    parts.append("</CTFpupilData></CTfile>")
    return "".join(parts).encode()


def ctf_expected(rows: list[MisPupil]) -> list[MisPupil]:
    """What reading ``ctf_export(rows)`` must give: a CTF carries no registration group or pupil premium."""
    return [replace(p, registration_group="", pupil_premium=False, line=n) for n, p in enumerate(rows, 1)]
