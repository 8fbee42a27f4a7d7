"""A hostile server, between the Python client and the real one (tests/adversary/_attack.py: HostileServer),
serves forged directories and duties. The strongest one holds the school signing key too (a leaver kept it,
or it borrowed a keyholder device's routine signing): that key alone must not widen who reads. Each attack
is refused with a stable code, the client keeps the version it held, and no client seals to, or grants to,
a key no keyholder approved; writers seal to the newest version of the key id pinned at founding."""

from __future__ import annotations

import dataclasses
import os

import httpx
import pytest

from crypto import BoxKeyPair, SigningKey
from crypto import envelope as env
from crypto.directory import DirKey, read_directory
from sync.device import SAFEGUARDING
from sync.directory import DirectoryRefused, listing, make_approval
from sync.keyholder import run_duties
from sync.protocol import b64e
from tests.adversary._attack import GOT_THROUGH, HostileServer, next_version, on, signing_key

pytestmark = pytest.mark.asyncio


def _new_safeguarding_version(held, public_key: bytes, *, key_id: bytes | None = None, version: int | None = None):  # type: ignore[no-untyped-def]
    """The held content with a safeguarding reader key version of the server's: by default the next version
    of the pinned key id (what a rotation looks like), else ``key_id``/``version`` as given."""
    sg = [k for k in held.content.reader_keys if k.purpose == SAFEGUARDING]
    pinned, newest = sg[0].id, max(k.version for k in sg)
    key_id, version = key_id or pinned, version or newest + 1
    keys = tuple(dataclasses.replace(k, current=False) if k.id == key_id else k for k in held.content.reader_keys)
    extra = DirKey(key_id, version, SAFEGUARDING, public_key, True)
    item = ("key", key_id, version, SAFEGUARDING, public_key)
    return dataclasses.replace(held.content, reader_keys=(*keys, extra)), item


def _serving(raw: bytes, links: list[bytes] = ()):  # type: ignore[no-untyped-def]
    def rewrite(request: httpx.Request, answer: dict) -> dict | None:
        if request.method == "GET" and request.url.path == "/api/v1/directory":
            return {**answer, "version": 0, "signed": b64e(raw), "links": [b64e(x) for x in links], "more": False}
        return None

    return rewrite


def _store_grants(request: httpx.Request) -> dict | None:
    """The hostile server takes every grant it is sent (and could hand it to whoever it is sealed to)."""
    return {"stored": 1} if request.method == "POST" and request.url.path == "/api/v1/grants" else None


async def _served_to(school, device, raw: bytes, links: list[bytes] = (), *, expect: str) -> None:  # type: ignore[no-untyped-def]
    """Serve ``raw`` (after ``links``) to a copy of ``device``; require the refusal ``expect``, and that the
    device still holds the version it held and seals new concerns only to keys of that version."""
    held, pin = device.signed_directory, device.pinned_signing_pk
    transport = HostileServer(_serving(raw, links))
    duped, http = on(device, transport, school.running.base)
    try:
        with pytest.raises(DirectoryRefused) as refused:
            await duped.refresh()
    except pytest.fail.Exception:
        raise AssertionError(f"{GOT_THROUGH}: the client accepted version {duped.signed_directory.version}") from None
    finally:
        await http.aclose()
    assert duped.signed_directory is held and duped.pinned_signing_pk == pin, f"{GOT_THROUGH}: the held version moved"
    current = {(k["id"], k["version"]): k["public_key"] for k in listing(held)["reader_keys"] if k["current"]}
    for recipient, pk in duped.recipients_for(list(school.pupils[:2]), groups=()):  # each key's newest version
        assert current.get((b64e(recipient.id), recipient.version)) == b64e(pk), f"{GOT_THROUGH}: sealed to {pk!r}"
    assert not transport.posted("/api/v1/grants") and not transport.posted("/api/v1/directory")
    assert refused.value.code == expect, f"{GOT_THROUGH} this wall: refused with {refused.value}, not {expect!r}"


