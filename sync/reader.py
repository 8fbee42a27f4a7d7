"""What a Python reader device can read of what it received, and what waits (docs/PROTOCOL.md 9.5 and 12.1).

The device's local store keeps every envelope the server sent, sealed as it came (``Outbox.inbox``). ``Reader``
opens them with what the device holds *now*: its reader keys, its person's identity key, and the entry keys
of the entry key grants addressed to it (5.1). What it cannot open yet is not dropped, only counted, with the
reason: no key for it yet (a grant not sealed to this person yet, a rotation not sealed to it), or an author
device the signed directory does not list yet. Each ``read`` tries everything again, so an envelope opens as
soon as what it needs arrives; ``refresh`` (the client's ``on_grants`` and ``on_directory``) fetches that.

Naming someone on a need-to-know basis (``name_need_to_know``) writes the ``amended`` event and re-seals every
entry key version of the concern this device holds to the person, so they read the concern from its start.
The PWA's Casebook (pwa/js/review/casebook.js, grants.js) is the JavaScript twin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from crypto import CryptoError, SecretKey, make_entry_grant, open_entry_grant, read_entry_grant
from crypto import envelope as env
from crypto.entry_grant import EntryGrantInfo

from .client import ENTRY_KEY, READER_KEY, KeyRef
from .device import Device, now_ms
from .events import Event, decode
from .fold import fold, frontier
from .outbox import Outbox
from .protocol import b64d, b64e
from .record import InvalidEvent
from .writer import ConcernWriter, Written

__all__ = ["Reader", "Reading", "keyholder_devices", "need_to_know"]


@dataclass
class Reading:
    """One pass over what the device received."""

    opened: list[tuple[int, env.Opened, Event]] = field(default_factory=list)  # seq, envelope, event
    waiting_for_keys: set[bytes] = field(default_factory=set)  # concern ids: no key of this device opens them yet
    waiting_for_device: set[bytes] = field(default_factory=set)  # concern ids: the author device is not listed yet
    refused: int = 0  # envelopes that fail verification or decoding: never opened

    def events(self, concern_id: bytes) -> list[tuple[env.Opened, Event]]:
        return [(o, e) for _, o, e in self.opened if o.header.concern_id == concern_id]


def keyholder_devices(directory: dict) -> dict[bytes, bytes]:
    """Device id -> public key of every device the directory lists, not revoked, of a current member of the
    safeguarding team: the only devices whose entry key grants a device accepts (naming is their decision)."""
    team = {
        b64d(a["id"], "id") for a in directory.get("accounts", []) if "safeguarding" in a["roles"] and not a["left"]
    }
    return {
        b64d(d["id"], "id"): b64d(d["public_key"], "pk")
        for d in directory.get("devices", [])
        if not d["revoked"] and b64d(d["user_id"], "id") in team
    }


class Reader:
    def __init__(self, device: Device, outbox: Outbox) -> None:
        self.device, self.outbox = device, outbox
        self.entry_keys: dict[tuple[bytes, int], SecretKey] = {}  # (concern id, version) -> key, from entry grants
        self.refused_grants: list[str] = []  # why entry key grants were refused (never key bytes)
        self._seen_grants: set[bytes] = set()

    # --- what arrives late ------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Follow the directory and open new grants (``Device.refresh``), then the entry key grants."""
        await self.device.refresh()
        await self.open_entry_grants()

    async def open_entry_grants(self) -> int:
        """Fetch and open the entry key grants addressed to this person; returns how many opened now. A grant
        not made by a current safeguarding member's listed device is refused, as one that does not verify."""
        opened = 0
        signers = keyholder_devices(self.device.directory)
        for raw in (await self.device.call("GET", "/api/v1/entry-grants"))["grants"]:
            grant = b64d(raw, "grant")
            if grant in self._seen_grants:
                continue
            try:
                info = read_entry_grant(grant)[0]
                pk = signers.get(info.granter_device)
                if pk is None:
                    if info.granter_device in _listed(self.device):  # listed, but not a keyholder's: for good
                        self.refused_grants.append("an entry key grant not made by a safeguarding keyholder's device")
                        self._seen_grants.add(grant)
                    continue  # not listed yet: tried again after the next refresh
                info, key = open_entry_grant(grant, self.device.identity.box, self.device.school_id,
                                             self.device.user_id, pk)
            except CryptoError as exc:
                self.refused_grants.append(f"an entry key grant: {exc.code}")
                self._seen_grants.add(grant)
                continue
            self._seen_grants.add(grant)
            self.entry_keys.setdefault((info.concern_id, info.entry_version), key)
            opened += 1
        return opened

    def key_refs(self) -> frozenset[KeyRef]:
        """Every key this device reads with, as the sync client backfills them (``SyncClient(keys=...)``)."""
        refs = {(READER_KEY, key_id, version) for key_id, version in self.device.reader_keys}
        refs |= {(ENTRY_KEY, concern, version) for concern, version in self.entry_keys}
        return frozenset(refs)

    # --- reading ----------------------------------------------------------------------------------

    def read(self) -> Reading:
        """Open everything received with what the device holds now; count what waits, and why."""
        reading = Reading()
        devices = {b64d(d["id"], "id"): b64d(d["public_key"], "pk") for d in self.device.directory.get("devices", [])}
        keyring = self.device.keyring()
        for seq, _, body in self.outbox.inbox():
            try:
                header = env.parse(body).header
            except CryptoError:
                reading.refused += 1
                continue
            author = devices.get(header.author_device)
            if author is None:
                reading.waiting_for_device.add(header.concern_id)
                continue
            try:
                opened = env.open(body, author, keyring, self.entry_keys)
                event = decode(opened.content, event_id=header.envelope_id, concern_id=header.concern_id,
                               author_device=header.author_device, device_time_ms=header.device_time_ms)
            except CryptoError as exc:
                if exc.code == "no_key":
                    reading.waiting_for_keys.add(header.concern_id)
                else:
                    reading.refused += 1
                continue
            except InvalidEvent:
                reading.refused += 1
                continue
            reading.opened.append((seq, opened, event))
        opened_concerns = {o.header.concern_id for _, o, _ in reading.opened}
        reading.waiting_for_keys -= opened_concerns  # a concern partly open is shown; only what is closed waits
        reading.waiting_for_device -= opened_concerns
        return reading

    # --- naming on a need-to-know basis -------------------------------------------------------------

    async def name_need_to_know(self, writer: ConcernWriter, concern_id: bytes, people: Iterable[bytes]) -> Written:
        """A safeguarding keyholder names ``people`` on a concern: the ``amended`` event (under the newest entry
        key version held, to its recipients and every named person), then every entry key version of the
        concern this device holds re-sealed to each newly named person (``POST /api/v1/entry-grants``)."""
        events = self.read().events(concern_id)
        if not events:
            raise LookupError("this device holds no event of that concern")
        listed = {b64d(a["id"], "id"): b64d(a["identity_x25519_pk"], "pk")
                  for a in self.device.directory["accounts"] if not a["left"]}
        people = list(dict.fromkeys(people))
        if any(p not in listed for p in people):
            raise LookupError("a named person is not a current member of staff in the signed directory")
        value = sorted({n.hex() for n in need_to_know(events, self.device.directory)} | {p.hex() for p in people})
        newest = max(events, key=lambda pair: pair[0].header.entry_key_version)[0]
        heads = set(frontier([e for _, e in events]))
        parents = [e for _, e in events if e.id in heads]
        extra = tuple((bytes.fromhex(u), listed[bytes.fromhex(u)]) for u in value if bytes.fromhex(u) in listed)
        written = writer.follow_up(newest, parents, "amended", {"field": "need_to_know", "value": value}, people=extra)
        keys = {o.header.entry_key_version: o.entry_key for o, _ in events}
        grants = [
            b64e(make_entry_grant(
                EntryGrantInfo(self.device.school_id, concern_id, version, person, self.device.device_id, now_ms()),
                key, listed[person], self.device.device_key,
            ))
            for person in people
            for version, key in sorted(keys.items())
        ]
        for start in range(0, len(grants), 1000):
            await self.device.call("POST", "/api/v1/entry-grants", grants=grants[start : start + 1000])
        return written


def need_to_know(events: Iterable[tuple[env.Opened, Event]], directory: dict) -> set[bytes]:
    """The people a concern's own folded state names on a need-to-know basis (every head of its ``need_to_know``
    register), folded with the safeguarding team of the signed directory: the only people a keyholder device
    seals the concern's entry keys to (naming, and the duty that makes a grant again, sync/keyholder.py)."""
    team = {b64d(a["id"], "id").hex() for a in directory.get("accounts", []) if "safeguarding" in a["roles"]}
    state = fold([e for _, e in events], safeguarding=team)
    return {bytes.fromhex(v) for h in state["fields"].get("need_to_know", []) for v in h.get("value") or []}


def _listed(device: Device) -> set[bytes]:
    return {b64d(d["id"], "id") for d in device.directory.get("devices", [])}
