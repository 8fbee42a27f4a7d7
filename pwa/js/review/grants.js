// What arrives late, for the Casebook (./casebook.js): entry key grants, and which keys this device's pulls
// have covered from the beginning (docs/PROTOCOL.md 5.1, 9.5). The twin of sync/reader.py.
//
// - Entry key grants: naming someone on a need-to-know basis re-seals every entry key version of the concern
//   this device holds to that person (`makeEntryGrants`, kept in the sealed review state until the server
//   takes them). A person's device opens the grants addressed to it only when the signed directory lists the
//   granter device, not revoked, for a current member of the safeguarding team (`keyholderDevices`): naming
//   is their decision, and a teacher who reads a concern through a pupil key holds its entry key too.
// - Coverage: a key is "covered" once a pull from the beginning that held it, or a backfill naming it, has
//   reached its end. Every other key this device holds is backfilled (SyncClient.backfill).

import { CryptoError, makeEntryGrant, openEntryGrant, readEntryGrant } from '../crypto/index.js';
import { b64d, b64e, hex, unhex } from '../sync/protocol.js';

/** @typedef {import('../sync/directory.js').Listing} Listing */
/** @typedef {import('../crypto/envelope.js').EntryKey} EntryKey */

/** How a key is named in the review state's `covered` list: `k:<id hex>:<version>`, `e:<concern hex>:<version>`. */
export const READER_KEY = 'k';
export const ENTRY_KEY = 'e';

/** Why an entry key grant is refused for good, as the app says it (never key bytes). */
export const NOT_A_KEYHOLDER = 'an entry key grant not made by a safeguarding keyholder\'s device';

/**
 * Device id (hex) to public key of every device the directory lists, not revoked, of a current member of the
 * safeguarding team (Python: `sync.reader.keyholder_devices`).
 * @param {Listing | null} dir
 * @returns {Map<string, Uint8Array>}
 */
export function keyholderDevices(dir) {
  /** @type {Map<string, Uint8Array>} */
  const out = new Map();
  if (!dir) return out;
  const team = new Set(dir.accounts.filter((a) => a.roles.includes('safeguarding') && !a.left).map((a) => a.id));
  for (const d of dir.devices) {
    if (!d.revoked && team.has(d.user_id)) out.set(hex(b64d(d.id, 'id')), b64d(d.public_key, 'public_key'));
  }
  return out;
}

/**
 * Open the entry key grants addressed to this person that are not open yet.
 * @param {{grants: string[], opened: Map<string, Uint8Array>, refused: Set<string>, dir: Listing | null,
 *   memberX25519Sk: Uint8Array, schoolId: Uint8Array, memberId: Uint8Array}} input
 *   `opened`: `${concern hex}:${version}` to key, filled in; `refused`: grants refused for good, filled in
 * @returns {{opened: number, problems: string[]}}
 */
export function openEntryGrants({ grants, opened, refused, dir, memberX25519Sk, schoolId, memberId }) {
  const signers = keyholderDevices(dir);
  const listed = new Set((dir?.devices ?? []).map((d) => hex(b64d(d.id, 'id'))));
  /** @type {string[]} */
  const problems = [];
  let count = 0;
  for (const raw of grants) {
    if (refused.has(raw)) continue;
    try {
      const bytes = b64d(raw, 'entry grant');
      const info = readEntryGrant(bytes);
      const name = `${hex(info.concernId)}:${info.entryVersion}`;
      if (opened.has(name)) continue;
      const granterDevicePk = signers.get(hex(info.granterDevice));
      if (!granterDevicePk) {
        if (listed.has(hex(info.granterDevice))) { // listed, but not a keyholder's: for good
          refused.add(raw);
          problems.push(NOT_A_KEYHOLDER);
        }
        continue; // not listed yet: tried again after the next refresh
      }
      const { entryKey } = openEntryGrant(bytes, { memberX25519Sk, schoolId, memberId, granterDevicePk });
      opened.set(name, entryKey);
      count += 1;
    } catch (error) {
      if (!(error instanceof CryptoError || error instanceof TypeError)) throw error;
      refused.add(raw);
      problems.push(`an entry key grant: ${error instanceof CryptoError ? error.code : 'unreadable'}`);
    }
  }
  return { opened: count, problems };
}

/**
 * Entry key grants of every version in `keys` (version to base64url key) to each person.
 * @param {{schoolId: Uint8Array, concernId: Uint8Array, keys: Record<string, string>,
 *   people: [Uint8Array, Uint8Array][], deviceId: Uint8Array, deviceSecretKey: Uint8Array}} input
 *   people: user id and identity X25519 key, from the signed directory
 * @returns {string[]} base64url grants
 */
export function makeEntryGrants({ schoolId, concernId, keys, people, deviceId, deviceSecretKey }) {
  /** @type {string[]} */
  const out = [];
  for (const [memberId, memberX25519Pk] of people) {
    for (const [version, key] of Object.entries(keys).sort(([a], [b]) => Number(a) - Number(b))) {
      const entryKey = b64d(key, 'entry key');
      out.push(b64e(makeEntryGrant({
        granterDeviceSecretKey: deviceSecretKey, schoolId, concernId, entryVersion: Number(version), memberId,
        granterDevice: deviceId, createdMs: Date.now(), entryKey, memberX25519Pk,
      })));
      entryKey.fill(0);
    }
  }
  return out;
}

/**
 * The names of every key this device reads with: its reader keys (`${hex}:${version}` in Device.readerKeys)
 * and the entry keys its grants opened.
 * @param {Iterable<string>} readerKeys @param {Iterable<string>} entryKeys
 * @returns {string[]}
 */
export function keyNames(readerKeys, entryKeys) {
  return [...[...readerKeys].map((k) => `${READER_KEY}:${k}`), ...[...entryKeys].map((k) => `${ENTRY_KEY}:${k}`)];
}

/**
 * A backfill's `keys` and `entry_keys` (docs/PROTOCOL.md 9.3) for key names.
 * @param {string[]} names
 * @returns {{keys: {id: string, version: number}[], entry_keys: {id: string, version: number}[]}}
 */
export function backfillFields(names) {
  /** @type {{keys: {id: string, version: number}[], entry_keys: {id: string, version: number}[]}} */
  const out = { keys: [], entry_keys: [] };
  for (const name of names) {
    const [kind, id, version] = name.split(':');
    (kind === READER_KEY ? out.keys : out.entry_keys).push({ id: b64e(unhex(id)), version: Number(version) });
  }
  return out;
}

/**
 * Which of `names` the server refused in a backfill (its `fields` name `keys[i]` and `entry_keys[i]`, indexes
 * into the lists `backfillFields` made).
 * @param {string[]} names @param {string[]} fields @returns {string[]}
 */
export function refusedNames(names, fields) {
  const keys = names.filter((n) => n.startsWith(`${READER_KEY}:`));
  const entries = names.filter((n) => n.startsWith(`${ENTRY_KEY}:`));
  return fields.flatMap((f) => {
    const m = /^(keys|entry_keys)\[(\d+)\]$/.exec(f);
    const name = m ? (m[1] === 'keys' ? keys : entries)[Number(m[2])] : undefined;
    return name ? [name] : [];
  });
}

/** The entry keys of `opened` as envelope.open takes them. @param {Map<string, Uint8Array>} opened @returns {EntryKey[]} */
export function entryKeyList(opened) {
  return [...opened].map(([name, key]) => {
    const [concern, version] = name.split(':');
    return { concernId: unhex(concern), version: Number(version), key };
  });
}
