// Keyholder duties in the browser, the twin of sync/keyholder.py and of the rules of sync/entitlement.py
// (docs/PROTOCOL.md 14). The PWA runs them for a signed-in approved keyholder while it is online: the server
// says what is owed (GET /api/v1/keyholder/duties; empty for anyone else), and this device checks each item
// against the school's signed directory (roles and classes, `mayHold`) before it seals anything, so neither
// a server nor an admin can steer a key to someone no keyholder approved:
//
// - rotations (safeguarding keyholders): a key someone left gets a new version, made on this device and
//   sealed to every member entitled to it; the device lists it in the next directory version unattended,
//   with its own approval (a new version of a key it made itself: PROTOCOL 13.4);
// - grants: every version this device holds of a key, to members entitled to it who lack that version: a
//   teacher the directory now lists for a class, a current holder missing an old or a new version;
// - entry key grants made again (with the device's Casebook): a person named on a concern whose entry key
//   grant was made by a device now revoked, or by someone who left the safeguarding team, would lose the
//   concern's earlier events (their device refuses such a grant, PROTOCOL 5.1). This device seals the entry
//   key version again, but only if it holds it, the concern's own fold names the person in `need_to_know`
//   and the signed directory lists them as a current member: the server's list alone steers nothing.
//
// Widening who may read at all (a role, a class, a new account) is never a duty: it is an approval, an
// explicit act of a safeguarding keyholder on their own device (`Device.approve`, the Approvals page).

import { generateReaderKey, makeEntryGrant, makeGrant } from '../crypto/index.js';
import { ApiFailure } from './device.js';
import { b64d, b64e, hex } from './protocol.js';

/** @typedef {import('./device.js').Device} Device */
/** @typedef {import('./device.js').Directory} Directory */
/**
 * @typedef {object} DutyReport
 * @property {number} granted
 * @property {number} regranted entry key grants made again (their granter is no longer a keyholder's device)
 * @property {[string, number][]} rotated key id (base64url) and its new version
 * @property {string[]} refused what this device would not seal, and why
 */
/**
 * What a keyholder device reads of its concerns, for the entry key grants it makes again: the PWA's Casebook
 * (pwa/js/review/casebook.js). Python: the device's `Reader`.
 * @typedef {object} Concerns
 * @property {(id: string) => Promise<{keys: Record<string, string>} | null>} blob a concern (id in hex) as held:
 *   `keys` maps each entry key version it holds to the key (base64url)
 * @property {(blob: any) => Record<string, any>} fold the concern's folded state (docs/PROTOCOL.md 8.5)
 */
/**
 * What the rules need to know of a school, as plain data; ids are base64url, as the directory lists them.
 * Members who left are not in `roles`. Python: `sync.entitlement.View`.
 * @typedef {object} View
 * @property {Map<string, Set<string>>} roles member to roles
 * @property {Map<string, Set<string>>} teaches member to the ids of the pupils in the classes it teaches
 * @property {Map<string, string>} purposes reader key id to its purpose
 * @property {Map<string, string>} pupilOf a pupil reader key id to the pupil's id
 * @property {Map<string, number[]>} versions reader key id to its versions, ascending
 * @property {Map<string, Set<number>>} held `${key id}|${member}` to the versions that member holds
 */

export const SAFEGUARDING = 'group:safeguarding';

/**
 * The rules' view of the school as the signed directory lists it, with the grants the caller knows of
 * (`holdings`: reader key id, version, member). Python: `view_of_directory` (and `directory_view`).
 * @param {{accounts: {id: string, roles: string[], left?: boolean}[], classes: {pupils: string[], teachers: string[]}[],
 *   reader_keys: {id: string, version: number, purpose: string}[], pupils: {id: string, reader_key_id: string}[]}} directory
 * @param {Iterable<[string, number, string]>} [holdings]
 * @returns {View}
 */
export function directoryView(directory, holdings = []) {
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
  /** @type {Map<string, string>} */
  const purposes = new Map();
  /** @type {Map<string, number[]>} */
  const versions = new Map();
  for (const k of directory.reader_keys) {
    purposes.set(k.id, k.purpose);
    versions.set(k.id, [...(versions.get(k.id) ?? []), k.version].sort((a, b) => a - b));
  }
  const pupilOf = new Map(directory.pupils.map((p) => [p.reader_key_id, p.id]));
  /** @type {Map<string, Set<number>>} */
  const held = new Map();
  for (const [keyId, version, member] of holdings) {
    if (!roles.has(member)) continue;
    const name = `${keyId}|${member}`;
    held.set(name, (held.get(name) ?? new Set()).add(version));
  }
  return { roles, teaches, purposes, pupilOf, versions, held };
}

