// The keyholder duty that makes entry key grants again (pwa/js/sync/keyholder.js `runDuties` with the device's
// Casebook; Python: sync/keyholder.py): the server lists grants whose keyholder left the team or lost the device,
// and the browser seals each again only to a person the concern's own fold names, who is a current member, and
// only an entry key version it holds. The server here is a stub that lists what the test says, as a hostile one
// would: whatever it lists for someone nobody named is refused, and nothing is sealed to them.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import sodium from '../js/crypto/sodium.js';
import { openEntryGrant } from '../js/crypto/index.js';
import { decode, encode } from '../js/events.js';
import { fold } from '../js/fold.js';
import { b64d, b64e, hex } from '../js/sync/protocol.js';
import { runDuties } from '../js/sync/keyholder.js';

const rnd = (/** @type {number} */ n) => sodium.randombytes_buf(n);

/** A school of a DSL (a keyholder), the Ash teacher and the office; one concern, created by the DSL. */
function school() {
  const people = ['dsl', 'ash', 'office'];
  const ids = Object.fromEntries(people.map((p) => [p, { user: rnd(16), x: sodium.crypto_box_keypair() }]));
  const sg = rnd(16);
  const directory = {
    accounts: people.map((p) => ({
      id: b64e(ids[p].user), login: p, display_name: `Fictional ${p}`, roles: p === 'dsl' ? ['safeguarding'] : ['teacher'],
      identity_x25519_pk: b64e(ids[p].x.publicKey), left: false,
    })),
    devices: [], classes: [], pupils: [],
    reader_keys: [{ id: b64e(sg), version: 1, purpose: 'group:safeguarding', public_key: b64e(rnd(32)), current: true }],
  };
  const signing = sodium.crypto_sign_keypair();
  /** @type {{method: string, path: string, body: any}[]} */
  const posted = [];
  /** @type {any[]} */
  let listed = [];
  const device = {
    schoolId: rnd(16), deviceId: rnd(16), userId: ids.dsl.user, deviceKey: { secretKey: signing.privateKey },
    readerKeys: new Map(), directory, dir: () => directory,
    holdings: () => /** @type {[string, number, string][]} */ ([[b64e(sg), 1, b64e(ids.dsl.user)]]),
    refresh: async () => {},
    /** @param {string} method @param {string} path @param {any} [body] */
    call: async (method, path, body) => {
      if (method === 'GET' && path === '/api/v1/keyholder/duties') return { grants: [], rotations: [], entry_grants: listed };
      posted.push({ method, path, body });
      return { stored: body?.grants?.length ?? 0 };
    },
  };
  const concernId = rnd(16);
  const entryKey = rnd(32);
  const authorDevice = rnd(16);
  const author = hex(ids.dsl.user);
  /** @param {Record<string, unknown>} content @param {number} n */
  const event = (content, n) => decode(encode({ v: 1, hlc: [1_700_000_000_000 + n, 0], author, ...content }),
    { eventId: rnd(16), concernId, authorDevice, deviceTimeMs: 1_700_000_000_000 + n });
  const created = event({ type: 'created', parents: [], entry_key_version: 1, record: {
    kind: 'safeguarding_concern', category: 'neglect', occurred_at: '2026-11-02T12:15', observed: 'Fictional.',
    pupils: [{ pupil: hex(rnd(16)), role: 'subject' }],
  } }, 0);
  const events = [created];
  const blob = { id: hex(concernId), events, keys: { 1: b64e(entryKey) } };
  const concerns = {
    blob: async (/** @type {string} */ id) => (id === blob.id ? blob : null),
    fold: (/** @type {typeof blob} */ b) => fold(b.events, { safeguarding: new Set([author]) }),
  };
  /** The deputy, since gone, named `person` on the concern (an amended event of need_to_know). @param {string} person */
  const name = (person) => events.push(event({
    type: 'amended', parents: [created.id], field: 'need_to_know', value: [hex(ids[person].user)],
  }, 1));
  /** The server lists an entry key grant of `version` to `person` to make again. @param {string} person */
  const lists = (person, version = 1) => {
    listed = [{ concern_id: b64e(concernId), entry_version: version, member_id: b64e(ids[person].user) }];
  };
  return { ids, device, concerns, concernId, entryKey, signing, posted, name, lists };
}

test('an entry key grant of a keyholder gone is made again to the person the concern names', async () => {
  const s = school();
  s.name('ash');
  s.lists('ash');
  const report = await runDuties(/** @type {any} */ (s.device), s.concerns);
  assert.equal(report.regranted, 1);
  assert.deepEqual(report.refused, []);
  const [{ path, body }] = s.posted;
  assert.equal(path, '/api/v1/entry-grants');
  const { entryKey, info } = openEntryGrant(b64d(body.grants[0], 'grant'), {
    memberX25519Sk: s.ids.ash.x.privateKey, schoolId: s.device.schoolId, memberId: s.ids.ash.user,
    granterDevicePk: s.signing.publicKey,
  });
  assert.deepEqual(entryKey, s.entryKey);
  assert.deepEqual([hex(info.concernId), info.entryVersion], [hex(s.concernId), 1]);
});

test('a hostile server listing someone the concern does not name gets nothing sealed', async () => {
  const s = school();
  s.name('ash');
  s.lists('office'); // named by nobody
  const report = await runDuties(/** @type {any} */ (s.device), s.concerns);
  assert.equal(report.regranted, 0);
  assert.deepEqual(s.posted, [], 'the attack got through: an entry key was sealed to someone nobody named');
  assert.match(report.refused[0], /the concern does not name that person$/);
});

test('a version the device does not hold, a person who left, or no Casebook: nothing is sealed', async () => {
  const s = school();
  s.name('ash');
  s.lists('ash', 2);
  assert.match((await runDuties(/** @type {any} */ (s.device), s.concerns)).refused[0], /holds no such entry key version$/);
  s.lists('ash');
  s.device.directory.accounts[1].left = true;
  assert.match((await runDuties(/** @type {any} */ (s.device), s.concerns)).refused[0], /not a current member/);
  s.device.directory.accounts[1].left = false;
  assert.match((await runDuties(/** @type {any} */ (s.device))).refused[0], /this run reads no concern$/);
  assert.deepEqual(s.posted, []);
});
