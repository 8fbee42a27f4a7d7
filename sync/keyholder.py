"""Keyholder duties, run by every signed-in reader device while it is online (docs/PROTOCOL.md,
"Keyholder duties and leaving").

The server says what is owed (``GET /api/v1/keyholder/duties``); the device checks each item against the
school's signed directory with the rules of ``sync.entitlement`` and seals only what the signed roles and
classes allow, so neither a server nor an admin can steer a key to someone no keyholder approved:

- **rotations** (safeguarding keyholders): a key someone left gets a new version, made on this device and
  sealed to every member entitled to it; the device lists it in the next directory version unattended,
  with its own approval (a new version of a key it made itself: PROTOCOL 13.4);
- **grants**: every version this device holds of a key, to members entitled to it who lack that version:
  a teacher the directory now lists for a class, a current holder missing an old or a new version.

Widening who may read at all (a role, a class, a new account) is never a duty: it is an approval, an
explicit act of a safeguarding keyholder on their own device (``Device.approve``).
pwa/js/sync/keyholder.js is the JavaScript twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto import BoxKeyPair

from . import entitlement as rules
from .device import ApiFailure, Device
from .protocol import b64d

__all__ = ["DutyReport", "directory_view", "run_duties", "rotate"]


@dataclass
class DutyReport:
    granted: int = 0
    rotated: list[tuple[bytes, int]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what the device would not seal, and why


def directory_view(directory: dict) -> rules.View:
    """The rules' view of the school as the signed directory lists it (no grants: the device checks roles
    and classes, ``rules.may_hold``, not the server's word on who holds what)."""
    return rules.view_of_directory(directory)


def _identity_pk(device: Device, member: bytes) -> bytes:
    account = next(a for a in device.directory["accounts"] if b64d(a["id"], "id") == member)
    return b64d(account["identity_x25519_pk"], "pk")


async def run_duties(device: Device) -> DutyReport:
    """One round: rotations first (their grants make old versions owed), then the grants owed."""
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
    return report


async def rotate(device: Device, key_id: bytes, version: int, members: list[bytes]) -> None:
    """Make ``version`` of a reader key on this device and seal it to ``members`` in one request."""
    await device.rotate_key(key_id, version, BoxKeyPair.generate(), members)
