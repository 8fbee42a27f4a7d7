// The signed directory in the browser's client code (sync/directory.js and Device in sync/device.js, the
// twins of sync/directory.py and sync/device.py), against a stand-in server: a keyholder device signs the
// first version and pins its key, a reader pins at first sign-in; a widening waits until the keyholder's
// person approves it, and only `approve` signs it; and a hostile server holding the real school signing key
// is refused when it serves a widening without approval, a swapped X25519 key, a second group key id or a
// skipped version: the device keeps what it held and never encrypts to what it was sent.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import sodium from '../js/crypto/sodium.js';
import {
  SIGNING_PURPOSE, checkTransition, directorySigningKey, encodeContent, fingerprint, itemHex, makeDeviceCert,
  readDirectory, readGrant, signDirectory, signIdentityBinding, signingKeyPair, verifyApproval,
} from '../js/crypto/index.js';
import { Device } from '../js/sync/device.js';
import { DirectoryRefused, contentFromListing, follow, makeApproval, prepare, signNext } from '../js/sync/directory.js';
import { b64d, b64e, hex } from '../js/sync/protocol.js';

const rnd = (/** @type {number} */ n) => sodium.randombytes_buf(n);

/** @param {string} login @param {Uint8Array} schoolId */
function person(login, schoolId) {
  const seed = rnd(32);
  const box = sodium.crypto_box_keypair();
  const identity = signingKeyPair(seed);
  const id = rnd(16);
  const deviceId = rnd(16);
  const deviceSeed = rnd(32);
  const devicePk = signingKeyPair(deviceSeed).publicKey;
  return {
    login, id, seed, identity, box, deviceId, deviceSeed, devicePk,
    binding: signIdentityBinding(identity.secretKey, schoolId, id, box.publicKey),
    cert: makeDeviceCert({ identitySecretKey: identity.secretKey, schoolId, userId: id, deviceId, devicePk, createdMs: 1 }),
  };
}

/**
 * A school's rows and a stand-in for its routes: GET and POST /api/v1/directory (with `links`, `more`,
 * `changed` and `current` as the real server serves them), grants, and key rotation.
 */
