"""A hostile office admin (the admin role only, with a second factor) tries every step of issue 12's attacks
1, 3, 4, 7 and 8 at protocol level. Each step is refused with a stable code, or, where an admin's request is
the design (roles, classes, invitations), kept as a request that widens nothing: no directory version, no
grant, no key. Either way nothing a client trusts changes, and no device seals anything to the admin."""

from __future__ import annotations

import json
import os

import pytest

from crypto import BoxKeyPair, GrantInfo, SigningKey, make_grant
from server.schools import create_school
from sync.device import ROSTER_SENSITIVE, ROSTER_STAFF, SAFEGUARDING, SIGNING_PURPOSE, now_ms, register, sign_in
from sync.directory import rotate_signing_key
from sync.keyholder import run_duties
from sync.protocol import b64e
from tests.adversary._attack import GOT_THROUGH, keys_of, next_version, refused, snapshot, unchanged
from tests.server import test_account_ids as ids
from tests.server import test_sessions as sessions
from tests.server.harness import PASSWORD
from tests.server.test_grants import class_id

pytestmark = pytest.mark.asyncio


def _grant(device, key_id: bytes, version: int, pair: BoxKeyPair, to: bytes, to_pk: bytes) -> str:  # type: ignore[no-untyped-def]
    info = GrantInfo(device.school_id, key_id, version, to, device.device_id, now_ms())
    return b64e(make_grant(info, pair, to_pk, device.device_key))


def _self_grant(device, key_id: bytes, version: int, pair: BoxKeyPair) -> str:  # type: ignore[no-untyped-def]
    return _grant(device, key_id, version, pair, device.user_id, device.identity.box.public)


async def test_an_admin_adding_safeguarding_to_itself_widens_nothing(school, office) -> None:
    """Attack 1, first step: the admin gives itself the safeguarding role and waits for the DSL's device."""
    admin, dsl = office.device, school.dsl.device
    asked = await admin.call("POST", "/api/v1/admin/roles", user_id=b64e(admin.user_id), roles=["safeguarding"],
                             reason="covering the DSL")
    assert asked["waiting"] == ["safeguarding"]  # a request, shown to every keyholder as such
    before = await snapshot(school)

    await run_duties(dsl)  # the DSL's device online, as every minute: refresh, sign what it may, seal what is owed

    unchanged(before, await snapshot(school))  # no version signed, no grant made
    await admin.refresh()
    assert not keys_of(admin, SAFEGUARDING), f"{GOT_THROUGH}: the admin holds the safeguarding key"
    assert "safeguarding" not in next(a for a in admin.directory["accounts"] if a["login"] == "office")["roles"]
    await refused("forbidden", admin.call("GET", "/api/v1/held"))  # the server decides by the signed roles


async def test_an_admin_cannot_publish_a_safeguarding_key_under_a_new_key_id_or_at_version_2_31_minus_1(
    school, office
) -> None:
    """Attack 1, second step: a reader key of the admin's own, which every writer would then seal to."""
    admin, dsl = office.device, school.dsl.device
    await admin.call("POST", "/api/v1/admin/roles", user_id=b64e(admin.user_id), roles=["safeguarding"])
    before = await snapshot(school)
    pair, new_id = BoxKeyPair.generate(), os.urandom(16)
    for version in (1, 2**31 - 1):
        key = {"id": b64e(new_id), "version": version, "purpose": SAFEGUARDING, "public_key": b64e(pair.public)}
        await refused("forbidden", admin.call("POST", "/api/v1/keys", keys=[key],
                                              grants=[_self_grant(admin, new_id, version, pair)]))
    sg_id, _, _ = dsl.group_key(SAFEGUARDING)  # the pinned key id, at the highest version there is
    await refused("forbidden", admin.call("POST", "/api/v1/keys/rotate", reader_key_id=b64e(sg_id), version=2**31 - 1,
                                          public_key=b64e(pair.public),
                                          grants=[_self_grant(admin, sg_id, 2**31 - 1, pair)]))
    unchanged(before, await snapshot(school))


async def test_an_admin_cannot_grant_a_key_nobody_holds(school, office) -> None:
    """Attack 1, third step: a grant of a key version nobody holds (so no holder's check applies)."""
    admin, dsl = office.device, school.dsl.device
    await admin.call("POST", "/api/v1/admin/roles", user_id=b64e(admin.user_id), roles=["safeguarding"])
    sg_id, sg_version, _ = dsl.group_key(SAFEGUARDING)
    invented = BoxKeyPair.generate()
    before = await snapshot(school)
    await refused("forbidden", admin.call("POST", "/api/v1/grants",
                                          grants=[_self_grant(admin, sg_id, sg_version + 1, invented)]))
    # the keyholder's own device, too, can seal only versions the signed directory lists
    await refused("unknown_key", dsl.call("POST", "/api/v1/grants", grants=[
        _grant(dsl, sg_id, sg_version + 1, invented, dsl.user_id, dsl.identity.box.public)]))
    unchanged(before, await snapshot(school))


