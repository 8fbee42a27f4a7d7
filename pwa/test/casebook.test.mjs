// The review data layer (pwa/js/review/): a reader device's Casebook over fake-indexeddb. Pulled envelopes are
// verified, opened, folded and kept sealed; the inbox orders and filters; a teacher never sees a restricted
// concern nor another class's; triage writes signed events that another reader folds; concurrent edits show
// as a conflict and resolve; chronology and search read what is held; and nothing at rest opens without the
// local key.

import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import sodium from '../js/crypto/sodium.js';
import { CryptoError, openLocal } from '../js/crypto/index.js';
import { openStore } from '../js/db.js';
import { Casebook, Locked, NotAllowed } from '../js/review/casebook.js';
import { RESTRICTION_NOTICE } from '../js/review/triage.js';
import { Api, Device } from '../js/sync/device.js';
import { Outbox } from '../js/sync/outbox.js';
import { b64e, hex } from '../js/sync/protocol.js';
import { ConcernWriter } from '../js/sync/writer.js';

const CATEGORIES = JSON.parse(readFileSync(new URL('../../sync/data/categories.json', import.meta.url), 'utf-8')).categories;
const rnd = (/** @type {number} */ n) => sodium.randombytes_buf(n);
const MARKER = 'Fictional marker zebra-quartz';

/** A fictional school: keys, two classes of one pupil, staff, each with a device, and one directory. */
function school() {
  const key = () => ({ id: rnd(16), pair: sodium.crypto_box_keypair() });
  const keys = { safeguarding: key(), sen: key(), oak: key(), ash: key() };
  const pupils = { oak: rnd(16), ash: rnd(16) };
  const people = ['lunch', 'dsl', 'deputy', 'oakTeacher', 'ashTeacher'];
  const roles = /** @type {Record<string, string[]>} */ ({
    lunch: ['contributor'], dsl: ['safeguarding'], deputy: ['safeguarding'], oakTeacher: ['teacher'], ashTeacher: ['teacher'],
  });
  const ids = Object.fromEntries(people.map((p) => [p, { user: rnd(16), device: rnd(16), seed: rnd(32), x: sodium.crypto_box_keypair() }]));
  const listed = (/** @type {any} */ k, /** @type {string} */ purpose) => ({
    id: b64e(k.id), version: 1, purpose, public_key: b64e(k.pair.publicKey), current: true,
  });
  const schoolId = rnd(16);
  /** @type {Record<string, Device>} */
  const devices = {};
  const directory = {
    accounts: people.map((p) => ({
      id: b64e(ids[p].user), login: p, display_name: `Fictional ${p}`, roles: roles[p],
      identity_x25519_pk: b64e(ids[p].x.publicKey), identity_ed25519_pk: b64e(rnd(32)), left: false,
    })),
    devices: /** @type {any[]} */ ([]),
    reader_keys: [listed(keys.safeguarding, 'group:safeguarding'), listed(keys.sen, 'group:sen'),
      listed(keys.oak, 'pupil'), listed(keys.ash, 'pupil')],
    pupils: [{ id: b64e(pupils.oak), reader_key_id: b64e(keys.oak.id) }, { id: b64e(pupils.ash), reader_key_id: b64e(keys.ash.id) }],
    classes: [
      { id: b64e(rnd(16)), label: 'Oak', pupils: [b64e(pupils.oak)], teachers: [b64e(ids.oakTeacher.user)] },
      { id: b64e(rnd(16)), label: 'Ash', pupils: [b64e(pupils.ash)], teachers: [b64e(ids.ashTeacher.user)] },
    ],
  };
  for (const p of people) {
    const d = new Device({
      api: new Api('http://unused'), schoolId, userId: ids[p].user, login: p, deviceId: ids[p].device,
      deviceSeed: ids[p].seed, identity: { x25519Sk: ids[p].x.privateKey, ed25519Seed: rnd(32) }, roles: roles[p], directory,
    });
    directory.devices.push({ id: b64e(ids[p].device), user_id: b64e(ids[p].user), public_key: b64e(d.deviceKey.publicKey), cert: '', revoked: false });
    devices[p] = d;
  }
  const grant = (/** @type {string} */ p, /** @type {any[]} */ ks) => {
    for (const k of ks) devices[p].readerKeys.set(`${hex(k.id)}:1`, k.pair.privateKey);
  };
  grant('dsl', [keys.safeguarding]);
  grant('deputy', [keys.safeguarding]);
  grant('oakTeacher', [keys.oak]);
  grant('ashTeacher', [keys.ash]);
  return { keys, pupils, devices, ids };
}

