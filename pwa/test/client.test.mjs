// The browser sync client (sync/client.js) against a fake server that speaks docs/PROTOCOL.md section 9:
// persist before sending, replay in order, keep a refused item at the head, resend with the same ids.

import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { signingKeyPair, verifyDeliveryAuth, verifyDeviceAuth } from '../js/crypto/index.js';
import { openStore } from '../js/db.js';
import { Revoked, SyncClient, SyncError } from '../js/sync/client.js';
import { Outbox } from '../js/sync/outbox.js';
import { b64d, b64e, hex } from '../js/sync/protocol.js';

const SCHOOL = new Uint8Array(16).fill(7);
const DEVICE = new Uint8Array(16).fill(9);
const KEY = signingKeyPair(new Uint8Array(32).fill(3));
const DELIVERY = signingKeyPair(new Uint8Array(32).fill(4));

/**
 * A fake /sync endpoint: stores envelopes by id (idempotently), and can be told to refuse or drop.
 */
class FakeServer {
  constructor() {
    /** @type {Map<string, number>} envelope id (hex of the 16-byte body prefix) to seq */
    this.stored = new Map();
    /** @type {string[][]} each put's envelope ids, in order */
    this.puts = [];
    /** @type {{code: string, item?: number} | null} */
    this.refuse = null;
    this.dropNextPut = false;
    /** @type {string | null} */
    this.authError = null;
    /** @type {Record<string, any>[]} every first frame, in order */
    this.hellos = [];
    /** @type {FakeSocket | null} */
    this.socket = null;
    /** @type {string[]} envelopes a revoked device handed over */
    this.handedOver = [];
    /** @type {Record<string, any>[]} every pull frame, in order */
    this.pulls = [];
    this.notGranted = false;
  }

  /** @param {string} url */
  open(url) {
    assert.equal(url, 'ws://test/sync');
    this.socket = new FakeSocket(this);
    return this.socket;
  }
}

class FakeSocket {
  /** @param {FakeServer} server */
  constructor(server) {
    this.server = server;
    this.nonce = new Uint8Array(32).fill(5);
    /** @type {((ev: any) => void) | null} */ this.onopen = null;
    /** @type {((ev: {data: unknown}) => void) | null} */ this.onmessage = null;
    /** @type {((ev: any) => void) | null} */ this.onclose = null;
    /** @type {((ev: any) => void) | null} */ this.onerror = null;
    this.open = true;
    setTimeout(() => this.reply({ type: 'challenge', nonce: b64e(this.nonce), server_time_ms: 1, protocol: 1 }), 0);
  }

  /** @param {Record<string, unknown>} body */
  reply(body) {
    if (this.open) this.onmessage?.({ data: JSON.stringify(body) });
  }

  close() {
    if (!this.open) return;
    this.open = false;
    setTimeout(() => this.onclose?.({}), 0);
  }

  /** @param {string} text */
  send(text) {
    const frame = JSON.parse(text);
    const server = this.server;
    setTimeout(() => {
      if (frame.type === 'auth' || frame.type === 'deliver') server.hellos.push(frame);
      if (frame.type === 'deliver') {
        if (server.authError) {
          this.reply({ type: 'error', id: frame.id, code: server.authError, detail: 'no' });
          return;
        }
        verifyDeliveryAuth(DELIVERY.publicKey, SCHOOL, b64d(frame.device_id, 'device_id'), this.nonce, b64d(frame.signature, 'signature'));
        this.reply({ type: 'ready', id: frame.id, school_id: b64e(SCHOOL), user_id: '', device_id: frame.device_id, roles: [], limits: {}, deliver_only: true });
        return;
      }
      if (frame.type === 'auth') {
        if (server.authError) {
          this.reply({ type: 'error', id: frame.id, code: server.authError, detail: 'no' });
          return;
        }
      } else if (frame.type === 'hand_over') {
        server.handedOver.push(...frame.envelopes);
        this.reply({ type: 'held', id: frame.id, count: frame.envelopes.length });
        return;
      }
      if (frame.type === 'auth') {
        verifyDeviceAuth(KEY.publicKey, SCHOOL, b64d(frame.device_id, 'device_id'), this.nonce, b64d(frame.signature, 'signature'));
        this.reply({ type: 'ready', id: frame.id, school_id: b64e(SCHOOL), user_id: '', device_id: frame.device_id, roles: [], limits: {} });
      } else if (frame.type === 'put') {
        const ids = frame.envelopes.map((/** @type {string} */ e) => hex(b64d(e, 'envelope').subarray(0, 16)));
        server.puts.push(ids);
        if (server.dropNextPut) {
          server.dropNextPut = false;
          this.close();
          return;
        }
        const refuse = server.refuse;
        if (refuse && (refuse.item === undefined || refuse.item < ids.length)) {
          server.refuse = null;
          const fields = refuse.item === undefined ? undefined : { envelopes: `item ${refuse.item}` };
          this.reply({ type: 'error', id: frame.id, code: refuse.code, detail: 'refused', fields });
          return;
        }
        const results = ids.map((/** @type {string} */ id) => {
          const duplicate = server.stored.has(id);
          if (!duplicate) server.stored.set(id, server.stored.size + 1);
          return { envelope_id: b64e(hexBytes(id)), seq: server.stored.get(id), server_time_ms: 2, duplicate };
        });
        this.reply({ type: 'ack', id: frame.id, results });
      } else if (frame.type === 'pull') {
        server.pulls.push(frame);
        if (frame.keys || frame.entry_keys) { // a backfill: two pages of one item each, or refused
          if (server.notGranted) {
            this.reply({ type: 'error', id: frame.id, code: 'not_granted', detail: 'no', fields: { 'entry_keys[0]': 'not_granted' } });
            return;
          }
          const first = frame.cursor === null;
          const item = { seq: first ? 1 : 2, server_time_ms: 3, envelope: b64e(new Uint8Array(8).fill(first ? 1 : 2)) };
          this.reply({ type: 'page', id: frame.id, items: [item], cursor: first ? 'c1.AAAAAAAAAAE' : 'c1.AAAAAAAAAAI', done: !first });
          return;
        }
        this.reply({ type: 'page', id: frame.id, items: [], cursor: 'c1.AAAAAAAAAAA', done: true });
      }
    }, 0);
  }
}

