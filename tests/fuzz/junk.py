"""Hostile JSON values, and damage to byte strings made by a real writer."""

from __future__ import annotations

import re
import string

from hypothesis import strategies as st

from sync.protocol import b64e

__all__ = ["CRYPTO_CODES", "REQUEST_ID", "TEXT", "NUMBERS", "json_values", "junk", "b64", "b64_of", "mutations",
           "mutate", "storable"]

CRYPTO_CODES = frozenset(
    {"parse_failure", "auth_failure", "bad_signature", "no_key", "unsupported_version", "rollback"}
)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# --- JSON junk -------------------------------------------------------------------------------------

# Strings that have broken parsers before: control characters, NUL, lone surrogates (which JSON can carry
# as \ud800 escapes but UTF-8 cannot), non-ASCII digits (str.isdigit is true for "²" and "٣"), long runs.
TRICKY_TEXT = st.sampled_from(
    ["", " ", "\x00", "\ud800", "\udfff", "a\x00b", "²", "١٢٣٤٥٦", "٣", "\u202e", "\ufeff", "\r\n", "null", "[]",
     "{}", "c1.", "c1.AAAAAAAAAAA", "c1.___________", "-1", "1e400", "0x10", "🙂" * 30, "x" * 300]
)
TEXT = st.one_of(st.text(max_size=24), TRICKY_TEXT, st.text(alphabet=string.printable, max_size=80))
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**31 - 1, 2**31, 2**32, 2**53 - 1, 2**53, 2**63, 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
json_values = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(TEXT, inner, max_size=5)),
    max_leaves=16,
)
# A value that is wrong for almost any field: junk of every JSON type, including containers (unhashable).
junk = json_values


def b64_of(sizes: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    return sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n)).map(b64e)


def b64(length: int) -> st.SearchStrategy[object]:
    """A base64url field of ``length`` bytes, most of the time; otherwise a near miss or junk."""
    exact = b64_of(st.just(length))
    return st.one_of(
        exact,
        exact,
        exact,
        b64_of(st.sampled_from([0, 1, length - 1, length + 1, 4 * length])),
        st.from_regex(r"[A-Za-z0-9_\-+/=.*]{0,90}", fullmatch=True),
        junk,
    )


# --- byte strings made by a writer, then damaged -----------------------------------------------------------

mutations = st.lists(
    st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "delete", "splice", "append"]), st.integers(0, 2**31),
              st.integers(0, 255), st.binary(max_size=8)),
    min_size=0,  # now and then none: the undamaged object must read back
    max_size=4,
)


def mutate(data: bytes, edits: list[tuple[str, int, int, bytes]]) -> bytes:
    """Apply edits: flip a bit, set a byte, cut the tail, insert or delete bytes, splice in a count, add
    trailing bytes."""
    out = bytearray(data)
    for op, where, value, extra in edits:
        at = where % (len(out) + 1)
        if op == "flip" and out:
            out[at % len(out)] ^= 1 << (value % 8)
        elif op == "set" and out:
            out[at % len(out)] = value
        elif op == "cut":
            del out[at:]
        elif op == "insert":
            out[at:at] = extra or bytes([value])
        elif op == "delete":
            del out[at : at + 1 + value % 8]
        elif op == "append":
            out += extra or bytes([value])
        elif op == "splice":  # a big-endian count or length field set to an extreme
            out[at : at + 4] = (value * 0x01010101 if value > 127 else value).to_bytes(4, "big")
    return bytes(out)


_UNSTORABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def storable(text: str) -> bool:
    """Text a database stores as it came: no lone surrogate (not UTF-8), no control character (PostgreSQL
    refuses NUL in text)."""
    return not _UNSTORABLE.search(text)
