// The signed directory in the browser's client code (sync/directory.js and Device in sync/device.js, the
// twins of sync/directory.py and sync/device.py): a keyholder device signs the first version and pins its
// key, a reader pins at first sign-in, a hostile server's slipped-in key or older version is refused and
// never encrypted to, a rotation is followed only through the version signed by the old key, and a
// keyholder refuses to sign a device its user did not certify.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import sodium from '../js/crypto/sodium.js';
import {
  SIGNING_PURPOSE, directorySigningKey, fingerprint, makeDeviceCert, readDirectory, signDirectory, signingKeyPair,
} from '../js/crypto/index.js';
import { Device } from '../js/sync/device.js';
import { DirectoryRefused, checkBeforeSigning, contentFromListing, follow } from '../js/sync/directory.js';
import { b64d, b64e, hex } from '../js/sync/protocol.js';

const rnd = (/** @type {number} */ n) => sodium.randombytes_buf(n);

/** A school's server state and a stand-in for its directory routes (GET and POST /api/v1/directory). */
function school() {
  const schoolId = rnd(16);
  const people = ['dsl', 'teacher'].map((login) => {
    const seed = rnd(32);
    const box = sodium.crypto_box_keypair();
    return { login, id: rnd(16), seed, identity: signingKeyPair(seed), box, deviceId: rnd(16), deviceSeed: rnd(32) };
  });
  const signingReader = { id: rnd(16), pair: sodium.crypto_box_keypair() };
  const safeguarding = { id: rnd(16), pair: sodium.crypto_box_keypair() };
  const key = (/** @type {{id: Uint8Array, pair: {publicKey: Uint8Array}}} */ k, /** @type {string} */ purpose, version = 1) => ({
    id: b64e(k.id), version, purpose, public_key: b64e(k.pair.publicKey), current: true,
  });
  const current = {
    accounts: people.map((p) => ({
      id: b64e(p.id), login: p.login, display_name: `Fictional ${p.login}`, roles: p.login === 'dsl' ? ['safeguarding'] : ['teacher'],
      identity_x25519_pk: b64e(p.box.publicKey), identity_ed25519_pk: b64e(p.identity.publicKey), left: false,
    })),
    devices: people.map((p) => ({
      id: b64e(p.deviceId), user_id: b64e(p.id), public_key: b64e(signingKeyPair(p.deviceSeed).publicKey), revoked: false,
      cert: b64e(makeDeviceCert({
        identitySecretKey: p.identity.secretKey, schoolId, userId: p.id, deviceId: p.deviceId,
        devicePk: signingKeyPair(p.deviceSeed).publicKey, createdMs: 1,
      })),
    })),
    reader_keys: [key(safeguarding, 'group:safeguarding'), key(signingReader, SIGNING_PURPOSE)],
    pupils: [],
    classes: [],
  };
  /** @type {Uint8Array[]} */
  const versions = [];
  const server = {
    current,
    versions,
    /** @type {(served: any) => any} */
    rewrite: (served) => served,
    /** @param {string} method @param {string} path @param {string | null} _token @param {any} body */
    async call(method, path, _token, body) {
      if (path === '/api/v1/grants') return { grants: [] };
      if (method === 'POST') {
        const d = readDirectory(b64d(body.signed, 'signed'));
        assert.equal(d.version, versions.length + 1);
        versions.push(d.raw);
        return { version: d.version };
      }
      const newest = versions.at(-1);
      const since = Number(new URL(path, 'http://x').searchParams.get('since') ?? 0);
      const links = versions.slice(since, -1).filter((raw) => {
        const d = readDirectory(raw);
        return hex(d.signingPk) !== hex(d.nextSigningPk);
      });
      const changed = !newest || JSON.stringify(contentFromListing(current)) !== JSON.stringify(readDirectory(newest).content)
        && server.dirty;
      return server.rewrite({
        version: versions.length, signed: newest ? b64e(newest) : null, links: links.map(b64e), changed, current,
      });
    },
    dirty: false,
  };
  const device = (/** @type {number} */ n) => new Device({
    api: /** @type {any} */ (server), schoolId, userId: people[n].id, login: people[n].login, deviceId: people[n].deviceId,
    deviceSeed: people[n].deviceSeed, identity: { x25519Sk: people[n].box.privateKey, ed25519Seed: people[n].seed },
    roles: n === 0 ? ['safeguarding'] : ['teacher'], token: 't',
  });
  return { schoolId, people, signingReader, safeguarding, server, device };
}