/** @param {string} text */
function hexBytes(text) {
  return Uint8Array.from(text.match(/../g) ?? [], (x) => parseInt(x, 16));
}

let n = 0;
/**
 * An outbox with `count` queued stand-in envelopes whose first 16 bytes are their id.
 * @param {number} count
 */
async function queued(count) {
  n += 1;
  const store = await openStore({ name: `cairn-test-client-${n}` });
  const outbox = new Outbox(store, hex(DEVICE), 'user');
  for (let i = 0; i < count; i++) {
    await outbox.queue((chain) => {
      const id = new Uint8Array(16).fill(0);
      id[15] = chain.counter + 1;
      const body = new Uint8Array(64);
      body.set(id);
      return { envelopeId: hex(id), body, hash: new Uint8Array(32), hlc: null };
    });
  }
  return { store, outbox };
}

/** @param {Outbox} outbox @param {FakeServer} server @param {number} [batchSize] */
function client(outbox, server, batchSize = 2) {
  return new SyncClient('ws://test/sync', outbox, {
    schoolId: SCHOOL, deviceId: DEVICE, deviceSecretKey: KEY.secretKey, token: 't', batchSize,
    socket: (url) => server.open(url),
  });
}

const idOf = (/** @type {number} */ i) => hex(Uint8Array.from({ length: 16 }, (_, k) => (k === 15 ? i : 0)));

test('flush sends the outbox in order, in batches, and deletes each item only when acked', async () => {
  const server = new FakeServer();
  const { store, outbox } = await queued(5);
  const c = client(outbox, server);
  const ready = await c.connect();
  assert.equal(ready.type, 'ready');
  const report = await c.flush();
  assert.deepEqual(server.puts, [[idOf(1), idOf(2)], [idOf(3), idOf(4)], [idOf(5)]]);
  assert.deepEqual([report.sent, report.duplicates, await outbox.pendingCount()], [5, 0, 0]);
  const pulled = await c.pullAll();
  assert.equal(await outbox.cursor(), 'c1.AAAAAAAAAAA');
  assert.equal(pulled.received, 0);
  c.close();
  store.close();
});

test('a connection lost mid-put keeps everything; the replay uses the same ids and duplicates are acked', async () => {
  const server = new FakeServer();
  const { store, outbox } = await queued(3);
  server.stored.set(idOf(1), 1); // the server had stored the first before the connection went
  server.dropNextPut = true;
  const first = client(outbox, server);
  await first.connect();
  await assert.rejects(first.flush(), (e) => e instanceof SyncError && e.code === 'connection_closed');
  assert.equal(await outbox.pendingCount(), 3);
  const second = client(outbox, server, 10);
  await second.connect();
  const report = await second.flush();
  assert.deepEqual(server.puts.at(-1), [idOf(1), idOf(2), idOf(3)]);
  assert.deepEqual([report.sent, report.duplicates, await outbox.pendingCount()], [2, 1, 0]);
  second.close();
  store.close();
});

test('a refused item stays at the head: those before it are sent, nothing behind it is', async () => {
  const server = new FakeServer();
  const { store, outbox } = await queued(4);
  server.refuse = { code: 'unknown_pupil', item: 1 };
  const c = client(outbox, server, 10);
  await c.connect();
  const report = await c.flush();
  assert.deepEqual(report.refused, [[idOf(2), 'unknown_pupil']]);
  assert.deepEqual(server.puts, [[idOf(1), idOf(2), idOf(3), idOf(4)], [idOf(1)]]);
  const head = await outbox.head(10, 1e6);
  assert.deepEqual(head.map((p) => [p.envelopeId, p.failedCode]), [[idOf(2), 'unknown_pupil'], [idOf(3), null], [idOf(4), null]]);
  const again = await c.flush(); // retried with the same id, in the same order
  assert.deepEqual(server.puts.at(-1), [idOf(2), idOf(3), idOf(4)]);
  assert.equal(again.sent, 3);
  c.close();
  store.close();
});

