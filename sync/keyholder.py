"""Keyholder duties, run by every signed-in keyholder device while it is online (docs/PROTOCOL.md,
"Keyholder duties and leaving").

The server says what is owed (``GET /api/v1/keyholder/duties``); the device checks each item against
the school's directory with the rules of ``sync.entitlement`` and seals only what roles and classes
allow, so a server cannot steer a key to someone the directory does not entitle:

- **rotations**: a key someone left gets a new version, sealed to every member entitled to it; the
  older versions stay (new entries use the current one, ``Device.group_key`` and ``pupil_key``);
- **grants**: every version this device holds of a key, to members entitled to it without approval who
  lack that version: a teacher new to a class, a current holder missing an old or a new version.

Group keys that need approval (``group:safeguarding``, ``group:sen``) are sealed only by ``approve``,
an explicit act of a safeguarding keyholder. pwa/js/sync/keyholder.js is the JavaScript twin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto import BoxKeyPair, GrantInfo, make_grant

from . import entitlement as rules
from .device import ApiFailure, Device, now_ms
from .protocol import b64d, b64e

__all__ = ["DutyReport", "directory_view", "run_duties", "approve", "decline", "rotate"]


@dataclass
class DutyReport:
    granted: int = 0
    rotated: list[tuple[bytes, int]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # what the device would not seal, and why


def directory_view(directory: dict) -> rules.View:
    """The rules' view of the school as the directory lists it (no grants: the device checks roles and
    classes, ``rules.may_hold``, not the server's word on who holds what)."""
    roles = {b64d(a["id"], "id"): a["roles"] for a in directory["accounts"] if not a.get("left")}
    pupils_of_class = {b64d(c["id"], "id"): [b64d(p, "pupil") for p in c["pupils"]] for c in directory["classes"]}
    teaches: dict[bytes, list[bytes]] = {}
    for c in directory["classes"]:
        for teacher in c["teachers"]:
            teaches.setdefault(b64d(teacher, "id"), []).extend(pupils_of_class[b64d(c["id"], "id")])
    keys = [(b64d(k["id"], "id"), k["version"], k["purpose"]) for k in directory["reader_keys"]]
    pupil_of = {b64d(p["reader_key_id"], "id"): b64d(p["id"], "id") for p in directory["pupils"]}
    return rules.view_of(roles, teaches, keys, pupil_of, [])


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
    pair = BoxKeyPair.generate()
    grants = [
        b64e(
            make_grant(
                GrantInfo(device.school_id, key_id, version, member, device.device_id, now_ms()),
                pair,
                _identity_pk(device, member),
                device.device_key,
            )
        )
        for member in members
    ]
    await device.call(
        "POST",
        "/api/v1/keys/rotate",
        reader_key_id=b64e(key_id),
        version=version,
        public_key=b64e(pair.public),
        grants=grants,
    )
    device.reader_keys[(key_id, version)] = pair
    await device.refresh()


async def approve(device: Device, member: bytes, purpose: str) -> None:
    """A safeguarding keyholder approves a member joining a group: its device seals every version of the
    group's key it holds to the member, then records the approval (which checks the grant is there)."""
    await device.refresh()  # the newest directory: it must list the member and the role
    view = directory_view(device.directory)
    versions = sorted(
        (b64d(k["id"], "id"), k["version"]) for k in device.directory["reader_keys"] if k["purpose"] == purpose
    )
    if not versions or not rules.may_hold(view, member, versions[0][0]):
        raise PermissionError(f"the directory does not give this member the role for {purpose}")
    pk = _identity_pk(device, member)
    await device.grant([(k, v, member, pk) for k, v in versions if (k, v) in device.reader_keys])
    await device.call("POST", "/api/v1/approvals", member_id=b64e(member), purpose=purpose, decision="approve")


async def decline(device: Device, member: bytes, purpose: str) -> None:
    await device.call("POST", "/api/v1/approvals", member_id=b64e(member), purpose=purpose, decision="decline")
