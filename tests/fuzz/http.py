"""HTTP requests for every route of the API (docs/PROTOCOL.md 10.1), hostile or near-valid, and what every
answer must be: never a 5xx, always ``{"error": {code, detail, fields?}}`` with a code and status of 10.2
for a refusal, ``invalid_request`` naming any unknown field, and (checked by the tests) nothing changed.

Bodies are drawn per route from the route's own fields: each field plausible (the right type and length,
an id the school knows or a random one) or junk, some fields missing, extra ones added; or the body is
not an object, not JSON, or not UTF-8. Signed-in routes are called with the DSL's session (admin and
safeguarding), so the checks run past authorisation into each handler. Ids that would end the fuzzing
session itself (the DSL's own account and device) are never drawn where a request would act on them.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx
from hypothesis import strategies as st

from crypto.bundle import SEALED_BYTES
from crypto.grant import GRANT_BYTES
from server.api import ROUTES
from server.errors import API_ERROR_CODES
from sync.protocol import b64e

from .junk import TEXT, b64, b64_of, json_values, junk
from .staff import staff_files

__all__ = ["Request", "requests", "send", "check_response", "SKIPPED_ROUTES", "ROUTE_KEYS"]

# sign-out ends the session the fuzzing runs on, and takes no body
SKIPPED_ROUTES = {("POST", "/api/v1/sign-out")}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: bytes | None
    signed_in: bool
    authorization: str | None  # when not signed in: a header of its own, or none
    unknown_field: str | None  # a field the route does not know, when the body is an object holding one
    not_an_object: bool  # the body is JSON, but not an object


def _ids(known: dict[str, list[bytes]], *kinds: str) -> st.SearchStrategy[str]:
    """A base64url id: one the school knows (of ``kinds``), or random, or a near miss, or junk."""
    pool = [i for kind in kinds for i in known.get(kind, [])]
    choices = [b64(16)]
    if pool:
        choices.insert(0, st.sampled_from(pool).map(b64e))
    return st.one_of(*choices)


def _role_lists() -> st.SearchStrategy[object]:
    roles = st.sampled_from(["contributor", "teacher", "sen", "safeguarding", "admin", "head", ""])
    return st.one_of(st.lists(roles, max_size=4), junk)


def _fields(known: dict[str, list[bytes]]) -> dict[tuple[str, str], dict[str, st.SearchStrategy[Any]]]:
    """Each POST route's fields, with a plausible value for each (b64 and junk both give near misses)."""
    school = _ids(known, "school")
    login = st.one_of(st.sampled_from(["dsl", "teacher-oak", "lunch-revoked", "nobody@school.example"]), TEXT)
    totp = st.one_of(st.from_regex(r"[0-9]{6}", fullmatch=True), st.just("١٢٣٤٥٦"), TEXT)
    key_item = st.fixed_dictionaries(
        {"id": _ids(known, "reader_keys"), "version": st.one_of(st.integers(0, 3), junk),
         "purpose": st.one_of(st.sampled_from(["group:fuzz", "roster:staff", "signing:directory", "pupil"]), TEXT),
         "public_key": b64(32)},
    )
    class_item = st.fixed_dictionaries(
        {"id": st.one_of(b64(16), _ids(known, "classes")),
         "label": st.one_of(st.sampled_from(["Year 9 Fuzz", "oak"]), TEXT, junk),
         "pupils": st.one_of(st.lists(_ids(known, "pupils"), max_size=3), junk),
         "teachers": st.one_of(st.lists(_ids(known, "teachers"), max_size=2), junk)},
    )
    scope = st.one_of(st.sampled_from(["school", "class", "group"]), junk)
    envelopes = st.one_of(st.lists(b64_of(st.integers(0, 400)), max_size=3), junk)
    return {
        ("POST", "/api/v1/sign-in/start"): {"school_id": school, "login": login},
        ("POST", "/api/v1/sign-in/finish"): {"challenge_id": b64(16), "signature": b64(64), "totp": totp,
                                             "device_id": b64(16), "device_pk": b64(32)},
        ("POST", "/api/v1/devices/certify"): {"cert": b64(153)},
        ("POST", "/api/v1/devices/revoke"): {"device_id": _ids(known, "devices")},
        ("POST", "/api/v1/register"): {
            "school_id": school, "code": st.one_of(st.from_regex(r"[0-9a-f]{40}", fullmatch=True), TEXT),
            "kdf_params": b64(26), "login_pk": b64(32), "identity_x25519_pk": b64(32),
            "identity_ed25519_pk": b64(32), "bundle": b64(SEALED_BYTES), "recovery_bundle": b64(SEALED_BYTES),
            "recovery_auth_pk": b64(32), "device_id": b64(16), "device_pk": b64(32), "device_cert": b64(153)},
        ("POST", "/api/v1/keys"): {"keys": st.one_of(st.lists(st.one_of(key_item, junk), max_size=3), junk)},
        ("POST", "/api/v1/pupils"): {"pupils": st.one_of(st.lists(st.one_of(
            st.fixed_dictionaries({"id": b64(16), "reader_key": st.one_of(key_item, junk)}), junk), max_size=3),
            junk)},
        ("POST", "/api/v1/grants"): {"grants": st.one_of(st.lists(b64(GRANT_BYTES), max_size=3), junk)},
        ("POST", "/api/v1/roster"): {"entries": envelopes},
        ("POST", "/api/v1/admin/invitations"): {
            "login": st.one_of(st.from_regex(r"[a-z]{1,8}@school\.example", fullmatch=True), TEXT),
            "display_name": st.one_of(st.just("Ms Fictional Fuzz"), TEXT, junk), "roles": _role_lists(),
            "classes": st.one_of(st.lists(st.one_of(st.sampled_from(["oak", "ash"]), TEXT), max_size=3), junk)},
        ("POST", "/api/v1/admin/classes"): {"classes": st.one_of(st.lists(st.one_of(class_item, junk), max_size=3),
                                                                  junk)},
        ("POST", "/api/v1/admin/invitations/import"): {"csv": st.one_of(staff_files(), junk)},
        ("POST", "/api/v1/admin/invitations/renew"): {"login": login},
        ("POST", "/api/v1/admin/accounts/reset"): {"user_id": _ids(known, "dsl")},
        ("POST", "/api/v1/recover/start"): {"school_id": school, "login": login},
        ("POST", "/api/v1/recover/finish"): {
            "challenge_id": b64(16), "signature": b64(64), "kdf_params": b64(26), "login_pk": b64(32),
            "bundle": b64(SEALED_BYTES), "totp": totp, "device_id": b64(16), "device_pk": b64(32)},
        ("POST", "/api/v1/admin/class-teachers"): {"class_id": _ids(known, "classes"),
                                                   "user_id": _ids(known, "teachers")},
        ("POST", "/api/v1/admin/roles"): {"user_id": _ids(known, "teachers"), "roles": _role_lists()},
        ("POST", "/api/v1/admin/leave"): {"user_id": b64(16), "scope": scope, "class_id": _ids(known, "classes"),
                                          "role": st.one_of(st.sampled_from(["teacher", "sen"]), junk)},
        ("POST", "/api/v1/keys/rotate"): {
            "reader_key_id": _ids(known, "reader_keys"), "version": st.one_of(st.integers(0, 4), junk),
            "public_key": b64(32), "grants": st.one_of(st.lists(b64(GRANT_BYTES), max_size=2), junk)},
        ("POST", "/api/v1/approvals"): {
            "member_id": _ids(known, "teachers"), "purpose": st.one_of(st.just("group:sen"), TEXT, junk),
            "decision": st.one_of(st.sampled_from(["approve", "decline"]), TEXT, junk)},
        ("POST", "/api/v1/held/decide"): {"envelope_id": b64(16),
                                          "decision": st.one_of(st.sampled_from(["accept", "reject"]), junk)},
        ("POST", "/api/v1/audit"): {"events": st.one_of(st.lists(st.one_of(st.fixed_dictionaries({
            "action": st.one_of(st.sampled_from(["concern.opened", "chronology.printed"]), junk),
            "target": st.one_of(st.from_regex(r"[0-9a-f]{32}", fullmatch=True), junk)}), junk), max_size=3), junk)},
        ("POST", "/api/v1/directory"): {"signed": b64_of(st.integers(0, 600))},
    }


