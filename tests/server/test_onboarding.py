"""Onboarding at the protocol level: invitations one by one and by staff CSV (all or nothing, each problem
named), joining with an invitation, TOTP confirmed by the first good code, and the import verb.

Every name and address here is fictional (example.org is reserved for examples).
"""

from __future__ import annotations

import os

import pyotp
import pytest
from sqlalchemy import insert, select, update

from server._staff_csv import StaffCsvError, parse_staff_csv
from server.cli import main
from server.models import ClassTeacher, Invitation, SchoolClass
from server.schools import create_school
from sync.device import ApiFailure, register, sign_in
from sync.protocol import b64e
from tests.server.harness import PASSWORD

GOOD_CSV = (
    "\ufeffName,Email,Roles,Classes\n"
    "Fictional Ada Teacher,Ada.Teacher@Example.org,teacher,oak\n"
    '"Fictional Bo Assistant, TA",bo.assistant@example.org,contributor,\n'
    "Fictional Cy Senco,cy.senco@example.org,teacher;sen,oak;ash\n"
)


async def _fails(code: str, call) -> ApiFailure:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiFailure) as caught:
        await call
    assert caught.value.code == code, caught.value
    return caught.value


async def _invitations(school) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    listed = (await school.dsl.device.call("GET", "/api/v1/admin/invitations"))["invitations"]
    return {i["login"]: i for i in listed}


async def _class_id(school, label: str) -> bytes:  # type: ignore[no-untyped-def]
    async with school.running.services.engine.connect() as conn:
        return bytes(
            await conn.scalar(
                select(SchoolClass.id).where(SchoolClass.school_id == school.school_id, SchoolClass.label == label)
            )
        )


# --- the CSV reader on its own ----------------------------------------------------------------------


def test_a_good_file_reads_every_row_with_emails_in_lower_case() -> None:
    rows = parse_staff_csv(GOOD_CSV)
    assert [(r.line, r.name, r.login, r.roles, r.classes) for r in rows] == [
        (2, "Fictional Ada Teacher", "ada.teacher@example.org", ("teacher",), ("oak",)),
        (3, "Fictional Bo Assistant, TA", "bo.assistant@example.org", ("contributor",), ()),
        (4, "Fictional Cy Senco", "cy.senco@example.org", ("sen", "teacher"), ("ash", "oak")),
    ]


def test_every_bad_row_is_named_by_line_and_column() -> None:
    text = (
        "name,email,roles,classes\n"
        ",no-name@example.org,teacher,\n"
        "Fictional Bad Email,not an email,teacher,\n"
        "Fictional Bad Role,bad.role@example.org,headteacher,\n"
        "Fictional No Teacher,no.teacher@example.org,contributor,oak\n"
        "Fictional Twice,twice@example.org,teacher,\n"
        "Fictional Twice Again,TWICE@example.org,teacher,\n"
        "Fictional Short Row,short@example.org\n"
    )
    with pytest.raises(StaffCsvError) as caught:
        parse_staff_csv(text)
    assert caught.value.fields == {
        "rows[2].name": "missing",
        "rows[3].email": "invalid_email",
        "rows[4].roles": "unknown_role",
        "rows[5].classes": "classes_need_teacher",
        "rows[7].email": "duplicate_in_file",
        "rows[8]": "not_csv",
    }


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("name,email,roles\n", "empty"),
        ("name,email\nFictional,f@example.org\n", "missing_columns"),
        ("name,email,roles,phone\nFictional,f@example.org,teacher,0\n", "unknown_columns"),
        ("name,email,roles\n" + "Fictional,f{}@example.org,teacher\n" * 501, "too_many_rows"),
        ('name,email,roles\n"Fictional,f@example.org,teacher\n', "not_csv"),
    ],
)
def test_a_file_that_is_not_a_staff_list_is_refused_whole(text: str, code: str) -> None:
    with pytest.raises(StaffCsvError) as caught:
        parse_staff_csv(text)
    assert caught.value.fields == {"file": code}