function school() {
  const schoolId = rnd(16);
  const people = [person('dsl', schoolId), person('teacher', schoolId)];
  const signingReader = { id: rnd(16), pair: sodium.crypto_box_keypair() };
  const safeguarding = { id: rnd(16), pair: sodium.crypto_box_keypair() };
  const key = (/** @type {{id: Uint8Array, pair: {publicKey: Uint8Array}}} */ k, /** @type {string} */ purpose, version = 1) => ({
    id: b64e(k.id), version, purpose, public_key: b64e(k.pair.publicKey), current: true,
  });
  /** @param {ReturnType<typeof person>} p @param {string[]} roles */
  const account = (p, roles) => ({
    id: b64e(p.id), login: p.login, display_name: `Fictional ${p.login}`, roles,
    identity_x25519_pk: b64e(p.box.publicKey), identity_ed25519_pk: b64e(p.identity.publicKey), binding: b64e(p.binding),
    left: false,
  });
  /** @param {ReturnType<typeof person>} p */
  const device = (p) => ({ id: b64e(p.deviceId), user_id: b64e(p.id), public_key: b64e(p.devicePk), cert: b64e(p.cert), revoked: false });
  const current = {
    accounts: [account(people[0], ['safeguarding']), account(people[1], ['teacher'])],
    devices: people.map(device),
    reader_keys: [key(safeguarding, 'group:safeguarding'), key(signingReader, SIGNING_PURPOSE)],
    /** @type {{id: string, reader_key_id: string}[]} */
    pupils: [],
    /** @type {{id: string, label: string, pupils: string[], teachers: string[]}[]} */
    classes: [],
  };
  /** @type {Uint8Array[]} */
  const versions = [];
  /** @type {string[]} */
  const grants = [];
  const server = {
    current,
    versions,
    grants,
    pageSize: 64,
    /** @type {(served: any) => any} */
    rewrite: (served) => served,
    /** @param {string} method @param {string} path @param {string | null} token the caller's login @param {any} body */
    async call(method, path, token, body) {
      if (path === '/api/v1/grants') {
        if (method === 'POST') grants.push(...body.grants);
        const me = hex(/** @type {Uint8Array} */ (people.find((p) => p.login === token)?.id));
        return { grants: grants.filter((g) => hex(readGrant(b64d(g, 'grant')).memberId) === me) };
      }
      if (path === '/api/v1/keys/rotate') {
        for (const k of current.reader_keys) if (k.id === body.reader_key_id) k.current = false;
        const purpose = current.reader_keys.find((k) => k.id === body.reader_key_id)?.purpose ?? '';
        current.reader_keys.push({ id: body.reader_key_id, version: body.version, purpose, public_key: body.public_key, current: true });
        grants.push(...body.grants);
        return { version: body.version, stored: body.grants.length };
      }
      if (method === 'POST') {
        const d = readDirectory(b64d(body.signed, 'signed'));
        assert.equal(d.version, versions.length + 1);
        if (versions.length) checkTransition(readDirectory(/** @type {Uint8Array} */ (versions.at(-1))), d); // the server's wall
        versions.push(d.raw);
        return { version: d.version };
      }
      const since = Number(new URL(path, 'http://x').searchParams.get('since') ?? 0);
      let newest = versions.at(-1);
      let more = false;
      /** @type {Uint8Array[]} */
      let links = [];
      if (newest && since >= 1 && since < versions.length) {
        const after = versions.slice(since, since + server.pageSize + 1);
        more = after.length === server.pageSize + 1 && since + after.length < versions.length;
        newest = /** @type {Uint8Array} */ (after.at(-1));
        links = after.slice(0, -1);
      }
      const changed = !versions.length
        || hex(encodeContent(contentFromListing(current))) !== hex(readDirectory(/** @type {Uint8Array} */ (versions.at(-1))).contentBytes);
      return server.rewrite({
        version: versions.length, signed: newest ? b64e(newest) : null, links: links.map(b64e), more, changed,
        ...(changed ? { current: structuredClone(current) } : {}),
      });
    },
  };
  const deviceOf = (/** @type {number} */ n) => new Device({
    api: /** @type {any} */ (server), schoolId, userId: people[n].id, login: people[n].login, deviceId: people[n].deviceId,
    deviceSeed: people[n].deviceSeed, identity: { x25519Sk: people[n].box.privateKey, ed25519Seed: people[n].seed },
    roles: n === 0 ? ['safeguarding'] : ['teacher'], token: people[n].login,
  });
  const signing = directorySigningKey(signingReader.pair.privateKey);
  return { schoolId, people, signingReader, safeguarding, server, device: deviceOf, signing };
}

/** A school whose DSL device signed version 1, and a teacher's device that pinned it. */
async function founded(s = school()) {
  const dsl = s.device(0);
  dsl.readerKeys.set(`${hex(s.signingReader.id)}:1`, s.signingReader.pair.privateKey);
  dsl.readerKeys.set(`${hex(s.safeguarding.id)}:1`, s.safeguarding.pair.privateKey);
  await dsl.refresh();
  const teacher = s.device(1);
  await teacher.refresh();
  return { ...s, dsl, teacher };
}

/**
 * What a hostile server with the real school signing key serves: the next version after the newest, with
 * `change` applied to the newest content, signed, and no approval.
 * @param {Awaited<ReturnType<typeof founded>>} s
 * @param {(content: import('../js/crypto/directory.js').DirectoryContent) => import('../js/crypto/directory.js').DirectoryContent} change
 * @param {{skip?: number}} [options]
 */
