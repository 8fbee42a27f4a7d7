"""The ``cairn school import-staff`` verb: the operator (or an IT admin with access to the server's
database) invites a school's staff from a CSV file, all of them or none, and gets one join link each.

The same checks as the admin API's import (server/_staff_csv.py, server/staff.py): every problem is
printed with its line and column, and nothing is written unless the whole file is right.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_import_staff"]


def add_import_staff(school_verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from ._cli_device import _verb

    verb = school_verbs.add_parser(
        "import-staff",
        help="invite a school's staff from a CSV file (name, email, roles, classes) and print their join links",
        description="Invite every person in FILE, or nobody: the file is UTF-8 CSV with a header line naming the "
        "columns name, email, roles and (optionally) classes. Roles are separated by ';' or spaces, class "
        "labels by ';'. Each problem is printed as 'line N, column: code'. Prints one join link per person; "
        "each works once, for 14 days.",
    )
    verb.add_argument("file", metavar="FILE", type=Path, help="the staff CSV file")
    verb.add_argument("--school", required=True, help="the school id (32 hex digits)")
    verb.add_argument(
        "--link-base", default="", help="the app's address, printed before each link (e.g. https://cairn.example)"
    )
    verb.set_defaults(run=_verb(_import_staff))


async def _import_staff(args: argparse.Namespace) -> int:
    import re

    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from ._cli_device import Failure
    from ._staff_csv import StaffCsvError, parse_staff_csv
    from .db import make_engine
    from .migrate import upgrade
    from .models import School
    from .settings import Settings
    from .staff import invite_staff

    if not re.fullmatch(r"[0-9a-f]{32}", args.school):
        raise Failure("a school id is 32 hex digits, as `cairn school create` printed it")
    try:
        text = args.file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise Failure(f"{args.file} is not UTF-8 text; save it from the spreadsheet as 'CSV UTF-8'") from None
    url = Settings.from_env().database_url
    try:
        await upgrade(url)
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                known = await conn.scalar(select(School.id).where(School.id == bytes.fromhex(args.school)))
            if known is None:
                raise Failure(f"no school {args.school} in this database")
            invited = await invite_staff(engine, bytes.fromhex(args.school), parse_staff_csv(text))
        finally:
            await engine.dispose()
    except StaffCsvError as exc:
        for where, code in sorted(exc.fields.items(), key=lambda item: _line(item[0])):
            print(f"  {_where(where)}: {code}")
        raise Failure(f"{args.file}: {exc}") from None
    except SQLAlchemyError as exc:
        raise Failure(f"inviting staff: {exc}") from None
    for person in invited:
        print(f"{person.login}\t{args.link_base.rstrip('/')}/#join={args.school}.{person.code}")
    print(f"invited {len(invited)} staff; each link works once, within 14 days")
    return 0


def _line(where: str) -> int:
    import re

    found = re.match(r"rows\[(\d+)\]", where)
    return int(found.group(1)) if found else 0


def _where(where: str) -> str:
    """``rows[3].email`` as ``line 3, email``; ``file`` as it is."""
    import re

    found = re.fullmatch(r"rows\[(\d+)\](?:\.(\w+))?", where)
    if not found:
        return where
    return f"line {found.group(1)}" + (f", {found.group(2)}" if found.group(2) else "")