/**
 * Whether the signed roles and classes allow `member` to hold `keyId`: what a keyholder device checks
 * against the directory before it seals a key, and what the server's wall checks of every grant.
 * Python: `sync.entitlement.may_hold`.
 * @param {View} view
 * @param {string} member
 * @param {string} keyId
 */
export function mayHold(view, member, keyId) {
  const roles = view.roles.get(member);
  const purpose = view.purposes.get(keyId);
  if (!roles || purpose === undefined) return false;
  if (purpose === 'roster:staff') return true;
  if (purpose === 'roster:sensitive') return [...roles].some((r) => r !== 'contributor');
  if (roles.has('safeguarding')) return purpose === 'pupil' || purpose.startsWith('group:') || purpose.startsWith('signing:');
  if (purpose === 'pupil') {
    const pupil = view.pupilOf.get(keyId);
    return roles.has('teacher') && pupil !== undefined && (view.teaches.get(member)?.has(pupil) ?? false);
  }
  return purpose.startsWith('group:') && roles.has(purpose.slice('group:'.length));
}

/**
 * A safeguarding member (by the signed directory) who holds the safeguarding group's key: the only person
 * whose device may publish keys, approve widenings or decide held envelopes. Python: `is_keyholder`.
 * @param {View} view
 * @param {string} member
 */
export function isKeyholder(view, member) {
  if (!view.roles.get(member)?.has('safeguarding')) return false;
  for (const [keyId, purpose] of view.purposes) {
    if (purpose === SAFEGUARDING && (view.held.get(`${keyId}|${member}`)?.size ?? 0) > 0) return true;
  }
  return false;
}

/**
 * Whether this device's person is an approved keyholder by the directory it holds and the keys it opened.
 * @param {Device} device
 */
