"""Reading a staff CSV (name, email, roles, classes) into rows to invite: every row checked, every problem
named by line and column with a stable code, nothing half-read.

The file is UTF-8 (a byte-order mark is allowed), comma-separated, with a header line naming the columns in
any order: ``name``, ``email`` and ``roles`` are required, ``classes`` is optional. Roles are separated by
``;`` or spaces, class labels by ``;`` (a label may hold spaces: ``Year 3 Oak``). The email becomes the
login, in lower case. Checks against the school (class labels, people already invited or on the staff)
are made by ``server.staff``, which adds its codes to the same table.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from ._body import plain_text
from .models import ROLES

__all__ = ["StaffRow", "StaffCsvError", "parse_staff_csv", "check_staff", "MAX_ROWS", "ROW_CODES"]

MAX_ROWS = 500
MAX_NAME = 200
EMAIL = re.compile(r"[a-z0-9._+-]{1,64}@[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+")
COLUMNS = ("name", "email", "roles", "classes")
REQUIRED = ("name", "email", "roles")

# The codes a row's column can get (docs/PROTOCOL.md 10.3); the file itself gets the ``file`` codes.
ROW_CODES = {
    "missing": "the column is empty",
    "too_long": f"a name is at most {MAX_NAME} characters",
    "invalid_text": "a name or class label holds a control character, or text that is not valid Unicode",
    "invalid_email": "not an email address a person can sign in with (letters, digits, . _ + - and one @)",
    "unknown_role": f"a role that is not one of {', '.join(ROLES)}",
    "duplicate_in_file": "the same email appears on an earlier line",
    "classes_need_teacher": "classes are given to someone without the teacher role",
    "unknown_class": "a class label this school does not have",
    "ambiguous_class": "a class label shared by two of the school's classes; rename one first",
    "already_staff": "someone on the staff already signs in with this email",
    "already_invited": "a pending invitation for this email already exists",
}
FILE_CODES = {
    "empty": "the file has no header line, or no staff under it",
    "not_csv": "the file cannot be read as CSV",
    "missing_columns": "the header lacks name, email or roles",
    "unknown_columns": "the header has a column other than name, email, roles, classes",
    "too_many_rows": f"more than {MAX_ROWS} staff in one file",
}


@dataclass(frozen=True)
class StaffRow:
    """One person to invite, as read from the file (``line`` is the file's line number, the header is 1)."""

    line: int
    name: str
    login: str
    roles: tuple[str, ...]
    classes: tuple[str, ...]


class StaffCsvError(Exception):
    """The file is refused; ``fields`` maps ``rows[<line>].<column>`` (or ``file``) to a stable code."""

    def __init__(self, fields: dict[str, str]) -> None:
        lines = sorted({k for k in fields if k != "file"})
        super().__init__(
            f"the staff file has {len(lines)} problem(s); nothing was imported"
            if lines
            else f"the staff file is refused: {FILE_CODES.get(fields.get('file', ''), 'invalid')}"
        )
        self.fields = fields


def parse_staff_csv(text: str) -> list[StaffRow]:
    """Read and check every row; raise StaffCsvError naming each problem, or return all rows."""
    text = text.removeprefix("\ufeff")
    try:
        table = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        raise StaffCsvError({"file": "not_csv"}) from None
    table = [(n, row) for n, row in enumerate(table, start=1) if any(cell.strip() for cell in row)]
    if len(table) < 2:
        raise StaffCsvError({"file": "empty"})
    header = [cell.strip().lower() for cell in table[0][1]]
    if any(c not in COLUMNS for c in header) or len(set(header)) != len(header):
        raise StaffCsvError({"file": "unknown_columns"})
    if any(c not in header for c in REQUIRED):
        raise StaffCsvError({"file": "missing_columns"})
    if len(table) - 1 > MAX_ROWS:
        raise StaffCsvError({"file": "too_many_rows"})
    errors: dict[str, str] = {}
    rows, seen = [], set()
    for line, cells in table[1:]:
        if len(cells) != len(header):
            errors[f"rows[{line}]"] = "not_csv"
            continue
        got = {column: cell.strip() for column, cell in zip(header, cells, strict=True)}
        row = _row(line, got, errors)
        if row.login and row.login in seen:
            errors[f"rows[{line}].email"] = "duplicate_in_file"
        seen.add(row.login)
        rows.append(row)
    if errors:
        raise StaffCsvError(errors)
    return rows


def check_staff(line: int, name: str, login: str, roles: list[str], classes: list[str], errors: dict[str, str]) -> None:
    """The checks every invitation gets, from a file or one by one (``line`` 0: no file)."""
    where = f"rows[{line}]." if line else ""
    if not name:
        errors[f"{where}name"] = "missing"
    elif len(name) > MAX_NAME:
        errors[f"{where}name"] = "too_long"
    elif not plain_text(name, MAX_NAME):
        errors[f"{where}name"] = "invalid_text"
    if not login:
        errors[f"{where}email"] = "missing"
    elif not EMAIL.fullmatch(login) or len(login) > 200:
        errors[f"{where}email"] = "invalid_email"
    if not roles:
        errors[f"{where}roles"] = "missing"
    elif any(r not in ROLES for r in roles):
        errors[f"{where}roles"] = "unknown_role"
    elif classes and "teacher" not in roles:
        errors[f"{where}classes"] = "classes_need_teacher"
    if any(not plain_text(label, len(label)) for label in classes):
        errors[f"{where}classes"] = "invalid_text"


def _row(line: int, got: dict[str, str], errors: dict[str, str]) -> StaffRow:
    name, login = got["name"], got["email"].lower()
    roles = sorted({r.lower() for r in re.split(r"[;\s]+", got["roles"]) if r})
    classes = sorted({c.strip() for c in got.get("classes", "").split(";") if c.strip()})
    check_staff(line, name, login, roles, classes, errors)
    return StaffRow(line, name, login, tuple(roles), tuple(classes))
