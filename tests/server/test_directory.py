"""The signed directory end to end (docs/PROTOCOL.md 13): the founding device signs version 1, keyholder
devices re-sign when the school changes, the server takes only the next version signed with the key on
file and matching its state, devices pin and follow rotations, a hostile server cannot slip in a key,
and the devices page lists devices with their last-seen time."""

from __future__ import annotations

import dataclasses
import os

import httpx
import pytest
from sqlalchemy import select, update

from crypto import BoxKeyPair, SigningKey
from crypto import envelope as env
from crypto.directory import DirKey, directory_signing_key, read_directory, sign_directory
from crypto.directory import _sign as hostile_sign  # versions no honest device makes
from server.models import Account
from server.models import Device as DeviceRow
from sync.device import SAFEGUARDING, ApiFailure, sign_in
from sync.directory import DirectoryRefused, rotate_signing_key
from sync.protocol import b64d, b64e
from tests.server.harness import PASSWORD

pytestmark = pytest.mark.asyncio


async def _post(device, raw: bytes) -> ApiFailure:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiFailure) as refused:
        await device.call("POST", "/api/v1/directory", signed=b64e(raw))
    return refused.value


def _signing_key(device) -> SigningKey:  # type: ignore[no-untyped-def]
    return next(
        directory_signing_key(pair) for pair in device.reader_keys.values()
        if directory_signing_key(pair).public == device.pinned_signing_pk
    )


async def _second_device(school, login: str):  # type: ignore[no-untyped-def]
    """Sign ``login`` in on a new device. The one-time code of this 30-second step may have been used at
    set-up, so the test clears the account's last used step in storage first."""
    async with school.running.services.engine.begin() as conn:
        await conn.execute(update(Account).where(Account.login == login).values(totp_last_step=0))
    member = school.members[login] if login in school.members else school.dsl
    return await sign_in(school.http, school.school_id, login, PASSWORD, totp_secret=member.totp)


async def test_every_device_pins_the_key_the_founding_device_made(school) -> None:
    dsl, teacher = school.dsl.device, school.members["teacher-oak"].device
    assert dsl.pinned_signing_pk is not None and dsl.fingerprint == teacher.fingerprint
    assert dsl.signed_directory is not None and dsl.signed_directory.version >= 1
    served = await teacher.call("GET", "/api/v1/directory")
    assert served["changed"] is False and "current" not in served
    listed = {d["id"] for d in teacher.directory["devices"]}
    assert b64e(teacher.device_id) in listed and b64e(dsl.device_id) in listed
    assert len(teacher.directory["pupils"]) == len(school.pupils)


async def test_a_change_is_reported_and_the_next_keyholder_device_online_signs_it(school) -> None:
    dsl, teacher = school.dsl.device, school.members["teacher-oak"].device
    before = dsl.signed_directory.version
    tablet = await _second_device(school, "teacher-oak")
    seen_by_teacher = await teacher.call("GET", "/api/v1/directory")
    assert seen_by_teacher["changed"] is True and "current" not in seen_by_teacher  # only keyholders get the state
    assert {k: v for k, v in seen_by_teacher["changes"].items() if v} == {"devices_added": 1}  # what a signer signs
    assert "current" in await dsl.call("GET", "/api/v1/directory")
    await teacher.refresh()
    assert b64e(tablet.device_id) not in {d["id"] for d in teacher.directory["devices"]}  # not signed yet
    await dsl.refresh()
    assert dsl.signed_directory.version == before + 1
    await teacher.refresh()
    assert b64e(tablet.device_id) in {d["id"] for d in teacher.directory["devices"]}


