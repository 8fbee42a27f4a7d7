// The signed directory (docs/PROTOCOL.md section 13), the twin of crypto/directory.py: which public keys
// belong to whom in one school, signed with the school signing key. That key is derived by KDF from the
// private half of a `signing:directory` reader key, so it reaches the safeguarding group as a grant.
// Each version names the previous version's hash, the key that signs it and the key that signs the next.

import { Reader, Writer } from './_codec.js';
import { H, KDF, SIGNATURE_BYTES, constantTimeEqual, ctx, sign, signKeyPair, verify } from './_primitives.js';
import { BadSignature, Malformed, NoKey, Rollback, UnsupportedVersion } from './errors.js';

export const DIRECTORY_VERSION = 0x01;
/** Bit i of an account's roles byte is ROLES[i]. */
export const ROLES = Object.freeze(['contributor', 'teacher', 'sen', 'safeguarding', 'admin']);
export const SIGNING_PURPOSE = 'signing:directory';
const MAX_TEXT = 1024;
const MAX_ITEMS = 1_000_000;
const SIG_CTX = 'cairn/v1/directory/sig';
const FP_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * @typedef {{id: Uint8Array, roles: string[], identityX25519Pk: Uint8Array, identityEd25519Pk: Uint8Array,
 *   left: boolean, login: string, displayName: string}} DirAccount
 * @typedef {{id: Uint8Array, userId: Uint8Array, publicKey: Uint8Array, revoked: boolean}} DirDevice
 * @typedef {{id: Uint8Array, version: number, purpose: string, publicKey: Uint8Array, current: boolean}} DirKey
 * @typedef {{id: Uint8Array, readerKeyId: Uint8Array}} DirPupil
 * @typedef {{id: Uint8Array, label: string, pupils: Uint8Array[], teachers: Uint8Array[]}} DirClass
 * @typedef {{accounts: DirAccount[], devices: DirDevice[], readerKeys: DirKey[], pupils: DirPupil[],
 *   classes: DirClass[]}} DirectoryContent
 * @typedef {{schoolId: Uint8Array, version: number, prevHash: Uint8Array, createdMs: number,
 *   signingPk: Uint8Array, nextSigningPk: Uint8Array, content: DirectoryContent, raw: Uint8Array,
 *   hash: Uint8Array}} SignedDirectory
 */

/**
 * The school signing key pair, derived from a `signing:directory` reader key's X25519 secret.
 * @param {Uint8Array} readerSk
 * @returns {{publicKey: Uint8Array, secretKey: Uint8Array}}
 */
export function directorySigningKey(readerSk) {
  return signKeyPair(KDF(readerSk, 'cairn/v1/directory/signing-key'));
}

/**
 * The hash a later version names as its previous.
 * @param {Uint8Array} data a whole signed version
 */
export function directoryHash(data) {
  return H('cairn/v1/directory/hash', data);
}

/**
 * What people compare: 120 bits of a hash of school and key, 24 characters in six groups of four.
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} signingPk
 * @returns {string}
 */
export function fingerprint(schoolId, signingPk) {
  const digest = H('cairn/v1/directory/fingerprint', new Writer().id(schoolId, 'school id').bytes(signingPk, 32, 'key').finish());
  let value = 0n;
  for (const byte of digest.subarray(0, 15)) value = (value << 8n) | BigInt(byte);
  let chars = '';
  for (let i = 0; i < 24; i++) chars += FP_ALPHABET[Number((value >> BigInt(5 * (23 - i))) & 31n)];
  return chars.match(/.{4}/g)?.join(' ') ?? chars;
}

/**
 * Compare byte strings (then numbers) for the canonical order.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
export function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * @template T
 * @param {T[]} items
 * @param {(x: T) => Uint8Array} id
 * @param {(x: T) => number} [tie]
 */
