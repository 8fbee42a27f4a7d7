"""Event content: every type round-trips byte for byte; anything else is refused with named fields. Also the
hybrid logical clock that orders events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.events import MAX_CONTENT_BYTES, TYPES, decode, encode
from sync.hlc import MAX_COUNTER, MAX_SKEW_MS, MAX_WALL_MS, Hlc, next_hlc, order_key
from sync.record import ClockSkew, InvalidEvent, UnsupportedEventVersion

A, B, C, USER = "0a" * 16, "0b" * 16, "0c" * 16, "1e" * 16
HEADER = {"event_id": bytes(16), "concern_id": b"\x01" * 16, "author_device": b"\x02" * 16, "device_time_ms": 5}
RECORD = {
    "kind": "general_note",
    "category": "friendship",
    "occurred_at": "2026-09-21",
    "observed": "Fell out at lunch.",
}
BODIES: dict[str, dict[str, Any]] = {
    "created": {"record": RECORD, "entry_key_version": 1},
    "amended": {"field": "location", "value": "Field"},
    "action_added": {"action": {"text": "Call home.", "owner": USER, "due": "2026-09-22"}},
    "action_completed": {"target": A, "note": "Called."},
    "status_changed": {"status": "closed", "note": "Resolved with both pupils."},
    "pupils_linked": {"pupils": [{"pupil": A, "role": "witness"}]},
    "pupils_unlinked": {"pupils": [A]},
    "reclassified": {
        "kind": "safeguarding_concern",
        "category": "cse",
        "entry_key_version": 2,
        "reason": "Disclosure.",
    },
    "assigned": {"assignee": None},
    "comment": {"text": "Pupil says things are better. \u00e9\u2028\U0001f600"},
    "retracted": {"reason": "Logged in error.", "target": B},
    "conflict_resolved": {"field": "status", "value": "open", "resolves": [A, B]},
    "restriction_changed": {"restricted": True, "reason": "Sensitive.", "entry_key_version": 3},
}


def content(type_: str, **change: Any) -> dict[str, Any]:
    c = {
        "v": 1,
        "type": type_,
        "hlc": [1_790_000_000_000, 3],
        "author": USER,
        "parents": [] if type_ == "created" else [A, B],
        **BODIES[type_],
        **change,
    }
    return {k: v for k, v in c.items() if v is not ...}


def refused(raw: bytes) -> dict[str, str]:
    with pytest.raises(InvalidEvent) as caught:
        decode(raw, **HEADER)
    return caught.value.fields


def test_bodies_cover_every_type() -> None:
    assert set(BODIES) == set(TYPES)


@pytest.mark.parametrize("type_", sorted(BODIES))
def test_every_type_round_trips_byte_for_byte(type_: str) -> None:
    raw = encode(content(type_))
    event = decode(raw, **HEADER)
    assert event.type == type_ and event.content == raw and event.hlc == Hlc(1_790_000_000_000, 3)
    assert event.id == "00" * 16 and event.concern == "01" * 16 and event.device == "02" * 16
    assert dict(event.body) == BODIES[type_]
    assert encode(json.loads(raw)) == raw
    assert raw == json.dumps(content(type_), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("type_", "change", "expected"),
    [
        ("created", {"parents": [A]}, {"parents": "not_allowed"}),
        ("comment", {"parents": []}, {"parents": "empty"}),
        ("comment", {"parents": [A, A]}, {"parents[1]": "duplicate"}),
        ("comment", {"parents": [f"{i:032x}" for i in range(65)]}, {"parents": "too_many"}),
        ("comment", {"text": ...}, {"text": "required"}),
        ("comment", {"author": ...}, {"author": "required"}),
        ("comment", {"hlc": [1, 2, 3]}, {"hlc": "wrong_type"}),
        ("comment", {"hlc": [MAX_WALL_MS + 1, MAX_COUNTER + 1]}, {"hlc[0]": "out_of_range", "hlc[1]": "out_of_range"}),
        ("amended", {"field": "category"}, {"field": "unknown_value"}),
        ("amended", {"field": "pupils"}, {"field": "unknown_value"}),
        ("amended", {"field": "observed", "value": None}, {"value": "required"}),
        ("amended", {"field": "present", "value": "Ms Example"}, {"value": "wrong_type"}),
        (
            "action_added",
            {"action": {"text": "Call.", "due": "tomorrow"}},
            {"action.owner": "required", "action.due": "bad_format"},
        ),
        ("action_completed", {"target": "nope", "note": " "}, {"target": "bad_format", "note": "empty"}),
        ("reclassified", {"entry_key_version": 0}, {"entry_key_version": "out_of_range"}),
        ("reclassified", {"entry_key_version": ...}, {"entry_key_version": "required"}),
        ("restriction_changed", {"entry_key_version": ...}, {"entry_key_version": "required"}),
        ("restriction_changed", {"restricted": "yes"}, {"restricted": "wrong_type"}),
        ("conflict_resolved", {"resolves": [A]}, {"resolves": "too_few"}),
        ("conflict_resolved", {"resolves": [A, C]}, {"resolves[1]": "not_a_parent"}),
        ("conflict_resolved", {"field": "assignee", "value": None}, {}),
        ("status_changed", {"status": "deleted"}, {"status": "unknown_value"}),
        ("pupils_unlinked", {"pupils": []}, {"pupils": "empty"}),
        ("retracted", {"reason": ""}, {"reason": "empty"}),
        ("comment", {"extra": True}, {"extra": "unknown_field"}),
    ],
)
def test_bad_content_names_each_field(type_: str, change: dict[str, Any], expected: dict[str, str]) -> None:
    c = content(type_, **change)
    if not expected:
        assert decode(encode(c), **HEADER).body["value"] is None
        return
    with pytest.raises(InvalidEvent) as caught:
        encode(c)
    assert caught.value.fields == expected
    assert refused(json.dumps(c, sort_keys=True, separators=(",", ":")).encode()) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b" " * (MAX_CONTENT_BYTES + 1), {"content": "too_large"}),
        (b"\xc0\xaf", {"content": "bad_encoding"}),
        (b'{"v":NaN}', {"content": "bad_json"}),
        (b'{"v":Infinity}', {"content": "bad_json"}),
        (b"[" * 100_000, {"content": "bad_json"}),
        (b'"v"', {"content": "wrong_type"}),
        (b'{"v":true}', {"v": "wrong_type"}),
        (b"{}", {"v": "required"}),
    ],
)
def test_undecodable_content(raw: bytes, expected: dict[str, str]) -> None:
    assert refused(raw) == expected


@pytest.mark.parametrize("spelling", [b'"v":1.0', b'"v":1e0', b'"v":10E-1'])
def test_integral_numbers_are_read_as_javascript_reads_them_and_refused_as_not_canonical(spelling: bytes) -> None:
    raw = encode(content("comment")).replace(b'"v":1', spelling)
    assert refused(raw) == {"content": "not_canonical"}


def test_duplicate_keys_are_not_canonical() -> None:
    raw = encode(content("comment")).replace(b'"text":', b'"text":"hidden","text":')
    assert refused(raw) == {"content": "not_canonical"}


def test_unknown_version_is_its_own_error() -> None:
    raw = encode(content("comment")).replace(b'"v":1', b'"v":2')
    with pytest.raises(UnsupportedEventVersion) as caught:
        decode(raw, **HEADER)
    assert caught.value.code == "unsupported_version" and caught.value.fields == {"v": "unknown_value"}
    with pytest.raises(UnsupportedEventVersion):
        encode({**content("comment"), "v": 0})


def test_header_fields_must_be_ids() -> None:
    with pytest.raises(TypeError):
        decode(encode(content("comment")), **{**HEADER, "event_id": b"short"})


@given(st.text(min_size=1, max_size=200).filter(lambda t: t.strip(" \t\n\r")))
def test_any_clean_text_round_trips_and_any_refusal_names_the_field(text: str) -> None:
    c = content("comment", text=text)
    try:
        raw = encode(c)
    except InvalidEvent as exc:
        assert exc.fields == {"text": "bad_format"}
        return
    assert decode(raw, **HEADER).body["text"] == text


# --- hybrid logical clock ------------------------------------------------------------------------------------


def test_next_hlc_follows_the_wall_clock_and_breaks_ties_with_the_counter() -> None:
    assert next_hlc(None, 1000) == Hlc(1000, 0)
    assert next_hlc(Hlc(1000, 0), 1000) == Hlc(1000, 1)
    assert next_hlc(Hlc(1000, 4), 999) == Hlc(1000, 5)
    assert next_hlc(Hlc(1000, 4), 2000) == Hlc(2000, 0)


def test_next_hlc_passes_every_parent_even_from_a_fast_clock() -> None:
    year, now = 366 * 86_400_000, 1_790_000_000_000
    seen = [Hlc(now + year, 7), Hlc(now, 9)]
    assert next_hlc(Hlc(10, 0), now, seen) == Hlc(now + year, 8)
    assert next_hlc(None, now - year, [Hlc(now + year, 0)]) == Hlc(now + year, 1)  # one slow, one fast


def test_next_hlc_refuses_a_reading_beyond_the_tolerated_skew() -> None:
    with pytest.raises(ClockSkew) as caught:
        next_hlc(None, 0, [Hlc(MAX_SKEW_MS + 1, 0)])
    assert caught.value.code == "clock_skew"
    assert next_hlc(None, 0, [Hlc(MAX_SKEW_MS, 0)]) == Hlc(MAX_SKEW_MS, 1)


def test_next_hlc_at_the_limits() -> None:
    assert next_hlc(Hlc(7, MAX_COUNTER), 7) == Hlc(8, 0)
    with pytest.raises(ClockSkew):
        next_hlc(Hlc(MAX_WALL_MS, MAX_COUNTER), MAX_WALL_MS)
    with pytest.raises(ValueError):
        next_hlc(None, -1)


@given(
    st.lists(
        st.tuples(st.integers(0, 10**13), st.lists(st.tuples(st.integers(0, 10**13), st.integers(0, 9)), max_size=3)),
        min_size=1,
        max_size=30,
    )
)
def test_next_hlc_is_strictly_increasing_and_above_its_parents(steps: list[tuple[int, list[tuple[int, int]]]]) -> None:
    last = None
    for now, seen in steps:
        parents = [Hlc(w, c) for w, c in seen if w <= now + MAX_SKEW_MS]
        h = next_hlc(last, now, parents)
        assert last is None or h > last
        assert all(h > p for p in parents) and h.wall_ms >= now
        last = h


def test_order_key_breaks_ties_by_device_then_id() -> None:
    assert sorted([order_key(Hlc(1, 0), B, A), order_key(Hlc(1, 0), A, B), order_key(Hlc(0, 9), C, C)]) == [
        (0, 9, C, C),
        (1, 0, A, B),
        (1, 0, B, A),
    ]
