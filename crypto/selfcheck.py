"""Known-answer checks: run one shared vector (tests/vectors/, docs/PROTOCOL.md section 7).

Pure functions over an already-parsed vector; the caller reads the files. pytest runs every vector
through ``check_vector``, and ``cairn selfcheck`` does the same at start-up, as a cryptographic module
runs its known-answer tests before it is trusted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import envelope as env
from ._random import inject
from .account import KdfParams, derive_account, sign_challenge, verify_challenge
from .approval import encode_item, item_from_json, sign_approval, verify_approval
from .bundle import IdentityKeys, open_bundle, seal_bundle
from .device import (
    DeviceCert,
    make_device_cert,
    sign_delivery_auth,
    sign_device_auth,
    verify_delivery_auth,
    verify_device_auth,
    verify_device_cert,
)
from .directory import (
    DirAccount,
    DirClass,
    DirDevice,
    DirectoryContent,
    DirKey,
    DirPupil,
    directory_hash,
    directory_signing_key,
    encode_content,
    fingerprint,
    read_directory,
    sign_directory,
    verify_directory,
)
from .entry_grant import EntryGrantInfo, make_entry_grant, open_entry_grant
from .errors import CryptoError
from .grant import GrantInfo, make_grant, open_grant
from .identity import sign_identity_binding, verify_identity_binding
from .keys import BoxKeyPair, SecretKey, SigningKey
from .local import (
    SLOT_PASSWORD,
    identity_wrap_key,
    local_key,
    open_legacy_local,
    open_local,
    password_wrap_key,
    seal_local,
    unwrap_data_key,
    wrap_data_key,
)
from .recovery import (
    format_recovery_key,
    parse_recovery_key,
    recovery_auth_key,
    recovery_kek,
    sign_password_change,
    sign_recovery_proof,
    verify_password_change,
    verify_recovery_proof,
)
from .roster import RosterEntry, open_roster_entry, pupil_id_for, seal_roster_entry
from .wrap import unwrap_key, wrap_key

__all__ = ["check_vector", "SelfCheckFailed", "EXPECTS", "RULE_FOLDERS"]

RULE_FOLDERS = frozenset({"fold", "entitlement", "mis"})  # rules, not constructions: run by tests/sync, tests/mis

EXPECTS = (
    "success",
    "parse_failure",
    "auth_failure",
    "bad_signature",
    "no_key",
    "unsupported_version",
    "rollback",
    "unapproved",
)


class SelfCheckFailed(Exception):
    """A vector's expected result differs from what crypto/ did."""


