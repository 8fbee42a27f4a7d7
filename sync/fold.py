"""The concern fold: a pure, deterministic function from a set of events to the concern's state and history.

Rules (docs/PROTOCOL.md section 8.5), in short:

- Events are put in the total order ``(hlc, device, id)``. A parent counts only if it is in the set and comes
  earlier in that order, so the causal graph is acyclic whatever a device claims.
- Each single-value field is a multi-value register: its value is every write that no other write of that
  field descends from. Two or more different values are a conflict, shown with both sides; a write whose
  ancestry holds both sides resolves it. Nothing is decided by clock time, so a skewed clock never wins.
- Each linked pupil is a register of its role (``None`` once unlinked); a pupil linked on any side stays linked.
- Actions and comments are sets: they union. An action is done once an authorised ``action_completed`` names it.
- Restriction only grows: every restricting event stays in force until an authorised lift descends from it.
  Only a member of ``safeguarding`` (user ids passed in, because the fold is pure) can lift.
- Nothing is dropped: every distinct event appears once in the history, with flags for what was odd about it.

The JavaScript twin (pwa/js/fold.js) gives the same output for the same input; the vectors under
tests/vectors/fold/ hold both to it.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from .events import Event

__all__ = ["fold", "frontier", "FLAGS"]

FLAGS = (
    "conflict",  # one side of a conflict that is still open
    "equivocation",  # two different events arrived under this id; the one with the smaller content is kept
    "not_an_action",  # an action_completed aimed at an event that is not an action
    "not_authorised",  # a lift or retraction by someone the rules do not allow; it has no effect
    "not_retractable",  # a retraction aimed at an event that is not a comment or an action
    "parent_not_before",  # names a parent that does not come earlier in the total order; that link is ignored
    "unknown_parent",  # names a parent that is not (yet) in the set
    "unknown_target",  # a retraction aimed at an event that is not (yet) in the set
)


def _order(e: Event) -> tuple[int, int, str, str]:
    return (e.hlc[0], e.hlc[1], e.device, e.id)


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _dedupe(events: Iterable[Event]) -> tuple[str | None, dict[str, Event], set[str]]:
    by_id: dict[str, Event] = {}
    equivocal: set[str] = set()
    concern: str | None = None
    for e in events:
        if concern is None:
            concern = e.concern
        elif e.concern != concern:
            raise ValueError(f"fold takes the events of one concern; got {concern} and {e.concern}")
        old = by_id.get(e.id)
        if old is None:
            by_id[e.id] = e
        elif old != e:
            equivocal.add(e.id)
            if (e.content, e.device, e.device_time_ms) < (old.content, old.device, old.device_time_ms):
                by_id[e.id] = e
    return concern, by_id, equivocal


def fold(
    events: Iterable[Event],
    *,
    safeguarding: Collection[str] = (),
    restricted_categories: Collection[str] = (),
    received: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, Any]:
    """Fold one concern's events (any order, duplicates allowed) into its state, as plain JSON-ready data.

    ``safeguarding``: user ids with safeguarding authority (may lift a restriction, retract any event).
    ``restricted_categories``: category ids whose default sensitivity is restricted.
    ``received``: optional side data per event id (``received_ms``, ``seq``), copied into the history only.
    """
    concern, by_id, equivocal = _dedupe(events)
    order = sorted(by_id.values(), key=_order)
    index = {e.id: i for i, e in enumerate(order)}
    n = len(order)
    anc = [0] * n  # bitset of each event's ancestors, by position in ``order``
    flags: dict[int, set[str]] = {}
    missing: set[str] = set()

    def flag(i: int, name: str) -> None:
        flags.setdefault(i, set()).add(name)

    registers: dict[str, list[tuple[int, Any]]] = {}
    pupils: dict[str, list[tuple[int, Any]]] = {}
    actions: list[int] = []
    comments: list[int] = []
    restricting: list[int] = []
    lifts: list[int] = []
    retractions: list[int] = []
    completions: list[int] = []
    created: list[int] = []
    key_version = 0
    restricted_cats = frozenset(restricted_categories)
    safeguarding = frozenset(safeguarding)

    for i, e in enumerate(order):
        a = 0
        for p in e.parents:
            j = index.get(p)
            if j is None:
                missing.add(p)
                flag(i, "unknown_parent")
            elif j < i:
                a |= anc[j] | (1 << j)
            else:
                flag(i, "parent_not_before")
        anc[i] = a
        body, t = e.body, e.type
        if "entry_key_version" in body and body["entry_key_version"] > key_version:
            key_version = body["entry_key_version"]
        if t == "amended" or t == "conflict_resolved":
            field = body["field"]
            registers.setdefault(field, []).append((i, body["value"]))
            if field == "category" and body["value"] in restricted_cats:
                restricting.append(i)
        elif t == "comment":
            comments.append(i)
        elif t == "action_added":
            actions.append(i)
        elif t == "status_changed":
            registers.setdefault("status", []).append((i, body["status"]))
        elif t == "assigned":
            registers.setdefault("assignee", []).append((i, body["assignee"]))
        elif t == "pupils_linked":
            for link in body["pupils"]:
                pupils.setdefault(link["pupil"], []).append((i, link["role"]))
        elif t == "pupils_unlinked":
            for pupil in body["pupils"]:
                pupils.setdefault(pupil, []).append((i, None))
        elif t == "created":
            created.append(i)
            for field, value in body["record"].items():
                if field == "pupils":
                    for link in value:
                        pupils.setdefault(link["pupil"], []).append((i, link["role"]))
                else:
                    registers.setdefault(field, []).append((i, value))
            registers.setdefault("status", []).append((i, "open"))
            if body["record"]["category"] in restricted_cats:
                restricting.append(i)
        elif t == "reclassified":
            registers.setdefault("kind", []).append((i, body["kind"]))
            registers.setdefault("category", []).append((i, body["category"]))
            if body["category"] in restricted_cats:
                restricting.append(i)
        elif t == "restriction_changed":
            if body["restricted"]:
                restricting.append(i)
            elif e.author in safeguarding:
                lifts.append(i)
            else:
                flag(i, "not_authorised")
        elif t == "retracted":
            retractions.append(i)
        elif t == "action_completed":
            completions.append(i)
        else:
            raise ValueError(f"fold: unknown event type {t}")

    def heads(writes: list[tuple[int, Any]]) -> list[tuple[int, Any]]:
        if len(writes) == 1:
            return writes
        covered = 0
        for i, _ in writes:
            covered |= anc[i]
        return [(i, v) for i, v in writes if not covered >> i & 1]

    conflicts: list[str] = []

    def conflicting(name: str, live: list[tuple[int, Any]]) -> None:
        if len(live) > 1 and any(not _same(live[0][1], v) for _, v in live[1:]):
            conflicts.append(name)
            for i, _ in live:
                flag(i, "conflict")

    fields: dict[str, list[dict[str, Any]]] = {}
    for name, writes in registers.items():
        live = heads(writes)
        conflicting(name, live)
        if any(v is not None for _, v in live):
            fields[name] = [{"event": order[i].id, "author": order[i].author, "value": v} for i, v in live]

    linked: list[dict[str, Any]] = []
    for pupil in sorted(pupils):
        live = heads(pupils[pupil])
        roles = sorted({r for _, r in live if r is not None})
        if roles:
            conflicting(f"pupils.{pupil}", live)
            linked.append({"pupil": pupil, "roles": roles, "candidates": [
                {"event": order[i].id, "author": order[i].author, "role": r} for i, r in live]})

    lifted = 0
    for i in lifts:
        lifted |= anc[i]
    live_restricting = [i for i in restricting if not lifted >> i & 1]

    creators = {order[i].author for i in created}
    retracted_concern: list[str] = []
    retracted_items: dict[int, list[str]] = {}
    for i in retractions:
        e = order[i]
        target = e.body.get("target")
        j = index.get(target) if target is not None else None
        if target is not None and j is None:
            flag(i, "unknown_target")
        elif j is None or order[j].type == "created":
            if e.author in safeguarding or e.author in creators:
                retracted_concern.append(e.id)
            else:
                flag(i, "not_authorised")
        elif order[j].type not in ("comment", "action_added"):
            flag(i, "not_retractable")
        elif e.author in safeguarding or e.author == order[j].author:
            retracted_items.setdefault(j, []).append(e.id)
        else:
            flag(i, "not_authorised")

    completed: dict[int, list[str]] = {}
    for i in completions:
        e = order[i]
        j = index.get(e.body["target"])
        if j is None:
            flag(i, "unknown_target")
        elif order[j].type != "action_added":
            flag(i, "not_an_action")
        elif e.author in safeguarding or e.author in (order[j].author, order[j].body["action"]["owner"]):
            completed.setdefault(j, []).append(e.id)
        else:
            flag(i, "not_authorised")

    for event_id in equivocal:
        flag(index[event_id], "equivocation")

    def item(i: int, **extra: Any) -> dict[str, Any]:
        return {"event": order[i].id, "author": order[i].author, **extra, "retracted_by": retracted_items.get(i, [])}

    history = []
    for i, e in enumerate(order):
        entry = {
            "event": e.id, "type": e.type, "author": e.author, "device": e.device, "hlc": [e.hlc[0], e.hlc[1]],
            "device_time_ms": e.device_time_ms, "parents": list(e.parents), "body": e.body,
            "flags": sorted(flags[i]) if i in flags else [],
        }
        side = received.get(e.id) if received else None
        if side:
            for key in ("received_ms", "seq"):
                if key in side:
                    entry[key] = side[key]
        history.append(entry)

    return {
        "concern": concern,
        "created": [order[i].id for i in created],
        "fields": fields,
        "pupils": linked,
        "actions": [item(i, **order[i].body["action"], completed_by=completed.get(i, [])) for i in actions],
        "comments": [item(i, text=order[i].body["text"]) for i in comments],
        "restricted": bool(live_restricting),
        "restricting": [order[i].id for i in live_restricting],
        "retracted_by": retracted_concern,
        "entry_key_version": key_version,
        "conflicts": sorted(conflicts),
        "missing_parents": sorted(missing),
        "equivocations": sorted(equivocal),
        "history": history,
    }


def frontier(events: Iterable[Event]) -> list[str]:
    """The ids a new event should name as parents: those no other event in the set descends from.

    A parent link counts as in ``fold``: only to an event in the set that comes earlier in the total order.
    """
    _, unique, _ = _dedupe(events)
    named = set()
    for e in unique.values():
        for p in e.parents:
            parent = unique.get(p)
            if parent is not None and _order(parent) < _order(e):
                named.add(p)
    return sorted(unique.keys() - named)
