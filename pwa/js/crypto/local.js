// Local sealing (docs/PROTOCOL.md section 12), the twin of crypto/local.py: what a device keeps at rest,
// sealed under a key derived from the account's KEK, bound to school, user, kind and record id.

import { Reader, Writer } from './_codec.js';
import { KDF, NONCE_BYTES, TAG_BYTES, aeadDecrypt, aeadEncrypt, ctx } from './_primitives.js';
import { randomBytes } from './_random.js';
import { Malformed, UnsupportedVersion } from './errors.js';

export const LOCAL_VERSION = 0x01;
const KIND = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * The device's at-rest key, derived from the password's KEK (never stored).
 * @param {Uint8Array} kek
 * @returns {Uint8Array}
 */
export function localKey(kek) {
  return KDF(kek, 'cairn/v1/local/key');
}

/**
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {string} kind
 * @param {Uint8Array} recordId
 */
function ad(schoolId, userId, kind, recordId) {
  if (!KIND.test(kind)) throw new TypeError(`A local record kind is 1 to 32 of a-z, 0-9 and '-', not ${kind}.`);
  const raw = new TextEncoder().encode(kind);
  return new Writer().bytes(ctx('cairn/v1/local')).u8(LOCAL_VERSION).id(schoolId, 'schoolId').id(userId, 'userId')
    .u8(raw.length).bytes(raw).id(recordId, 'recordId').finish();
}

/**
 * Seal one local record.
 * @param {Uint8Array} key from localKey()
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {string} kind
 * @param {Uint8Array} recordId 16 bytes
 * @param {Uint8Array} plaintext
 * @returns {Uint8Array}
 */
export function sealLocal(key, schoolId, userId, kind, recordId, plaintext) {
  const nonce = randomBytes(NONCE_BYTES);
  const box = aeadEncrypt(key, nonce, ad(schoolId, userId, kind, recordId), plaintext);
  return new Writer().u8(LOCAL_VERSION).bytes(nonce).bytes(box).finish();
}

/**
 * Open one local record; any change to it or to its context throws a CryptoError.
 * @param {Uint8Array} key
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {string} kind
 * @param {Uint8Array} recordId
 * @param {Uint8Array} sealed
 * @returns {Uint8Array}
 */
export function openLocal(key, schoolId, userId, kind, recordId, sealed) {
  const what = `opening local ${kind}`;
  const r = new Reader(sealed, what);
  const version = r.u8('version');
  if (version !== LOCAL_VERSION) throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  const nonce = r.bytes(NONCE_BYTES, 'nonce');
  if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES) throw new Malformed(`${what}: truncated`);
  const box = r.bytes(r.remaining, 'box');
  r.done();
  return aeadDecrypt(key, nonce, ad(schoolId, userId, kind, recordId), box, what);
}