# --- one by one ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_invitation_with_classes_makes_the_joiner_their_teacher(school) -> None:
    dsl = school.dsl.device
    made = await dsl.call(
        "POST",
        "/api/v1/admin/invitations",
        login="dee.teacher@example.org",
        display_name="Fictional Dee Teacher",
        roles=["teacher"],
        classes=["oak"],
    )
    assert made["classes"] == ["oak"]
    assert (await _invitations(school))["dee.teacher@example.org"]["status"] == "pending"
    registration, registered = await register(school.http, school.school_id, made["code"], PASSWORD)
    assert registration.totp_secret and len(registration.recovery_key) == 44
    listed = (await _invitations(school))["dee.teacher@example.org"]
    assert (listed["status"], listed["classes"], listed["roles"]) == ("joined", ["oak"], ["teacher"])
    device = await sign_in(
        school.http,
        school.school_id,
        "dee.teacher@example.org",
        PASSWORD,
        totp_secret=registration.totp_secret,
        device=registered,
    )  # the first good code confirms the authenticator
    assert (await _invitations(school))["dee.teacher@example.org"]["status"] == "active"
    await dsl.refresh()  # unattended: the new account and its class wait for a keyholder's approval
    oak = next(c for c in dsl.directory["classes"] if c["label"] == "oak")
    assert b64e(device.user_id) not in oak["teachers"]
    await _fails("forbidden", dsl.grant([(*dsl.pupil_key(school.classes["oak"][0])[:2], device.user_id,
                                          device.identity.box.public)]))
    await dsl.approve()  # the DSL approves the account, its role and its class on its own device
    oak = next(c for c in dsl.directory["classes"] if c["label"] == "oak")
    assert b64e(device.user_id) in oak["teachers"]
    # the server's wall now lets a keyholder grant the class's pupil keys, and only those
    key_id, version, _ = dsl.pupil_key(school.classes["oak"][0])
    await dsl.grant([(key_id, version, device.user_id, device.identity.box.public)])
    ash_key, ash_version, _ = dsl.pupil_key(school.classes["ash"][0])
    await _fails("forbidden", dsl.grant([(ash_key, ash_version, device.user_id, device.identity.box.public)]))


