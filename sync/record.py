"""What a concern's record holds, and its validation with one stable error code per field.

The record travels inside the encrypted body of the concern's ``created`` event (docs/PROTOCOL.md
section 8); single fields travel in ``amended`` and ``conflict_resolved`` events. Every check here has a
twin in pwa/js/record.js and both must give the same codes for the same input: the field paths and codes
are part of the protocol, so a form can show "observed: too_long" beside the right box.

Also the error family of sync/: ``SyncError``, ``InvalidEvent`` (with ``.fields``, a map from field path
to code), ``UnsupportedEventVersion`` and ``ClockSkew``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

__all__ = [
    "SyncError", "InvalidEvent", "UnsupportedEventVersion", "ClockSkew", "Errors",
    "KINDS", "ROLES", "SIDES", "MARK_TYPES", "DECISIONS", "LAWFUL_BASES", "STATUSES",
    "RECORD_FIELDS", "REQUIRED_FIELDS", "AMENDABLE_FIELDS", "REGISTER_FIELDS",
    "LONG_TEXT", "MEDIUM_TEXT", "SHORT_TEXT", "MAX_PUPILS", "MAX_PRESENT", "MAX_MARKS", "MAX_NEED_TO_KNOW",
    "validate_record", "check_record", "check_field", "check_text", "check_id", "check_int", "check_date",
    "check_category_id", "check_enum", "check_bool", "check_pupils",
]

Errors = dict[str, str]
"""Field path (``record.pupils[1].role``) to a stable snake_case code."""


class SyncError(Exception):
    """Root of every error raised by sync/ on bad input."""

    code = "sync_error"


class InvalidEvent(SyncError):
    """Event content or a record that breaks the format; ``fields`` names each bad field and why."""

    code = "parse_failure"

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        self.fields: Errors = dict(sorted((fields or {}).items()))
        detail = ", ".join(f"{k}: {v}" for k, v in self.fields.items())
        super().__init__(f"{message} ({detail})" if detail else message)


class UnsupportedEventVersion(InvalidEvent):
    """Event content whose ``v`` is not a version this code knows."""

    code = "unsupported_version"


class ClockSkew(SyncError):
    """A clock reading more than the tolerated skew ahead of this device's clock."""

    code = "clock_skew"


KINDS = ("safeguarding_concern", "behaviour_incident", "parental_contact", "sen_note", "sharing_decision",
         "general_note")
ROLES = ("subject", "victim", "alleged_perpetrator", "witness", "other")
SIDES = ("front", "back")
MARK_TYPES = ("bruise", "cut", "graze", "scratch", "burn", "scald", "bite", "swelling", "mark", "other")
DECISIONS = ("refer_childrens_social_care", "refer_police", "refer_prevent", "refer_lado", "refer_early_help",
             "refer_other", "monitor", "no_referral")
LAWFUL_BASES = ("consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests")
STATUSES = ("open", "awaiting", "closed", "reopened")

LONG_TEXT, MEDIUM_TEXT, SHORT_TEXT = 20_000, 2_000, 200
MAX_PUPILS, MAX_PRESENT, MAX_MARKS, MAX_NEED_TO_KNOW = 32, 32, 100, 64

_HEX_ID = re.compile(r"[0-9a-f]{32}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_BLANK = re.compile(r"[ \t\n\r]*")
_BAD_CHAR = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2}))?")


# --- primitive checks: each writes at most one code for its path --------------------------------------------


def check_text(value: Any, path: str, errors: Errors, limit: int) -> None:
    """A non-blank string of at most ``limit`` code points, without control characters or lone surrogates."""
    if not isinstance(value, str):
        errors.setdefault(path, "wrong_type")
    elif _BAD_CHAR.search(value):
        errors.setdefault(path, "bad_format")
    elif _BLANK.fullmatch(value):
        errors.setdefault(path, "empty")
    elif len(value) > limit:
        errors.setdefault(path, "too_long")


def check_id(value: Any, path: str, errors: Errors) -> None:
    """A 16-byte id written as 32 lower-case hex digits."""
    if not isinstance(value, str):
        errors.setdefault(path, "wrong_type")
    elif not _HEX_ID.fullmatch(value):
        errors.setdefault(path, "bad_format")


def check_int(value: Any, path: str, errors: Errors, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        errors.setdefault(path, "wrong_type")
    elif not low <= value <= high:
        errors.setdefault(path, "out_of_range")


def check_enum(value: Any, path: str, errors: Errors, allowed: Collection[str]) -> None:
    if not isinstance(value, str):
        errors.setdefault(path, "wrong_type")
    elif value not in allowed:
        errors.setdefault(path, "unknown_value")


def check_bool(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, bool):
        errors.setdefault(path, "wrong_type")


def check_category_id(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, str):
        errors.setdefault(path, "wrong_type")
    elif not _CATEGORY.fullmatch(value):
        errors.setdefault(path, "bad_format")


def _valid_date(y: int, m: int, d: int) -> bool:
    if not (1900 <= y <= 9999 and 1 <= m <= 12):
        return False
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1]
    return 1 <= d <= days


