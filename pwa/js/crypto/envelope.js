// Envelopes (docs/PROTOCOL.md section 6): one event of one concern, encrypted under the concern's
// entry key, the key wrapped to each recipient, the whole signed by the author device.

import { Reader, Writer, checkBytes } from './_codec.js';
import {
  H, KEY_BYTES, NONCE_BYTES, SIGNATURE_BYTES, TAG_BYTES, aeadDecrypt, aeadEncrypt, constantTimeEqual,
  ctx, keyedHash, sign, verify as verifySignature,
} from './_primitives.js';
import { randomBytes } from './_random.js';
import { BadSignature, DecryptionFailed, Malformed, NoKey, UnsupportedVersion } from './errors.js';
import { WRAP_BYTES, unwrapKey, wrapKey } from './wrap.js';

export const ENVELOPE_VERSION = 0x01;
/** A concern event: the only kind in v1. */
export const KIND_CONCERN_EVENT = 0x01;
/** A recipient that is a reader key (id = reader key id). */
export const RECIPIENT_READER_KEY = 0x01;
/** A recipient that is a named person's identity key (id = user id). */
export const RECIPIENT_PERSON = 0x02;
export const MAX_PUPILS = 32;
export const MAX_RECIPIENTS = 32;
export const MAX_PADDED_SIZE = 1048576;
export const PLAINTEXT_OVERHEAD = 37;
export const MAX_CONTENT_BYTES = MAX_PADDED_SIZE - PLAINTEXT_OVERHEAD;
const MIN_PADDED_SIZE = 256;
const SMALL_LIMIT = 65536;
const COMMITMENT_BYTES = 32;
const HASH_BYTES = 32;

/**
 * The padded size of a plaintext holding `contentLength` bytes of content.
 * @param {number} contentLength
 * @returns {number}
 */
export function paddedSize(contentLength) {
  if (!Number.isSafeInteger(contentLength) || contentLength < 0 || contentLength > MAX_CONTENT_BYTES) {
    throw new RangeError(`paddedSize: content length must be an integer from 0 to ${MAX_CONTENT_BYTES}, got ${String(contentLength)}.`);
  }
  const n = PLAINTEXT_OVERHEAD + contentLength;
  if (n <= SMALL_LIMIT) {
    let size = MIN_PADDED_SIZE;
    while (size < n) size *= 2;
    return size;
  }
  return Math.ceil(n / SMALL_LIMIT) * SMALL_LIMIT;
}

/**
 * Whether `size` is a padded size some content length produces.
 * @param {number} size
 */
function isPaddedSize(size) {
  if (size < MIN_PADDED_SIZE || size > MAX_PADDED_SIZE) return false;
  if (size <= SMALL_LIMIT) return (size & (size - 1)) === 0;
  return size % SMALL_LIMIT === 0;
}

/**
 * A fresh entry key: 32 random bytes, for one concern only.
 * @returns {Uint8Array}
 */
export function generateEntryKey() {
  return randomBytes(KEY_BYTES);
}

/**
 * @typedef {object} RecipientRef
 * @property {number} kind RECIPIENT_READER_KEY or RECIPIENT_PERSON
 * @property {Uint8Array} id
 * @property {number} version u32
 */

/**
 * @typedef {object} Header
 * @property {number} version
 * @property {number} kind
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} envelopeId
 * @property {Uint8Array} concernId
 * @property {Uint8Array} authorDevice
 * @property {number} counter
 * @property {Uint8Array} prevHash
 * @property {number} deviceTimeMs
 * @property {number} entryKeyVersion
 * @property {Uint8Array} nonce
 * @property {Uint8Array[]} pupilIds
 * @property {RecipientRef[]} recipients
 */

/**
 * @typedef {Header & {
 *   headerBytes: Uint8Array, commitment: Uint8Array, wraps: Uint8Array[], ct: Uint8Array,
 *   signature: Uint8Array
 * }} ParsedEnvelope
 */

/** @param {RecipientRef} r */
function recipientKey(r) {
  return `${r.kind}:${Array.from(r.id, (b) => b.toString(16).padStart(2, '0')).join('')}:${r.version}`;
}

/**
 * `ad_i`: binds a wrap to its concern, entry key version and recipient.
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} concernId
 * @param {number} entryKeyVersion
 * @param {RecipientRef} recipient
 */
export function wrapAssociatedData(schoolId, concernId, entryKeyVersion, recipient) {
  return new Writer()
    .bytes(ctx('cairn/v1/envelope/wrap'))
    .id(schoolId, 'schoolId')
    .id(concernId, 'concernId')
    .u32(entryKeyVersion)
    .u8(recipient.kind)
    .id(recipient.id, 'recipient id')
    .u32(recipient.version)
    .finish();
}

