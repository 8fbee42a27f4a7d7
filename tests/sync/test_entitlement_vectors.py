"""The entitlement vectors (tests/vectors/entitlement/): who may hold which key, the table both languages run."""

from __future__ import annotations

import json
from pathlib import Path

from sync import entitlement as rules
from sync.protocol import b64e

VECTORS = Path(__file__).parents[1] / "vectors" / "entitlement"


def _listing(directory: dict) -> dict:
    h = bytes.fromhex
    return {
        "accounts": [{**a, "id": b64e(h(a["id"]))} for a in directory["accounts"]],
        "classes": [
            {**c, "id": b64e(h(c["id"])), "pupils": [b64e(h(x)) for x in c["pupils"]],
             "teachers": [b64e(h(x)) for x in c["teachers"]]}
            for c in directory["classes"]
        ],
        "reader_keys": [{**k, "id": b64e(h(k["id"]))} for k in directory["reader_keys"]],
        "pupils": [{"id": b64e(h(x["id"])), "reader_key_id": b64e(h(x["reader_key_id"]))} for x in directory["pupils"]],
    }


def test_every_member_against_every_key() -> None:
    files = sorted(VECTORS.glob("*.json"))
    assert files
    for path in files:
        vector = json.loads(path.read_text())
        inputs = vector["inputs"]
        view = rules.view_of_directory(_listing(inputs["directory"]))
        for row in vector["output"]["table"]:
            member, key = bytes.fromhex(inputs["ids"][row["member"]]), bytes.fromhex(inputs["keys"][row["key"]])
            got = rules.may_hold(view, member, key)
            assert got == row["may_hold"], (path.name, row)
