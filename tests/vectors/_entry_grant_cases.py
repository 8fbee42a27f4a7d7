"""Entry key grant vectors (docs/PROTOCOL.md 5.1): an entry key version of a concern sealed to a named person,
opened or refused; and an envelope of that concern opened with the granted key, or refused when the grant
is for another concern or version, or holds a key that is not the concern's."""

from __future__ import annotations

from collections.abc import Iterator

from crypto import _primitives as prim
from crypto import envelope as env
from crypto._random import inject
from crypto.entry_grant import EntryGrantInfo, _ad, _body, make_entry_grant, open_entry_grant
from crypto.keys import BoxKeyPair, SecretKey, SigningKey
from crypto.wrap import wrap_key
from tests.vectors._common import Case, Rng, case, expect_error, flip

CONTENT = b'{"type": "created", "note": "fictional: an earlier event of the concern"}'


def _resigned(info: EntryGrantInfo, key: SecretKey, member: BoxKeyPair, granter: SigningKey, rng: Rng,
              ad_info: EntryGrantInfo | None = None) -> bytes:
    """A grant validly signed over ``info`` whose wrap is bound to ``ad_info`` (default: ``info`` itself)."""
    body = _body(info)
    with inject([rng.bytes(32)]):
        signed = body + wrap_key(member.public, bytes(key), _ad(_body(ad_info or info)))
    return signed + granter.sign(prim.ctx("cairn/v1/entry-grant/sig") + signed)


def _open(i: dict) -> tuple[EntryGrantInfo, SecretKey]:
    return open_entry_grant(i["grant"], BoxKeyPair(i["member_x25519_sk"]), i["school_id"], i["member_id"],
                            i["granter_device_pk"])


def _open_envelope(i: dict) -> bytes:
    info, key = _open(i)
    return env.open(i["envelope"], i["author_device_pk"], {}, {(info.concern_id, info.entry_version): key}).content


def entry_grant_cases() -> Iterator[Case]:
    rng = Rng("entry_grant")
    granter, member = SigningKey(rng.bytes(32)), BoxKeyPair(rng.bytes(32))
    school, concern, entry_key = rng.bytes(16), rng.bytes(16), SecretKey(rng.bytes(32))
    info = EntryGrantInfo(school, concern, 2, rng.bytes(16), rng.bytes(16), 1_790_000_000_789)
    eph = rng.bytes(32)
    with inject([eph]):
        grant = make_entry_grant(info, entry_key, member.public, granter)
    base = {"member_x25519_sk": bytes(member), "school_id": school, "member_id": info.member_id,
            "granter_device_pk": granter.public}
    yield case(
        "entry_grant", "open", "success",
        "entry key version 2 of a concern sealed to a person named on it by a keyholder's device", "success",
        {**base, "grant": grant, "granter_device_seed": bytes(granter), "concern_id": concern,
         "entry_version": info.entry_version, "granter_device": info.granter_device, "created_ms": info.created_ms,
         "entry_key": bytes(entry_key), "member_x25519_pk": member.public, "random": [eph]},
        {"concern_id": concern, "entry_version": info.entry_version, "entry_key": bytes(entry_key)},
    )
    other_concern = EntryGrantInfo(school, rng.bytes(16), 2, info.member_id, info.granter_device, info.created_ms)
    zero = EntryGrantInfo(school, concern, 0, info.member_id, info.granter_device, info.created_ms)
    bad = [
        ("wrong_member_key", {"member_x25519_sk": rng.bytes(32), "grant": grant}, "auth_failure",
         "opened with another identity key"),
        ("other_member", {"member_id": rng.bytes(16), "grant": grant}, "no_key", "a grant addressed to someone else"),
        ("other_school", {"school_id": rng.bytes(16), "grant": grant}, "no_key", "a grant from another school"),
        ("tampered_concern", {"grant": flip(grant, 20)}, "bad_signature",
         "the concern id changed, to hand the key out as another concern's: the signature covers it"),
        ("tampered_entry_version", {"grant": flip(grant, 36)}, "bad_signature", "the entry key version changed"),
        ("tampered_wrap", {"grant": flip(grant, 100)}, "bad_signature", "one bit of the wrap flipped"),
        ("tampered_signature", {"grant": flip(grant, len(grant) - 5)}, "bad_signature", "one bit of the signature flipped"),
        ("other_granter", {"granter_device_pk": SigningKey(rng.bytes(32)).public, "grant": grant}, "bad_signature",
         "checked against another device's key"),
        ("wrap_bound_to_other_concern", {"grant": _resigned(info, entry_key, member, granter, rng, other_concern)},
         "auth_failure", "validly signed, but the wrap's associated data names another concern: the wrap is bound"),
        ("entry_version_zero", {"grant": _resigned(zero, entry_key, member, granter, rng)}, "parse_failure",
         "a validly signed grant for entry key version 0: versions start at 1"),
        ("reader_grant_ctx", {"grant": _reader_sig(grant, granter)}, "bad_signature",
         "the same bytes signed under the reader grant's label (5): one construction is never taken for another"),
        ("unknown_version", {"grant": bytes([2]) + grant[1:]}, "unsupported_version", "entry key grant version 2"),
        ("truncated", {"grant": grant[:-1]}, "parse_failure", "one byte short"),
        ("trailing", {"grant": grant + b"\0"}, "parse_failure", "one trailing byte"),
    ]
    for condition, change, expect, comment in bad:
        i = {**base, **change}
        expect_error(expect, lambda i=i: _open(i))
        yield case("entry_grant", "open", condition, comment, expect, i)
    yield from _envelope_cases(rng, granter, member, info, entry_key, grant, base)