let dbs = 0;
/** A reader's Casebook on a database of its own. @param {any} s @param {string} who */
async function reader(s, who) {
  dbs += 1;
  const store = await openStore({ name: `cairn-test-casebook-${dbs}` });
  const device = s.devices[who];
  const session = {
    store, device, outbox: new Outbox(store, hex(device.deviceId), hex(device.userId)), localKey: rnd(32),
    pupils: [{ id: hex(s.pupils.oak), name: 'Fictional Ava Oak', className: 'Oak' },
      { id: hex(s.pupils.ash), name: 'Fictional Ben Ash', className: 'Ash' }],
  };
  return { session, casebook: await Casebook.load(session, { categories: CATEGORIES }) };
}

let seq = 0;
/** What the server would hand out for an outbox's envelopes: pulled items, acknowledged. @param {Outbox} outbox */
async function pulled(outbox) {
  const head = await outbox.head(1000, 1e9);
  await outbox.acknowledged(head.map((h) => h.envelopeId));
  return head.map((h) => ({ seq: ++seq, server_time_ms: 1_800_000_000_000 + seq * 1000, envelope: b64e(h.body) }));
}

/** @param {any} s */
async function logged(s) {
  dbs += 1;
  const store = await openStore({ name: `cairn-test-casebook-${dbs}` });
  const d = s.devices.lunch;
  const outbox = new Outbox(store, hex(d.deviceId), hex(d.userId));
  const writer = new ConcernWriter(d, outbox, CATEGORIES);
  const base = { kind: 'safeguarding_concern', occurred_at: '2026-11-02T12:15' };
  const neglect = await writer.create({ ...base, category: 'neglect', observed: `No coat again. ${MARKER}`,
    pupils: [{ pupil: hex(s.pupils.oak), role: 'subject' }] });
  const urgent = await writer.create({ ...base, category: 'bullying', observed: 'Pushed at the gate.', urgent: true,
    occurred_at: '2026-10-01', pupils: [{ pupil: hex(s.pupils.oak), role: 'victim' }, { pupil: hex(s.pupils.ash), role: 'alleged_perpetrator' }] });
  const restricted = await writer.create({ ...base, category: 'physical_abuse', observed: 'Bruise on the arm.',
    pupils: [{ pupil: hex(s.pupils.oak), role: 'subject' }],
    body_map: [{ pupil: hex(s.pupils.oak), side: 'front', x: 220, y: 320, type: 'bruise' }] });
  const ash = await writer.create({ ...base, category: 'neglect', observed: 'Hungry at lunch.', pupils: [{ pupil: hex(s.pupils.ash), role: 'subject' }] });
  return { items: await pulled(outbox), ids: { neglect: neglect.concernId, urgent: urgent.concernId, restricted: restricted.concernId, ash: ash.concernId } };
}

