// Account keys (docs/PROTOCOL.md section 2.1 to 2.3): KDF parameters, derivation, sign-in proof.

import { Reader, Writer, checkBytes } from './_codec.js';
import { KDF, argon2id, ctx, sign, signKeyPair, verify } from './_primitives.js';
import { randomBytes } from './_random.js';
import { BadSignature, Malformed, ParametersBelowFloor, UnsupportedVersion } from './errors.js';

export const KDF_PARAMS_VERSION = 0x01;
export const ALG_ARGON2ID13 = 0x02;
export const KDF_PARAMS_BYTES = 26; // enforced by the Reader: short input and trailing bytes
export const SALT_BYTES = 16;

/** The floor and ceiling are constants in client code: a server cannot move them. */
export const OPSLIMIT_FLOOR = 3;
export const MEMLIMIT_FLOOR = 67108864;
export const OPSLIMIT_CEILING = 16;
export const MEMLIMIT_CEILING = 1073741824;

/** What new accounts use. */
export const OPSLIMIT_DEFAULT = 3;
export const MEMLIMIT_DEFAULT = 67108864;

/**
 * Refuse parameters outside the client's floor and ceiling.
 * @param {number} opslimit
 * @param {number} memlimit
 * @param {string} what
 */
function checkBounds(opslimit, memlimit, what) {
  if (opslimit < OPSLIMIT_FLOOR || memlimit < MEMLIMIT_FLOOR) {
    throw new ParametersBelowFloor(`${what}: Argon2id parameters are below the floor (opslimit >= ${OPSLIMIT_FLOOR}, memlimit >= ${MEMLIMIT_FLOOR})`);
  }
  if (opslimit > OPSLIMIT_CEILING || memlimit > MEMLIMIT_CEILING) {
    throw new ParametersBelowFloor(`${what}: Argon2id parameters are above the ceiling (opslimit <= ${OPSLIMIT_CEILING}, memlimit <= ${MEMLIMIT_CEILING})`);
  }
}

/** Argon2id parameters, stored by the server and public (26 bytes on the wire). */
export class KdfParams {
  /**
   * @param {{opslimit: number, memlimit: number, salt: Uint8Array}} fields
   */
  constructor({ opslimit, memlimit, salt }) {
    for (const [name, v] of /** @type {const} */ ([['opslimit', opslimit], ['memlimit', memlimit]])) {
      if (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff) {
        throw new TypeError(`KdfParams: ${name} must be an integer from 0 to 2^32 - 1.`);
      }
    }
    checkBytes(salt, SALT_BYTES, 'KdfParams: salt');
    checkBounds(opslimit, memlimit, 'checking KDF parameters');
    /** @readonly */
    this.opslimit = opslimit;
    /** @readonly */
    this.memlimit = memlimit;
    /** @readonly */
    this.salt = Uint8Array.from(salt);
    Object.freeze(this);
  }

  /** @returns {Uint8Array} */
  encode() {
    return new Writer()
      .u8(KDF_PARAMS_VERSION)
      .u8(ALG_ARGON2ID13)
      .u32(this.opslimit)
      .u32(this.memlimit)
      .bytes(this.salt, SALT_BYTES)
      .finish();
  }

  /**
   * @param {Uint8Array} bytes
   * @returns {KdfParams}
   */
  static decode(bytes) {
    const what = 'parsing KDF parameters';
    const r = new Reader(bytes, what);
    const version = r.u8('version');
    if (version !== KDF_PARAMS_VERSION) {
      throw new UnsupportedVersion(`${what}: unknown version ${version}`);
    }
    const alg = r.u8('alg');
    if (alg !== ALG_ARGON2ID13) {
      throw new UnsupportedVersion(`${what}: unknown algorithm ${alg}`);
    }
    const opslimit = r.u32('opslimit');
    const memlimit = r.u32('memlimit');
    const salt = r.bytes(SALT_BYTES, 'salt');
    r.done();
    checkBounds(opslimit, memlimit, what);
    return new KdfParams({ opslimit, memlimit, salt });
  }
}

/**
 * Parameters for a new account: the defaults and a fresh random salt.
 * @returns {KdfParams}
 */
export function newKdfParams() {
  return new KdfParams({ opslimit: OPSLIMIT_DEFAULT, memlimit: MEMLIMIT_DEFAULT, salt: randomBytes(SALT_BYTES) });
}

/**
 * The password's bytes: NFC, then UTF-8. A string with a lone surrogate has no UTF-8 form.
 * @param {string} password
 * @returns {Uint8Array}
 */
function passwordBytes(password) {
  if (typeof password !== 'string' || password.length === 0) {
    throw new TypeError('deriveAccount: the password must be a non-empty string.');
  }
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(password)) {
    throw new TypeError('deriveAccount: the password contains a lone surrogate and has no UTF-8 form.');
  }
  return new TextEncoder().encode(password.normalize('NFC'));
}

/**
 * @typedef {object} AccountKeys
 * @property {Uint8Array} loginSeed 32 bytes
 * @property {Uint8Array} loginPublicKey 32 bytes; the only part the server stores
 * @property {Uint8Array} loginSecretKey 64 bytes (libsodium form)
 * @property {Uint8Array} kek 32 bytes; seals the private bundle in slot 1
 */

/**
 * Derive the login key pair and the key-encryption key from a password.
 * @param {string} password
 * @param {KdfParams} params
 * @returns {AccountKeys}
 */
export function deriveAccount(password, params) {
  if (!(params instanceof KdfParams)) {
    throw new TypeError('deriveAccount: params must be a KdfParams.');
  }
  checkBounds(params.opslimit, params.memlimit, 'deriving account keys');
  const master = argon2id(passwordBytes(password), params.salt, params.opslimit, params.memlimit);
  const loginSeed = KDF(master, 'cairn/v1/account/login');
  const kek = KDF(master, 'cairn/v1/account/kek');
  master.fill(0);
  const kp = signKeyPair(loginSeed);
  return { loginSeed, loginPublicKey: kp.publicKey, loginSecretKey: kp.secretKey, kek };
}

/**
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {Uint8Array} challenge
 * @returns {Uint8Array}
 */
function challengeMessage(schoolId, userId, challenge) {
  return new Writer()
    .bytes(ctx('cairn/v1/account/challenge'))
    .id(schoolId, 'schoolId')
    .id(userId, 'userId')
    .bytes(challenge, 32, 'challenge')
    .finish();
}

/**
 * The sign-in proof: a signature over the server's fresh 32-byte challenge.
 * @param {Uint8Array} loginSecretKey 64 bytes
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {Uint8Array} challenge
 * @returns {Uint8Array}
 */
export function signChallenge(loginSecretKey, schoolId, userId, challenge) {
  return sign(loginSecretKey, challengeMessage(schoolId, userId, challenge));
}

/**
 * Check a sign-in proof; throws BadSignature if it fails.
 * @param {Uint8Array} loginPublicKey
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {Uint8Array} challenge
 * @param {Uint8Array} signature
 * @returns {true}
 */
export function verifyChallenge(loginPublicKey, schoolId, userId, challenge, signature) {
  let message;
  try {
    message = challengeMessage(schoolId, userId, challenge);
  } catch (e) {
    throw new Malformed(`verifying sign-in proof: ${/** @type {Error} */ (e).message}`);
  }
  if (!verify(loginPublicKey, message, signature)) {
    throw new BadSignature('verifying sign-in proof: signature does not match');
  }
  return true;
}
