"""The record's fields and their validation: one stable code per bad field, never a silent fix-up."""

from __future__ import annotations

from typing import Any

import pytest

from sync.categories import InvalidCategories, default_categories, load_categories, restricted_ids
from sync.record import (
    AMENDABLE_FIELDS,
    LONG_TEXT,
    MAX_PUPILS,
    RECORD_FIELDS,
    REGISTER_FIELDS,
    InvalidEvent,
    check_field,
    validate_record,
)

PUPIL, OTHER = "a1" * 16, "b2" * 16
GOOD: dict[str, Any] = {
    "kind": "safeguarding_concern",
    "category": "neglect",
    "occurred_at": "2026-09-21T08:50",
    "observed": "Fictional pupil arrived without a coat.",
    "pupils": [{"pupil": PUPIL, "role": "subject"}],
}


def errors(record: Any, categories: list[str] | None = None) -> dict[str, str]:
    try:
        validate_record(record, categories)
    except InvalidEvent as exc:
        assert exc.code == "parse_failure"
        return exc.fields
    return {}


def test_a_minimal_record_is_valid() -> None:
    assert errors(GOOD) == {}
    assert errors({**GOOD, "occurred_at": "2024-02-29"}) == {}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"kind": "rumour"}, {"kind": "unknown_value"}),
        ({"category": "Neglect"}, {"category": "bad_format"}),
        ({"occurred_at": "2026-09-21 08:50"}, {"occurred_at": "bad_format"}),
        ({"occurred_at": "2025-02-29"}, {"occurred_at": "out_of_range"}),
        ({"occurred_at": "2026-09-21T24:00"}, {"occurred_at": "out_of_range"}),
        ({"occurred_at": "٢٠٢٦-09-21"}, {"occurred_at": "bad_format"}),
        ({"observed": ""}, {"observed": "empty"}),
        ({"observed": " \n\t"}, {"observed": "empty"}),
        ({"observed": "x" * (LONG_TEXT + 1)}, {"observed": "too_long"}),
        ({"observed": "\U0001f600" * LONG_TEXT}, {}),
        ({"observed": "bell\x07"}, {"observed": "bad_format"}),
        ({"observed": 7}, {"observed": "wrong_type"}),
        ({"child_words": "It hurts when I sit down."}, {}),
        ({"present": []}, {"present": "empty"}),
        ({"present": ["Ms Example"] * 33}, {"present": "too_many"}),
        ({"pupils": [{"pupil": PUPIL, "role": "suspect"}]}, {"pupils[0].role": "unknown_value"}),
        ({"pupils": [{"pupil": PUPIL}]}, {"pupils[0].role": "required"}),
        ({"pupils": [{"pupil": PUPIL, "role": "subject", "label": "x"}]}, {"pupils[0].label": "unknown_field"}),
        (
            {"pupils": [{"pupil": PUPIL, "role": "subject"}, {"pupil": PUPIL, "role": "victim"}]},
            {"pupils[1]": "duplicate"},
        ),
        ({"pupils": [{"pupil": f"{i:032x}", "role": "other"} for i in range(MAX_PUPILS + 1)]}, {"pupils": "too_many"}),
        (
            {"body_map": [{"pupil": OTHER, "side": "front", "x": 1, "y": 1, "type": "bruise"}]},
            {"body_map[0].pupil": "unknown_pupil"},
        ),
        (
            {"body_map": [{"pupil": PUPIL, "side": "top", "x": -1, "y": 1, "type": "bruise", "size_mm": 0}]},
            {
                "body_map[0].side": "unknown_value",
                "body_map[0].x": "out_of_range",
                "body_map[0].size_mm": "out_of_range",
            },
        ),
        (
            {"body_map": [{"pupil": PUPIL, "side": "back", "x": True, "y": 1.5, "type": "burn"}]},
            {"body_map[0].x": "wrong_type", "body_map[0].y": "wrong_type"},
        ),
        ({"decision": {"decision": "no_referral"}}, {"decision.rationale": "required"}),
        ({"decision": {"decision": "no_referral", "rationale": "Threshold not met; monitor for two weeks."}}, {}),
        ({"need_to_know": [PUPIL, PUPIL]}, {"need_to_know[1]": "duplicate"}),
        (
            {
                "sharing": {
                    "shared": True,
                    "with": "Police",
                    "what": "Notes",
                    "lawful_basis": "public_task",
                    "reason": "Risk",
                }
            },
            {"sharing": "not_allowed"},
        ),
        ({"kind": "sharing_decision"}, {"sharing": "required"}),
        (
            {
                "kind": "sharing_decision",
                "sharing": {
                    "shared": "no",
                    "with": "Police",
                    "what": "Notes",
                    "lawful_basis": "whim",
                    "reason": "Risk",
                },
            },
            {"sharing.shared": "wrong_type", "sharing.lawful_basis": "unknown_value"},
        ),
        ({"surprise": 1}, {"surprise": "unknown_field"}),
    ],
)
def test_each_bad_field_is_named_with_its_code(change: dict[str, Any], expected: dict[str, str]) -> None:
    assert errors({**GOOD, **change}) == expected


