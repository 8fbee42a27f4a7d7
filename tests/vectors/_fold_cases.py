"""Fold vectors: concern event sets and the state both folds must give (docs/PROTOCOL.md section 8).

Inputs: ``events`` (in delivery order, duplicates included) each with the envelope header fields the fold
needs (``id``, ``concern``, ``device``, ``device_time_ms``) and the event ``content`` (hex of the UTF-8
JSON); ``safeguarding`` (user ids); ``restricted_categories``; optionally ``received`` (server side data per
event id). Failure vectors hold one event whose content must be refused, and ``error_fields``: the field
paths and codes the decoder must name. ``Scene`` is also the event builder of tests/sync/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sync.categories import default_categories, restricted_ids
from sync.events import Event, decode, encode
from sync.fold import fold, frontier
from sync.hlc import Hlc, next_hlc
from sync.record import InvalidEvent, UnsupportedEventVersion
from tests.vectors._common import Case, Rng, case

BASE_MS = 1_790_000_000_000  # 2026-09-21, a Monday morning
MINUTE, DAY, YEAR = 60_000, 86_400_000, 365 * 86_400_000
RESTRICTED = sorted(restricted_ids(default_categories()))


@dataclass
class Device:
    id: bytes
    skew_ms: int
    last: Hlc | None = None


class Scene:
    """Devices and staff writing events about one fictional concern, with deterministic ids and clocks."""

    def __init__(self, name: str, skews: dict[str, int] | None = None) -> None:
        self.rng = Rng(f"fold/{name}")
        self.concern = self.rng.bytes(16)
        self.users = {u: self.rng.bytes(16).hex() for u in ("dsl", "deputy", "teacher", "ta", "senco")}
        self.pupils = [self.rng.bytes(16).hex() for _ in range(3)]
        self.devices = {d: Device(self.rng.bytes(16), (skews or {}).get(d, 0))
                        for d in ("tablet", "phone", "laptop", "office")}
        self.events: list[Event] = []
        self.minutes = 0

    def write(self, device: str, user: str, type_: str, *, parents: list[Event] | None = None, after: int = 5,
              **body: Any) -> Event:
        """``user`` on ``device`` writes an event ``after`` minutes on; parents default to everything so far."""
        self.minutes += after
        d = self.devices[device]
        now = BASE_MS + self.minutes * MINUTE + d.skew_ms
        if parents is None:
            parents = [e for e in self.events if e.id in set(frontier(self.events))]
        hlc = next_hlc(d.last, now, [p.hlc for p in parents])
        d.last = hlc
        content = encode({"v": 1, "type": type_, "hlc": list(hlc), "author": self.users[user],
                          "parents": sorted(p.id for p in parents), **body})
        event = decode(content, event_id=self.uuid7(now), concern_id=self.concern, author_device=d.id,
                       device_time_ms=now)
        self.events.append(event)
        return event

    def uuid7(self, ms: int) -> bytes:
        raw = bytearray(ms.to_bytes(6, "big") + self.rng.bytes(10))
        raw[6] = 0x70 | raw[6] & 0x0F
        raw[8] = 0x80 | raw[8] & 0x3F
        return bytes(raw)

    def create(self, device: str = "tablet", user: str = "ta", **record: Any) -> Event:
        base = {"kind": "safeguarding_concern", "category": "neglect", "occurred_at": "2026-09-21T08:50",
                "observed": "Pupil A arrived without a coat for the third day running and said the heating is off.",
                "pupils": [{"pupil": self.pupils[0], "role": "subject"}]}
        return self.write(device, user, "created", parents=[], record={**base, **record}, entry_key_version=1)

    def u(self, user: str) -> str:
        return self.users[user]


def wire(e: Event) -> dict[str, Any]:
    """An event as the vectors hold it: the header fields and the content bytes."""
    return {"id": bytes.fromhex(e.id), "concern": bytes.fromhex(e.concern), "device": bytes.fromhex(e.device),
            "device_time_ms": e.device_time_ms, "content": e.content}


def folded(scene: Scene, delivered: list[Event], **options: Any) -> dict[str, Any]:
    options.setdefault("safeguarding", [scene.u("dsl"), scene.u("deputy")])
    options.setdefault("restricted_categories", RESTRICTED)
    return fold(delivered, **options)


def success(area: str, condition: str, comment: str, scene: Scene, delivered: list[Event] | None = None,
            received: dict[str, dict[str, int]] | None = None) -> Case:
    delivered = scene.events if delivered is None else delivered
    inputs: dict[str, Any] = {"events": [wire(e) for e in delivered],
                              "safeguarding": [scene.u("dsl"), scene.u("deputy")],
                              "restricted_categories": RESTRICTED}
    if received is not None:
        inputs["received"] = received
    state = folded(scene, delivered, received=received)
    assert state == folded(scene, list(reversed(delivered)), received=received), f"{area}_{condition}: order matters"
    return case("fold", area, condition, comment, "success", inputs, json.loads(json.dumps(state)))


def success_cases() -> Iterator[Case]:  # noqa: C901 - one scenario per block reads best
    s = Scene("create")
    s.create(location="School gate", child_words="my tummy hurts", present=["Class TA", "Office manager"],
             immediate_action="Gave the pupil a spare coat and breakfast.", need_to_know=[s.u("teacher")])
    yield success("create", "single", "one created event: every record field becomes a register with one value", s)

    s = Scene("create_restricted")
    s.create(category="physical_abuse", kind="safeguarding_concern", body_map=[
        {"pupil": s.pupils[0], "side": "front", "x": 310, "y": 420, "type": "bruise", "region": "left forearm",
         "size_mm": 30, "colour": "purple-yellow", "note": "finger-shaped marks"},
        {"pupil": s.pupils[0], "side": "back", "x": 500, "y": 200, "type": "scratch"}])
    yield success("create", "restricted_category", "a category restricted by default restricts the concern from its first event", s)

    s = Scene("sharing")
    s.create(kind="sharing_decision", category="domestic_abuse", sharing={
        "shared": False, "with": "Police (Operation Encompass follow-up)", "what": "Attendance and welfare notes",
        "lawful_basis": "public_task", "reason": "Parent asked us not to share; risk reviewed: no immediate danger."},
        decision={"decision": "no_referral", "rationale": "Threshold not met after discussion with the duty social worker."})
    yield success("create", "sharing_decision", "a sharing decision, including a decision not to share and not to refer", s)

    s = Scene("amend")
    s.create()
    s.write("tablet", "ta", "amended", field="location", value="Main gate, Elm Road")
    s.write("laptop", "dsl", "amended", field="location", value="Main gate, Elm Road side")
    yield success("amend", "sequential", "two amendments in causal order: the later one replaces the earlier", s)

    s = Scene("amend_clear")
    s.create(opinion="Seemed withdrawn.")
    s.write("laptop", "dsl", "amended", field="opinion", value=None)
    yield success("amend", "clear_field", "an amendment to null clears an optional field (the history keeps the text)", s)

    s = Scene("amend_concurrent")
    c = s.create()
    s.write("tablet", "ta", "amended", parents=[c], field="observed", value="Arrived without a coat; said the heating is off.")
    s.write("phone", "teacher", "amended", parents=[c], field="observed", value="Arrived without a coat, shivering.")
    s.write("laptop", "dsl", "amended", parents=[c], field="location", value="Playground")
    yield success("amend", "concurrent_conflict", "two offline edits of one field: both kept, flagged as a conflict; an edit of another field is not", s)

    s = Scene("amend_same")
    c = s.create()
    s.write("tablet", "ta", "status_changed", parents=[c], status="awaiting")
    s.write("phone", "dsl", "status_changed", parents=[c], status="awaiting")
    yield success("amend", "concurrent_same_value", "two concurrent writes of the same value: both kept, no conflict", s)

    s = Scene("resolve")
    c = s.create()
    a = s.write("tablet", "ta", "amended", parents=[c], field="observed", value="Version A of what was seen.")
    b = s.write("phone", "teacher", "amended", parents=[c], field="observed", value="Version B of what was seen.")
    s.write("laptop", "dsl", "conflict_resolved", parents=[a, b], field="observed", value="Version B of what was seen.",
            resolves=sorted([a.id, b.id]))
    yield success("resolve", "naming_both_heads", "a resolution naming both sides as parents ends the conflict", s)

    s = Scene("resolve_amend")
    c = s.create()
    a = s.write("tablet", "ta", "amended", parents=[c], field="location", value="Hall")
    b = s.write("phone", "teacher", "amended", parents=[c], field="location", value="Dining hall")
    s.write("laptop", "dsl", "amended", parents=[a, b], field="location", value="Dining hall, by the servery")
    yield success("resolve", "by_amend", "an ordinary amendment that has seen both sides resolves too", s)

    s = Scene("resolve_partial")
    c = s.create()
    a = s.write("tablet", "ta", "amended", parents=[c], field="location", value="Hall")
    s.write("phone", "teacher", "amended", parents=[c], field="location", value="Dining hall")
    s.write("office", "deputy", "amended", parents=[c], field="location", value="Corridor")
    s.write("laptop", "dsl", "amended", parents=[a], field="location", value="Hall, east side")
    yield success("resolve", "partial", "an edit that saw one side only: the conflict stays, with three values", s)

    s = Scene("restrict")
    s.create()
    s.write("phone", "teacher", "restriction_changed", restricted=True, reason="Disclosure involves a family member.", entry_key_version=2)
    yield success("restrict", "grows", "anyone may restrict; the entry key version moves on", s)

    s = Scene("restrict_lift")
    s.create(category="sexual_abuse")
    s.write("laptop", "dsl", "restriction_changed", restricted=False, reason="Reviewed: class teacher needs to see this.")
    yield success("restrict", "lifted_by_safeguarding", "a safeguarding lead lifts a default restriction", s)

    s = Scene("restrict_lift_denied")
    s.create(category="sexual_abuse")
    s.write("phone", "teacher", "restriction_changed", restricted=False, reason="I need to see it.")
    yield success("restrict", "lift_not_authorised", "a lift by someone outside safeguarding has no effect and is flagged", s)

    s = Scene("restrict_concurrent")
    c = s.create()
    s.write("phone", "teacher", "restriction_changed", parents=[c], restricted=True, reason="Sensitive.", entry_key_version=2)
    s.write("laptop", "dsl", "restriction_changed", parents=[c], restricted=False, reason="Lifting.")
    yield success("restrict", "lift_concurrent", "a lift that has not seen a restriction does not undo it", s)

    s = Scene("reclassify")
    s.create()
    s.write("laptop", "dsl", "reclassified", kind="safeguarding_concern", category="cse", entry_key_version=2, reason="Further disclosure.")
    s.write("laptop", "dsl", "reclassified", kind="safeguarding_concern", category="cce", entry_key_version=2)
    yield success("reclassify", "restricted_then_standard", "reclassifying into a restricted category restricts; moving out again does not lift it", s)

    s = Scene("pupils")
    s.create()
    s.write("tablet", "teacher", "pupils_linked", pupils=[{"pupil": s.pupils[1], "role": "alleged_perpetrator"},
                                                          {"pupil": s.pupils[2], "role": "witness"}])
    s.write("laptop", "dsl", "pupils_unlinked", pupils=[s.pupils[2]])
    yield success("pupils", "link_unlink", "each pupil keeps its own role; an unlinked pupil leaves the state", s)

    s = Scene("pupils_conflict")
    c = s.create()
    s.write("tablet", "teacher", "pupils_linked", parents=[c], pupils=[{"pupil": s.pupils[1], "role": "victim"}])
    s.write("phone", "ta", "pupils_linked", parents=[c], pupils=[{"pupil": s.pupils[1], "role": "witness"}])
    s.write("laptop", "dsl", "pupils_unlinked", parents=[c], pupils=[s.pupils[0]])
    s.write("office", "deputy", "pupils_linked", parents=[c], pupils=[{"pupil": s.pupils[0], "role": "subject"}])
    yield success("pupils", "role_conflict", "concurrent roles for one pupil are both kept; a concurrent unlink does not remove a link", s)

    s = Scene("actions")
    s.create()
    s.write("laptop", "dsl", "action_added", action={"text": "Phone parent about the heating.", "owner": s.u("deputy"), "due": "2026-09-22"})
    s.write("laptop", "dsl", "action_added", action={"text": "Check free school meals eligibility.", "owner": s.u("teacher")})
    s.write("phone", "teacher", "comment", text="Spoke to the pupil at lunch; says a neighbour is helping.")
    s.write("laptop", "dsl", "assigned", assignee=s.u("deputy"))
    yield success("actions", "owner_due", "actions with owner and due date, a comment and an assignment", s)

    s = Scene("actions_done")
    s.create()
    a1 = s.write("laptop", "dsl", "action_added", action={"text": "Phone parent about the heating.", "owner": s.u("deputy"), "due": "2026-09-22"})
    a2 = s.write("laptop", "dsl", "action_added", action={"text": "Check free school meals eligibility.", "owner": s.u("teacher")})
    cm = s.write("phone", "teacher", "comment", text="Spoke to the pupil at lunch.")
    s.write("office", "deputy", "action_completed", target=a1.id, note="Parent says the boiler is fixed.")
    s.write("tablet", "ta", "action_completed", target=a2.id)
    s.write("phone", "teacher", "action_completed", target=a2.id)
    s.write("phone", "teacher", "action_completed", target=cm.id)
    s.write("laptop", "dsl", "action_completed", target="00" * 16)
    yield success("actions", "completed", "an action is done once its owner, author or safeguarding completes it; others are flagged", s)

    s = Scene("status")
    s.create()
    for status in ("awaiting", "closed", "reopened"):
        s.write("laptop", "dsl", "status_changed", status=status, note=f"Now {status}.")
    yield success("status", "changes", "open, awaiting, closed, reopened", s)

    s = Scene("retract")
    s.create()
    cm = s.write("phone", "teacher", "comment", text="Wrong pupil: meant for another record.")
    s.write("tablet", "ta", "retracted", target=cm.id, reason="Not my comment to retract.")
    s.write("phone", "teacher", "retracted", target=cm.id, reason="Written on the wrong record.")
    s.write("phone", "teacher", "retracted", reason="Trying to withdraw someone else's concern.")
    s.write("tablet", "ta", "retracted", reason="Logged in error: duplicate of an earlier concern.")
    s.write("laptop", "dsl", "retracted", target="00" * 16, reason="Target not delivered yet.")
    yield success("retract", "rules", "authors retract their own entries, safeguarding any; others are flagged; nothing is removed", s)

    s = Scene("duplicates")
    c = s.create()
    a = s.write("tablet", "ta", "comment", text="First follow-up.")
    yield success("delivery", "duplicates", "the same events delivered three times fold as once", s, [c, a, c, a, a, c])

    s = Scene("out_of_order")
    c = s.create()
    a = s.write("tablet", "ta", "amended", field="location", value="Library")
    b = s.write("laptop", "dsl", "comment", text="Seen.")
    d = s.write("laptop", "dsl", "status_changed", status="closed")
    yield success("delivery", "out_of_order", "delivered newest first: the state is the same", s, [d, b, a, c])
    yield success("delivery", "missing_parent", "a parent not yet delivered is listed as missing; links through it are unknown, so the state is provisional (here a conflict on status that the missing event would resolve)", s, [d, b, c])

    year = {"tablet": -YEAR, "phone": YEAR}
    s = Scene("skew", year)
    c = s.create("tablet")
    a = s.write("phone", "teacher", "amended", field="location", value="Sports hall")
    s.write("tablet", "ta", "amended", field="location", value="Sports hall changing room")
    yield success("clock", "skew_year", "a tablet a year slow answers a phone a year fast: causal order, not clock time, decides", s)

    s = Scene("received")
    c = s.create("phone")
    a = s.write("phone", "teacher", "comment", text="Written on the trip, no signal.")
    rec = {c.id: {"received_ms": c.device_time_ms + 4 * 3600_000, "seq": 41},
           a.id: {"received_ms": a.device_time_ms + 4 * 3600_000 - 5 * MINUTE, "seq": 42}}
    yield success("history", "received", "server receipt time and sequence are carried into the history only", s, received=rec)

    s = Scene("equivocation")
    c = s.create()
    a = s.write("tablet", "ta", "comment", text="One thing.")
    forged = decode(encode({"v": 1, "type": "comment", "hlc": list(a.hlc), "author": a.author, "parents": list(a.parents),
                            "text": "Another thing."}), event_id=bytes.fromhex(a.id), concern_id=s.concern,
                    author_device=bytes.fromhex(a.device), device_time_ms=a.device_time_ms)
    yield success("delivery", "equivocation", "two different events under one id: one kept by a fixed rule, flagged", s, [c, a, forged])

    s = Scene("bad_parent")
    c = s.create()
    a = s.write("tablet", "ta", "comment", text="Later comment.")
    early = decode(encode({"v": 1, "type": "amended", "hlc": [c.hlc[0], c.hlc[1] + 1], "author": s.u("ta"),
                           "parents": sorted([c.id, a.id]), "field": "location", "value": "Forged"}),
                   event_id=s.uuid7(BASE_MS), concern_id=s.concern, author_device=bytes.fromhex(c.device),
                   device_time_ms=BASE_MS)
    yield success("delivery", "parent_not_before", "a parent that does not come earlier in the total order is not a parent", s, [c, a, early])


def failure_cases() -> Iterator[Case]:
    s = Scene("refuse")
    c = s.create()
    good = {"v": 1, "type": "comment", "hlc": [c.hlc[0] + MINUTE, 0], "author": s.u("ta"), "parents": [c.id], "text": "Ok."}
    raw = encode(good)
    as_text = raw.decode()
    bad: list[tuple[str, bytes, str, dict[str, str], str]] = [
        ("unknown_version", raw.replace(b'"v":1', b'"v":2'), "unsupported_version", {"v": "unknown_value"}, "content version 2 is refused"),
        ("no_version", raw.replace(b',"v":1', b""), "parse_failure", {"v": "required"}, "no version at all"),
        ("not_canonical", as_text.replace(",", ", ").encode(), "parse_failure", {"content": "not_canonical"}, "valid JSON but not the canonical form"),
        ("float_version", raw.replace(b'"v":1', b'"v":1.0'), "parse_failure", {"content": "not_canonical"}, "1.0 reads as 1 in both languages, and is not canonical"),
        ("bad_json", raw[:-1], "parse_failure", {"content": "bad_json"}, "truncated JSON"),
        ("bad_utf8", raw.replace(b"Ok.", b"Ok\xff"), "parse_failure", {"content": "bad_encoding"}, "not UTF-8"),
        ("bom", b"\xef\xbb\xbf" + raw, "parse_failure", {"content": "bad_json"}, "a byte order mark"),
        ("not_object", b"[1]", "parse_failure", {"content": "wrong_type"}, "a list, not an object"),
        ("unknown_field", raw.replace(b'"text"', b'"tag":"x","text"'), "parse_failure", {"tag": "unknown_field"}, "fields are closed"),
        ("unknown_type", raw.replace(b'"comment"', b'"deleted"'), "parse_failure", {"type": "unknown_value"}, "there is no delete"),
        ("bad_id", raw.replace(s.u("ta").encode(), s.u("ta").upper().encode()), "parse_failure", {"author": "bad_format"}, "ids are lower-case hex"),
        ("no_parents", raw.replace(f'["{c.id}"]'.encode(), b"[]"), "parse_failure", {"parents": "empty"}, "only a created event has no parents"),
        ("control_char", raw.replace(b"Ok.", b"Ok\\u0007"), "parse_failure", {"text": "bad_format"}, "a control character in text"),
        ("lone_surrogate", raw.replace(b"Ok.", b"Ok\\ud800"), "parse_failure", {"text": "bad_format"}, "a lone surrogate in text"),
        ("blank_text", raw.replace(b"Ok.", b" \\n "), "parse_failure", {"text": "empty"}, "blank text"),
        ("hlc_range", raw.replace(f"[{c.hlc[0] + MINUTE},0]".encode(), b"[281474976710656,0]"), "parse_failure", {"hlc[0]": "out_of_range"}, "the wall clock is 48 bits"),
    ]
    rec = {"v": 1, "type": "created", "hlc": [BASE_MS, 0], "author": s.u("ta"), "parents": [c.id], "entry_key_version": 1,
           "record": {"kind": "safeguarding_concern", "category": "Neglect", "occurred_at": "2026-02-30", "observed": "Seen.", "location": "x" * 201,
                      "pupils": [{"pupil": s.pupils[0], "role": "suspect"}, {"pupil": s.pupils[0], "role": "victim"}],
                      "body_map": [{"pupil": s.pupils[1], "side": "left", "x": 1001, "y": 0, "type": "bruise"}],
                      "sharing": {"shared": True}}}
    bad.append(("record_fields", json.dumps(rec, sort_keys=True, separators=(",", ":")).encode(), "parse_failure", {
        "parents": "not_allowed", "record.category": "bad_format", "record.occurred_at": "out_of_range", "record.location": "too_long",
        "record.pupils[0].role": "unknown_value", "record.pupils[1]": "duplicate", "record.body_map[0].side": "unknown_value",
        "record.body_map[0].x": "out_of_range", "record.body_map[0].pupil": "unknown_pupil", "record.sharing": "not_allowed",
        "record.sharing.with": "required", "record.sharing.what": "required", "record.sharing.lawful_basis": "required",
        "record.sharing.reason": "required"}, "every bad field of a record is named, each with its code"))
    res = {"v": 1, "type": "conflict_resolved", "hlc": [BASE_MS, 9], "author": s.u("dsl"), "parents": [c.id],
           "field": "status", "value": "done", "resolves": [c.id, "ab" * 16]}
    bad.append(("resolves_not_parent", json.dumps(res, sort_keys=True, separators=(",", ":")).encode(), "parse_failure",
                {"value": "unknown_value", "resolves[1]": "not_a_parent"}, "a resolution names the sides it saw as parents"))
    errors = {"parse_failure": InvalidEvent, "unsupported_version": UnsupportedEventVersion}
    for condition, content, expect, fields, comment in bad:
        header = {"id": s.uuid7(BASE_MS + DAY), "concern": s.concern, "device": s.devices["tablet"].id, "device_time_ms": BASE_MS + DAY}
        try:
            decode(content, event_id=header["id"], concern_id=header["concern"], author_device=header["device"],
                   device_time_ms=header["device_time_ms"])
        except InvalidEvent as exc:
            assert type(exc) is errors[expect], (condition, exc)
            assert exc.fields == dict(sorted(fields.items())), (condition, exc.fields)
        else:
            raise AssertionError(f"{condition}: decoded")
        yield case("fold", "refuse", condition, comment, expect,
                   {"events": [{**header, "content": content}], "safeguarding": [], "restricted_categories": RESTRICTED,
                    "error_fields": dict(sorted(fields.items()))})


def fold_cases() -> Iterator[Case]:
    yield from success_cases()
    yield from failure_cases()


CASES = [fold_cases]