/**
 * @param {Uint8Array} entryKey
 * @param {Uint8Array} headerBytes
 */
function commitmentOf(entryKey, headerBytes) {
  return keyedHash(entryKey, 'cairn/v1/envelope/commit', headerBytes);
}

/**
 * @param {Uint8Array} headerBytes
 * @param {Uint8Array} commitment
 */
function bodyAd(headerBytes, commitment) {
  return new Writer().bytes(ctx('cairn/v1/envelope/body')).bytes(headerBytes).bytes(commitment).finish();
}

/**
 * @param {Uint8Array} headerBytes
 * @param {Uint8Array} commitment
 * @param {Uint8Array[]} wraps
 * @param {Uint8Array} ct
 */
function signedMessage(headerBytes, commitment, wraps, ct) {
  const w = new Writer().bytes(ctx('cairn/v1/envelope/sig')).bytes(headerBytes).bytes(commitment);
  for (const wrap of wraps) w.bytes(wrap);
  return w.bytes(H('cairn/v1/envelope/ct', ct)).finish();
}

/**
 * @param {Header} h
 * @returns {Uint8Array}
 */
function encodeHeader(h) {
  const w = new Writer()
    .u8(h.version)
    .u8(h.kind)
    .id(h.schoolId, 'schoolId')
    .id(h.envelopeId, 'envelopeId')
    .id(h.concernId, 'concernId')
    .id(h.authorDevice, 'authorDevice')
    .u64(h.counter)
    .bytes(h.prevHash, HASH_BYTES, 'prevHash')
    .u64(h.deviceTimeMs)
    .u32(h.entryKeyVersion)
    .bytes(h.nonce, NONCE_BYTES, 'nonce')
    .u8(h.pupilIds.length);
  for (const p of h.pupilIds) w.id(p, 'a pupil id');
  w.u8(h.recipients.length);
  for (const r of h.recipients) w.u8(r.kind).id(r.id, 'a recipient id').u32(r.version);
  return w.finish();
}

/**
 * @typedef {RecipientRef & {pk: Uint8Array}} Recipient
 */

/**
 * @typedef {object} SealInput
 * @property {number} kind KIND_CONCERN_EVENT
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} envelopeId UUIDv7, made on the device
 * @property {Uint8Array} concernId
 * @property {Uint8Array} authorDevice
 * @property {number} counter per device, from 1
 * @property {Uint8Array} prevHash 32 bytes; zero for the device's first envelope
 * @property {number} deviceTimeMs
 * @property {number} entryKeyVersion >= 1
 * @property {Uint8Array[]} pupilIds 0 to 32
 * @property {Recipient[]} recipients 1 to 32, distinct
 * @property {Uint8Array} entryKey 32 bytes
 * @property {Uint8Array} content
 * @property {Uint8Array} deviceSecretKey 64-byte Ed25519 secret key of the author device
 */

/**
 * Seal one event. Randomness is drawn in this order: the body nonce, then one ephemeral secret per
 * recipient, in recipient order.
 * @param {SealInput} input
 * @returns {Uint8Array}
 */
export function seal({
  kind, schoolId, envelopeId, concernId, authorDevice, counter, prevHash, deviceTimeMs,
  entryKeyVersion, pupilIds, recipients, entryKey, content, deviceSecretKey,
}) {
  if (kind !== KIND_CONCERN_EVENT) {
    throw new TypeError(`seal: kind must be KIND_CONCERN_EVENT (1), got ${String(kind)}.`);
  }
  if (!Number.isSafeInteger(counter) || counter < 1) {
    throw new TypeError('seal: counter must be an integer >= 1.');
  }
  if (!Number.isSafeInteger(entryKeyVersion) || entryKeyVersion < 1) {
    throw new TypeError('seal: entryKeyVersion must be an integer >= 1.');
  }
  if (!Array.isArray(pupilIds) || pupilIds.length > MAX_PUPILS) {
    throw new TypeError(`seal: pupilIds must be a list of at most ${MAX_PUPILS} ids.`);
  }
  if (!Array.isArray(recipients) || recipients.length < 1 || recipients.length > MAX_RECIPIENTS) {
    throw new TypeError(`seal: recipients must be a list of 1 to ${MAX_RECIPIENTS} recipients.`);
  }
  const seen = new Set();
  for (const r of recipients) {
    if (r.kind !== RECIPIENT_READER_KEY && r.kind !== RECIPIENT_PERSON) {
      throw new TypeError(`seal: a recipient kind must be 1 (reader key) or 2 (named person), got ${String(r.kind)}.`);
    }
    checkBytes(r.pk, 32, 'seal: a recipient public key');
    const key = recipientKey(r);
    if (seen.has(key)) throw new TypeError('seal: recipients must be distinct.');
    seen.add(key);
  }
  checkBytes(entryKey, KEY_BYTES, 'seal: entryKey');
  if (!(content instanceof Uint8Array)) throw new TypeError('seal: content must be a Uint8Array.');
  const size = paddedSize(content.length);

  const nonce = randomBytes(NONCE_BYTES);
  const headerBytes = encodeHeader({
    version: ENVELOPE_VERSION, kind, schoolId, envelopeId, concernId, authorDevice, counter, prevHash,
    deviceTimeMs, entryKeyVersion, nonce, pupilIds, recipients,
  });
  const commitment = commitmentOf(entryKey, headerBytes);
  const wraps = recipients.map((r) =>
    wrapKey(r.pk, entryKey, wrapAssociatedData(schoolId, concernId, entryKeyVersion, r)));

  const plaintext = new Uint8Array(size);
  plaintext.set(new Writer().u8(ENVELOPE_VERSION).id(authorDevice).id(envelopeId).u32(content.length).bytes(content).finish());
  const ct = aeadEncrypt(entryKey, nonce, bodyAd(headerBytes, commitment), plaintext);
  plaintext.fill(0);

  const signature = sign(deviceSecretKey, signedMessage(headerBytes, commitment, wraps, ct));
  const w = new Writer().bytes(headerBytes).bytes(commitment);
  for (const wrap of wraps) w.bytes(wrap);
  return w.u32(ct.length).bytes(ct).bytes(signature).finish();
}

