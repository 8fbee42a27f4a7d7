// The private bundle (docs/PROTOCOL.md section 2.4): a user's identity keys sealed under a KEK.

import { Reader, Writer, checkBytes } from './_codec.js';
import { NONCE_BYTES, aeadDecrypt, aeadEncrypt, ctx, signKeyPair, x25519Base } from './_primitives.js';
import { randomBytes } from './_random.js';
import { Malformed, UnsupportedVersion } from './errors.js';

export const BUNDLE_VERSION = 0x01;
/** Sealed under the password KEK. */
export const SLOT_PASSWORD = 0x01;
/** Sealed under the recovery KEK. */
export const SLOT_RECOVERY = 0x02;
export const BUNDLE_PLAINTEXT_BYTES = 65;
export const SEALED_BUNDLE_BYTES = 107;

/**
 * @typedef {object} IdentityKeys
 * @property {Uint8Array} x25519Sk 32 bytes
 * @property {Uint8Array} ed25519Seed 32 bytes
 */

/**
 * New identity keys, made on the device at sign-up (Python: `IdentityKeys.generate`).
 * @returns {IdentityKeys}
 */
export function generateIdentityKeys() {
  return { x25519Sk: randomBytes(32), ed25519Seed: randomBytes(32) };
}

/**
 * The public halves the server and the directory list: X25519 (grants are sealed to it) and Ed25519.
 * @param {IdentityKeys} keys
 * @returns {{x25519Pk: Uint8Array, ed25519Pk: Uint8Array}}
 */
export function identityPublicKeys({ x25519Sk, ed25519Seed }) {
  return { x25519Pk: x25519Base(x25519Sk), ed25519Pk: signKeyPair(ed25519Seed).publicKey };
}

/** @param {number} slot */
function checkSlot(slot) {
  if (slot !== SLOT_PASSWORD && slot !== SLOT_RECOVERY) {
    throw new TypeError(`The bundle slot must be SLOT_PASSWORD (1) or SLOT_RECOVERY (2), got ${String(slot)}.`);
  }
}

/**
 * @param {number} slot
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 */
function associatedData(slot, schoolId, userId) {
  return new Writer()
    .bytes(ctx('cairn/v1/bundle'))
    .u8(BUNDLE_VERSION)
    .u8(slot)
    .id(schoolId, 'schoolId')
    .id(userId, 'userId')
    .finish();
}

/**
 * Seal a user's identity keys under a KEK (107 bytes).
 * @param {IdentityKeys} keys
 * @param {Uint8Array} kek 32 bytes
 * @param {number} slot SLOT_PASSWORD or SLOT_RECOVERY
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @returns {Uint8Array}
 */
export function sealBundle({ x25519Sk, ed25519Seed }, kek, slot, schoolId, userId) {
  checkSlot(slot);
  checkBytes(kek, 32, 'sealBundle: kek');
  const plaintext = new Writer()
    .u8(BUNDLE_VERSION)
    .bytes(x25519Sk, 32, 'sealBundle: x25519Sk')
    .bytes(ed25519Seed, 32, 'sealBundle: ed25519Seed')
    .finish();
  const ad = associatedData(slot, schoolId, userId);
  const nonce = randomBytes(NONCE_BYTES);
  const box = aeadEncrypt(kek, nonce, ad, plaintext);
  plaintext.fill(0);
  return new Writer().u8(BUNDLE_VERSION).u8(slot).bytes(nonce).bytes(box).finish();
}

/**
 * Open a sealed bundle.
 * @param {Uint8Array} sealed
 * @param {Uint8Array} kek 32 bytes
 * @param {number} slot the slot the caller expects
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @returns {IdentityKeys}
 */
export function openBundle(sealed, kek, slot, schoolId, userId) {
  checkSlot(slot);
  checkBytes(kek, 32, 'openBundle: kek');
  const what = 'opening bundle';
  const r = new Reader(sealed, what);
  const version = r.u8('version');
  if (version !== BUNDLE_VERSION) {
    throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  }
  if (sealed.length !== SEALED_BUNDLE_BYTES) {
    throw new Malformed(`${what}: expected ${SEALED_BUNDLE_BYTES} bytes, got ${sealed.length}`);
  }
  const sealedSlot = r.u8('slot');
  if (sealedSlot !== slot) {
    throw new Malformed(`${what}: slot ${sealedSlot} is not the expected slot ${slot}`);
  }
  const nonce = r.bytes(NONCE_BYTES, 'nonce');
  const box = r.bytes(r.remaining, 'box');
  r.done();
  const plaintext = aeadDecrypt(kek, nonce, associatedData(slot, schoolId, userId), box, what);
  const p = new Reader(plaintext, `${what}: plaintext`);
  const inner = p.u8('version');
  if (inner !== BUNDLE_VERSION) {
    throw new UnsupportedVersion(`${what}: unknown plaintext version ${inner}`);
  }
  const x25519Sk = p.bytes(32, 'identity_x25519_sk');
  const ed25519Seed = p.bytes(32, 'identity_ed25519_seed');
  p.done();
  plaintext.fill(0);
  return { x25519Sk, ed25519Seed };
}
