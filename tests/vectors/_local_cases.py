"""Local sealing vectors: the device data key's wraps (PROTOCOL 2.8) and records sealed under it (12),
and version 1 records, which a device opens once with the old derivation to re-seal them."""

from __future__ import annotations

from collections.abc import Iterator

from crypto import _primitives as p
from crypto._random import inject
from crypto.keys import SecretKey
from crypto.local import (
    LEGACY_VERSION,
    SLOT_IDENTITY,
    SLOT_PASSWORD,
    VERSION,
    _ad,
    identity_wrap_key,
    local_key,
    open_legacy_local,
    open_local,
    password_wrap_key,
    seal_local,
    unwrap_data_key,
    wrap_data_key,
)
from tests.vectors._common import Case, Rng, case, expect_error, flip

PLAINTEXT = b'{"draft": "a fictional half-written concern"}'


def local_cases() -> Iterator[Case]:
    rng = Rng("local")
    data_key = SecretKey(rng.bytes(32))
    school, user, record, nonce = rng.bytes(16), rng.bytes(16), rng.bytes(16), rng.bytes(24)
    with inject([nonce]):
        sealed = seal_local(data_key, school, user, "draft", record, PLAINTEXT)
    base = {"data_key": bytes(data_key), "school_id": school, "user_id": user, "kind": "draft", "record_id": record}
    yield case(
        "local", "seal", "success", "a draft sealed at rest (version 2) under the device's data key", "success",
        {**base, "plaintext": PLAINTEXT, "random": [nonce], "sealed": sealed}, {"plaintext": PLAINTEXT},
    )
    bad = [
        ("other_kind", {"kind": "device-key"}, "auth_failure", "a draft offered as the device key"),
        ("other_record", {"record_id": rng.bytes(16)}, "auth_failure", "records cannot be swapped"),
        ("other_user", {"user_id": rng.bytes(16)}, "auth_failure", "another user on a shared tablet"),
        ("other_data_key", {"data_key": rng.bytes(32)}, "auth_failure", "another device's, or another account's, data key"),
        ("tampered", {"sealed": flip(sealed, 30)}, "auth_failure", "one bit of the box flipped"),
        ("unknown_version", {"sealed": bytes([3]) + sealed[1:]}, "unsupported_version", "local record version 3"),
        ("version_1_under_data_key", {"sealed": bytes([1]) + sealed[1:]}, "unsupported_version",
         "a version 1 record is never opened with a data key: only once, with the old derivation, to re-seal it"),
        ("truncated", {"sealed": sealed[:30]}, "parse_failure", "shorter than a nonce and a tag"),
    ]
    for condition, change, expect, comment in bad:
        i = {**base, "sealed": sealed, **change}
        expect_error(expect, lambda i=i: open_local(
            SecretKey(i["data_key"]), i["school_id"], i["user_id"], i["kind"], i["record_id"], i["sealed"]))
        yield case("local", "open", condition, comment, expect, i)

    # version 1: sealed under local_key(kek); opened once to be re-sealed (PROTOCOL 12)
    kek = SecretKey(rng.bytes(32))
    legacy_key = local_key(kek)
    nonce = rng.bytes(24)
    ad = _ad(LEGACY_VERSION, school, user, "draft", record)
    legacy = bytes([LEGACY_VERSION]) + nonce + p.aead_encrypt(bytes(legacy_key), nonce, ad, PLAINTEXT)
    assert VERSION == 2
    legacy_base = {"kek": bytes(kek), "school_id": school, "user_id": user, "kind": "draft", "record_id": record}
    yield case(
        "local", "legacy", "success",
        "a version 1 draft, sealed under the key derived from the password's KEK, opened once to be re-sealed",
        "success", {**legacy_base, "sealed": legacy}, {"local_key": bytes(legacy_key), "plaintext": PLAINTEXT},
    )
    for condition, change, expect, comment in [
        ("wrong_kek", {"kek": rng.bytes(32)}, "auth_failure", "a wrong password"),
        ("version_2", {"sealed": sealed}, "unsupported_version", "a version 2 record is not opened the old way"),
    ]:
        i = {**legacy_base, "sealed": legacy, **change}
        expect_error(expect, lambda i=i: open_legacy_local(
            local_key(SecretKey(i["kek"])), i["school_id"], i["user_id"], i["kind"], i["record_id"], i["sealed"]))
        yield case("local", "legacy", condition, comment, expect, i)