def check_date(value: Any, path: str, errors: Errors, with_time: bool = False) -> None:
    """``YYYY-MM-DD`` (or, with ``with_time``, optionally ``YYYY-MM-DDTHH:MM``), school local time, a real day."""
    if not isinstance(value, str):
        errors.setdefault(path, "wrong_type")
        return
    match = (_DATETIME if with_time else _DATE).fullmatch(value)
    if not match:
        errors.setdefault(path, "bad_format")
        return
    y, m, d = (int(g) for g in match.groups()[:3])
    hh, mm = (match.group(4), match.group(5)) if with_time else (None, None)
    if not _valid_date(y, m, d) or (hh is not None and (int(hh) > 23 or int(mm) > 59)):
        errors.setdefault(path, "out_of_range")


def _object(value: Any, path: str, errors: Errors, required: Collection[str], optional: Collection[str]) -> bool:
    """Check that ``value`` is an object with no unknown keys and every required key; True if it is an object."""
    if not isinstance(value, dict):
        errors.setdefault(path, "wrong_type")
        return False
    for key in value:
        if key not in required and key not in optional:
            errors.setdefault(f"{path}.{key}", "unknown_field")
    for key in required:
        if key not in value:
            errors.setdefault(f"{path}.{key}", "required")
    return True


def _list(value: Any, path: str, errors: Errors, limit: int, item: Callable[[Any, str, Errors], None]) -> bool:
    """A non-empty list of at most ``limit`` items, each checked by ``item``."""
    if not isinstance(value, list):
        errors.setdefault(path, "wrong_type")
        return False
    if not value:
        errors.setdefault(path, "empty")
        return False
    if len(value) > limit:
        errors.setdefault(path, "too_many")
        return False
    for i, v in enumerate(value):
        item(v, f"{path}[{i}]", errors)
    return True


def _no_duplicates(values: list[Any], path: str, errors: Errors) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if isinstance(v, str):
            if v in seen:
                errors.setdefault(f"{path}[{i}]", "duplicate")
            seen.add(v)


# --- fields of the record -----------------------------------------------------------------------------------


def _pupil(value: Any, path: str, errors: Errors) -> None:
    if _object(value, path, errors, ("pupil", "role"), ()):
        if "pupil" in value:
            check_id(value["pupil"], f"{path}.pupil", errors)
        if "role" in value:
            check_enum(value["role"], f"{path}.role", errors, ROLES)


def check_pupils(value: Any, path: str, errors: Errors) -> None:
    """Linked pupils, each with its own role; a pupil appears once."""
    if _list(value, path, errors, MAX_PUPILS, _pupil):
        _no_duplicates([p.get("pupil") if isinstance(p, dict) else None for p in value], path, errors)


def _mark(value: Any, path: str, errors: Errors) -> None:
    if not _object(value, path, errors, ("pupil", "side", "x", "y", "type"), ("region", "size_mm", "colour", "note")):
        return
    checks: dict[str, Callable[[Any, str], None]] = {
        "pupil": lambda v, p: check_id(v, p, errors),
        "side": lambda v, p: check_enum(v, p, errors, SIDES),
        "x": lambda v, p: check_int(v, p, errors, 0, 1000),
        "y": lambda v, p: check_int(v, p, errors, 0, 1000),
        "type": lambda v, p: check_enum(v, p, errors, MARK_TYPES),
        "region": lambda v, p: check_text(v, p, errors, 100),
        "size_mm": lambda v, p: check_int(v, p, errors, 1, 2000),
        "colour": lambda v, p: check_text(v, p, errors, 40),
        "note": lambda v, p: check_text(v, p, errors, 500),
    }
    for key, check in checks.items():
        if key in value:
            check(value[key], f"{path}.{key}")


def _decision(value: Any, path: str, errors: Errors) -> None:
    if _object(value, path, errors, ("decision", "rationale"), ()):
        if "decision" in value:
            check_enum(value["decision"], f"{path}.decision", errors, DECISIONS)
        if "rationale" in value:
            check_text(value["rationale"], f"{path}.rationale", errors, LONG_TEXT)


def _sharing(value: Any, path: str, errors: Errors) -> None:
    if _object(value, path, errors, ("shared", "with", "what", "lawful_basis", "reason"), ()):
        for key, check in (
            ("shared", lambda v, p: check_bool(v, p, errors)),
            ("with", lambda v, p: check_text(v, p, errors, SHORT_TEXT)),
            ("what", lambda v, p: check_text(v, p, errors, MEDIUM_TEXT)),
            ("lawful_basis", lambda v, p: check_enum(v, p, errors, LAWFUL_BASES)),
            ("reason", lambda v, p: check_text(v, p, errors, LONG_TEXT)),
        ):
            if key in value:
                check(value[key], f"{path}.{key}")