@pytest.mark.asyncio
async def test_one_invitation_is_refused_for_staff_pending_people_and_unknown_classes(school) -> None:
    dsl = school.dsl.device

    async def invite(login: str, roles: list[str], classes: list[str]) -> dict:
        return await dsl.call(
            "POST", "/api/v1/admin/invitations", login=login, display_name="Fictional", roles=roles, classes=classes
        )

    await invite("eve@example.org", ["contributor"], [])
    cases = [
        ("eve@example.org", ["contributor"], [], {"login": "already_invited"}),
        ("teacher-oak", ["teacher"], [], {"login": "already_staff"}),
        ("fay@example.org", ["teacher"], ["willow"], {"classes": "unknown_class"}),
        ("fay@example.org", ["contributor"], ["oak"], {"classes": "classes_need_teacher"}),
    ]
    for login, roles, classes, fields in cases:
        response = await school.http.post(
            "/api/v1/admin/invitations",
            json={"login": login, "display_name": "Fictional", "roles": roles, "classes": classes},
            headers={"authorization": f"Bearer {dsl.token}"},
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_request"
        assert response.json()["error"]["fields"] == fields
    assert set(await _invitations(school)) == {"dsl", "teacher-oak", "teacher-ash", "eve@example.org"}


@pytest.mark.asyncio
async def test_an_invitation_works_once(school) -> None:  # type: ignore[no-untyped-def]
    made = await school.dsl.device.call(
        "POST",
        "/api/v1/admin/invitations",
        login="gus@example.org",
        display_name="Fictional Gus",
        roles=["contributor"],
    )
    registration, _ = await register(school.http, school.school_id, made["code"], PASSWORD)
    assert registration.totp_secret is None  # a contributor reads no concerns: no second factor
    await _fails("invalid_invitation", register(school.http, school.school_id, made["code"], PASSWORD))
    assert (await _invitations(school))["gus@example.org"]["status"] == "active"


# --- by CSV ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_good_staff_file_invites_everyone_and_each_can_join(school) -> None:  # type: ignore[no-untyped-def]
    dsl = school.dsl.device
    out = (await dsl.call("POST", "/api/v1/admin/invitations/import", csv=GOOD_CSV))["invitations"]
    assert [(i["login"], i["roles"], i["classes"]) for i in out] == [
        ("ada.teacher@example.org", ["teacher"], ["oak"]),
        ("bo.assistant@example.org", ["contributor"], []),
        ("cy.senco@example.org", ["sen", "teacher"], ["ash", "oak"]),
    ]
    assert len({i["code"] for i in out}) == 3
    joined = {}
    for item in out:
        registration, device = await register(school.http, school.school_id, item["code"], PASSWORD)
        joined[item["login"]] = device
        assert (registration.totp_secret is None) == (item["roles"] == ["contributor"])
    async with school.running.services.engine.connect() as conn:
        taught = {
            (bytes(r.class_id), bytes(r.user_id))
            for r in await conn.execute(select(ClassTeacher).where(ClassTeacher.school_id == school.school_id))
        }
    oak, ash = await _class_id(school, "oak"), await _class_id(school, "ash")
    cy = joined["cy.senco@example.org"].user_id
    assert {(oak, joined["ada.teacher@example.org"].user_id), (oak, cy), (ash, cy)} <= taught
    assert not any(user == joined["bo.assistant@example.org"].user_id for _, user in taught)
    listed = await _invitations(school)
    assert listed["cy.senco@example.org"]["status"] == "joined"
    assert "code" not in listed["cy.senco@example.org"]  # only the hash is kept


@pytest.mark.asyncio
async def test_a_staff_file_with_bad_rows_or_duplicates_changes_nothing(school) -> None:  # type: ignore[no-untyped-def]
    dsl = school.dsl.device
    await dsl.call(
        "POST", "/api/v1/admin/invitations/import", csv="name,email,roles\nFictional Hal,hal@example.org,sen\n"
    )
    before = await _invitations(school)
    text = (
        "name,email,roles,classes\n"
        "Fictional Ivy,ivy@example.org,teacher,oak\n"  # fine on its own
        "Fictional Hal Again,hal@example.org,sen,\n"  # a pending invitation
        "Fictional Oak Teacher,teacher-oak@example.org,teacher,maple\n"  # no such class
        "Fictional Ivy Twice,IVY@example.org,teacher,\n"  # twice in the file
    )
    response = await school.http.post(
        "/api/v1/admin/invitations/import", json={"csv": text}, headers={"authorization": f"Bearer {dsl.token}"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_staff_csv"
    assert error["fields"] == {"rows[5].email": "duplicate_in_file"}  # the file's own problems come first
    fixed = text.replace("Fictional Ivy Twice,IVY@example.org", "Fictional Jo,jo@example.org")
    response = await school.http.post(
        "/api/v1/admin/invitations/import", json={"csv": fixed}, headers={"authorization": f"Bearer {dsl.token}"}
    )
    assert response.json()["error"]["fields"] == {
        "rows[3].email": "already_invited",
        "rows[4].classes": "unknown_class",
    }
    staff = "name,email,roles\nFictional,teacher-oak,teacher\n"
    response = await school.http.post(
        "/api/v1/admin/invitations/import", json={"csv": staff}, headers={"authorization": f"Bearer {dsl.token}"}
    )
    assert response.json()["error"]["fields"] == {"rows[2].email": "invalid_email"}
    assert await _invitations(school) == before


@pytest.mark.asyncio
async def test_a_class_of_another_school_is_unknown(school) -> None:  # type: ignore[no-untyped-def]
    engine = school.running.services.engine
    other, _ = await create_school(engine, "Fictional Other Primary", "other-dsl", "Fictional Other DSL")
    async with engine.begin() as conn:
        await conn.execute(insert(SchoolClass).values(school_id=other, id=os.urandom(16), label="willow"))
    with pytest.raises(ApiFailure) as caught:
        await school.dsl.device.call(
            "POST",
            "/api/v1/admin/invitations/import",
            csv="name,email,roles,classes\nFictional,k@example.org,teacher,willow\n",
        )
    assert caught.value.code == "invalid_staff_csv"
    async with engine.connect() as conn:
        assert await conn.scalar(select(Invitation.login).where(Invitation.login == "k@example.org")) is None


@pytest.mark.asyncio
async def test_a_teacher_cannot_invite_or_import(school) -> None:  # type: ignore[no-untyped-def]
    teacher = school.members["teacher-oak"].device
    await _fails("forbidden", teacher.call("POST", "/api/v1/admin/invitations/import", csv=GOOD_CSV))
    await _fails("forbidden", teacher.call("GET", "/api/v1/admin/invitations"))


@pytest.mark.asyncio
async def test_the_first_good_code_confirms_the_authenticator(school) -> None:  # type: ignore[no-untyped-def]
    made = await school.dsl.device.call(
        "POST", "/api/v1/admin/invitations", login="lou@example.org", display_name="Fictional Lou", roles=["sen"]
    )
    registration, registered = await register(school.http, school.school_id, made["code"], PASSWORD)
    wrong = f"{(int(pyotp.TOTP(registration.totp_secret).now()) + 1) % 1_000_000:06d}"
    await _fails(
        "sign_in_failed",
        sign_in(school.http, school.school_id, "lou@example.org", PASSWORD, totp=wrong, device=registered),
    )
    assert (await _invitations(school))["lou@example.org"]["status"] == "joined"
    await sign_in(
        school.http,
        school.school_id,
        "lou@example.org",
        PASSWORD,
        totp_secret=registration.totp_secret,
        device=registered,
    )
    assert (await _invitations(school))["lou@example.org"]["status"] == "active"


# --- the import verb -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_import_verb_prints_one_join_link_each_or_every_problem(
    school, tmp_path, monkeypatch, capsys
) -> None:
    import asyncio

    monkeypatch.setenv("CAIRN_DATABASE_URL", school.running.services.settings.database_url)
    school_hex = school.school_id.hex()
    bad = tmp_path / "bad.csv"
    bad.write_text("name,email,roles,classes\nFictional Mo,mo@example.org,teacher,maple\n,x@example.org,cook,\n")
    assert await asyncio.to_thread(main, ["school", "import-staff", str(bad), "--school", school_hex]) == 1
    err = capsys.readouterr()
    assert "line 3, name: missing" in err.out and "line 3, roles: unknown_role" in err.out
    assert "nothing was imported" in err.err
    good = tmp_path / "good.csv"
    good.write_text(GOOD_CSV, encoding="utf-8")
    argv = ["school", "import-staff", str(good), "--school", school_hex, "--link-base", "https://cairn.example/"]
    assert await asyncio.to_thread(main, argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("invited 3 staff")
    login, link = lines[0].split("\t")
    assert login == "ada.teacher@example.org" and link.startswith(f"https://cairn.example/#join={school_hex}.")
    code = link.rsplit(".", 1)[-1]
    registration, device = await register(school.http, school.school_id, code, PASSWORD)
    assert device.login == "ada.teacher@example.org"
    assert await asyncio.to_thread(main, ["school", "import-staff", str(good), "--school", "00" * 16]) == 1
    assert "no school" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_a_lost_or_expired_link_is_renewed_and_the_old_one_stops_working(school) -> None:  # type: ignore[no-untyped-def]
    dsl = school.dsl.device
    first = await dsl.call(
        "POST",
        "/api/v1/admin/invitations",
        login="max@example.org",
        display_name="Fictional Max",
        roles=["teacher"],
        classes=["ash"],
    )
    async with school.running.services.engine.begin() as conn:  # as if 14 days had passed
        await conn.execute(update(Invitation).where(Invitation.login == "max@example.org").values(expires_ms=1))
    assert (await _invitations(school))["max@example.org"]["status"] == "expired"
    renewed = await dsl.call("POST", "/api/v1/admin/invitations/renew", login="max@example.org")
    assert (renewed["login"], renewed["roles"], renewed["classes"]) == ("max@example.org", ["teacher"], ["ash"])
    assert (await _invitations(school))["max@example.org"]["status"] == "pending"
    await _fails("invalid_invitation", register(school.http, school.school_id, first["code"], PASSWORD))
    _, device = await register(school.http, school.school_id, renewed["code"], PASSWORD)
    assert device.login == "max@example.org"
    await _fails("not_found", dsl.call("POST", "/api/v1/admin/invitations/renew", login="max@example.org"))
    await _fails("not_found", dsl.call("POST", "/api/v1/admin/invitations/renew", login="nobody@example.org"))


@pytest.mark.asyncio
async def test_malformed_invitations_are_refused_field_by_field(school) -> None:  # type: ignore[no-untyped-def]
    headers = {"authorization": f"Bearer {school.dsl.device.token}"}
    for body, field in [
        ({"login": "nia@example.org", "display_name": "Fictional", "roles": "teacher", "classes": ["oak"]}, "roles"),
        ({"login": "nia@example.org", "display_name": "Fictional", "roles": ["teacher"], "classes": "oak"}, "classes"),
        ({"login": "nia@example.org", "display_name": "Fictional", "roles": ["teacher"], "classes": [""]}, "classes"),
    ]:
        response = await school.http.post("/api/v1/admin/invitations", json=body, headers=headers)
        assert response.status_code == 400, response.text
        assert field in response.json()["error"]["fields"]
    for body in [{"csv": ""}, {"csv": 7}, {"csv": "x" * (512 * 1024 + 1)}, {"csv": GOOD_CSV, "extra": 1}]:
        response = await school.http.post("/api/v1/admin/invitations/import", json=body, headers=headers)
        assert response.status_code in (400, 413), response.text
    assert "nia@example.org" not in await _invitations(school)
