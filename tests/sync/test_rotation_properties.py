"""Rotation properties (hypothesis): random sequences of teachers joining and leaving classes, DSLs and
SENCos joining and leaving their groups, concerns written between the steps, and the keyholder duties run
after each step (sync.entitlement's rules, with real grants and envelopes, no server). A role or class here
is one the signed directory lists, so a keyholder has approved it; the group keys then follow by the duties.
Who may hold which key, as a table, is in the shared vectors (tests/sync/test_entitlement_vectors.py).

Whoever should read a concern at any moment can open it with the keys their grants give them, however
many rotations happened since it was written; and a concern written after someone left opens with none
of the keys that person held of what they left. "Should read" is the model's own bookkeeping of docs/ARCHITECTURE.md's
table, not the rules under test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crypto import BoxKeyPair, GrantInfo, NoKey, SecretKey, SigningKey, make_grant, open_grant
from crypto import envelope as env
from sync import entitlement as rules

SCHOOL = bytes(16)
CLASSES = {"oak": (0, 1), "ash": (2, 3)}
TEACHERS = ("t0", "t1")
DSLS = ("d1", "d2")
SENCOS = ("s1",)
FOUNDER = "founder"


@dataclass
class Person:
    uid: bytes
    identity: BoxKeyPair
    device_id: bytes
    device: SigningKey
    roles: set[str]
    grants: dict[tuple[bytes, int], bytes] = field(default_factory=dict)

    def keyring(self, school: School) -> dict[tuple[int, bytes, int], BoxKeyPair]:
        ring = {}
        for (key_id, version), raw in self.grants.items():
            granter = school.device_pk(raw)
            ring[(env.RECIPIENT_READER_KEY, key_id, version)] = open_grant(
                raw, self.identity, SCHOOL, self.uid, granter, school.public(key_id, version)
            )
        return ring


@dataclass
class Concern:
    envelope: bytes
    pupil: int
    kind: str  # "open", "sen", "restricted"
    written_at: int


class School:
    def __init__(self) -> None:
        self.people: dict[str, Person] = {}
        self.keys: dict[bytes, list[BoxKeyPair]] = {}  # every version's pair: the model's keyholder memory
        self.purposes: dict[bytes, str] = {}
        self.pupil_keys = [os.urandom(16) for _ in range(4)]
        self.group = {"safeguarding": os.urandom(16), "sen": os.urandom(16)}
        self.teaches: dict[str, set[str]] = {}
        self.due: set[bytes] = set()
        self.concerns: list[Concern] = []
        self.left: list[tuple[dict, int]] = []  # (keys the leaver held of what it left, step)
        self.step = 0
        for key_id in self.pupil_keys:
            self._new_key(key_id, "pupil")
        for name, key_id in self.group.items():
            self._new_key(key_id, f"group:{name}")
        founder = self.person(FOUNDER, {"safeguarding", "admin"})
        for key_id in self.keys:  # the founding device holds every first version
            self.seal(founder, founder, key_id, 1)

    # --- plumbing -----------------------------------------------------------------------------------

    def _new_key(self, key_id: bytes, purpose: str) -> None:
        self.keys.setdefault(key_id, []).append(BoxKeyPair.generate())
        self.purposes[key_id] = purpose

    def person(self, name: str, roles: set[str]) -> Person:
        if name not in self.people:
            self.people[name] = Person(
                os.urandom(16), BoxKeyPair.generate(), os.urandom(16), SigningKey.generate(), set()
            )
        self.people[name].roles |= roles
        return self.people[name]

    def public(self, key_id: bytes, version: int) -> bytes:
        return self.keys[key_id][version - 1].public

    def device_pk(self, grant: bytes) -> bytes:
        granter = next(
            p for p in self.people.values() if p.device_id == grant[1 + 16 + 16 + 4 + 16 : 1 + 16 + 16 + 4 + 32]
        )
        return granter.device.public

    def seal(self, granter: Person, member: Person, key_id: bytes, version: int) -> None:
        info = GrantInfo(SCHOOL, key_id, version, member.uid, granter.device_id, 1)
        member.grants[(key_id, version)] = make_grant(
            info, self.keys[key_id][version - 1], member.identity.public, granter.device
        )

    def view(self) -> rules.View:
        active = {p.uid: p.roles for p in self.people.values() if p.roles}
        teaches = {
            self.people[n].uid: [self.pupil_keys[i] for c in cs for i in CLASSES[c]] for n, cs in self.teaches.items()
        }
        pupil_of = {k: k for k in self.pupil_keys}  # a pupil is known by its key id here
        keys = [(k, v + 1, self.purposes[k]) for k, pairs in self.keys.items() for v in range(len(pairs))]
        holdings = [(k, v, p.uid) for p in self.people.values() for (k, v) in p.grants]
        return rules.view_of(active, teaches, keys, pupil_of, holdings)

    def by_uid(self, uid: bytes) -> Person:
        return next(p for p in self.people.values() if p.uid == uid)

    # --- what the admin and the keyholders do ----------------------------------------------------------

    def drop(self, person: Person) -> None:
        """The server's part of leaving: drop what may no longer be held, mark those keys due."""
        view = self.view()
        gone = rules.to_drop(view, person.uid) if person.roles else sorted({k for k, _ in person.grants})
        if not gone:
            return
        ring = person.keyring(self)
        self.left.append(({k: v for k, v in ring.items() if k[1] in gone}, self.step))
        for key_id in gone:
            for held in [h for h in person.grants if h[0] == key_id]:
                del person.grants[held]
            self.due.add(key_id)

    def duties(self) -> None:
        """Every keyholder device online: rotations (an approved DSL holding the current version), then
        every grant owed, each checked against roles and classes as a device checks the directory."""
        for key_id in sorted(self.due):
            view = self.view()
            current = len(self.keys[key_id])
            rotator = next(
                p for p in self.people.values() if rules.is_keyholder(view, p.uid) and (key_id, current) in p.grants
            )
            self._new_key(key_id, self.purposes[key_id])
            for uid in rules.holders_for(view, key_id):
                assert rules.may_hold(view, uid, key_id)
                self.seal(rotator, self.by_uid(uid), key_id, current + 1)
        self.due.clear()
        for granter in list(self.people.values()):
            view = self.view()
            for key_id, version, uid in rules.owed_by(view, granter.uid):
                assert rules.may_hold(view, uid, key_id)
                self.seal(granter, self.by_uid(uid), key_id, version)

    def write(self, pupil: int, kind: str) -> None:
        founder = self.people[FOUNDER]

        def current(key_id: bytes) -> tuple[env.Recipient, bytes]:
            version = len(self.keys[key_id])
            return env.Recipient(env.RECIPIENT_READER_KEY, key_id, version), self.public(key_id, version)

        recipients = [current(self.group["safeguarding"])]
        if kind != "restricted":
            recipients.append(current(self.pupil_keys[pupil]))
        if kind == "sen":
            recipients.append(current(self.group["sen"]))
        raw = env.seal(
            kind=env.KIND_CONCERN_EVENT,
            school_id=SCHOOL,
            envelope_id=os.urandom(16),
            concern_id=os.urandom(16),
            author_device=founder.device,
            author_device_id=founder.device_id,
            counter=1,
            prev_hash=bytes(32),
            device_time_ms=1,
            entry_key=SecretKey.generate(),
            entry_key_version=1,
            pupil_ids=[],
            recipients=recipients,
            content=f"fictional concern {len(self.concerns)}".encode(),
        )
        self.concerns.append(Concern(raw, pupil, kind, self.step))

    # --- the model's own idea of who should read what ------------------------------------------------

    def should_read(self, concern: Concern) -> list[Person]:
        readers = [p for p in self.people.values() if "safeguarding" in p.roles and p.approved_sg]
        if concern.kind != "restricted":
            readers += [
                self.people[n] for n, cs in self.teaches.items() if any(concern.pupil in CLASSES[c] for c in cs)
            ]
        if concern.kind == "sen":
            readers += [p for p in self.people.values() if "sen" in p.roles and p.approved_sen]
        return readers

    def check(self) -> None:
        author = self.people[FOUNDER].device.public
        rings = {id(p): p.keyring(self) for p in self.people.values()}
        for concern in self.concerns:
            for reader in self.should_read(concern):
                assert env.open(concern.envelope, author, rings[id(reader)]).content.startswith(b"fictional")
            for ring, step in self.left:
                if concern.written_at > step:
                    with pytest.raises(NoKey):
                        env.open(concern.envelope, author, ring)


