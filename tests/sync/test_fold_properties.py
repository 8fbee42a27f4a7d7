"""Fold properties (hypothesis): devices editing offline with skewed clocks, synced now and then, the events
delivered in any order with duplicates. Every replica reaches the same state, every event is accounted for,
every concurrent edit is kept on both sides, and restriction only grows until safeguarding lifts it."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.events import Event
from sync.fold import fold, frontier
from tests.vectors._fold_cases import RESTRICTED, YEAR, Scene

DEVICES = ("tablet", "phone", "laptop", "office")
USERS = ("dsl", "teacher", "ta", "deputy")
FIELDS = ("location", "observed", "opinion")
SAFEGUARDING = ("dsl", "deputy")

op = st.one_of(
    st.tuples(st.just("amend"), st.integers(0, 3), st.integers(0, 3), st.sampled_from(FIELDS), st.integers(0, 3)),
    st.tuples(
        st.just("status"), st.integers(0, 3), st.integers(0, 3), st.sampled_from(["awaiting", "closed", "reopened"])
    ),
    st.tuples(
        st.just("link"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 2), st.sampled_from(["victim", "witness"])
    ),
    st.tuples(st.just("unlink"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("comment"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("restrict"), st.integers(0, 3), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("reclassify"), st.integers(0, 3), st.integers(0, 3), st.sampled_from(["cse", "neglect", "fgm"])),
    st.tuples(st.just("resolve"), st.integers(0, 3), st.integers(0, 3), st.sampled_from(FIELDS)),
    st.tuples(st.just("sync"), st.integers(0, 3), st.integers(0, 3)),
)
scripts = st.tuples(
    st.lists(st.integers(-YEAR, YEAR), min_size=4, max_size=4),
    st.lists(op, min_size=1, max_size=25),
    st.integers(0, 2**32),
)


def play(skews: list[int], ops: list[tuple[Any, ...]]) -> tuple[Scene, list[Event]]:
    """Run a script: each device writes on what it has seen, and learns more only when it syncs."""
    scene = Scene("property", dict(zip(DEVICES, skews, strict=True)))
    created = scene.create(DEVICES[0], "ta")
    known: list[set[str]] = [{created.id}] + [set() for _ in DEVICES[1:]]
    by_id = {created.id: created}
    for step in ops:
        kind, d = step[0], step[1]
        if kind == "sync":
            known[d] |= known[step[2]]
            continue
        if not known[d]:
            known[d] |= known[0]  # a device starts by pulling the concern
        parents = [by_id[i] for i in frontier(by_id[i] for i in known[d])]
        user = USERS[step[2]]
        write: dict[str, Any]
        if kind == "amend":
            write = {"type_": "amended", "field": step[3], "value": f"{step[3]} {step[4]} by {user}"}
        elif kind == "status":
            write = {"type_": "status_changed", "status": step[3]}
        elif kind == "link":
            write = {"type_": "pupils_linked", "pupils": [{"pupil": scene.pupils[step[3]], "role": step[4]}]}
        elif kind == "unlink":
            write = {"type_": "pupils_unlinked", "pupils": [scene.pupils[step[3]]]}
        elif kind == "comment":
            write = {"type_": "comment", "text": f"Comment by {user}."}
        elif kind == "restrict":
            write = {"type_": "restriction_changed", "restricted": step[3], "reason": "Reviewed."}
            if step[3]:
                write["entry_key_version"] = 2
        elif kind == "reclassify":
            write = {
                "type_": "reclassified",
                "kind": "safeguarding_concern",
                "category": step[3],
                "entry_key_version": 2,
            }
        else:  # resolve whatever the device sees of this field
            write = {"type_": "amended", "field": step[3], "value": f"{step[3]} merged by {user}"}
        type_ = write.pop("type_")
        event = scene.write(DEVICES[d], user, type_, parents=parents, after=1, **write)
        by_id[event.id] = event
        known[d].add(event.id)
    return scene, list(by_id.values())


def options(scene: Scene) -> dict[str, Any]:
    return {"safeguarding": [scene.u(u) for u in SAFEGUARDING], "restricted_categories": RESTRICTED}


def ancestors(events: list[Event]) -> dict[str, set[str]]:
    """The oracle: each event's ancestors within the set, by walking parents (every link here is valid)."""
    by_id = {e.id: e for e in events}
    memo: dict[str, set[str]] = {}

    def walk(i: str) -> set[str]:
        if i not in memo:
            out: set[str] = set()
            for p in by_id[i].parents:
                if p in by_id:
                    out |= {p} | walk(p)
            memo[i] = out
        return memo[i]

    return {i: walk(i) for i in by_id}


