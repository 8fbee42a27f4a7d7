"""One schedule against the real server and the real Python clients, and the check that follows it.

Each device is a real ``Device`` with its own ``Outbox`` (SQLite), ``SyncClient`` (websocket), ``Reader`` and
``ConcernWriter``. Steps (``_steps``) drive them; the model (``_model``) follows the same steps on its own. After
the last step the school **quiesces**: every current member without a device signs in again on a new one;
every device comes online, sends what it queued and pulls (so its cursor passes what it cannot read yet; a
revoked one hands over what it never sent and wipes its store instead); the DSL's device runs its keyholder
duties (lists new devices and revocations, rotates, seals what is owed, seals again the entry key grants of a
keyholder who left or lost the device); and every device acts on what the server told its socket (``grants``,
``directory``) or, having heard nothing, refreshes, then backfills and pulls. Then, on every device:

- **hidden**: events the model says it may read that it does not show (``Reader.read``);
- **leaked**: events it shows that the model says it may not read;
- **diverged**: concerns whose fold, on devices holding the same events (each folding them in its own
  shuffled order, with duplicates), is not the same.

Restricting and lifting are written here, as the PWA's triage does them (pwa/js/review/triage.js): the Python
client has no such verb. A restriction is a notice under the old entry key version, to the old readers, then
the event under a new version sealed to the safeguarding group and the named staff; a lift is a new version
sealed to everyone again, naming the restricting events as parents.
"""

from __future__ import annotations

import contextlib
import json
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from crypto import SecretKey
from crypto import envelope as env
from sync.categories import default_categories, restricted_ids
from sync.client import Revoked, SyncClient
from sync.device import Device, now_ms, sign_in, uuid7
from sync.events import VERSION, Event, encode
from sync.fold import fold, frontier
from sync.keyholder import run_duties
from sync.outbox import Outbox
from sync.protocol import b64d, b64e
from sync.reader import Reader
from sync.writer import ConcernWriter
from tests.server.harness import PASSWORD, Member, School

from ._model import Model, ModelConcern
from ._school import (
    DEVICES,
    SCRATCH,
    USERS,
    Stage,
    fresh_code_step,
    initial_model,
    remembered_passwords,
    sign_in_again,
)

NOTICE = "Restricted by the safeguarding team."
CATEGORIES = {c.id: c for c in default_categories()}
RESTRICTED = restricted_ids(CATEGORIES.values())
KIND = {"neglect": "safeguarding_concern", "sen": "sen_note", "physical_abuse": "safeguarding_concern",
        "bullying": "behaviour_incident"}


@dataclass
class Result:
    hidden: int = 0
    leaked: int = 0
    diverged: int = 0
    events: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.hidden or self.leaked or self.diverged)


@dataclass
class Node:
    """One device in the schedule."""

    name: str
    user: str
    member: Member
    reader: Reader
    writer: ConcernWriter
    online: bool = True
    dead: bool = False  # revoked and wiped: it shows nothing and takes no further steps

    @property
    def device(self) -> Device:
        return self.member.device


