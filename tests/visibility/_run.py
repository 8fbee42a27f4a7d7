"""Running many schedules on one server: an event loop, a template school and a ``Stage``, kept together for a
module of tests or a bench run, and ``first_where``, which runs generated schedules until one meets a condition."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import seed as _seed

from ._school import Stage, drop_template, make_template
from ._steps import steps
from ._world import Result, run_schedule


@dataclass
class Staged:
    kind: str
    loop: asyncio.AbstractEventLoop
    stage: Stage
    runs: int = 0

    def run(self, schedule: list[tuple]) -> Result:
        self.runs += 1
        seed = zlib.crc32(repr(schedule).encode())  # the checker's own shuffles: fixed by the schedule
        return self.loop.run_until_complete(run_schedule(self.stage, list(schedule), seed))

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.stage.stop())
            self.loop.run_until_complete(drop_template(self.stage.template))
        finally:
            self.loop.close()


def staged(kind: str, folder: Path) -> Staged:
    """Build the template school on ``kind`` (sqlite, postgres) and start the server schedules share."""
    loop = asyncio.new_event_loop()
    try:
        template = loop.run_until_complete(make_template(kind, folder))
        stage = Stage(template)
        idle = folder / "idle"
        idle.mkdir()
        loop.run_until_complete(stage.start(idle))
    except BaseException:
        loop.close()
        raise
    return Staged(kind, loop, stage)


class Found(Exception):
    """A generated schedule met the condition ``first_where`` looked for."""

    def __init__(self, schedule: list[tuple], result: Result) -> None:
        super().__init__(f"{result.hidden} hidden, {result.leaked} leaked, {result.diverged} diverged: {schedule!r}")
        self.schedule, self.result = schedule, result


def first_where(where: Staged, condition: Callable[[Result], bool], up_to: int,
                examples: Sequence[list[tuple]] = ()) -> Found | None:
    """Run ``examples``, then up to ``up_to`` schedules of the same generator the property test uses
    (deterministically), and return the first whose result meets ``condition``, or None."""

    @settings(max_examples=up_to, derandomize=True, database=None, deadline=None,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False)
    @given(steps)
    def search(schedule: list[tuple]) -> None:
        result = where.run(schedule)
        if condition(result):
            raise Found(schedule, result)

    for schedule in reversed(examples):  # hypothesis runs explicit examples in the order they are applied
        search = example(schedule)(search)

    try:
        search()
    except Found as found:
        return found
    return None


def check_schedules(where: Staged, count: int, *, seed: int, examples: Sequence[list[tuple]] = ()) -> None:
    """Run ``examples`` and ``count`` generated schedules (fixed by ``seed``) and fail, shrunk, on the first
    whose result is not clean: something hidden, leaked or diverged."""
    before = where.runs

    @_seed(seed)
    @settings(max_examples=count, database=None, deadline=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink), suppress_health_check=list(HealthCheck))
    @given(steps)
    def schedule(steps: list[tuple]) -> None:
        result = where.run(steps)
        assert result.clean, "\n".join(result.notes)

    for known in reversed(examples):
        schedule = example(known)(schedule)
    schedule()
    assert where.runs - before >= count + len(examples)  # the generator did not run dry
