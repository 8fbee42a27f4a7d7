"""The visibility checker is shown to see the bugs it was built for: with the backfill of late keys switched off
(issue 13 item 1) or entry key grants ignored (item 4), it finds a schedule with hidden events among the first
it generates; and the gap it found later (a naming that died with its keyholder) stays closed."""

from __future__ import annotations

from sync.client import SyncClient, SyncReport
from sync.reader import Reader

from ._run import first_where
from ._steps import LATE_KEYS, NAMED_LATE, NAMER_LEAVES

SEARCH = 150  # generated schedules the switch tests may run, after their example, before the checker must see it


def test_the_checker_sees_keys_that_arrive_after_a_pull_left_unread(stages, monkeypatch) -> None:
    """Issue 13 item 1 on the old code: no backfill, so what a device pulled before its keys came stays unread."""

    async def no_backfill(self, report=None, limit=0):  # type: ignore[no-untyped-def]
        return report or SyncReport()

    monkeypatch.setattr(SyncClient, "backfill", no_backfill)
    found = first_where(stages("sqlite"), lambda r: r.hidden > 0, SEARCH, [LATE_KEYS])
    assert found is not None, f"the checker saw nothing hidden in {SEARCH} schedules without backfill"
    assert found.result.leaked == 0


def test_the_checker_sees_need_to_know_staff_who_read_only_what_follows_their_naming(stages, monkeypatch) -> None:
    """Issue 13 item 4 on the old code: no entry key grants, so a named person reads only what comes after."""

    async def no_entry_grants(self):  # type: ignore[no-untyped-def]
        return 0

    monkeypatch.setattr(Reader, "open_entry_grants", no_entry_grants)
    found = first_where(stages("sqlite"), lambda r: r.hidden > 0, SEARCH, [NAMED_LATE])
    assert found is not None, f"the checker saw nothing hidden in {SEARCH} schedules without entry key grants"
    assert any(step[0] == "name" for step in found.schedule)
    assert found.result.leaked == 0


def test_a_person_named_by_a_keyholder_who_then_leaves_the_team_still_reads_the_whole_concern(stages) -> None:
    """The DSL writes; the deputy names the office on it, then leaves the safeguarding team (its devices are
    revoked). The office still reads the concern from its first event: the server lists the deputy's entry key
    grants in the DSL's duties, and the DSL's device, finding the office named in the concern's fold, seals
    them again (found by the checker when the naming died with its keyholder)."""
    result = stages("sqlite").run(NAMER_LEAVES)
    assert result.clean, "\n".join(result.notes)
