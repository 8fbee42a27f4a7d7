"""Envelope and padding vectors: every header field tampered, every opening step made to fail."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import replace

from crypto import _primitives as prim
from crypto import envelope as env
from crypto._codec import Writer
from crypto._random import inject
from crypto.keys import BoxKeyPair, SecretKey, SigningKey
from crypto.wrap import wrap_key
from tests.vectors._common import Case, Rng, case, expect_error, flip

# Byte offsets of header fields (docs/PROTOCOL.md 6.1), for tampering.
FIELDS = {
    "version": 0, "kind": 1, "school_id": 2, "envelope_id": 18, "concern_id": 34, "author_device": 50,
    "counter": 73, "prev_hash": 74, "device_time_ms": 113, "entry_key_version": 117, "nonce": 118,
    "pupil_count": 142, "pupil_id": 143,
}
CONTENT = (
    b'{"kind":"safeguarding_concern","category":"neglect","seen":"Fictional pupil arrived without a coat '
    b'for the third day running; said the heating at home is off.","words":"my tummy hurts"}'
)


class Fixture:
    """One sealed envelope with everything needed to open it, and tools to rebuild it with changes."""

    def __init__(self, name: str, recipients: int = 3, pupils: int = 2, content: bytes = CONTENT) -> None:
        rng = Rng(f"envelope/{name}")
        self.device, self.device_id = SigningKey(rng.bytes(32)), rng.bytes(16)
        self.entry_key = SecretKey(rng.bytes(32))
        kinds = [env.RECIPIENT_READER_KEY, env.RECIPIENT_READER_KEY, env.RECIPIENT_PERSON]
        self.readers = [
            (env.Recipient(kinds[i % 3], rng.bytes(16), 1 + i), BoxKeyPair(rng.bytes(32))) for i in range(recipients)
        ]
        self.fields = {
            "kind": env.KIND_CONCERN_EVENT, "school_id": rng.bytes(16), "envelope_id": rng.bytes(16),
            "concern_id": rng.bytes(16), "counter": 7, "prev_hash": rng.bytes(32),
            "device_time_ms": 1_790_000_000_789, "entry_key_version": 1,
            "pupil_ids": [rng.bytes(16) for _ in range(pupils)],
        }
        self.content = content
        self.random = [rng.bytes(24)] + [rng.bytes(32) for _ in self.readers]
        with inject(self.random):
            self.envelope = env.seal(
                **self.fields, author_device=self.device, author_device_id=self.device_id,
                entry_key=self.entry_key, recipients=[(r, k.public) for r, k in self.readers], content=content,
            )
        self.parsed = env.parse(self.envelope)
        self.rng = rng

    def open_inputs(self, envelope: bytes, reader: int = 0, author_pk: bytes | None = None) -> dict:
        r, k = self.readers[reader]
        return {
            "envelope": envelope, "author_device_pk": author_pk or self.device.public,
            "reader_keys": [{"kind": r.kind, "id": r.id, "version": r.version, "sk": bytes(k)}],
        }

    def seal_inputs(self) -> dict:
        return {
            **self.fields, "author_device": self.device_id, "device_seed": bytes(self.device),
            "entry_key": bytes(self.entry_key), "content": self.content, "random": self.random,
            "recipients": [{"kind": r.kind, "id": r.id, "version": r.version, "pk": k.public} for r, k in self.readers],
        }

    def assemble(self, header_bytes: bytes, commitment: bytes, wraps: list[bytes], ct: bytes) -> bytes:
        """Lay out and sign an envelope from parts, as an honest-but-buggy author device would."""
        sig = self.device.sign(env._signed(header_bytes, commitment, wraps, ct))
        return header_bytes + commitment + b"".join(wraps) + struct.pack(">I", len(ct)) + ct + sig

    def reseal(self, header: env.Header | None = None, inner: bytes | None = None, key: bytes | None = None,
               commitment: bytes | None = None, wraps: list[bytes] | None = None) -> bytes:
        """Rebuild with the given parts replaced; everything else is computed honestly, then signed."""
        header = header or self.parsed.header
        header_bytes = header.encode()
        key = key or bytes(self.entry_key)
        commitment = commitment or env._commitment(key, header_bytes)
        if inner is None:
            inner = self.inner()
        ct = prim.aead_encrypt(key, header.nonce, env._body_ad(header_bytes, commitment), inner)
        if wraps is None:  # wraps bind the concern and key version, not the header: reuse them
            wraps = list(self.parsed.wraps)
        return self.assemble(header_bytes, commitment, wraps, ct)

    def inner(self, author: bytes | None = None, envelope_id: bytes | None = None, length: int | None = None,
              size: int | None = None, fill: int = 0) -> bytes:
        content = self.content
        body = (
            Writer().u8(1).id(author or self.device_id).id(envelope_id or self.fields["envelope_id"])
            .u32(len(content) if length is None else length).raw(content).getvalue()
        )
        size = size or env.padded_size(len(content))
        return body + bytes([fill]) * (size - len(body))


def _check_open(expect: str, inputs: dict) -> None:
    keys = {(k["kind"], k["id"], k["version"]): BoxKeyPair(k["sk"]) for k in inputs["reader_keys"]}
    expect_error(expect, lambda: env.open(inputs["envelope"], inputs["author_device_pk"], keys))


def envelope_cases() -> Iterator[Case]:
    shapes = [
        ("three_recipients_success", dict(), 2, "a group key, a pupil key and a named person; opened by the named person"),
        ("one_recipient_success", dict(recipients=1, pupils=0), 0, "the safeguarding group only, no pupils (a restricted concern)"),
        ("empty_content_success", dict(recipients=2, pupils=1, content=b""), 1, "zero bytes of content still pad to 256"),
        ("large_content_success", dict(recipients=1, pupils=32, content=bytes(range(256)) * 20), 0,
         "5120 bytes of content pad to 8192; 32 pupils, the most a header holds"),
    ]
    for condition, kwargs, reader, comment in shapes:
        f = Fixture(condition, **kwargs)
        opened_by = f.readers[reader]
        keys = {(opened_by[0].kind, opened_by[0].id, opened_by[0].version): opened_by[1]}
        assert env.open(f.envelope, f.device.public, keys).content == f.content
        yield case("envelope", "seal", condition, comment, "success",
                   {**f.seal_inputs(), **f.open_inputs(f.envelope, reader)},
                   {"content": f.content, "envelope_hash": env.envelope_hash(f.envelope),
                    "padded_size": env.padded_size(len(f.content))})

    f = Fixture("failures")
    e, parsed = f.envelope, f.parsed
    header_len = len(parsed.header_bytes)
    rec0 = FIELDS["pupil_id"] + 16 * len(parsed.header.pupil_ids) + 1  # the first recipient's kind byte
    commitment_at = header_len
    wraps_at = commitment_at + 32
    ct_len_at = wraps_at + 80 * len(parsed.wraps)
    ct_at = ct_len_at + 4
    failures: list[tuple[str, bytes, str, str, dict]] = []
    for name, at in FIELDS.items():
        if name in ("version", "kind", "pupil_count"):
            continue
        failures.append((f"tampered_{name}", flip(e, at, 1), "bad_signature", f"one bit of the header's {name} flipped", {}))
    failures += [
        ("tampered_recipient_id", flip(e, rec0 + 21 + 1), "bad_signature", "the second recipient's id changed", {}),
        ("tampered_recipient_version", flip(e, rec0 + 20), "bad_signature", "the first recipient's key version changed", {}),
        ("tampered_commitment", flip(e, commitment_at + 5), "bad_signature", "one bit of the key commitment flipped", {}),
        ("tampered_wrap", flip(e, wraps_at + 100), "bad_signature", "one bit of the second wrap flipped: the signature covers inline wraps", {}),
        ("tampered_ciphertext", flip(e, ct_at + 50), "bad_signature", "one bit of the body flipped", {}),
        ("tampered_tag", flip(e, len(e) - 65, 7), "bad_signature", "one bit of the body's tag flipped", {}),
        ("tampered_signature", flip(e, len(e) - 1), "bad_signature", "one bit of the signature flipped", {}),
        ("wrong_author_key", e, "bad_signature", "checked against another device's key", {"author_pk": SigningKey(f.rng.bytes(32)).public}),
        ("unknown_version", bytes([2]) + e[1:], "unsupported_version", "envelope version 2", {}),
        ("unknown_kind", flip(e, FIELDS["kind"], 1), "unsupported_version", "envelope kind 3 is unknown in v1", {}),
        ("unknown_recipient_kind", flip(e, rec0, 2), "parse_failure", "recipient kind 5 does not exist", {}),
        ("pupil_count_too_large", e[:FIELDS["pupil_count"]] + bytes([33]) + e[FIELDS["pupil_count"] + 1:], "parse_failure", "33 pupils, one more than a header may hold", {}),
        ("truncated", e[:-1], "parse_failure", "one byte short", {}),
        ("truncated_header", e[:100], "parse_failure", "cut inside the header", {}),
        ("trailing", e + b"\0", "parse_failure", "one trailing byte", {}),
        ("empty", b"", "parse_failure", "no bytes at all", {}),
        ("ct_length_mismatch", e[:ct_len_at] + struct.pack(">I", len(parsed.ct) + 1) + e[ct_at:], "parse_failure", "the ciphertext length field says one byte more than there is", {}),
        ("ct_len_not_a_bucket", _unpadded(f), "parse_failure",
         "a validly signed body of 300 bytes: ciphertext sizes are always 16 plus a padded size", {}),
        ("counter_zero", _patched_header(f, FIELDS["counter"] - 7, bytes(8)), "parse_failure",
         "a validly signed envelope with device counter 0: counters start at 1", {}),
        ("entry_key_version_zero", _patched_header(f, FIELDS["entry_key_version"] - 3, bytes(4)), "parse_failure",
         "a validly signed envelope with entry key version 0: versions start at 1", {}),
        ("not_a_recipient", e, "no_key", "the reader holds no key the envelope is sealed to", {"stranger": True}),
        ("old_key_version", e, "no_key", "the reader holds the same reader key at another version", {"old_version": True}),
    ]
    other_key = f.rng.bytes(32)
    header = parsed.header
    wraps_other = list(parsed.wraps)
    with inject([f.rng.bytes(32)]):
        wraps_other[0] = wrap_key(f.readers[0][1].public, other_key, env._wrap_ad(header, f.readers[0][0]))
    swapped = list(parsed.wraps)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    resigned = [
        ("resigned_wrong_commitment", f.reseal(commitment=f.rng.bytes(32)), "auth_failure",
         "a commitment that does not match the entry key, validly signed"),
        ("resigned_key_commitment_attack", f.reseal(wraps=wraps_other), "auth_failure",
         "the first recipient is given a different key than the body was sealed under: the commitment catches it"),
        ("resigned_swapped_wraps", f.assemble(parsed.header_bytes, parsed.commitment, swapped, parsed.ct), "auth_failure",
         "the first two wraps swapped, validly signed: each wrap is bound to its recipient"),
        ("resigned_tampered_ciphertext", f.assemble(parsed.header_bytes, parsed.commitment, list(parsed.wraps), flip(parsed.ct, 3)),
         "auth_failure", "a body bit flipped and the envelope re-signed by its device: the AEAD tag fails"),
        ("resigned_header_nonce", f.assemble(replace(header, nonce=flip(header.nonce, 0)).encode(), parsed.commitment, list(parsed.wraps), parsed.ct),
         "auth_failure", "the header nonce changed and re-signed: the commitment, over the header, no longer matches"),
        ("inner_author_mismatch", f.reseal(inner=f.inner(author=f.rng.bytes(16))), "bad_signature",
         "the device that signed is not the author named inside the plaintext"),
        ("inner_envelope_id_mismatch", f.reseal(inner=f.inner(envelope_id=f.rng.bytes(16))), "bad_signature",
         "the plaintext names another envelope: a body moved between envelopes"),
        ("nonzero_padding", f.reseal(inner=f.inner(fill=1)), "parse_failure", "padding bytes that are not zero"),
        ("content_length_too_long", f.reseal(inner=f.inner(length=10_000)), "parse_failure",
         "the content length runs past the padded plaintext"),
        ("oversized_padding", f.reseal(inner=f.inner(size=1024)), "parse_failure",
         "padded to a larger bucket than the content needs: padding is canonical"),
        ("repeated_recipient", _repeat_recipients(f), "parse_failure", "the same recipient listed twice"),
    ]
    for condition, data, expect, comment in resigned:
        failures.append((condition, data, expect, comment, {}))
    for condition, data, expect, comment, opts in failures:
        inputs = f.open_inputs(data, 0, opts.get("author_pk"))
        if opts.get("stranger"):
            inputs["reader_keys"] = [{"kind": 1, "id": f.rng.bytes(16), "version": 1, "sk": f.rng.bytes(32)}]
        if opts.get("old_version"):
            inputs["reader_keys"][0]["version"] += 1
        _check_open(expect, inputs)
        yield case("envelope", "open", condition, comment, expect, inputs)


def _repeat_recipients(f: Fixture) -> bytes:
    """Header encode refuses repeats, so lay the bytes out by hand, as a buggy client might."""
    good = f.parsed.header
    body = good.encode()
    at = FIELDS["pupil_id"] + 16 * len(good.pupil_ids) + 1
    first = body[at : at + 21]
    header_bytes = body[:at] + first + first + body[at + 42 :]
    commitment = env._commitment(bytes(f.entry_key), header_bytes)
    ct = prim.aead_encrypt(bytes(f.entry_key), good.nonce, env._body_ad(header_bytes, commitment), f.inner())
    return f.assemble(header_bytes, commitment, list(f.parsed.wraps), ct)


def _patched_header(f: Fixture, at: int, value: bytes) -> bytes:
    """The header with bytes replaced at ``at``, then committed, encrypted and signed honestly."""
    raw = f.parsed.header_bytes
    header_bytes = raw[:at] + value + raw[at + len(value) :]
    commitment = env._commitment(bytes(f.entry_key), header_bytes)
    ct = prim.aead_encrypt(bytes(f.entry_key), f.parsed.header.nonce, env._body_ad(header_bytes, commitment), f.inner())
    return f.assemble(header_bytes, commitment, list(f.parsed.wraps), ct)


def _unpadded(f: Fixture) -> bytes:
    good = f.parsed
    inner = f.inner(size=300)
    ct = prim.aead_encrypt(bytes(f.entry_key), good.header.nonce, env._body_ad(good.header_bytes, good.commitment), inner)
    return f.assemble(good.header_bytes, good.commitment, list(good.wraps), ct)


def padding_cases() -> Iterator[Case]:
    lengths = [0, 1, 219, 220, 221, 987, 65499, 65500, 65501, 100000, 1048539]
    yield case("padding", "sizes", "success", "padded plaintext sizes for content lengths: powers of two from 256, then 64 KiB steps",
               "success", {"lengths": lengths}, {"padded": [env.padded_size(n) for n in lengths]})


CASES = [envelope_cases, padding_cases]
