"""Fold benchmark: ``python -m bench.fold``.

10,000 fictional concerns of 20 events each: a created event, then amendments (about one in five written
offline beside another edit, so conflicts and their resolutions occur), comments, actions, status changes,
pupil links and a restriction. The events are decoded once (``decode_events_per_s``, which includes the
canonical-form check); then every concern is folded (``fold_events_per_s``, best of three passes). One core.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from bench._measure import report
from sync.events import Event, decode
from sync.fold import fold

CONCERNS, EVENTS = 10_000, 20
BASE_MS = 1_790_000_000_000
RESTRICTED = ["cse", "sexual_abuse"]


def concern_contents(rng: random.Random) -> list[tuple[bytes, bytes, int, bytes]]:
    """One concern's events as (event id, device, device time, content bytes), in writing order."""
    hexid = lambda: rng.getrandbits(128).to_bytes(16, "big")  # noqa: E731
    users = [hexid().hex() for _ in range(4)]
    devices = [hexid() for _ in range(3)]
    pupils = [hexid().hex() for _ in range(2)]
    written: list[tuple[bytes, dict[str, Any]]] = []
    heads: list[str] = []
    wall = BASE_MS + rng.randrange(10**10)
    for n in range(EVENTS):
        wall += rng.randrange(1, 3_600_000)
        eid = hexid()
        if n == 0:
            body: dict[str, Any] = {
                "type": "created",
                "entry_key_version": 1,
                "record": {
                    "kind": "safeguarding_concern",
                    "category": rng.choice(["neglect", "bullying", "cse"]),
                    "occurred_at": "2026-09-21T08:50",
                    "observed": "Fictional observation " * 8,
                    "pupils": [{"pupil": pupils[0], "role": "subject"}],
                },
            }
            parents: list[str] = []
        else:
            r = rng.random()
            if r < 0.45:
                body = {
                    "type": "amended",
                    "field": rng.choice(["location", "observed", "opinion"]),
                    "value": f"Fictional value {n}",
                }
            elif r < 0.6:
                body = {"type": "comment", "text": f"Fictional follow-up {n}."}
            elif r < 0.7:
                body = {
                    "type": "action_added",
                    "action": {"text": "Call home.", "owner": users[1], "due": "2026-10-01"},
                }
            elif r < 0.8:
                body = {"type": "status_changed", "status": rng.choice(["awaiting", "closed", "reopened"])}
            elif r < 0.9:
                body = {
                    "type": "pupils_linked",
                    "pupils": [{"pupil": pupils[1], "role": rng.choice(["victim", "witness"])}],
                }
            else:
                body = {
                    "type": "restriction_changed",
                    "restricted": True,
                    "reason": "Sensitive.",
                    "entry_key_version": 2,
                }
            concurrent = rng.random() < 0.2 and len(written) > 1
            parents = sorted(written[-1][1]["parents"]) if concurrent else sorted(heads)
        content = {"v": 1, "hlc": [wall, 0], "author": rng.choice(users), "parents": parents, **body}
        heads = [h for h in heads if h not in parents] + [eid.hex()]
        written.append((eid, content))
    return [
        (
            eid,
            rng.choice(devices),
            c["hlc"][0],
            json.dumps(c, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
        )
        for eid, c in written
    ]


def main() -> None:
    rng = random.Random(20260921)
    raw = [(rng.getrandbits(128).to_bytes(16, "big"), concern_contents(rng)) for _ in range(CONCERNS)]
    start = time.perf_counter()
    concerns: list[list[Event]] = [
        [
            decode(content, event_id=eid, concern_id=cid, author_device=dev, device_time_ms=t)
            for eid, dev, t, content in evs
        ]
        for cid, evs in raw
    ]
    total = CONCERNS * EVENTS
    report("decode_events_per_s", total / (time.perf_counter() - start), "per_s")
    best = float("inf")
    safeguarding = ["00" * 16]
    for _ in range(3):
        start = time.perf_counter()
        for events in concerns:
            fold(events, safeguarding=safeguarding, restricted_categories=RESTRICTED)
        best = min(best, time.perf_counter() - start)
    report("fold_events_per_s", total / best, "per_s")
    report("fold_concern_us", best / CONCERNS * 1e6, "us")


if __name__ == "__main__":
    main()
