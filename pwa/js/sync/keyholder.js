// Keyholder duties in the browser, the twin of sync/keyholder.py (docs/PROTOCOL.md, "Keyholder duties and
// leaving"). The PWA runs them for a signed-in keyholder while it is online: the server says what is owed,
// and this device checks each item against the signed directory (roles and classes, `mayHold`, the twin
// of sync/entitlement.py `may_hold`) before it seals anything.
//
// - rotations: a key someone left gets a new version, sealed to every member entitled to it;
// - grants: every version this device holds of a key, to members entitled without approval who lack it.
// Group keys that need approval are sealed only by `approve`, an explicit act of a safeguarding keyholder.

import { generateReaderKey, makeGrant } from '../crypto/index.js';
import { ApiFailure } from './device.js';
import { b64d, b64e, hex } from './protocol.js';

/** @typedef {import('./device.js').Device} Device */
/** @typedef {import('./device.js').Directory} Directory */
/**
 * @typedef {object} DutyReport
 * @property {number} granted
 * @property {[string, number][]} rotated key id (base64url) and its new version
 * @property {string[]} refused what this device would not seal, and why
 */

/**
 * What the directory says of the school: roles of members who have not left, the pupils each teaches, and
 * each key's purpose (Python: `directory_view`).
 * @param {Directory} directory
 */
export function directoryView(directory) {
  /** @type {Map<string, Set<string>>} */
  const roles = new Map(directory.accounts.filter((a) => !a.left).map((a) => [a.id, new Set(a.roles)]));
  /** @type {Map<string, Set<string>>} */
  const teaches = new Map();
  for (const c of directory.classes) {
    for (const t of c.teachers) {
      const set = teaches.get(t) ?? new Set();
      for (const p of c.pupils) set.add(p);
      teaches.set(t, set);
    }
  }
  const purposes = new Map(directory.reader_keys.map((k) => [k.id, k.purpose]));
  const pupilOf = new Map(directory.pupils.map((p) => [p.reader_key_id, p.id]));
  return { roles, teaches, purposes, pupilOf };
}

/**
 * Whether roles and classes alone allow `member` to hold `keyId`, approval aside (sync/entitlement.py
 * `may_hold`). Ids are base64url, as the directory lists them.
 * @param {ReturnType<typeof directoryView>} view
 * @param {string} member
 * @param {string} keyId
 */
export function mayHold(view, member, keyId) {
  const roles = view.roles.get(member);
  const purpose = view.purposes.get(keyId);
  if (!roles || !purpose) return false;
  if (purpose === 'roster:staff') return true;
  if (purpose === 'roster:sensitive') return [...roles].some((r) => r !== 'contributor');
  if (roles.has('safeguarding')) return true;
  if (purpose === 'pupil') {
    const pupil = view.pupilOf.get(keyId);
    return roles.has('teacher') && pupil !== undefined && (view.teaches.get(member)?.has(pupil) ?? false);
  }
  return purpose.startsWith('group:') && roles.has(purpose.slice('group:'.length));
}

/**
 * @param {Device} device
 * @param {string} member base64url
 */
function identityPk(device, member) {
  const account = device.dir().accounts.find((a) => a.id === member);
  if (!account) throw new Error('The directory does not list this member.');
  return b64d(account.identity_x25519_pk, 'pk');
}

/**
 * Seal one reader key version this device holds (or has just made) to a member.
 * @param {Device} device
 * @param {Uint8Array} keyId
 * @param {number} version
 * @param {Uint8Array} readerSk
 * @param {string} member base64url
 */
function grantOf(device, keyId, version, readerSk, member) {
  return b64e(makeGrant({
    granterDeviceSecretKey: device.deviceKey.secretKey, schoolId: device.schoolId, readerKeyId: keyId,
    readerVersion: version, memberId: b64d(member, 'member'), granterDevice: device.deviceId,
    createdMs: Date.now(), readerSk, memberX25519Pk: identityPk(device, member),
  }));
}

