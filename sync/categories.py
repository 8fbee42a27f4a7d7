"""Concern categories as data a school can edit: the shipped defaults (data/categories.json) and their checks.

Each category has an ``id`` (what events record), a ``label``, a ``group`` (for reports), a default
``sensitivity`` (``restricted`` means the safeguarding team and named people only), the reader groups it
names besides safeguarding (``sen`` for SEN), ``off_chronology`` (allegations about staff are kept off pupil
chronologies) and, for behaviour, the DfE suspension and exclusion reason code.

A school edits a copy; old events keep their category id, so a retired category must stay in the list
(relabelled if need be) for old records to read well. The fold needs only ``restricted_ids``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .record import SyncError

__all__ = [
    "Category", "InvalidCategories", "load_categories", "default_categories", "restricted_ids", "DFE_CODES",
    "SENSITIVITIES",
]

SENSITIVITIES = ("restricted", "standard")
DFE_CODES = ("PP", "PA", "VP", "VA", "BU", "RA", "LG", "DS", "SM", "DA", "DM", "TH", "OW", "MT", "DB")
FORMAT_VERSION = 1
MAX_CATEGORIES = 500
_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
_KEYS = ("id", "label", "group", "sensitivity", "readers", "off_chronology", "dfe_code")


class InvalidCategories(SyncError):
    """A category list that breaks the format; ``fields`` names each bad field."""

    code = "invalid_categories"

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = dict(sorted(fields.items()))
        super().__init__("checking categories (" + ", ".join(f"{k}: {v}" for k, v in self.fields.items()) + ")")


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    label: str
    group: str
    sensitivity: str
    readers: tuple[str, ...] = ()
    off_chronology: bool = False
    dfe_code: str | None = None

    @property
    def restricted(self) -> bool:
        return self.sensitivity == "restricted"


def _check(i: int, item: Any, errors: dict[str, str], seen: set[str]) -> None:
    path = f"categories[{i}]"
    if not isinstance(item, dict):
        errors[path] = "wrong_type"
        return
    for key in item:
        if key not in _KEYS:
            errors[f"{path}.{key}"] = "unknown_field"
    for key in _KEYS:
        if key not in item:
            errors[f"{path}.{key}"] = "required"
    value = item.get("id")
    if "id" in item and not (isinstance(value, str) and _ID.fullmatch(value)):
        errors[f"{path}.id"] = "bad_format"
    elif isinstance(value, str):
        if value in seen:
            errors[f"{path}.id"] = "duplicate"
        seen.add(value)
    label = item.get("label")
    if "label" in item and not (isinstance(label, str) and label.strip() and len(label) <= 100):
        errors[f"{path}.label"] = "bad_format"
    group = item.get("group")
    if "group" in item and not (isinstance(group, str) and _ID.fullmatch(group)):
        errors[f"{path}.group"] = "bad_format"
    if "sensitivity" in item and item["sensitivity"] not in SENSITIVITIES:
        errors[f"{path}.sensitivity"] = "unknown_value"
    readers = item.get("readers")
    if "readers" in item and not (
        isinstance(readers, list) and all(isinstance(r, str) and _ID.fullmatch(r) for r in readers)
        and len(set(readers)) == len(readers) and "safeguarding" not in readers
    ):
        errors[f"{path}.readers"] = "bad_format"
    if "off_chronology" in item and not isinstance(item["off_chronology"], bool):
        errors[f"{path}.off_chronology"] = "wrong_type"
    if "dfe_code" in item and item["dfe_code"] is not None and item["dfe_code"] not in DFE_CODES:
        errors[f"{path}.dfe_code"] = "unknown_value"


def load_categories(data: str | bytes | Mapping[str, Any]) -> tuple[Category, ...]:
    """Check and load a category list (the JSON text or its parsed form); raises ``InvalidCategories``."""
    obj = json.loads(data) if isinstance(data, (str, bytes)) else data
    if not isinstance(obj, Mapping):
        raise InvalidCategories({"": "wrong_type"})
    errors: dict[str, str] = {}
    if obj.get("version") != FORMAT_VERSION:
        errors["version"] = "unknown_value"
    items = obj.get("categories")
    if not isinstance(items, list) or not items or len(items) > MAX_CATEGORIES:
        errors["categories"] = "wrong_type" if not isinstance(items, list) else "out_of_range"
    else:
        seen: set[str] = set()
        for i, item in enumerate(items):
            _check(i, item, errors, seen)
    if errors:
        raise InvalidCategories(errors)
    return tuple(
        Category(c["id"], c["label"], c["group"], c["sensitivity"], tuple(c["readers"]), c["off_chronology"],
                 c["dfe_code"])
        for c in items
    )


def default_categories() -> tuple[Category, ...]:
    """The categories Cairn ships (sync/data/categories.json)."""
    return load_categories(resources.files(__package__).joinpath("data/categories.json").read_text("utf-8"))


def restricted_ids(categories: Iterable[Category]) -> frozenset[str]:
    """The ids of the categories whose default sensitivity is restricted: what ``fold`` takes."""
    return frozenset(c.id for c in categories if c.restricted)
