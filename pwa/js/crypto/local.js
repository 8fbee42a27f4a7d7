// Local sealing (docs/PROTOCOL.md sections 2.8 and 12), the twin of crypto/local.py: what a device keeps at
// rest, sealed under the device's data key, bound to school, user, kind and record id. The data key is
// random, one per account on a device, and stored only wrapped: under a key from the password's KEK (slot 1)
// and under a key from the X25519 identity key (slot 2). A password change rewraps slot 1 and re-seals
// nothing. Version 1 records (sealed under a key derived from the KEK) are opened once, to be re-sealed.

import { Reader, Writer } from './_codec.js';
import { KDF, KEY_BYTES, NONCE_BYTES, TAG_BYTES, aeadDecrypt, aeadEncrypt, ctx } from './_primitives.js';
import { randomBytes } from './_random.js';
import { Malformed, UnsupportedVersion } from './errors.js';

export const LOCAL_VERSION = 0x02;
export const LEGACY_LOCAL_VERSION = 0x01;
export const WRAP_VERSION = 0x01;
export const SLOT_PASSWORD_WRAP = 0x01;
export const SLOT_IDENTITY_WRAP = 0x02;
export const WRAP_BYTES = 1 + 1 + NONCE_BYTES + KEY_BYTES + TAG_BYTES; // 74
const KIND = /^[a-z][a-z0-9-]{0,31}$/;

// --- the data key and its wraps (PROTOCOL 2.8) -----------------------------------------------------

/** A fresh data key for one account on one device. @returns {Uint8Array} */
export function newDataKey() {
  return randomBytes(KEY_BYTES);
}

/**
 * The key that wraps the data key in the password slot, from the password's KEK (never stored).
 * @param {Uint8Array} kek
 * @returns {Uint8Array}
 */
export function passwordWrapKey(kek) {
  return KDF(kek, 'cairn/v1/local/wrap-key');
}

/**
 * The key that wraps the data key in the identity slot, from the X25519 identity secret key.
 * @param {Uint8Array} identityX25519Sk
 * @returns {Uint8Array}
 */
export function identityWrapKey(identityX25519Sk) {
  if (identityX25519Sk.length !== KEY_BYTES) throw new TypeError('An X25519 identity secret key is exactly 32 bytes.');
  return KDF(identityX25519Sk, 'cairn/v1/local/identity-wrap-key');
}

/** @param {number} slot */
function checkSlot(slot) {
  if (slot !== SLOT_PASSWORD_WRAP && slot !== SLOT_IDENTITY_WRAP) {
    throw new TypeError(`A data key wrap slot is 1 (password) or 2 (identity), not ${slot}.`);
  }
}

/**
 * @param {number} slot @param {Uint8Array} schoolId @param {Uint8Array} userId @param {Uint8Array} deviceId
 */
function wrapAd(slot, schoolId, userId, deviceId) {
  return new Writer().bytes(ctx('cairn/v1/local/data-key')).u8(WRAP_VERSION).u8(slot).id(schoolId, 'schoolId')
    .id(userId, 'userId').id(deviceId, 'deviceId').finish();
}

/**
 * Wrap the data key under `key` (passwordWrapKey for slot 1, identityWrapKey for slot 2): 74 bytes.
 * @param {Uint8Array} dataKey
 * @param {Uint8Array} key
 * @param {number} slot
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {Uint8Array} deviceId
 * @returns {Uint8Array}
 */
export function wrapDataKey(dataKey, key, slot, schoolId, userId, deviceId) {
  checkSlot(slot);
  const nonce = randomBytes(NONCE_BYTES);
  const box = aeadEncrypt(key, nonce, wrapAd(slot, schoolId, userId, deviceId), dataKey);
  return new Writer().u8(WRAP_VERSION).u8(slot).bytes(nonce).bytes(box).finish();
}

/**
 * Open a data key wrap: version first, then the length, the slot expected, the tag.
 * @param {Uint8Array} wrap
 * @param {Uint8Array} key
 * @param {number} slot
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {Uint8Array} deviceId
 * @returns {Uint8Array} the data key
 */