def _reader_sig(grant: bytes, granter: SigningKey) -> bytes:
    signed = grant[:-64]
    return signed + granter.sign(prim.ctx("cairn/v1/grant/sig") + signed)


def _envelope_cases(rng: Rng, granter: SigningKey, member: BoxKeyPair, info: EntryGrantInfo, entry_key: SecretKey,
                    grant: bytes, base: dict) -> Iterator[Case]:
    author = SigningKey(rng.bytes(32))
    safeguarding = BoxKeyPair(rng.bytes(32))
    recipient = env.Recipient(env.RECIPIENT_READER_KEY, rng.bytes(16), 1)

    def sealed(concern_id: bytes, version: int) -> bytes:
        with inject([rng.bytes(24), rng.bytes(32)]):
            return env.seal(
                kind=env.KIND_CONCERN_EVENT, school_id=info.school_id, envelope_id=rng.bytes(16),
                concern_id=concern_id, author_device=author, author_device_id=rng.bytes(16), counter=1,
                prev_hash=bytes(32), device_time_ms=1_790_000_000_000, entry_key=entry_key,
                entry_key_version=version, pupil_ids=[], recipients=[(recipient, safeguarding.public)], content=CONTENT,
            )

    earlier = sealed(info.concern_id, info.entry_version)
    with inject([rng.bytes(32)]):
        wrong_key = make_entry_grant(info, SecretKey(rng.bytes(32)), member.public, granter)
    envelope = {**base, "grant": grant, "author_device_pk": author.public}
    yield case(
        "entry_grant", "envelope", "success",
        "an earlier event of the concern, not sealed to the person, opened with the granted entry key", "success",
        {**envelope, "envelope": earlier}, {"content": CONTENT},
    )
    bad = [
        ("other_concern", sealed(rng.bytes(16), info.entry_version), "no_key",
         "an envelope of another concern under the same key: a grant opens only the concern it names"),
        ("other_version", sealed(info.concern_id, info.entry_version + 1), "no_key",
         "version 3 of the concern: a grant opens only the version it names"),
    ]
    for condition, data, expect, comment in bad:
        i = {**envelope, "envelope": data}
        expect_error(expect, lambda i=i: _open_envelope(i))
        yield case("entry_grant", "envelope", condition, comment, expect, i)
    i = {**envelope, "grant": wrong_key, "envelope": earlier}
    expect_error("auth_failure", lambda i=i: _open_envelope(i))
    yield case("entry_grant", "envelope", "not_its_key", "a validly made grant of a key that is not the concern's: "
               "the envelope's key commitment refuses it", "auth_failure", i)


CASES = [entry_grant_cases]