function sortedBy(items, id, tie = () => 0) {
  const out = [...items].sort((a, b) => compareBytes(id(a), id(b)) || tie(a) - tie(b));
  for (let i = 1; i < out.length; i++) {
    if (compareBytes(id(out[i - 1]), id(out[i])) === 0 && tie(out[i - 1]) === tie(out[i])) {
      throw new TypeError('A directory list holds a duplicate id.');
    }
  }
  return out;
}

/** @param {Writer} w @param {string} value @param {string} what */
function text(w, value, what) {
  const raw = new TextEncoder().encode(value);
  if (!raw.length || raw.length > MAX_TEXT) throw new TypeError(`${what} must be 1 to ${MAX_TEXT} bytes of UTF-8.`);
  w.u32(raw.length).bytes(raw);
}

/**
 * The content's canonical bytes; lists are sorted here, so they may come in any order.
 * @param {DirectoryContent} content
 * @returns {Uint8Array}
 */
export function encodeContent(content) {
  const w = new Writer();
  const accounts = sortedBy(content.accounts, (a) => a.id);
  w.u32(accounts.length);
  for (const a of accounts) {
    let bits = 0;
    for (const role of a.roles) {
      const i = ROLES.indexOf(role);
      if (i < 0) throw new TypeError(`Unknown role ${JSON.stringify(role)}.`);
      bits |= 1 << i;
    }
    w.id(a.id, 'account id').u8(bits).bytes(a.identityX25519Pk, 32, 'identity X25519 key')
      .bytes(a.identityEd25519Pk, 32, 'identity Ed25519 key').u8(a.left ? 1 : 0);
    text(w, a.login, 'A login');
    text(w, a.displayName, 'A display name');
  }
  const devices = sortedBy(content.devices, (d) => d.id);
  w.u32(devices.length);
  for (const d of devices) {
    w.id(d.id, 'device id').id(d.userId, 'device user').bytes(d.publicKey, 32, 'device key').u8(d.revoked ? 1 : 0);
  }
  const keys = sortedBy(content.readerKeys, (k) => k.id, (k) => k.version);
  w.u32(keys.length);
  for (const k of keys) {
    w.id(k.id, 'reader key id').u32(k.version);
    text(w, k.purpose, 'A purpose');
    w.bytes(k.publicKey, 32, 'reader key').u8(k.current ? 1 : 0);
  }
  const pupils = sortedBy(content.pupils, (x) => x.id);
  w.u32(pupils.length);
  for (const x of pupils) w.id(x.id, 'pupil id').id(x.readerKeyId, 'pupil reader key id');
  const classes = sortedBy(content.classes, (c) => c.id);
  w.u32(classes.length);
  for (const c of classes) {
    w.id(c.id, 'class id');
    text(w, c.label, 'A class label');
    for (const members of [c.pupils, c.teachers]) {
      const ordered = sortedBy(members, (m) => m);
      w.u32(ordered.length);
      for (const m of ordered) w.id(m, 'class member');
    }
  }
  return w.finish();
}

/**
 * Sign one directory version; `nextSigningPk` is the signing key's own public key unless this version
 * announces a rotation.
 * @param {{secretKey: Uint8Array, publicKey: Uint8Array}} signing
 * @param {{schoolId: Uint8Array, version: number, prevHash: Uint8Array, createdMs: number,
 *   nextSigningPk: Uint8Array, content: DirectoryContent}} fields
 * @returns {Uint8Array}
 */
export function signDirectory(signing, { schoolId, version, prevHash, createdMs, nextSigningPk, content }) {
  if (!Number.isInteger(version) || version < 1) throw new TypeError('Directory versions start at 1.');
  if ((version === 1) !== prevHash.every((x) => x === 0)) {
    throw new TypeError('Version 1, and only version 1, has an all-zero previous hash.');
  }
  const body = new Writer().u8(DIRECTORY_VERSION).id(schoolId, 'school id').u64(version)
    .bytes(prevHash, 32, 'previous hash').u64(createdMs).bytes(signing.publicKey, 32, 'signing key')
    .bytes(nextSigningPk, 32, 'next signing key').bytes(encodeContent(content)).finish();
  const signature = sign(signing.secretKey, new Writer().bytes(ctx(SIG_CTX)).bytes(body).finish());
  return new Writer().bytes(body).bytes(signature).finish();
}

