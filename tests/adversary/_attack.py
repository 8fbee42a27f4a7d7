"""What every attack checks: that it was refused with the code of the defence it covers, and that nothing
changed. Each check fails with a message starting ``the attack got through``, which is what
test_defences_matter.py expects to see once it takes a defence away."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import httpx
from sqlalchemy import select

from crypto.directory import DirectoryContent, SignedDirectory, _sign, directory_signing_key, read_directory
from server.models import (
    AccessRequest,
    Account,
    ClassPupil,
    ClassTeacher,
    Device,
    DirectoryVersion,
    EntryGrant,
    Envelope,
    Grant,
    HeldEnvelope,
    Pupil,
    ReaderKey,
    RotationDue,
    SchoolClass,
)
from sync.device import ApiFailure
from sync.protocol import b64e

GOT_THROUGH = "the attack got through"
_TABLES = (Account, Device, ReaderKey, Grant, Pupil, SchoolClass, ClassPupil, ClassTeacher, DirectoryVersion,
           Envelope, EntryGrant, HeldEnvelope, RotationDue)
_VOLATILE = {"last_seen_ms", "totp_last_step"}  # a sighting and a used one-time code are not changes


async def snapshot(school, *, requests: bool = True) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def]
    """Every row of the school that decides or holds who reads (and, unless ``requests`` is False, the
    admins' requests), so that a test can say "nothing changed" of all of them at once."""
    out = {}
    tables = _TABLES + ((AccessRequest,) if requests else ())
    async with school.running.services.engine.connect() as conn:
        for model in tables:
            columns = [c for c in model.__table__.columns if c.name not in _VOLATILE]
            rows = (await conn.execute(select(*columns).where(model.__table__.c.school_id == school.school_id))).all()
            out[model.__tablename__] = sorted((tuple(r) for r in rows), key=repr)
    return out


def unchanged(before: dict, after: dict) -> None:
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"{GOT_THROUGH}: these tables changed: {changed}"


async def refused(code: str, call) -> ApiFailure:  # type: ignore[no-untyped-def]
    """Await ``call`` (an API call) and require the refusal ``code``."""
    try:
        answer = await call
    except ApiFailure as exc:
        assert exc.code == code, f"{GOT_THROUGH} this wall: refused with {exc.code!r}, not {code!r}: {exc}"
        return exc
    raise AssertionError(f"{GOT_THROUGH}: accepted ({repr(answer)[:200]})")


def keys_of(device, purpose: str) -> set[tuple[bytes, int]]:  # type: ignore[no-untyped-def]
    """The reader key versions of ``purpose`` whose private halves ``device`` holds."""
    from sync.protocol import b64d

    listed = {(b64d(k["id"], "id"), k["version"]): k["purpose"] for k in device.directory.get("reader_keys", [])}
    return {k for k in device.reader_keys if listed.get(k) == purpose}


def signing_key(device):  # type: ignore[no-untyped-def]
    """The school signing key a keyholder device holds: what a hostile server that got hold of it (from a
    leaver who kept it, or a device it compromised) would sign with."""
    return next(
        directory_signing_key(pair) for pair in device.reader_keys.values()
        if directory_signing_key(pair).public == device.pinned_signing_pk
    )


def next_version(held: SignedDirectory, key, content: DirectoryContent, approvals=(), *, version=None,  # type: ignore[no-untyped-def]
                 prev_hash=None) -> bytes:
    """A version after ``held`` signed with ``key``, made the way a hostile signer makes one (no checks)."""
    return _sign(key, school_id=held.school_id, version=version or held.version + 1,
                 prev_hash=prev_hash or held.hash, created_ms=held.created_ms + 1, next_signing_pk=key.public,
                 content=content, approvals=approvals)


class HostileServer(httpx.AsyncBaseTransport):
    """A server between a client and the real one: answers pass through, except those ``rewrite`` changes
    (``rewrite(request, json) -> json``, None to pass it) or answers itself (``answer(request) -> json``);
    every request the client sends is kept, to see what it sealed."""

    def __init__(self, rewrite: Callable[[httpx.Request, dict], dict | None],
                 answer: Callable[[httpx.Request], dict | None] | None = None) -> None:
        self.inner, self.rewrite, self.answer = httpx.AsyncHTTPTransport(), rewrite, answer
        self.sent: list[tuple[str, str, dict]] = []

    def posted(self, path: str) -> list[dict]:
        """The bodies the client sent to ``path``: what it sealed, signed or asked for."""
        return [body for method, p, body in self.sent if method == "POST" and p == path]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent.append((request.method, request.url.path, json.loads(request.content) if request.content else {}))
        if self.answer is not None:  # the hostile server answers this itself: it stores whatever it is sent
            own = self.answer(request)
            if own is not None:
                return httpx.Response(201, json=own)
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if response.status_code < 400 and response.content:
            rewritten = self.rewrite(request, response.json())
            if rewritten is not None:
                return httpx.Response(response.status_code, json=rewritten)
        return httpx.Response(response.status_code, content=response.content,
                              headers={"content-type": response.headers.get("content-type", "application/json")})

    async def aclose(self) -> None:
        await self.inner.aclose()


def on(device, transport: HostileServer, base: str):  # type: ignore[no-untyped-def]
    """``device`` as it would be talking to the hostile server (same state, another connection)."""
    http = httpx.AsyncClient(base_url=base, transport=transport, timeout=30)
    return dataclasses.replace(device, http=http), http


def served_version(served: dict) -> SignedDirectory:
    from sync.protocol import b64d

    return read_directory(b64d(served["signed"], "signed"))


__all__ = ["GOT_THROUGH", "snapshot", "unchanged", "refused", "keys_of", "signing_key", "next_version",
           "HostileServer", "on", "served_version", "b64e"]
