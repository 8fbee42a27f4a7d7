"""The checker's own account of a schedule: who is who, and who may read which event, decided without the code
under test.

The rules are docs/PROTOCOL.md 14.1 (who should hold which key), 5.1 (a person named on a concern reads all of
it) and ARCHITECTURE's recipient rule (Keys), written again here over plain names rather than key ids, so that
a mistake in ``sync/entitlement.py``, the server's wall, the client or the writer shows up as a difference:

- an event is sealed to abstract **keys**: ``"sg"`` (the safeguarding group, always), ``("pupil", p)`` for each
  pupil unless the concern is restricted, ``"sen"`` for a SEN category; and to **persons** (named staff);
- a current member reads an event if it holds one of its keys by role and class *now* (every version of a key
  is owed to everyone entitled to the key), is one of its persons, or is named on its concern;
- a member who left reads nothing; a revoked device shows nothing (it wipes its store);
- an event written on a device revoked before it sent it is held for a DSL, not in the record, and read by
  nobody.

A naming outlives its keyholder: a person named on a concern reads its earlier events through entry key grants,
and a device refuses a grant whose granter device is revoked or whose person left the safeguarding team
(PROTOCOL 5.1). So when the keyholder who named someone leaves the team, or loses the device they named from,
the server lists those grants in another keyholder's duties, and that keyholder's device seals them again to
the person the concern's own fold names (sync/keyholder.py). The checker's quiescence runs the DSL's duties
once, and the DSL never leaves the team here, so ``NAMING_OUTLIVES_ITS_KEYHOLDER`` (True) says a naming counts
for as long as the person is a member, whoever named them. Set False, it is the rule before that duty existed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CLASSES = ("oak", "ash")
PUPILS_PER_CLASS = 2
SG, SEN_KEY = "sg", "sen"
NAMING_OUTLIVES_ITS_KEYHOLDER = True  # see the module's docstring: another keyholder's duties grant again


@dataclass
class Person:
    roles: set[str]
    teaches: set[str] = field(default_factory=set)
    member: bool = True


@dataclass
class ModelEvent:
    id: str
    concern: str
    version: int
    persons: frozenset[str]
    device: str
    state: str = "pending"  # pending (in the outbox), delivered (acknowledged), held (handed over when revoked)


@dataclass
class ModelConcern:
    id: str
    pupils: tuple[str, ...]  # "oak:0" ...
    category: str
    restricted: bool
    versions: dict[int, frozenset] = field(default_factory=dict)  # entry key version -> abstract keys
    named: dict[str, set[str]] = field(default_factory=dict)  # person -> the devices whose entry key grants name them

    @property
    def newest(self) -> int:
        return max(self.versions)


@dataclass
class Model:
    people: dict[str, Person]
    device_owner: dict[str, str]  # device name -> user name
    revoked: set[str] = field(default_factory=set)  # device names
    concerns: dict[str, ModelConcern] = field(default_factory=dict)
    events: dict[str, ModelEvent] = field(default_factory=dict)

    # --- what happens ------------------------------------------------------------------------------

    def keys_for(self, concern: ModelConcern, restricted: bool) -> frozenset:
        keys: set = {SG}
        if not restricted:
            keys |= {("pupil", p) for p in concern.pupils}
            if concern.category == "sen":
                keys.add(SEN_KEY)
        return frozenset(keys)

    def wrote(self, event_id: str, concern: str, version: int, persons: frozenset[str], device: str) -> None:
        self.events[event_id] = ModelEvent(event_id, concern, version, persons, device)

    def sent(self, device: str) -> None:
        """The device's outbox reached the server: everything it queued is in the record."""
        for e in self.events.values():
            if e.device == device and e.state == "pending":
                e.state = "delivered"

    def revoke(self, device: str) -> None:
        """Revoked (or its person left): what it never sent is handed over and held, never delivered."""
        self.revoked.add(device)
        for e in self.events.values():
            if e.device == device and e.state == "pending":
                e.state = "held"

    def devices_of(self, user: str) -> list[str]:
        return [d for d, u in self.device_owner.items() if u == user and d not in self.revoked]

    # --- who may read what ---------------------------------------------------------------------------

    def class_of(self, pupil: str) -> str:
        return pupil.split(":")[0]

    def holds(self, user: str, key: object) -> bool:
        """PROTOCOL 14.1, by role and class as they are now."""
        p = self.people[user]
        if not p.member:
            return False
        if "safeguarding" in p.roles:
            return True  # the group, every pupil's key, every group key
        if key == SEN_KEY:
            return "sen" in p.roles
        if isinstance(key, tuple) and key[0] == "pupil":
            return "teacher" in p.roles and self.class_of(key[1]) in p.teaches
        return False

    def may_read(self, user: str, event: ModelEvent) -> bool:
        if event.state != "delivered" or not self.people[user].member:
            return False
        concern = self.concerns[event.concern]
        if user in event.persons or self.named_reads(user, concern):
            return True
        return any(self.holds(user, k) for k in concern.versions[event.version])

    def named_reads(self, user: str, concern: ModelConcern) -> bool:
        """Named on the concern, by a grant the person's device still accepts."""
        granters = concern.named.get(user, set())
        if NAMING_OUTLIVES_ITS_KEYHOLDER:
            return bool(granters)
        return any(d not in self.revoked and self.people[self.device_owner[d]].member
                   and "safeguarding" in self.people[self.device_owner[d]].roles for d in granters)

    def expected(self, device: str) -> set[str]:
        """Every event this device must show, and nothing else."""
        if device in self.revoked:
            return set()
        user = self.device_owner[device]
        return {e.id for e in self.events.values() if self.may_read(user, e)}