def _marks(value: Any, path: str, errors: Errors) -> None:
    _list(value, path, errors, MAX_MARKS, _mark)


def _ids(limit: int) -> Callable[[Any, str, Errors], None]:
    def check(value: Any, path: str, errors: Errors) -> None:
        if _list(value, path, errors, limit, check_id):
            _no_duplicates(value, path, errors)
    return check


def _texts(limit: int, each: int) -> Callable[[Any, str, Errors], None]:
    def check(value: Any, path: str, errors: Errors) -> None:
        _list(value, path, errors, limit, lambda v, p, e: check_text(v, p, e, each))
    return check


def _text(limit: int) -> Callable[[Any, str, Errors], None]:
    return lambda v, p, e: check_text(v, p, e, limit)


FIELD_CHECKS: dict[str, Callable[[Any, str, Errors], None]] = {
    "kind": lambda v, p, e: check_enum(v, p, e, KINDS),
    "category": check_category_id,
    "occurred_at": lambda v, p, e: check_date(v, p, e, with_time=True),
    "location": _text(SHORT_TEXT),
    "observed": _text(LONG_TEXT),
    "opinion": _text(LONG_TEXT),
    "child_words": _text(LONG_TEXT),
    "present": _texts(MAX_PRESENT, SHORT_TEXT),
    "pupils": check_pupils,
    "body_map": _marks,
    "immediate_action": _text(LONG_TEXT),
    "decision": _decision,
    "outcome": _text(LONG_TEXT),
    "need_to_know": _ids(MAX_NEED_TO_KNOW),
    "sharing": _sharing,
    "urgent": check_bool,
}
RECORD_FIELDS = tuple(FIELD_CHECKS)
REQUIRED_FIELDS = ("kind", "category", "occurred_at", "observed")
AMENDABLE_FIELDS = tuple(f for f in RECORD_FIELDS if f not in ("kind", "category", "pupils"))
REGISTER_FIELDS = tuple(f for f in RECORD_FIELDS if f != "pupils") + ("status", "assignee")
"""Single-value fields of the folded state: each a multi-value register (docs/PROTOCOL.md 8.5)."""

_REGISTER_EXTRA: dict[str, Callable[[Any, str, Errors], None]] = {
    "status": lambda v, p, e: check_enum(v, p, e, STATUSES),
    "assignee": check_id,
}


def check_field(name: str, value: Any, path: str, errors: Errors) -> None:
    """Check one register field's value; ``None`` clears an optional field and is refused for a required one."""
    if value is None:
        if name in REQUIRED_FIELDS or name == "status":
            errors.setdefault(path, "required")
        return
    (FIELD_CHECKS.get(name) or _REGISTER_EXTRA[name])(value, path, errors)


def check_record(value: Any, path: str, errors: Errors, categories: Collection[str] | None = None) -> None:
    """Check a whole record into ``errors``; with ``categories``, the category must be one of them."""
    if not _object(value, path, errors, REQUIRED_FIELDS, [f for f in RECORD_FIELDS if f not in REQUIRED_FIELDS]):
        return
    for name, check in FIELD_CHECKS.items():
        if name in value:
            check(value[name], f"{path}.{name}", errors)
    kind = value.get("kind")
    if kind == "sharing_decision" and "sharing" not in value:
        errors.setdefault(f"{path}.sharing", "required")
    elif kind in KINDS and kind != "sharing_decision" and "sharing" in value:
        errors.setdefault(f"{path}.sharing", "not_allowed")
    category = value.get("category")
    if categories is not None and isinstance(category, str) and f"{path}.category" not in errors:
        if category not in categories:
            errors.setdefault(f"{path}.category", "unknown_value")
    pupils = value.get("pupils")
    linked = {p.get("pupil") for p in pupils if isinstance(p, dict) and isinstance(p.get("pupil"), str)} if isinstance(
        pupils, list) else set()
    marks = value.get("body_map")
    for i, mark in enumerate(marks if isinstance(marks, list) else []):
        mark_path = f"{path}.body_map[{i}].pupil"
        if isinstance(mark, dict) and isinstance(mark.get("pupil"), str) and mark_path not in errors:
            if mark["pupil"] not in linked:
                errors.setdefault(mark_path, "unknown_pupil")


def validate_record(record: Any, categories: Collection[str] | None = None) -> None:
    """Raise ``InvalidEvent`` naming every bad field of ``record`` (paths without a prefix, for forms)."""
    errors: Errors = {}
    check_record(record, "record", errors, categories)
    if errors:
        raise InvalidEvent("checking record", {k.removeprefix("record."): v for k, v in errors.items()})