QUERIES = {
    "/api/v1/directory": "since",
    "/api/v1/audit/opened": "after",
}
QUERY_VALUES = st.one_of(st.integers(0, 10**20).map(str), st.sampled_from(["²", "٣", "-1", "1e3", "", " 1"]), TEXT)


@st.composite
def _body(draw: st.DrawFn, fields: dict[str, st.SearchStrategy[Any]]) -> tuple[bytes, str | None, bool]:
    shape = draw(st.sampled_from(["object"] * 12 + ["other_json", "not_json", "not_utf8", "empty", "deep"]))
    if shape == "other_json":
        return json.dumps(draw(json_values)).encode(), None, True
    if shape == "not_json":
        return draw(TEXT).encode("utf-8", "surrogatepass"), None, False
    if shape == "not_utf8":
        return b'{"x": "\xff\xfe"}', None, False
    if shape == "empty":
        return b"", None, False
    if shape == "deep":
        depth = draw(st.integers(500, 100_000))
        return b'{"a":' * depth + b"1" + b"}" * depth, None, False
    body: dict[str, object] = {}
    for name, strategy in fields.items():
        if draw(st.integers(0, 7)):  # now and then a field is missing
            body[name] = draw(st.one_of(strategy, strategy, strategy, junk))
    unknown = None
    if draw(st.integers(0, 5)) == 0:
        unknown = draw(st.one_of(st.sampled_from(["force", "admin", "school", "__proto__", "id"]), TEXT))
        if unknown not in fields:
            body[unknown] = draw(junk)
        else:
            unknown = None
    return json.dumps(body, allow_nan=True).encode(), unknown, False