def local_wrap_cases() -> Iterator[Case]:
    rng = Rng("local_wrap")
    data_key = SecretKey(rng.bytes(32))
    kek = SecretKey(rng.bytes(32))
    x25519_sk = rng.bytes(32)
    school, user, device = rng.bytes(16), rng.bytes(16), rng.bytes(16)
    ids = {"school_id": school, "user_id": user, "device_id": device}
    made = {}
    for slot, name, secret, key, comment in [
        (SLOT_PASSWORD, "password", {"kek": bytes(kek)}, password_wrap_key(kek),
         "the data key wrapped under the key derived from the password's KEK (slot 1)"),
        (SLOT_IDENTITY, "identity", {"identity_x25519_sk": x25519_sk}, identity_wrap_key(x25519_sk),
         "the data key wrapped under the key derived from the X25519 identity key (slot 2): a recovery, or a "
         "sign-in after the password changed elsewhere, opens it from the bundle"),
    ]:
        nonce = rng.bytes(24)
        with inject([nonce]):
            wrap = wrap_data_key(data_key, key, slot, school, user, device)
        made[slot] = (secret, wrap)
        yield case("local_wrap", "wrap", f"{name}_success", comment, "success",
                   {**secret, **ids, "slot": slot, "data_key": bytes(data_key), "random": [nonce], "wrap": wrap},
                   {"wrap_key": bytes(key), "data_key": bytes(data_key)})
    secret, wrap = made[SLOT_PASSWORD]
    bad = [
        ("other_device", {"device_id": rng.bytes(16)}, "auth_failure", "another device's wrap: the device is bound"),
        ("other_user", {"user_id": rng.bytes(16)}, "auth_failure", "another user's wrap on a shared tablet"),
        ("other_school", {"school_id": rng.bytes(16)}, "auth_failure", "the school is bound"),
        ("wrong_kek", {"kek": rng.bytes(32)}, "auth_failure", "a wrong (or the old) password"),
        ("tampered", {"wrap": flip(wrap, 40)}, "auth_failure", "one bit of the box flipped"),
        ("other_slot", {"wrap": made[SLOT_IDENTITY][1]}, "parse_failure",
         "the identity-slot wrap offered where the password slot is expected"),
        ("relabelled_slot", {"wrap": wrap[:1] + bytes([SLOT_IDENTITY]) + wrap[2:], "slot": SLOT_IDENTITY,
                             "identity_x25519_sk": x25519_sk}, "auth_failure",
         "the slot byte rewritten: it is bound as associated data"),
        ("unknown_version", {"wrap": bytes([2]) + wrap[1:]}, "unsupported_version", "wrap version 2 is unknown"),
        ("truncated", {"wrap": wrap[:-1]}, "parse_failure", "one byte short of 74"),
        ("trailing", {"wrap": wrap + b"\0"}, "parse_failure", "one trailing byte"),
    ]
    for condition, change, expect, comment in bad:
        i = {**secret, **ids, "slot": SLOT_PASSWORD, "wrap": wrap, **change}
        expect_error(expect, lambda i=i: unwrap_data_key(
            i["wrap"], password_wrap_key(SecretKey(i["kek"])) if i["slot"] == SLOT_PASSWORD
            else identity_wrap_key(i["identity_x25519_sk"]), i["slot"], i["school_id"], i["user_id"], i["device_id"]))
        yield case("local_wrap", "unwrap", condition, comment, expect, i)


CASES = [local_cases, local_wrap_cases]
