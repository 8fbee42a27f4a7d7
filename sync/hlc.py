"""Hybrid logical clocks (Kulkarni et al., 2014) as pure functions over ``(wall_ms, counter)`` pairs.

An HLC reading is the device's clock in Unix milliseconds, pushed forward past every reading the device
has seen, plus a counter that breaks ties within one millisecond. A new event's reading is strictly
greater than its device's previous reading and than every event it names as a parent, whatever the
device's own clock says: so causal order implies HLC order even when clocks are wrong by a year.

The total order of events is ``(wall_ms, counter, device, event id)``: the device id breaks ties between
devices, the event id the (buggy) case of one device reusing a reading. docs/PROTOCOL.md section 8.2.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from .record import ClockSkew

__all__ = ["Hlc", "next_hlc", "order_key", "MAX_WALL_MS", "MAX_COUNTER", "MAX_SKEW_MS"]

MAX_WALL_MS = 2**48 - 1
MAX_COUNTER = 2**32 - 1
MAX_SKEW_MS = 2 * 366 * 24 * 3600 * 1000
"""How far ahead of this device's clock a seen reading may be: two years, so that any two devices each up to
a year fast or slow still work together, while a reading from a clock set centuries ahead is refused."""


class Hlc(NamedTuple):
    wall_ms: int
    counter: int

    def __str__(self) -> str:
        return f"{self.wall_ms}.{self.counter}"


def next_hlc(last: Hlc | None, now_ms: int, seen: Iterable[Hlc] = ()) -> Hlc:
    """The reading for a new event: greater than ``last`` (this device's previous reading) and every ``seen``.

    ``seen`` holds the readings of the events the new event names as parents. A seen reading more than
    ``MAX_SKEW_MS`` ahead of ``now_ms`` raises ``ClockSkew``; the caller then leaves that event out of the
    parents (the edit shows as concurrent, so nothing is lost) and asks a person to check the clocks.
    """
    if not 0 <= now_ms <= MAX_WALL_MS:
        raise ValueError(f"now_ms must be from 0 to {MAX_WALL_MS}, not {now_ms}")
    top = last
    for h in seen:
        if h.wall_ms > now_ms + MAX_SKEW_MS:
            raise ClockSkew(f"choosing a clock reading: a parent is {h.wall_ms - now_ms} ms ahead of this device")
        if top is None or h > top:
            top = h
    if top is None or now_ms > top.wall_ms:
        return Hlc(now_ms, 0)
    if top.counter < MAX_COUNTER:
        return Hlc(top.wall_ms, top.counter + 1)
    if top.wall_ms < MAX_WALL_MS:
        return Hlc(top.wall_ms + 1, 0)
    raise ClockSkew("choosing a clock reading: the clock is exhausted")


def order_key(hlc: Hlc, device: str, event_id: str) -> tuple[int, int, str, str]:
    """The total order of events: HLC, then device id, then event id (ids as lower-case hex)."""
    return (hlc.wall_ms, hlc.counter, device, event_id)
