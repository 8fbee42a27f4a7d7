"""Entitlement vectors: who may hold which reader key, by the signed roles and classes (sync/entitlement.py
and its JavaScript twin, pwa/js/sync/keyholder.js). Not a cryptographic construction: run by
tests/sync/test_entitlement_vectors.py and pwa/test/keyholder.test.mjs, not by crypto/selfcheck.py."""

from __future__ import annotations

from collections.abc import Iterator

from sync import entitlement as rules
from sync.protocol import b64e
from tests.vectors._common import Case, Rng, case


def entitlement_cases() -> Iterator[Case]:
    """Who may hold which key, for every purpose and role: the same table in Python and JavaScript."""
    rng = Rng("entitlement")
    names = ["dsl", "teacher_oak", "teacher_ash", "senco", "contributor", "admin", "sen_teacher", "left"]
    ids = {n: rng.bytes(16) for n in names}
    roles = {
        "dsl": ["safeguarding", "admin"], "teacher_oak": ["teacher"], "teacher_ash": ["teacher"], "senco": ["sen"],
        "contributor": ["contributor"], "admin": ["admin"], "sen_teacher": ["teacher", "sen"],
    }
    pupils = {"ada": rng.bytes(16), "dev": rng.bytes(16)}
    classes = [{"id": rng.bytes(16), "label": "Oak", "pupils": [pupils["ada"]], "teachers": [ids["teacher_oak"], ids["sen_teacher"]]},
               {"id": rng.bytes(16), "label": "Ash", "pupils": [pupils["dev"]], "teachers": [ids["teacher_ash"]]}]
    keys = {"group:safeguarding": rng.bytes(16), "group:sen": rng.bytes(16), "signing:directory": rng.bytes(16),
            "roster:staff": rng.bytes(16), "roster:sensitive": rng.bytes(16), "pupil:ada": rng.bytes(16),
            "pupil:dev": rng.bytes(16), "group:pastoral": rng.bytes(16)}
    directory = {
        "accounts": [{"id": ids[n], "roles": roles.get(n, ["teacher"]), "left": n == "left"} for n in names],
        "classes": classes,
        "reader_keys": [{"id": k, "version": 1, "purpose": "pupil" if p.startswith("pupil:") else p} for p, k in keys.items()],
        "pupils": [{"id": pupils["ada"], "reader_key_id": keys["pupil:ada"]}, {"id": pupils["dev"], "reader_key_id": keys["pupil:dev"]}],
    }
    as_listing = {
        "accounts": [{**a, "id": b64e(a["id"])} for a in directory["accounts"]],
        "classes": [{**c, "id": b64e(c["id"]), "pupils": [b64e(x) for x in c["pupils"]], "teachers": [b64e(x) for x in c["teachers"]]}
                    for c in classes],
        "reader_keys": [{**k, "id": b64e(k["id"])} for k in directory["reader_keys"]],
        "pupils": [{"id": b64e(x["id"]), "reader_key_id": b64e(x["reader_key_id"])} for x in directory["pupils"]],
    }
    view = rules.view_of_directory(as_listing)
    table = [{"member": n, "key": k, "may_hold": rules.may_hold(view, ids[n], keys[k])} for n in names for k in keys]
    expected = {  # the rules, stated by hand: the generator checks the code agrees with them
        "dsl": set(keys),
        "teacher_oak": {"roster:staff", "roster:sensitive", "pupil:ada"},
        "teacher_ash": {"roster:staff", "roster:sensitive", "pupil:dev"},
        "senco": {"roster:staff", "roster:sensitive", "group:sen"},
        "contributor": {"roster:staff"},
        "admin": {"roster:staff", "roster:sensitive"},
        "sen_teacher": {"roster:staff", "roster:sensitive", "pupil:ada", "group:sen"},
        "left": set(),
    }
    for row in table:
        assert row["may_hold"] == (row["key"] in expected[row["member"]]), row
    yield case("entitlement", "may_hold", "table_success",
               "who may hold which reader key, by signed roles and classes: every member against every key",
               "success", {"directory": directory, "ids": ids, "keys": keys}, {"table": table})



CASES = [entitlement_cases]
