// The browser outbox's policy (db.js and sync/outbox.js) over fake-indexeddb: seal and queue atomically, keep the
// order, send nothing past a refused item, delete only on ack, never expire, and wipe one person only.

import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { openStore } from '../js/db.js';
import { Outbox } from '../js/sync/outbox.js';

let dbCount = 0;
/** A fresh database of its own for each test. */
async function fresh() {
  dbCount += 1;
  return openStore({ name: `cairn-test-outbox-${dbCount}` });
}

/**
 * A stand-in for sealing: the body is the counter, so order is visible.
 * @param {number} size
 * @returns {(chain: import('../js/db.js').ChainRecord) => {envelopeId: string, body: Uint8Array, hash: Uint8Array, hlc: [number, number]}}
 */
function sealer(size = 8) {
  return (chain) => {
    const n = chain.counter + 1;
    const body = new Uint8Array(size).fill(n % 256);
    const prefix = chain.device === 'dev-a' ? '' : `${chain.device}:`;
    return { envelopeId: `${prefix}e${String(n).padStart(4, '0')}`, body, hash: new Uint8Array(32).fill(n % 256), hlc: [1000 + n, 0] };
  };
}

test('queue chains each envelope to the one before, and head returns them in order', async () => {
  const store = await fresh();
  const outbox = new Outbox(store, 'dev-a', 'user-a');
  /** @type {[number, number, number | null][]} */
  const seen = [];
  for (let i = 0; i < 5; i++) {
    await outbox.queue((chain) => {
      seen.push([chain.counter, chain.lastHash[0], chain.lastHlc?.[0] ?? null]);
      return sealer()(chain);
    });
  }
  assert.deepEqual(seen, [[0, 0, null], [1, 1, 1001], [2, 2, 1002], [3, 3, 1003], [4, 4, 1004]]);
  const head = await outbox.head(3, 10_000);
  assert.deepEqual(head.map((p) => p.envelopeId), ['e0001', 'e0002', 'e0003']);
  assert.equal(await outbox.pendingCount(), 5);
  assert.equal((await outbox.chain()).counter, 5);
  store.close();
});

test('a seal that throws changes neither the chain nor the outbox', async () => {
  const store = await fresh();
  const outbox = new Outbox(store, 'dev-a', 'user-a');
  await outbox.queue(sealer());
  await assert.rejects(outbox.queue(() => { throw new Error('no directory'); }), /no directory/);
  assert.equal(await outbox.pendingCount(), 1);
  assert.equal((await outbox.chain()).counter, 1);
  await outbox.queue(sealer());
  assert.deepEqual((await outbox.head(10, 10_000)).map((p) => p.envelopeId), ['e0001', 'e0002']);
  store.close();
});

test('head keeps to the byte budget but always offers at least one item', async () => {
  const store = await fresh();
  const outbox = new Outbox(store, 'dev-a', 'user-a');
  for (let i = 0; i < 4; i++) await outbox.queue(sealer(3000));
  assert.equal((await outbox.head(10, 9000)).length, 2);
  assert.equal((await outbox.head(10, 10)).length, 1);
  store.close();
});

test('only an ack removes an item; a refused item stays at the head, marked, and nothing expires', async () => {
  const store = await fresh();
  const outbox = new Outbox(store, 'dev-a', 'user-a');
  for (let i = 0; i < 3; i++) await outbox.queue(sealer());
  const [first, second] = await outbox.head(10, 10_000);
  await outbox.acknowledged([first.envelopeId, 'not-queued']);
  await outbox.failed(/** @type {number} */ (second.position), 'unknown_pupil', 'x'.repeat(900));
  const head = await outbox.head(10, 10_000);
  assert.deepEqual(head.map((p) => [p.envelopeId, p.failedCode, p.attempts]), [
    ['e0002', 'unknown_pupil', 1], ['e0003', null, 0]]);
  assert.equal(head[0].failedDetail?.length, 500);
  assert.equal(await outbox.oldestPendingMs(), head[0].queuedMs);
  store.close();
});

test('devices on one browser keep separate outboxes, chains and cursors; a wipe removes one person only', async () => {
  const store = await fresh();
  const a = new Outbox(store, 'dev-a', 'user-a');
  const b = new Outbox(store, 'dev-b', 'user-b');
  await a.queue(sealer());
  await b.queue(sealer());
  await b.queue(sealer());
  await a.received([], 'c1.AAAAAAAAAAE');
  await store.putDraft({ id: 'd1', account: 'user-a', updatedMs: 1, sealed: new Uint8Array(4) });
  await store.putDraft({ id: 'd2', account: 'user-b', updatedMs: 1, sealed: new Uint8Array(4) });
  assert.deepEqual([await a.pendingCount(), await b.pendingCount(), await store.pendingCount()], [1, 2, 3]);
  assert.deepEqual((await b.head(10, 10_000)).map((p) => p.envelopeId), ['dev-b:e0001', 'dev-b:e0002']);
  const rows = await store.pendingByDevice();
  assert.deepEqual([...rows.keys()].sort(), ['dev-a', 'dev-b']);
  await a.wipe();
  assert.deepEqual([await a.pendingCount(), await b.pendingCount()], [0, 2]);
  assert.equal(await a.cursor(), null);
  assert.equal((await a.chain()).counter, 0);
  assert.deepEqual((await store.drafts('user-b')).map((d) => d.id), ['d2']);
  assert.deepEqual(await store.drafts('user-a'), []);
  store.close();
});

test('the cursor moves forward with what is received; nothing received is kept', async () => {
  const store = await fresh();
  const outbox = new Outbox(store, 'dev-a', 'user-a');
  assert.equal(await outbox.cursor(), null);
  await outbox.received([{ seq: 1 }], 'c1.AAAAAAAAAAE');
  await outbox.received([], null);
  assert.equal(await outbox.cursor(), 'c1.AAAAAAAAAAE');
  store.close();
});
