"""A re-import is a diff (sync/roster_import.py): joiners, leavers, name corrections, class moves and changed
details, each listed before anything is applied, the same pupil found again by UPN."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date, timedelta

from sync.mis import read_csv
from sync.roster_import import plan_import, roster_content

from ._files import csv_export, pupils

TODAY = date(2026, 12, 4)


def pid(upn: str) -> bytes:  # stands in for Device.pupil_id (a keyed hash): any fixed function of the UPN
    return hashlib.blake2b(upn.encode(), digest_size=16).digest()


def held(rows) -> dict[bytes, dict]:  # type: ignore[no-untyped-def]
    """The roster a device opens after importing ``rows``: pupil id -> staff and sensitive fields merged."""
    out = {}
    for p in rows:
        staff, sensitive = roster_content(p)
        out[pid(p.upn)] = {**staff, **sensitive}
    return out


def test_the_first_import_is_all_joiners_and_the_classes_it_needs() -> None:
    rows = [replace(p, leaving_date=None) for p in pupils(40, seed=2, today=TODAY)]
    plan = plan_import({}, rows, pid, classes=["Oak"], today=TODAY)
    assert len(plan.joiners) == 40 and not (plan.leavers or plan.renamed or plan.moved or plan.details)
    assert set(plan.new_classes) == {p.registration_group for p in rows} - {"Oak"}
    assert plan.lines()[0].startswith("40 joining, 0 leaving")


def test_a_re_import_finds_each_pupil_again_by_upn_and_lists_every_kind_of_change() -> None:
    before = [replace(p, leaving_date=None) for p in pupils(30, seed=7, today=TODAY)]
    roster = held(before)
    after = list(before)
    after[0] = replace(after[0], preferred_forename="Wren")  # a name correction
    after[1] = replace(after[1], registration_group="Willow", year_group="6")  # a class move
    after[2] = replace(after[2], sen_status="E", pupil_premium=not after[2].pupil_premium)  # details
    after[3] = replace(after[3], leaving_date=TODAY - timedelta(days=1))  # left yesterday
    gone = after.pop(4)  # no longer in the file
    joiner = pupils(1, seed=99, today=TODAY)[0]
    joiner = replace(joiner, leaving_date=None)
    after.append(joiner)
    long_gone = replace(pupils(1, seed=98, today=TODAY)[0], leaving_date=TODAY - timedelta(days=400))
    after.append(long_gone)
    # a real file, read back: the diff works on what the reader gives
    read = read_csv(csv_export(after, "sims"))
    assert read.ok
    plan = plan_import(roster, read.pupils, pid, classes={p.registration_group for p in before}, today=TODAY)

    assert [c.pupil_id for c in plan.joiners] == [pid(joiner.upn)]
    assert {c.pupil_id for c in plan.leavers} == {pid(after[3].upn), pid(gone.upn)}
    assert [c.fields for c in plan.renamed] == [{"name": (before[0].name, f"Wren {before[0].preferred_surname}")}]
    assert [c.pupil_id for c in plan.moved] == [pid(before[1].upn)]
    assert plan.moved[0].fields["class"] == (before[1].registration_group, "Willow")
    assert [c.pupil_id for c in plan.details] == [pid(before[2].upn)]
    assert plan.details[0].fields["sen"] == (before[2].sen_status, "E")
    assert [p.upn for p in plan.already_left] == [long_gone.upn]
    assert plan.unchanged == 30 - 5
    text = "\n".join(plan.lines())
    assert "1 joining, 2 leaving, 1 name corrections, 1 class moves, 1 with changed details, 25 unchanged" in text
    assert f"not imported (left {long_gone.leaving_date})" in text


def test_the_same_file_again_changes_nothing_and_a_known_leaver_is_not_listed_twice() -> None:
    rows = [replace(p, leaving_date=None) for p in pupils(12, seed=5, today=TODAY)]
    assert plan_import(held(rows), rows, pid, classes={p.registration_group for p in rows}, today=TODAY).empty
    left = replace(rows[0], leaving_date=TODAY - timedelta(days=3))
    roster = held([left, *rows[1:]])
    plan = plan_import(roster, [left, *rows[1:]], pid, classes={p.registration_group for p in rows}, today=TODAY)
    assert plan.empty and plan.unchanged == 12
    plan = plan_import(roster, rows[1:], pid, classes={p.registration_group for p in rows}, today=TODAY)
    assert plan.leavers == ()  # already a leaver in the roster: not leaving again
