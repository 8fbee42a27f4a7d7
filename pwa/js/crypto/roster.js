// The roster (docs/PROTOCOL.md section 11): a pupil's name and class sealed under a roster key, the
// twin of crypto/roster.py. A roster key is a reader key; its private half yields, by KDF, the key
// that seals entries and the key of the keyed hash that turns a UPN into a pseudonymous pupil id.

import { Reader, Writer } from './_codec.js';
import {
  KDF, NONCE_BYTES, SIGNATURE_BYTES, TAG_BYTES, aeadDecrypt, aeadEncrypt, constantTimeEqual, ctx, keyedHash, sign, verify,
} from './_primitives.js';
import { randomBytes } from './_random.js';
import { BadSignature, Malformed, NoKey, UnsupportedVersion } from './errors.js';

export const ROSTER_VERSION = 0x01;
export const ROSTER_PAD = 256;
const MAX_CONTENT = 16 * 1024;
const HEADER_BYTES = 1 + 16 + 16 + 16 + 4 + 16 + 24;

/**
 * @typedef {object} RosterEntry
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} pupilId
 * @property {Uint8Array} keyId
 * @property {number} keyVersion
 * @property {Uint8Array} authorDevice
 * @property {Uint8Array} content
 */

/** @param {number} n */
function padded(n) {
  return Math.max(ROSTER_PAD, Math.ceil(n / ROSTER_PAD) * ROSTER_PAD);
}

/**
 * The pseudonymous pupil id: a keyed hash of the UPN (trimmed, upper case), 16 bytes.
 * @param {Uint8Array} rosterSk the roster key's X25519 secret
 * @param {string} upn
 * @returns {Uint8Array}
 */
export function pupilIdFor(rosterSk, upn) {
  const cleaned = upn.normalize('NFKC').trim().toUpperCase();
  if (!cleaned || cleaned.length > 64 || !/^[\x00-\x7f]+$/.test(cleaned)) {
    throw new TypeError('A UPN is 1 to 64 ASCII characters.');
  }
  const upnKey = KDF(rosterSk, 'cairn/v1/roster/upn-key');
  return keyedHash(upnKey, 'cairn/v1/roster/upn', new TextEncoder().encode(cleaned)).subarray(0, 16);
}

/**
 * Seal one pupil's roster content and sign it with the author device's key.
 * @param {Uint8Array} rosterSk
 * @param {RosterEntry} entry
 * @param {Uint8Array} deviceSecretKey 64-byte libsodium form
 * @returns {Uint8Array}
 */
export function sealRosterEntry(rosterSk, entry, deviceSecretKey) {
  if (entry.content.length > MAX_CONTENT) throw new TypeError(`A roster entry holds at most ${MAX_CONTENT} bytes.`);
  const nonce = randomBytes(NONCE_BYTES);
  const header = new Writer()
    .u8(ROSTER_VERSION).id(entry.schoolId, 'schoolId').id(entry.pupilId, 'pupilId').id(entry.keyId, 'keyId')
    .u32(entry.keyVersion).id(entry.authorDevice, 'authorDevice').bytes(nonce, NONCE_BYTES, 'nonce')
    .finish();
  const inner = new Writer().u32(entry.content.length).bytes(entry.content).finish();
  const plain = new Uint8Array(padded(inner.length));
  plain.set(inner);
  const ad = new Writer().bytes(ctx('cairn/v1/roster/entry')).bytes(header).finish();
  const ct = aeadEncrypt(KDF(rosterSk, 'cairn/v1/roster/key'), nonce, ad, plain);
  const body = new Writer().bytes(header).u32(ct.length).bytes(ct).finish();
  const signature = sign(deviceSecretKey, new Writer().bytes(ctx('cairn/v1/roster/sig')).bytes(body).finish());
  return new Writer().bytes(body).bytes(signature).finish();
}

/**
 * The device an entry names as its author (unverified: only to look up the key to verify it with).
 * Python: `roster_entry_author`.
 * @param {Uint8Array} data
 * @returns {Uint8Array}
 */
export function rosterEntryAuthor(data) {
  const r = new Reader(data, 'reading roster entry');
  if (r.u8('version') !== ROSTER_VERSION) throw new UnsupportedVersion('reading roster entry: unknown version');
  r.bytes(16 * 3 + 4, 'header');
  return r.id('author device');
}

/**
 * Verify the author device's signature, then open with the roster key version the entry names.
 * @param {Uint8Array} data
 * @param {Map<string, Uint8Array>} keys roster secrets by `${hex(keyId)}:${version}`
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} authorDevicePk
 * @returns {RosterEntry}
 */
export function openRosterEntry(data, keys, schoolId, authorDevicePk) {
  const what = 'opening roster entry';
  const r = new Reader(data, what);
  const version = r.u8('version');
  if (version !== ROSTER_VERSION) throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  const school = r.id('school id');
  const pupilId = r.id('pupil id');
  const keyId = r.id('roster key id');
  const keyVersion = r.u32('roster key version');
  const authorDevice = r.id('author device');
  const nonce = r.bytes(NONCE_BYTES, 'nonce');
  const ctLen = r.u32('ciphertext length');
  if (ctLen < ROSTER_PAD + TAG_BYTES || (ctLen - TAG_BYTES) % ROSTER_PAD !== 0) {
    throw new Malformed(`${what}: ciphertext length ${ctLen} is not 16 plus a multiple of ${ROSTER_PAD}`);
  }
  const ct = r.bytes(ctLen, 'ciphertext');
  const bodyEnd = data.length - r.remaining;
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.done();
  const body = data.subarray(0, bodyEnd);
  if (!verify(authorDevicePk, new Writer().bytes(ctx('cairn/v1/roster/sig')).bytes(body).finish(), signature)) {
    throw new BadSignature(`${what}: signature does not verify`);
  }
  if (!constantTimeEqual(school, schoolId)) throw new NoKey(`${what}: the entry belongs to another school`);
  const rosterSk = keys.get(`${hexOf(keyId)}:${keyVersion}`);
  if (!rosterSk) throw new NoKey(`${what}: this reader holds no such roster key version`);
  const ad = new Writer().bytes(ctx('cairn/v1/roster/entry')).bytes(body.subarray(0, HEADER_BYTES)).finish();
  const plain = aeadDecrypt(KDF(rosterSk, 'cairn/v1/roster/key'), nonce, ad, ct, what);
  const inner = new Reader(plain, what);
  const length = inner.u32('content length');
  if (length > plain.length - 4 || padded(4 + length) !== plain.length) {
    throw new Malformed(`${what}: content length does not match the padded size`);
  }
  const content = inner.bytes(length, 'content');
  if (plain.subarray(4 + length).some((x) => x !== 0)) throw new Malformed(`${what}: padding is not zero`);
  return { schoolId: school, pupilId, keyId, keyVersion, authorDevice, content };
}

/** @param {Uint8Array} bytes */
export function hexOf(bytes) {
  return Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join('');
}
