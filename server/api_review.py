"""The review side's audit trail (docs/PROTOCOL.md 10.5): a reader's device reports that its person opened a
concern or printed a pupil's chronology, and learns which concerns that person already opened on their other
devices (so "unread" follows the person, not the device).

Targets are pseudonymous ids the server already holds (a concern id, a pupil id), so the server learns
nothing about content; it records who, which device and when (its own clock). Only the roles that read
concerns may write or read these entries, and each person reads only their own.
"""

from __future__ import annotations

import re

from sqlalchemy import insert, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._body import Body
from .auth import ApiRoute, principal
from .errors import ApiError
from .models import READING_ROLES, AuditEvent
from .storage import now_ms

__all__ = ["ROUTES", "REVIEW_ACTIONS"]

REVIEW_ACTIONS = frozenset({"concern.opened", "chronology.printed"})
MAX_EVENTS = 100
PAGE = 1000
MAX_ENTRY = 2**31 - 1  # audit entries are numbered by a 32-bit column (PostgreSQL refuses a larger number)
HEX_ID = re.compile(r"[0-9a-f]{32}")
READERS = tuple(sorted(READING_ROLES))


async def record_audit(request: Request) -> Response:
    """Record what this person did on a reader device: ``{"events": [{"action", "target"}, ...]}``."""
    p = principal(request)
    body = await Body.read(request, {"events"})
    rows = []
    for n, item in enumerate(body.list("events", MAX_EVENTS)):
        if not isinstance(item, dict) or set(item) != {"action", "target"}:
            body.errors[f"events[{n}]"] = "invalid"
        elif not isinstance(item["action"], str) or item["action"] not in REVIEW_ACTIONS:
            body.errors[f"events[{n}].action"] = "invalid"
        elif not isinstance(item["target"], str) or not HEX_ID.fullmatch(item["target"]):
            body.errors[f"events[{n}].target"] = "invalid"
        else:
            rows.append(item)
    body.done()
    at = now_ms()
    async with request.app.state.services.engine.begin() as conn:
        await conn.execute(
            insert(AuditEvent),
            [
                {
                    "school_id": p.school_id,
                    "at_ms": at,
                    "actor_user": p.user_id,
                    "actor_device": p.device_id,
                    "action": r["action"],
                    "target": r["target"],
                }
                for r in rows
            ],
        )
    return JSONResponse({"recorded": len(rows)}, status_code=201)


async def opened(request: Request) -> Response:
    """The concerns this person opened (on any device) after the entry ``after``, oldest first, a page at a time."""
    p = principal(request)
    unknown = set(request.query_params) - {"after"}
    raw = request.query_params.get("after", "0")
    if unknown or not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or int(raw) > MAX_ENTRY:
        fields = {name: "unknown_field" for name in unknown} or {"after": "invalid"}
        raise ApiError("invalid_request", "'after' is a non-negative integer from an earlier answer", fields)
    async with request.app.state.services.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(AuditEvent.id, AuditEvent.target, AuditEvent.at_ms)
                .where(
                    AuditEvent.school_id == p.school_id,
                    AuditEvent.actor_user == p.user_id,
                    AuditEvent.action == "concern.opened",
                    AuditEvent.id > int(raw),
                )
                .order_by(AuditEvent.id)
                .limit(PAGE + 1)
            )
        ).all()
    page = rows[:PAGE]
    return JSONResponse(
        {
            "opened": [{"id": r.id, "target": r.target, "at_ms": r.at_ms} for r in page],
            "next": page[-1].id if page else int(raw),
            "done": len(rows) <= PAGE,
        }
    )


ROUTES: list[ApiRoute] = [
    ApiRoute("/api/v1/audit", "POST", record_audit, READERS),
    ApiRoute("/api/v1/audit/opened", "GET", opened, READERS),
]
