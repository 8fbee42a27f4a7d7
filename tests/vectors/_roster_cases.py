"""Roster vectors: pupil ids from UPNs, and sealed roster entries opened or refused."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from crypto import _primitives as prim
from crypto._random import inject
from crypto.keys import BoxKeyPair, SigningKey
from crypto.roster import RosterEntry, open_roster_entry, pupil_id_for, seal_roster_entry
from tests.vectors._common import Case, Rng, case, expect_error, flip

CONTENT = b'{"name": "Fictional Pupil-Name", "class": "Year 3 Oak"}'


def roster_cases() -> Iterator[Case]:
    rng = Rng("roster")
    roster = BoxKeyPair(rng.bytes(32))
    for condition, upn, same_as in [
        ("upn_success", "A123456789012", None),
        ("upn_lower_case_success", " a123456789012 ", "A123456789012"),
    ]:
        pid = pupil_id_for(roster, upn)
        if same_as:
            assert pid == pupil_id_for(roster, same_as)
        yield case(
            "roster",
            "pupil_id",
            condition,
            "the pseudonymous pupil id: a keyed hash of the trimmed, upper-case UPN",
            "success",
            {"roster_sk": bytes(roster), "upn": upn},
            {"pupil_id": pid},
        )
    device, device_id, school = SigningKey(rng.bytes(32)), rng.bytes(16), rng.bytes(16)
    key_id, pupil = rng.bytes(16), pupil_id_for(roster, "A123456789012")
    nonce = rng.bytes(24)
    entry = RosterEntry(school, pupil, key_id, 2, device_id, CONTENT)
    with inject([nonce]):
        sealed = seal_roster_entry(roster, entry, device)
    keys = [{"id": key_id, "version": 2, "sk": bytes(roster)}]
    base = {"keys": keys, "reader_school_id": school, "author_device_pk": device.public}
    yield case(
        "roster",
        "entry",
        "seal_success",
        "a pupil's name and class sealed under roster key version 2",
        "success",
        {
            **base,
            "entry": sealed,
            "roster_sk": bytes(roster),
            "key_id": key_id,
            "key_version": 2,
            "school_id": school,
            "pupil_id": pupil,
            "author_device": device_id,
            "content": CONTENT,
            "device_seed": bytes(device),
            "random": [nonce],
        },
        {"content": CONTENT, "pupil_id": pupil},
    )
    other = BoxKeyPair(rng.bytes(32))
    header_len = 1 + 16 * 3 + 4 + 16 + 24
    ct = sealed[header_len + 4 : -64]

    def resign(body: bytes) -> bytes:
        return body + device.sign(prim.ctx("cairn/v1/roster/sig") + body)

    bad = [
        ("tampered_name", flip(sealed, header_len + 10), "bad_signature", "one bit of the sealed content flipped"),
        ("tampered_pupil", flip(sealed, 20), "bad_signature", "the entry moved to another pupil"),
        ("other_author", sealed, "bad_signature", "checked against another device's key"),
        ("other_school", sealed, "no_key", "an entry of another school"),
        ("old_key_version", sealed, "no_key", "the reader holds version 1 of the roster key only"),
        ("wrong_key", sealed, "auth_failure", "the listed version opened with a different key"),
        (
            "resigned_tampered_ciphertext",
            resign(sealed[: header_len + 4] + flip(ct, 0)),
            "auth_failure",
            "a content bit flipped and re-signed by the device: the tag fails",
        ),
        (
            "ct_len_not_a_bucket",
            resign(sealed[:header_len] + struct.pack(">I", len(ct) - 1) + ct[:-1]),
            "parse_failure",
            "a ciphertext that is not 16 plus a multiple of 256 bytes",
        ),
        ("unknown_version", bytes([2]) + sealed[1:], "unsupported_version", "roster entry version 2"),
        ("truncated", sealed[:-1], "parse_failure", "one byte short"),
    ]
    for condition, data, expect, comment in bad:
        inputs = {**base, "entry": data}
        if condition == "other_author":
            inputs["author_device_pk"] = SigningKey(rng.bytes(32)).public
        if condition == "other_school":
            inputs["reader_school_id"] = rng.bytes(16)
        if condition == "old_key_version":
            inputs["keys"] = [{**keys[0], "version": 1}]
        if condition == "wrong_key":
            inputs["keys"] = [{**keys[0], "sk": bytes(other)}]
        ring = {(k["id"], k["version"]): BoxKeyPair(k["sk"]) for k in inputs["keys"]}
        expect_error(
            expect,
            lambda i=inputs, r=ring: open_roster_entry(i["entry"], r, i["reader_school_id"], i["author_device_pk"]),
        )
        yield case("roster", "entry", condition, comment, expect, inputs)


CASES = [roster_cases]
