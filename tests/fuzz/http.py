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
from crypto.entry_grant import ENTRY_GRANT_BYTES
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


class _Values:
    """Field values for one body: valid ones (the right type and length, an id the school knows or a fresh
    random one) and, unless ``clean``, near misses and junk among them. A clean body reaches past every
    check of the body's shape into the handler's own checks, its storage and its conflicts."""

    def __init__(self, known: dict[str, list[bytes]], clean: bool) -> None:
        self.known, self.clean = known, clean

    def pick(self, good: st.SearchStrategy[Any], *bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return good if self.clean else st.one_of(good, good, *bad, junk)

    def bytes(self, length: int) -> st.SearchStrategy[Any]:
        return self.pick(b64_of(st.just(length)), b64(length))

    def ids(self, *kinds: str) -> st.SearchStrategy[Any]:
        """One the school knows (of ``kinds``), or a fresh random one; near misses unless clean."""
        pool = [i for kind in kinds for i in self.known.get(kind, [])]
        fresh = b64_of(st.just(16))
        return self.pick(st.one_of(st.sampled_from(pool).map(b64e), fresh) if pool else fresh, b64(16))

    def text(self, *good: str, pattern: str | None = None) -> st.SearchStrategy[Any]:
        plausible = st.sampled_from(good) if good else st.text(st.characters(categories=["L", "N"]), min_size=1,
                                                               max_size=20)
        if pattern:
            plausible = st.one_of(plausible, st.from_regex(pattern, fullmatch=True))
        return self.pick(plausible, TEXT)

    def items(self, item: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[Any]:
        """A list of ``item``; now and then naming one twice (a database refuses it, after what came before)."""
        some = st.lists(item, min_size=1, max_size=max_size)
        twice = some.map(lambda found: found + found[:1])
        return self.pick(st.one_of(some, some, twice), st.lists(st.one_of(item, junk), max_size=max_size))

    def number(self, low: int, high: int) -> st.SearchStrategy[Any]:
        return self.pick(st.integers(low, high), st.integers(low - 2, high + 2))

    def roles(self) -> st.SearchStrategy[Any]:
        roles = st.sampled_from(["contributor", "teacher", "sen", "safeguarding", "admin"])
        return self.pick(st.lists(roles, min_size=1, max_size=3), st.lists(st.one_of(roles, TEXT), max_size=4))


def _fields(v: _Values) -> dict[tuple[str, str], dict[str, st.SearchStrategy[Any]]]:
    """Each POST route's fields, each with its values."""
    school = v.ids("school")
    login = v.text("dsl", "teacher-oak", "lunch-revoked", "nobody@school.example")
    totp = v.pick(st.from_regex(r"[0-9]{6}", fullmatch=True), st.just("١٢٣٤٥٦"))
    key_item = st.fixed_dictionaries(
        {"id": v.ids("reader_keys"), "version": v.number(1, 3),
         "purpose": v.text("group:fuzz", "roster:staff", "signing:directory", "pupil", pattern=r"group:[a-z]{1,8}"),
         "public_key": v.bytes(32)},
    )
    class_item = st.fixed_dictionaries(
        {"id": v.ids("classes"), "label": v.text("Year 9 Fuzz", "oak"), "pupils": v.items(v.ids("pupils")),
         "teachers": v.items(v.ids("teachers"))},
    )
    audit_item = st.fixed_dictionaries(
        {"action": v.text("concern.opened", "chronology.printed"),
         "target": v.pick(st.from_regex(r"[0-9a-f]{32}", fullmatch=True))},
    )
    sealed = v.pick(b64_of(st.integers(0, 400)))
    return {
        ("POST", "/api/v1/sign-in/start"): {"school_id": school, "login": login},
        ("POST", "/api/v1/sign-in/finish"): {"challenge_id": v.bytes(16), "signature": v.bytes(64), "totp": totp,
                                             "device_id": v.bytes(16), "device_pk": v.bytes(32)},
        ("POST", "/api/v1/devices/certify"): {"cert": v.bytes(153)},
        ("POST", "/api/v1/devices/revoke"): {"device_id": v.ids("devices")},
        ("POST", "/api/v1/devices/delivery-key"): {"public_key": v.bytes(32)},
        ("POST", "/api/v1/register"): {
            "school_id": school, "code": v.pick(st.from_regex(r"[0-9a-f]{40}", fullmatch=True)),
            "kdf_params": v.bytes(26), "login_pk": v.bytes(32), "identity_x25519_pk": v.bytes(32),
            "identity_ed25519_pk": v.bytes(32), "identity_binding": v.bytes(64), "bundle": v.bytes(SEALED_BYTES),
            "recovery_bundle": v.bytes(SEALED_BYTES), "recovery_auth_pk": v.bytes(32), "device_id": v.bytes(16),
            "device_pk": v.bytes(32), "device_cert": v.bytes(153)},
        ("POST", "/api/v1/keys"): {"keys": v.items(key_item), "grants": v.items(v.bytes(GRANT_BYTES), 2)},
        ("POST", "/api/v1/pupils"): {"pupils": v.items(st.fixed_dictionaries({"id": v.ids("pupils"),
                                                                              "reader_key": key_item})),
                                     "grants": v.items(v.bytes(GRANT_BYTES), 2)},
        ("POST", "/api/v1/grants"): {"grants": v.items(v.bytes(GRANT_BYTES))},
        ("POST", "/api/v1/entry-grants"): {"grants": v.items(v.bytes(ENTRY_GRANT_BYTES))},
        ("POST", "/api/v1/roster"): {"entries": v.items(sealed)},
        ("POST", "/api/v1/admin/invitations"): {
            "login": v.text(pattern=r"[a-z]{1,8}@school\.example"), "display_name": v.text("Ms Fictional Fuzz"),
            "roles": v.roles(), "classes": v.items(v.text("oak", "ash")), "reason": v.text("new this term")},
        ("POST", "/api/v1/admin/classes"): {"classes": v.items(class_item)},
        ("POST", "/api/v1/admin/invitations/import"): {"csv": v.pick(staff_files())},
        ("POST", "/api/v1/admin/invitations/renew"): {"login": login},
        ("POST", "/api/v1/admin/accounts/reset"): {"user_id": v.ids("dsl")},
        ("POST", "/api/v1/recover/start"): {"school_id": school, "login": login},
        ("POST", "/api/v1/recover/finish"): {
            "challenge_id": v.bytes(16), "signature": v.bytes(64), "kdf_params": v.bytes(26),
            "login_pk": v.bytes(32), "bundle": v.bytes(SEALED_BYTES), "totp": totp, "device_id": v.bytes(16),
            "device_pk": v.bytes(32)},
        ("POST", "/api/v1/account/password/start"): {},
        ("POST", "/api/v1/account/password"): {
            "challenge_id": v.bytes(16), "signature": v.bytes(64), "kdf_params": v.bytes(26),
            "login_pk": v.bytes(32), "bundle": v.bytes(SEALED_BYTES), "totp": totp},
        ("POST", "/api/v1/admin/class-teachers"): {"class_id": v.ids("classes"), "user_id": v.ids("teachers"),
                                                   "reason": v.text("covering")},
        ("POST", "/api/v1/admin/roles"): {"user_id": v.ids("teachers"), "roles": v.roles(), "reason": v.text("SENCo")},
        ("POST", "/api/v1/admin/leave"): {"user_id": v.bytes(16), "scope": v.text("school", "class", "group"),
                                          "class_id": v.ids("classes"), "role": v.text("teacher", "sen")},
        ("POST", "/api/v1/keys/rotate"): {
            "reader_key_id": v.ids("reader_keys"), "version": v.number(1, 4), "public_key": v.bytes(32),
            "grants": v.items(v.bytes(GRANT_BYTES), 2)},
        ("POST", "/api/v1/approvals/decline"): {
            "items": v.items(st.fixed_dictionaries({"kind": v.text("role", "teaches", "account", "key"),
                                                    "user_id": v.ids("teachers"), "role": v.text("sen", "teacher"),
                                                    "class_id": v.ids("classes")})),
            "reason": v.text("not this year")},
        ("POST", "/api/v1/held/decide"): {"envelope_id": v.bytes(16), "decision": v.text("accept", "reject")},
        ("POST", "/api/v1/audit"): {"events": v.items(audit_item)},
        ("POST", "/api/v1/directory"): {"signed": sealed},
    }


QUERIES = {
    "/api/v1/directory": "since",
    "/api/v1/audit/opened": "after",
}
QUERY_VALUES = st.one_of(
    st.integers(0, 10**20).map(str),
    st.sampled_from(["0", "2147483647", "2147483648", "9007199254740993", "999999999999999999", "1" * 19]),
    st.sampled_from(["²", "٣", "-1", "1e3", "", " 1", "0x10"]),
    TEXT,
)


@st.composite
def _body(draw: st.DrawFn, fields: dict[bool, dict[str, st.SearchStrategy[Any]]]) -> tuple[bytes, str | None, bool]:
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
    clean = draw(st.booleans())
    body: dict[str, object] = {}
    for name, strategy in fields[clean].items():
        if clean or draw(st.integers(0, 7)):  # now and then a field is missing
            body[name] = draw(strategy)
    unknown = None
    if not clean and draw(st.integers(0, 3)) == 0:
        unknown = draw(st.one_of(st.sampled_from(["force", "admin", "school", "__proto__", "id"]), TEXT))
        if unknown not in fields[clean]:
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
    fields = {clean: _fields(_Values(known, clean)) for clean in (False, True)}
    missing = [(m, p) for m, p, _ in ROUTE_KEYS if m == "POST" and (m, p) not in fields[True]]
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
        body, unknown, other = draw(_body({clean: f[(method, path)] for clean, f in fields.items()}))
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