class _In:
    """Reads a vector's hex inputs by name."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def b(self, name: str) -> bytes:
        return bytes.fromhex(self.raw[name])

    def n(self, name: str) -> int:
        return int(self.raw[name])

    def s(self, name: str) -> str:
        return str(self.raw[name])

    def random(self) -> list[bytes]:
        return [bytes.fromhex(x) for x in self.raw["random"]]


def _same(what: str, got: object, want: object) -> None:
    if got != want:
        raise SelfCheckFailed(f"{what}: got {got!r}, expected {want!r}")


def _account(i: _In, out: Mapping[str, Any]) -> None:
    keys = derive_account(i.s("password"), KdfParams.decode(i.b("params")))
    _same("login public key", keys.login.public.hex(), out["login_pk"])
    _same("key-encryption key", bytes(keys.kek).hex(), out["kek"])


def _challenge(i: _In, out: Mapping[str, Any]) -> None:
    login = SigningKey(i.b("login_seed"))
    if out:
        made = sign_challenge(login, i.b("school_id"), i.b("user_id"), i.b("challenge"))
        _same("signature", made.hex(), out["signature"])
    signature = bytes.fromhex(out["signature"]) if out else i.b("signature")
    verify_challenge(login.public, i.b("school_id"), i.b("user_id"), i.b("challenge"), signature)


def _bundle(i: _In, out: Mapping[str, Any]) -> None:
    if out:
        identity = IdentityKeys(BoxKeyPair(i.b("identity_x25519_sk")), SigningKey(i.b("identity_ed25519_seed")))
        with inject(i.random()):
            sealed = seal_bundle(identity, SecretKey(i.b("kek")), i.n("slot"), i.b("school_id"), i.b("user_id"))
        _same("sealed bundle", sealed.hex(), i.s("sealed"))
    opened = open_bundle(i.b("sealed"), SecretKey(i.b("kek")), i.n("slot"), i.b("school_id"), i.b("user_id"))
    if out:
        _same("identity X25519 key", bytes(opened.box).hex(), out["identity_x25519_sk"])
        _same("identity Ed25519 seed", bytes(opened.signing).hex(), out["identity_ed25519_seed"])


def _recovery(i: _In, out: Mapping[str, Any]) -> None:
    secret = parse_recovery_key(i.s("text"))
    if out:
        _same("secret", secret.hex(), i.s("secret"))
        _same("printed form", format_recovery_key(i.b("secret")), out["canonical"])
        _same("recovery KEK", bytes(recovery_kek(secret)).hex(), out["kek"])
        _same("recovery auth key", recovery_auth_key(secret).public.hex(), out["auth_pk"])


def _device_cert(i: _In, out: Mapping[str, Any]) -> None:
    if out:
        made = make_device_cert(
            SigningKey(i.b("identity_ed25519_seed")),
            DeviceCert(i.b("school_id"), i.b("user_id"), i.b("device_id"), i.b("device_pk"), i.n("created_ms")),
        )
        _same("certificate", made.hex(), i.s("cert"))
    cert = verify_device_cert(i.b("cert"), i.b("identity_ed25519_pk"))
    if out:
        for name in ("school_id", "user_id", "device_id", "device_pk"):
            _same(name, getattr(cert, name).hex(), out[name])
        _same("created_ms", cert.created_ms, out["created_ms"])


def _device_auth(i: _In, out: Mapping[str, Any]) -> None:
    device = SigningKey(i.b("device_seed"))
    if out:
        made = sign_device_auth(device, i.b("school_id"), i.b("device_id"), i.b("nonce"))
        _same("signature", made.hex(), out["signature"])
    signature = bytes.fromhex(out["signature"]) if out else i.b("signature")
    verify_device_auth(device.public, i.b("school_id"), i.b("device_id"), i.b("nonce"), signature)


def _delivery_auth(i: _In, out: Mapping[str, Any]) -> None:
    delivery = SigningKey(i.b("delivery_seed"))
    if out:
        made = sign_delivery_auth(delivery, i.b("school_id"), i.b("device_id"), i.b("nonce"))
        _same("signature", made.hex(), out["signature"])
    signature = bytes.fromhex(out["signature"]) if out else i.b("signature")
    verify_delivery_auth(delivery.public, i.b("school_id"), i.b("device_id"), i.b("nonce"), signature)


def _wrap(i: _In, out: Mapping[str, Any]) -> None:
    recipient = BoxKeyPair(i.b("recipient_sk"))
    if out:
        with inject(i.random()):
            _same("wrap", wrap_key(i.b("recipient_pk"), i.b("payload"), i.b("ad")).hex(), i.s("wrap"))
    payload = unwrap_key(i.b("wrap"), recipient, i.b("ad"))
    if out:
        _same("payload", payload.hex(), out["payload"])


def _grant(i: _In, out: Mapping[str, Any]) -> None:
    if out:
        info = GrantInfo(
            i.b("school_id"), i.b("reader_key_id"), i.n("reader_version"), i.b("member_id"),
            i.b("granter_device"), i.n("created_ms"),
        )
        with inject(i.random()):
            granter = SigningKey(i.b("granter_device_seed"))
            made = make_grant(info, BoxKeyPair(i.b("reader_sk")), i.b("member_x25519_pk"), granter)
        _same("grant", made.hex(), i.s("grant"))
    reader = open_grant(
        i.b("grant"), BoxKeyPair(i.b("member_x25519_sk")), i.b("school_id"), i.b("member_id"),
        i.b("granter_device_pk"), i.b("reader_pk"),
    )
    if out:
        _same("reader key", bytes(reader).hex(), out["reader_sk"])


def _entry_grant(i: _In, out: Mapping[str, Any]) -> None:
    if out and "envelope" not in i.raw:
        info = EntryGrantInfo(
            i.b("school_id"), i.b("concern_id"), i.n("entry_version"), i.b("member_id"),
            i.b("granter_device"), i.n("created_ms"),
        )
        with inject(i.random()):
            made = make_entry_grant(
                info, SecretKey(i.b("entry_key")), i.b("member_x25519_pk"), SigningKey(i.b("granter_device_seed"))
            )
        _same("entry key grant", made.hex(), i.s("grant"))
    info, key = open_entry_grant(
        i.b("grant"), BoxKeyPair(i.b("member_x25519_sk")), i.b("school_id"), i.b("member_id"),
        i.b("granter_device_pk"),
    )
    if "envelope" in i.raw:
        opened = env.open(i.b("envelope"), i.b("author_device_pk"), {}, {(info.concern_id, info.entry_version): key})
        if out:
            _same("content", opened.content.hex(), out["content"])
    elif out:
        _same("concern id", info.concern_id.hex(), out["concern_id"])
        _same("entry key version", info.entry_version, out["entry_version"])
        _same("entry key", bytes(key).hex(), out["entry_key"])


def _envelope(i: _In, out: Mapping[str, Any]) -> None:
    if out:
        recipients = [
            (env.Recipient(r["kind"], bytes.fromhex(r["id"]), r["version"]), bytes.fromhex(r["pk"]))
            for r in i.raw["recipients"]
        ]
        with inject(i.random()):
            sealed = env.seal(
                kind=i.n("kind"), school_id=i.b("school_id"), envelope_id=i.b("envelope_id"),
                concern_id=i.b("concern_id"), author_device=SigningKey(i.b("device_seed")),
                author_device_id=i.b("author_device"), counter=i.n("counter"), prev_hash=i.b("prev_hash"),
                device_time_ms=i.n("device_time_ms"), entry_key=SecretKey(i.b("entry_key")),
                entry_key_version=i.n("entry_key_version"),
                pupil_ids=[bytes.fromhex(x) for x in i.raw["pupil_ids"]], recipients=recipients,
                content=i.b("content"),
            )
        _same("envelope", sealed.hex(), i.s("envelope"))
        _same("envelope hash", env.envelope_hash(sealed).hex(), out["envelope_hash"])
    keys = {
        (k["kind"], bytes.fromhex(k["id"]), k["version"]): BoxKeyPair(bytes.fromhex(k["sk"]))
        for k in i.raw["reader_keys"]
    }
    opened = env.open(i.b("envelope"), i.b("author_device_pk"), keys)
    if out:
        _same("content", opened.content.hex(), out["content"])
        _same("padded size", env.parse(i.b("envelope")).padded_size, out["padded_size"])


def _roster(i: _In, out: Mapping[str, Any]) -> None:
    if "upn" in i.raw:
        _same("pupil id", pupil_id_for(BoxKeyPair(i.b("roster_sk")), i.s("upn")).hex(), out["pupil_id"])
        return
    if out:
        entry = RosterEntry(i.b("school_id"), i.b("pupil_id"), i.b("key_id"), i.n("key_version"),
                            i.b("author_device"), i.b("content"))
        with inject(i.random()):
            made = seal_roster_entry(BoxKeyPair(i.b("roster_sk")), entry, SigningKey(i.b("device_seed")))
        _same("roster entry", made.hex(), i.s("entry"))
    keys = {(bytes.fromhex(k["id"]), k["version"]): BoxKeyPair(bytes.fromhex(k["sk"])) for k in i.raw["keys"]}
    opened = open_roster_entry(i.b("entry"), keys, i.b("reader_school_id"), i.b("author_device_pk"))
    if out:
        _same("content", opened.content.hex(), out["content"])
        _same("pupil id", opened.pupil_id.hex(), out["pupil_id"])


def _local(i: _In, out: Mapping[str, Any]) -> None:
    args = (i.b("school_id"), i.b("user_id"), i.s("kind"), i.b("record_id"))
    if "kek" in i.raw:  # version 1, opened once with the old derivation
        key = local_key(SecretKey(i.b("kek")))
        if out:
            _same("local key", bytes(key).hex(), out["local_key"])
        opened = open_legacy_local(key, *args, i.b("sealed"))
    else:
        key = SecretKey(i.b("data_key"))
        if out:
            with inject(i.random()):
                _same("sealed", seal_local(key, *args, i.b("plaintext")).hex(), i.s("sealed"))
        opened = open_local(key, *args, i.b("sealed"))
    if out:
        _same("plaintext", opened.hex(), out["plaintext"])


def _local_wrap(i: _In, out: Mapping[str, Any]) -> None:
    slot = i.n("slot")
    key = password_wrap_key(SecretKey(i.b("kek"))) if slot == SLOT_PASSWORD else identity_wrap_key(
        i.b("identity_x25519_sk"))
    ids = (i.b("school_id"), i.b("user_id"), i.b("device_id"))
    if out:
        _same("wrap key", bytes(key).hex(), out["wrap_key"])
        with inject(i.random()):
            _same("wrap", wrap_data_key(SecretKey(i.b("data_key")), key, slot, *ids).hex(), i.s("wrap"))
    opened = unwrap_data_key(i.b("wrap"), key, slot, *ids)
    if out:
        _same("data key", bytes(opened).hex(), out["data_key"])


def _password_change(i: _In, out: Mapping[str, Any]) -> None:
    old = SigningKey(i.b("old_login_seed"))
    fields = [i.b(f) for f in ("school_id", "user_id", "challenge", "kdf_params", "login_pk", "bundle")]
    if out:
        _same("old login key", old.public.hex(), out["old_login_pk"])
        _same("signature", sign_password_change(old, *fields).hex(), out["signature"])
    signature = bytes.fromhex(out["signature"]) if out else i.b("signature")
    verify_password_change(old.public, *fields, signature)


def _recovery_proof(i: _In, out: Mapping[str, Any]) -> None:
    auth = recovery_auth_key(i.b("recovery_secret"))
    fields = [i.b(f) for f in ("school_id", "user_id", "challenge", "kdf_params", "login_pk", "bundle")]
    if out:
        _same("recovery auth key", auth.public.hex(), out["auth_pk"])
        _same("signature", sign_recovery_proof(auth, *fields).hex(), out["signature"])
    signature = bytes.fromhex(out["signature"]) if out else i.b("signature")
    verify_recovery_proof(auth.public, *fields, signature)


def _padding(i: _In, out: Mapping[str, Any]) -> None:
    _same("padded sizes", [env.padded_size(n) for n in i.raw["lengths"]], out["padded"])


def content_from_json(raw: Mapping[str, Any]) -> DirectoryContent:
    """A directory's content from its vector form (hex byte strings)."""
    b = bytes.fromhex
    return DirectoryContent(
        tuple(DirAccount(b(a["id"]), tuple(a["roles"]), b(a["identity_x25519_pk"]), b(a["identity_ed25519_pk"]),
                         b(a["binding"]), a["left"], a["login"], a["display_name"]) for a in raw["accounts"]),
        tuple(DirDevice(b(d["id"]), b(d["user_id"]), b(d["public_key"]), d["certified_ms"], b(d["cert_signature"]),
                        d["revoked"]) for d in raw["devices"]),
        tuple(DirKey(b(k["id"]), k["version"], k["purpose"], b(k["public_key"]), k["current"])
              for k in raw["reader_keys"]),
        tuple(DirPupil(b(x["id"]), b(x["reader_key_id"])) for x in raw["pupils"]),
        tuple(DirClass(b(k["id"]), k["label"], tuple(map(b, k["pupils"])), tuple(map(b, k["teachers"])))
              for k in raw["classes"]),
    )


