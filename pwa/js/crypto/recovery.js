// The recovery key (docs/PROTOCOL.md section 2.5): 20 random bytes and a 2-byte check, written in
// Crockford base32 as nine groups of four characters.

import { Writer, checkBytes } from './_codec.js';
import { H, KDF, ctx, sign, signKeyPair, verify } from './_primitives.js';
import { randomBytes } from './_random.js';
import { BadSignature, Malformed } from './errors.js';

export const RECOVERY_SECRET_BYTES = 20;
const CHECK_BYTES = 2;
const CHARS = 36;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Characters a parser reads as another: lower case is folded separately. */
const ALIASES = /** @type {Record<string, string>} */ ({ O: '0', I: '1', L: '1' });
/** Characters a parser ignores. */
const IGNORED = new Set([' ', '-']);
const TYPO = 'parsing recovery key: recovery key has a typo';

/**
 * @param {Uint8Array} secret
 * @returns {Uint8Array}
 */
function check(secret) {
  return H('cairn/v1/recovery/check', secret).slice(0, CHECK_BYTES);
}

/**
 * A fresh recovery secret (20 bytes).
 * @returns {Uint8Array}
 */
export function generateRecoveryKey() {
  return randomBytes(RECOVERY_SECRET_BYTES);
}

/**
 * The printable form: 36 Crockford base32 characters in nine groups of four, joined by `-`.
 * @param {Uint8Array} secret 20 bytes
 * @returns {string}
 */
export function formatRecoveryKey(secret) {
  checkBytes(secret, RECOVERY_SECRET_BYTES, 'formatRecoveryKey: secret');
  const data = new Writer().bytes(secret).bytes(check(secret)).finish();
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const byte of data) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  const groups = [];
  for (let i = 0; i < CHARS; i += 4) groups.push(out.slice(i, i + 4));
  return groups.join('-');
}

/**
 * Read a typed or pasted recovery key back to its 20-byte secret; any typo is Malformed.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function parseRecoveryKey(text) {
  if (typeof text !== 'string') {
    throw new TypeError('parseRecoveryKey: text must be a string.');
  }
  /** @type {number[]} */
  const values = [];
  for (const raw of text) {
    if (IGNORED.has(raw)) continue;
    let c = raw >= 'a' && raw <= 'z' ? String.fromCharCode(raw.charCodeAt(0) - 32) : raw;
    c = ALIASES[c] ?? c;
    const v = c.length === 1 ? ALPHABET.indexOf(c) : -1;
    if (v < 0) throw new Malformed(TYPO);
    values.push(v);
  }
  if (values.length !== CHARS) throw new Malformed(TYPO);
  const data = new Uint8Array(RECOVERY_SECRET_BYTES + CHECK_BYTES);
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const v of values) {
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      data[at++] = (acc >> bits) & 0xff;
    }
    acc &= (1 << bits) - 1;
  }
  if (acc !== 0) throw new Malformed(TYPO); // the 4 pad bits must be zero
  const secret = data.slice(0, RECOVERY_SECRET_BYTES);
  const c = data.slice(RECOVERY_SECRET_BYTES);
  const expected = check(secret);
  if (c[0] !== expected[0] || c[1] !== expected[1]) throw new Malformed(TYPO);
  return secret;
}

/**
 * The KEK that seals the bundle in slot 2.
 * @param {Uint8Array} secret 20 bytes
 * @returns {Uint8Array}
 */
export function recoveryKek(secret) {
  checkBytes(secret, RECOVERY_SECRET_BYTES, 'recoveryKek: secret');
  return KDF(secret, 'cairn/v1/recovery/kek');
}

/**
 * The Ed25519 key pair that proves possession of the recovery key; the server stores the public key.
 * @param {Uint8Array} secret 20 bytes
 * @returns {{publicKey: Uint8Array, secretKey: Uint8Array}}
 */
export function recoveryAuthKeyPair(secret) {
  checkBytes(secret, RECOVERY_SECRET_BYTES, 'recoveryAuthKeyPair: secret');
  return signKeyPair(KDF(secret, 'cairn/v1/recovery/auth'));
}