/**
 * Parse an envelope without any key (step 1 of opening).
 * @param {Uint8Array} bytes
 * @returns {ParsedEnvelope}
 */
export function parse(bytes) {
  const what = 'parsing envelope';
  const r = new Reader(bytes, what);
  const version = r.u8('version');
  if (version !== ENVELOPE_VERSION) {
    throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  }
  const kind = r.u8('kind');
  if (kind !== KIND_CONCERN_EVENT) {
    throw new UnsupportedVersion(`${what}: unknown kind ${kind}`);
  }
  const schoolId = r.id('school_id');
  const envelopeId = r.id('envelope_id');
  const concernId = r.id('concern_id');
  const authorDevice = r.id('author_device');
  const counter = r.u64('counter');
  if (counter < 1) throw new Malformed(`${what}: counter must be at least 1`);
  const prevHash = r.bytes(HASH_BYTES, 'prev_hash');
  const deviceTimeMs = r.u64('device_time_ms');
  const entryKeyVersion = r.u32('entry_key_version');
  if (entryKeyVersion < 1) throw new Malformed(`${what}: entry_key_version must be at least 1`);
  const nonce = r.bytes(NONCE_BYTES, 'nonce');
  const pupilCount = r.u8('pupil_count');
  if (pupilCount > MAX_PUPILS) throw new Malformed(`${what}: pupil_count ${pupilCount} is above ${MAX_PUPILS}`);
  /** @type {Uint8Array[]} */
  const pupilIds = [];
  for (let i = 0; i < pupilCount; i++) pupilIds.push(r.id('pupil_ids'));
  const recipientCount = r.u8('recipient_count');
  if (recipientCount < 1 || recipientCount > MAX_RECIPIENTS) {
    throw new Malformed(`${what}: recipient_count ${recipientCount} is not from 1 to ${MAX_RECIPIENTS}`);
  }
  /** @type {RecipientRef[]} */
  const recipients = [];
  const seen = new Set();
  for (let i = 0; i < recipientCount; i++) {
    const rk = r.u8('a recipient kind');
    if (rk !== RECIPIENT_READER_KEY && rk !== RECIPIENT_PERSON) {
      throw new Malformed(`${what}: unknown recipient kind ${rk}`);
    }
    const recipient = { kind: rk, id: r.id('a recipient id'), version: r.u32('a recipient version') };
    const key = recipientKey(recipient);
    if (seen.has(key)) throw new Malformed(`${what}: recipients are not distinct`);
    seen.add(key);
    recipients.push(recipient);
  }
  const headerBytes = r.slice(0, r.pos);
  const commitment = r.bytes(COMMITMENT_BYTES, 'commitment');
  /** @type {Uint8Array[]} */
  const wraps = [];
  for (let i = 0; i < recipientCount; i++) wraps.push(r.bytes(WRAP_BYTES, 'wraps'));
  const ctLen = r.u32('ct_len');
  if (!isPaddedSize(ctLen - TAG_BYTES)) {
    throw new Malformed(`${what}: ct_len ${ctLen} is not 16 plus a padded size`);
  }
  const ct = r.bytes(ctLen, 'ct');
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.done();
  return {
    version, kind, schoolId, envelopeId, concernId, authorDevice, counter, prevHash, deviceTimeMs,
    entryKeyVersion, nonce, pupilIds, recipients, headerBytes, commitment, wraps, ct, signature,
  };
}

