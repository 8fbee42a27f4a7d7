"""Device certificates: a user's identity key vouches for one device's Ed25519 key.

docs/PROTOCOL.md section 3.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _primitives as p
from ._codec import Reader, Writer
from .errors import Malformed, UnsupportedVersion
from .keys import SigningKey

__all__ = [
    "DeviceCert",
    "make_device_cert",
    "make_device_cert_bytes",
    "verify_device_cert",
    "sign_device_auth",
    "verify_device_auth",
    "sign_delivery_auth",
    "verify_delivery_auth",
]

VERSION = 1
CERT_BYTES = 1 + 16 * 3 + 32 + 8 + p.SIGNATURE_BYTES
_CTX = "cairn/v1/device-cert"


@dataclass(frozen=True)
class DeviceCert:
    school_id: bytes
    user_id: bytes
    device_id: bytes
    device_pk: bytes
    created_ms: int


def _cert_body(cert: DeviceCert) -> bytes:
    return (
        Writer().u8(VERSION).id(cert.school_id, "school id").id(cert.user_id, "user id")
        .id(cert.device_id, "device id").fixed(cert.device_pk, 32, "device public key")
        .u64(cert.created_ms).getvalue()
    )


def make_device_cert(identity: SigningKey, cert: DeviceCert) -> bytes:
    """Sign ``cert`` with the user's identity Ed25519 key; 153 bytes."""
    body = _cert_body(cert)
    return body + identity.sign(p.ctx(_CTX) + body)


def make_device_cert_bytes(cert: DeviceCert, signature: bytes) -> bytes:
    """A certificate's bytes from its fields and signature (the signed directory carries only those two
    that the rest of the device's entry does not already hold). Not checked: ``verify_device_cert`` is."""
    if len(signature) != p.SIGNATURE_BYTES:
        raise Malformed(f"a certificate signature is {p.SIGNATURE_BYTES} bytes, not {len(signature)}")
    return _cert_body(cert) + signature


def verify_device_cert(data: bytes, identity_public: bytes) -> DeviceCert:
    """Check the certificate against the user's identity public key and return what it certifies."""
    what = "verifying device certificate"
    r = Reader(data, what)
    version = r.u8("version")
    if version != VERSION:
        raise UnsupportedVersion(f"{what}: unknown version {version}")
    if len(data) != CERT_BYTES:
        raise Malformed(f"{what}: a certificate is {CERT_BYTES} bytes, not {len(data)}")
    cert = DeviceCert(r.id("school id"), r.id("user id"), r.id("device id"), r.take(32, "device key"), r.u64("created"))
    body_end = r.offset
    signature = r.take(p.SIGNATURE_BYTES, "signature")
    r.end()
    p.verify(identity_public, p.ctx(_CTX) + r.slice(0, body_end), signature, what)
    return cert


def _auth_message(school_id: bytes, device_id: bytes, nonce: bytes) -> bytes:
    return (
        Writer().raw(p.ctx("cairn/v1/device/auth")).id(school_id, "school id").id(device_id, "device id")
        .fixed(nonce, 32, "nonce").getvalue()
    )


def sign_device_auth(device: SigningKey, school_id: bytes, device_id: bytes, nonce: bytes) -> bytes:
    """The device's proof on opening a sync connection: its key signs the server's fresh nonce."""
    return device.sign(_auth_message(school_id, device_id, nonce))


def verify_device_auth(device_pk: bytes, school_id: bytes, device_id: bytes, nonce: bytes, signature: bytes) -> None:
    """Raise BadSignature unless ``signature`` is the device's answer to ``nonce``."""
    try:
        message = _auth_message(school_id, device_id, nonce)
    except ValueError as exc:
        raise Malformed(f"verifying device proof: {exc}") from None
    p.verify(device_pk, message, signature, "verifying device proof")


def _delivery_message(school_id: bytes, device_id: bytes, nonce: bytes) -> bytes:
    return (
        Writer().raw(p.ctx("cairn/v1/device/deliver")).id(school_id, "school id").id(device_id, "device id")
        .fixed(nonce, 32, "nonce").getvalue()
    )


def sign_delivery_auth(delivery: SigningKey, school_id: bytes, device_id: bytes, nonce: bytes) -> bytes:
    """A device's delivery proof (PROTOCOL 3.2): its delivery key, kept outside the person's sealed keys so a
    locked shared tablet can send what is already sealed, signs the server's fresh nonce. It opens a
    connection that may only deliver envelopes the device key already signed."""
    return delivery.sign(_delivery_message(school_id, device_id, nonce))


def verify_delivery_auth(
    delivery_pk: bytes, school_id: bytes, device_id: bytes, nonce: bytes, signature: bytes
) -> None:
    """Raise BadSignature unless ``signature`` is the device's delivery key's answer to ``nonce``."""
    try:
        message = _delivery_message(school_id, device_id, nonce)
    except ValueError as exc:
        raise Malformed(f"verifying delivery proof: {exc}") from None
    p.verify(delivery_pk, message, signature, "verifying delivery proof")