class World:
    def __init__(self, school: School, model: Model, rng: random.Random) -> None:
        self.school, self.model, self.rng = school, model, rng
        self.nodes: dict[str, Node] = {}
        self.sent: dict[str, list[bytes]] = {}  # envelopes each device sent, for duplicate delivery
        self.concern_ids: list[bytes] = []
        for name in DEVICES:
            member = school.dsl if name == "dsl" else school.members[name]
            self.nodes[name] = self._node(name, model.device_owner[name], member)
        self.class_ids = {c["label"]: b64d(c["id"], "id") for c in school.dsl.device.directory["classes"]}
        self.pupil_ids = {f"{label}:{n}": p for label, ps in school.classes.items() for n, p in enumerate(ps)}
        self.pupil_names = {p: name for name, p in self.pupil_ids.items()}

    def _node(self, name: str, user: str, member: Member) -> Node:
        reader = Reader(member.device, member.outbox)
        return Node(name, user, member, reader, ConcernWriter(member.device, member.outbox))

    def user_id(self, user: str) -> bytes:
        return self.school.dsl.device.user_id if user == "dsl" else self.school.members[user].device.user_id

    # --- the network ------------------------------------------------------------------------------

    async def connect(self, node: Node) -> bool:
        """Bring the device online; False if it found itself revoked (it handed over and wiped)."""
        if node.dead:
            return False
        client = node.member.client
        if client is not None and client._ws is not None and client._reader is not None and not client._reader.done():
            return True
        if client is not None:
            await client.close()
        try:
            await node.member.connect(self.school.running, keys=node.reader.key_refs,
                                      on_grants=node.reader.refresh, on_directory=node.reader.refresh)
        except Revoked:
            node.dead = True
            await node.member.client.close()  # type: ignore[union-attr]
            return False
        return True

    async def sync(self, node: Node, *, full: bool = False, pull: bool = True) -> bool:
        """Online: send what is queued and read what is new; ``full`` also opens new grants first and backfills
        what late keys open (what a device does when it starts, and on the server's notices)."""
        if not await self.connect(node):
            return False
        client = node.member.client
        assert client is not None
        queued = [p.body for p in node.member.outbox.head(10_000, 10**9)]
        try:
            if queued:
                report = await client.flush()
                if report.refused:
                    raise AssertionError(f"{node.name}: the server refused {report.refused}")
                self.sent.setdefault(node.name, []).extend(queued)
            self.model.sent(node.name)
            if full:
                await node.reader.refresh()
            if pull:
                await client.pull_all()
            if full:
                await client.catch_up()
        except Revoked:
            node.dead = True
            await client.close()
            with contextlib.suppress(Revoked):
                await client.connect()  # refused: hands over, wipes
            await client.close()
            return False
        return True

    async def offline(self, node: Node) -> None:
        node.online = False
        if node.member.client is not None:
            await node.member.client.close()

    # --- steps ------------------------------------------------------------------------------------

    async def write(self, node: Node, pupil: str, category: str) -> None:
        record = {"kind": KIND[category], "category": category, "occurred_at": "2026-11-02T12:15",
                  "observed": f"fictional: {category} about pupil {pupil}",
                  "pupils": [{"pupil": self.pupil_ids[pupil].hex(), "role": "subject"}]}
        written = node.writer.create(record)
        concern = ModelConcern(written.concern_id.hex(), (pupil,), category, category in RESTRICTED)
        concern.versions[1] = self.model.keys_for(concern, concern.restricted)
        self.model.concerns[concern.id] = concern
        self.concern_ids.append(written.concern_id)
        self.model.wrote(written.event_id.hex(), concern.id, 1, frozenset(), node.name)
        if node.online:
            await self.sync(node, pull=False)

    def _opened(self, node: Node, concern_id: bytes) -> list[tuple[env.Opened, Event]]:
        return node.reader.read().events(concern_id)

    async def follow(self, node: Node, concern_id: bytes) -> None:
        if node.online and not await self.sync(node):
            return
        events = self._opened(node, concern_id)
        if not events:
            return  # this device reads nothing of it: nothing to answer
        opened = max(events, key=lambda pair: pair[0].header.entry_key_version)[0]
        heads = set(frontier([e for _, e in events]))
        written = node.writer.follow_up(opened, [e for _, e in events if e.id in heads], "comment",
                                        {"text": f"fictional: a note from {node.user}"})
        answered = self.model.events[opened.header.envelope_id.hex()]
        self.model.wrote(written.event_id.hex(), answered.concern, opened.header.entry_key_version,
                         answered.persons, node.name)
        if node.online:
            await self.sync(node, pull=False)

    def _keyholder(self, index: int) -> Node | None:
        user = ("dsl", "deputy")[index]
        person = self.model.people[user]
        node = self.nodes[user]
        if not person.member or "safeguarding" not in person.roles or node.dead or node.name in self.model.revoked:
            return None
        return node

    async def _triage(self, index: int, concern_id: bytes) -> tuple[Node, ModelConcern, list] | None:
        """A keyholder, online, holding every version of the concern (the PWA refuses otherwise)."""
        node = self._keyholder(index)
        if node is None:
            return None
        node.online = True
        if not await self.sync(node, full=True):
            return None
        concern = self.model.concerns[concern_id.hex()]
        events = self._opened(node, concern_id)
        if not events or max(o.header.entry_key_version for o, _ in events) != concern.newest:
            return None
        return node, concern, events

    def _state(self, node: Node, events: list) -> dict:
        team = {b64d(a["id"], "id").hex() for a in node.device.directory["accounts"] if "safeguarding" in a["roles"]}
        return fold([e for _, e in events], safeguarding=team, restricted_categories=RESTRICTED)

    def _seal_version(self, node: Node, concern: ModelConcern, version: int, restricted: bool, kind: str,
                      body: dict, parents: list[str], named: list[str]) -> bytes:
        """An event under a new entry key version, to the recipients ARCHITECTURE names (Keys)."""
        device = node.device
        pupils = [self.pupil_ids[p] for p in concern.pupils]
        accounts = {b64d(a["id"], "id"): b64d(a["identity_x25519_pk"], "pk") for a in device.directory["accounts"]
                    if not a["left"]}
        people = tuple((bytes.fromhex(u), accounts[bytes.fromhex(u)]) for u in named if bytes.fromhex(u) in accounts)
        groups = tuple(f"group:{g}" for g in CATEGORIES[concern.category].readers)
        recipients = device.recipients_for(pupils, restricted=restricted, groups=groups, people=people)
        hlc = node.writer.tick()
        content = encode({"v": VERSION, "type": kind, "hlc": list(hlc), "author": device.user_id.hex(),
                          "parents": sorted(set(parents)), **body})
        concern_id, entry_key = bytes.fromhex(concern.id), SecretKey.generate()

        def seal(chain):  # type: ignore[no-untyped-def]
            envelope_id = uuid7()
            sealed = env.seal(
                kind=env.KIND_CONCERN_EVENT, school_id=device.school_id, envelope_id=envelope_id,
                concern_id=concern_id, author_device=device.device_key, author_device_id=device.device_id,
                counter=chain.counter + 1, prev_hash=chain.last_hash, device_time_ms=now_ms(), entry_key=entry_key,
                entry_key_version=version, pupil_ids=pupils, recipients=recipients, content=content,
            )
            return envelope_id, sealed, env.envelope_hash(sealed)

        return node.member.outbox.queue(seal)

    def _named(self, state: dict) -> list[str]:
        return sorted({v for h in state["fields"].get("need_to_know", []) for v in h.get("value") or []})

    def _named_persons(self, concern: ModelConcern) -> frozenset[str]:
        return frozenset(u for u in concern.named if self.model.people[u].member)

    async def restrict(self, index: int, concern_id: bytes) -> None:
        found = await self._triage(index, concern_id)
        if found is None or found[1].restricted:
            return
        node, concern, events = found
        newest = max(events, key=lambda pair: pair[0].header.entry_key_version)[0]
        heads = set(frontier([e for _, e in events]))
        nxt = concern.newest + 1
        notice = node.writer.follow_up(newest, [e for _, e in events if e.id in heads], "restriction_changed",
                                       {"restricted": True, "reason": NOTICE, "entry_key_version": nxt})
        answered = self.model.events[newest.header.envelope_id.hex()]
        self.model.wrote(notice.event_id.hex(), concern.id, concern.newest, answered.persons, node.name)
        state = self._state(node, events)
        named = self._named(state)
        event_id = self._seal_version(node, concern, nxt, True, "restriction_changed",
                                      {"restricted": True, "reason": "fictional: sensitive", "entry_key_version": nxt},
                                      [*heads, notice.event_id.hex()], named)
        concern.restricted = True
        concern.versions[nxt] = self.model.keys_for(concern, True)
        self.model.wrote(event_id.hex(), concern.id, nxt, self._named_persons(concern), node.name)
        await self.sync(node, pull=False)

    async def lift(self, index: int, concern_id: bytes) -> None:
        found = await self._triage(index, concern_id)
        if found is None or not found[1].restricted:
            return
        node, concern, events = found
        state = self._state(node, events)
        nxt = concern.newest + 1
        parents = [*frontier([e for _, e in events]), *state["restricting"]]
        event_id = self._seal_version(node, concern, nxt, False, "restriction_changed",
                                      {"restricted": False, "reason": "fictional: reviewed", "entry_key_version": nxt},
                                      parents, self._named(state))
        concern.restricted = False
        concern.versions[nxt] = self.model.keys_for(concern, False)
        self.model.wrote(event_id.hex(), concern.id, nxt, self._named_persons(concern), node.name)
        await self.sync(node, pull=False)

    async def name(self, index: int, concern_id: bytes, person: str) -> None:
        if not self.model.people[person].member:
            return
        found = await self._triage(index, concern_id)
        if found is None:
            return
        node, concern, _ = found
        written = await node.reader.name_need_to_know(node.writer, concern_id, [self.user_id(person)])
        concern.named.setdefault(person, set()).add(node.name)
        newest = max(self._opened(node, concern_id), key=lambda pair: pair[0].header.entry_key_version)[0]
        self.model.wrote(written.event_id.hex(), concern.id, newest.header.entry_key_version,
                         self._named_persons(concern), node.name)
        await self.sync(node, pull=False)

    def _admin(self) -> Node:
        return self.nodes["dsl"]  # the founding DSL is also the school's admin; it never leaves here

    async def assign(self, user: str, label: str) -> None:
        person = self.model.people[user]
        if not person.member or "teacher" not in person.roles or label in person.teaches:
            return
        dsl = self._admin()
        class_id, user_id = self.class_ids[label], self.user_id(user)
        await dsl.device.call("POST", "/api/v1/admin/class-teachers", class_id=b64e(class_id), user_id=b64e(user_id),
                              reason="fictional: covering the class")
        await dsl.device.approve({("teaches", class_id, user_id)})  # the DSL saw it on its device and confirmed
        person.teaches.add(label)

    async def _left(self, user: str, **body: object) -> None:
        await self._admin().device.call("POST", "/api/v1/admin/leave", user_id=b64e(self.user_id(user)), **body)
        for device in self.model.devices_of(user):
            self.model.revoke(device)

    async def leave_class(self, user: str, label: str) -> None:
        person = self.model.people[user]
        if not person.member or label not in person.teaches:
            return
        await self._left(user, scope="class", class_id=b64e(self.class_ids[label]))
        person.teaches.discard(label)

    async def leave_group(self, user: str, role: str) -> None:
        person = self.model.people[user]
        if not person.member or role not in person.roles or len(person.roles) < 2:
            return
        await self._left(user, scope="group", role=role)
        person.roles.discard(role)

    async def leave_school(self, user: str) -> None:
        person = self.model.people[user]
        if not person.member or user == "dsl":
            return
        await self._left(user, scope="school")
        person.member, person.teaches = False, set()

    async def revoke(self, node: Node) -> None:
        if node.name in self.model.revoked or node.name == "dsl":
            return
        await self._admin().device.call("POST", "/api/v1/devices/revoke", device_id=b64e(node.device.device_id))
        self.model.revoke(node.name)

    async def duties(self, index: int) -> None:
        node = self._keyholder(index)
        if node is not None:
            node.online = True
            if await self.sync(node, pull=False):
                await run_duties(node.device, node.reader)

    async def restart(self, node: Node) -> None:
        """The app closes and opens again: the socket and the local store are closed and reopened from disk,
        and what it kept in memory only (entry keys opened from grants, the covered-keys note aside) is gone."""
        if node.dead:
            return
        if node.member.client is not None:
            await node.member.client.close()
            node.member.client = None
        node.member.outbox.close()
        node.member.outbox = Outbox(node.member.outbox.path)
        node.reader = Reader(node.device, node.member.outbox)
        last = node.writer.last
        node.writer = ConcernWriter(node.device, node.member.outbox)
        node.writer.last = last  # the clock is kept with the device's state
        if node.online:
            await self.sync(node, full=True)

    async def resend(self, node: Node) -> None:
        """Duplicate delivery: the device sends again what the server acknowledged (a reply lost on the way)."""
        bodies = self.sent.get(node.name, [])[-3:]
        if node.dead or node.name in self.model.revoked or not bodies:
            return
        with tempfile.TemporaryDirectory() as folder:
            outbox = Outbox(Path(folder) / "again.db")
            try:
                for body in bodies:
                    header = env.parse(body).header
                    outbox.queue(lambda _c, b=body, i=header.envelope_id: (i, b, env.envelope_hash(b)))
                again = Member(node.device, node.member.totp, outbox)
                client = await again.connect(self.school.running)
                try:
                    report = await client.flush()
                finally:
                    await client.close()
            finally:
                outbox.close()
        if report.duplicates != len(bodies) or report.sent:
            raise AssertionError(f"{node.name}: a resent envelope was not acknowledged as a duplicate: {report}")

    async def redeliver(self, node: Node) -> None:
        """Duplicate and reordered delivery into the device's store: everything the server sends it from the
        beginning, stored again newest first."""
        if node.dead or node.name in self.model.revoked or not await self.connect(node):
            return
        with tempfile.TemporaryDirectory() as folder:
            scratch = Outbox(Path(folder) / "pull.db")
            try:
                client = SyncClient(self.school.running.ws_url, scratch, school_id=node.device.school_id,
                                    device_id=node.device.device_id, device_key=node.device.device_key,
                                    token=node.device.token or "")
                await client.connect()
                try:
                    await client.pull_all()
                finally:
                    await client.close()
                items = scratch.inbox()
            finally:
                scratch.close()
        node.member.outbox.received(list(reversed(items)), None)

    async def change_password(self, node: Node) -> None:
        """The person changes their password on this device (issue 13 item 2). The harness signs in with one
        password, so the words stay and everything else is new: salt, login key, sealed bundle. The server
        ends every other session of the account, so the person signs in again on their other devices (the
        same devices); nothing they could read may be hidden afterwards."""
        if node.dead or not node.online or node.name in self.model.revoked:
            return
        await fresh_code_step(self.school.running, self.school.school_id)
        await node.device.change_password(PASSWORD, PASSWORD, totp_secret=node.member.totp)
        for other in self.nodes.values():
            if other is node or other.user != node.user or other.dead or other.name in self.model.revoked:
                continue
            if other.member.client is not None:
                await other.member.client.close()  # the server closed it (4003)
            await fresh_code_step(self.school.running, self.school.school_id)
            again = await sign_in(self.school.http, self.school.school_id, other.device.login, PASSWORD,
                                  totp_secret=other.member.totp, device=other.device)
            other.device.token = again.token

    # --- quiescence and the check -------------------------------------------------------------------

    async def quiesce(self) -> None:
        for user in USERS:  # every current member without a live device signs in again on a new one
            if self.model.people[user].member and not self.model.devices_of(user):
                name = f"{user}-again"
                member = await sign_in_again(self.school, user, name)
                self.model.device_owner[name] = user
                self.nodes[name] = self._node(name, user, member)
        for node in self.nodes.values():  # everyone online: what is queued is sent, what is new is read (a revoked
            node.online = True  # device hands over what it never sent and wipes its store instead)
            await self.sync(node)
        # the founding keyholder's duties: it lists new devices and revocations, rotates what someone left, and
        # seals what is owed (one round: it fetches the duties again after its rotations), and seals again, to
        # whom each concern's fold names, the entry key grants of a keyholder who left the team or lost a device
        await run_duties(self.nodes["dsl"].device, self.nodes["dsl"].reader)
        for node in self.nodes.values():
            if not node.dead:
                await self.settle(node)

    async def settle(self, node: Node) -> None:
        """A live device acts on what the server said (a grant, a directory version: it opens and follows them)
        or, if it heard nothing, refreshes as it would on reconnecting; then backfills and reads what is new."""
        client = node.member.client
        if client is None or not await self.connect(node):
            return
        client = node.member.client
        assert client is not None
        try:
            if not client.noticed.is_set():
                await node.reader.refresh()
            await client.catch_up()  # the notices' refresh, then the backfill of what late keys open
            await client.pull_all()
        except Revoked:
            node.dead = True
            await client.close()

    def check(self) -> Result:
        result = Result(events=sum(1 for e in self.model.events.values() if e.state == "delivered"))
        folds: dict[tuple[str, frozenset], dict[str, str]] = {}
        for node in self.nodes.values():
            shown = {} if node.dead else {e.id: (o, e) for _, o, e in node.reader.read().opened}
            expected = self.model.expected(node.name)
            hidden, leaked = expected - set(shown), set(shown) - expected
            result.hidden += len(hidden)
            result.leaked += len(leaked)
            for what, ids in (("hidden from", hidden), ("leaked to", leaked)):
                for i in sorted(ids)[:3]:
                    e = self.model.events.get(i)
                    result.notes.append(f"{what} {node.name}: event {i[:8]} {e}")
            by_concern: dict[str, list[Event]] = {}
            for _, e in shown.values():
                by_concern.setdefault(e.concern, []).append(e)
            for concern, events in by_concern.items():
                delivered = events + self.rng.sample(events, k=min(len(events), 2))  # duplicates
                self.rng.shuffle(delivered)
                state = self._state(node, [(None, e) for e in delivered])
                folds.setdefault((concern, frozenset(e.id for e in events)), {})[node.name] = json.dumps(
                    state, sort_keys=True)
        for (concern, _), states in folds.items():
            if len(set(states.values())) > 1:
                result.diverged += 1
                result.notes.append(f"diverged on {concern[:8]}: {sorted(states)}")
        return result

    async def close(self) -> None:
        for node in self.nodes.values():
            if node.member.client is not None:
                await node.member.client.close()
            node.member.outbox.close()


async def run_schedule(stage: Stage, steps: list[tuple], seed: int = 0) -> Result:
    """Copy the school, serve the copy, run ``steps``, quiesce, check."""
    from ._steps import perform

    with tempfile.TemporaryDirectory(dir=SCRATCH) as folder, remembered_passwords():
        async with stage.serving(Path(folder)) as running:
            school = stage.template.restore(running, stage.http, Path(folder))
            world = World(school, initial_model(), random.Random(seed))
            try:
                for step in steps:
                    await perform(world, step)
                await world.quiesce()
                return world.check()
            finally:
                await world.close()