/**
 * Parse and verify the author device's signature (the server's steps 1 and 2).
 * @param {Uint8Array} bytes
 * @param {Uint8Array} authorDevicePk 32-byte Ed25519 key of the author device, from the signed directory
 * @returns {ParsedEnvelope}
 */
export function verify(bytes, authorDevicePk) {
  const env = parse(bytes);
  if (!verifySignature(authorDevicePk, signedMessage(env.headerBytes, env.commitment, env.wraps, env.ct), env.signature)) {
    throw new BadSignature('verifying envelope: signature does not match the author device');
  }
  return env;
}

/**
 * @typedef {RecipientRef & {sk: Uint8Array}} ReaderKey
 */

/**
 * @param {Uint8Array} plaintext
 * @param {ParsedEnvelope} env
 * @returns {Uint8Array}
 */
function parsePlaintext(plaintext, env) {
  const what = 'opening envelope: parsing plaintext';
  const r = new Reader(plaintext, what);
  const version = r.u8('version');
  if (version !== ENVELOPE_VERSION) {
    throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  }
  const authorDevice = r.id('author_device');
  const envelopeId = r.id('envelope_id');
  const contentLen = r.u32('content_len');
  const content = r.bytes(contentLen, 'content');
  if (contentLen > MAX_CONTENT_BYTES || paddedSize(contentLen) !== plaintext.length) {
    throw new Malformed(`${what}: padded size does not match content_len`);
  }
  const padding = r.bytes(r.remaining, 'padding');
  r.done();
  let acc = 0;
  for (const b of padding) acc |= b;
  if (acc !== 0) throw new Malformed(`${what}: padding is not zero`);
  if (!constantTimeEqual(authorDevice, env.authorDevice) || !constantTimeEqual(envelopeId, env.envelopeId)) {
    throw new BadSignature('opening envelope: the signer is not the author named inside the plaintext');
  }
  return content;
}

/**
 * @typedef {object} Opened
 * @property {ParsedEnvelope} header
 * @property {Uint8Array} content
 * @property {Uint8Array} entryKey
 */

/**
 * An entry key this reader holds from an entry key grant (docs/PROTOCOL.md 5.1): version `version` of
 * concern `concernId`.
 * @typedef {{concernId: Uint8Array, version: number, key: Uint8Array}} EntryKey
 */

/**
 * Open an envelope (docs/PROTOCOL.md 6.4): nothing is released unless every step passes. A recipient's
 * wrap is used first; failing that, an entry key granted for the envelope's concern and entry key version.
 * @param {Uint8Array} bytes
 * @param {{authorDevicePk: Uint8Array, readerKeys: ReaderKey[], entryKeys?: EntryKey[]}} keys
 * @returns {Opened}
 */
export function open(bytes, { authorDevicePk, readerKeys, entryKeys = [] }) {
  const what = 'opening envelope';
  const env = verify(bytes, authorDevicePk);
  /** @type {Map<string, Uint8Array>} */
  const held = new Map();
  for (const k of readerKeys) held.set(recipientKey(k), k.sk);
  const index = env.recipients.findIndex((r) => held.has(recipientKey(r)));
  const granted = entryKeys.find((k) => k.version === env.entryKeyVersion && constantTimeEqual(k.concernId, env.concernId));
  /** @type {Uint8Array} */
  let entryKey;
  if (index >= 0) {
    const recipient = env.recipients[index];
    const sk = /** @type {Uint8Array} */ (held.get(recipientKey(recipient)));
    entryKey = unwrapKey(
      env.wraps[index], sk, wrapAssociatedData(env.schoolId, env.concernId, env.entryKeyVersion, recipient));
  } else if (granted) {
    entryKey = granted.key.slice(); // not a wrap of this envelope: the commitment below proves it is its key
  } else {
    throw new NoKey(`${what}: none of the reader's keys is a recipient`);
  }
  if (!constantTimeEqual(commitmentOf(entryKey, env.headerBytes), env.commitment)) {
    entryKey.fill(0);
    throw new DecryptionFailed(`${what}: key commitment does not match`);
  }
  const plaintext = aeadDecrypt(entryKey, env.nonce, bodyAd(env.headerBytes, env.commitment), env.ct, what);
  const content = parsePlaintext(plaintext, env);
  plaintext.fill(0);
  return { header: env, content, entryKey };
}

/**
 * `H("cairn/v1/envelope/hash", envelope)`: what the author's next envelope puts in prev_hash.
 * @param {Uint8Array} bytes
 * @returns {Uint8Array}
 */
export function envelopeHash(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('envelopeHash: bytes must be a Uint8Array.');
  return H('cairn/v1/envelope/hash', bytes);
}