test('a DSL inbox: alert first, then newest; filters; unread until opened; reloads sealed without opening envelopes', async () => {
  const s = school();
  const { items, ids } = await logged(s);
  const { session, casebook } = await reader(s, 'dsl');
  /** @type {string[][]} */
  const changed = [];
  casebook.on('changed', ({ ids: touched }) => changed.push(touched));
  const result = await casebook.ingest([...items, { seq: 99, server_time_ms: 1, envelope: b64e(rnd(300)) }]);
  assert.equal(result.added.length, 4);
  assert.equal(result.skipped, 1);
  assert.equal(changed.length, 1);
  const inbox = casebook.inbox();
  assert.deepEqual(inbox.map((r) => r.id), [ids.urgent, ids.ash, ids.restricted, ids.neglect]);
  assert.equal(inbox[0].alert, true);
  const first = inbox.find((r) => r.id === ids.urgent);
  assert.deepEqual(first?.pupils.map((p) => [p.name, p.role, p.classLabel]).sort(),
    [['Fictional Ava Oak', 'victim', 'Oak'], ['Fictional Ben Ash', 'alleged_perpetrator', 'Ash']]);
  assert.equal(first?.categoryLabel, 'Bullying');
  assert.ok(inbox.every((r) => r.receivedMs > 0 && r.writtenMs > 0 && r.status === 'open'));
  assert.equal(casebook.inbox({ category: 'neglect' }).length, 2);
  const oakClass = inbox.find((r) => r.id === ids.neglect)?.classIds;
  assert.equal(oakClass?.length, 1);
  assert.deepEqual(casebook.inbox({ classId: oakClass?.[0] }).map((r) => r.id), [ids.urgent, ids.restricted, ids.neglect]);
  assert.equal(casebook.inbox({ status: 'closed' }).length, 0);
  assert.equal(casebook.inbox({ from: Date.now() + 60_000 }).length, 0);
  assert.equal(casebook.unreadCount(), 4);
  await casebook.markRead(ids.neglect);
  assert.equal(casebook.unreadCount(), 3);
  assert.deepEqual(casebook.inbox({ unread: false }).map((r) => r.id), [ids.neglect]);
  assert.deepEqual(casebook.state.pending, [{ action: 'concern.opened', target: ids.neglect }]);
  await casebook.auditPrint(hex(s.pupils.oak));
  // A fresh load with no reader key at all: the sealed cache alone gives the same inbox and read state.
  session.device.readerKeys = new Map();
  const again = await Casebook.load(session, { categories: CATEGORIES });
  assert.deepEqual(again.inbox().map((r) => [r.id, r.unread]), casebook.inbox().map((r) => [r.id, r.unread]));
  assert.equal(again.state.pending.length, 2);
  const view = await again.concern(ids.restricted);
  assert.equal(view?.summary.restricted, true);
  assert.equal(view?.bodyMap.length, 1);
  assert.equal(view?.history[0].text, 'Logged');
  assert.equal(view?.history[0].authorName, 'Fictional lunch');
  session.store.close();
});

test('a teacher sees only their class and nothing restricted, not even a row', async () => {
  const s = school();
  const { items, ids } = await logged(s);
  const oak = (await reader(s, 'oakTeacher')).casebook;
  const result = await oak.ingest(items);
  assert.equal(result.skipped, 2); // the restricted one and the other class's: no key
  assert.deepEqual(oak.inbox().map((r) => r.id), [ids.urgent, ids.neglect]);
  assert.equal(await oak.concern(ids.restricted), null);
  assert.equal(await oak.concern(ids.ash), null);
  assert.equal((await oak.search('bruise')).length, 0);
  await assert.rejects(oak.setStatus(ids.neglect, 'closed'), (e) => e instanceof NotAllowed && e.code === 'not_safeguarding');
  const ash = (await reader(s, 'ashTeacher')).casebook;
  await ash.ingest(items);
  assert.deepEqual(ash.inbox().map((r) => r.id), [ids.urgent, ids.ash]);
});

