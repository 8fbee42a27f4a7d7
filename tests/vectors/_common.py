"""Helpers shared by the vector generator's case modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nacl.bindings

from crypto import _primitives as prim
from crypto.errors import CryptoError

MASTER_SEED = b"cairn vectors v1"
FLOOR_OPS, FLOOR_MEM = 3, 64 * 1024 * 1024


class Rng:
    """Deterministic bytes for one case: libsodium's randombytes_buf_deterministic, counter-keyed."""

    def __init__(self, name: str) -> None:
        self._seed = prim.keyed_hash(MASTER_SEED.ljust(32, b"\0"), "cairn/v1/vectors/seed", name.encode())
        self._n = 0

    def bytes(self, n: int) -> bytes:
        self._n += 1
        seed = prim.keyed_hash(self._seed, "cairn/v1/vectors/draw", self._n.to_bytes(8, "big"))
        return nacl.bindings.randombytes_buf_deterministic(n, seed)


def flip(data: bytes, byte: int, bit: int = 0) -> bytes:
    out = bytearray(data)
    out[byte] ^= 1 << bit
    return bytes(out)


Case = dict[str, Any]


def case(construct: str, area: str, condition: str, comment: str, expect: str, inputs: dict, output: dict | None = None) -> Case:
    c: Case = {
        "construct": construct, "area": area, "condition": condition, "comment": comment,
        "expect": expect, "inputs": _hexify(inputs),
    }
    if output is not None:
        c["output"] = _hexify(output)
    return c


def _hexify(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {k: _hexify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_hexify(v) for v in value]
    return value


def expect_error(code: str, fn: Callable[[], object]) -> None:
    """The generator's own check: ``fn`` must raise the CryptoError whose code is ``code``."""
    try:
        fn()
    except CryptoError as exc:
        if exc.code != code:
            raise AssertionError(f"expected {code}, crypto/ raised {exc.code}: {exc}") from exc
        return
    raise AssertionError(f"expected {code}, crypto/ raised nothing")
