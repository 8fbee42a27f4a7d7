"""Every fold vector under tests/vectors/fold/, run through the Python decoder and fold (the JavaScript suite
runs the same files through pwa/js/fold.js)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from sync.events import decode, encode
from sync.fold import fold
from sync.record import InvalidEvent

VECTORS = Path(__file__).parents[1] / "vectors" / "fold"
FILES = sorted(VECTORS.glob("*.json"))


def _decode(e: dict[str, Any]):
    return decode(bytes.fromhex(e["content"]), event_id=bytes.fromhex(e["id"]), concern_id=bytes.fromhex(e["concern"]),
                  author_device=bytes.fromhex(e["device"]), device_time_ms=e["device_time_ms"])


def check(vector: dict[str, Any]) -> None:
    """Run one vector; raise AssertionError (or the decoder's error) if the code disagrees with it."""
    i = vector["inputs"]
    if vector["expect"] != "success":
        assert vector["expect"] in ("parse_failure", "unsupported_version")
        with pytest.raises(InvalidEvent) as caught:
            for e in i["events"]:
                _decode(e)
        assert caught.value.code == vector["expect"], caught.value
        assert caught.value.fields == i["error_fields"]
        return
    events = [_decode(e) for e in i["events"]]
    for e in events:
        assert encode(json.loads(e.content)) == e.content, "content is canonical: it re-encodes to the same bytes"
    options = {"safeguarding": i["safeguarding"], "restricted_categories": i["restricted_categories"],
               "received": i.get("received")}
    assert fold(events, **options) == vector["output"]
    shuffled = events + events[: len(events) // 2]
    random.Random(vector["condition"]).shuffle(shuffled)
    assert fold(shuffled, **options) == vector["output"], "delivery order and duplicates change nothing"


def test_the_fold_vectors_are_there_and_cover_success_and_failure() -> None:
    assert len(FILES) >= 30, f"too few fold vectors under {VECTORS}: run python -m tests.vectors.generate"
    expects = {json.loads(p.read_text())["expect"] for p in FILES}
    assert expects == {"success", "parse_failure", "unsupported_version"}
    for path in FILES:
        v = json.loads(path.read_text())
        assert (v["construct"], path.stem) == ("fold", f"{v['area']}_{v['condition']}") and v["comment"]
        assert ("output" in v) == (v["expect"] == "success")


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path: Path) -> None:
    check(json.loads(path.read_text()))


def test_a_wrong_vector_is_caught() -> None:
    """The runner itself can fail: a changed output, expectation or field list does not pass."""
    good = json.loads((VECTORS / "amend_concurrent_conflict.json").read_text())
    with pytest.raises(AssertionError):
        check({**good, "output": {**good["output"], "conflicts": []}})
    bad = json.loads((VECTORS / "refuse_unknown_version.json").read_text())
    with pytest.raises(AssertionError):
        check({**bad, "expect": "parse_failure"})
    with pytest.raises(AssertionError):
        check({**bad, "inputs": {**bad["inputs"], "error_fields": {"v": "required"}}})