test('an item pulled before its key arrived is held sealed and opened once the grant is', async () => {
  const s = school();
  const { items, ids } = await logged(s);
  const oakDevice = s.devices.oakTeacher;
  const key = oakDevice.readerKeys;
  oakDevice.readerKeys = new Map();
  const { session, casebook } = await reader(s, 'oakTeacher');
  assert.equal((await casebook.ingest(items)).skipped, 4);
  assert.deepEqual(casebook.inbox(), []);
  assert.equal(casebook.state.held?.length, 4);
  oakDevice.readerKeys = key; // the grant is opened at the next refresh
  /** @type {Promise<void>} */
  const changed = new Promise((resolve) => { casebook.on('changed', () => resolve()); });
  casebook.directoryChanged();
  await changed;
  assert.deepEqual(casebook.inbox().map((r) => r.id), [ids.urgent, ids.neglect]);
  await casebook.serial(async () => undefined);
  const again = await Casebook.load(session, { categories: CATEGORIES });
  assert.equal(again.state.held?.length, 2); // the restricted one and the other class's: no key, still held
});

test('triage events reach another reader; restricting hides the concern from teachers and lifting shows it again', async () => {
  const s = school();
  const { items, ids } = await logged(s);
  const dsl = await reader(s, 'dsl');
  const oak = (await reader(s, 'oakTeacher')).casebook;
  await dsl.casebook.ingest(items);
  await oak.ingest(items);
  const deputy = hex(s.ids.deputy.user);
  const teacher = hex(s.ids.oakTeacher.user);
  const cb = dsl.casebook;
  await cb.assign(ids.neglect, deputy);
  await cb.setStatus(ids.neglect, 'awaiting', 'Waiting for a call back.');
  const action = await cb.addAction(ids.neglect, { text: 'Call home.', owner: teacher, due: '2020-01-01' });
  await cb.comment(ids.neglect, 'Spoke to the pupil.');
  await cb.recordSharing(ids.neglect, { shared: true, with: 'Fictional social care', what: 'The concern.', lawful_basis: 'public_task', reason: 'Risk of harm.' });
  // offline until now: every event is on this reader at once, marked not yet received
  let view = await cb.concern(ids.neglect);
  assert.deepEqual(view?.history.map((h) => h.type), ['created', 'assigned', 'status_changed', 'action_added', 'comment', 'amended']);
  assert.equal(view?.history[1].receivedMs, null);
  assert.equal(view?.summary.assigneeName, 'Fictional deputy');
  assert.equal(view?.summary.overdueActions, 1);
  assert.deepEqual(view?.actions.map((a) => [a.ownerName, a.overdue, a.done]), [['Fictional oakTeacher', true, false]]);
  assert.equal(view?.sharing?.with, 'Fictional social care');
  const sent = await pulled(dsl.session.outbox);
  assert.equal(sent.length, 5);
  await oak.ingest(sent);
  // the teacher, as the action's owner, completes it; the DSL folds that
  await oak.completeAction(ids.neglect, action, 'Parent called.');
  const oakView = await oak.concern(ids.neglect);
  assert.equal(oakView?.summary.status, 'awaiting');
  assert.deepEqual(oakView?.actions.map((a) => a.done), [true]);
  const oakSession = oak.session;
  await cb.ingest([...sent, ...(await pulled(oakSession.outbox))]);
  view = await cb.concern(ids.neglect);
  assert.equal(view?.summary.overdueActions, 0);
  assert.ok(view?.history.every((h) => h.receivedMs !== null));

  await cb.restrict(ids.neglect, 'Police involved: fictional reason.');
  const restricting = await pulled(dsl.session.outbox);
  const r = await oak.ingest(restricting);
  assert.equal(r.skipped, 1); // the event with the reason is not sealed to the pupil key; the notice is
  assert.deepEqual(oak.inbox().map((x) => x.id), [ids.urgent]);
  assert.equal(await oak.concern(ids.neglect), null);
  const dslView = await cb.concern(ids.neglect);
  assert.equal(dslView?.summary.restricted, true);
  assert.deepEqual(dslView?.history.filter((h) => h.type === 'restriction_changed').map((h) => h.body.reason),
    [RESTRICTION_NOTICE, 'Police involved: fictional reason.']);
  await cb.comment(ids.neglect, 'Only the team reads this.');
  await cb.liftRestriction(ids.neglect, 'Investigation closed.');
  const lifted = await pulled(dsl.session.outbox);
  assert.equal((await oak.ingest(lifted)).skipped, 1); // the comment under the restricted key
  assert.deepEqual(oak.inbox().map((x) => x.id), [ids.urgent, ids.neglect]);
  assert.ok((await oak.concern(ids.neglect))?.history.every((h) => h.text !== 'Only the team reads this.'));
});