async def test_a_swapped_x25519_identity_key_is_refused_and_never_granted_to(school) -> None:
    """Attack 2: the server swaps a teacher's X25519 identity key for its own, hoping the DSL's device signs
    that version and its duties seal the class's pupil keys to it."""
    dsl, teacher = school.dsl.device, school.members["teacher-oak"].device
    server_key = BoxKeyPair.generate()
    await school.invite("lunch-s", ["contributor"], approve=False)  # something for the DSL's device to sign

    def swap(request: httpx.Request, answer: dict) -> dict | None:
        if request.url.path == "/api/v1/directory" and "current" in answer:
            accounts = [
                {**a, "identity_x25519_pk": b64e(server_key.public)} if a["login"] == "teacher-oak" else a
                for a in answer["current"]["accounts"]
            ]
            return {**answer, "current": {**answer["current"], "accounts": accounts}}
        return None

    transport = HostileServer(swap, answer=_store_grants)
    duped, http = on(dsl, transport, school.running.base)
    with pytest.raises(DirectoryRefused) as refused:
        await run_duties(duped)
    await http.aclose()
    assert refused.value.code == "bad_certificate", f"{GOT_THROUGH} this wall: {refused.value}"
    assert not transport.posted("/api/v1/directory"), f"{GOT_THROUGH}: the DSL's device signed the swapped key"
    assert not transport.posted("/api/v1/grants")

    # the same key in a version signed with the school key itself: the binding does not verify
    held = teacher.signed_directory
    accounts = tuple(dataclasses.replace(a, identity_x25519_pk=server_key.public) if a.id == teacher.user_id else a
                     for a in held.content.accounts)
    forged = next_version(held, signing_key(dsl), dataclasses.replace(held.content, accounts=accounts))
    ash = school.members["teacher-ash"].device
    await _served_to(school, ash, forged, expect="bad_signature")
    with pytest.raises(LookupError):  # naming the teacher on a concern seals to the listed key or not at all
        ash.recipients_for([], restricted=True, people=((teacher.user_id, server_key.public),))


async def test_a_second_reader_key_id_for_a_group_is_refused_and_writers_keep_the_pinned_one(school) -> None:
    """Attack 1 as a server would play it: a safeguarding key under a new key id, at version 2^31 - 1,
    signed with the school key, so that writers taking the highest version of the purpose seal to it."""
    dsl, teacher = school.dsl.device, school.members["teacher-oak"].device
    held, server_key = teacher.signed_directory, BoxKeyPair.generate()
    new_id = os.urandom(16)
    content, _ = _new_safeguarding_version(held, server_key.public, key_id=new_id, version=1)
    await _served_to(school, teacher, next_version(held, signing_key(dsl), content), expect="parse_failure")
    content, _ = _new_safeguarding_version(held, server_key.public, version=2**31 - 1)  # the pinned id, a gap
    await _served_to(school, teacher, next_version(held, signing_key(dsl), content), expect="parse_failure")
    sg_id, sg_version, sg_pk = teacher.group_key(SAFEGUARDING)
    first = teacher.recipients_for([school.classes["oak"][0]], groups=())[0]
    assert first == (env.Recipient(env.RECIPIENT_READER_KEY, sg_id, sg_version), sg_pk)


async def test_a_rolled_back_version_is_refused(school) -> None:
    """A server serves an older version (one that still listed a revoked device, say)."""
    teacher = school.members["teacher-oak"].device
    older = teacher.signed_directory
    await school.invite("lunch-r", ["contributor"])  # the DSL signs a newer version; the teacher takes it
    await teacher.refresh()
    assert teacher.signed_directory.version > older.version
    await _served_to(school, teacher, older.raw, expect="rollback")


async def test_a_skipped_version_is_refused(school) -> None:
    """A server hides version N+1 (where it added its own key without approval) and serves N+2, whose
    approval is against N+1: a device that did not follow N+1 would never check that widening."""
    dsl, teacher = school.dsl.device, school.members["teacher-oak"].device
    held, key, server_key = teacher.signed_directory, signing_key(dsl), BoxKeyPair.generate()
    content, _ = _new_safeguarding_version(held, server_key.public)
    hidden = read_directory(next_version(held, key, content))
    shown = next_version(hidden, key, content)
    await _served_to(school, teacher, shown, expect="rollback")