async def test_the_server_takes_only_the_next_version_signed_with_the_key_on_file(school) -> None:
    dsl = school.dsl.device
    held = dsl.signed_directory
    signing = _signing_key(dsl)

    def signed(key: SigningKey, version: int, prev: bytes, content=held.content) -> bytes:  # type: ignore[no-untyped-def]
        return hostile_sign(key, school_id=school.school_id, version=version, prev_hash=prev,
                            created_ms=held.created_ms, next_signing_pk=key.public, content=content)

    assert (await _post(dsl, b"\x01" + os.urandom(300))).code == "invalid_directory"
    assert (await _post(dsl, held.raw[:-1] + bytes([held.raw[-1] ^ 1]))).code == "invalid_directory"
    assert (await _post(dsl, held.raw)).code == "stale_directory"  # the same version again
    assert (await _post(dsl, signed(signing, held.version + 2, held.hash))).code == "stale_directory"
    assert (await _post(dsl, signed(signing, held.version + 1, os.urandom(32)))).code == "stale_directory"
    stranger = SigningKey.generate()
    assert (await _post(dsl, signed(stranger, held.version + 1, held.hash))).code == "wrong_signing_key"
    other_school = sign_directory(signing, school_id=os.urandom(16), version=held.version + 1, prev_hash=held.hash,
                                  created_ms=1, next_signing_pk=signing.public, content=held.content)
    assert (await _post(dsl, other_school)).code == "invalid_directory"
    extra = DirKey(os.urandom(16), 1, SAFEGUARDING, BoxKeyPair.generate().public, True)
    slipped = dataclasses.replace(held.content, reader_keys=(*held.content.reader_keys, extra))
    assert (await _post(dsl, signed(signing, held.version + 1, held.hash, slipped))).code == "invalid_directory"
    sg_id, sg_version, _ = dsl.group_key(SAFEGUARDING)  # a next version of the pinned key, with no approval
    next_version = DirKey(sg_id, sg_version + 1, SAFEGUARDING, BoxKeyPair.generate().public, True)
    keys = tuple(dataclasses.replace(k, current=False) if k.id == sg_id else k for k in held.content.reader_keys)
    unapproved = dataclasses.replace(held.content, reader_keys=(*keys, next_version))
    refused = await _post(dsl, signed(signing, held.version + 1, held.hash, unapproved))
    assert refused.code == "unapproved_directory"  # signed with the school key, still refused: nobody approved it
    teacher = school.members["teacher-oak"].device
    with pytest.raises(ApiFailure) as forbidden:
        await teacher.call("POST", "/api/v1/directory", signed=b64e(signed(signing, held.version + 1, held.hash)))
    assert forbidden.value.code == "forbidden"
    with pytest.raises(ApiFailure) as bad_since:
        await teacher.call("GET", "/api/v1/directory?since=-1")
    assert bad_since.value.code == "invalid_request"
    assert (await dsl.call("GET", "/api/v1/directory"))["version"] == held.version  # nothing was stored


async def test_a_stale_keyholder_cannot_publish_an_old_picture(school) -> None:
    dsl = school.dsl.device
    tablet = await _second_device(school, "teacher-oak")
    await dsl.refresh()  # the tablet is listed
    held = dsl.signed_directory
    signing = _signing_key(dsl)
    await tablet.call("POST", "/api/v1/devices/revoke", device_id=b64e(tablet.device_id))  # while the DSL looks away
    old_picture = sign_directory(signing, school_id=school.school_id, version=held.version + 1, prev_hash=held.hash,
                                 created_ms=held.created_ms, next_signing_pk=signing.public, content=held.content)
    assert (await _post(dsl, old_picture)).code == "stale_directory"  # it would leave the lost tablet trusted
    await dsl.refresh()  # reading the current state and signing that is accepted
    assert dsl.signed_directory.version == held.version + 1
    assert next(d for d in dsl.directory["devices"] if d["id"] == b64e(tablet.device_id))["revoked"] is True


async def test_a_rotation_is_followed_through_the_version_signed_by_the_old_key(school) -> None:
    dsl, teacher = school.dsl.device, school.members["teacher-ash"].device
    old_fp, held = teacher.fingerprint, teacher.signed_directory.version
    new_pk = await rotate_signing_key(dsl)
    assert dsl.pinned_signing_pk == new_pk and dsl.fingerprint != old_fp
    await school.invite("lunch-2", ["contributor"])  # the next version is signed with the new key
    newest = read_directory(dsl.signed_directory.raw)
    assert newest.signing_pk == new_pk and newest.version >= held + 2
    await teacher.refresh()  # versions behind: it follows every one from `links`, the announcing one among them
    assert teacher.pinned_signing_pk == new_pk and teacher.fingerprint == dsl.fingerprint
    assert teacher.signed_directory.version == newest.version


