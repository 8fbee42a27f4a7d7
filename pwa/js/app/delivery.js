// Sending never waits for the author (docs/PROTOCOL.md 3.2). Every envelope in the outbox was sealed and
// signed when it was written; what sends it is the device's delivery key, which is kept outside the person's
// sealed records. So on a shared tablet the entries of everyone who is locked out, or of everyone when nobody
// is signed in, leave as soon as the tablet is online. A delivery connection may put and ping only: whoever
// holds the delivery key can send what the tablet already sealed, nothing it could make, and read nothing.

import { signingKeyPair } from '../crypto/device.js';
import { randomBytes } from '../crypto/_random.js';
import { b64e, hex } from '../sync/protocol.js';
import { Outbox } from '../sync/outbox.js';
import { SyncClient, SyncError, newReport } from '../sync/client.js';

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../db.js').AccountRecord} AccountRecord */
/** @typedef {import('./people.js').Session} Session */
/** @typedef {import('../sync/client.js').SyncReport} SyncReport */

/**
 * Make this unlocked person's device a delivery key if it has none, and register its public half. The seed is
 * stored before it is registered, so a registration cut short is retried with the same key.
 * @param {LocalStore} store
 * @param {Session} session
 * @returns {Promise<void>} rejects (TypeError, ApiFailure) when offline or refused: the next run tries again
 */
export async function ensureDeliveryKey(store, session) {
  const device = hex(session.device.deviceId);
  let record = await store.deliveryKey(device);
  if (record?.registered) return;
  if (!record) {
    record = { seed: randomBytes(32), registered: false };
    if (!(await store.setDeliveryKey(session.id, device, record))) return; // wiped meanwhile (revoked)
  }
  const { publicKey } = signingKeyPair(record.seed);
  await session.device.api.call('POST', '/api/v1/devices/delivery-key', session.device.token ?? null,
    { public_key: b64e(publicKey) });
  await store.setDeliveryKey(session.id, device, { seed: record.seed, registered: true });
}

/**
 * Whether an account's entries on this device leave without its person (its delivery key is registered).
 * @param {LocalStore} store
 * @param {AccountRecord} account
 */
export async function delivers(store, account) {
  return Boolean((await store.deliveryKey(hex(account.deviceId)))?.registered);
}

/**
 * Send the outbox of every account on this device but `activeId` (the unlocked person, whose own connection
 * sends theirs), each over a delivery connection of its device. One account's failure does not stop the
 * others; it is tried again at the next run.
 * @param {LocalStore} store
 * @param {string} url the /sync websocket
 * @param {string | null} activeId
 * @returns {Promise<SyncReport>}
 */
export async function deliverLocked(store, url, activeId) {
  const report = newReport();
  for (const account of await store.accounts()) {
    if (account.id === activeId) continue;
    const device = hex(account.deviceId);
    const key = await store.deliveryKey(device);
    if (!key?.registered || !(await store.pendingCount(device))) continue;
    const { secretKey } = signingKeyPair(key.seed);
    const client = new SyncClient(url, new Outbox(store, device, account.id), {
      schoolId: account.schoolId, deviceId: account.deviceId, deliverySecretKey: secretKey,
    });
    try {
      await client.connect();
      await client.flush(report);
    } catch (error) {
      // offline, refused or revoked: the entries stay queued; the person's own next connection hands them over
      if (!(error instanceof SyncError || error instanceof TypeError)) throw error;
    } finally {
      client.close();
      secretKey.fill(0);
    }
  }
  return report;
}
