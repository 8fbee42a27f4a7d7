"""Reading a pupil file exported from the school's management information system (MIS), on the device that
imports it: the server never sees a name, a UPN or a date of birth.

Two formats: the DfE **Common Transfer File** (CTF, XML) and **CSV** as SIMS, Arbor and Bromcom export it.
A CSV's columns are found by their headings (``detect_columns``: each field has the headings those systems
use), shown to the person for confirmation, and may be set by hand (``columns=``). Every row is checked:
the UPN (its DfE check letter, through python-stdnum), names, dates (``dd/mm/yyyy`` as UK exports write
them, or ISO), the year group, the flags; a UPN twice in the file is a problem on its second line. Each
problem is named by line and column with a stable code (``PROBLEMS``), and a file with any problem yields
no pupils at all: an import changes nothing unless the whole file is good.

What a real export holds, and what these readers take in their stride: a byte-order mark, Windows line
endings, quoted commas, a file in Windows-1252 rather than UTF-8, blank preferred names (the legal name is
used), headings in any order and case, columns Cairn does not use (listed, and ignored). The XML is parsed
by defusedxml: a DTD, an entity or an external reference is refused, never expanded.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from stdnum.exceptions import InvalidComponent, InvalidFormat, ValidationError
from stdnum.gb import upn as stdnum_upn

__all__ = [
    "FIELDS", "REQUIRED", "PROBLEMS", "FILE_CODES", "MAX_BYTES", "MAX_PUPILS",
    "MisPupil", "Problem", "MisFile", "MisFileError", "detect_columns", "read_csv", "read_ctf", "read_file",
]

MAX_BYTES = 8 * 1024 * 1024  # a 2,000-pupil CTF with its history is about 4 MB
MAX_PUPILS = 3000
MAX_TEXT = 100

# Each field, and the headings (compared without case, spaces or punctuation) the common MIS exports give it.
FIELDS: dict[str, tuple[str, ...]] = {
    "upn": ("upn", "uniquepupilnumber", "pupilupn"),
    "legal_surname": ("legalsurname", "surname", "lastname", "familyname", "legallastname"),
    "legal_forename": ("legalforename", "forename", "firstname", "legalfirstname", "givenname", "forenames"),
    "preferred_surname": ("preferredsurname", "preferredlastname", "knownassurname"),
    "preferred_forename": ("preferredforename", "preferredfirstname", "preferredname", "knownas", "chosenname"),
    "date_of_birth": ("dob", "dateofbirth", "birthdate"),
    "year_group": ("yeargroup", "year", "ncyear", "ncyearactual", "curriculumyear", "nationalcurriculumyear"),
    "registration_group": ("reggroup", "registrationgroup", "regform", "form", "formgroup", "tutorgroup", "class",
                           "registrationform", "classname"),
    "sen_status": ("senstatus", "sen", "senprovision", "senstage", "sendstatus", "senprovisiontype"),
    "pupil_premium": ("pupilpremium", "pp", "pupilpremiumindicator", "ppindicator", "pupilpremiumeligible",
                      "pupilpremiumflag"),
    "looked_after": ("lookedafter", "incare", "cla", "lac", "childlookedafter", "lookedafterchild", "incarestatus"),
    "eal": ("eal", "englishasanadditionallanguage", "ealstatus", "ealflag"),
    "first_language": ("firstlanguage", "language", "homelanguage", "mothertongue"),
    "admission_date": ("admissiondate", "dateofadmission", "entrydate", "dateofentry", "startdate", "admitted"),
    "leaving_date": ("leavingdate", "dateofleaving", "leavedate", "enddate", "dateleft"),
}
REQUIRED = ("upn", "legal_surname", "legal_forename", "date_of_birth", "year_group")

# The codes a row's column can get; the file itself gets FILE_CODES (MisFileError).
PROBLEMS = {
    "missing": "the column is empty and Cairn needs it",
    "too_long": f"at most {MAX_TEXT} characters",
    "invalid_text": "a control character, or text that is not valid Unicode",
    "bad_upn": "not a UPN: 13 characters, a check letter, 11 digits and a digit or letter",
    "bad_check_letter": "the UPN's check letter does not match its other 12 characters (a typing mistake?)",
    "duplicate_upn": "the same UPN is on an earlier line",
    "bad_date": "not a date (dd/mm/yyyy or yyyy-mm-dd)",
    "implausible_date": "a date of birth in the future or more than 25 years ago, or an admission before birth",
    "leaving_before_admission": "the leaving date is before the admission date",
    "bad_year_group": "not a year group (N1, N2, R, 1 to 14, or X)",
    "bad_flag": "not yes or no (Y, N, Yes, No, True, False, 1, 0, or blank)",
    "bad_sen_status": "not an SEN status (N, K, E; or No SEN, SEN Support, EHC Plan)",
}
FILE_CODES = {
    "too_large": f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB",
    "too_many_pupils": f"more than {MAX_PUPILS} pupils",
    "empty": "no pupils in the file",
    "unknown_format": "neither a Common Transfer File nor a CSV with a heading line",
    "missing_columns": "a column Cairn needs is not in the file (UPN, names, date of birth, year group)",
    "ambiguous_columns": "two columns could be the same field; choose one",
    "unknown_column": "a column chosen by hand is not in the file",
    "bad_csv": "a quoted field is not closed, or the CSV is broken in another way",
    "bad_xml": "the XML is not well formed",
    "forbidden_xml": "the XML holds a DTD, an entity or an external reference, which Cairn never reads",
    "not_ctf": "an XML file that is not a Common Transfer File (no CTfile, no CTFpupilData)",
}

_TRUE = {"y", "yes", "true", "t", "1"}
_FALSE = {"n", "no", "false", "f", "0", ""}
_SEN = {"n": "N", "no": "N", "nosen": "N", "none": "N", "": "N", "k": "K", "sensupport": "K", "support": "K",
        "e": "E", "ehcplan": "E", "ehcp": "E", "ehc": "E", "s": "E", "statement": "E", "statemented": "E"}
_ENGLISH = {"eng", "english", "enb", "believedtobeenglish", "englishbelieved"}
_SPACE = " \t\r\n"  # what is trimmed from a cell: only these, in both readers (JavaScript's trim() takes more)
_UPN_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
# The XML declaration, the only part of a CTF read by pattern (so that both readers refuse the same ones): a
# declared encoding must be UTF-8, and a malformed declaration is bad XML.
_DECLARATION = re.compile(r"""<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]+\1"""
                          r"""(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\2)?"""
                          r"""(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*\?>""")
_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%y")


@dataclass(frozen=True)
class MisPupil:
    """One pupil as the MIS says, checked. ``line``: where in the file (a CTF's ``<Pupil>`` counts as a line)."""

    upn: str
    legal_surname: str
    legal_forename: str
    preferred_surname: str
    preferred_forename: str
    date_of_birth: date
    year_group: str
    registration_group: str
    sen_status: str
    pupil_premium: bool
    looked_after: bool
    eal: bool
    admission_date: date | None
    leaving_date: date | None
    line: int = 0

    @property
    def name(self) -> str:
        """The name staff know the pupil by."""
        return f"{self.preferred_forename} {self.preferred_surname}"


@dataclass(frozen=True)
class Problem:
    line: int
    column: str  # the file's heading (CSV) or the field (CTF)
    code: str

    @property
    def message(self) -> str:
        return f"line {self.line}, {self.column}: {PROBLEMS[self.code]}"


@dataclass(frozen=True)
class MisFile:
    """What a file holds: ``pupils`` only when ``problems`` is empty. ``columns``: field -> heading used;
    ``ignored``: the headings no field took."""

    format: str  # "csv" or "ctf"
    pupils: tuple[MisPupil, ...]
    problems: tuple[Problem, ...]
    columns: Mapping[str, str] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


class MisFileError(ValueError):
    """The file as a whole cannot be read; ``code`` is one of FILE_CODES."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{FILE_CODES[code]}{': ' + detail if detail else ''}")
        self.code, self.detail = code, detail


def _key(heading: str) -> str:
    return "".join(c for c in heading.casefold() if c.isalnum())


def detect_columns(headings: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    """Which heading each field is under, and the headings no field took. Raises MisFileError
    (``missing_columns``, ``ambiguous_columns``)."""
    found: dict[str, list[str]] = {}
    ignored = []
    for heading in headings:
        fields = [f for f, names in FIELDS.items() if _key(heading) in names]
        if fields:
            found.setdefault(fields[0], []).append(heading)
        elif heading.strip(_SPACE):
            ignored.append(heading)
    twice = sorted(f"{f} ({' or '.join(h)})" for f, h in found.items() if len(h) > 1)
    if twice:
        raise MisFileError("ambiguous_columns", "; ".join(twice))
    columns = {f: h[0] for f, h in found.items()}
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise MisFileError("missing_columns", ", ".join(missing))
    return columns, tuple(ignored)


def read_file(data: bytes, columns: Mapping[str, str] | None = None, today: date | None = None) -> MisFile:
    """A CTF or a CSV, told apart by their first characters. ``today`` (default: the date) judges dates of birth."""
    if len(data) > MAX_BYTES:
        raise MisFileError("too_large")
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return read_ctf(data, today) if head == b"<" else read_csv(data, columns, today)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Windows exports; an undefined byte becomes U+FFFD


def read_csv(data: bytes, columns: Mapping[str, str] | None = None, today: date | None = None) -> MisFile:
    """A CSV with a heading line. ``columns`` (field -> heading) replaces the detected ones."""
    if len(data) > MAX_BYTES:
        raise MisFileError("too_large")
    text = _decode(data)
    first = text.split("\n", 1)[0]
    dialect = "excel-tab" if "\t" in first and "," not in first else "excel"
    try:
        return _csv_rows(text, dialect, columns, today or date.today())
    except csv.Error as exc:
        raise MisFileError("bad_csv", str(exc)) from None


def _records(text: str, dialect: str) -> list[tuple[int, list[str]]]:
    """Every record of the file with the line it starts on, read whole first: a broken CSV is ``bad_csv``
    before anything else is said about it (as the staff app's reader, which parses first, says)."""
    reader = csv.reader(io.StringIO(text, newline=""), dialect=dialect, strict=True)
    records, line = [], 1
    for cells in reader:
        records.append((line, cells))
        line = reader.line_num + 1
    return records


def _csv_rows(text: str, dialect: str, columns: Mapping[str, str] | None, today: date) -> MisFile:
    records = _records(text, dialect)
    if not records:
        raise MisFileError("empty")
    headings = records[0][1]
    if len([h for h in headings if h.strip(_SPACE)]) < 2:
        raise MisFileError("unknown_format", "the first line is not a heading line")
    if columns is None:
        chosen, ignored = detect_columns(headings)
    else:
        unknown = sorted(h for h in columns.values() if h not in headings)
        if unknown:
            raise MisFileError("unknown_column", ", ".join(unknown))
        missing = [f for f in REQUIRED if f not in columns]
        if missing:
            raise MisFileError("missing_columns", ", ".join(missing))
        chosen = dict(columns)
        ignored = tuple(h for h in headings if h.strip(_SPACE) and h not in chosen.values())
    where = {f: headings.index(h) for f, h in chosen.items()}
    rows = [(line, {f: cells[i] if i < len(cells) else "" for f, i in where.items()})
            for line, cells in records[1:] if any(c.strip(_SPACE) for c in cells)]
    if len(rows) > MAX_PUPILS:
        raise MisFileError("too_many_pupils")
    return _checked("csv", rows, chosen, ignored, today)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(element: Element, *paths: str) -> str:
    """The text at the first of ``paths`` (slash-separated local names) that is present, else ''."""
    for path in paths:
        node: Element | None = element
        for part in path.split("/"):
            node = next((child for child in node if _local(child.tag) == part), None) if node is not None else None
        if node is not None and (node.text or "").strip(_SPACE):
            return (node.text or "").strip(_SPACE)
    return ""


def _first_language(pupil: Element) -> str:
    direct = _find(pupil, "BasicDetails/FirstLanguage", "FirstLanguage")
    if direct:
        return direct
    for languages in (c for c in pupil.iter() if _local(c.tag) == "Languages"):
        for entry in languages:
            if _find(entry, "LanguageType") in ("F", "") and _find(entry, "Language"):
                return _find(entry, "Language")
    return ""


def read_ctf(data: bytes, today: date | None = None) -> MisFile:
    """A Common Transfer File: every ``<Pupil>`` of its ``<CTFpupilData>``. Names and the date of birth are read
    where CTF versions put them (on the pupil, or in ``<BasicDetails>``); the registration group, which a CTF
    does not carry, is left empty (the pupil then has no class until one is set)."""
    if len(data) > MAX_BYTES:
        raise MisFileError("too_large")
    try:
        text = data.decode("utf-8-sig")  # a CTF is UTF-8, as the staff app reads it
    except UnicodeDecodeError:
        raise MisFileError("bad_xml", "not UTF-8") from None
    if text.lstrip(_SPACE).startswith("<?xml") and not text.startswith("<?xml"):
        raise MisFileError("bad_xml", "the XML declaration is not at the start")
    if text.startswith("<?xml") and text[5:6] in (" ", "\t", "\r", "\n"):
        declared = _DECLARATION.match(text)
        if declared is None:
            raise MisFileError("bad_xml", "the XML declaration is malformed")
        if declared.group(3) is not None and declared.group(3).lower() != "utf-8":
            raise MisFileError("bad_xml", "an encoding that is not UTF-8")
    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise MisFileError("forbidden_xml", type(exc).__name__) from None
    except ParseError as exc:
        raise MisFileError("bad_xml", f"line {exc.position[0]}") from None
    except (LookupError, ValueError):  # an encoding expat does not know, or one it cannot read ("TTF-8", UTF-16)
        raise MisFileError("bad_xml", "an encoding that is not UTF-8") from None
    data_element = next((c for c in root if _local(c.tag) == "CTFpupilData"), None)
    if _local(root.tag) != "CTfile" or data_element is None:
        raise MisFileError("not_ctf")
    pupils = [p for p in data_element if _local(p.tag) == "Pupil"]
    if len(pupils) > MAX_PUPILS:
        raise MisFileError("too_many_pupils")
    rows = []
    for number, pupil in enumerate(pupils, 1):
        history = [s for c in pupil if _local(c.tag) == "SchoolHistory" for s in c if _local(s.tag) == "School"]
        latest = history[-1] if history else None
        language = _first_language(pupil)
        rows.append((number, {
            "upn": _find(pupil, "UPN"),
            "legal_surname": _find(pupil, "Surname", "BasicDetails/LegalSurname", "BasicDetails/Surname"),
            "legal_forename": _find(pupil, "Forename", "BasicDetails/LegalForename", "BasicDetails/Forename"),
            "preferred_surname": _find(pupil, "BasicDetails/PreferredSurname", "PreferredSurname"),
            "preferred_forename": _find(pupil, "BasicDetails/PreferredForename", "PreferredForename"),
            "date_of_birth": _find(pupil, "DOB", "BasicDetails/DOB"),
            "year_group": _find(pupil, "BasicDetails/NCyearActual", "NCyearActual"),
            "sen_status": _find(pupil, "SENhistory/SEN/SENprovision", "SEN/SENprovision", "BasicDetails/SENprovision"),
            "looked_after": _find(pupil, "LookedAfter/InCare", "BasicDetails/InCare", "InCare"),
            "first_language": language,
            "admission_date": _find(latest, "EntryDate") if latest is not None else "",
            "leaving_date": _find(latest, "LeavingDate") if latest is not None else "",
        }))
    read = {f: f for f in FIELDS if f not in ("registration_group", "pupil_premium", "eal")}
    return _checked("ctf", rows, read, (), today or date.today())


def _text(value: str, required: bool) -> tuple[str, str | None]:
    value = unicodedata.normalize("NFC", value.strip(_SPACE))
    if not value:
        return "", "missing" if required else None
    if len(value) > MAX_TEXT:
        return "", "too_long"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") or c == "\ufffd" for c in value):
        return "", "invalid_text"
    return value, None


def _date(value: str) -> date | None:
    value = value.strip(_SPACE)
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(value, form).date()
        except ValueError:
            continue
    if "T" in value:  # a CTF's xs:dateTime
        return _date(value.split("T", 1)[0])
    raise ValueError(value)


def _year_group(value: str) -> str | None:
    key = _key(value).removeprefix("year").removeprefix("y")
    if key in ("r", "reception", "rec"):
        return "R"
    if key in ("n1", "n2", "x"):
        return key.upper()
    if key == "nursery":
        return "N2"
    if key.isascii() and key.isdigit() and 1 <= int(key) <= 14:  # "²".isdigit() is true
        return str(int(key))
    return None


def _checked(kind: str, rows: list[tuple[int, dict[str, str]]], columns: Mapping[str, str],
             ignored: tuple[str, ...], today: date) -> MisFile:
    if not rows:
        raise MisFileError("empty")
    problems: list[Problem] = []
    pupils: list[MisPupil] = []
    seen: dict[str, int] = {}
    for line, cells in rows:
        bad = len(problems)

        def flag(field_name: str, code: str, line: int = line) -> None:
            problems.append(Problem(line, columns.get(field_name, field_name), code))

        values: dict[str, str] = {}
        dates: dict[str, date | None] = {}
        for name in ("legal_surname", "legal_forename", "preferred_surname", "preferred_forename",
                     "registration_group"):
            values[name], code = _text(cells.get(name, ""), name in REQUIRED)
            if code:
                flag(name, code)
        values["preferred_surname"] = values["preferred_surname"] or values["legal_surname"]
        values["preferred_forename"] = values["preferred_forename"] or values["legal_forename"]
        raw_upn = cells.get("upn", "").strip(_SPACE)
        try:
            if not set(raw_upn.replace(" ", "").upper()) <= _UPN_CHARACTERS:
                raise InvalidFormat()
            upn = stdnum_upn.validate(raw_upn)
        except InvalidComponent:  # an LA number newer than python-stdnum's list (2011): the check letter decides
            upn = stdnum_upn.compact(raw_upn)
            if stdnum_upn.calc_check_digit(upn[1:]) != upn[0]:
                flag("upn", "bad_check_letter")
        except ValidationError as exc:
            upn = ""
            flag("upn", "missing" if not raw_upn else
                 "bad_check_letter" if type(exc).__name__ == "InvalidChecksum" else "bad_upn")
        if upn and upn in seen:
            flag("upn", "duplicate_upn")
        elif upn:
            seen[upn] = line
        for name in ("date_of_birth", "admission_date", "leaving_date"):
            raw = cells.get(name, "").strip(_SPACE)
            dates[name] = None
            if not raw:
                if name in REQUIRED:
                    flag(name, "missing")
                continue
            try:
                dates[name] = _date(raw)
            except ValueError:
                flag(name, "bad_date")
        born, admitted, left = dates["date_of_birth"], dates["admission_date"], dates["leaving_date"]
        if isinstance(born, date) and (born > today or (today - born).days > 25 * 366):
            flag("date_of_birth", "implausible_date")
        if isinstance(born, date) and isinstance(admitted, date) and admitted < born:
            flag("admission_date", "implausible_date")
        if isinstance(admitted, date) and isinstance(left, date) and left < admitted:
            flag("leaving_date", "leaving_before_admission")
        year = _year_group(cells.get("year_group", ""))
        if year is None:
            flag("year_group", "missing" if not cells.get("year_group", "").strip(_SPACE) else "bad_year_group")
        sen = _SEN.get(_key(cells.get("sen_status", "")))
        if sen is None:
            flag("sen_status", "bad_sen_status")
        flags: dict[str, bool] = {}
        for name in ("pupil_premium", "looked_after", "eal"):
            raw = cells.get(name, "").strip(_SPACE).casefold()
            if raw not in _TRUE | _FALSE:
                flag(name, "bad_flag")
            flags[name] = raw in _TRUE
        if "eal" not in columns and cells.get("first_language", "").strip(_SPACE):
            flags["eal"] = _key(cells["first_language"]) not in _ENGLISH
        if len(problems) == bad and born is not None and year is not None and sen is not None:
            texts = {n: values[n] for n in ("legal_surname", "legal_forename", "preferred_surname",
                                            "preferred_forename", "registration_group")}
            pupils.append(MisPupil(upn=upn, **texts, date_of_birth=born, year_group=year, sen_status=sen,
                                   admission_date=admitted, leaving_date=left, line=line, **flags))
    return MisFile(kind, () if problems else tuple(pupils), tuple(problems), dict(columns), ignored)
