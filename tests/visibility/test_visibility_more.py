"""The visibility checker's second half of CI's 300 SQLite schedules (the first: test_visibility.py), with a seed
of its own so that the halves differ, in a file of its own so that another pytest worker runs it."""

from __future__ import annotations

from ._run import check_schedules

SCHEDULES = 150


def test_every_device_shows_exactly_what_it_may_read_and_folds_alike_on_more_schedules(stages) -> None:
    check_schedules(stages("sqlite"), SCHEDULES, seed=2)