Person.approved_sg = False  # type: ignore[attr-defined]
Person.approved_sen = False  # type: ignore[attr-defined]

step = st.one_of(
    st.tuples(st.just("assign"), st.sampled_from(TEACHERS), st.sampled_from(sorted(CLASSES))),
    st.tuples(st.just("unassign"), st.sampled_from(TEACHERS), st.sampled_from(sorted(CLASSES))),
    st.tuples(st.just("join"), st.sampled_from(DSLS + SENCOS)),
    st.tuples(st.just("leave_group"), st.sampled_from(DSLS + SENCOS)),
    st.tuples(st.just("leave_school"), st.sampled_from(TEACHERS + DSLS + SENCOS)),
    st.tuples(st.just("write"), st.integers(0, 3), st.sampled_from(["open", "sen", "restricted"])),
)


def apply(school: School, action: tuple) -> None:  # type: ignore[type-arg]
    kind, *args = action
    if kind == "assign":
        name, klass = args
        person = school.person(name, {"teacher"})
        school.teaches.setdefault(name, set()).add(klass)
    elif kind == "unassign":
        name, klass = args
        if klass in school.teaches.get(name, set()):
            school.teaches[name].discard(klass)
            school.drop(school.people[name])
    elif kind == "join":
        (name,) = args
        group = "safeguarding" if name in DSLS else "sen"
        person = school.person(name, {group})  # the role as the signed directory lists it: a keyholder approved it
        setattr(person, f"approved_{'sg' if group == 'safeguarding' else 'sen'}", True)
    elif kind == "leave_group":
        (name,) = args
        person = school.people.get(name)
        group = "safeguarding" if name in DSLS else "sen"
        if person is not None and group in person.roles:
            person.roles.discard(group)
            setattr(person, f"approved_{'sg' if group == 'safeguarding' else 'sen'}", False)
            school.drop(person)
    elif kind == "leave_school":
        (name,) = args
        person = school.people.get(name)
        if person is not None and person.roles:
            person.roles.clear()
            person.approved_sg = person.approved_sen = False
            school.teaches.pop(name, None)
            school.drop(person)
    else:
        school.write(*args)


@example(  # a teacher who joins after a rotation reads what was written before it (old versions re-sealed)
    [("write", 0, "open"), ("assign", "t0", "oak"), ("unassign", "t0", "oak"), ("assign", "t1", "oak")]
)
@example(  # a DSL who leaves, and a SENCo who leaves, read nothing written afterwards
    [("join", "d1"), ("join", "s1"), ("leave_group", "d1"), ("leave_school", "s1"), ("write", 1, "sen")]
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=20))
def test_rotation_never_loses_a_reader_and_never_lets_a_leaver_in(actions) -> None:  # type: ignore[no-untyped-def]
    school = School()
    for school.step, action in enumerate(actions, start=1):
        apply(school, action)
        school.duties()
        school.check()