ROUTE_KEYS = sorted((method, path, roles) for path, method, _, roles in ROUTES if (method, path) not in SKIPPED_ROUTES)
TOKENS = st.one_of(st.text(alphabet=st.characters(max_codepoint=255, exclude_categories=("Cc",)), max_size=50),
                   st.sampled_from(["", "Bearer", "Basic abc", "Bearer é", "Bearer ÿÿÿ"]))


def requests(known: dict[str, list[bytes]], route: tuple[str, str] | None = None) -> st.SearchStrategy[Request]:
    """A request to ``route`` (any route but SKIPPED_ROUTES when None), signed in as the DSL, or with no
    session, or with a header that is not a session at all (any Latin-1 text: HTTP headers are bytes)."""
    fields = _fields(known)
    missing = [(m, p) for m, p, _ in ROUTE_KEYS if m == "POST" and (m, p) not in fields]
    assert not missing, f"fuzz the new routes too: {missing}"
    routes = [r for r in ROUTE_KEYS if route is None or r[:2] == route]
    assert routes, f"no such route {route}"

    @st.composite
    def one(draw: st.DrawFn) -> Request:
        method, path, roles = draw(st.sampled_from(routes))
        signed_in = draw(st.integers(0, 9)) > 0 if roles is None else draw(st.integers(0, 19)) > 0
        authorization = None if signed_in or draw(st.booleans()) else draw(TOKENS)
        query: dict[str, str] = {}
        if path in QUERIES and draw(st.booleans()):
            query[QUERIES[path]] = draw(QUERY_VALUES)
        if draw(st.integers(0, 9)) == 0:
            query[draw(TEXT)] = draw(QUERY_VALUES)
        if method == "GET":
            return Request(method, path, query, None, signed_in, authorization, None, False)
        body, unknown, other = draw(_body(fields[(method, path)]))
        return Request(method, path, query, body, signed_in, authorization, unknown, other)

    return one()


def send(http: httpx.Client, request: Request, token: str) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if request.signed_in:
        headers["authorization"] = f"Bearer {token}"
    elif request.authorization is not None:
        # (h11 sends no header value with spaces at its ends; the server never sees one)
        headers["authorization"] = request.authorization.strip(" \t").encode("latin-1")  # type: ignore[assignment]
    query = urllib.parse.urlencode(request.query, errors="surrogatepass")  # bytes no UTF-8 decoder accepts, too
    url = f"{request.path}?{query}" if query else request.path
    return http.request(request.method, url, content=request.body, headers=headers)


def check_response(request: Request, response: httpx.Response) -> str:
    """Never a 5xx; a refusal is one error object with a documented code and its status; a body that is
    not an object, or holds an unknown field, is invalid_request naming it (once past authentication)."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code < 400:
        return "ok"
    error = response.json()["error"]
    assert set(error) <= {"code", "detail", "fields"} and isinstance(error["detail"], str), error
    code = error["code"]
    assert code in API_ERROR_CODES and API_ERROR_CODES[code][0] == response.status_code, (code, response.status_code)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in error.get("fields", {}).items()), error
    past_auth = code not in ("unauthenticated", "forbidden", "payload_too_large")
    if past_auth and request.unknown_field is not None:
        assert code == "invalid_request" and error["fields"].get(request.unknown_field) == "unknown_field", error
    if past_auth and request.not_an_object:
        assert code == "invalid_request", error
    return code