async def test_an_admin_cannot_get_a_dsl_device_to_re_sign_its_requests(school, office) -> None:
    """Attack 1, fourth step: everything an admin can ask for, waiting for the DSL's routine re-signing."""
    admin, dsl = office.device, school.dsl.device
    await admin.call("POST", "/api/v1/admin/roles", user_id=b64e(admin.user_id), roles=["safeguarding", "sen"])
    ally = school.members["teacher-ash"].device
    await admin.call("POST", "/api/v1/admin/roles", user_id=b64e(ally.user_id), roles=["safeguarding"])
    await admin.call("POST", "/api/v1/admin/class-teachers", class_id=b64e(class_id(school, "oak")),
                     user_id=b64e(ally.user_id))
    version = dsl.signed_directory.version
    served = await dsl.call("GET", "/api/v1/directory")
    assert served["changed"] and served["pending"] == 4  # the DSL's device sees four widenings waiting

    await dsl.refresh()
    await dsl.refresh()

    assert dsl.signed_directory.version == version, f"{GOT_THROUGH}: the DSL's device signed a version by itself"
    assert (await dsl.call("GET", "/api/v1/directory"))["version"] == version
    assert len(await dsl.pending()) == 4


async def test_an_admin_made_teacher_gets_no_pupil_keys_without_a_keyholder(school, office) -> None:
    """Attack 3: the admin (password and code, nothing more) makes a teacher for Oak and waits for grants."""
    admin, dsl = office.device, school.dsl.device
    code = (await admin.call("POST", "/api/v1/admin/invitations", login="teacher-x", display_name="Fictional X",
                             roles=["teacher"]))["code"]
    registration, device = await register(school.http, school.school_id, code, PASSWORD)
    ally = await sign_in(school.http, school.school_id, "teacher-x", PASSWORD,
                         totp_secret=registration.totp_secret, device=device)
    await admin.call("POST", "/api/v1/admin/class-teachers", class_id=b64e(class_id(school, "oak")),
                     user_id=b64e(ally.user_id))
    before = await snapshot(school)

    report = await run_duties(dsl)

    unchanged(before, await snapshot(school))
    assert report.granted == 0
    await ally.refresh()
    assert not keys_of(ally, "pupil"), f"{GOT_THROUGH}: the admin's teacher holds pupil keys"
    assert b64e(ally.user_id) not in {a["id"] for a in ally.directory["accounts"]}  # nobody encrypts to it


async def test_a_safeguarding_role_an_admin_just_made_is_not_keyholder_status(school, office) -> None:
    """Attack 4: the server's own wall. An ally given the safeguarding role by the admin (not approved)
    calls every route that needs a keyholder, and a signing key rotation does not seal to it."""
    admin, dsl = office.device, school.dsl.device
    ally = school.members["teacher-ash"].device  # holds Ash's pupil keys: a real holder of something
    await admin.call("POST", "/api/v1/admin/roles", user_id=b64e(ally.user_id), roles=["safeguarding"])
    pupil_key = dsl.pupil_key(school.classes["ash"][0])
    before = await snapshot(school)

    await refused("forbidden", ally.call("GET", "/api/v1/held"))
    await refused("forbidden", ally.call("POST", "/api/v1/held/decide", envelope_id=b64e(os.urandom(16)),
                                         decision="accept"))
    await refused("forbidden", ally.call("POST", "/api/v1/grants", grants=[
        _grant(ally, pupil_key[0], pupil_key[1], ally.reader_keys[pupil_key[:2]], admin.user_id,
               admin.identity.box.public)]))
    await refused("forbidden", ally.call("POST", "/api/v1/pupils", pupils=[], grants=[]))
    await refused("forbidden", ally.call("POST", "/api/v1/keys/rotate", reader_key_id=b64e(pupil_key[0]),
                                         version=pupil_key[1] + 1, public_key=b64e(bytes(32)), grants=[]))
    await refused("forbidden", ally.call("POST", "/api/v1/directory", signed=b64e(dsl.signed_directory.raw)))
    await refused("forbidden", ally.call("POST", "/api/v1/approvals/decline", items=[]))
    assert await ally.call("GET", "/api/v1/keyholder/duties") == {"grants": [], "rotations": [], "entry_grants": []}
    unchanged(before, await snapshot(school))

    await rotate_signing_key(dsl)  # sealed to the safeguarding members the signed directory lists: not the ally
    await ally.refresh()
    assert not keys_of(ally, SIGNING_PURPOSE), f"{GOT_THROUGH}: the rotation sealed the signing key to the ally"


