// Grants (docs/PROTOCOL.md section 5): a reader key's private half, wrapped to a member's identity
// X25519 key and signed by the granting device. 221 bytes.

import { Reader, Writer, checkBytes } from './_codec.js';
import { SIGNATURE_BYTES, constantTimeEqual, ctx, sign, verify, x25519Base } from './_primitives.js';
import { BadSignature, DecryptionFailed, Malformed, NoKey, UnsupportedVersion } from './errors.js';
import { WRAP_BYTES, unwrapKey, wrapKey } from './wrap.js';
import { randomBytes } from './_random.js';

export const GRANT_VERSION = 0x01;
export const GRANT_BYTES = 221;
/** version .. created_ms: the bytes the wrap's associated data repeats. */
const FIELDS_BYTES = 1 + 16 + 16 + 4 + 16 + 16 + 8;
const SIGNED_BYTES = FIELDS_BYTES + WRAP_BYTES;

/**
 * A new reader key version's pair (Python: `BoxKeyPair.generate()`): 32 random bytes and their X25519 public key.
 * @returns {{secretKey: Uint8Array, publicKey: Uint8Array}}
 */
export function generateReaderKey() {
  const secretKey = randomBytes(32);
  return { secretKey, publicKey: x25519Base(secretKey) };
}

/** @param {Uint8Array} fields */
function wrapAd(fields) {
  return new Writer().bytes(ctx('cairn/v1/grant')).bytes(fields).finish();
}

/** @param {Uint8Array} signed */
function signedMessage(signed) {
  return new Writer().bytes(ctx('cairn/v1/grant/sig')).bytes(signed).finish();
}

/**
 * @typedef {object} GrantInput
 * @property {Uint8Array} granterDeviceSecretKey 64-byte Ed25519 secret key of the granting device
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} readerKeyId
 * @property {number} readerVersion u32, from 1
 * @property {Uint8Array} memberId the user the grant is for
 * @property {Uint8Array} granterDevice the granting device's id
 * @property {number} createdMs
 * @property {Uint8Array} readerSk 32-byte reader X25519 secret key
 * @property {Uint8Array} memberX25519Pk the member's identity X25519 public key
 */

/**
 * Grant a reader key to a member.
 * @param {GrantInput} input
 * @returns {Uint8Array} 221 bytes
 */
export function makeGrant({
  granterDeviceSecretKey, schoolId, readerKeyId, readerVersion, memberId, granterDevice, createdMs,
  readerSk, memberX25519Pk,
}) {
  if (!Number.isSafeInteger(readerVersion) || readerVersion < 1) {
    throw new TypeError('makeGrant: readerVersion must be an integer >= 1.');
  }
  checkBytes(readerSk, 32, 'makeGrant: readerSk');
  const fields = new Writer()
    .u8(GRANT_VERSION)
    .id(schoolId, 'schoolId')
    .id(readerKeyId, 'readerKeyId')
    .u32(readerVersion)
    .id(memberId, 'memberId')
    .id(granterDevice, 'granterDevice')
    .u64(createdMs)
    .finish();
  const wrap = wrapKey(memberX25519Pk, readerSk, wrapAd(fields));
  const signed = new Writer().bytes(fields).bytes(wrap).finish();
  return new Writer().bytes(signed).bytes(sign(granterDeviceSecretKey, signedMessage(signed))).finish();
}

/**
 * @typedef {object} GrantInfo
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} readerKeyId
 * @property {number} readerVersion
 * @property {Uint8Array} memberId
 * @property {Uint8Array} granterDevice
 * @property {number} createdMs
 */

/**
 * Read a grant's fields without checking any key (Python: `read_grant`): to find the granter device's key
 * and the reader key to open it with.
 * @param {Uint8Array} grant
 * @returns {GrantInfo}
 */
export function readGrant(grant) {
  const what = 'reading grant';
  const r = new Reader(grant, what);
  const version = r.u8('version');
  if (version !== GRANT_VERSION) throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  if (grant.length !== GRANT_BYTES) throw new Malformed(`${what}: a grant is ${GRANT_BYTES} bytes, not ${grant.length}`);
  const info = {
    schoolId: r.id('school id'), readerKeyId: r.id('reader key id'), readerVersion: r.u32('reader version'),
    memberId: r.id('member id'), granterDevice: r.id('granter device'), createdMs: r.u64('created'),
  };
  if (info.readerVersion < 1) throw new Malformed(`${what}: reader key versions start at 1`);
  return info;
}

/**
 * @typedef {object} GrantOpener
 * @property {Uint8Array} memberX25519Sk the opener's identity X25519 secret key
 * @property {Uint8Array} schoolId the opener's school
 * @property {Uint8Array} memberId the opener's user id
 * @property {Uint8Array} granterDevicePk the granting device's Ed25519 key, from the signed directory
 * @property {Uint8Array} readerPk the reader key's public key, from the signed directory
 */

/**
 * Open a grant: returns the reader key's 32-byte secret key.
 * @param {Uint8Array} grant
 * @param {GrantOpener} opener
 * @returns {Uint8Array}
 */
export function openGrant(grant, { memberX25519Sk, schoolId, memberId, granterDevicePk, readerPk }) {
  const what = 'opening grant';
  const r = new Reader(grant, what);
  const version = r.u8('version');
  if (version !== GRANT_VERSION) {
    throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  }
  if (grant.length !== GRANT_BYTES) {
    throw new Malformed(`${what}: expected ${GRANT_BYTES} bytes, got ${grant.length}`);
  }
  const grantSchool = r.id('school_id');
  r.id('reader_key_id');
  if (r.u32('reader_version') < 1) {
    throw new Malformed(`${what}: reader key versions start at 1`);
  }
  const grantMember = r.id('member_id');
  r.id('granter_device');
  r.u64('created_ms');
  const wrap = r.bytes(WRAP_BYTES, 'wrap');
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.done();
  if (!verify(granterDevicePk, signedMessage(grant.subarray(0, SIGNED_BYTES)), signature)) {
    throw new BadSignature(`${what}: signature does not match the granter device`);
  }
  if (!constantTimeEqual(grantSchool, schoolId) || !constantTimeEqual(grantMember, memberId)) {
    throw new NoKey(`${what}: the grant is addressed to another member or school`);
  }
  const readerSk = unwrapKey(wrap, memberX25519Sk, wrapAd(grant.subarray(0, FIELDS_BYTES)));
  if (!constantTimeEqual(x25519Base(readerSk), readerPk)) {
    readerSk.fill(0);
    throw new DecryptionFailed(`${what}: the granted key is not the listed reader key`);
  }
  return readerSk;
}