def _directory(i: _In, out: Mapping[str, Any]) -> None:
    school = i.b("school_id")
    if out and "content" in i.raw:
        content = content_from_json(i.raw["content"])
        _same("content bytes", encode_content(content).hex(), out["content_bytes"])
        made = sign_directory(directory_signing_key(BoxKeyPair(i.b("signing_reader_sk"))), school_id=school,
                              version=i.n("version"), prev_hash=i.b("prev_hash"), created_ms=i.n("created_ms"),
                              next_signing_pk=i.b("next_signing_pk"), content=content,
                              approvals=[bytes.fromhex(a) for a in i.raw["approvals"]])
        _same("signed directory", made.hex(), i.s("signed"))
    previous = read_directory(i.b("previous")) if i.raw.get("previous") else None
    d = verify_directory(i.b("signed"), school, i.b("pinned_pk"), previous)
    if out:
        _same("signing key", d.signing_pk.hex(), out["signing_pk"])
        _same("hash", directory_hash(i.b("signed")).hex(), out["hash"])
        _same("fingerprint", fingerprint(school, d.signing_pk), out["fingerprint"])


def _approval(i: _In, out: Mapping[str, Any]) -> None:
    if out:
        items = [item_from_json(x, lambda v, _name: bytes.fromhex(v)) for x in i.raw["items"]]
        _same("item bytes", [encode_item(x).hex() for x in items], out["item_bytes"])
        made = sign_approval(SigningKey(i.b("device_seed")), school_id=i.b("school_id"), approval_id=i.b("approval_id"),
                             base_version=i.n("base_version"), base_hash=i.b("base_hash"),
                             approver_user=i.b("approver_user"), approver_device=i.b("approver_device"),
                             created_ms=i.n("created_ms"), items=items)
        _same("approval", made.hex(), out["approval"])
    approval = verify_approval(i.b("approval"), i.b("school_id"), i.b("device_pk"))
    if out:
        _same("items", [encode_item(x).hex() for x in approval.items], out["item_bytes"])


