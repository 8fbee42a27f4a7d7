"""Concern events: the content bytes of one envelope, their types, limits, encoding and decoding.

The content is canonical UTF-8 JSON (docs/PROTOCOL.md section 8.1): an object with keys sorted, no
whitespace, integers only. ``decode`` refuses anything else, including content that parses but is not in
canonical form, so the Python and JavaScript readers can never disagree on what an event says. The
envelope's header supplies what the content does not repeat: the event id (the envelope id), the concern
id, the author device and the device time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .hlc import MAX_COUNTER, MAX_WALL_MS, Hlc
from .record import (
    AMENDABLE_FIELDS,
    KINDS,
    LONG_TEXT,
    MAX_PUPILS,
    MEDIUM_TEXT,
    REGISTER_FIELDS,
    STATUSES,
    Errors,
    InvalidEvent,
    UnsupportedEventVersion,
    check_category_id,
    check_date,
    check_enum,
    check_field,
    check_id,
    check_int,
    check_pupils,
    check_record,
    check_text,
)

__all__ = [
    "Event", "decode", "encode", "check_content", "VERSION", "TYPES", "MAX_CONTENT_BYTES", "MAX_PARENTS",
    "MAX_ENTRY_KEY_VERSION",
]

VERSION = 1
MAX_CONTENT_BYTES = 262_144
MAX_PARENTS = 64
MAX_ENTRY_KEY_VERSION = 2**32 - 1
_COMMON = ("v", "type", "hlc", "author", "parents")

Check = Callable[[Mapping[str, Any], Errors], None]


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded event. Ids are 32 lower-case hex digits; ``body`` holds the type's own fields."""

    id: str
    concern: str
    device: str
    device_time_ms: int
    hlc: Hlc
    author: str
    parents: tuple[str, ...]
    type: str
    body: Mapping[str, Any]
    content: bytes


def _key_version(c: Mapping[str, Any], e: Errors) -> None:
    if "entry_key_version" in c:
        check_int(c["entry_key_version"], "entry_key_version", e, 1, MAX_ENTRY_KEY_VERSION)


def _created(c: Mapping[str, Any], e: Errors) -> None:
    check_record(c.get("record"), "record", e)
    _key_version(c, e)
    if c.get("parents"):
        e.setdefault("parents", "not_allowed")


def _amended(c: Mapping[str, Any], e: Errors) -> None:
    check_enum(c.get("field"), "field", e, AMENDABLE_FIELDS)
    if "field" not in e and "value" in c:
        check_field(c["field"], c["value"], "value", e)


def _action_added(c: Mapping[str, Any], e: Errors) -> None:
    action = c.get("action")
    if not isinstance(action, dict):
        e.setdefault("action", "wrong_type")
        return
    for key in action:
        if key not in ("text", "owner", "due"):
            e.setdefault(f"action.{key}", "unknown_field")
    for key in ("text", "owner"):
        if key not in action:
            e.setdefault(f"action.{key}", "required")
    if "text" in action:
        check_text(action["text"], "action.text", e, MEDIUM_TEXT)
    if "owner" in action:
        check_id(action["owner"], "action.owner", e)
    if "due" in action:
        check_date(action["due"], "action.due", e)


def _status_changed(c: Mapping[str, Any], e: Errors) -> None:
    check_enum(c.get("status"), "status", e, STATUSES)
    if "note" in c:
        check_text(c["note"], "note", e, MEDIUM_TEXT)


def _pupils_linked(c: Mapping[str, Any], e: Errors) -> None:
    check_pupils(c.get("pupils"), "pupils", e)


def _pupils_unlinked(c: Mapping[str, Any], e: Errors) -> None:
    _id_list(c.get("pupils"), "pupils", e, 1, MAX_PUPILS)


def _reclassified(c: Mapping[str, Any], e: Errors) -> None:
    check_enum(c.get("kind"), "kind", e, KINDS)
    check_category_id(c.get("category"), "category", e)
    _key_version(c, e)
    if "reason" in c:
        check_text(c["reason"], "reason", e, MEDIUM_TEXT)


def _assigned(c: Mapping[str, Any], e: Errors) -> None:
    if c.get("assignee") is not None:
        check_id(c["assignee"], "assignee", e)


def _comment(c: Mapping[str, Any], e: Errors) -> None:
    check_text(c.get("text"), "text", e, LONG_TEXT)


def _retracted(c: Mapping[str, Any], e: Errors) -> None:
    check_text(c.get("reason"), "reason", e, MEDIUM_TEXT)
    if "target" in c:
        check_id(c["target"], "target", e)


def _action_completed(c: Mapping[str, Any], e: Errors) -> None:
    check_id(c.get("target"), "target", e)
    if "note" in c:
        check_text(c["note"], "note", e, MEDIUM_TEXT)


def _conflict_resolved(c: Mapping[str, Any], e: Errors) -> None:
    check_enum(c.get("field"), "field", e, REGISTER_FIELDS)
    if "field" not in e and "value" in c:
        check_field(c["field"], c["value"], "value", e)
    if _id_list(c.get("resolves"), "resolves", e, 2, MAX_PARENTS):
        parents = c.get("parents")
        parents = set(parents) if isinstance(parents, list) and "parents" not in e else None
        for i, r in enumerate(c["resolves"]):
            if parents is not None and f"resolves[{i}]" not in e and r not in parents:
                e.setdefault(f"resolves[{i}]", "not_a_parent")


def _restriction_changed(c: Mapping[str, Any], e: Errors) -> None:
    restricted = c.get("restricted")
    if not isinstance(restricted, bool):
        e.setdefault("restricted", "wrong_type")
    check_text(c.get("reason"), "reason", e, MEDIUM_TEXT)
    _key_version(c, e)
    if restricted is True and "entry_key_version" not in c:
        e.setdefault("entry_key_version", "required")


TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...], Check]] = {
    # type: (required body keys, optional body keys, check)
    "created": (("record", "entry_key_version"), (), _created),
    "amended": (("field", "value"), (), _amended),
    "action_added": (("action",), (), _action_added),
    "action_completed": (("target",), ("note",), _action_completed),
    "status_changed": (("status",), ("note",), _status_changed),
    "pupils_linked": (("pupils",), (), _pupils_linked),
    "pupils_unlinked": (("pupils",), (), _pupils_unlinked),
    "reclassified": (("kind", "category", "entry_key_version"), ("reason",), _reclassified),
    "assigned": (("assignee",), (), _assigned),
    "comment": (("text",), (), _comment),
    "retracted": (("reason",), ("target",), _retracted),
    "conflict_resolved": (("field", "value", "resolves"), (), _conflict_resolved),
    "restriction_changed": (("restricted", "reason"), ("entry_key_version",), _restriction_changed),
}


def _id_list(value: Any, path: str, e: Errors, low: int, high: int) -> bool:
    """A list of ``low..high`` distinct ids; True if it is one."""
    if not isinstance(value, list):
        e.setdefault(path, "wrong_type")
        return False
    if len(value) < low:
        e.setdefault(path, "empty" if not value else "too_few")
        return False
    if len(value) > high:
        e.setdefault(path, "too_many")
        return False
    seen: set[str] = set()
    for i, v in enumerate(value):
        check_id(v, f"{path}[{i}]", e)
        if isinstance(v, str):
            if v in seen:
                e.setdefault(f"{path}[{i}]", "duplicate")
            seen.add(v)
    return True


def _check_version(content: Any) -> None:
    if not isinstance(content, dict):
        raise InvalidEvent("decoding event content", {"content": "wrong_type"})
    if "v" not in content:
        raise InvalidEvent("decoding event content", {"v": "required"})
    v = content["v"]
    if not isinstance(v, int) or isinstance(v, bool):
        raise InvalidEvent("decoding event content", {"v": "wrong_type"})
    if v != VERSION:
        raise UnsupportedEventVersion(f"decoding event content: version {v} is unknown", {"v": "unknown_value"})


def check_content(content: Mapping[str, Any]) -> Errors:
    """Every field error of a content object whose version is known; empty if it is valid."""
    e: Errors = {key: "required" for key in _COMMON if key not in content}
    if "type" in content:
        check_enum(content["type"], "type", e, TYPES)
    if "hlc" in content:
        hlc = content["hlc"]
        if not isinstance(hlc, list) or len(hlc) != 2:
            e.setdefault("hlc", "wrong_type")
        else:
            check_int(hlc[0], "hlc[0]", e, 0, MAX_WALL_MS)
            check_int(hlc[1], "hlc[1]", e, 0, MAX_COUNTER)
    if "author" in content:
        check_id(content["author"], "author", e)
    if "parents" in content:
        _id_list(content["parents"], "parents", e, 0, MAX_PARENTS)
    if "type" in e:
        return e  # the body of an unknown type cannot be checked
    kind = content["type"]
    required, optional, check = TYPES[kind]
    for key in content:
        if key not in _COMMON and key not in required and key not in optional:
            e.setdefault(key, "unknown_field")
    for key in required:
        if key not in content:
            e.setdefault(key, "required")
    check(content, e)
    if kind != "created" and isinstance(content.get("parents"), list) and not content["parents"]:
        e.setdefault("parents", "empty")
    return e


def _number(text: str) -> int | float:
    """JSON numbers read as JavaScript reads them: an integral value is an integer, whatever its spelling."""
    f = float(text)
    return int(f) if f.is_integer() else f


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _canonical(content: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate in a key or value: never valid content
        raise InvalidEvent("encoding event content", {"content": "not_canonical"}) from None


def encode(content: Mapping[str, Any]) -> bytes:
    """Canonical bytes of a content object; raises ``InvalidEvent`` naming every bad field."""
    _check_version(content)
    errors = check_content(content)
    if errors:
        raise InvalidEvent("encoding event content", errors)
    data = _canonical(content)
    if len(data) > MAX_CONTENT_BYTES:
        raise InvalidEvent("encoding event content", {"content": "too_large"})
    return data


def decode(content: bytes, *, event_id: bytes, concern_id: bytes, author_device: bytes, device_time_ms: int) -> Event:
    """Decode one envelope's content; the other arguments come from the envelope's signed header."""
    for name, value in (("event_id", event_id), ("concern_id", concern_id), ("author_device", author_device)):
        if not isinstance(value, bytes) or len(value) != 16:
            raise TypeError(f"{name} must be 16 bytes")
    if len(content) > MAX_CONTENT_BYTES:
        raise InvalidEvent("decoding event content", {"content": "too_large"})
    try:
        text = bytes(content).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent("decoding event content", {"content": "bad_encoding"}) from None
    try:
        obj = json.loads(text, parse_float=_number, parse_int=_number, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise InvalidEvent("decoding event content", {"content": "bad_json"}) from None
    _check_version(obj)
    errors = check_content(obj)
    if errors:
        raise InvalidEvent("decoding event content", errors)
    if _canonical(obj) != content:
        raise InvalidEvent("decoding event content", {"content": "not_canonical"})
    body = {k: v for k, v in obj.items() if k not in _COMMON}
    return Event(
        id=event_id.hex(), concern=concern_id.hex(), device=author_device.hex(), device_time_ms=device_time_ms,
        hlc=Hlc(obj["hlc"][0], obj["hlc"][1]), author=obj["author"], parents=tuple(obj["parents"]),
        type=obj["type"], body=body, content=bytes(content),
    )

