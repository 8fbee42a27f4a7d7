"""Who may hold which reader key: the rules of docs/ARCHITECTURE.md's Keys and Leaving, as pure functions.

The server and every keyholder device use the same rules over the same facts: the roles and classes of the
newest **signed** directory (where every widening carries a safeguarding keyholder's approval, PROTOCOL 13),
never the roles an admin has merely asked for. The server adds the grants it stores (who holds what now).

- A pupil's key: that pupil's class teachers, and safeguarding members.
- ``group:safeguarding`` and ``signing:directory`` (the school signing key): safeguarding members.
- ``group:<role>`` (``group:sen``, ...): members with that role, and safeguarding members.
- ``roster:staff``: every member; ``roster:sensitive``: every member who is not only a contributor.

Members who left are not in the view and hold nothing. Every version of a key, old ones included, is owed
to every member entitled to it, so that nothing written under an old version becomes unreadable. A
**keyholder** is a safeguarding member who holds the safeguarding group's key: the only person whose device
may publish keys, approve widenings or decide held envelopes. Vectors: tests/vectors/entitlement/.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "SAFEGUARDING",
    "View",
    "view_of",
    "view_of_directory",
    "may_hold",
    "is_keyholder",
    "owed_by",
    "to_drop",
    "holders_for",
]

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


def may_hold(view: View, member: bytes, key_id: bytes) -> bool:
    """Whether the signed roles and classes allow ``member`` to hold ``key_id``: what a keyholder device
    checks against the directory before it seals a key, and what the server's wall checks of every grant."""
    roles, purpose = view.roles.get(member), view.purposes.get(key_id)
    if roles is None or purpose is None:
        return False
    if purpose == "roster:staff":
        return True
    if purpose == "roster:sensitive":
        return bool(roles - {"contributor"})
    if "safeguarding" in roles:
        return purpose == "pupil" or purpose.startswith(("group:", "signing:"))
    if purpose == "pupil":
        return "teacher" in roles and view.pupil_of.get(key_id) in view.teaches.get(member, frozenset())
    return purpose.startswith("group:") and purpose[len("group:") :] in roles


def is_keyholder(view: View, member: bytes) -> bool:
    """A safeguarding member (by the signed directory) who holds the safeguarding group's key."""
    return "safeguarding" in view.roles.get(member, frozenset()) and view.holds_any(SAFEGUARDING, member)


def owed_by(view: View, granter: bytes) -> list[tuple[bytes, int, bytes]]:
    """The grants ``granter`` can make and owes: every version it holds of a key, to each member entitled
    to that key who lacks that version. Sorted, so duties run in a stable order."""
    out = []
    for key_id, versions in view.versions.items():
        mine = view.held(key_id, granter)
        if not mine:
            continue
        for member in view.roles:
            if member == granter or not may_hold(view, member, key_id):
                continue
            out += [(key_id, v, member) for v in versions if v in mine and v not in view.held(key_id, member)]
    return sorted(out)


def to_drop(view: View, member: bytes) -> list[bytes]:
    """The reader keys ``member`` holds a grant of but may no longer hold (it left a class or a group)."""
    held = {key_id for key_id, _, m in view.holdings if m == member}
    return sorted(k for k in held if not may_hold(view, member, k))


def holders_for(view: View, key_id: bytes) -> list[bytes]:
    """Who a new version of ``key_id`` is sealed to: every member entitled to it."""
    return sorted(m for m in view.roles if may_hold(view, m, key_id))


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


def view_of_directory(directory: dict, holdings: Iterable[tuple[bytes, int, bytes]] = ()) -> View:
    """The rules' view of a school as a verified directory listing shows it (``sync.directory.listing``:
    ids as base64url), with the grants the caller knows of."""
    from .protocol import b64d

    roles = {b64d(a["id"], "id"): a["roles"] for a in directory["accounts"] if not a.get("left")}
    teaches: dict[bytes, list[bytes]] = {}
    for c in directory["classes"]:
        for teacher in c["teachers"]:
            teaches.setdefault(b64d(teacher, "id"), []).extend(b64d(x, "pupil") for x in c["pupils"])
    keys = [(b64d(k["id"], "id"), k["version"], k["purpose"]) for k in directory["reader_keys"]]
    pupil_of = {b64d(x["reader_key_id"], "id"): b64d(x["id"], "id") for x in directory["pupils"]}
    return view_of(roles, teaches, keys, pupil_of, holdings)