export function unwrapDataKey(wrap, key, slot, schoolId, userId, deviceId) {
  checkSlot(slot);
  const what = 'opening data key wrap';
  const r = new Reader(wrap, what);
  const version = r.u8('version');
  if (version !== WRAP_VERSION) throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  if (wrap.length !== WRAP_BYTES) throw new Malformed(`${what}: ${wrap.length} bytes, not ${WRAP_BYTES}`);
  const got = r.u8('slot');
  if (got !== slot) throw new Malformed(`${what}: slot ${got}, not the slot ${slot} expected`);
  const nonce = r.bytes(NONCE_BYTES, 'nonce');
  const box = r.bytes(KEY_BYTES + TAG_BYTES, 'box');
  r.done();
  return aeadDecrypt(key, nonce, wrapAd(slot, schoolId, userId, deviceId), box, what);
}

// --- records (PROTOCOL 12) ---------------------------------------------------------------------------

/**
 * @param {number} version
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {string} kind
 * @param {Uint8Array} recordId
 */
function ad(version, schoolId, userId, kind, recordId) {
  if (!KIND.test(kind)) throw new TypeError(`A local record kind is 1 to 32 of a-z, 0-9 and '-', not ${kind}.`);
  const raw = new TextEncoder().encode(kind);
  return new Writer().bytes(ctx('cairn/v1/local')).u8(version).id(schoolId, 'schoolId').id(userId, 'userId')
    .u8(raw.length).bytes(raw).id(recordId, 'recordId').finish();
}

/**
 * Seal one local record (version 2) under the data key.
 * @param {Uint8Array} dataKey
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {string} kind
 * @param {Uint8Array} recordId 16 bytes
 * @param {Uint8Array} plaintext
 * @returns {Uint8Array}
 */
export function sealLocal(dataKey, schoolId, userId, kind, recordId, plaintext) {
  const nonce = randomBytes(NONCE_BYTES);
  const box = aeadEncrypt(dataKey, nonce, ad(LOCAL_VERSION, schoolId, userId, kind, recordId), plaintext);
  return new Writer().u8(LOCAL_VERSION).bytes(nonce).bytes(box).finish();
}

/**
 * @param {number} version
 * @param {Uint8Array} key
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {string} kind
 * @param {Uint8Array} recordId
 * @param {Uint8Array} sealed
 */
function open(version, key, schoolId, userId, kind, recordId, sealed) {
  const what = `opening local ${kind}`;
  const r = new Reader(sealed, what);
  const got = r.u8('version');
  if (got !== version) throw new UnsupportedVersion(`${what}: version ${got}, not ${version}`);
  const nonce = r.bytes(NONCE_BYTES, 'nonce');
  if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES) throw new Malformed(`${what}: truncated`);
  const box = r.bytes(r.remaining, 'box');
  r.done();
  return aeadDecrypt(key, nonce, ad(version, schoolId, userId, kind, recordId), box, what);
}

/**
 * Open one version 2 record; any change to it or to its context throws a CryptoError, and a version 1
 * record is UnsupportedVersion (openLegacyLocal).
 * @param {Uint8Array} dataKey
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {string} kind
 * @param {Uint8Array} recordId
 * @param {Uint8Array} sealed
 * @returns {Uint8Array}
 */
export function openLocal(dataKey, schoolId, userId, kind, recordId, sealed) {
  return open(LOCAL_VERSION, dataKey, schoolId, userId, kind, recordId, sealed);
}

/**
 * The version 1 at-rest key, derived from the password's KEK: only to open version 1 records once.
 * @param {Uint8Array} kek
 * @returns {Uint8Array}
 */
export function localKey(kek) {
  return KDF(kek, 'cairn/v1/local/key');
}

/**
 * Open a version 1 record under localKey(kek), to re-seal it under the data key.
 * @param {Uint8Array} key
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {string} kind
 * @param {Uint8Array} recordId
 * @param {Uint8Array} sealed
 * @returns {Uint8Array}
 */
export function openLegacyLocal(key, schoolId, userId, kind, recordId, sealed) {
  return open(LEGACY_LOCAL_VERSION, key, schoolId, userId, kind, recordId, sealed);
}
