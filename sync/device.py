"""The device side of accounts and keys, for the Python client: every key is made here, never on the
server. Used by the ``cairn`` device verbs, the demo school, the benchmarks and the tests.

``register`` and ``sign_in`` speak the HTTP API (docs/PROTOCOL.md part 2); ``Device`` holds what a
signed-in device knows (identity, device key, token, the reader keys its grants open, the directory)
and seals concerns into its outbox.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pyotp

from crypto import (
    SLOT_PASSWORD,
    SLOT_RECOVERY,
    BoxKeyPair,
    DeviceCert,
    GrantInfo,
    IdentityKeys,
    KdfParams,
    RosterEntry,
    SecretKey,
    SigningKey,
    derive_account,
    format_recovery_key,
    generate_recovery_key,
    make_device_cert,
    make_grant,
    open_bundle,
    open_grant,
    open_roster_entry,
    pupil_id_for,
    read_grant,
    recovery_auth_key,
    recovery_kek,
    seal_bundle,
    seal_roster_entry,
    sign_challenge,
    sign_identity_binding,
    sign_password_change,
)
from crypto import envelope as env
from crypto.approval import Item
from crypto.directory import SIGNING_PURPOSE, SignedDirectory
from crypto.roster import roster_entry_author

from . import directory as signed
from .outbox import ChainState, Outbox
from .protocol import b64d, b64e
from .vault import Vault

__all__ = ["ApiFailure", "EnrolmentRequired", "Registration", "Device", "register", "sign_in", "uuid7", "now_ms"]

SAFEGUARDING = "group:safeguarding"
SEN = "group:sen"
ROSTER_STAFF = "roster:staff"
ROSTER_SENSITIVE = "roster:sensitive"


class ApiFailure(Exception):
    def __init__(self, status: int, code: str, detail: str, error: dict | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail
        self.error = error or {}  # the whole error object: totp_enrolment_required carries the secret


class EnrolmentRequired(ApiFailure):
    """The account needs an authenticator (docs/PROTOCOL.md 10.1): add ``secret`` (or scan ``uri``) to one,
    then sign in again with its first code."""

    @property
    def secret(self) -> str:
        return str(self.error.get("totp_secret", ""))

    @property
    def uri(self) -> str:
        return str(self.error.get("totp_uri", ""))


def now_ms() -> int:
    return int(time.time() * 1000)


def uuid7() -> bytes:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version and variant bits, 74 random bits."""
    raw = bytearray(now_ms().to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (raw[6] & 0x0F)
    raw[8] = 0x80 | (raw[8] & 0x3F)
    return bytes(raw)


async def _call(http: httpx.AsyncClient, method: str, path: str, token: str | None = None, **body: object) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await http.request(method, path, json=body if method != "GET" else None, headers=headers)
    data = response.json() if response.content else {}
    if response.status_code >= 400:
        error = data.get("error", {})
        kind = EnrolmentRequired if error.get("code") == "totp_enrolment_required" else ApiFailure
        raise kind(response.status_code, error.get("code", "unknown"), error.get("detail", ""), error)
    return data


@dataclass(frozen=True)
class Registration:
    user_id: bytes
    recovery_key: str = field(repr=False)
    totp_secret: str | None = field(repr=False)


async def register(http: httpx.AsyncClient, school_id: bytes, code: str, password: str) -> tuple[Registration, Device]:
    """Accept an invitation: make the account's keys on this device and send only public halves and
    sealed bundles. Returns the recovery key to show once, and the TOTP secret to enrol. Account and device
    ids are chosen here; should another school hold one (``id_taken``), new ones are made and sent again."""
    params = KdfParams.new()
    account = derive_account(password, params)
    identity, device_key = IdentityKeys.generate(), SigningKey.generate()
    recovery = generate_recovery_key()
    for attempt in range(3):
        user_id, device_id = os.urandom(16), os.urandom(16)
        made = DeviceCert(school_id, user_id, device_id, device_key.public, now_ms())
        cert = make_device_cert(identity.signing, made)
        try:
            out = await _call(
                http,
                "POST",
                "/api/v1/register",
                school_id=b64e(school_id),
                code=code,
                kdf_params=b64e(params.encode()),
                login_pk=b64e(account.login.public),
                identity_x25519_pk=b64e(identity.box.public),
                identity_ed25519_pk=b64e(identity.signing.public),
                identity_binding=b64e(
                    sign_identity_binding(identity.signing, school_id, user_id, identity.box.public)
                ),
                bundle=b64e(seal_bundle(identity, account.kek, SLOT_PASSWORD, school_id, user_id)),
                recovery_bundle=b64e(seal_bundle(identity, recovery_kek(recovery), SLOT_RECOVERY, school_id, user_id)),
                recovery_auth_pk=b64e(recovery_auth_key(recovery).public),
                device_id=b64e(device_id),
                device_pk=b64e(device_key.public),
                device_cert=b64e(cert),
            )
        except ApiFailure as exc:
            if exc.code != "id_taken" or attempt == 2:
                raise
            continue
        break
    registration = Registration(user_id, format_recovery_key(recovery), out.get("totp_secret"))
    device = Device(http, school_id, user_id, out["login"], identity, device_id, device_key, set(out["roles"]))
    return registration, device


async def sign_in(
    http: httpx.AsyncClient,
    school_id: bytes,
    login: str,
    password: str,
    *,
    totp_secret: str | None = None,
    totp: str | None = None,
    device: Device | None = None,
    enrol: Callable[[str, str], str | Awaitable[str]] | None = None,
) -> Device:
    """Sign in with the password (and a TOTP code where the account reads concerns or administers).
    Without ``device`` this is a new device: it makes its own key, and its user's identity key (opened
    from the bundle the server returns after a good proof) certifies it. ``totp`` is a code already made;
    ``totp_secret`` makes the current one.

    An account without a confirmed authenticator is enrolled: the server answers the good password with
    the secret. ``enrol(secret, uri)`` is then called (show the QR code, store the secret) and returns the
    first code, with which the sign-in completes; without ``enrol`` this raises ``EnrolmentRequired``."""
    start = await _call(http, "POST", "/api/v1/sign-in/start", school_id=b64e(school_id), login=login)
    account = derive_account(password, KdfParams.decode(b64d(start["kdf_params"], "kdf_params")))
    user_id = b64d(start["user_id"], "user_id")
    device_id = device.device_id if device else os.urandom(16)
    device_key = device.device_key if device else SigningKey.generate()
    code = totp or (pyotp.TOTP(totp_secret).now() if totp_secret else None)
    for attempt in range(4):
        if attempt:  # each try answers a fresh challenge; the password is derived once
            start = await _call(http, "POST", "/api/v1/sign-in/start", school_id=b64e(school_id), login=login)
        body: dict[str, object] = {
            "challenge_id": start["challenge_id"],
            "device_id": b64e(device_id),
            "device_pk": b64e(device_key.public),
            "signature": b64e(sign_challenge(account.login, school_id, user_id, b64d(start["nonce"], "nonce"))),
        }
        if code:
            body["totp"] = code
        try:
            finish = await _call(http, "POST", "/api/v1/sign-in/finish", **body)
        except EnrolmentRequired as exc:
            if enrol is None or code:
                raise
            made = enrol(exc.secret, exc.uri)
            code = await made if inspect.isawaitable(made) else made
            continue
        except ApiFailure as exc:
            if exc.code != "id_taken" or device is not None:
                raise
            device_id = os.urandom(16)  # another school's device has this id: a new one
            continue
        break
    else:
        raise ApiFailure(401, "sign_in_failed", "signing in did not complete")
    identity = open_bundle(b64d(finish["bundle"], "bundle"), account.kek, SLOT_PASSWORD, school_id, user_id)
    signed_in = device or Device(http, school_id, user_id, login, identity, device_id, device_key, set(finish["roles"]))
    signed_in.token = finish["token"]
    if not finish["device_known"]:
        cert = make_device_cert(
            identity.signing, DeviceCert(school_id, user_id, device_id, device_key.public, now_ms())
        )
        await _call(http, "POST", "/api/v1/devices/certify", finish["token"], cert=b64e(cert))
    return signed_in


@dataclass
class Device:
    """A signed-in device: identity, device key, session token, and what its grants open."""

    http: httpx.AsyncClient
    school_id: bytes
    user_id: bytes
    login: str
    identity: IdentityKeys
    device_id: bytes
    device_key: SigningKey
    roles: set[str]
    token: str | None = None
    reader_keys: dict[tuple[bytes, int], BoxKeyPair] = field(default_factory=dict)
    directory: dict = field(default_factory=dict)  # the newest signed version's content (sync.directory.listing)
    pinned_signing_pk: bytes | None = None  # the school signing key, pinned at first sign-in
    signed_directory: SignedDirectory | None = field(default=None, repr=False)
    made_keys: set[Item] = field(default_factory=set, repr=False)  # key versions this device made in rotations
    _directory_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    async def call(self, method: str, path: str, **body: object) -> dict:
        return await _call(self.http, method, path, self.token, **body)

    @property
    def fingerprint(self) -> str | None:
        """The pinned school signing key as people compare it (six groups of four characters)."""
        return signed.fingerprint_of(self.school_id, self.pinned_signing_pk)

    async def change_password(
        self,
        old_password: str,
        new_password: str,
        *,
        totp_secret: str | None = None,
        totp: str | None = None,
        vault: Vault | None = None,
    ) -> None:
        """Change the account's password (docs/PROTOCOL.md 2.9, 10.1): the old login key signs the new
        material over a fresh challenge; the identity, its grants and the recovery key stay. With ``vault``
        (this device's sealed records) the data key is rewrapped under the new password: staged before the
        request, committed after it, dropped if the server refuses, so every record opens afterwards and a
        lost answer leaves a store that opens with either password. Every other session of the account ends."""
        start = await self.call("POST", "/api/v1/account/password/start")
        old = derive_account(old_password, KdfParams.decode(b64d(start["kdf_params"], "kdf_params")))
        params = KdfParams.new()
        new = derive_account(new_password, params)
        encoded = params.encode()
        bundle = seal_bundle(self.identity, new.kek, SLOT_PASSWORD, self.school_id, self.user_id)
        proof = sign_password_change(
            old.login, self.school_id, self.user_id, b64d(start["nonce"], "nonce"), encoded, new.login.public, bundle
        )
        if vault is not None:
            if not vault.unlocked:
                vault.unlock(old.kek)
            vault.stage(new.kek)
        body: dict[str, object] = {
            "challenge_id": start["challenge_id"],
            "signature": b64e(proof),
            "kdf_params": b64e(encoded),
            "login_pk": b64e(new.login.public),
            "bundle": b64e(bundle),
        }
        code = totp or (pyotp.TOTP(totp_secret).now() if totp_secret else None)
        if code:
            body["totp"] = code
        try:
            await self.call("POST", "/api/v1/account/password", **body)
        except ApiFailure:
            if vault is not None:
                vault.discard_staged()  # refused: nothing changed on the server either
            raise
        if vault is not None:
            vault.commit()

    async def register_delivery_key(self, key: SigningKey | None = None) -> SigningKey:
        """Make (or take) this device's delivery key and register its public half (PROTOCOL 3.2): kept outside
        the person's sealed keys, it lets the device send what it already sealed while the person is locked
        out, and nothing else. Returns the key, for the caller to keep."""
        key = key or SigningKey.generate()
        await self.call("POST", "/api/v1/devices/delivery-key", public_key=b64e(key.public))
        return key

    async def refresh(self) -> None:
        """Follow the signed directory (docs/PROTOCOL.md 13), open every grant addressed to this user, and,
        on a safeguarding keyholder's device, sign the next directory version if the school changed in a
        way it may sign unattended (PROTOCOL 13.4): never a widening its person has not approved."""
        async with self._directory_lock:  # one at a time: an older answer would look like a rollback
            served = await self._follow()
            await self._open_grants()
            if await self._resign(served):
                await self._open_grants()

    async def follow_directory(self) -> dict:
        """Fetch the directory, verify every version after the one held against the pinned key, and keep
        the newest. Raises sync.directory.DirectoryRefused (and keeps what it held) if one does not verify."""
        async with self._directory_lock:
            return await self._follow()

    async def pending(self) -> frozenset:
        """The widenings the server's state holds that no keyholder has approved yet (for a keyholder)."""
        async with self._directory_lock:
            served = await self._follow()
            if not served.get("changed") or "current" not in served or self.signed_directory is None:
                return frozenset()
            return signed.prepare(self.school_id, served["current"], self.signed_directory, self.made_keys).pending

    async def approve(self, items: set[Item] | frozenset | None = None) -> frozenset:
        """This keyholder approves ``items`` (the widenings its person saw and confirmed on this device;
        None: every widening pending now, as a reviewed list), signing an approval and the next directory
        version that lists them. Returns what the new version added."""
        async with self._directory_lock:
            served = await self._follow()
            if self.signed_directory is None:
                raise signed.DirectoryRefused("no_directory", "the school has no signed directory yet")
            if not served.get("changed") or "current" not in served:
                return frozenset()
            held = self.signed_directory
            chosen = (
                signed.prepare(self.school_id, served["current"], held, ()).pending if items is None else items
            )
            included: frozenset = frozenset()
            if await self._resign(served, chosen) and self.signed_directory is not held:
                included = frozenset(i for a in self.signed_directory.approvals for i in a.items)
            await self._open_grants()
            return included

    async def _follow(self) -> dict:
        while True:
            since = self.signed_directory.version if self.signed_directory else 0
            served = await self.call("GET", f"/api/v1/directory?since={since}")
            followed = signed.follow(served, self.school_id, self.pinned_signing_pk, self.signed_directory)
            if followed is not None:
                self.signed_directory, self.pinned_signing_pk = followed.directory, followed.pinned_pk
                self.directory = signed.listing(followed.directory)
            if followed is None or not followed.more:
                return served

    async def _resign(self, served: dict, allowed: set[Item] | frozenset = frozenset(), attempts: int = 3) -> bool:
        """Sign the next version if the server's state changed in a way this device may sign: what narrows
        or certifies, its own rotations' key versions, and ``allowed`` (what its person just approved)."""
        for _ in range(attempts):
            if not served.get("changed") or "current" not in served:
                return False
            key = signed.signing_key_for(self.reader_keys, served["current"]["reader_keys"], self.pinned_signing_pk)
            if key is None:
                return False
            held = self.signed_directory
            prepared = signed.prepare(self.school_id, served["current"], held, set(allowed) | self.made_keys)
            if not prepared.differs_from(held):
                return False
            approvals = []
            if prepared.included and held is not None:
                approvals.append(signed.make_approval(self.device_key, self.device_id, self.user_id, held,
                                                      prepared.included))
            raw = signed.sign_next(key, self.school_id, prepared.content, held, now_ms(), approvals=approvals)
            try:
                await self.call("POST", "/api/v1/directory", signed=b64e(raw))
            except ApiFailure as exc:
                if exc.code != "stale_directory":
                    raise
                served = await self._follow()
                continue
            await self._follow()
            return True
        return False

    async def _open_grants(self) -> None:
        if not self.directory:
            return
        devices = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in self.directory["devices"]}
        listed = {
            (b64d(k["id"], "id"), k["version"]): b64d(k["public_key"], "pk") for k in self.directory["reader_keys"]
        }
        for raw in (await self.call("GET", "/api/v1/grants"))["grants"]:
            grant = b64d(raw, "grant")
            info = read_grant(grant)[0]
            key = (info.reader_key_id, info.reader_version)
            if key in self.reader_keys or key not in listed or info.granter_device not in devices:
                continue
            self.reader_keys[key] = open_grant(
                grant, self.identity.box, self.school_id, self.user_id, devices[info.granter_device], listed[key]
            )

    def keyring(self) -> dict[tuple[int, bytes, int], BoxKeyPair]:
        """Keys for ``envelope.open``: reader keys from grants, and this user's identity key."""
        ring = {(env.RECIPIENT_READER_KEY, k, v): pair for (k, v), pair in self.reader_keys.items()}
        ring[(env.RECIPIENT_PERSON, self.user_id, 1)] = self.identity.box
        return ring

    def group_key(self, purpose: str) -> tuple[bytes, int, bytes]:
        """The current version of a group's reader key, from the directory: (id, version, public key)."""
        versions = [k for k in self.directory["reader_keys"] if k["purpose"] == purpose and k["current"]]
        if not versions:
            raise LookupError(f"the directory lists no current key for {purpose}")
        best = max(versions, key=lambda k: k["version"])
        return b64d(best["id"], "id"), best["version"], b64d(best["public_key"], "pk")

    def pupil_key(self, pupil_id: bytes) -> tuple[bytes, int, bytes]:
        pupil = next(p for p in self.directory["pupils"] if b64d(p["id"], "id") == pupil_id)
        key_id = b64d(pupil["reader_key_id"], "id")
        versions = [k for k in self.directory["reader_keys"] if b64d(k["id"], "id") == key_id and k["current"]]
        best = max(versions, key=lambda k: k["version"])
        return key_id, best["version"], b64d(best["public_key"], "pk")

    # --- keys a keyholder makes ------------------------------------------------------------------

    async def found_groups(self, purposes: tuple[str, ...] = (SAFEGUARDING, SEN)) -> None:
        """The founding device makes the school's group reader keys and grants them to itself, in one
        request. With the safeguarding group it also makes the ``signing:directory`` key, whose private half
        yields the school signing key, and signs the first directory version (which needs no approval: there
        is nothing before it). Later, a new group's key is a widening this keyholder approves at once."""
        if SAFEGUARDING in purposes:
            purposes = (*purposes, SIGNING_PURPOSE)
        made = {p: (os.urandom(16), BoxKeyPair.generate()) for p in purposes}
        for key_id, pair in made.values():
            self.reader_keys[(key_id, 1)] = pair
        await self.call(
            "POST",
            "/api/v1/keys",
            keys=[
                {"id": b64e(i), "version": 1, "purpose": p, "public_key": b64e(k.public)} for p, (i, k) in made.items()
            ],
            grants=self._grants([(key_id, 1, self.user_id, self.identity.box.public) for key_id, _ in made.values()]),
        )
        if self.signed_directory is None:
            await self.refresh()
        else:
            await self.approve({("key", i, 1, p, k.public) for p, (i, k) in made.items()})

    async def add_pupils(self, pupil_ids: list[bytes]) -> None:
        """A safeguarding keyholder's device makes each pupil's reader key and keeps it (it grants it to
        teachers), in one request with its own grants; adding them is a widening it approves at once."""
        rows, items = [], set()
        for pupil_id in pupil_ids:
            key_id, pair = os.urandom(16), BoxKeyPair.generate()
            self.reader_keys[(key_id, 1)] = pair
            rows.append(
                {
                    "id": b64e(pupil_id),
                    "reader_key": {"id": b64e(key_id), "version": 1, "public_key": b64e(pair.public)},
                }
            )
            items |= {("pupil", pupil_id, key_id), ("key", key_id, 1, "pupil", pair.public)}
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            await self.call(
                "POST",
                "/api/v1/pupils",
                pupils=chunk,
                grants=self._grants(
                    [(b64d(r["reader_key"]["id"], "id"), 1, self.user_id, self.identity.box.public) for r in chunk]
                ),
            )
        if self.signed_directory is None:
            await self.refresh()
        else:
            await self.approve(items)

    async def rotate_key(self, key_id: bytes, version: int, pair: BoxKeyPair, members: list[bytes]) -> None:
        """Publish ``version`` of a reader key made on this device, sealed to ``members`` in one request
        (``POST /api/v1/keys/rotate``); this device may then list it in the directory unattended."""
        listed = {b64d(a["id"], "id"): b64d(a["identity_x25519_pk"], "pk") for a in self.directory["accounts"]}
        purpose = next(k["purpose"] for k in self.directory["reader_keys"] if b64d(k["id"], "id") == key_id)
        grants = [
            b64e(
                make_grant(
                    GrantInfo(self.school_id, key_id, version, member, self.device_id, now_ms()),
                    pair,
                    listed[member],
                    self.device_key,
                )
            )
            for member in members
        ]
        await self.call(
            "POST",
            "/api/v1/keys/rotate",
            reader_key_id=b64e(key_id),
            version=version,
            public_key=b64e(pair.public),
            grants=grants,
        )
        self.reader_keys[(key_id, version)] = pair
        self.made_keys.add(("key", key_id, version, purpose, pair.public))
        await self.refresh()

    def _grants(self, grants: list[tuple[bytes, int, bytes, bytes]]) -> list[str]:
        return [
            b64e(
                make_grant(
                    GrantInfo(self.school_id, key_id, version, member, self.device_id, now_ms()),
                    self.reader_keys[(key_id, version)],
                    member_pk,
                    self.device_key,
                )
            )
            for key_id, version, member, member_pk in grants
        ]

    async def grant(self, grants: list[tuple[bytes, int, bytes, bytes]]) -> None:
        """Seal reader keys this device holds to members: (key id, version, member id, member X25519 key)."""
        made = self._grants(grants)
        for start in range(0, len(made), 1000):
            await self.call("POST", "/api/v1/grants", grants=made[start : start + 1000])

    # --- the roster ------------------------------------------------------------------------------

    def roster_key(self, purpose: str = ROSTER_STAFF) -> tuple[bytes, int, BoxKeyPair]:
        key_id, version, _ = self.group_key(purpose)
        return key_id, version, self.reader_keys[(key_id, version)]

    def pupil_id(self, upn: str) -> bytes:
        """The pseudonymous id of the pupil with this UPN (a keyed hash under the staff roster key)."""
        return pupil_id_for(self.roster_key()[2], upn)

    async def publish_roster(self, entries: list[tuple[bytes, str, bytes]]) -> None:
        """Seal roster entries (pupil id, roster purpose, UTF-8 JSON content) and upload them."""
        made = []
        for pupil_id, purpose, content in entries:
            key_id, version, pair = self.roster_key(purpose)
            entry = RosterEntry(self.school_id, pupil_id, key_id, version, self.device_id, content)
            made.append(b64e(seal_roster_entry(pair, entry, self.device_key)))
        for start in range(0, len(made), 1000):
            await self.call("POST", "/api/v1/roster", entries=made[start : start + 1000])

    async def roster(self) -> dict[bytes, dict]:
        """Fetch and open the roster this user may read: pupil id -> fields (staff and sensitive merged)."""
        devices = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in self.directory["devices"]}
        out: dict[bytes, dict] = {}
        for raw in (await self.call("GET", "/api/v1/roster"))["entries"]:
            data = b64d(raw, "entry")
            author = roster_entry_author(data)
            if author not in devices:
                continue  # an entry by a device the directory does not list is never trusted
            opened = open_roster_entry(data, self.reader_keys, self.school_id, devices[author])
            out.setdefault(opened.pupil_id, {}).update(json.loads(opened.content))
        return out

    # --- writing concerns ------------------------------------------------------------------------

    def recipients_for(
        self,
        pupil_ids: list[bytes],
        *,
        restricted: bool = False,
        groups: tuple[str, ...] = (),
        people: tuple[tuple[bytes, bytes], ...] = (),
    ) -> list[tuple[env.Recipient, bytes]]:
        """docs/ARCHITECTURE.md's rule (Keys): the safeguarding group always; each pupil's key unless restricted; the
        category's groups; named people. Every key comes from the directory."""
        key_id, version, pk = self.group_key(SAFEGUARDING)
        out = [(env.Recipient(env.RECIPIENT_READER_KEY, key_id, version), pk)]
        if not restricted:
            for pupil in pupil_ids:
                key_id, version, pk = self.pupil_key(pupil)
                out.append((env.Recipient(env.RECIPIENT_READER_KEY, key_id, version), pk))
            for group in groups:
                key_id, version, pk = self.group_key(group)
                out.append((env.Recipient(env.RECIPIENT_READER_KEY, key_id, version), pk))
        listed = {b64d(a["id"], "id"): b64d(a["identity_x25519_pk"], "pk") for a in self.directory.get("accounts", [])}
        for user_id, pk in people:
            if listed.get(user_id) != pk:
                raise LookupError("a named person's key is not the one the signed directory lists")
            out.append((env.Recipient(env.RECIPIENT_PERSON, user_id, 1), pk))
        return out

    def write(
        self,
        outbox: Outbox,
        content: bytes,
        *,
        concern_id: bytes | None = None,
        entry_key: SecretKey | None = None,
        entry_key_version: int = 1,
        pupil_ids: list[bytes] = (),
        restricted: bool = False,  # type: ignore[assignment]
        groups: tuple[str, ...] = (),
        recipients: list[tuple[env.Recipient, bytes]] | None = None,
    ) -> bytes:
        """Seal one event and queue it in ``outbox`` (durably, before any network). Returns its id.
        ``entry_key_version``: the version ``entry_key`` is of (a follow-up keeps its concern's key and version)."""
        concern_id = concern_id or os.urandom(16)
        entry_key = entry_key or SecretKey.generate()
        chosen = (
            recipients
            if recipients is not None
            else self.recipients_for(list(pupil_ids), restricted=restricted, groups=groups)
        )

        def seal(chain: ChainState) -> tuple[bytes, bytes, bytes]:
            envelope_id = uuid7()
            sealed = env.seal(
                kind=env.KIND_CONCERN_EVENT,
                school_id=self.school_id,
                envelope_id=envelope_id,
                concern_id=concern_id,
                author_device=self.device_key,
                author_device_id=self.device_id,
                counter=chain.counter + 1,
                prev_hash=chain.last_hash,
                device_time_ms=now_ms(),
                entry_key=entry_key,
                entry_key_version=entry_key_version,
                pupil_ids=list(pupil_ids),
                recipients=chosen,
                content=content,
            )
            return envelope_id, sealed, env.envelope_hash(sealed)

        return outbox.queue(seal)