def register_writes(e: Event) -> list[tuple[str, Any]]:
    if e.type == "amended":
        return [(e.body["field"], e.body["value"])]
    if e.type == "status_changed":
        return [("status", e.body["status"])]
    if e.type == "created":
        return [(k, v) for k, v in e.body["record"].items() if k != "pupils"] + [("status", "open")]
    if e.type == "reclassified":
        return [("kind", e.body["kind"]), ("category", e.body["category"])]
    return []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts)
def test_replicas_converge_whatever_the_order_duplicates_and_clocks(script: tuple[list[int], list[Any], int]) -> None:
    skews, ops, seed = script
    scene, events = play(skews, ops)
    rng = random.Random(seed)
    reference = fold(events, **options(scene))
    for _ in range(4):
        delivered = events + rng.choices(events, k=rng.randint(0, len(events)))
        rng.shuffle(delivered)
        assert fold(delivered, **options(scene)) == reference
    assert sorted(h["event"] for h in reference["history"]) == sorted(e.id for e in events)
    hlcs = [tuple(h["hlc"]) for h in reference["history"]]
    assert hlcs == sorted(hlcs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts)
def test_both_sides_of_every_concurrent_edit_are_kept(script: tuple[list[int], list[Any], int]) -> None:
    skews, ops, _ = script
    scene, events = play(skews, ops)
    state = fold(events, **options(scene))
    anc = ancestors(events)
    writes: dict[str, list[tuple[Event, Any]]] = {}
    for e in events:
        for field, value in register_writes(e):
            writes.setdefault(field, []).append((e, value))
    for field, ws in writes.items():
        heads = [(e.id, v) for e, v in ws if not any(e.id in anc[o.id] for o, _ in ws)]
        shown = [(c["event"], c["value"]) for c in state["fields"].get(field, [])]
        if any(v is not None for _, v in heads):
            assert sorted(shown, key=str) == sorted(heads, key=str), field
        assert (field in state["conflicts"]) == (len({repr(v) for _, v in heads}) > 1), field
        for a, _ in heads:
            for b, _ in heads:
                assert a == b or (a not in anc[b] and b not in anc[a]), "heads are concurrent"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts, st.data())
def test_restriction_only_grows_until_safeguarding_lifts_it(
    script: tuple[list[int], list[Any], int], data: Any
) -> None:
    skews, ops, _ = script
    scene, events = play(skews, ops)
    anc = ancestors(events)
    guard = {scene.u(u) for u in SAFEGUARDING}
    keep = data.draw(st.lists(st.booleans(), min_size=len(events), max_size=len(events)))
    subset = [e for e, k in zip(events, keep, strict=True) if k]
    small, full = fold(subset, **options(scene)), fold(events, **options(scene))
    lifts = [e.id for e in events if e.type == "restriction_changed" and not e.body["restricted"] and e.author in guard]
    for r in small["restricting"]:
        assert r in full["restricting"] or any(r in anc[lift] for lift in lifts), (
            "a restriction vanished without a lift"
        )
    for r in full["restricting"]:
        assert not any(r in anc[lift] for lift in lifts)
    restricting = [
        e.id
        for e in events
        if (e.type == "restriction_changed" and e.body["restricted"])
        or (e.type in ("created", "reclassified") and (e.body.get("record") or e.body)["category"] in RESTRICTED)
    ]
    expected = [r for r in restricting if not any(r in anc[lift] for lift in lifts)]
    assert sorted(full["restricting"]) == sorted(expected)
    assert full["restricted"] == bool(expected)
