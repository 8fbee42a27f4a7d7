"""Keyholder duties, run by every signed-in reader device while it is online (docs/PROTOCOL.md,
"Keyholder duties and leaving").

The server says what is owed (``GET /api/v1/keyholder/duties``); the device checks each item against the
school's signed directory with the rules of ``sync.entitlement`` and seals only what the signed roles and
classes allow, so neither a server nor an admin can steer a key to someone no keyholder approved:

- **rotations** (safeguarding keyholders): a key someone left gets a new version, made on this device and
  sealed to every member entitled to it; the device lists it in the next directory version unattended,
  with its own approval (a new version of a key it made itself: PROTOCOL 13.4);
- **grants**: every version this device holds of a key, to members entitled to it who lack that version:
  a teacher the directory now lists for a class, a current holder missing an old or a new version;
- **entry key grants made again** (with the device's ``Reader``): a person named on a concern whose entry
  key grant was made by a device now revoked, or by someone who left the safeguarding team, would lose the
  concern's earlier events (their device refuses such a grant, PROTOCOL 5.1). This device seals the entry
  key version again, but only if it holds it, the concern's own folded state names the person in
  ``need_to_know`` and the signed directory lists them as a current member: the server's list alone never
  steers an entry key to anyone.

Widening who may read at all (a role, a class, a new account) is never a duty: it is an approval, an
explicit act of a safeguarding keyholder on their own device (``Device.approve``).
pwa/js/sync/keyholder.js is the JavaScript twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto import BoxKeyPair, make_entry_grant
from crypto.entry_grant import EntryGrantInfo

from . import entitlement as rules
from .device import ApiFailure, Device, now_ms
from .protocol import b64d, b64e
from .reader import Reader, need_to_know

__all__ = ["DutyReport", "directory_view", "run_duties", "rotate"]

MAX_ENTRY_GRANTS = 1000  # per POST /api/v1/entry-grants


@dataclass
class DutyReport:
    granted: int = 0
    regranted: int = 0  # entry key grants made again (their granter is no longer a keyholder's device)
    rotated: list[tuple[bytes, int]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what the device would not seal, and why


def directory_view(directory: dict) -> rules.View:
    """The rules' view of the school as the signed directory lists it (no grants: the device checks roles
    and classes, ``rules.may_hold``, not the server's word on who holds what)."""
    return rules.view_of_directory(directory)


def _identity_pk(device: Device, member: bytes) -> bytes:
    account = next(a for a in device.directory["accounts"] if b64d(a["id"], "id") == member)
    return b64d(account["identity_x25519_pk"], "pk")


async def run_duties(device: Device, reader: Reader | None = None) -> DutyReport:
    """One round: rotations first (their grants make old versions owed), then the grants owed, then, with the
    device's ``reader`` (what it received, opened), the entry key grants to make again. Without a reader those
    are left for a run that has one, and said so in ``refused``."""
    report = DutyReport()
    await device.refresh()
    duties = await device.call("GET", "/api/v1/keyholder/duties")
    view = directory_view(device.directory)
    for item in duties["rotations"]:
        key_id = b64d(item["reader_key_id"], "reader_key_id")
        members = [b64d(m, "member") for m in item["members"]]
        unfit = [m for m in members if not rules.may_hold(view, m, key_id)]
        if unfit or (key_id, item["version"]) not in device.reader_keys:
            report.refused.append(f"rotation of {item['reader_key_id']}: the directory does not allow it")
            continue
        try:
            await rotate(device, key_id, item["version"] + 1, members)
        except ApiFailure as exc:
            if exc.code != "stale_duty":
                raise
            report.refused.append(f"rotation of {item['reader_key_id']}: {exc.detail}")  # done elsewhere first
            continue
        report.rotated.append((key_id, item["version"] + 1))
    if report.rotated:
        duties = await device.call("GET", "/api/v1/keyholder/duties")
        view = directory_view(device.directory)
    owed = []
    for item in duties["grants"]:
        key_id, member = b64d(item["reader_key_id"], "reader_key_id"), b64d(item["member_id"], "member_id")
        if (key_id, item["version"]) not in device.reader_keys or not rules.may_hold(view, member, key_id):
            report.refused.append(f"grant of {item['reader_key_id']} to {item['member_id']}: not allowed here")
            continue
        owed.append((key_id, item["version"], member, _identity_pk(device, member)))
    if owed:
        await device.grant(owed)
        report.granted = len(owed)
    again = duties.get("entry_grants", [])
    if again and reader is None:
        report.refused.append(f"{len(again)} entry key grants to make again: this run reads no concern")
    elif again:
        if reader is None or reader.device is not device:
            raise ValueError("run_duties needs the Reader of the same device whose duties it runs")
        report.regranted = await _regrant(reader, again, report)
    return report


async def _regrant(reader: Reader, items: list[dict], report: DutyReport) -> int:
    """Seal again each listed entry key version to its person, if this device holds it and the concern names
    them (its fold, ``need_to_know``) and they are a current member; refuse the rest into ``report``."""
    device = reader.device
    listed = {b64d(a["id"], "id"): b64d(a["identity_x25519_pk"], "pk")
              for a in device.directory["accounts"] if not a["left"]}
    reading = reader.read()
    concerns: dict[bytes, tuple[dict, set[bytes]]] = {}
    grants = []
    for item in items:
        concern, member = b64d(item["concern_id"], "concern_id"), b64d(item["member_id"], "member_id")
        version = item["entry_version"]
        if concern not in concerns:
            events = reading.events(concern)
            keys = {o.header.entry_key_version: o.entry_key for o, _ in events}
            concerns[concern] = keys, need_to_know(events, device.directory)
        keys, named = concerns[concern]
        what = f"entry key grant of {item['concern_id']} version {version} to {item['member_id']}"
        if type(version) is not int or version not in keys:
            report.refused.append(f"{what}: this device holds no such entry key version")
        elif member not in named:
            report.refused.append(f"{what}: the concern does not name that person")
        elif member not in listed:
            report.refused.append(f"{what}: not a current member in the signed directory")
        else:
            info = EntryGrantInfo(device.school_id, concern, version, member, device.device_id, now_ms())
            grants.append(b64e(make_entry_grant(info, keys[version], listed[member], device.device_key)))
    for start in range(0, len(grants), MAX_ENTRY_GRANTS):
        await device.call("POST", "/api/v1/entry-grants", grants=grants[start : start + MAX_ENTRY_GRANTS])
    return len(grants)


async def rotate(device: Device, key_id: bytes, version: int, members: list[bytes]) -> None:
    """Make ``version`` of a reader key on this device and seal it to ``members`` in one request."""
    await device.rotate_key(key_id, version, BoxKeyPair.generate(), members)
