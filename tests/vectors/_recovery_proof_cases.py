"""Recovery-proof vectors: a forgotten password replaced by proving the recovery key over new material."""

from __future__ import annotations

from collections.abc import Iterator

from crypto.account import KdfParams
from crypto.keys import SigningKey
from crypto.recovery import recovery_auth_key, sign_recovery_proof, verify_recovery_proof
from tests.vectors._common import FLOOR_MEM, FLOOR_OPS, Case, Rng, case, expect_error, flip


def recovery_proof_cases() -> Iterator[Case]:
    rng = Rng("recovery_proof")
    secret = rng.bytes(20)
    auth = recovery_auth_key(secret)
    base = {
        "recovery_secret": secret,
        "school_id": rng.bytes(16),
        "user_id": rng.bytes(16),
        "challenge": rng.bytes(32),
        "kdf_params": KdfParams(FLOOR_OPS, FLOOR_MEM, rng.bytes(16)).encode(),
        "login_pk": SigningKey(rng.bytes(32)).public,
        "bundle": bytes([1, 1]) + rng.bytes(105),
    }
    fields = ("school_id", "user_id", "challenge", "kdf_params", "login_pk", "bundle")
    sig = sign_recovery_proof(auth, *(base[f] for f in fields))
    yield case("recovery_proof", "sign", "success",
               "the recovery key's proof over a fresh challenge and the new password material", "success",
               base, {"auth_pk": auth.public, "signature": sig})
    bad = [
        ("flipped_signature", {"signature": flip(sig, 5)}, "bad_signature", "one bit of the signature flipped"),
        ("other_challenge", {"challenge": flip(base["challenge"], 0)}, "bad_signature", "a proof replayed against another challenge"),
        ("other_user", {"user_id": flip(base["user_id"], 15)}, "bad_signature", "a proof presented for another user"),
        ("swapped_login_key", {"login_pk": SigningKey(rng.bytes(32)).public}, "bad_signature",
         "the new login key replaced in transit: it is bound"),
        ("tampered_bundle", {"bundle": flip(base["bundle"], 60)}, "bad_signature", "one bit of the new sealed bundle flipped"),
        ("other_params", {"kdf_params": KdfParams(FLOOR_OPS + 1, FLOOR_MEM, base["kdf_params"][10:]).encode()},
         "bad_signature", "the new KDF parameters changed: they are bound"),
        ("short_bundle", {"bundle": base["bundle"][:-1]}, "parse_failure", "the new sealed bundle is one byte short"),
        ("other_key", {"recovery_secret": rng.bytes(20)}, "bad_signature", "checked against another recovery key's auth key"),
    ]
    for condition, change, expect, comment in bad:
        i = {**base, "signature": sig, **change}
        expect_error(expect, lambda i=i: verify_recovery_proof(
            recovery_auth_key(i["recovery_secret"]).public, *(i[f] for f in fields), i["signature"]))
        yield case("recovery_proof", "verify", condition, comment, expect, i)


CASES = [recovery_proof_cases]
