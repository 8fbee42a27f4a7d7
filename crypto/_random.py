"""The single source of randomness for crypto/, with a private hook for the vector generator.

Public functions never take nonces or ephemeral keys as arguments: they call ``random_bytes``. Only
the vector generator and the vector tests use ``inject`` to make sealing reproducible.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import nacl.utils

_injected: list[bytes] | None = None


def random_bytes(n: int) -> bytes:
    """Return ``n`` random bytes, or the next injected value while ``inject`` is active."""
    if _injected is None:
        return nacl.utils.random(n)
    if not _injected:
        raise RuntimeError("injected randomness ran out: the vector lists too few random values")
    value = _injected.pop(0)
    if len(value) != n:
        raise RuntimeError(f"injected randomness has {len(value)} bytes where {n} were asked for")
    return value


@contextlib.contextmanager
def inject(values: Sequence[bytes]) -> Iterator[None]:
    """Serve ``values`` in order to ``random_bytes``; every value must be consumed."""
    global _injected
    previous, _injected = _injected, list(values)
    try:
        yield
        if _injected:
            raise RuntimeError(f"{len(_injected)} injected random values were not consumed")
    finally:
        _injected = previous
