"""The app factory builds from settings alone and answers a health check."""

from __future__ import annotations

from starlette.testclient import TestClient

from server import __version__, create_app
from server.settings import Settings


def _settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings.from_env({"CAIRN_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cairn.db"})


def test_health_check_answers_with_the_version(tmp_path) -> None:
    with TestClient(create_app(_settings(tmp_path))) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_unknown_paths_are_404_not_500(tmp_path) -> None:
    with TestClient(create_app(_settings(tmp_path))) as client:
        assert client.get("/no-such-page").status_code == 404