function hostile(s, change, { skip = 0 } = {}) {
  const newest = readDirectory(/** @type {Uint8Array} */ (s.server.versions.at(-1)));
  const raw = signDirectory(s.signing, {
    schoolId: s.schoolId, version: newest.version + 1 + skip, prevHash: newest.hash, createdMs: newest.createdMs + 1,
    nextSigningPk: s.signing.publicKey, content: change(structuredClone(newest.content)),
  });
  s.server.rewrite = (served) => ({ ...served, signed: b64e(raw), links: [], more: false });
}

/**
 * The teacher's device refuses what the server serves with `code`, keeps the version it held, and seals a
 * new concern only to the keys that version lists.
 * @param {Awaited<ReturnType<typeof founded>>} s
 * @param {string} code
 */
async function refused(s, code) {
  const held = s.teacher.signedDirectory;
  await assert.rejects(s.teacher.refresh(), (e) => e instanceof DirectoryRefused && e.code === code);
  assert.equal(s.teacher.signedDirectory, held);
  const recipients = s.teacher.recipientsFor([]);
  assert.deepEqual(recipients.map((r) => [hex(r.id), r.version, hex(r.pk)]), [[hex(s.safeguarding.id), 1, hex(s.safeguarding.pair.publicKey)]]);
}

test('the keyholder signs version 1 and pins its key; a reader pins the same key at first sign-in', async () => {
  const { schoolId, server, dsl, teacher, signing } = await founded();
  assert.equal(server.versions.length, 1);
  assert.equal(hex(/** @type {Uint8Array} */ (dsl.pinnedSigningPk)), hex(signing.publicKey));
  assert.equal(dsl.fingerprint, fingerprint(schoolId, signing.publicKey));
  assert.equal(teacher.fingerprint, dsl.fingerprint);
  assert.equal(server.versions.length, 1); // a reader never signs
  assert.equal(teacher.directory?.devices.length, 2);
  assert.deepEqual(teacher.directory?.approvals, []);
});

test('a widening waits for the keyholder: refresh signs only what narrows; approve signs what its person chose', async () => {
  const s = await founded();
  const teacherId = b64e(s.people[1].id);
  s.server.current.accounts[1].roles = ['teacher', 'sen']; // an admin asks for a role
  s.server.current.accounts[0].display_name = 'Fictional DSL, renamed'; // and a rename reads nothing
  await s.dsl.refresh();
  assert.equal(s.server.versions.length, 2, 'the rename is signed unattended');
  assert.deepEqual(s.dsl.directory?.accounts.find((a) => a.id === teacherId)?.roles, ['teacher'], 'the role is not');
  assert.deepEqual(readDirectory(/** @type {Uint8Array} */ (s.server.versions[1])).approvals, []);
  const pending = await s.dsl.pending();
  assert.deepEqual(pending.map((i) => i.kind === 'role' && [hex(i.userId), i.role]), [[hex(s.people[1].id), 'sen']]);
  const added = await s.dsl.approve(pending);
  assert.deepEqual(added.map(itemHex), pending.map(itemHex));
  assert.equal(s.server.versions.length, 3);
  const v3 = readDirectory(/** @type {Uint8Array} */ (s.server.versions[2]));
  assert.equal(v3.approvals.length, 1);
  assert.equal(v3.approvals[0].baseVersion, 2);
  verifyApproval(v3.approvals[0].raw, s.schoolId, s.people[0].devicePk);
  await s.teacher.refresh(); // follows versions 2 and 3, each approved against the one before
  assert.equal(s.teacher.signedDirectory?.version, 3);
  assert.deepEqual(s.teacher.directory?.accounts.find((a) => a.id === teacherId)?.roles, ['teacher', 'sen']);
  assert.deepEqual(s.teacher.directory?.approvals?.[0].items, [{ kind: 'role', user_id: teacherId, role: 'sen' }]);
  assert.deepEqual(await s.dsl.pending(), []);
});