def _identity_binding(i: _In, out: Mapping[str, Any]) -> None:
    if out:
        made = sign_identity_binding(SigningKey(i.b("identity_ed25519_seed")), i.b("school_id"), i.b("user_id"),
                                     i.b("identity_x25519_pk"))
        _same("binding", made.hex(), out["binding"])
    verify_identity_binding(i.b("binding"), i.b("identity_ed25519_pk"), i.b("school_id"), i.b("user_id"),
                            i.b("identity_x25519_pk"))


_CHECKS: dict[str, Callable[[_In, Mapping[str, Any]], None]] = {
    "account": _account,
    "challenge": _challenge,
    "bundle": _bundle,
    "recovery": _recovery,
    "recovery_proof": _recovery_proof,
    "device_cert": _device_cert,
    "device_auth": _device_auth,
    "delivery_auth": _delivery_auth,
    "wrap": _wrap,
    "grant": _grant,
    "entry_grant": _entry_grant,
    "envelope": _envelope,
    "padding": _padding,
    "roster": _roster,
    "local": _local,
    "local_wrap": _local_wrap,
    "password_change": _password_change,
    "directory": _directory,
    "approval": _approval,
    "identity_binding": _identity_binding,
}


def check_vector(vector: Mapping[str, Any]) -> None:
    """Run one vector; raise SelfCheckFailed unless crypto/ does exactly what it expects."""
    construct, expect = vector.get("construct"), vector.get("expect")
    if construct not in _CHECKS:
        raise SelfCheckFailed(f"unknown construct {construct!r}")
    if expect not in EXPECTS:
        raise SelfCheckFailed(f"unknown expect {expect!r}")
    out = vector.get("output", {}) if expect == "success" else {}
    if expect == "success" and not out:
        raise SelfCheckFailed("a success vector must give its output")
    try:
        _CHECKS[construct](_In(vector["inputs"]), out)
    except CryptoError as exc:
        if exc.code != expect:
            raise SelfCheckFailed(f"expected {expect}, got {exc.code} ({exc})") from None
        return
    if expect != "success":
        raise SelfCheckFailed(f"expected {expect}, but it succeeded")
