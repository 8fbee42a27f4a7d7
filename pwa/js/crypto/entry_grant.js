// Entry key grants (docs/PROTOCOL.md section 5.1): one entry key version of one concern, wrapped to the
// identity X25519 key of a person named on it and signed by the naming keyholder's device. 221 bytes. The
// twin of crypto/entry_grant.py.

import { Reader, Writer, checkBytes } from './_codec.js';
import { SIGNATURE_BYTES, constantTimeEqual, ctx, sign, verify } from './_primitives.js';
import { BadSignature, Malformed, NoKey, UnsupportedVersion } from './errors.js';
import { WRAP_BYTES, unwrapKey, wrapKey } from './wrap.js';

export const ENTRY_GRANT_VERSION = 0x01;
export const ENTRY_GRANT_BYTES = 221;
/** version .. created_ms: the bytes the wrap's associated data repeats. */
const FIELDS_BYTES = 1 + 16 + 16 + 4 + 16 + 16 + 8;
const SIGNED_BYTES = FIELDS_BYTES + WRAP_BYTES;

/** @param {Uint8Array} fields */
function wrapAd(fields) {
  return new Writer().bytes(ctx('cairn/v1/entry-grant')).bytes(fields).finish();
}

/** @param {Uint8Array} signed */
function signedMessage(signed) {
  return new Writer().bytes(ctx('cairn/v1/entry-grant/sig')).bytes(signed).finish();
}

/**
 * @typedef {object} EntryGrantInput
 * @property {Uint8Array} granterDeviceSecretKey 64-byte Ed25519 secret key of the naming keyholder's device
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} concernId
 * @property {number} entryVersion u32, from 1
 * @property {Uint8Array} memberId the person named
 * @property {Uint8Array} granterDevice the granting device's id
 * @property {number} createdMs
 * @property {Uint8Array} entryKey the concern's 32-byte entry key of that version
 * @property {Uint8Array} memberX25519Pk the person's identity X25519 public key, from the signed directory
 */

/**
 * Seal one entry key version of a concern to a named person (Python: `make_entry_grant`).
 * @param {EntryGrantInput} input
 * @returns {Uint8Array} 221 bytes
 */
export function makeEntryGrant({
  granterDeviceSecretKey, schoolId, concernId, entryVersion, memberId, granterDevice, createdMs, entryKey,
  memberX25519Pk,
}) {
  if (!Number.isSafeInteger(entryVersion) || entryVersion < 1 || entryVersion > 0xffffffff) {
    throw new TypeError('makeEntryGrant: entryVersion must be an integer from 1 to 2^32 - 1.');
  }
  checkBytes(entryKey, 32, 'makeEntryGrant: entryKey');
  const fields = new Writer()
    .u8(ENTRY_GRANT_VERSION)
    .id(schoolId, 'schoolId')
    .id(concernId, 'concernId')
    .u32(entryVersion)
    .id(memberId, 'memberId')
    .id(granterDevice, 'granterDevice')
    .u64(createdMs)
    .finish();
  const wrap = wrapKey(memberX25519Pk, entryKey, wrapAd(fields));
  const signed = new Writer().bytes(fields).bytes(wrap).finish();
  return new Writer().bytes(signed).bytes(sign(granterDeviceSecretKey, signedMessage(signed))).finish();
}

/**
 * @typedef {object} EntryGrantInfo
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} concernId
 * @property {number} entryVersion
 * @property {Uint8Array} memberId
 * @property {Uint8Array} granterDevice
 * @property {number} createdMs
 */

/**
 * Read an entry key grant's fields without checking any key (Python: `read_entry_grant`): to find the
 * granter device's key to open it with.
 * @param {Uint8Array} grant
 * @returns {EntryGrantInfo}
 */
export function readEntryGrant(grant) {
  const what = 'reading entry key grant';
  const r = new Reader(grant, what);
  const version = r.u8('version');
  if (version !== ENTRY_GRANT_VERSION) throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  if (grant.length !== ENTRY_GRANT_BYTES) {
    throw new Malformed(`${what}: an entry key grant is ${ENTRY_GRANT_BYTES} bytes, not ${grant.length}`);
  }
  const info = {
    schoolId: r.id('school id'), concernId: r.id('concern id'), entryVersion: r.u32('entry key version'),
    memberId: r.id('member id'), granterDevice: r.id('granter device'), createdMs: r.u64('created'),
  };
  if (info.entryVersion < 1) throw new Malformed(`${what}: entry key versions start at 1`);
  return info;
}

/**
 * @typedef {object} EntryGrantOpener
 * @property {Uint8Array} memberX25519Sk the opener's identity X25519 secret key
 * @property {Uint8Array} schoolId the opener's school
 * @property {Uint8Array} memberId the opener's user id
 * @property {Uint8Array} granterDevicePk the granting device's Ed25519 key, from the signed directory
 */

/**
 * Open an entry key grant: the concern and version it names, and the entry key. That the granter device
 * is a keyholder's is the caller's check (review/grants.js).
 * @param {Uint8Array} grant
 * @param {EntryGrantOpener} opener
 * @returns {{info: EntryGrantInfo, entryKey: Uint8Array}}
 */
export function openEntryGrant(grant, { memberX25519Sk, schoolId, memberId, granterDevicePk }) {
  const what = 'opening entry key grant';
  const info = readEntryGrant(grant);
  const r = new Reader(grant, what);
  r.bytes(FIELDS_BYTES, 'fields');
  const wrap = r.bytes(WRAP_BYTES, 'wrap');
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.done();
  if (!verify(granterDevicePk, signedMessage(grant.subarray(0, SIGNED_BYTES)), signature)) {
    throw new BadSignature(`${what}: signature does not match the granter device`);
  }
  if (!constantTimeEqual(info.schoolId, schoolId) || !constantTimeEqual(info.memberId, memberId)) {
    throw new NoKey(`${what}: the grant is addressed to another person or school`);
  }
  const entryKey = unwrapKey(wrap, memberX25519Sk, wrapAd(grant.subarray(0, FIELDS_BYTES)));
  return { info, entryKey };
}
