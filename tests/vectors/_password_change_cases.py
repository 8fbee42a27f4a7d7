"""Password-change vectors: the old login key's proof over a fresh challenge and the new password material."""

from __future__ import annotations

from collections.abc import Iterator

from crypto.account import KdfParams
from crypto.keys import SigningKey
from crypto.recovery import sign_password_change, verify_password_change
from tests.vectors._common import FLOOR_MEM, FLOOR_OPS, Case, Rng, case, expect_error, flip

FIELDS = ("school_id", "user_id", "challenge", "kdf_params", "login_pk", "bundle")


def password_change_cases() -> Iterator[Case]:
    rng = Rng("password_change")
    old = SigningKey(rng.bytes(32))
    base = {
        "old_login_seed": bytes(old),
        "school_id": rng.bytes(16),
        "user_id": rng.bytes(16),
        "challenge": rng.bytes(32),
        "kdf_params": KdfParams(FLOOR_OPS, FLOOR_MEM, rng.bytes(16)).encode(),
        "login_pk": SigningKey(rng.bytes(32)).public,
        "bundle": bytes([1, 1]) + rng.bytes(105),
    }
    sig = sign_password_change(old, *(base[f] for f in FIELDS))
    yield case("password_change", "sign", "success",
               "the old login key's proof over a fresh challenge and the new password material", "success",
               base, {"old_login_pk": old.public, "signature": sig})
    bad = [
        ("flipped_signature", {"signature": flip(sig, 5)}, "bad_signature", "one bit of the signature flipped"),
        ("other_challenge", {"challenge": flip(base["challenge"], 0)}, "bad_signature", "a proof replayed against another challenge"),
        ("other_user", {"user_id": flip(base["user_id"], 15)}, "bad_signature", "a proof presented for another user"),
        ("swapped_login_key", {"login_pk": SigningKey(rng.bytes(32)).public}, "bad_signature",
         "the new login key replaced in transit: it is bound"),
        ("tampered_bundle", {"bundle": flip(base["bundle"], 60)}, "bad_signature", "one bit of the new sealed bundle flipped"),
        ("short_bundle", {"bundle": base["bundle"][:-1]}, "parse_failure", "the new sealed bundle is one byte short"),
        ("other_login_key", {"signature": sign_password_change(SigningKey(rng.bytes(32)), *(base[f] for f in FIELDS))},
         "bad_signature", "signed with a login key other than the account's: a wrong old password"),
    ]
    for condition, change, expect, comment in bad:
        i = {**base, "signature": sig, **change}
        expect_error(expect, lambda i=i: verify_password_change(
            SigningKey(i["old_login_seed"]).public, *(i[f] for f in FIELDS), i["signature"]))
        yield case("password_change", "verify", condition, comment, expect, i)


CASES = [password_change_cases]