async def test_an_admin_cannot_decide_held_envelopes(school, office) -> None:
    """Attack 4: a revoked device's handed-over envelopes wait for a keyholder, not for whoever has a role."""
    admin = office.device
    await admin.call("POST", "/api/v1/admin/roles", user_id=b64e(admin.user_id), roles=["safeguarding"])
    lunch, bodies = await sessions.offline_then_revoked(school, "lunch-held", 1)
    ws = await sessions.revoked_socket(school, lunch)
    await ws.send(sessions.hand_over(0, bodies))
    assert json.loads(await ws.recv())["type"] == "held"
    await ws.close()
    held = (await school.dsl.device.call("GET", "/api/v1/held"))["held"]
    before = await snapshot(school)

    await refused("forbidden", admin.call("POST", "/api/v1/held/decide", envelope_id=held[0]["envelope_id"],
                                          decision="accept"))

    unchanged(before, await snapshot(school))


async def test_an_admin_cannot_add_pupils(school, office) -> None:
    """Attack 4: a pupil keyed by the admin's own key would be sealed to by every writer naming it."""
    admin = office.device
    await admin.call("POST", "/api/v1/admin/roles", user_id=b64e(admin.user_id), roles=["safeguarding"])
    pair, key_id = BoxKeyPair.generate(), os.urandom(16)
    before = await snapshot(school)
    await refused("forbidden", admin.call(
        "POST", "/api/v1/pupils",
        pupils=[{"id": b64e(os.urandom(16)),
                 "reader_key": {"id": b64e(key_id), "version": 1, "public_key": b64e(pair.public)}}],
        grants=[_self_grant(admin, key_id, 1, pair)],
    ))
    unchanged(before, await snapshot(school))


async def test_an_admin_cannot_publish_a_directory_version(school, office) -> None:
    """Attack 4: the admin signs a version of its own (it holds no school signing key)."""
    admin, held = office.device, school.dsl.device.signed_directory
    await admin.call("POST", "/api/v1/admin/roles", user_id=b64e(admin.user_id), roles=["safeguarding"])
    before = await snapshot(school)
    forged = next_version(held, SigningKey.generate(), held.content)
    await refused("forbidden", admin.call("POST", "/api/v1/directory", signed=b64e(forged)))
    unchanged(before, await snapshot(school))


async def test_an_admin_signs_in_only_with_a_second_factor(school, office) -> None:
    """Attack 7: an admin manages accounts, so its password alone is not enough."""
    await refused("totp_required", sign_in(school.http, school.school_id, "office", PASSWORD, device=office.device))


async def test_chosen_user_ids_cannot_write_into_another_school_s_rows(school, office) -> None:
    """Attack 8: an account of school B registers with ids of school A's admin and device."""
    other, code = await create_school(school.running.services.engine, "Other Fictional Primary", "head-b", "Head B")
    before = await snapshot(school)
    for user_id, device_id in ((office.device.user_id, os.urandom(16)), (os.urandom(16), office.device.device_id)):
        answer = await ids.register_as(school.http, other, code, user_id, device_id)
        code_seen = answer.json().get("error", {}).get("code")
        assert (answer.status_code, code_seen) == (409, "id_taken"), f"{GOT_THROUGH}: {answer.status_code} {code_seen}"
    unchanged(before, await snapshot(school))


async def test_an_admin_reads_the_roster_and_no_concern(school, office) -> None:
    """What an admin may read, by design: the roster (names, classes, and the sensitive fields), nothing of
    any concern, restricted or not, even about the pupils it sees on the roster."""
    dsl = school.dsl.device
    await dsl.found_groups((ROSTER_STAFF, ROSTER_SENSITIVE))
    await run_duties(dsl)  # every member is owed the roster keys: the admin among them
    pupil = school.classes["oak"][0]
    await dsl.publish_roster([(pupil, ROSTER_STAFF, b'{"name": "Fictional Child", "class": "oak"}'),
                              (pupil, ROSTER_SENSITIVE, b'{"dob": "2018-01-01"}')])
    dsl.write(school.dsl.outbox, b"fictional: a concern about the child", pupil_ids=[pupil])
    dsl.write(school.dsl.outbox, b"fictional: a restricted one", pupil_ids=[pupil], restricted=True)
    await (await school.dsl.connect(school.running)).flush()
    await office.device.refresh()

    assert await office.device.roster() == {pupil: {"name": "Fictional Child", "class": "oak", "dob": "2018-01-01"}}
    client = await office.connect(school.running)
    page = await client._request({"type": "pull", "cursor": None, "limit": 500})
    await client.close()
    assert page["items"] == [], f"{GOT_THROUGH}: the admin was sent {len(page['items'])} concern events"
    assert not set(office.device.reader_keys) - keys_of(office.device, ROSTER_STAFF) - keys_of(
        office.device, ROSTER_SENSITIVE), f"{GOT_THROUGH}: the admin holds a reader key"
