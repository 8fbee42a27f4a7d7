"""Who should hold which reader key: the rules of DESIGN.md's Keys and Leaving, as pure functions.

The server uses them to say what grants are owed, which wait for approval, which grants to drop and who
a new key version is sealed to; a keyholder device uses the same rules over the school's directory to
check what the server asks of it before it seals anything (docs/PROTOCOL.md, "Keyholder duties and leaving").

- A pupil's key: that pupil's class teachers, and approved safeguarding members.
- ``group:safeguarding``: members with the safeguarding role, once a safeguarding keyholder approved.
- ``group:<role>`` (``group:sen``, ...): members with that role once approved; approved safeguarding
  members without approval (they make the grants).
- ``signing:directory`` (the school signing key, docs/PROTOCOL.md's directory part): approved
  safeguarding members.
- ``roster:staff``: every member; ``roster:sensitive``: every member who is not only a contributor.

"Approved" is seen in the grants: a member who holds any version of a group key was granted it by a
keyholder, and is owed its other versions without asking again. A member who holds none waits for an
explicit approval. Old versions are owed to every current holder, so nothing ever becomes unreadable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "AUTO",
    "APPROVAL",
    "SAFEGUARDING",
    "View",
    "view_of",
    "entitlement",
    "may_hold",
    "owed_by",
    "pending",
    "to_drop",
    "holders_for",
]

AUTO = "auto"
APPROVAL = "approval"
SAFEGUARDING = "group:safeguarding"


@dataclass(frozen=True)
class View:
    """What the rules need to know of a school, as plain data (members who left are not in ``roles``)."""

    roles: Mapping[bytes, frozenset[str]]  # member -> roles
    teaches: Mapping[bytes, frozenset[bytes]]  # member -> ids of the pupils in the classes it teaches
    purposes: Mapping[bytes, str]  # reader key id -> purpose ("pupil", "group:sen", "roster:staff", ...)
    pupil_of: Mapping[bytes, bytes]  # a pupil reader key id -> the pupil's id
    versions: Mapping[bytes, tuple[int, ...]]  # reader key id -> its versions, ascending (the last is current)
    holdings: frozenset[tuple[bytes, int, bytes]]  # (reader key id, version, member) with a live grant
    _held: dict[tuple[bytes, bytes], set[int]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key_id, version, member in self.holdings:
            self._held.setdefault((key_id, member), set()).add(version)

    def held(self, key_id: bytes, member: bytes) -> set[int]:
        return self._held.get((key_id, member), set())

    def holds_any(self, purpose: str, member: bytes) -> bool:
        return any(self.held(k, member) for k, p in self.purposes.items() if p == purpose)

    def approved_safeguarding(self, member: bytes) -> bool:
        return "safeguarding" in self.roles.get(member, frozenset()) and self.holds_any(SAFEGUARDING, member)


def entitlement(view: View, member: bytes, key_id: bytes) -> str | None:
    """AUTO (owed without asking), APPROVAL (waits for a safeguarding keyholder) or None (may not hold)."""
    roles = view.roles.get(member)
    purpose = view.purposes.get(key_id)
    if roles is None or purpose is None:
        return None
    if purpose == "roster:staff":
        return AUTO
    if purpose == "roster:sensitive":
        return AUTO if roles - {"contributor"} else None
    if purpose == "pupil":
        if "teacher" in roles and view.pupil_of.get(key_id) in view.teaches.get(member, frozenset()):
            return AUTO
        return AUTO if view.approved_safeguarding(member) else None
    if purpose.startswith("signing:"):  # the school signing key: held like the safeguarding group's
        return AUTO if view.approved_safeguarding(member) else None
    if purpose.startswith("group:"):
        role = purpose[len("group:") :]
        if role != "safeguarding" and view.approved_safeguarding(member):
            return AUTO
        if role in roles:
            return AUTO if view.held(key_id, member) or view.holds_any(purpose, member) else APPROVAL
    return None


def may_hold(view: View, member: bytes, key_id: bytes) -> bool:
    """Whether roles and classes alone allow ``member`` to hold ``key_id``, approval aside (the server's
    wall mirrors it): what a keyholder device checks against the directory before it seals a key."""
    roles, purpose = view.roles.get(member), view.purposes.get(key_id)
    if roles is None or purpose is None:
        return False
    if purpose == "roster:staff":
        return True
    if purpose == "roster:sensitive":
        return bool(roles - {"contributor"})
    if "safeguarding" in roles:
        return True
    if purpose == "pupil":
        return "teacher" in roles and view.pupil_of.get(key_id) in view.teaches.get(member, frozenset())
    return purpose.startswith("group:") and purpose[len("group:") :] in roles


def owed_by(view: View, granter: bytes) -> list[tuple[bytes, int, bytes]]:
    """The grants ``granter`` can make and owes: every version it holds of a key, to each member entitled
    to that key without approval who lacks that version. Sorted, so duties run in a stable order."""
    out = []
    for key_id, versions in view.versions.items():
        mine = view.held(key_id, granter)
        if not mine:
            continue
        for member in view.roles:
            if member == granter or entitlement(view, member, key_id) != AUTO:
                continue
            out += [(key_id, v, member) for v in versions if v in mine and v not in view.held(key_id, member)]
    return sorted(out)


def pending(view: View) -> list[tuple[bytes, str]]:
    """(member, group purpose) pairs waiting for a safeguarding keyholder's approval."""
    out = set()
    for key_id, purpose in view.purposes.items():
        if purpose.startswith("group:"):
            out |= {(m, purpose) for m in view.roles if entitlement(view, m, key_id) == APPROVAL}
    return sorted(out)


def to_drop(view: View, member: bytes) -> list[bytes]:
    """The reader keys ``member`` holds a grant of but may no longer hold (it left a class or a group)."""
    held = {key_id for key_id, _, m in view.holdings if m == member}
    return sorted(k for k in held if entitlement(view, member, k) is None)


def holders_for(view: View, key_id: bytes) -> list[bytes]:
    """Who a new version of ``key_id`` is sealed to: every member entitled to it without approval."""
    return sorted(m for m in view.roles if entitlement(view, m, key_id) == AUTO)


def view_of(
    roles: Mapping[bytes, Iterable[str]],
    teaches: Mapping[bytes, Iterable[bytes]],
    keys: Iterable[tuple[bytes, int, str]],
    pupil_of: Mapping[bytes, bytes],
    holdings: Iterable[tuple[bytes, int, bytes]],
) -> View:
    """Build a View from rows: ``keys`` are (key id, version, purpose) of every listed version."""
    purposes: dict[bytes, str] = {}
    versions: dict[bytes, list[int]] = {}
    for key_id, version, purpose in keys:
        purposes[key_id] = purpose
        versions.setdefault(key_id, []).append(version)
    return View(
        {m: frozenset(r) for m, r in roles.items()},
        {m: frozenset(p) for m, p in teaches.items()},
        purposes,
        dict(pupil_of),
        {k: tuple(sorted(v)) for k, v in versions.items()},
        frozenset((k, v, m) for k, v, m in holdings if m in roles),
    )