test('two offline DSL devices edit one field: both versions shown, then resolved', async () => {
  const s = school();
  const { items, ids } = await logged(s);
  const a = await reader(s, 'dsl');
  const b = await reader(s, 'deputy');
  await a.casebook.ingest(items);
  await b.casebook.ingest(items);
  await a.casebook.setStatus(ids.urgent, 'closed');
  await b.casebook.setStatus(ids.urgent, 'awaiting');
  const fromA = await pulled(a.session.outbox);
  const fromB = await pulled(b.session.outbox);
  await a.casebook.ingest([...fromA, ...fromB]);
  await b.casebook.ingest([...fromB, ...fromA]);
  for (const side of [a, b]) {
    const view = await side.casebook.concern(ids.urgent);
    assert.equal(view?.summary.conflicted, true);
    assert.deepEqual(view?.conflicts.map((c) => [c.field, c.versions.map((v) => v.value).sort()]), [['status', ['awaiting', 'closed']]]);
  }
  const conflict = /** @type {any} */ (await a.casebook.concern(ids.urgent)).conflicts[0];
  await a.casebook.resolveConflict(ids.urgent, 'status', 'closed', conflict.versions.map((/** @type {any} */ v) => v.eventId));
  await b.casebook.ingest(await pulled(a.session.outbox));
  for (const side of [a, b]) {
    const view = await side.casebook.concern(ids.urgent);
    assert.equal(view?.conflicts.length, 0);
    assert.equal(view?.summary.status, 'closed');
  }
  await assert.rejects(a.casebook.resolveConflict(ids.urgent, 'status', 'open', []), (e) => e instanceof NotAllowed && e.code === 'no_conflict');
});

test('chronology in time order with the pupil role; search in memory; reclassify into a restricted category', async () => {
  const s = school();
  const { items, ids } = await logged(s);
  const { casebook } = await reader(s, 'dsl');
  await casebook.ingest(items);
  const chron = await casebook.chronology(hex(s.pupils.oak));
  assert.equal(chron.pupil.name, 'Fictional Ava Oak');
  assert.deepEqual(chron.entries.map((e) => [e.id, e.role]), [[ids.urgent, 'victim'], [ids.neglect, 'subject'], [ids.restricted, 'subject']]);
  assert.ok(chron.entries[1].observed.includes(MARKER));
  assert.deepEqual((await casebook.chronology(hex(s.pupils.oak), { categories: ['neglect'] })).entries.map((e) => e.id), [ids.neglect]);
  assert.deepEqual((await casebook.chronology(hex(s.pupils.oak), { kinds: ['sen_note'] })).entries, []);
  assert.deepEqual((await casebook.search('zebra-QUARTZ coat')).map((h) => h.id), [ids.neglect]);
  assert.deepEqual((await casebook.search('ben ash')).map((h) => h.id).sort(), [ids.ash, ids.urgent].sort());
  await casebook.reclassify(ids.neglect, 'safeguarding_concern', 'emotional_abuse', 'On reflection.');
  const view = await casebook.concern(ids.neglect);
  assert.equal(view?.summary.category, 'emotional_abuse');
  assert.equal(view?.summary.restricted, true);
  assert.equal(view?.entryKeyVersion, 2);
});

