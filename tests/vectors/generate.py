"""Write the known-answer vectors under tests/vectors/ from fixed seeds.

    python -m tests.vectors.generate          # (re)write every vector file
    python -m tests.vectors.generate --check  # exit 1 if any file on disk differs, is missing or extra

Each case draws its randomness from a seed derived from its own name, so adding a case never changes
another. The generator states each failure's expected error and then checks that crypto/ raises
exactly that, so a vector can never silently encode a bug in the Python code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from crypto import _primitives as prim
from crypto._codec import Writer
from crypto._random import inject
from crypto.account import KdfParams, derive_account, sign_challenge, verify_challenge
from crypto.bundle import SLOT_PASSWORD, SLOT_RECOVERY, IdentityKeys, open_bundle, seal_bundle
from crypto.device import (
    DeviceCert,
    make_device_cert,
    sign_delivery_auth,
    sign_device_auth,
    verify_delivery_auth,
    verify_device_auth,
    verify_device_cert,
)
from crypto.grant import GrantInfo, _ad, _body, make_grant, open_grant
from crypto.keys import BoxKeyPair, SecretKey, SigningKey
from crypto.recovery import format_recovery_key, parse_recovery_key, recovery_auth_key, recovery_kek
from crypto.wrap import unwrap_key, wrap_key
from tests.vectors._common import FLOOR_MEM, FLOOR_OPS, Case, Rng, case, expect_error, flip

ROOT = Path(__file__).parent
CASES: list[Callable[[], Iterator[Case]]] = []


def registered(fn: Callable[[], Iterator[Case]]) -> Callable[[], Iterator[Case]]:
    CASES.append(fn)
    return fn


# --- account -------------------------------------------------------------------------------------


@registered
def account_cases() -> Iterator[Case]:
    rng = Rng("account")
    params = KdfParams(FLOOR_OPS, FLOOR_MEM, rng.bytes(16))
    for condition, password, comment in [
        ("success", "correct horse battery staple", "the floor parameters (3 passes, 64 MiB)"),
        ("nfd_password_success", "Cafe\u0301 au lait \u00e9t\u00e9",
         "a password typed in decomposed form derives the same keys as its NFC form"),
    ]:
        keys = derive_account(password, params)
        nfc = derive_account("Caf\u00e9 au lait \u00e9t\u00e9", params) if "nfd" in condition else keys
        assert keys.login.public == nfc.login.public
        yield case("account", "derive", condition, comment, "success",
                   {"password": password, "params": params.encode()},
                   {"login_pk": keys.login.public, "kek": bytes(keys.kek)})
    salt = params.salt
    bad = [
        ("ops_below_floor", Writer().u8(1).u8(2).u32(2).u32(FLOOR_MEM).raw(salt), "unsupported_version", "2 passes is below the floor of 3"),
        ("mem_below_floor", Writer().u8(1).u8(2).u32(3).u32(FLOOR_MEM // 2).raw(salt), "unsupported_version", "32 MiB is below the floor of 64 MiB"),
        ("mem_above_ceiling", Writer().u8(1).u8(2).u32(3).u32(2**31).raw(salt), "unsupported_version", "2 GiB is above the 1 GiB ceiling a hostile server could use to exhaust a phone"),
        ("ops_above_ceiling", Writer().u8(1).u8(2).u32(17).u32(FLOOR_MEM).raw(salt), "unsupported_version", "17 passes is above the ceiling of 16"),
        ("unknown_version", Writer().u8(2).u8(2).u32(3).u32(FLOOR_MEM).raw(salt), "unsupported_version", "parameter record version 2 is unknown"),
        ("unknown_alg", Writer().u8(1).u8(1).u32(3).u32(FLOOR_MEM).raw(salt), "unsupported_version", "algorithm 1 (Argon2i) is not accepted"),
        ("truncated", Writer().u8(1).u8(2).u32(3).u32(FLOOR_MEM).raw(salt[:15]), "parse_failure", "the salt is one byte short"),
        ("trailing", Writer().u8(1).u8(2).u32(3).u32(FLOOR_MEM).raw(salt + b"\0"), "parse_failure", "one trailing byte"),
    ]
    for condition, w, expect, comment in bad:
        raw = w.getvalue()
        expect_error(expect, lambda raw=raw: KdfParams.decode(raw))
        yield case("account", "params", condition, comment, expect, {"password": "correct horse battery staple", "params": raw})


@registered
def challenge_cases() -> Iterator[Case]:
    rng = Rng("challenge")
    seed, school, user, challenge = rng.bytes(32), rng.bytes(16), rng.bytes(16), rng.bytes(32)
    login = SigningKey(seed)
    sig = sign_challenge(login, school, user, challenge)
    base = {"login_seed": seed, "school_id": school, "user_id": user, "challenge": challenge}
    yield case("challenge", "sign", "success", "the sign-in proof over a fresh server challenge", "success", base, {"signature": sig})
    other_user = rng.bytes(16)
    for condition, inputs, comment in [
        ("flipped_signature", {**base, "signature": flip(sig, 10)}, "one bit of the signature flipped"),
        ("other_user", {**base, "user_id": other_user, "signature": sig}, "a proof made by one user replayed as another"),
        ("other_challenge", {**base, "challenge": flip(challenge, 0), "signature": sig}, "a proof replayed against a different challenge"),
    ]:
        expect_error("bad_signature", lambda i=inputs: verify_challenge(login.public, i["school_id"], i["user_id"], i["challenge"], i["signature"]))
        yield case("challenge", "verify", condition, comment, "bad_signature", inputs)


# --- bundle --------------------------------------------------------------------------------------


@registered
def bundle_cases() -> Iterator[Case]:
    rng = Rng("bundle")
    kek, school, user = SecretKey(rng.bytes(32)), rng.bytes(16), rng.bytes(16)
    identity = IdentityKeys(BoxKeyPair(rng.bytes(32)), SigningKey(rng.bytes(32)))
    keys = {"identity_x25519_sk": bytes(identity.box), "identity_ed25519_seed": bytes(identity.signing)}
    sealed_by_slot = {}
    for slot, name in [(SLOT_PASSWORD, "password"), (SLOT_RECOVERY, "recovery")]:
        nonce = rng.bytes(24)
        with inject([nonce]):
            sealed = seal_bundle(identity, kek, slot, school, user)
        sealed_by_slot[slot] = sealed
        yield case("bundle", "seal", f"{name}_slot_success", f"identity keys sealed in the {name} slot", "success",
                   {"kek": bytes(kek), "slot": slot, "school_id": school, "user_id": user, "sealed": sealed, "random": [nonce], **keys}, keys)
    sealed = sealed_by_slot[SLOT_PASSWORD]
    base = {"kek": bytes(kek), "slot": SLOT_PASSWORD, "school_id": school, "user_id": user}
    relabelled = bytes([1, 2]) + sealed[2:]
    failures = [
        ("tampered_box", {"sealed": flip(sealed, 60)}, "auth_failure", "one bit of the ciphertext flipped"),
        ("tampered_tag", {"sealed": flip(sealed, len(sealed) - 1, 7)}, "auth_failure", "one bit of the tag flipped"),
        ("tampered_nonce", {"sealed": flip(sealed, 2)}, "auth_failure", "one bit of the nonce flipped"),
        ("wrong_kek", {"kek": rng.bytes(32), "sealed": sealed}, "auth_failure", "a wrong password gives a wrong key-encryption key"),
        ("other_user", {"user_id": rng.bytes(16), "sealed": sealed}, "auth_failure", "a bundle served to another user does not open: the user id is bound"),
        ("other_school", {"school_id": rng.bytes(16), "sealed": sealed}, "auth_failure", "the school id is bound"),
        ("slot_relabelled", {"slot": SLOT_RECOVERY, "sealed": relabelled}, "auth_failure", "the slot byte changed to recovery: the slot is bound as associated data"),
        ("unexpected_slot", {"slot": SLOT_RECOVERY, "sealed": sealed}, "parse_failure", "a password-slot bundle offered where the recovery slot was asked for"),
        ("unknown_version", {"sealed": bytes([2]) + sealed[1:]}, "unsupported_version", "bundle version 2 is unknown"),
        ("truncated", {"sealed": sealed[:-1]}, "parse_failure", "one byte short"),
        ("trailing", {"sealed": sealed + b"\0"}, "parse_failure", "one trailing byte"),
        ("empty", {"sealed": b""}, "parse_failure", "no bytes at all"),
    ]
    for condition, change, expect, comment in failures:
        inputs = {**base, **change}
        expect_error(expect, lambda i=inputs: open_bundle(i["sealed"], SecretKey(i["kek"]), i["slot"], i["school_id"], i["user_id"]))
        yield case("bundle", "open", condition, comment, expect, inputs)


# --- recovery ------------------------------------------------------------------------------------


@registered
def recovery_cases() -> Iterator[Case]:
    rng = Rng("recovery")
    secret = rng.bytes(20)
    while True:  # a key whose printed form holds a 0 and a 1, to exercise O and I/L
        text = format_recovery_key(secret)
        if "0" in text and "1" in text:
            break
        secret = rng.bytes(20)
    out = {"canonical": text, "kek": bytes(recovery_kek(secret)), "auth_pk": recovery_auth_key(secret).public}
    typed = [
        ("canonical_success", text, "the printed form typed back exactly"),
        ("lowercase_spaces_success", text.lower().replace("-", " "), "lower case, groups separated by spaces"),
        ("confusables_success", text.replace("0", "o").replace("1", "l", 1).replace("1", "I"), "O read as 0, I and L read as 1"),
        ("no_separators_success", text.replace("-", ""), "typed without separators"),
    ]
    for condition, t, comment in typed:
        assert parse_recovery_key(t) == secret
        yield case("recovery", "parse", condition, comment, "success", {"text": t, "secret": secret}, out)
    chars = list(text.replace("-", ""))
    i = next(k for k in range(len(chars) - 1) if chars[k] != chars[k + 1])
    swapped = chars.copy()
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    typo = chars.copy()
    typo[5] = "Z" if typo[5] != "Z" else "Y"
    last = "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(chars[-1]) | 1
    pad = chars[:-1] + ["0123456789ABCDEFGHJKMNPQRSTVWXYZ"[last]]
    bad = [
        ("one_char_wrong", "".join(typo), "one character mistyped: the 16-bit check catches it"),
        ("transposed", "".join(swapped), "two neighbouring characters swapped"),
        ("one_char_short", "".join(chars[:-1]), "35 characters"),
        ("one_char_long", "".join(chars) + "0", "37 characters"),
        ("letter_u", "".join(["U"] + chars[1:]), "U is not in the alphabet"),
        ("non_ascii_letter", "".join(["\u017f"] + chars[1:]), "a long s (which Unicode upper-cases to S) is not accepted: ASCII only"),
        ("pad_bit_set", "".join(pad), "the unused low bit of the last character is set") if pad != chars else None,
    ]
    for item in bad:
        if item is None:
            continue
        condition, t, comment = item
        expect_error("parse_failure", lambda t=t: parse_recovery_key(t))
        yield case("recovery", "parse", condition, comment, "parse_failure", {"text": t})


# --- device certificates -------------------------------------------------------------------------


@registered
def device_cert_cases() -> Iterator[Case]:
    rng = Rng("device_cert")
    identity = SigningKey(rng.bytes(32))
    fields = {"school_id": rng.bytes(16), "user_id": rng.bytes(16), "device_id": rng.bytes(16),
              "device_pk": SigningKey(rng.bytes(32)).public, "created_ms": 1_790_000_000_123}
    cert = make_device_cert(identity, DeviceCert(**fields))
    yield case("device_cert", "verify", "success", "a device key certified by its user's identity key", "success",
               {"identity_ed25519_seed": bytes(identity), "identity_ed25519_pk": identity.public, "cert": cert, **fields}, fields)
    other = SigningKey(rng.bytes(32))
    bad = [
        ("tampered_device_pk", flip(cert, 49 + 3), identity.public, "bad_signature", "the certified device key changed"),
        ("tampered_user", flip(cert, 17), identity.public, "bad_signature", "the user id changed"),
        ("tampered_created", flip(cert, 88), identity.public, "bad_signature", "the creation time changed"),
        ("tampered_signature", flip(cert, 100), identity.public, "bad_signature", "one bit of the signature flipped"),
        ("other_identity", cert, other.public, "bad_signature", "checked against another user's identity key"),
        ("created_beyond_2_53", _resigned_cert(identity, cert, 2**60), identity.public, "parse_failure",
         "a validly signed creation time above 2^53 - 1: every u64 must fit a JavaScript number exactly"),
        ("unknown_version", bytes([2]) + cert[1:], identity.public, "unsupported_version", "certificate version 2"),
        ("truncated", cert[:-1], identity.public, "parse_failure", "one byte short"),
        ("trailing", cert + b"\0", identity.public, "parse_failure", "one trailing byte"),
    ]
    for condition, c, pk, expect, comment in bad:
        expect_error(expect, lambda c=c, pk=pk: verify_device_cert(c, pk))
        yield case("device_cert", "verify", condition, comment, expect, {"identity_ed25519_pk": pk, "cert": c})


@registered
def device_auth_cases() -> Iterator[Case]:
    rng = Rng("device_auth")
    seed, school, device_id, nonce = rng.bytes(32), rng.bytes(16), rng.bytes(16), rng.bytes(32)
    device = SigningKey(seed)
    sig = sign_device_auth(device, school, device_id, nonce)
    base = {"device_seed": seed, "school_id": school, "device_id": device_id, "nonce": nonce}
    yield case("device_auth", "sign", "success", "a device answers the sync server's fresh nonce", "success", base, {"signature": sig})
    for condition, inputs, comment in [
        ("flipped_signature", {**base, "signature": flip(sig, 3)}, "one bit of the signature flipped"),
        ("other_nonce", {**base, "nonce": flip(nonce, 31), "signature": sig}, "a proof replayed against another nonce"),
        ("other_device", {**base, "device_id": rng.bytes(16), "signature": sig}, "a proof presented for another device id"),
        ("other_school", {**base, "school_id": rng.bytes(16), "signature": sig}, "a proof presented to another school"),
    ]:
        expect_error("bad_signature", lambda i=inputs: verify_device_auth(device.public, i["school_id"], i["device_id"], i["nonce"], i["signature"]))
        yield case("device_auth", "verify", condition, comment, "bad_signature", inputs)


@registered
def delivery_auth_cases() -> Iterator[Case]:
    rng = Rng("delivery_auth")
    seed, school, device_id, nonce = rng.bytes(32), rng.bytes(16), rng.bytes(16), rng.bytes(32)
    delivery = SigningKey(seed)
    sig = sign_delivery_auth(delivery, school, device_id, nonce)
    base = {"delivery_seed": seed, "school_id": school, "device_id": device_id, "nonce": nonce}
    yield case("delivery_auth", "sign", "success", "a shared tablet's delivery key answers the sync server's fresh nonce",
               "success", base, {"signature": sig})
    as_device = sign_device_auth(delivery, school, device_id, nonce)
    for condition, inputs, comment in [
        ("flipped_signature", {**base, "signature": flip(sig, 3)}, "one bit of the signature flipped"),
        ("other_nonce", {**base, "nonce": flip(nonce, 31), "signature": sig}, "a proof replayed against another nonce"),
        ("other_device", {**base, "device_id": rng.bytes(16), "signature": sig}, "a proof presented for another device id"),
        ("device_proof", {**base, "signature": as_device},
         "a device proof (PROTOCOL 3.1) by the same key is not a delivery proof: the labels differ"),
    ]:
        expect_error("bad_signature", lambda i=inputs: verify_delivery_auth(delivery.public, i["school_id"], i["device_id"], i["nonce"], i["signature"]))
        yield case("delivery_auth", "verify", condition, comment, "bad_signature", inputs)


def _resigned_cert(identity: SigningKey, cert: bytes, created_ms: int) -> bytes:
    body = cert[:81] + created_ms.to_bytes(8, "big")
    return body + identity.sign(prim.ctx("cairn/v1/device-cert") + body)


# --- wraps ---------------------------------------------------------------------------------------


@registered
def wrap_cases() -> Iterator[Case]:
    rng = Rng("wrap")
    recipient = BoxKeyPair(rng.bytes(32))
    payload, ad, eph = rng.bytes(32), b"cairn vector associated data", rng.bytes(32)
    with inject([eph]):
        wrap = wrap_key(recipient.public, payload, ad)
    base = {"recipient_sk": bytes(recipient), "recipient_pk": recipient.public, "ad": ad}
    yield case("wrap", "unwrap", "success", "a 32-byte key sealed to an X25519 key, bound to associated data", "success",
               {**base, "payload": payload, "random": [eph], "wrap": wrap}, {"payload": payload})
    stranger = BoxKeyPair(rng.bytes(32))
    bad = [
        ("wrong_recipient", {"recipient_sk": bytes(stranger), "recipient_pk": stranger.public, "wrap": wrap}, "auth_failure", "opened with another X25519 key"),
        ("other_ad", {"ad": ad + b"!", "wrap": wrap}, "auth_failure", "the associated data differs: the context is bound"),
        ("tampered_box", {"wrap": flip(wrap, 40)}, "auth_failure", "one bit of the sealed key flipped"),
        ("tampered_tag", {"wrap": flip(wrap, 79, 7)}, "auth_failure", "one bit of the tag flipped"),
        ("tampered_ephemeral", {"wrap": flip(wrap, 0)}, "auth_failure", "one bit of the ephemeral public key flipped"),
        ("low_order_ephemeral", {"wrap": bytes(32) + wrap[32:]}, "auth_failure", "an all-zero (low-order) ephemeral key is refused"),
        ("short", {"wrap": wrap[:-1]}, "parse_failure", "79 bytes: length checked before use"),
        ("long", {"wrap": wrap + b"\0"}, "parse_failure", "81 bytes: length checked before use"),
    ]
    for condition, change, expect, comment in bad:
        i = {**base, **change}
        expect_error(expect, lambda i=i: unwrap_key(i["wrap"], BoxKeyPair(i["recipient_sk"]), i["ad"]))
        yield case("wrap", "unwrap", condition, comment, expect, i)


# --- grants --------------------------------------------------------------------------------------


@registered
def grant_cases() -> Iterator[Case]:
    rng = Rng("grant")
    granter, member, reader = SigningKey(rng.bytes(32)), BoxKeyPair(rng.bytes(32)), BoxKeyPair(rng.bytes(32))
    info = GrantInfo(rng.bytes(16), rng.bytes(16), 3, rng.bytes(16), rng.bytes(16), 1_790_000_000_456)
    eph = rng.bytes(32)
    with inject([eph]):
        grant = make_grant(info, reader, member.public, granter)
    base = {"member_x25519_sk": bytes(member), "school_id": info.school_id, "member_id": info.member_id,
            "granter_device_pk": granter.public, "reader_pk": reader.public}
    yield case("grant", "open", "success", "a reader key (version 3) sealed to a member by a keyholder device", "success",
               {**base, "grant": grant, "granter_device_seed": bytes(granter), "reader_key_id": info.reader_key_id,
                "reader_version": info.reader_version, "granter_device": info.granter_device, "created_ms": info.created_ms,
                "reader_sk": bytes(reader), "member_x25519_pk": member.public, "random": [eph]},
               {"reader_sk": bytes(reader)})
    other_member = BoxKeyPair(rng.bytes(32))
    invented = BoxKeyPair(rng.bytes(32))
    with inject([rng.bytes(32)]):
        wrong_key_grant = make_grant(info, invented, member.public, granter)
    bad = [
        ("wrong_member_key", {"member_x25519_sk": bytes(other_member), "grant": grant}, "auth_failure", "opened with another identity key"),
        ("other_member", {"member_id": rng.bytes(16), "grant": grant}, "no_key", "a grant addressed to someone else"),
        ("other_school", {"school_id": rng.bytes(16), "grant": grant}, "no_key", "a grant from another school"),
        ("tampered_signature", {"grant": flip(grant, len(grant) - 5)}, "bad_signature", "one bit of the signature flipped"),
        ("tampered_reader_version", {"grant": flip(grant, 36)}, "bad_signature", "the reader key version changed"),
        ("tampered_wrap", {"grant": flip(grant, 100)}, "bad_signature", "one bit of the wrap flipped: the signature covers it"),
        ("other_granter", {"granter_device_pk": SigningKey(rng.bytes(32)).public, "grant": grant}, "bad_signature", "checked against another device's key"),
        ("unlisted_key", {"grant": wrong_key_grant}, "auth_failure", "the key inside is not the reader key the directory lists"),
        ("reader_version_zero", {"grant": _grant_version_zero(info, reader, member, granter, rng)}, "parse_failure",
         "a validly signed grant for reader key version 0: versions start at 1"),
        ("unknown_version", {"grant": bytes([2]) + grant[1:]}, "unsupported_version", "grant version 2"),
        ("truncated", {"grant": grant[:-1]}, "parse_failure", "one byte short"),
        ("trailing", {"grant": grant + b"\0"}, "parse_failure", "one trailing byte"),
    ]
    for condition, change, expect, comment in bad:
        i = {**base, **change}
        expect_error(expect, lambda i=i: open_grant(i["grant"], BoxKeyPair(i["member_x25519_sk"]), i["school_id"],
                                                    i["member_id"], i["granter_device_pk"], i["reader_pk"]))
        yield case("grant", "open", condition, comment, expect, i)




def _discovered() -> list[Callable[[], Iterator[Case]]]:
    """Case modules beside this file: every ``_<name>_cases.py`` lists its case functions in CASES."""
    found = []
    for path in sorted(ROOT.glob("_*_cases.py")):
        module = importlib.import_module(f"tests.vectors.{path.stem}")
        found += module.CASES
    return found


def _grant_version_zero(info: GrantInfo, reader: BoxKeyPair, member: BoxKeyPair, granter: SigningKey, rng: Rng) -> bytes:
    body = _body(GrantInfo(info.school_id, info.reader_key_id, 0, info.member_id, info.granter_device, info.created_ms))
    with inject([rng.bytes(32)]):
        signed = body + wrap_key(member.public, bytes(reader), _ad(body))
    return signed + granter.sign(prim.ctx("cairn/v1/grant/sig") + signed)


# --- writing -------------------------------------------------------------------------------------


def render() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for make in CASES + _discovered():
        for c in make():
            path = ROOT / c["construct"] / f"{c['area']}_{c['condition']}.json"
            if path in files:
                raise AssertionError(f"two cases write {path}")
            files[path] = json.dumps(c, indent=1, ensure_ascii=False) + "\n"
    return files


def on_disk() -> set[Path]:
    return {p for p in ROOT.glob("*/*.json")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the files on disk; write nothing")
    args = parser.parse_args(argv)
    files = render()
    if args.check:
        problems = [f"differs: {p.relative_to(ROOT)}" for p, t in files.items() if p.exists() and p.read_text() != t]
        problems += [f"missing: {p.relative_to(ROOT)}" for p in files if not p.exists()]
        problems += [f"extra: {p.relative_to(ROOT)}" for p in on_disk() - set(files)]
        for line in problems:
            print(line, file=sys.stderr)
        print(f"vectors: {len(files)} cases, {len(problems)} differences")
        return 1 if problems else 0
    for stale in on_disk() - set(files):
        stale.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"vectors: wrote {len(files)} cases under {ROOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
