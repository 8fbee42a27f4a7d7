"""Canonical bytes: the one writer and reader every construction uses (docs/PROTOCOL.md, section 1)."""

from __future__ import annotations

import struct

from .errors import Malformed

ID_BYTES = 16
U64_MAX = 2**53 - 1  # every u64 in Cairn fits a JavaScript number exactly


class Writer:
    """Appends fixed-width big-endian fields."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(struct.pack(">B", _checked(value, 0xFF, "u8")))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(struct.pack(">I", _checked(value, 0xFFFFFFFF, "u32")))
        return self

    def u64(self, value: int) -> Writer:
        self._parts.append(struct.pack(">Q", _checked(value, U64_MAX, "u64")))
        return self

    def fixed(self, value: bytes, length: int, what: str) -> Writer:
        if len(value) != length:
            raise ValueError(f"{what} must be exactly {length} bytes, not {len(value)}")
        self._parts.append(bytes(value))
        return self

    def id(self, value: bytes, what: str = "id") -> Writer:
        return self.fixed(value, ID_BYTES, what)

    def raw(self, value: bytes) -> Writer:
        self._parts.append(bytes(value))
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads fixed-width fields; refuses short input and, at ``end``, trailing bytes."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = memoryview(bytes(data))
        self._at = 0
        self._what = what

    @property
    def offset(self) -> int:
        return self._at

    def take(self, n: int, field: str) -> bytes:
        if n < 0 or self._at + n > len(self._data):
            raise Malformed(f"{self._what}: truncated at {field}")
        value = self._data[self._at : self._at + n].tobytes()
        self._at += n
        return value

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def fields(self, layout: struct.Struct, field: str) -> tuple:
        """Several fixed-width fields at once (a precompiled big-endian layout), for hot paths."""
        values = layout.unpack(self.take(layout.size, field))
        for value in values:
            if type(value) is int and value > U64_MAX:
                raise Malformed(f"{self._what}: a u64 in {field} is above 2^53 - 1")
        return values

    def u32(self, field: str) -> int:
        return int(struct.unpack(">I", self.take(4, field))[0])

    def u64(self, field: str) -> int:
        value = int(struct.unpack(">Q", self.take(8, field))[0])
        if value > U64_MAX:
            raise Malformed(f"{self._what}: {field} is above 2^53 - 1")
        return value

    def id(self, field: str) -> bytes:
        return self.take(ID_BYTES, field)

    def slice(self, start: int, end: int) -> bytes:
        return self._data[start:end].tobytes()

    def end(self) -> None:
        if self._at != len(self._data):
            raise Malformed(f"{self._what}: {len(self._data) - self._at} trailing bytes")


def _checked(value: int, maximum: int, kind: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise ValueError(f"{kind} field out of range: {value!r}")
    return value