test('nothing in IndexedDB opens without the local key, and no plaintext is at rest', async () => {
  const s = school();
  const { items } = await logged(s);
  const { session, casebook } = await reader(s, 'dsl');
  await casebook.ingest(items);
  await casebook.markRead(casebook.inbox()[0].id);
  await casebook.search('coat');
  const records = await session.store.db.getAll('review');
  assert.ok(records.length >= 4 + 2 + 1);
  const needle = new TextEncoder().encode('zebra-quartz');
  for (const record of records) {
    const bytes = record.sealed;
    for (let i = 0; i + needle.length <= bytes.length; i++) {
      assert.ok(needle.some((b, j) => bytes[i + j] !== b), `${record.key} holds plaintext`);
    }
    const kind = record.key.split('|')[1];
    assert.throws(() => openLocal(rnd(32), session.device.schoolId, session.device.userId, kind, new Uint8Array(16), bytes),
      (e) => e instanceof CryptoError);
  }
  // Another local key (a password reset) cannot open the cache: it is dropped, with the cursor, and refilled.
  await session.store.setCursor(hex(session.device.deviceId), 'c1.AAAAAAAAAAA');
  const other = await Casebook.load({ ...session, localKey: rnd(32) }, { categories: CATEGORIES });
  assert.deepEqual(other.inbox(), []);
  assert.equal(await session.store.cursor(hex(session.device.deviceId)), null);
  assert.deepEqual(await session.store.db.getAll('review'), []);
});

test('a closed Casebook (its person locked the device) writes nothing more, even as a push arrives', async () => {
  const s = school();
  const { items, ids } = await logged(s);
  const { session, casebook } = await reader(s, 'dsl');
  await casebook.ingest(items.slice(0, 2));
  const before = await session.store.db.getAll('review');
  casebook.close();
  await assert.rejects(casebook.ingest(items.slice(2)), (e) => e instanceof Locked);
  await assert.rejects(casebook.markRead(ids.neglect), (e) => e instanceof Locked);
  const other = await Casebook.load(session, { categories: CATEGORIES });
  session.localKey.fill(0); // what Session.wipe() does
  await assert.rejects(other.ingest(items.slice(2)), (e) => e instanceof Locked);
  assert.deepEqual((await session.store.db.getAll('review')).map((r) => r.key), before.map((r) => r.key));
});

test('audit entries are sent once, and opens on the person\'s other devices mark concerns read here', async () => {
  const s = school();
  const { items, ids } = await logged(s);
  const { session, casebook } = await reader(s, 'dsl');
  await casebook.ingest(items);
  await casebook.markRead(ids.neglect);
  await casebook.auditPrint(hex(s.pupils.oak));
  /** @type {[string, string, any][]} */
  const calls = [];
  const later = casebook.inbox().find((r) => r.id === ids.urgent)?.updatedMs ?? 0;
  session.device.call = async (/** @type {string} */ method, /** @type {string} */ path, /** @type {any} */ body) => {
    calls.push([method, path, body]);
    if (method === 'POST') return { recorded: body?.events.length };
    return path.endsWith('after=0')
      ? { opened: [{ id: 7, target: ids.urgent, at_ms: later + 1 }], next: 7, done: true }
      : { opened: [], next: 7, done: true };
  };
  const [a, b] = [casebook.syncAudit(), casebook.syncAudit()]; // one run at a time
  assert.equal(a, b);
  assert.equal(await a, 2);
  assert.deepEqual(calls[0], ['POST', '/api/v1/audit', { events: [
    { action: 'concern.opened', target: ids.neglect }, { action: 'chronology.printed', target: hex(s.pupils.oak) }] }]);
  assert.deepEqual(calls.slice(1).map((c) => c[1]), ['/api/v1/audit/opened?after=0']);
  assert.equal(casebook.inbox().find((r) => r.id === ids.urgent)?.unread, false);
  assert.equal(casebook.unreadCount(), 2);
  assert.equal(await casebook.syncAudit(), 0);
  assert.deepEqual(calls.slice(2).map((c) => c[1]), ['/api/v1/audit/opened?after=7']);
});