test('a device follows every version, page by page while the server says more', async () => {
  const s = await founded();
  for (let n = 0; n < 5; n++) {
    s.server.current.accounts[1].display_name = `Fictional teacher ${n}`;
    await s.dsl.refresh();
  }
  assert.equal(s.server.versions.length, 6);
  s.server.pageSize = 2;
  await s.teacher.refresh();
  assert.equal(s.teacher.signedDirectory?.version, 6);
  assert.equal(s.teacher.directory?.accounts.find((a) => a.login === 'teacher')?.display_name, 'Fictional teacher 4');
});

test('a hostile server with the school key cannot add a safeguarding role without an approval', async () => {
  const s = await founded();
  hostile(s, (c) => ({ ...c, accounts: c.accounts.map((a) => (a.login === 'teacher' ? { ...a, roles: ['teacher', 'safeguarding'] } : a)) }));
  await refused(s, 'unapproved');
});

test('a hostile server with the school key cannot add a group key version without an approval', async () => {
  const s = await founded();
  const invented = sodium.crypto_box_keypair();
  hostile(s, (c) => ({
    ...c,
    readerKeys: [...c.readerKeys.map((k) => (hex(k.id) === hex(s.safeguarding.id) ? { ...k, current: false } : k)), {
      id: s.safeguarding.id, version: 2, purpose: 'group:safeguarding', publicKey: invented.publicKey, current: true,
    }],
  }));
  await refused(s, 'unapproved');
});

test('a hostile server with the school key cannot swap an account\'s X25519 key', async () => {
  const s = await founded();
  const invented = sodium.crypto_box_keypair();
  hostile(s, (c) => ({ ...c, accounts: c.accounts.map((a) => (a.login === 'dsl' ? { ...a, identityX25519Pk: invented.publicKey } : a)) }));
  await refused(s, 'bad_signature');
});

test('a hostile server with the school key cannot list a second key id for a group', async () => {
  const s = await founded();
  const invented = sodium.crypto_box_keypair();
  hostile(s, (c) => ({
    ...c, readerKeys: [...c.readerKeys, { id: rnd(16), version: 1, purpose: 'group:safeguarding', publicKey: invented.publicKey, current: true }],
  }));
  await refused(s, 'parse_failure');
});

test('a hostile server cannot make a device skip a version, fork it, or take it back', async () => {
  const s = await founded();
  hostile(s, (c) => c, { skip: 1 });
  await refused(s, 'rollback');
  s.server.rewrite = (served) => served;
  s.server.current.accounts[1].display_name = 'Fictional teacher, renamed';
  await s.dsl.refresh(); // version 2
  await s.teacher.refresh();
  const first = s.server.versions[0];
  s.server.rewrite = (served) => ({ ...served, signed: b64e(first), links: [] });
  await assert.rejects(s.teacher.refresh(), (e) => e instanceof DirectoryRefused && e.code === 'rollback');
  assert.equal(s.teacher.signedDirectory?.version, 2);
});

test('a hostile server cannot slip in a version signed with its own key', async () => {
  const s = await founded();
  const own = signingKeyPair(rnd(32));
  const d = readDirectory(/** @type {Uint8Array} */ (s.server.versions[0]));
  const raw = signDirectory(own, { schoolId: s.schoolId, version: 2, prevHash: d.hash, createdMs: d.createdMs, nextSigningPk: own.publicKey, content: d.content });
  s.server.rewrite = (served) => ({ ...served, signed: b64e(raw) });
  await refused(s, 'bad_signature');
});

test('a keyholder never signs a widening unattended, even one the server slips into current', async () => {
  const s = await founded();
  const invented = sodium.crypto_box_keypair();
  s.server.current.reader_keys[0].current = false;
  s.server.current.reader_keys.push({ id: b64e(s.safeguarding.id), version: 2, purpose: 'group:safeguarding', public_key: b64e(invented.publicKey), current: true });
  await s.dsl.refresh();
  assert.equal(s.server.versions.length, 1, 'nothing else changed, so nothing was signed');
  const pending = await s.dsl.pending();
  assert.deepEqual(pending.map((i) => i.kind), ['key']);
});