def test_missing_required_fields_and_wrong_shapes() -> None:
    assert errors({}) == {"kind": "required", "category": "required", "occurred_at": "required", "observed": "required"}
    assert errors([]) == {"record": "wrong_type"}


def test_categories_given_must_contain_the_category() -> None:
    ids = [c.id for c in default_categories()]
    assert errors(GOOD, ids) == {}
    assert errors({**GOOD, "category": "made_up"}, ids) == {"category": "unknown_value"}


def test_field_sets() -> None:
    assert "pupils" not in AMENDABLE_FIELDS and "category" not in AMENDABLE_FIELDS
    assert set(REGISTER_FIELDS) == set(RECORD_FIELDS) - {"pupils"} | {"status", "assignee"}
    e: dict[str, str] = {}
    check_field("observed", None, "value", e)
    check_field("location", None, "location", e)
    check_field("status", "archived", "status", e)
    assert e == {"value": "required", "status": "unknown_value"}


def test_default_categories_cover_the_issue() -> None:
    cats = {c.id: c for c in default_categories()}
    restricted = restricted_ids(cats.values())
    for cid in (
        "physical_abuse",
        "emotional_abuse",
        "sexual_abuse",
        "child_on_child_sexual_violence",
        "sharing_nudes",
        "cse",
        "trafficking",
        "domestic_abuse",
        "fgm",
        "forced_marriage",
        "honour_based_abuse",
        "radicalisation",
        "self_harm",
        "suicidal_ideation",
        "staff_allegation",
    ):
        assert cid in restricted, cid
    assert "neglect" not in restricted and "bullying" not in restricted
    assert cats["staff_allegation"].off_chronology and cats["sen"].readers == ("sen",)
    codes = {c.dfe_code for c in cats.values() if c.dfe_code}
    assert codes == {"PP", "PA", "VP", "VA", "BU", "RA", "LG", "DS", "SM", "DA", "DM", "TH", "OW", "MT", "DB"}
    assert {"low_level_behaviour", "positive_behaviour", "young_carer", "private_fostering", "early_help"} <= set(cats)


def test_edited_categories_are_checked() -> None:
    item = {
        "id": "vaping",
        "label": "Vaping",
        "group": "behaviour",
        "sensitivity": "standard",
        "readers": [],
        "off_chronology": False,
        "dfe_code": "DA",
    }
    assert load_categories({"version": 1, "categories": [item]})[0].id == "vaping"
    with pytest.raises(InvalidCategories) as caught:
        load_categories({"version": 1, "categories": [item, {**item, "sensitivity": "secret", "dfe_code": "ZZ"}]})
    assert caught.value.fields == {
        "categories[1].id": "duplicate",
        "categories[1].sensitivity": "unknown_value",
        "categories[1].dfe_code": "unknown_value",
    }
    with pytest.raises(InvalidCategories):
        load_categories({"version": 2, "categories": [item]})
