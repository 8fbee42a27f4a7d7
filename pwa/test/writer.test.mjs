// Writing a concern in the browser (sync/device.js and sync/writer.js, the twins of sync/device.py and
// sync/writer.py): recipients from the directory by the category's rule, a chained envelope per event, a clock
// that only goes up, and a device that cannot open what it wrote.

import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import sodium from '../js/crypto/sodium.js';
import { NoKey, RECIPIENT_READER_KEY, envelope, envelopeHash } from '../js/crypto/index.js';
import { openStore } from '../js/db.js';
import { decode } from '../js/events.js';
import { Api, Device, uuid7 } from '../js/sync/device.js';
import { Outbox } from '../js/sync/outbox.js';
import { b64e, hex } from '../js/sync/protocol.js';
import { ConcernWriter } from '../js/sync/writer.js';

const CATEGORIES = JSON.parse(readFileSync(new URL('../../sync/data/categories.json', import.meta.url), 'utf-8')).categories;
const rnd = (/** @type {number} */ n) => sodium.randombytes_buf(n);

function school() {
  const keys = {
    safeguarding: { id: rnd(16), pair: sodium.crypto_box_keypair() },
    sen: { id: rnd(16), pair: sodium.crypto_box_keypair() },
    pupil: { id: rnd(16), pair: sodium.crypto_box_keypair() },
  };
  const pupilId = rnd(16);
  const listed = (/** @type {{id: Uint8Array, pair: {publicKey: Uint8Array}}} */ k, /** @type {string} */ purpose) => ({
    id: b64e(k.id), version: 1, purpose, public_key: b64e(k.pair.publicKey), current: true,
  });
  const directory = {
    accounts: [], devices: [], classes: [],
    reader_keys: [listed(keys.safeguarding, 'group:safeguarding'), listed(keys.sen, 'group:sen'), listed(keys.pupil, 'pupil')],
    pupils: [{ id: b64e(pupilId), reader_key_id: b64e(keys.pupil.id) }],
  };
  const device = new Device({
    api: new Api('http://unused'), schoolId: rnd(16), userId: rnd(16), login: 'lunch', deviceId: rnd(16),
    deviceSeed: rnd(32), identity: { x25519Sk: rnd(32), ed25519Seed: rnd(32) }, roles: ['contributor'], directory,
  });
  return { keys, pupilId, device };
}

let n = 0;
async function outboxFor(/** @type {Device} */ device) {
  n += 1;
  const store = await openStore({ name: `cairn-test-writer-${n}` });
  return { store, outbox: new Outbox(store, hex(device.deviceId), hex(device.userId)) };
}

/** @param {{id: Uint8Array, pair: {privateKey: Uint8Array}}} k */
const readerKey = (k) => ({ kind: RECIPIENT_READER_KEY, id: k.id, version: 1, sk: k.pair.privateKey });

test('a created event is sealed to the safeguarding group and the pupil, chained, and opens to the record', async () => {
  const { keys, pupilId, device } = school();
  const { store, outbox } = await outboxFor(device);
  const writer = new ConcernWriter(device, outbox, CATEGORIES);
  const record = {
    kind: 'safeguarding_concern', category: 'neglect', occurred_at: '2026-11-02T12:15', observed: 'Fictional: no coat.',
    pupils: [{ pupil: hex(pupilId), role: 'subject' }],
    body_map: [{ pupil: hex(pupilId), side: 'front', x: 220, y: 320, type: 'bruise', size_mm: 20 }], urgent: true,
  };
  const first = await writer.create(record);
  const second = await writer.create({ ...record, observed: 'Fictional: second.' });
  const [a, b] = await outbox.head(10, 1e6);
  const parsedA = envelope.parse(a.body);
  const parsedB = envelope.parse(b.body);
  assert.deepEqual(parsedA.recipients.map((r) => hex(r.id)), [hex(keys.safeguarding.id), hex(keys.pupil.id)]);
  assert.deepEqual([parsedA.counter, parsedB.counter], [1, 2]);
  assert.deepEqual(parsedB.prevHash, envelopeHash(a.body));
  assert.equal(hex(parsedA.envelopeId), first.eventId);
  assert.ok(second.hlc[0] > first.hlc[0] || (second.hlc[0] === first.hlc[0] && second.hlc[1] > first.hlc[1]));
  for (const k of [keys.safeguarding, keys.pupil]) {
    const opened = envelope.open(a.body, { authorDevicePk: device.deviceKey.publicKey, readerKeys: [readerKey(k)] });
    const event = decode(opened.content, {
      eventId: parsedA.envelopeId, concernId: parsedA.concernId, authorDevice: parsedA.authorDevice,
      deviceTimeMs: parsedA.deviceTimeMs,
    });
    assert.deepEqual([event.type, event.author, event.body.record], ['created', hex(device.userId), record]);
  }
  // The device that wrote it holds none of its keys: write-only.
  assert.throws(() => envelope.open(a.body, {
    authorDevicePk: device.deviceKey.publicKey,
    readerKeys: [{ kind: RECIPIENT_READER_KEY, id: keys.safeguarding.id, version: 1, sk: device.identity.x25519Sk }],
  }));
  store.close();
});