test('a rotation this device made is listed unattended, with its own approval', async () => {
  const s = await founded();
  const made = sodium.crypto_box_keypair();
  const pair = { publicKey: made.publicKey, secretKey: made.privateKey };
  await s.dsl.rotateKey(s.safeguarding.id, 2, pair, [s.people[0].id]);
  assert.equal(s.server.versions.length, 2);
  const v2 = readDirectory(/** @type {Uint8Array} */ (s.server.versions[1]));
  assert.deepEqual(v2.approvals.flatMap((a) => a.items).map((i) => i.kind), ['key']);
  await s.teacher.refresh();
  const recipients = s.teacher.recipientsFor([]);
  assert.deepEqual(recipients.map((r) => [r.version, hex(r.pk)]), [[2, hex(made.publicKey)]]);
});

test('a rotation of the signing key is followed through the version signed by the old key, and only so', () => {
  const s = school();
  const old = signingKeyPair(rnd(32));
  const next = signingKeyPair(rnd(32));
  const content = contentFromListing(s.server.current);
  const v1 = signDirectory(old, { schoolId: s.schoolId, version: 1, prevHash: new Uint8Array(32), createdMs: 1, nextSigningPk: old.publicKey, content });
  const held = readDirectory(v1);
  const dsl = s.people[0];
  const approval = makeApproval(signingKeyPair(dsl.deviceSeed).secretKey, dsl.deviceId, dsl.id, held, [{ kind: 'signing', nextSigningPk: next.publicKey }]);
  const v2 = signNext(old, s.schoolId, content, held, 2, { nextSigningPk: next.publicKey, approvals: [approval] });
  const v3 = signNext(next, s.schoolId, content, readDirectory(v2), 3);
  const followed = follow({ signed: b64e(v3), links: [b64e(v2)] }, s.schoolId, old.publicKey, held);
  assert.equal(followed?.directory.version, 3);
  assert.equal(hex(/** @type {Uint8Array} */ (followed?.pinnedPk)), hex(next.publicKey));
  assert.throws(() => follow({ signed: b64e(v3), links: [] }, s.schoolId, old.publicKey, held),
    (e) => e instanceof DirectoryRefused && e.code === 'bad_signature');
  const unapproved = signNext(old, s.schoolId, content, held, 2, { nextSigningPk: next.publicKey });
  assert.throws(() => follow({ signed: b64e(unapproved), links: [] }, s.schoolId, old.publicKey, held),
    (e) => e instanceof DirectoryRefused && e.code === 'unapproved');
});

test('a keyholder refuses to sign a device its user did not certify, an unbound key or a swapped one', async () => {
  const s = await founded();
  const held = /** @type {import('../js/crypto/directory.js').SignedDirectory} */ (s.dsl.signedDirectory);
  const forged = structuredClone(s.server.current);
  forged.devices[1].public_key = b64e(signingKeyPair(rnd(32)).publicKey);
  assert.throws(() => prepare(s.schoolId, forged, null), (e) => e instanceof DirectoryRefused && e.code === 'bad_certificate');
  const unbound = structuredClone(s.server.current);
  unbound.accounts[1].identity_x25519_pk = b64e(rnd(32));
  assert.throws(() => prepare(s.schoolId, unbound, held), (e) => e instanceof DirectoryRefused && e.code === 'bad_certificate');
  const swapped = structuredClone(s.server.current);
  swapped.reader_keys[0].public_key = b64e(rnd(32));
  assert.throws(() => prepare(s.schoolId, swapped, held), (e) => e instanceof DirectoryRefused && e.code === 'swapped_key');
  assert.equal(prepare(s.schoolId, s.server.current, held).content.devices.length, 2);
  const second = structuredClone(s.server.current);  // an operator's row: a second key id for a group
  const group = /** @type {typeof second.reader_keys[0]} */ (second.reader_keys.find((k) => k.purpose === 'group:safeguarding'));
  second.reader_keys.push({ ...group, id: b64e(rnd(16)), public_key: b64e(rnd(32)) });
  assert.throws(() => prepare(s.schoolId, second, held), (e) => e instanceof DirectoryRefused && e.code === 'malformed');
});