async def test_a_forged_approval_is_refused(school) -> None:
    """A version signed with the school key adds the server's safeguarding key version, carrying an
    approval signed by a teacher's real device (not a keyholder's), or one naming the DSL's device but
    signed by another key."""
    dsl, teacher = school.dsl.device, school.members["teacher-oak"].device
    ash = school.members["teacher-ash"].device
    held, key, server_key = ash.signed_directory, signing_key(dsl), BoxKeyPair.generate()
    content, item = _new_safeguarding_version(held, server_key.public)
    by_teacher = make_approval(teacher.device_key, teacher.device_id, teacher.user_id, held, {item})
    await _served_to(school, ash, next_version(held, key, content, [by_teacher]), expect="unapproved")
    as_dsl = make_approval(SigningKey.generate(), dsl.device_id, dsl.user_id, held, {item})
    await _served_to(school, ash, next_version(held, key, content, [as_dsl]), expect="bad_signature")


async def test_an_approval_that_covers_something_else_is_refused(school) -> None:
    """The DSL's device really signed these approvals, but for other things: one for another widening of
    this version's base, one for the very same key made against an older version (a replay)."""
    dsl, ash = school.dsl.device, school.members["teacher-ash"].device
    held, key, server_key = ash.signed_directory, signing_key(dsl), BoxKeyPair.generate()
    content, item = _new_safeguarding_version(held, server_key.public)
    other = make_approval(dsl.device_key, dsl.device_id, dsl.user_id, held, {("role", ash.user_id, "sen")})
    await _served_to(school, ash, next_version(held, key, content, [other]), expect="unapproved")
    earlier = dataclasses.replace(held, version=held.version - 1)  # the approval names an older base
    replayed = make_approval(dsl.device_key, dsl.device_id, dsl.user_id, earlier, {item})
    await _served_to(school, ash, next_version(held, key, content, [replayed]), expect="unapproved")


async def test_duties_the_server_invents_are_never_sealed(school, office) -> None:
    """A server lists the admin as owed the safeguarding key and the signing key: the DSL's device checks
    each item against the signed roles and seals nothing (the server would have stored whatever came)."""
    dsl = school.dsl.device
    wanted = [dsl.group_key(SAFEGUARDING)[:2], dsl.group_key("signing:directory")[:2]]

    def steer(request: httpx.Request, answer: dict) -> dict | None:
        if request.url.path == "/api/v1/keyholder/duties":
            owed = [{"reader_key_id": b64e(k), "version": v, "member_id": b64e(office.device.user_id)}
                    for k, v in wanted]
            return {**answer, "grants": owed}
        return None

    transport = HostileServer(steer, answer=_store_grants)
    duped, http = on(dsl, transport, school.running.base)
    report = await run_duties(duped)
    await http.aclose()
    sealed = [g for body in transport.posted("/api/v1/grants") for g in body["grants"]]
    assert not sealed, f"{GOT_THROUGH}: the DSL's device sealed {len(sealed)} keys the server asked for"
    assert len(report.refused) == 2 and report.granted == 0


async def test_an_operator_s_second_safeguarding_key_id_freezes_the_directory_and_opens_nothing(school) -> None:
    """The operator writes into storage: a second ``group:safeguarding`` key id of its own. No keyholder
    device signs a version listing it (nor any other change meanwhile: the directory is frozen until the
    row goes, which is availability, not confidentiality), and writers keep sealing to the pinned key."""
    from sqlalchemy import insert

    from server.models import ReaderKey
    from server.storage import now_ms

    dsl, teacher = school.dsl.device, school.members["teacher-oak"].device
    operator_key = BoxKeyPair.generate()
    async with school.running.services.engine.begin() as conn:
        await conn.execute(insert(ReaderKey).values(school_id=school.school_id, id=b"\xff" * 16, version=1,
                                                    purpose=SAFEGUARDING, public_key=operator_key.public,
                                                    created_ms=now_ms(), current=True))
    version = dsl.signed_directory.version
    with pytest.raises(DirectoryRefused) as refused:
        await run_duties(dsl)
    assert refused.value.code == "malformed", f"{GOT_THROUGH} this wall: {refused.value}"
    assert (await dsl.call("GET", "/api/v1/directory"))["version"] == version, f"{GOT_THROUGH}: a version was signed"
    await teacher.refresh()
    recipients = teacher.recipients_for([school.classes["oak"][0]], groups=())
    assert recipients[0] == (env.Recipient(env.RECIPIENT_READER_KEY, *dsl.group_key(SAFEGUARDING)[:2]),
                             dsl.group_key(SAFEGUARDING)[2])
    assert all(pk != operator_key.public for _, pk in recipients), f"{GOT_THROUGH}: sealed to the operator's key"