test('a retryable error leaves the outbox as it was and says so', async () => {
  const server = new FakeServer();
  const { store, outbox } = await queued(2);
  server.refuse = { code: 'internal_error' };
  const c = client(outbox, server);
  await c.connect();
  await assert.rejects(c.flush(), (e) => e instanceof SyncError && e.code === 'internal_error');
  const head = await outbox.head(10, 1e6);
  assert.deepEqual(head.map((p) => p.failedCode), [null, null]);
  c.close();
  store.close();
});

test('a revoked device hands over what it never sent, then wipes its local store', async () => {
  const server = new FakeServer();
  const { store, outbox } = await queued(2);
  server.authError = 'device_revoked';
  const c = client(outbox, server);
  await assert.rejects(c.connect(), (e) => e instanceof Revoked && e.wiped);
  assert.equal(await outbox.pendingCount(), 0);
  assert.equal(c.handedOver, 2);
  assert.equal(server.handedOver.length, 2);
  store.close();
});

test('a failed sign-in of the connection is an error, and nothing is sent or lost', async () => {
  const server = new FakeServer();
  const { store, outbox } = await queued(1);
  server.authError = 'session_expired';
  await assert.rejects(client(outbox, server).connect(), (e) => e instanceof SyncError && e.code === 'session_expired');
  assert.deepEqual([server.puts.length, await outbox.pendingCount()], [0, 1]);
  store.close();
});

test('a backfill names its keys, pages from the beginning, keeps the cursor, and reports refused keys', async () => {
  const server = new FakeServer();
  const { store, outbox } = await queued(0);
  /** @type {unknown[][]} */
  const received = [];
  /** @type {string[]} */
  const notices = [];
  const c = new SyncClient('ws://test/sync', outbox, {
    schoolId: SCHOOL, deviceId: DEVICE, deviceSecretKey: KEY.secretKey, token: 't', socket: (url) => server.open(url),
    onReceived: (items) => { received.push(items); }, onNotice: (kind) => { notices.push(kind); },
  });
  await c.connect();
  await c.pullAll();
  assert.equal(await outbox.cursor(), 'c1.AAAAAAAAAAA');
  const named = { keys: [{ id: b64e(new Uint8Array(16).fill(1)), version: 2 }], entry_keys: [] };
  assert.deepEqual(await c.backfill(named), []);
  assert.deepEqual(server.pulls.slice(1).map((p) => [p.cursor, p.keys, p.entry_keys]),
    [[null, named.keys, undefined], ['c1.AAAAAAAAAAE', named.keys, undefined]]);
  assert.equal(received.flat().length, 2);
  assert.equal(await outbox.cursor(), 'c1.AAAAAAAAAAA'); // a backfill never moves the stored cursor
  server.notGranted = true;
  assert.deepEqual(await c.backfill({ entry_keys: [{ id: b64e(new Uint8Array(16)), version: 1 }] }), ['entry_keys[0]']);
  server.socket?.reply({ type: 'grants' });
  server.socket?.reply({ type: 'directory', version: 7 });
  assert.deepEqual(notices, ['grants', 'directory']);
  c.close();
  store.close();
});

test('a delivery connection proves the delivery key, carries no session and sends the outbox', async () => {
  const server = new FakeServer();
  const { store, outbox } = await queued(3);
  const c = new SyncClient('ws://test/sync', outbox, {
    schoolId: SCHOOL, deviceId: DEVICE, deliverySecretKey: DELIVERY.secretKey, socket: (url) => server.open(url),
  });
  const ready = await c.connect();
  assert.equal(ready.deliver_only, true);
  assert.deepEqual(server.hellos.map((f) => [f.type, 'token' in f]), [['deliver', false]]);
  const report = await c.flush();
  assert.deepEqual([report.sent, await outbox.pendingCount()], [3, 0]);
  c.close();
  store.close();
});

test("a revoked device's delivery connection neither hands over nor wipes: that needs the person", async () => {
  const server = new FakeServer();
  server.authError = 'device_revoked';
  const { store, outbox } = await queued(2);
  const c = new SyncClient('ws://test/sync', outbox, {
    schoolId: SCHOOL, deviceId: DEVICE, deliverySecretKey: DELIVERY.secretKey, socket: (url) => server.open(url),
  });
  await assert.rejects(c.connect(), (e) => e instanceof SyncError && !(e instanceof Revoked) && e.code === 'device_revoked');
  assert.deepEqual([server.handedOver.length, await outbox.pendingCount()], [0, 2]);
  store.close();
});

test('a client is given a device key or a delivery key, never both', () => {
  assert.throws(() => new SyncClient('ws://test/sync', /** @type {any} */ (null), {
    schoolId: SCHOOL, deviceId: DEVICE, deviceSecretKey: KEY.secretKey, deliverySecretKey: DELIVERY.secretKey,
  }), TypeError);
});
