"""Settings are read once from CAIRN_* variables, refuse what they cannot use, and hide secrets."""

from __future__ import annotations

import pytest

from server.settings import Settings, SettingsError


def test_defaults_need_no_environment() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.debug) == ("127.0.0.1", 8000, False)
    assert s.database_url.startswith("sqlite+aiosqlite:///")


def test_values_come_from_the_environment() -> None:
    s = Settings.from_env(
        {"CAIRN_PORT": "9001", "CAIRN_DEBUG": "true", "CAIRN_HOST": "0.0.0.0", "CAIRN_PUSH_CATCH_UP_SECONDS": "0.5"}
    )
    assert (s.host, s.port, s.debug, s.push_catch_up_seconds) == ("0.0.0.0", 9001, True, 0.5)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CAIRN_PORT": "eighty"}, "CAIRN_PORT must be a number"),
        ({"CAIRN_PORT": "70000"}, "between 1 and 65535"),
        ({"CAIRN_DEBUG": "maybe"}, "CAIRN_DEBUG must be true or false"),
        ({"CAIRN_DATABSE_URL": "x"}, "unknown setting CAIRN_DATABSE_URL"),
        ({"CAIRN_PUSH_CATCH_UP_SECONDS": "soon"}, "CAIRN_PUSH_CATCH_UP_SECONDS must be a number"),
        ({"CAIRN_PUSH_CATCH_UP_SECONDS": "0"}, "between 0.1 and 60"),
        ({"CAIRN_PUSH_CATCH_UP_SECONDS": "nan"}, "between 0.1 and 60"),
    ],
)
def test_unusable_values_fail_at_start_naming_the_setting(env: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_repr_hides_the_database_url() -> None:
    s = Settings.from_env({"CAIRN_DATABASE_URL": "postgresql+asyncpg://cairn:s3cret-pw@db/cairn"})
    assert "s3cret-pw" not in repr(s) and "<hidden>" in repr(s)


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]
