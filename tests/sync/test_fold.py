"""The fold, table-driven: each row is a script of events written by fictional staff on several devices, the
order they are delivered in, and what the folded state must show."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sync.events import Event
from sync.fold import FLAGS, fold, frontier
from tests.vectors._fold_cases import RESTRICTED, YEAR, Scene

ALL = None  # parents: everything written so far
Step = tuple[str, str, str, str, Any, dict[str, Any]]  # label, device, user, type, parent labels, body


def resolve(value: Any, scene: Scene) -> Any:
    """Placeholders in a script: P0..P2 are pupils, @name a member of staff."""
    if isinstance(value, str) and value in ("P0", "P1", "P2"):
        return scene.pupils[int(value[1])]
    if isinstance(value, str) and value.startswith("@"):
        return scene.u(value[1:])
    if isinstance(value, str) and value.startswith("pupils.P"):
        return "pupils." + scene.pupils[int(value[-1])]
    if isinstance(value, list):
        return [resolve(v, scene) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, scene) for k, v in value.items()}
    return value


def run(
    name: str,
    steps: list[Step],
    deliver: list[str] | None = None,
    skews: dict[str, int] | None = None,
    safeguarding: tuple[str, ...] = ("dsl", "deputy"),
) -> tuple[Scene, dict[str, Event], dict[str, Any]]:
    scene = Scene(name, skews)
    written: dict[str, Event] = {}
    for label, device, user, type_, parents, body in steps:
        body = resolve(body, scene)
        if type_ == "created":
            written[label] = scene.create(device, user, **body)
            continue
        if isinstance(body.get("resolves"), list):
            body["resolves"] = sorted(written[r].id for r in body["resolves"])
        if isinstance(body.get("target"), str) and body["target"] in written:
            body["target"] = written[body["target"]].id
        chosen = None if parents is ALL else [written[p] for p in parents]
        written[label] = scene.write(device, user, type_, parents=chosen, **body)
    events = [written[k] for k in deliver] if deliver else list(written.values())
    state = fold(events, safeguarding=[scene.u(u) for u in safeguarding], restricted_categories=RESTRICTED)
    return scene, written, state


C: Step = ("c", "tablet", "ta", "created", [], {})
SCENARIOS: list[tuple[str, list[Step], dict[str, Any], dict[str, Any]]] = [
    (
        "single_create",
        [C],
        {},
        {
            "values.status": ["open"],
            "values.kind": ["safeguarding_concern"],
            "conflicts": [],
            "restricted": False,
            "pupils": {"P0": ["subject"]},
            "entry_key_version": 1,
        },
    ),
    (
        "sequential_amends",
        [
            C,
            ("a", "tablet", "ta", "amended", ALL, {"field": "location", "value": "Hall"}),
            ("b", "phone", "teacher", "amended", ALL, {"field": "location", "value": "Stage"}),
        ],
        {},
        {"values.location": ["Stage"], "conflicts": []},
    ),
    (
        "concurrent_amends_conflict",
        [
            C,
            ("a", "tablet", "ta", "amended", ["c"], {"field": "location", "value": "Hall"}),
            ("b", "phone", "teacher", "amended", ["c"], {"field": "location", "value": "Stage"}),
        ],
        {},
        {
            "values.location": ["Hall", "Stage"],
            "conflicts": ["location"],
            "flags.a": ["conflict"],
            "flags.b": ["conflict"],
        },
    ),
    (
        "concurrent_same_value",
        [
            C,
            ("a", "tablet", "ta", "amended", ["c"], {"field": "location", "value": "Hall"}),
            ("b", "phone", "teacher", "amended", ["c"], {"field": "location", "value": "Hall"}),
        ],
        {},
        {"values.location": ["Hall", "Hall"], "conflicts": [], "flags.a": []},
    ),
    (
        "resolution_names_both",
        [
            C,
            ("a", "tablet", "ta", "amended", ["c"], {"field": "location", "value": "Hall"}),
            ("b", "phone", "teacher", "amended", ["c"], {"field": "location", "value": "Stage"}),
            (
                "r",
                "laptop",
                "dsl",
                "conflict_resolved",
                ["a", "b"],
                {"field": "location", "value": "Hall stage", "resolves": ["a", "b"]},
            ),
        ],
        {},
        {"values.location": ["Hall stage"], "conflicts": [], "flags.a": [], "flags.b": []},
    ),
    (
        "resolution_misses_a_third",
        [
            C,
            ("a", "tablet", "ta", "amended", ["c"], {"field": "location", "value": "Hall"}),
            ("b", "phone", "teacher", "amended", ["c"], {"field": "location", "value": "Stage"}),
            ("x", "office", "deputy", "amended", ["c"], {"field": "location", "value": "Gym"}),
            (
                "r",
                "laptop",
                "dsl",
                "conflict_resolved",
                ["a", "b"],
                {"field": "location", "value": "Hall", "resolves": ["a", "b"]},
            ),
        ],
        {},
        {"values.location": ["Gym", "Hall"], "conflicts": ["location"], "flags.a": [], "flags.x": ["conflict"]},
    ),
    (
        "clear_conflicts_with_edit",
        [
            C,
            ("a", "tablet", "ta", "amended", ["c"], {"field": "location", "value": "Hall"}),
            ("b", "phone", "teacher", "amended", ["c"], {"field": "location", "value": None}),
        ],
        {},
        {"values.location": ["Hall", None], "conflicts": ["location"]},
    ),
    (
        "restricted_by_anyone",
        [
            C,
            (
                "r",
                "phone",
                "teacher",
                "restriction_changed",
                ALL,
                {"restricted": True, "reason": "Sensitive.", "entry_key_version": 2},
            ),
        ],
        {},
        {"restricted": True, "restricting": ["r"], "entry_key_version": 2},
    ),
    (
        "lift_by_dsl",
        [
            ("c", "tablet", "ta", "created", [], {"category": "cse"}),
            ("l", "laptop", "dsl", "restriction_changed", ALL, {"restricted": False, "reason": "Reviewed."}),
        ],
        {},
        {"restricted": False, "flags.l": []},
    ),
    (
        "lift_by_teacher_ignored",
        [
            ("c", "tablet", "ta", "created", [], {"category": "cse"}),
            ("l", "phone", "teacher", "restriction_changed", ALL, {"restricted": False, "reason": "."}),
        ],
        {},
        {"restricted": True, "restricting": ["c"], "flags.l": ["not_authorised"]},
    ),
    (
        "lift_then_restrict_again",
        [
            ("c", "tablet", "ta", "created", [], {"category": "cse"}),
            ("l", "laptop", "dsl", "restriction_changed", ALL, {"restricted": False, "reason": "."}),
            (
                "k",
                "laptop",
                "dsl",
                "reclassified",
                ALL,
                {"kind": "safeguarding_concern", "category": "fgm", "entry_key_version": 2},
            ),
        ],
        {},
        {"restricted": True, "restricting": ["k"], "values.category": ["fgm"]},
    ),
    (
        "reclassify_out_does_not_lift",
        [
            ("c", "tablet", "ta", "created", [], {"category": "cse"}),
            (
                "k",
                "laptop",
                "teacher",
                "reclassified",
                ALL,
                {"kind": "behaviour_incident", "category": "behaviour_db", "entry_key_version": 1},
            ),
        ],
        {},
        {"restricted": True, "values.category": ["behaviour_db"], "values.kind": ["behaviour_incident"]},
    ),
    (
        "lift_concurrent_with_restrict",
        [
            C,
            (
                "r",
                "phone",
                "teacher",
                "restriction_changed",
                ["c"],
                {"restricted": True, "reason": ".", "entry_key_version": 2},
            ),
            ("l", "laptop", "dsl", "restriction_changed", ["c"], {"restricted": False, "reason": "."}),
        ],
        {},
        {"restricted": True, "restricting": ["r"]},
    ),
    (
        "pupil_roles_kept_apart",
        [
            C,
            (
                "p",
                "tablet",
                "teacher",
                "pupils_linked",
                ALL,
                {"pupils": [{"pupil": "P1", "role": "alleged_perpetrator"}, {"pupil": "P2", "role": "witness"}]},
            ),
            ("u", "laptop", "dsl", "pupils_unlinked", ALL, {"pupils": ["P2"]}),
        ],
        {},
        {"pupils": {"P0": ["subject"], "P1": ["alleged_perpetrator"]}, "conflicts": []},
    ),
    (
        "pupil_role_conflict",
        [
            C,
            ("a", "tablet", "teacher", "pupils_linked", ["c"], {"pupils": [{"pupil": "P1", "role": "victim"}]}),
            ("b", "phone", "ta", "pupils_linked", ["c"], {"pupils": [{"pupil": "P1", "role": "witness"}]}),
            ("r", "laptop", "dsl", "pupils_linked", ["a", "b"], {"pupils": [{"pupil": "P1", "role": "victim"}]}),
        ],
        {"deliver": ["c", "a", "b"]},
        {"pupils": {"P0": ["subject"], "P1": ["victim", "witness"]}, "conflicts": ["pupils.P1"]},
    ),
    (
        "pupil_role_conflict_resolved_later",
        [
            C,
            ("a", "tablet", "teacher", "pupils_linked", ["c"], {"pupils": [{"pupil": "P1", "role": "victim"}]}),
            ("b", "phone", "ta", "pupils_linked", ["c"], {"pupils": [{"pupil": "P1", "role": "witness"}]}),
            ("r", "laptop", "dsl", "pupils_linked", ["a", "b"], {"pupils": [{"pupil": "P1", "role": "victim"}]}),
        ],
        {},
        {"pupils": {"P0": ["subject"], "P1": ["victim"]}, "conflicts": []},
    ),
    (
        "unlink_concurrent_with_link",
        [
            C,
            ("u", "tablet", "teacher", "pupils_unlinked", ["c"], {"pupils": ["P0"]}),
            ("l", "phone", "ta", "pupils_linked", ["c"], {"pupils": [{"pupil": "P0", "role": "victim"}]}),
        ],
        {},
        {"pupils": {"P0": ["victim"]}, "conflicts": ["pupils.P0"]},
    ),
    (
        "status_lifecycle",
        [C] + [(s, "laptop", "dsl", "status_changed", ALL, {"status": s}) for s in ("awaiting", "closed", "reopened")],
        {},
        {"values.status": ["reopened"]},
    ),
    (
        "retraction_by_creator",
        [C, ("x", "tablet", "ta", "retracted", ALL, {"reason": "Logged in error."})],
        {},
        {"retracted": True, "flags.x": [], "history_len": 2},
    ),
    (
        "retraction_by_stranger",
        [C, ("x", "phone", "teacher", "retracted", ALL, {"reason": "Not mine."})],
        {},
        {"retracted": False, "flags.x": ["not_authorised"]},
    ),
    (
        "retract_comment",
        [
            C,
            ("m", "phone", "teacher", "comment", ALL, {"text": "Wrong record."}),
            ("x", "laptop", "dsl", "retracted", ALL, {"reason": "Wrong record.", "target": "m"}),
        ],
        {},
        {"comments": [("Wrong record.", True)], "retracted": False},
    ),
    (
        "cannot_retract_an_amendment",
        [
            C,
            ("a", "tablet", "ta", "amended", ALL, {"field": "location", "value": "Hall"}),
            ("x", "laptop", "dsl", "retracted", ALL, {"reason": "Undo.", "target": "a"}),
        ],
        {},
        {"values.location": ["Hall"], "flags.x": ["not_retractable"]},
    ),
    (
        "actions_and_assignment",
        [
            C,
            ("a", "laptop", "dsl", "action_added", ALL, {"action": {"text": "Call home.", "owner": "@deputy"}}),
            ("s", "laptop", "dsl", "assigned", ALL, {"assignee": "@deputy"}),
        ],
        {},
        {"actions": ["Call home."], "values.assignee": ["@deputy"]},
    ),
    (
        "missing_parent_is_provisional",
        [
            C,
            ("a", "tablet", "ta", "comment", ALL, {"text": "One."}),
            ("b", "laptop", "dsl", "status_changed", ALL, {"status": "closed"}),
        ],
        {"deliver": ["c", "b"]},
        {"missing_parents": 1, "flags.b": ["conflict", "unknown_parent"], "conflicts": ["status"]},
    ),
    (
        "skewed_clocks_year",
        [
            ("c", "tablet", "ta", "created", [], {}),
            ("a", "phone", "teacher", "amended", ALL, {"field": "location", "value": "Gym"}),
            ("b", "tablet", "ta", "amended", ALL, {"field": "location", "value": "Gym store"}),
        ],
        {"skews": {"tablet": -YEAR, "phone": YEAR}},
        {"values.location": ["Gym store"], "conflicts": []},
    ),
]


@pytest.mark.parametrize(("name", "steps", "options", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_scenario(name: str, steps: list[Step], options: dict[str, Any], expected: dict[str, Any]) -> None:
    scene, written, state = run(name, steps, options.get("deliver"), options.get("skews"))
    ids = {e.id: label for label, e in written.items()}
    history = {ids[h["event"]]: h for h in state["history"]}
    for key, want in expected.items():
        want = resolve(want, scene)
        kind, _, arg = key.partition(".")
        if kind == "values":
            got: Any = [c["value"] for c in state["fields"].get(arg, [])]
        elif kind == "flags":
            got = history[arg]["flags"]
        elif kind == "pupils":
            got = {p["pupil"]: p["roles"] for p in state["pupils"]}
            want = {resolve(k, scene): v for k, v in want.items()}
        elif kind == "restricting":
            got = [ids[i] for i in state["restricting"]]
        elif kind == "retracted":
            got = bool(state["retracted_by"])
        elif kind == "comments":
            got = [(c["text"], bool(c["retracted_by"])) for c in state["comments"]]
        elif kind == "actions":
            got = [a["text"] for a in state["actions"]]
        elif kind == "missing_parents":
            got = len(state["missing_parents"])
        elif kind == "history_len":
            got = len(state["history"])
        else:
            got = state[kind]
        assert got == want, f"{key}: {got!r} != {want!r}"
    assert all(set(h["flags"]) <= set(FLAGS) for h in state["history"])
    events = list(written.values()) if not options.get("deliver") else [written[k] for k in options["deliver"]]
    rng = random.Random(name)
    for _ in range(3):
        again = events * 2
        rng.shuffle(again)
        assert fold(again, safeguarding=[scene.u("dsl"), scene.u("deputy")], restricted_categories=RESTRICTED) == state


def test_fold_of_nothing_is_empty() -> None:
    state = fold([])
    assert state["concern"] is None and state["history"] == [] and state["fields"] == {} and not state["restricted"]


def test_fold_refuses_events_of_two_concerns() -> None:
    a, b = Scene("one"), Scene("two")
    with pytest.raises(ValueError):
        fold([a.create(), b.create()])


def test_lift_authority_is_whatever_set_is_passed_in() -> None:
    steps: list[Step] = [
        ("c", "tablet", "ta", "created", [], {"category": "cse"}),
        ("l", "phone", "teacher", "restriction_changed", ALL, {"restricted": False, "reason": "."}),
    ]
    assert run("authority", steps)[2]["restricted"] is True
    assert run("authority", steps, safeguarding=("teacher",))[2]["restricted"] is False


def test_server_side_data_reaches_the_history_only() -> None:
    scene, written, state = run("received", [C, ("m", "phone", "teacher", "comment", ALL, {"text": "Trip."})])
    m = written["m"]
    with_rx = fold(written.values(), received={m.id: {"received_ms": m.device_time_ms + 9, "seq": 7}})
    plain = fold(written.values())
    assert {k: v for k, v in with_rx.items() if k != "history"} == {k: v for k, v in plain.items() if k != "history"}
    entry = next(h for h in with_rx["history"] if h["event"] == m.id)
    assert (entry["received_ms"], entry["seq"], entry["device_time_ms"]) == (m.device_time_ms + 9, 7, m.device_time_ms)


def test_equivocation_keeps_one_copy_by_a_fixed_rule_whatever_arrives_first() -> None:
    scene = Scene("equivocation")
    c = scene.create()
    a = scene.write("tablet", "ta", "comment", text="One.")
    scene2 = Scene("equivocation")  # same ids and clocks, different words
    scene2.create()
    b = scene2.write("tablet", "ta", "comment", text="Two.")
    assert a.id == b.id and a.content != b.content
    first, second = fold([c, a, b]), fold([b, c, a])
    assert first == second and first["equivocations"] == [a.id]
    assert len(first["comments"]) == 1 and "equivocation" in first["history"][-1]["flags"]


def test_a_self_parent_or_later_parent_is_ignored_not_followed() -> None:
    scene = Scene("cycle")
    c = scene.create()
    a = scene.write("tablet", "ta", "comment", text="A.")
    state = fold([c, a])
    assert state["history"][1]["flags"] == []
    assert frontier([c, a]) == [a.id]
    assert frontier([a]) == [a.id]


def test_nothing_written_is_dropped() -> None:
    """Every value any event wrote is either in the state or in the body of a history entry."""
    scene, written, state = run("kept", SCENARIOS[2][1])
    bodies = [h["body"] for h in state["history"]]
    for e in written.values():
        assert dict(e.body) in bodies
    assert len(state["history"]) == len(written)
