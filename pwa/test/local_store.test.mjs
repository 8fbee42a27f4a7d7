// What the staff app keeps at rest across password changes (app/people.js over db.js, fake-indexeddb): a
// version 1 store (sealed under a key derived from the KEK) is re-sealed under a data key at its next unlock,
// drafts and unsent audit entries included; a wrong password changes nothing; and a change whose answer was
// lost (the new wrap staged beside the old) unlocks with the new password and then keeps only it.

import 'fake-indexeddb/auto';
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Writer } from '../js/crypto/_codec.js';
import { aeadEncrypt, ctx } from '../js/crypto/_primitives.js';
import {
  KdfParams, SLOT_PASSWORD_WRAP, deriveAccount, localKey, newKdfParams, openLocal, passwordWrapKey, unwrapDataKey,
  wrapDataKey,
} from '../js/crypto/index.js';
import { openStore } from '../js/db.js';
import { WrongPassword, unlock } from '../js/app/people.js';
import { Api } from '../js/sync/device.js';
import { hex } from '../js/sync/protocol.js';

const PASSWORD = 'a fictional passphrase for the tablet';
const utf8 = new TextEncoder();
const rnd = (/** @type {number} */ n) => globalThis.crypto.getRandomValues(new Uint8Array(n));
let dbCount = 0;

/**
 * A version 1 record, as the app sealed them before the data key (docs/PROTOCOL.md 12).
 * @param {Uint8Array} key localKey(kek)
 * @param {Uint8Array} schoolId @param {Uint8Array} userId @param {string} kind @param {Uint8Array} recordId
 * @param {Uint8Array} plaintext
 */
function sealV1(key, schoolId, userId, kind, recordId, plaintext) {
  const raw = utf8.encode(kind);
  const ad = new Writer().bytes(ctx('cairn/v1/local')).u8(1).id(schoolId).id(userId).u8(raw.length).bytes(raw)
    .id(recordId).finish();
  const nonce = rnd(24);
  return new Writer().u8(1).bytes(nonce).bytes(aeadEncrypt(key, nonce, ad, plaintext)).finish();
}

async function v1Store() {
  dbCount += 1;
  const store = await openStore({ name: `cairn-test-local-${dbCount}` });
  const kdfParams = newKdfParams().encode();
  const kek = deriveAccount(PASSWORD, KdfParams.decode(kdfParams)).kek;
  const key = localKey(kek);
  const [schoolId, userId, deviceId, draftId] = [rnd(16), rnd(16), rnd(16), rnd(16)];
  const id = hex(userId);
  const identity = rnd(64);
  const seal = (/** @type {string} */ kind, /** @type {Uint8Array} */ recordId, /** @type {Uint8Array} */ plain) =>
    sealV1(key, schoolId, userId, kind, recordId, plain);
  await store.putAccount({
    id, schoolId, userId, login: 'fictional-supervisor', displayName: 'Fictional Supervisor', roles: ['contributor'],
    kdfParams, deviceId, addedMs: 1, lastUsedMs: 1,
    sealed: {
      identity: seal('identity', userId, identity),
      'device-key': seal('device-key', deviceId, rnd(32)),
      session: seal('session', deviceId, utf8.encode(JSON.stringify({ token: 'fictional-token', expires_ms: 1 }))),
    },
  });
  await store.putDraft({ id: hex(draftId), account: id, updatedMs: 1, sealed: seal('draft', draftId, utf8.encode('{"observed":"fictional draft"}')) });
  await store.putReviewRecords([{
    key: `${id}|review-state|${id}`, account: id,
    sealed: seal('review-state', userId, utf8.encode('{"unsentAudit":[{"action":"concern.opened"}]}')),
  }]);
  return { store, id, schoolId, userId, deviceId, draftId, identity };
}

test('a version 1 store is re-sealed under a data key at its next unlock, drafts and unsent audit entries included', async () => {
  const s = await v1Store();
  const session = await unlock(s.store, new Api('http://127.0.0.1:9'), /** @type {any} */ (await s.store.account(s.id)), PASSWORD);
  assert.deepEqual([...session.device.identity.x25519Sk, ...session.device.identity.ed25519Seed], [...s.identity]);
  const record = /** @type {import('../js/db.js').AccountRecord} */ (await s.store.account(s.id));
  assert.ok(record.wraps?.password && record.wraps.identity);
  const dataKey = unwrapDataKey(record.wraps.password, passwordWrapKey(deriveAccount(PASSWORD, KdfParams.decode(record.kdfParams)).kek),
    SLOT_PASSWORD_WRAP, s.schoolId, s.userId, s.deviceId);
  assert.deepEqual([...dataKey], [...session.localKey]);
  const [draft] = await s.store.drafts(s.id);
  assert.equal(draft.sealed[0], 2); // version 2 now
  assert.deepEqual(session.openJson('draft', s.draftId, draft.sealed), { observed: 'fictional draft' });
  const state = await s.store.reviewRecord(`${s.id}|review-state|${s.id}`);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(openLocal(dataKey, s.schoolId, s.userId, 'review-state', s.userId,
    /** @type {any} */ (state).sealed))), { unsentAudit: [{ action: 'concern.opened' }] });
  for (const sealed of Object.values(record.sealed)) assert.equal(sealed[0], 2);
  s.store.close();
});

test('a wrong password on a version 1 store is refused and re-seals nothing', async () => {
  const s = await v1Store();
  const before = await s.store.account(s.id);
  await assert.rejects(unlock(s.store, new Api('http://127.0.0.1:9'), /** @type {any} */ (before), 'not the password, fictional'),
    WrongPassword);
  assert.deepEqual(await s.store.account(s.id), before);
  assert.equal((await s.store.drafts(s.id))[0].sealed[0], 1);
  s.store.close();
});

test('a change whose answer was lost unlocks with the new password, which then replaces the old', async () => {
  const s = await v1Store();
  const session = await unlock(s.store, new Api('http://127.0.0.1:9'), /** @type {any} */ (await s.store.account(s.id)), PASSWORD);
  const record = /** @type {import('../js/db.js').AccountRecord} */ (await s.store.account(s.id));
  const wraps = /** @type {import('../js/db.js').DataKeyWraps} */ (record.wraps);
  const stagedKdfParams = newKdfParams().encode();
  const next = deriveAccount('a fictional new passphrase, staged', KdfParams.decode(stagedKdfParams));
  const staged = wrapDataKey(session.localKey, passwordWrapKey(next.kek), SLOT_PASSWORD_WRAP, s.schoolId, s.userId, s.deviceId);
  await s.store.updateAccount(s.id, {}, { wraps: { ...wraps, staged, stagedKdfParams } }); // then the tab closed
  const again = await unlock(s.store, new Api('http://127.0.0.1:9'), /** @type {any} */ (await s.store.account(s.id)),
    'a fictional new passphrase, staged');
  assert.deepEqual([...again.localKey], [...session.localKey]);
  const promoted = /** @type {import('../js/db.js').AccountRecord} */ (await s.store.account(s.id));
  assert.deepEqual(Object.keys(promoted.wraps ?? {}).sort(), ['identity', 'password']);
  assert.deepEqual([...promoted.kdfParams], [...stagedKdfParams]);
  await assert.rejects(unlock(s.store, new Api('http://127.0.0.1:9'), promoted, PASSWORD), WrongPassword);
  const [draft] = await s.store.drafts(s.id);
  assert.deepEqual(again.openJson('draft', s.draftId, draft.sealed), { observed: 'fictional draft' });
  s.store.close();
});
