// The device data key of one person on this browser (docs/PROTOCOL.md 2.8): its two wraps, opening it with
// the password's KEK or with the identity keys, and the one-time upgrade of a version 1 store (sealed under a
// key derived from the KEK itself) to records sealed under a data key (section 12). Used by app/people.js.

import {
  CryptoError, SLOT_IDENTITY_WRAP, SLOT_PASSWORD_WRAP, identityWrapKey, localKey, newDataKey, openLegacyLocal,
  passwordWrapKey, sealLocal, unwrapDataKey, wrapDataKey,
} from '../crypto/index.js';
import { unhex } from '../sync/protocol.js';

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../db.js').AccountRecord} AccountRecord */
/** @typedef {import('../db.js').DataKeyWraps} DataKeyWraps */
/** @typedef {import('../crypto/bundle.js').IdentityKeys} IdentityKeys */

/** The password does not open this person's records. */
export class WrongPassword extends Error {}

/**
 * The data key wrapped for this person's device in both slots (docs/PROTOCOL.md 2.8).
 * @param {Uint8Array} dataKey
 * @param {Uint8Array} kek
 * @param {Uint8Array} identityX25519Sk
 * @param {{schoolId: Uint8Array, userId: Uint8Array, deviceId: Uint8Array}} ids
 * @returns {DataKeyWraps}
 */
export function wrapsFor(dataKey, kek, identityX25519Sk, { schoolId, userId, deviceId }) {
  const byPassword = passwordWrapKey(kek);
  const byIdentity = identityWrapKey(identityX25519Sk);
  const wraps = {
    password: wrapDataKey(dataKey, byPassword, SLOT_PASSWORD_WRAP, schoolId, userId, deviceId),
    identity: wrapDataKey(dataKey, byIdentity, SLOT_IDENTITY_WRAP, schoolId, userId, deviceId),
  };
  byPassword.fill(0);
  byIdentity.fill(0);
  return wraps;
}

/**
 * The data key from a password-slot wrap (`staged`: the one a change is waiting on), or null if it does not open.
 * @param {AccountRecord} record
 * @param {Uint8Array} kek
 * @param {boolean} [staged]
 * @returns {Uint8Array | null}
 */
export function openByPassword(record, kek, staged = false) {
  const wrap = staged ? record.wraps?.staged : record.wraps?.password;
  if (!wrap) return null;
  const key = passwordWrapKey(kek);
  try {
    return unwrapDataKey(wrap, key, SLOT_PASSWORD_WRAP, record.schoolId, record.userId, record.deviceId);
  } catch (error) {
    if (error instanceof CryptoError) return null;
    throw error;
  } finally {
    key.fill(0);
  }
}

/**
 * The data key from the identity-slot wrap: after a recovery, or a sign-in with a password changed elsewhere.
 * @param {AccountRecord} record
 * @param {IdentityKeys} identity
 * @returns {Uint8Array | null}
 */
export function openByIdentity(record, identity) {
  if (!record.wraps?.identity) return null;
  const key = identityWrapKey(identity.x25519Sk);
  try {
    return unwrapDataKey(record.wraps.identity, key, SLOT_IDENTITY_WRAP, record.schoolId, record.userId, record.deviceId);
  } catch (error) {
    if (error instanceof CryptoError) return null;
    throw error;
  } finally {
    key.fill(0);
  }
}

/**
 * A version 1 store (no wraps): every record of this person is opened once with the old key (derived from the
 * KEK) and re-sealed under a new data key, with the wraps, in one transaction: nothing is lost, and a crash
 * leaves the version 1 store as it was. Records that no longer opened even before (a cache) are dropped; a
 * draft that does not open is kept as it is. Throws WrongPassword if the old key does not open the identity.
 * @param {LocalStore} store
 * @param {AccountRecord} record
 * @param {Uint8Array} kek
 * @returns {Promise<Uint8Array>} the data key
 */
export async function upgradeStore(store, record, kek) {
  const legacy = localKey(kek);
  const { schoolId, userId, deviceId } = record;
  let both;
  try {
    both = openLegacyLocal(legacy, schoolId, userId, 'identity', userId, record.sealed.identity);
  } catch (error) {
    legacy.fill(0);
    if (error instanceof CryptoError) throw new WrongPassword('That password does not unlock this account.');
    throw error;
  }
  const dataKey = newDataKey();
  const wraps = wrapsFor(dataKey, kek, both.slice(0, 32), record);
  both.fill(0);
  /** @type {Record<string, Uint8Array>} */
  const own = { identity: userId, 'device-key': deviceId, session: deviceId, directory: userId };
  /** @returns {[string, Uint8Array] | null} */
  const where = (/** @type {string} */ at, /** @type {string} */ key) => {
    if (at.startsWith('account:')) return own[at.slice(8)] ? [at.slice(8), own[at.slice(8)]] : null;
    if (at === 'draft') return ['draft', unhex(key)];
    if (at === 'roster') return ['roster', userId];
    const [, kind, name] = key.split('|');
    if (kind === 'review-state') return [kind, userId];
    if (kind === 'review-concern') return [kind, unhex(name)];
    const bucket = new Uint8Array(16);
    bucket[0] = Number(name);
    return [kind, bucket];
  };
  try {
    await store.resealAccount(record.id, (at, key, sealed) => {
      const found = where(at, key);
      if (!found) return null;
      let plain;
      try {
        plain = openLegacyLocal(legacy, schoolId, userId, found[0], found[1], sealed);
      } catch (error) {
        if (!(error instanceof CryptoError)) throw error;
        return at === 'draft' ? sealed : null; // what did not open before is a cache, except a draft: kept
      }
      const made = sealLocal(dataKey, schoolId, userId, found[0], found[1], plain);
      plain.fill(0);
      return made;
    }, { wraps });
  } finally {
    legacy.fill(0);
  }
  return dataKey;
}