class Hostile(httpx.AsyncBaseTransport):
    """A server that rewrites the directory it serves, after the real one answered."""

    def __init__(self, base: str, rewrite) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.rewrite = httpx.AsyncHTTPTransport(), rewrite

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "GET" and request.url.path == "/api/v1/directory":
            await response.aread()
            return httpx.Response(200, json=self.rewrite(response.json()))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_hostile_server_cannot_slip_in_a_key_or_serve_an_older_version(school) -> None:
    teacher = school.members["teacher-oak"].device
    held, pin = teacher.signed_directory, teacher.pinned_signing_pk
    sg_id, sg_version, sg_pk = teacher.group_key(SAFEGUARDING)
    own_key = SigningKey.generate()
    invented = BoxKeyPair.generate()
    first = None

    def slip_in(served: dict) -> dict:  # a newer version listing the server's key, signed by the server's key
        d = read_directory(b64d(served["signed"], "signed"))
        extra = DirKey(sg_id, sg_version + 1, SAFEGUARDING, invented.public, True)
        keys = tuple(dataclasses.replace(k, current=False) if k.id == sg_id else k for k in d.content.reader_keys)
        content = dataclasses.replace(d.content, reader_keys=(*keys, extra))
        raw = sign_directory(own_key, school_id=d.school_id, version=d.version + 1, prev_hash=d.hash, created_ms=1,
                             next_signing_pk=own_key.public, content=content)
        current = {**teacher.directory, "reader_keys": [*teacher.directory["reader_keys"], {
            "id": b64e(sg_id), "version": sg_version + 1, "purpose": SAFEGUARDING,
            "public_key": b64e(invented.public), "current": True}]}
        return {**served, "version": d.version + 1, "signed": b64e(raw), "changed": True, "current": current}

    def older(served: dict) -> dict:
        return {**served, "signed": b64e(first), "links": []}

    async with httpx.AsyncClient(base_url=school.running.base, transport=Hostile(school.running.base, slip_in)) as http:
        duped = dataclasses.replace(teacher, http=http)
        with pytest.raises(DirectoryRefused) as refused:
            await duped.refresh()
        assert refused.value.code == "bad_signature"
        assert duped.signed_directory is held and duped.pinned_signing_pk == pin
        recipients = duped.recipients_for([school.classes["oak"][0]], groups=())
        assert all(pk != invented.public for _, pk in recipients)
        assert recipients[0][0] == env.Recipient(env.RECIPIENT_READER_KEY, sg_id, sg_version)
    await school.invite("lunch-3", ["contributor"])  # the DSL signs a newer version; the teacher takes it
    await teacher.refresh()
    assert teacher.signed_directory.version > held.version
    first = held.raw
    async with httpx.AsyncClient(base_url=school.running.base, transport=Hostile(school.running.base, older)) as http:
        duped = dataclasses.replace(teacher, http=http)
        with pytest.raises(DirectoryRefused) as backwards:
            await duped.refresh()
        assert backwards.value.code == "rollback"
        assert duped.signed_directory.version > held.version


async def test_the_devices_page_lists_devices_with_last_seen_and_revoke_is_signed_in_the_next_version(school) -> None:
    dsl, oak = school.dsl.device, school.members["teacher-oak"]
    mine = (await oak.device.call("GET", "/api/v1/devices"))["devices"]
    assert {d["user_id"] for d in mine} == {b64e(oak.device.user_id)}
    assert mine[0]["last_seen_ms"] is not None and mine[0]["this_device"] and mine[0]["may_revoke"]
    everyone = (await dsl.call("GET", "/api/v1/devices"))["devices"]
    assert len(everyone) >= 3 and {d["login"] for d in everyone} >= {"dsl", "teacher-oak", "teacher-ash"}
    before = mine[0]["last_seen_ms"]
    await oak.connect(school.running)  # a sync connect is a sighting
    async with school.running.services.engine.connect() as conn:
        seen = await conn.scalar(select(DeviceRow.last_seen_ms).where(DeviceRow.id == oak.device.device_id))
    assert seen >= before
    await oak.client.close()
    tablet = await _second_device(school, "teacher-oak")
    await dsl.refresh()
    ash = school.members["teacher-ash"].device
    with pytest.raises(ApiFailure) as other:
        await ash.call("POST", "/api/v1/devices/revoke", device_id=b64e(tablet.device_id))
    assert other.value.code == "forbidden"
    await oak.device.call("POST", "/api/v1/devices/revoke", device_id=b64e(tablet.device_id))  # the lost tablet
    assert (await dsl.call("GET", "/api/v1/directory"))["changes"]["devices_changed"] == 1
    listed = {d["id"]: d for d in (await oak.device.call("GET", "/api/v1/devices"))["devices"]}
    assert listed[b64e(tablet.device_id)]["revoked_ms"] is not None and not listed[b64e(tablet.device_id)]["may_revoke"]
    await dsl.refresh()
    await ash.refresh()
    assert next(d for d in ash.directory["devices"] if d["id"] == b64e(tablet.device_id))["revoked"] is True
