"""Settings: one frozen object, read from ``CAIRN_*`` environment variables in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

__all__ = ["Settings", "SettingsError", "SETTINGS"]

# name -> (default, help); the docs test checks each name appears in docs/OPERATIONS.md.
SETTINGS: dict[str, tuple[str, str]] = {
    "CAIRN_HOST": ("127.0.0.1", "address the server listens on"),
    "CAIRN_PORT": ("8000", "port the server listens on"),
    "CAIRN_DATABASE_URL": ("sqlite+aiosqlite:///./data/cairn.db", "SQLAlchemy URL of the database"),
    "CAIRN_DEBUG": ("false", "Starlette debug mode; never on in production"),
    "CAIRN_SESSION_HOURS": ("336", "how long a sign-in lasts before the device must sign in again"),
    "CAIRN_PUSH_CATCH_UP_SECONDS": (
        "2",
        "PostgreSQL: how often an instance checks each school with sockets open on it for commits it was not told of",
    ),
}


class SettingsError(ValueError):
    """A setting is missing or has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    host: str = SETTINGS["CAIRN_HOST"][0]
    port: int = int(SETTINGS["CAIRN_PORT"][0])
    database_url: str = field(default=SETTINGS["CAIRN_DATABASE_URL"][0], repr=False)
    debug: bool = False
    session_hours: int = int(SETTINGS["CAIRN_SESSION_HOURS"][0])
    push_catch_up_seconds: float = float(SETTINGS["CAIRN_PUSH_CATCH_UP_SECONDS"][0])

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every ``CAIRN_*`` variable; unknown ``CAIRN_*`` names are refused, not ignored."""
        env = os.environ if env is None else env
        unknown = sorted(
            k for k in env if k.startswith("CAIRN_") and k not in SETTINGS and not k.startswith("CAIRN_TEST_")
        )
        if unknown:
            raise SettingsError(f"unknown setting {unknown[0]}; see docs/OPERATIONS.md for the list")
        value = {name: env.get(name, default) for name, (default, _) in SETTINGS.items()}
        try:
            port = int(value["CAIRN_PORT"])
        except ValueError:
            raise SettingsError(f"CAIRN_PORT must be a number, not {value['CAIRN_PORT']!r}") from None
        if not 0 < port < 65536:
            raise SettingsError(f"CAIRN_PORT must be between 1 and 65535, not {port}")
        try:
            session_hours = int(value["CAIRN_SESSION_HOURS"])
        except ValueError:
            raise SettingsError(f"CAIRN_SESSION_HOURS must be a number, not {value['CAIRN_SESSION_HOURS']!r}") from None
        if not 1 <= session_hours <= 24 * 90:
            raise SettingsError("CAIRN_SESSION_HOURS must be between 1 and 2160 (90 days)")
        try:
            catch_up = float(value["CAIRN_PUSH_CATCH_UP_SECONDS"])
        except ValueError:
            raise SettingsError(
                f"CAIRN_PUSH_CATCH_UP_SECONDS must be a number, not {value['CAIRN_PUSH_CATCH_UP_SECONDS']!r}"
            ) from None
        if not 0.1 <= catch_up <= 60:  # NaN fails this too
            raise SettingsError("CAIRN_PUSH_CATCH_UP_SECONDS must be between 0.1 and 60")
        debug = value["CAIRN_DEBUG"].lower()
        if debug not in ("true", "false", "1", "0"):
            raise SettingsError(f"CAIRN_DEBUG must be true or false, not {value['CAIRN_DEBUG']!r}")
        return cls(
            host=value["CAIRN_HOST"],
            port=port,
            database_url=value["CAIRN_DATABASE_URL"],
            debug=debug in ("true", "1"),
            session_hours=session_hours,
            push_catch_up_seconds=catch_up,
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if f.repr)
        return f"Settings({shown}, database_url=<hidden>)"