/**
 * The bytes a recovery proof signs (docs/PROTOCOL.md section 2.6).
 * @param {{schoolId: Uint8Array, userId: Uint8Array, challenge: Uint8Array, kdfParams: Uint8Array,
 *   loginPk: Uint8Array, bundle: Uint8Array}} f
 * @param {string} [label]
 */
function proofMessage(f, label = 'cairn/v1/recovery/proof') {
  return new Writer()
    .bytes(ctx(label))
    .id(f.schoolId, 'schoolId')
    .id(f.userId, 'userId')
    .bytes(f.challenge, 32, 'challenge')
    .bytes(f.kdfParams, 26, 'kdfParams')
    .bytes(f.loginPk, 32, 'loginPk')
    .bytes(f.bundle, 107, 'bundle')
    .finish();
}

/**
 * The password-reset proof: the recovery auth key signs the server's fresh challenge and the new password
 * material (KDF parameters, login public key, password-slot bundle), so none can be swapped. Python:
 * `sign_recovery_proof`.
 * @param {Uint8Array} authSecretKey 64 bytes, from recoveryAuthKeyPair
 * @param {{schoolId: Uint8Array, userId: Uint8Array, challenge: Uint8Array, kdfParams: Uint8Array,
 *   loginPk: Uint8Array, bundle: Uint8Array}} fields
 * @returns {Uint8Array}
 */
export function signRecoveryProof(authSecretKey, fields) {
  return sign(authSecretKey, proofMessage(fields));
}

/**
 * Check a recovery proof; throws BadSignature if it fails, Malformed if a field has the wrong length.
 * @param {Uint8Array} authPublicKey
 * @param {{schoolId: Uint8Array, userId: Uint8Array, challenge: Uint8Array, kdfParams: Uint8Array,
 *   loginPk: Uint8Array, bundle: Uint8Array}} fields
 * @param {Uint8Array} signature
 * @returns {true}
 */
export function verifyRecoveryProof(authPublicKey, fields, signature) {
  let message;
  try {
    message = proofMessage(fields);
  } catch (e) {
    throw new Malformed(`verifying recovery proof: ${/** @type {Error} */ (e).message}`);
  }
  if (!verify(authPublicKey, message, signature)) {
    throw new BadSignature('verifying recovery proof: signature does not match');
  }
  return true;
}

const CHANGE = 'cairn/v1/account/password-change';

/**
 * The password-change proof (docs/PROTOCOL.md 2.9): the old login key signs the server's fresh challenge
 * and the new password material, laid out as the recovery proof under its own context. Python:
 * `sign_password_change`.
 * @param {Uint8Array} oldLoginSecretKey 64 bytes
 * @param {{schoolId: Uint8Array, userId: Uint8Array, challenge: Uint8Array, kdfParams: Uint8Array,
 *   loginPk: Uint8Array, bundle: Uint8Array}} fields
 * @returns {Uint8Array}
 */
export function signPasswordChange(oldLoginSecretKey, fields) {
  return sign(oldLoginSecretKey, proofMessage(fields, CHANGE));
}

/**
 * Check a password-change proof; throws BadSignature if it fails, Malformed if a field has the wrong length.
 * @param {Uint8Array} oldLoginPublicKey
 * @param {{schoolId: Uint8Array, userId: Uint8Array, challenge: Uint8Array, kdfParams: Uint8Array,
 *   loginPk: Uint8Array, bundle: Uint8Array}} fields
 * @param {Uint8Array} signature
 * @returns {true}
 */
export function verifyPasswordChange(oldLoginPublicKey, fields, signature) {
  let message;
  try {
    message = proofMessage(fields, CHANGE);
  } catch (e) {
    throw new Malformed(`verifying password change proof: ${/** @type {Error} */ (e).message}`);
  }
  if (!verify(oldLoginPublicKey, message, signature)) {
    throw new BadSignature('verifying password change proof: signature does not match');
  }
  return true;
}
