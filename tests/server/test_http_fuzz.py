"""Fuzzing every HTTP route over a real socket, on SQLite and PostgreSQL: any body (wrong types, missing and
extra fields, huge values, nested junk, not JSON at all) and any query gets an answer below 500, a refusal
is one error object with a code and status of docs/PROTOCOL.md 10.2 (invalid_request naming an unknown
field) and changes nothing, and the server's log holds no traceback and no ERROR line."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.http import ROUTE_KEYS, check_response, requests, send
from tests.fuzz.live import LiveFuzz, live_fuzz


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request, tmp_path_factory) -> Iterator[LiveFuzz]:  # type: ignore[no-untyped-def]
    with live_fuzz(request.param, tmp_path_factory.mktemp("http-fuzz")) as server:
        yield server
    assert not server.trap.bad, "the server logged:\n" + "\n".join(server.trap.bad)


@pytest.fixture(scope="module")
def http(live: LiveFuzz) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base, timeout=30) as client:
        yield client


@pytest.mark.parametrize("route", [(m, p) for m, p, _ in ROUTE_KEYS], ids=lambda r: f"{r[0]} {r[1]}")
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_route_answers_any_request_with_a_documented_code_and_a_refusal_changes_nothing(
    live: LiveFuzz, http: httpx.Client, route: tuple[str, str], data: st.DataObject
) -> None:
    request = data.draw(requests(live.known, route))
    mark, before = len(live.trap.bad), live.digest()
    response = send(http, request, live.dsl.device.token or "")
    code = check_response(request, response)
    if code != "ok":
        assert live.digest() == before, f"a refusal ({code}) changed the database"
    logged = live.trap.since(mark)
    assert not logged, "the server logged:\n" + "\n".join(logged)