/** @param {Reader} r @param {string} what @param {string} field */
function readText(r, what, field) {
  const n = r.u32(`${field} length`);
  if (n < 1 || n > MAX_TEXT) throw new Malformed(`${what}: ${field} is ${n} bytes; 1 to ${MAX_TEXT} are allowed`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(r.bytes(n, field));
  } catch (e) {
    if (e instanceof Malformed) throw e;
    throw new Malformed(`${what}: ${field} is not UTF-8`);
  }
}

/** @param {Reader} r @param {string} what @param {string} field */
function readFlag(r, what, field) {
  const v = r.u8(field);
  if (v > 1) throw new Malformed(`${what}: ${field} is neither 0 nor 1`);
  return v === 1;
}

/** @param {Reader} r @param {string} what @param {string} field @param {number} each */
function count(r, what, field, each) {
  const n = r.u32(`${field} count`);
  if (n > MAX_ITEMS || n * each > r.remaining) throw new Malformed(`${what}: ${field} count ${n} is more than the input holds`);
  return n;
}

/**
 * @template T
 * @param {T[]} items @param {(x: T) => Uint8Array} id @param {string} what @param {string} field
 * @param {(x: T) => number} [tie]
 */
function checkOrder(items, id, what, field, tie = () => 0) {
  for (let i = 1; i < items.length; i++) {
    const c = compareBytes(id(items[i - 1]), id(items[i])) || tie(items[i - 1]) - tie(items[i]);
    if (c >= 0) throw new Malformed(`${what}: ${field} are not sorted by id, or hold a duplicate`);
  }
}

/** @param {Reader} r @param {string} what @returns {DirectoryContent} */
function readContent(r, what) {
  /** @type {DirAccount[]} */
  const accounts = [];
  for (let n = count(r, what, 'accounts', 16 + 1 + 64 + 1 + 8); n > 0; n--) {
    const id = r.id('account id');
    const bits = r.u8('roles');
    if (bits >> ROLES.length) throw new Malformed(`${what}: an account has unknown role bits`);
    const identityX25519Pk = r.bytes(32, 'identity X25519 key');
    const identityEd25519Pk = r.bytes(32, 'identity Ed25519 key');
    const left = readFlag(r, what, 'left flag');
    const login = readText(r, what, 'login');
    const displayName = readText(r, what, 'display name');
    const roles = ROLES.filter((_, i) => (bits >> i) & 1);
    accounts.push({ id, roles, identityX25519Pk, identityEd25519Pk, left, login, displayName });
  }
  checkOrder(accounts, (a) => a.id, what, 'accounts');
  /** @type {DirDevice[]} */
  const devices = [];
  for (let n = count(r, what, 'devices', 16 + 16 + 32 + 1); n > 0; n--) {
    const id = r.id('device id');
    const userId = r.id('device user');
    const publicKey = r.bytes(32, 'device key');
    devices.push({ id, userId, publicKey, revoked: readFlag(r, what, 'revoked flag') });
  }
  checkOrder(devices, (d) => d.id, what, 'devices');
  /** @type {DirKey[]} */
  const readerKeys = [];
  for (let n = count(r, what, 'reader keys', 16 + 4 + 5 + 32 + 1); n > 0; n--) {
    const id = r.id('reader key id');
    const version = r.u32('reader key version');
    if (version === 0) throw new Malformed(`${what}: reader key versions start at 1`);
    const purpose = readText(r, what, 'purpose');
    const publicKey = r.bytes(32, 'reader key');
    readerKeys.push({ id, version, purpose, publicKey, current: readFlag(r, what, 'current flag') });
  }
  checkOrder(readerKeys, (k) => k.id, what, 'reader keys', (k) => k.version);
  /** @type {DirPupil[]} */
  const pupils = [];
  for (let n = count(r, what, 'pupils', 32); n > 0; n--) pupils.push({ id: r.id('pupil id'), readerKeyId: r.id('pupil reader key id') });
  checkOrder(pupils, (x) => x.id, what, 'pupils');
  /** @type {DirClass[]} */
  const classes = [];
  for (let n = count(r, what, 'classes', 16 + 5 + 8); n > 0; n--) {
    const id = r.id('class id');
    const label = readText(r, what, 'class label');
    /** @type {Uint8Array[][]} */
    const lists = [];
    for (const field of ['class pupils', 'class teachers']) {
      const list = [];
      for (let m = count(r, what, field, 16); m > 0; m--) list.push(r.id(field));
      checkOrder(list, (x) => x, what, field);
      lists.push(list);
    }
    classes.push({ id, label, pupils: lists[0], teachers: lists[1] });
  }
  checkOrder(classes, (c) => c.id, what, 'classes');
  return { accounts, devices, readerKeys, pupils, classes };
}