test('the keyholder signs version 1 and pins its key; a reader pins the same key at first sign-in', async () => {
  const { schoolId, signingReader, server, device } = school();
  const dsl = device(0);
  dsl.readerKeys.set(`${hex(signingReader.id)}:1`, signingReader.pair.privateKey);
  await dsl.refresh();
  assert.equal(server.versions.length, 1);
  const expected = directorySigningKey(signingReader.pair.privateKey).publicKey;
  assert.equal(hex(/** @type {Uint8Array} */ (dsl.pinnedSigningPk)), hex(expected));
  assert.equal(dsl.fingerprint, fingerprint(schoolId, expected));
  const teacher = device(1);
  await teacher.refresh();
  assert.equal(teacher.fingerprint, dsl.fingerprint);
  assert.equal(server.versions.length, 1); // a reader never signs
  assert.equal(teacher.directory?.devices.length, 2);
});

test('a hostile server cannot slip in a key signed with its own, nor serve an older version', async () => {
  const { schoolId, signingReader, safeguarding, server, device } = school();
  const dsl = device(0);
  dsl.readerKeys.set(`${hex(signingReader.id)}:1`, signingReader.pair.privateKey);
  await dsl.refresh();
  const teacher = device(1);
  await teacher.refresh();
  const held = teacher.signedDirectory;
  const invented = sodium.crypto_box_keypair();
  const own = signingKeyPair(rnd(32));
  server.rewrite = (served) => {
    const d = readDirectory(b64d(served.signed, 'signed'));
    const content = { ...d.content, readerKeys: [...d.content.readerKeys, {
      id: safeguarding.id, version: 2, purpose: 'group:safeguarding', publicKey: invented.publicKey, current: true }] };
    const raw = signDirectory(own, { schoolId, version: d.version + 1, prevHash: d.hash, createdMs: 1, nextSigningPk: own.publicKey, content });
    return { ...served, signed: b64e(raw) };
  };
  await assert.rejects(teacher.refresh(), (e) => e instanceof DirectoryRefused && e.code === 'bad_signature');
  assert.equal(teacher.signedDirectory, held);
  const recipients = teacher.recipientsFor([]);
  assert.deepEqual(recipients.map((r) => hex(r.pk)), [hex(safeguarding.pair.publicKey)]);
  assert.equal(recipients[0].version, 1);

  server.rewrite = (served) => served;
  server.dirty = true;
  server.current.accounts[1].display_name = 'Fictional teacher, renamed';
  await dsl.refresh(); // version 2
  await teacher.refresh();
  const first = server.versions[0];
  server.rewrite = (served) => ({ ...served, signed: b64e(first), links: [] });
  await assert.rejects(teacher.refresh(), (e) => e instanceof DirectoryRefused && e.code === 'rollback');
  assert.equal(teacher.signedDirectory?.version, 2);
});

test('a rotation is followed through the version signed by the old key, and only so', () => {
  const { schoolId, server } = school();
  const old = signingKeyPair(rnd(32));
  const next = signingKeyPair(rnd(32));
  const content = contentFromListing(server.current);
  const v1 = signDirectory(old, { schoolId, version: 1, prevHash: new Uint8Array(32), createdMs: 1, nextSigningPk: old.publicKey, content });
  const held = readDirectory(v1);
  const v2 = signDirectory(old, { schoolId, version: 2, prevHash: held.hash, createdMs: 2, nextSigningPk: next.publicKey, content });
  const v3 = signDirectory(next, { schoolId, version: 3, prevHash: readDirectory(v2).hash, createdMs: 3, nextSigningPk: next.publicKey, content });
  const followed = follow({ signed: b64e(v3), links: [b64e(v2)] }, schoolId, old.publicKey, held);
  assert.equal(followed?.directory.version, 3);
  assert.equal(hex(/** @type {Uint8Array} */ (followed?.pinnedPk)), hex(next.publicKey));
  assert.throws(() => follow({ signed: b64e(v3), links: [] }, schoolId, old.publicKey, held),
    (e) => e instanceof DirectoryRefused && e.code === 'bad_signature');
});

test('a keyholder refuses to sign a device its user did not certify, or a swapped key', () => {
  const { schoolId, server } = school();
  const forged = structuredClone(server.current);
  forged.devices[1].public_key = b64e(signingKeyPair(rnd(32)).publicKey);
  assert.throws(() => checkBeforeSigning(schoolId, forged, null), (e) => e instanceof DirectoryRefused && e.code === 'bad_certificate');
  const key = signingKeyPair(rnd(32));
  const held = readDirectory(signDirectory(key, {
    schoolId, version: 1, prevHash: new Uint8Array(32), createdMs: 1, nextSigningPk: key.publicKey, content: contentFromListing(server.current),
  }));
  const swapped = structuredClone(server.current);
  swapped.reader_keys[0].public_key = b64e(rnd(32));
  assert.throws(() => checkBeforeSigning(schoolId, swapped, held), (e) => e instanceof DirectoryRefused && e.code === 'swapped_key');
  assert.equal(checkBeforeSigning(schoolId, server.current, held).devices.length, 2);
});
