"""The review side's audit routes (server/api_review.py): a reader records opening a concern or printing a
chronology; each person reads back only their own opens, from any of their devices; contributors and bad
input are refused with a stable code and change nothing."""

from __future__ import annotations

import os

import httpx
import pytest
from sqlalchemy import func, select, update

from server.models import Account, AuditEvent
from sync.device import ApiFailure, sign_in
from tests.server.harness import PASSWORD

pytestmark = pytest.mark.asyncio


async def _count(school) -> int:  # type: ignore[no-untyped-def]
    async with school.running.services.engine.connect() as conn:
        return int(
            await conn.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action.in_(["concern.opened", "chronology.printed"]))
            )
        )


async def test_opens_are_audited_and_follow_the_person_to_another_device(school) -> None:  # type: ignore[no-untyped-def]
    dsl = school.dsl.device
    a, b, pupil = os.urandom(16).hex(), os.urandom(16).hex(), os.urandom(16).hex()
    out = await dsl.call(
        "POST",
        "/api/v1/audit",
        events=[
            {"action": "concern.opened", "target": a},
            {"action": "chronology.printed", "target": pupil},
            {"action": "concern.opened", "target": b},
        ],
    )
    assert out == {"recorded": 3}
    async with school.running.services.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(AuditEvent.action, AuditEvent.target, AuditEvent.actor_user, AuditEvent.actor_device)
                .where(AuditEvent.action.in_(["concern.opened", "chronology.printed"]))
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [(r.action, r.target) for r in rows] == [
        ("concern.opened", a),
        ("chronology.printed", pupil),
        ("concern.opened", b),
    ]
    assert all(bytes(r.actor_user) == dsl.user_id and bytes(r.actor_device) == dsl.device_id for r in rows)

    # the same person on a second device learns what they opened; the print is not an "open". (The test
    # forgets the last one-time code used, rather than wait 30 s for the next one.)
    async with school.running.services.engine.begin() as conn:
        await conn.execute(update(Account).where(Account.id == dsl.user_id).values(totp_last_step=0))
    other = await sign_in(school.http, school.school_id, "dsl", PASSWORD, totp_secret=school.dsl.totp)
    page = await other.call("GET", "/api/v1/audit/opened?after=0")
    assert [o["target"] for o in page["opened"]] == [a, b]
    assert page["done"] is True
    again = await other.call("GET", f"/api/v1/audit/opened?after={page['next']}")
    assert again == {"opened": [], "next": page["next"], "done": True}


async def test_each_reader_sees_only_their_own_opens(school) -> None:  # type: ignore[no-untyped-def]
    teacher = school.members["teacher-oak"].device
    mine = os.urandom(16).hex()
    await school.dsl.device.call(
        "POST", "/api/v1/audit", events=[{"action": "concern.opened", "target": os.urandom(16).hex()}]
    )
    await teacher.call("POST", "/api/v1/audit", events=[{"action": "concern.opened", "target": mine}])
    page = await teacher.call("GET", "/api/v1/audit/opened")
    assert [o["target"] for o in page["opened"]] == [mine]


async def test_contributors_cannot_write_or_read_the_review_audit(school) -> None:  # type: ignore[no-untyped-def]
    contributor = (await school.invite("lunchtime", ["contributor"])).device
    before = await _count(school)
    with pytest.raises(ApiFailure) as caught:
        await contributor.call("POST", "/api/v1/audit", events=[{"action": "concern.opened", "target": "ab" * 16}])
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    with pytest.raises(ApiFailure) as caught:
        await contributor.call("GET", "/api/v1/audit/opened")
    assert caught.value.code == "forbidden"
    async with httpx.AsyncClient(base_url=school.running.base) as anonymous:
        response = await anonymous.post("/api/v1/audit", json={"events": []})
    assert response.status_code == 401
    assert await _count(school) == before


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ([], "events"),
        ([{"action": "concern.deleted", "target": "ab" * 16}], "events[0].action"),
        ([{"action": "concern.opened", "target": "AB" * 16}], "events[0].target"),
        ([{"action": "concern.opened", "target": "Pupil Name"}], "events[0].target"),
        ([{"action": "concern.opened"}], "events[0]"),
        ([{"action": "concern.opened", "target": "ab" * 16, "note": "x"}], "events[0]"),
        ([{"action": "concern.opened", "target": "ab" * 16}] * 101, "events"),
    ],
)
async def test_bad_audit_input_is_refused_and_changes_nothing(school, events, field) -> None:  # type: ignore[no-untyped-def]
    before = await _count(school)
    with pytest.raises(ApiFailure) as caught:
        await school.dsl.device.call("POST", "/api/v1/audit", events=events)
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
    assert await _count(school) == before


@pytest.mark.parametrize("query", ["after=-1", "after=x", "after=1e3", "since=3"])
async def test_a_bad_cursor_is_refused(school, query) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiFailure) as caught:
        await school.dsl.device.call("GET", f"/api/v1/audit/opened?{query}")
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
