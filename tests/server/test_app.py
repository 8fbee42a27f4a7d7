"""The app factory builds from settings alone and answers a health check."""

from __future__ import annotations

from starlette.testclient import TestClient

from server import __version__, create_app
from server.settings import Settings


def test_health_check_answers_with_the_version() -> None:
    with TestClient(create_app(Settings.from_env({}))) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_unknown_paths_are_404_not_500() -> None:
    with TestClient(create_app(Settings.from_env({}))) as client:
        assert client.get("/no-such-page").status_code == 404