test('what waits is counted by reason: keys not granted yet, or an author device the directory does not list', async () => {
  const s = school();
  const { items } = await logged(s);
  const oakDevice = s.devices.oakTeacher;
  const keys = oakDevice.readerKeys;
  oakDevice.readerKeys = new Map();
  const { casebook } = await reader(s, 'oakTeacher');
  /** @type {string[][]} */
  const changed = [];
  casebook.on('changed', ({ ids }) => changed.push(ids));
  await casebook.ingest(items.slice(0, 2));
  assert.deepEqual(casebook.waiting(), { keys: 2, device: 0 });
  assert.equal(changed.length, 1); // the inbox redraws: what waits changed, though nothing opened
  const dir = /** @type {any} */ (oakDevice.directory);
  const lunch = dir.devices.shift(); // the author's device, not (yet) in this device's directory
  await casebook.ingest(items.slice(2));
  casebook.readDirectory();
  assert.deepEqual(casebook.waiting(), { keys: 0, device: 4 });
  dir.devices.unshift(lunch);
  oakDevice.readerKeys = keys;
  casebook.directoryChanged();
  await casebook.serial(async () => undefined);
  assert.equal(casebook.inbox().length, 2);
  assert.deepEqual(casebook.waiting(), { keys: 2, device: 0 }); // the restricted one and the other class's
});

test('a person named on a concern reads its earlier events through entry key grants; none from a teacher', async () => {
  const s = school();
  const { items, ids } = await logged(s);
  const dsl = await reader(s, 'dsl');
  await dsl.casebook.ingest(items);
  await dsl.casebook.comment(ids.neglect, 'Fictional: spoke to the pupil.');
  await dsl.casebook.setStatus(ids.neglect, 'awaiting');
  const ashUser = hex(s.ids.ashTeacher.user);
  await dsl.casebook.addNeedToKnow(ids.neglect, [ashUser]);
  const grants = dsl.casebook.state.grantsToSend ?? [];
  assert.equal(grants.length, 1); // one entry key version held, one person
  const sent = [...items, ...(await pulled(dsl.session.outbox))];

  const ash = await reader(s, 'ashTeacher');
  await ash.casebook.ingest(sent);
  // only the naming event is sealed to the person; the concern's earlier events wait for its key
  const held = async () => Object.values((await ash.casebook.blob(ids.neglect))?.events ?? {}).map((e) => e.type);
  assert.deepEqual(await held(), ['amended']);

  // a teacher of the pupil holds the entry key too; its grant to a colleague is refused
  const oak = await reader(s, 'oakTeacher');
  await oak.casebook.ingest(sent);
  const oakBlob = /** @type {any} */ (await oak.casebook.blob(ids.neglect));
  const { makeEntryGrants, NOT_A_KEYHOLDER } = await import('../js/review/grants.js');
  const forged = makeEntryGrants({
    schoolId: s.devices.oakTeacher.schoolId, concernId: Uint8Array.from(Buffer.from(ids.neglect, 'hex')),
    keys: oakBlob.keys, people: [[s.ids.ashTeacher.user, s.ids.ashTeacher.x.publicKey]],
    deviceId: s.devices.oakTeacher.deviceId, deviceSecretKey: s.devices.oakTeacher.deviceKey.secretKey,
  });
  const served = { grants: forged };
  ash.session.device.call = async () => served;
  assert.equal(await ash.casebook.refreshEntryGrants(), 0);
  assert.deepEqual(ash.casebook.grantProblems, [NOT_A_KEYHOLDER]);
  assert.deepEqual(await held(), ['amended']);

  served.grants = [...forged, ...grants]; // the DSL's, as the server delivers it
  assert.equal(await ash.casebook.refreshEntryGrants(), 1);
  const view = await ash.casebook.concern(ids.neglect);
  assert.deepEqual(view?.history.map((h) => h.type), ['created', 'comment', 'status_changed', 'amended']);
  assert.match(String(view?.record.observed), new RegExp(MARKER));
  assert.deepEqual(ash.casebook.waiting(), { keys: 1, device: 0 }); // the restricted one (a server never sends it)
  assert.ok(ash.casebook.keyNames().includes(`e:${ids.neglect}:1`));
});
