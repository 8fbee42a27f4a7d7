"""Nothing hidden, nothing leaked, no divergence (issue 13 item 4): random schedules of writing, granting, class
changes, restricting, lifting, need-to-know, leaving, revoking, rotation, reconnecting, restarts and duplicated
and reordered delivery, across the DSL, a deputy, two class teachers (one with two devices), the SENCo, a
lunchtime supervisor and the office, on the real server and the real Python clients. After each schedule
quiesces, every device must show exactly the events an independent model of the schedule says it may read
(tests/visibility/_model.py), and devices holding the same events of a concern must fold them to the same
state. How it works: tests/visibility/_world.py.

The checker is shown to see: with the backfill of late keys switched off (issue 13 item 1) or entry key
grants ignored (item 4), it finds a schedule with hidden events among the first it generates.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings

from sync.client import SyncClient, SyncReport
from sync.reader import Reader

from ._run import Staged, first_where, staged
from ._steps import EXAMPLES, LATE_KEYS, NAMED_LATE, NAMER_LEAVES, steps

SCHEDULES = {"sqlite": 300, "postgres": 20}  # PostgreSQL copies a database per schedule: fewer, on the same code
SEARCH = 150  # generated schedules the switch tests may run, after their example, before the checker must see it


@pytest.fixture(scope="module")
def stages(tmp_path_factory):  # type: ignore[no-untyped-def]
    """One template school and server per database kind, built on first use and shared by this module."""
    made: dict[str, Staged] = {}

    def get(kind: str) -> Staged:
        if kind not in made:
            if kind == "postgres":
                _postgres_or_skip()
            made[kind] = staged(kind, tmp_path_factory.mktemp(f"visibility-{kind}"))
        return made[kind]

    yield get
    for s in made.values():
        s.close()


def _postgres_or_skip() -> None:
    import asyncio

    import asyncpg

    from ._school import admin_url

    async def probe() -> None:
        conn = await asyncpg.connect(admin_url(), timeout=10)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL answers at {admin_url().split('@')[-1]} (set CAIRN_TEST_POSTGRES_URL): {exc}")


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_device_shows_exactly_what_it_may_read_and_folds_alike(stages, kind: str) -> None:
    where = stages(kind)
    before = where.runs

    @settings(max_examples=SCHEDULES[kind], derandomize=True, database=None, deadline=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck))
    @given(steps)
    def schedule(steps: list[tuple]) -> None:
        result = where.run(steps)
        assert result.clean, "\n".join(result.notes)

    for known in reversed(EXAMPLES):
        schedule = example(known)(schedule)
    schedule()
    assert where.runs - before >= SCHEDULES[kind] + len(EXAMPLES)  # the generator did not run dry


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
