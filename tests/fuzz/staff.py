"""Staff files (server/_staff_csv.py): CSV written by csv.writer with hostile cells, headers and shapes."""

from __future__ import annotations

import csv
import io
import re

from hypothesis import strategies as st

from server._staff_csv import EMAIL, FILE_CODES, MAX_NAME, MAX_ROWS, ROW_CODES, StaffCsvError, parse_staff_csv
from server.models import ROLES

from .junk import TEXT, storable

__all__ = ["staff_files", "check_staff_csv"]

COLUMN_NAMES = st.sampled_from(["name", "email", "roles", "classes", "Name", " EMAIL ", "phone", "", "roles"])
HOSTILE_CELLS = st.one_of(TEXT, st.sampled_from(["head", ";;", "@", "x@y", "a@b.c\x00"]),
                          st.integers(150, 260).map(lambda n: "n" * n))
GOOD_CELLS = {
    "name": st.one_of(st.sampled_from(["Ms Fictional Oak", "Dr É. Ash"]),
                      st.text(st.characters(categories=["L", "M", "N"]), min_size=1, max_size=20)),
    "email": st.from_regex(r"[A-Za-z0-9._+-]{1,10}@[a-z0-9-]{1,8}\.[a-z]{2,4}", fullmatch=True),
    "roles": st.lists(st.sampled_from(ROLES), min_size=1, max_size=3).map(" ; ".join),
    "classes": st.sampled_from(["", "Year 3 Oak", "oak;ash", "Year 3 Oak; Year 4 Ash"]),
}


@st.composite
def staff_rows(draw: st.DrawFn, header: list[str], clean: bool) -> list[str]:
    """A row for ``header``: each cell plausible for its column (always, when ``clean``; else most of the
    time) or hostile; now and then a cell too few or too many."""
    columns = [c.strip().lower() for c in header]
    cells = [draw(GOOD_CELLS[c]) if c in GOOD_CELLS and (clean or draw(st.integers(0, 4))) else draw(HOSTILE_CELLS)
             for c in columns]
    if clean:
        got = dict(zip(columns, cells, strict=True))
        if "classes" in got and "teacher" not in got.get("roles", ""):
            cells[columns.index("classes")] = ""
        return cells
    width = draw(st.sampled_from([0] * 8 + [-1, 1]))
    return cells[:width] if width < 0 else cells + [draw(HOSTILE_CELLS)] * width


@st.composite
def staff_files(draw: st.DrawFn) -> str:
    """A staff CSV written by csv.writer: a header of known, unknown, repeated or missing columns, and rows
    of plausible or hostile cells (some of the wrong width), a BOM and line endings mixed; or plain text,
    or a real file cut short, or one with too many rows."""
    clean = draw(st.booleans())
    columns = st.permutations(["name", "email", "roles", "classes"])
    header = draw(columns if clean else st.one_of(columns, st.lists(COLUMN_NAMES, max_size=6)))
    if draw(st.booleans()):
        header = [c for c in header if c != "classes"]
    rows = draw(st.lists(staff_rows(header, clean), max_size=8))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=draw(st.sampled_from(["\n", "\r\n", "\r"]))).writerows([header, *rows])
    text = buffer.getvalue()
    if draw(st.booleans()):
        text = "\ufeff" + text
    return draw(st.one_of(st.just(text), st.just(text), st.integers(0, len(text)).map(lambda cut: text[:cut]), TEXT,
                          st.integers(0, 600).map(lambda n: "name,email,roles\n" + "A,a@b.cd,teacher\n" * n)))


_CELL_KEY = re.compile(r"rows\[\d+\](\.(name|email|roles|classes))?")


def check_staff_csv(text: str) -> str:
    """parse_staff_csv: rows an invitation can be made of (each field checked and storable), or a
    StaffCsvError whose fields are ``file`` or ``rows[<line>].<column>`` with a code of docs/PROTOCOL.md 10.3."""
    try:
        rows = parse_staff_csv(text)
    except StaffCsvError as exc:
        assert exc.fields and str(exc)
        for key, code in exc.fields.items():
            if key == "file":
                assert code in FILE_CODES, (key, code)
            else:
                assert _CELL_KEY.fullmatch(key), key
                assert code in ROW_CODES or (code == "not_csv" and "." not in key), (key, code)
        return "refused"
    assert 1 <= len(rows) <= MAX_ROWS
    for row in rows:
        assert row.name and len(row.name) <= MAX_NAME and storable(row.name), row
        assert EMAIL.fullmatch(row.login) and len(row.login) <= 200, row
        assert row.roles and set(row.roles) <= set(ROLES), row
        assert not row.classes or "teacher" in row.roles, row
        assert all(label and storable(label) for label in row.classes), row
    assert len({row.login for row in rows}) == len(rows)
    return "ok"