/**
 * Parse a signed version and check its signature against the key it names (a client must use
 * `verifyDirectory`, which also checks that key against its pin).
 * @param {Uint8Array} data
 * @param {string} [what]
 * @returns {SignedDirectory}
 */
export function readDirectory(data, what = 'reading directory') {
  const r = new Reader(data, what);
  const v = r.u8('version');
  if (v !== DIRECTORY_VERSION) throw new UnsupportedVersion(`${what}: unknown version ${v}`);
  const schoolId = r.id('school id');
  const version = r.u64('directory version');
  const prevHash = r.bytes(32, 'previous hash');
  const createdMs = r.u64('created');
  const signingPk = r.bytes(32, 'signing key');
  const nextSigningPk = r.bytes(32, 'next signing key');
  if (version === 0) throw new Malformed(`${what}: directory versions start at 1`);
  if ((version === 1) !== prevHash.every((x) => x === 0)) {
    throw new Malformed(`${what}: only version 1 has an all-zero previous hash`);
  }
  const content = readContent(r, what);
  const bodyEnd = r.pos;
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.done();
  if (!verify(signingPk, new Writer().bytes(ctx(SIG_CTX)).bytes(r.slice(0, bodyEnd)).finish(), signature)) {
    throw new BadSignature(`${what}: signature does not verify`);
  }
  const raw = Uint8Array.from(data);
  return { schoolId, version, prevHash, createdMs, signingPk, nextSigningPk, content, raw, hash: directoryHash(raw) };
}

/**
 * A client's check of a served version: it parses, is this school's, is signed by the pinned key (null
 * only at first sign-in: trust on first use), and moves forward from `previous`, chaining to it by hash
 * when it is the very next version. Python: `verify_directory`.
 * @param {Uint8Array} data
 * @param {Uint8Array} schoolId
 * @param {Uint8Array | null} pinnedPk
 * @param {SignedDirectory | null} [previous]
 * @returns {SignedDirectory}
 */
export function verifyDirectory(data, schoolId, pinnedPk, previous = null) {
  const what = 'verifying directory';
  const d = readDirectory(data, what);
  if (!constantTimeEqual(d.schoolId, schoolId)) throw new NoKey(`${what}: the directory belongs to another school`);
  if (pinnedPk && !constantTimeEqual(d.signingPk, pinnedPk)) {
    throw new BadSignature(`${what}: signed by a key this device has not pinned`);
  }
  if (previous) {
    if (d.version <= previous.version) {
      throw new Rollback(`${what}: version ${d.version} is not newer than version ${previous.version}`);
    }
    if (d.version === previous.version + 1 && !constantTimeEqual(d.prevHash, previous.hash)) {
      throw new Rollback(`${what}: version ${d.version} does not follow the version this device holds`);
    }
  }
  return d;
}
