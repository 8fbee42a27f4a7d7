"""Local sealing vectors: records a device keeps at rest, bound to school, user, kind and record id."""

from __future__ import annotations

from collections.abc import Iterator

from crypto._random import inject
from crypto.keys import SecretKey
from crypto.local import local_key, open_local, seal_local
from tests.vectors._common import Case, Rng, case, expect_error, flip


def local_cases() -> Iterator[Case]:
    rng = Rng("local")
    kek = SecretKey(rng.bytes(32))
    key = local_key(kek)
    school, user, record, nonce = rng.bytes(16), rng.bytes(16), rng.bytes(16), rng.bytes(24)
    plaintext = b'{"draft": "a fictional half-written concern"}'
    with inject([nonce]):
        sealed = seal_local(key, school, user, "draft", record, plaintext)
    base = {"kek": bytes(kek), "school_id": school, "user_id": user, "kind": "draft", "record_id": record}
    yield case(
        "local",
        "seal",
        "success",
        "a draft sealed at rest under the key derived from the password's KEK",
        "success",
        {**base, "plaintext": plaintext, "random": [nonce], "sealed": sealed},
        {"local_key": bytes(key), "plaintext": plaintext},
    )
    bad = [
        ("other_kind", {"kind": "device-key", "sealed": sealed}, "auth_failure", "a draft offered as the device key"),
        ("other_record", {"record_id": rng.bytes(16), "sealed": sealed}, "auth_failure", "records cannot be swapped"),
        ("other_user", {"user_id": rng.bytes(16), "sealed": sealed}, "auth_failure", "another user on a shared tablet"),
        ("wrong_kek", {"kek": rng.bytes(32), "sealed": sealed}, "auth_failure", "a wrong password"),
        ("tampered", {"sealed": flip(sealed, 30)}, "auth_failure", "one bit of the box flipped"),
        ("unknown_version", {"sealed": bytes([2]) + sealed[1:]}, "unsupported_version", "local record version 2"),
        ("truncated", {"sealed": sealed[:30]}, "parse_failure", "shorter than a nonce and a tag"),
    ]
    for condition, change, expect, comment in bad:
        i = {**base, **change}
        expect_error(
            expect,
            lambda i=i: open_local(
                local_key(SecretKey(i["kek"])), i["school_id"], i["user_id"], i["kind"], i["record_id"], i["sealed"]
            ),
        )
        yield case("local", "open", condition, comment, expect, i)


CASES = [local_cases]