export function deviceIsKeyholder(device) {
  return Boolean(device.directory) && isKeyholder(directoryView(device.dir(), device.holdings()), b64e(device.userId));
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
 * One round: rotations first (their grants make old versions owed), then the grants owed, then, with the
 * device's `concerns` (its Casebook), the entry key grants to make again; without it those are left for a
 * round that has one, and said so in `refused`. A device whose person is not an approved keyholder owes
 * nothing and asks nothing. Python: `run_duties`.
 * @param {Device} device
 * @param {Concerns | null} [concerns]
 * @returns {Promise<DutyReport>}
 */
export async function runDuties(device, concerns = null) {
  /** @type {DutyReport} */
  const report = { granted: 0, regranted: 0, rotated: [], refused: [] };
  await device.refresh();
  if (!deviceIsKeyholder(device)) return report;
  let duties = await device.call('GET', '/api/v1/keyholder/duties');
  let view = directoryView(device.dir());
  for (const item of duties.rotations) {
    const keyId = b64d(item.reader_key_id, 'reader_key_id');
    /** @type {string[]} */
    const members = item.members;
    if (members.some((m) => !mayHold(view, m, item.reader_key_id)) || !device.readerKeys.has(`${hex(keyId)}:${item.version}`)) {
      report.refused.push(`rotation of ${item.reader_key_id}: the directory does not allow it`);
      continue;
    }
    try {
      await rotate(device, keyId, item.version + 1, members.map((m) => b64d(m, 'member')));
    } catch (error) {
      if (!(error instanceof ApiFailure) || error.code !== 'stale_duty') throw error;
      report.refused.push(`rotation of ${item.reader_key_id}: ${error.detail}`); // another device did it first
      continue;
    }
    report.rotated.push([item.reader_key_id, item.version + 1]);
  }
  if (report.rotated.length) {
    duties = await device.call('GET', '/api/v1/keyholder/duties');
    view = directoryView(device.dir());
  }
  const grants = [];
  for (const item of duties.grants) {
    const keyId = b64d(item.reader_key_id, 'reader_key_id');
    const secret = device.readerKeys.get(`${hex(keyId)}:${item.version}`);
    if (!secret || !mayHold(view, item.member_id, item.reader_key_id)) {
      report.refused.push(`grant of ${item.reader_key_id} to ${item.member_id}: not allowed here`);
      continue;
    }
    grants.push(b64e(makeGrant({
      granterDeviceSecretKey: device.deviceKey.secretKey, schoolId: device.schoolId, readerKeyId: keyId,
      readerVersion: item.version, memberId: b64d(item.member_id, 'member'), granterDevice: device.deviceId,
      createdMs: Date.now(), readerSk: secret, memberX25519Pk: identityPk(device, item.member_id),
    })));
  }
  for (let start = 0; start < grants.length; start += 1000) {
    await device.call('POST', '/api/v1/grants', { grants: grants.slice(start, start + 1000) });
  }
  report.granted = grants.length;
  /** @type {{concern_id: string, entry_version: number, member_id: string}[]} */
  const again = duties.entry_grants ?? [];
  if (again.length && !concerns) {
    report.refused.push(`${again.length} entry key grants to make again: this run reads no concern`);
  } else if (again.length && concerns) {
    report.regranted = await regrant(device, concerns, again, report);
  }
  return report;
}

/**
 * The people a concern's folded state names on a need-to-know basis (every head of `need_to_know`), as user
 * ids in hex. Python: `sync.reader.need_to_know`.
 * @param {Record<string, any>} state
 * @returns {Set<string>}
 */
export function namedOn(state) {
  return new Set((state.fields.need_to_know ?? []).flatMap((/** @type {any} */ h) => h.value ?? []));
}

/**
 * Seal again each listed entry key version to its person, if this device holds it and the concern names them
 * (its fold) and they are a current member; refuse the rest into `report`. Python: `_regrant`.
 * @param {Device} device
 * @param {Concerns} concerns
 * @param {{concern_id: string, entry_version: number, member_id: string}[]} items
 * @param {DutyReport} report
 * @returns {Promise<number>} how many were sealed
 */
async function regrant(device, concerns, items, report) {
  const listed = new Map(device.dir().accounts.filter((a) => !a.left)
    .map((a) => [hex(b64d(a.id, 'id')), b64d(a.identity_x25519_pk, 'pk')]));
  /** @type {Map<string, {keys: Record<string, string>, named: Set<string>}>} */
  const held = new Map();
  const grants = [];
  for (const item of items) {
    const concernId = b64d(item.concern_id, 'concern_id');
    const memberId = b64d(item.member_id, 'member_id');
    const id = hex(concernId);
    let concern = held.get(id);
    if (!concern) {
      const blob = await concerns.blob(id);
      concern = blob ? { keys: blob.keys, named: namedOn(concerns.fold(blob)) } : { keys: {}, named: new Set() };
      held.set(id, concern);
    }
    const what = `entry key grant of ${item.concern_id} version ${item.entry_version} to ${item.member_id}`;
    const key = Number.isSafeInteger(item.entry_version) ? concern.keys[String(item.entry_version)] : undefined;
    const memberX25519Pk = listed.get(hex(memberId));
    if (!key) {
      report.refused.push(`${what}: this device holds no such entry key version`);
    } else if (!concern.named.has(hex(memberId))) {
      report.refused.push(`${what}: the concern does not name that person`);
    } else if (!memberX25519Pk) {
      report.refused.push(`${what}: not a current member in the signed directory`);
    } else {
      const entryKey = b64d(key, 'entry key');
      grants.push(b64e(makeEntryGrant({
        granterDeviceSecretKey: device.deviceKey.secretKey, schoolId: device.schoolId, concernId,
        entryVersion: item.entry_version, memberId, granterDevice: device.deviceId, createdMs: Date.now(), entryKey,
        memberX25519Pk,
      })));
      entryKey.fill(0);
    }
  }
  for (let start = 0; start < grants.length; start += 1000) {
    await device.call('POST', '/api/v1/entry-grants', { grants: grants.slice(start, start + 1000) });
  }
  return grants.length;
}

/**
 * Make `version` of a reader key on this device and seal it to `members` in one request. Python: `rotate`.
 * @param {Device} device
 * @param {Uint8Array} keyId
 * @param {number} version
 * @param {Uint8Array[]} members
 */
export async function rotate(device, keyId, version, members) {
  await device.rotateKey(keyId, version, generateReaderKey(), members);
}
