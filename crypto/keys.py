"""Typed key material: exact lengths, constant-time equality, and no key bytes in ``repr``."""

from __future__ import annotations

from . import _primitives as p
from ._random import random_bytes

__all__ = ["SecretKey", "BoxKeyPair", "SigningKey"]


class _Secret:
    """Holds secret bytes of one exact length."""

    _length = 32
    _kind = "secret"

    __slots__ = ("_bytes",)

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, (bytes, bytearray)):
            raise TypeError(f"a {self._kind} is made from bytes, not {type(raw).__name__}")
        if len(raw) != self._length:
            raise ValueError(f"a {self._kind} must be exactly {self._length} bytes, not {len(raw)}")
        self._bytes = bytes(raw)

    def __bytes__(self) -> bytes:
        return self._bytes

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return p.equal(self._bytes, other._bytes)  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), p.h("cairn/v1/local/key-hash", self._bytes)))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} (secret, {self._length} bytes)>"

    __str__ = __repr__

    def __reduce__(self) -> object:
        raise TypeError(f"a {self._kind} is not pickled; store it sealed")


class SecretKey(_Secret):
    """A 32-byte symmetric key: an entry key, a key-encryption key or a roster key."""

    _kind = "symmetric key"
    __slots__ = ()

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(random_bytes(p.KEY_BYTES))


class BoxKeyPair(_Secret):
    """An X25519 key pair, held by its 32-byte secret; ``public`` is derived."""

    _kind = "X25519 secret key"
    __slots__ = ("public",)

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self.public: bytes = p.x25519_base(self._bytes)

    @classmethod
    def generate(cls) -> BoxKeyPair:
        return cls(random_bytes(p.KEY_BYTES))

    def __repr__(self) -> str:
        return f"<BoxKeyPair public={self.public.hex()[:16]}...>"

    __str__ = __repr__


class SigningKey(_Secret):
    """An Ed25519 key pair, held by its 32-byte seed; ``public`` is derived."""

    _kind = "Ed25519 seed"
    __slots__ = ("public",)

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self.public: bytes = p.signing_public(self._bytes)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(random_bytes(p.KEY_BYTES))

    def sign(self, message: bytes) -> bytes:
        return p.sign(self._bytes, message)

    def __repr__(self) -> str:
        return f"<SigningKey public={self.public.hex()[:16]}...>"

    __str__ = __repr__