/**
 * One round: rotations first (their grants make old versions owed), then the grants owed.
 * @param {Device} device
 * @returns {Promise<DutyReport>}
 */
export async function runDuties(device) {
  /** @type {DutyReport} */
  const report = { granted: 0, rotated: [], refused: [] };
  await device.refresh();
  let duties = await device.call('GET', '/api/v1/keyholder/duties');
  const view = directoryView(device.dir());
  for (const item of duties.rotations) {
    const keyId = b64d(item.reader_key_id, 'reader_key_id');
    /** @type {string[]} */
    const members = item.members;
    if (members.some((m) => !mayHold(view, m, item.reader_key_id)) || !device.readerKeys.has(`${hex(keyId)}:${item.version}`)) {
      report.refused.push(`rotation of ${item.reader_key_id}: the directory does not allow it`);
      continue;
    }
    try {
      await rotate(device, keyId, item.version + 1, members);
    } catch (error) {
      if (!(error instanceof ApiFailure) || error.code !== 'stale_duty') throw error;
      report.refused.push(`rotation of ${item.reader_key_id}: ${error.detail}`); // another device did it first
      continue;
    }
    report.rotated.push([item.reader_key_id, item.version + 1]);
  }
  if (report.rotated.length) duties = await device.call('GET', '/api/v1/keyholder/duties');
  const grants = [];
  for (const item of duties.grants) {
    const secret = device.readerKeys.get(`${hex(b64d(item.reader_key_id, 'id'))}:${item.version}`);
    if (!secret || !mayHold(view, item.member_id, item.reader_key_id)) {
      report.refused.push(`grant of ${item.reader_key_id} to ${item.member_id}: not allowed here`);
      continue;
    }
    grants.push(grantOf(device, b64d(item.reader_key_id, 'id'), item.version, secret, item.member_id));
  }
  for (let start = 0; start < grants.length; start += 1000) {
    await device.call('POST', '/api/v1/grants', { grants: grants.slice(start, start + 1000) });
  }
  report.granted = grants.length;
  return report;
}

/**
 * Make `version` of a reader key on this device and seal it to `members` in one request.
 * @param {Device} device
 * @param {Uint8Array} keyId
 * @param {number} version
 * @param {string[]} members base64url
 */
export async function rotate(device, keyId, version, members) {
  const pair = generateReaderKey();
  await device.call('POST', '/api/v1/keys/rotate', {
    reader_key_id: b64e(keyId), version, public_key: b64e(pair.publicKey),
    grants: members.map((m) => grantOf(device, keyId, version, pair.secretKey, m)),
  });
  device.readerKeys.set(`${hex(keyId)}:${version}`, pair.secretKey);
  await device.refresh();
}

/**
 * A safeguarding keyholder approves a member joining a group: this device seals every version of the
 * group's key it holds to the member, then records the approval (which checks the grant is there).
 * @param {Device} device
 * @param {string} member base64url
 * @param {string} purpose `group:...`
 */
export async function approve(device, member, purpose) {
  await device.refresh(); // the newest directory: it must list the member and the role
  const view = directoryView(device.dir());
  const versions = device.dir().reader_keys.filter((k) => k.purpose === purpose);
  if (!versions.length || !mayHold(view, member, versions[0].id)) {
    throw new Error(`The directory does not give this member the role for ${purpose}.`);
  }
  const grants = [];
  for (const k of versions) {
    const secret = device.readerKeys.get(`${hex(b64d(k.id, 'id'))}:${k.version}`);
    if (secret) grants.push(grantOf(device, b64d(k.id, 'id'), k.version, secret, member));
  }
  if (grants.length) await device.call('POST', '/api/v1/grants', { grants });
  await device.call('POST', '/api/v1/approvals', { member_id: member, purpose, decision: 'approve' });
}

/**
 * @param {Device} device
 * @param {string} member base64url
 * @param {string} purpose
 */
export async function decline(device, member, purpose) {
  await device.call('POST', '/api/v1/approvals', { member_id: member, purpose, decision: 'decline' });
}
