"""Reading JSON request bodies: one reader that collects per-field errors into one ``invalid_request``."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from sync.protocol import decode_field

from .errors import ApiError

MAX_BODY = 4 * 1024 * 1024
# What no text field may hold: control characters (NUL among them, which PostgreSQL refuses in text) and
# lone surrogates (JSON may carry "\ud800", but no database stores it: it is not UTF-8).
_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def plain_text(value: object, max_len: int = 200) -> bool:
    """A non-empty string of at most ``max_len`` characters with nothing a database could refuse."""
    return isinstance(value, str) and 0 < len(value) <= max_len and not _UNSTORABLE.search(value)


class Body:
    def __init__(self, data: dict[str, Any], allowed: set[str]) -> None:
        self.data, self.errors = data, {}
        for name in data:
            if name not in allowed:
                self.errors[name] = "unknown_field"

    @classmethod
    async def read(cls, request: Request, allowed: set[str], max_bytes: int = MAX_BODY) -> Body:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            raise ApiError("payload_too_large", f"the body is larger than {max_bytes} bytes")
        raw = b""
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > max_bytes:
                raise ApiError("payload_too_large", f"the body is larger than {max_bytes} bytes")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError("invalid_request", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError("invalid_request", "the body is a JSON object")
        return cls(data, allowed)

    def str(self, name: str, max_len: int = 200, pattern: str | None = None, optional: bool = False) -> Any:
        value = self.data.get(name)
        if value is None and optional:
            return None
        if not plain_text(value, max_len) or (pattern and not re.fullmatch(pattern, value, re.ASCII)):
            self.errors[name] = "missing" if value is None else "invalid"
            return ""
        return value

    def bytes(self, name: str, length: int | None = None, optional: bool = False, max_len: int = 4096) -> Any:
        value = self.data.get(name)
        if value is None and optional:
            return None
        return self.decode(name, value, length, max_len)

    def decode(self, name: str, value: Any, length: int | None = None, max_len: int = 4096) -> bytes:
        return decode_field(self.errors, name, value, length, max_len)

    def list(self, name: str, max_items: int = 1000) -> list:
        value = self.data.get(name)
        if not isinstance(value, list) or not 0 < len(value) <= max_items:
            self.errors[name] = f"must be a list of 1 to {max_items} items"
            return []
        return value

    def done(self) -> None:
        if self.errors:
            raise ApiError("invalid_request", "some fields are not valid", self.errors)