test('prepare leaves out a new account with what depends on it, and refuses new identity keys for one listed', async () => {
  const s = await founded();
  const held = /** @type {import('../js/crypto/directory.js').SignedDirectory} */ (s.dsl.signedDirectory);
  const joiner = person('joiner', s.schoolId);
  const current = structuredClone(s.server.current);
  current.accounts.push({
    id: b64e(joiner.id), login: 'joiner', display_name: 'Fictional joiner', roles: ['teacher'],
    identity_x25519_pk: b64e(joiner.box.publicKey), identity_ed25519_pk: b64e(joiner.identity.publicKey),
    binding: b64e(joiner.binding), left: false,
  });
  current.devices.push({ id: b64e(joiner.deviceId), user_id: b64e(joiner.id), public_key: b64e(joiner.devicePk), cert: b64e(joiner.cert), revoked: false });
  current.classes.push({ id: b64e(rnd(16)), label: 'Year 3 Oak', pupils: [], teachers: [b64e(joiner.id)] });
  const prepared = prepare(s.schoolId, current, held);
  assert.deepEqual(prepared.pending.map((i) => i.kind).sort(), ['account', 'role', 'teaches']);
  assert.equal(prepared.content.accounts.length, 2);
  assert.equal(prepared.content.devices.length, 2);
  assert.deepEqual(prepared.content.classes.map((c) => c.teachers.length), [0], 'the new class is listed, empty');
});

test('a keyholder refuses to sign new identity keys for a listed account until someone decides', async () => {
  const s = school();
  const office = person('office', s.schoolId); // an account with no device yet
  s.server.current.accounts.push({
    id: b64e(office.id), login: 'office', display_name: 'Fictional office', roles: ['admin'],
    identity_x25519_pk: b64e(office.box.publicKey), identity_ed25519_pk: b64e(office.identity.publicKey),
    binding: b64e(office.binding), left: false,
  });
  const f = await founded(s);
  const held = /** @type {import('../js/crypto/directory.js').SignedDirectory} */ (f.dsl.signedDirectory);
  const renewed = person('office', s.schoolId);
  const changed = structuredClone(s.server.current);
  changed.accounts[2] = { ...changed.accounts[2], identity_x25519_pk: b64e(renewed.box.publicKey),
    identity_ed25519_pk: b64e(renewed.identity.publicKey),
    binding: b64e(signIdentityBinding(renewed.identity.secretKey, s.schoolId, office.id, renewed.box.publicKey)) };
  assert.throws(() => prepare(s.schoolId, changed, held), (e) => e instanceof DirectoryRefused && e.code === 'identity_changed');
  const items = prepare(s.schoolId, changed, held, [{ kind: 'account', userId: office.id,
    identityX25519Pk: renewed.box.publicKey, identityEd25519Pk: renewed.identity.publicKey }]).included;
  assert.deepEqual(items.map((i) => i.kind), ['account'], 'approved, it is signed');
  s.server.current.accounts[2] = changed.accounts[2];
  const before = s.server.versions.length;
  await f.dsl.refresh(); // an unattended round signs nothing, and does not fail
  assert.equal(s.server.versions.length, before);
  const pending = await f.dsl.pending(); // the Approvals page can show it
  assert.deepEqual(pending.map((i) => i.kind), ['account']);
  await f.dsl.approve(pending);
  assert.equal(s.server.versions.length, before + 1);
  await f.teacher.refresh();
  assert.equal(f.teacher.directory?.accounts.find((a) => a.login === 'office')?.identity_x25519_pk, b64e(renewed.box.publicKey));
});