test('a restricted category goes to the safeguarding group only, and an SEN category also to the SEN group', async () => {
  const { keys, pupilId, device } = school();
  const { store, outbox } = await outboxFor(device);
  const writer = new ConcernWriter(device, outbox, CATEGORIES);
  const pupils = [{ pupil: hex(pupilId), role: 'subject' }];
  await writer.create({ kind: 'safeguarding_concern', category: 'physical_abuse', occurred_at: '2026-11-02', observed: 'x', pupils });
  await writer.create({ kind: 'sen_note', category: 'sen', occurred_at: '2026-11-02', observed: 'y', pupils });
  const [restricted, sen] = (await outbox.head(10, 1e6)).map((p) => envelope.parse(p.body));
  assert.deepEqual(restricted.recipients.map((r) => hex(r.id)), [hex(keys.safeguarding.id)]);
  assert.deepEqual(restricted.pupilIds.map(hex), [hex(pupilId)]);
  assert.deepEqual(sen.recipients.map((r) => hex(r.id)), [hex(keys.safeguarding.id), hex(keys.pupil.id), hex(keys.sen.id)]);
  store.close();
});

test('a record that breaks the format is refused before anything is queued', async () => {
  const { device } = school();
  const { store, outbox } = await outboxFor(device);
  const writer = new ConcernWriter(device, outbox, CATEGORIES);
  await assert.rejects(writer.create({ kind: 'safeguarding_concern', category: 'no_such', occurred_at: '2026-11-02', observed: ' ' }),
    (e) => /** @type {any} */ (e).fields.category === 'unknown_value' && /** @type {any} */ (e).fields.observed === 'empty');
  assert.equal(await outbox.pendingCount(), 0);
  assert.equal((await outbox.chain()).counter, 0);
  store.close();
});

test('uuid7 carries the time and the version and variant bits', () => {
  const before = Date.now();
  const id = uuid7();
  const ms = id.subarray(0, 6).reduce((acc, b) => acc * 256 + b, 0);
  assert.ok(ms >= before && ms <= Date.now());
  assert.equal(id[6] >> 4, 7);
  assert.equal(id[8] >> 6, 2);
  assert.notDeepEqual(uuid7(), uuid7());
});

test('NoKey is what a reader without a recipient key gets', async () => {
  const { device, pupilId } = school();
  const { store, outbox } = await outboxFor(device);
  await new ConcernWriter(device, outbox, CATEGORIES).create({
    kind: 'general_note', category: 'friendship', occurred_at: '2026-11-02', observed: 'z',
    pupils: [{ pupil: hex(pupilId), role: 'subject' }],
  });
  const [item] = await outbox.head(1, 1e6);
  const stranger = { kind: RECIPIENT_READER_KEY, id: rnd(16), version: 1, sk: rnd(32) };
  assert.throws(() => envelope.open(item.body, { authorDevicePk: device.deviceKey.publicKey, readerKeys: [stranger] }), NoKey);
  store.close();
});

test('directory work a lock cuts short ends as Locked, and nothing starts once the keys are wiped', async () => {
  const { device } = school();
  /** @type {(value?: unknown) => void} */
  let release = () => undefined;
  const held = new Promise((resolve) => { release = resolve; });
  const running = device.serial(async () => {
    await held;
    throw new Error('opening wrap: authentication tag does not match'); // what a zeroed key gives
  });
  device.wiped = true; // the person locks while the work waits on the network
  release();
  await assert.rejects(running, { name: 'Locked' });
  await assert.rejects(device.serial(async () => 'never run'), { name: 'Locked' });
  const other = school().device; // a device whose keys stand keeps its own errors
  await assert.rejects(other.serial(async () => { throw new Error('refused'); }), { message: 'refused' });
});
