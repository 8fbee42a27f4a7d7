// The signed directory (docs/PROTOCOL.md section 13), the twin of crypto/directory.py: which public keys
// belong to whom in one school, and who approved each widening. A version lists the school's accounts
// (roles, identity keys and the binding between them, left flag), devices (key, certificate, revoked flag),
// reader key versions (purpose, public key, current flag), each pupil's reader key, the classes, and the
// approvals (approval.js) that cover what this version adds to the one before it. It is signed with the
// school signing key, derived by KDF from the private half of a `signing:directory` reader key, so it
// reaches the safeguarding group as a grant.
//
// Three layers of checks, each a pure function:
// - `readDirectory`: the bytes parse, in their one canonical encoding, hold together (every device's
//   account is listed, each group purpose has one key id, versions count up from 1, ...) and carry the
//   signature of the key they name;
// - `checkContent`: every identity binding and device certificate verifies, so nobody holding only the
//   signing key can pair an account with keys of their own;
// - `checkTransition`: from the version a device holds to the next, nothing listed vanishes or changes,
//   pinned key ids stay, and every widening is covered by an approval signed by a keyholder's device.
// `verifyDirectory` (a client's check of a served version) runs all three against the pinned key.

import { Reader, Writer, compareBytes } from './_codec.js';
import { H, KDF, SIGNATURE_BYTES, constantTimeEqual, ctx, sign, signKeyPair, verify } from './_primitives.js';
import { ROLES, itemHex, readApproval, sortItems, verifyApproval } from './approval.js';
import { makeDeviceCertBytes, verifyDeviceCert } from './device.js';
import { BadSignature, CryptoError, Malformed, NoKey, Rollback, Unapproved, UnsupportedVersion } from './errors.js';
import { verifyIdentityBinding } from './identity.js';

export { ROLES, compareBytes };
export const DIRECTORY_VERSION = 0x02;
export const SIGNING_PURPOSE = 'signing:directory';
export const PUPIL_PURPOSE = 'pupil';
const MAX_TEXT = 1024;
const MAX_ITEMS = 1_000_000;
const MAX_APPROVAL_BYTES = 8 * 1024 * 1024;
const SIG_CTX = 'cairn/v1/directory/sig';
const FP_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * @typedef {import('./approval.js').Item} Item
 * @typedef {import('./approval.js').Approval} Approval
 * @typedef {{id: Uint8Array, roles: string[], identityX25519Pk: Uint8Array, identityEd25519Pk: Uint8Array,
 *   binding: Uint8Array, left: boolean, login: string, displayName: string}} DirAccount
 * @typedef {{id: Uint8Array, userId: Uint8Array, publicKey: Uint8Array, certifiedMs: number,
 *   certSignature: Uint8Array, revoked: boolean}} DirDevice
 * @typedef {{id: Uint8Array, version: number, purpose: string, publicKey: Uint8Array, current: boolean}} DirKey
 * @typedef {{id: Uint8Array, readerKeyId: Uint8Array}} DirPupil
 * @typedef {{id: Uint8Array, label: string, pupils: Uint8Array[], teachers: Uint8Array[]}} DirClass
 * @typedef {{accounts: DirAccount[], devices: DirDevice[], readerKeys: DirKey[], pupils: DirPupil[],
 *   classes: DirClass[]}} DirectoryContent
 * @typedef {{schoolId: Uint8Array, version: number, prevHash: Uint8Array, createdMs: number,
 *   signingPk: Uint8Array, nextSigningPk: Uint8Array, content: DirectoryContent, approvals: Approval[],
 *   raw: Uint8Array, hash: Uint8Array, contentBytes: Uint8Array}} SignedDirectory
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

/** @param {Uint8Array} b */
const hexOf = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

// --- canonical bytes ------------------------------------------------------------------------------

/**
 * @template T
 * @param {T[]} items
 * @param {(x: T) => Uint8Array} id
 * @param {string} what
 * @param {(x: T) => number} [tie]
 */
function sortedBy(items, id, what, tie = () => 0) {
  const out = [...items].sort((a, b) => compareBytes(id(a), id(b)) || tie(a) - tie(b));
  for (let i = 1; i < out.length; i++) {
    if (compareBytes(id(out[i - 1]), id(out[i])) === 0 && tie(out[i - 1]) === tie(out[i])) {
      throw new TypeError(`${what} must be sorted by id, without duplicates.`);
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
 * Python: `encode_content`.
 * @param {DirectoryContent} content
 * @returns {Uint8Array}
 */
export function encodeContent(content) {
  const w = new Writer();
  const accounts = sortedBy(content.accounts, (a) => a.id, 'Accounts');
  w.u32(accounts.length);
  for (const a of accounts) {
    let bits = 0;
    for (const role of a.roles) {
      const i = ROLES.indexOf(role);
      if (i < 0) throw new TypeError(`Unknown role ${JSON.stringify(role)}.`);
      bits |= 1 << i;
    }
    w.id(a.id, 'account id').u8(bits).bytes(a.identityX25519Pk, 32, 'identity X25519 key')
      .bytes(a.identityEd25519Pk, 32, 'identity Ed25519 key').bytes(a.binding, 64, 'identity binding').u8(a.left ? 1 : 0);
    text(w, a.login, 'A login');
    text(w, a.displayName, 'A display name');
  }
  const devices = sortedBy(content.devices, (d) => d.id, 'Devices');
  w.u32(devices.length);
  for (const d of devices) {
    w.id(d.id, 'device id').id(d.userId, 'device user').bytes(d.publicKey, 32, 'device key').u64(d.certifiedMs)
      .bytes(d.certSignature, 64, 'certificate signature').u8(d.revoked ? 1 : 0);
  }
  const keys = sortedBy(content.readerKeys, (k) => k.id, 'Reader keys', (k) => k.version);
  w.u32(keys.length);
  for (const k of keys) {
    if (!Number.isInteger(k.version) || k.version < 1 || k.version > 0xffffffff) throw new TypeError('A reader key version is 1 to 2^32 - 1.');
    w.id(k.id, 'reader key id').u32(k.version);
    text(w, k.purpose, 'A purpose');
    w.bytes(k.publicKey, 32, 'reader key').u8(k.current ? 1 : 0);
  }
  const pupils = sortedBy(content.pupils, (x) => x.id, 'Pupils');
  w.u32(pupils.length);
  for (const x of pupils) w.id(x.id, 'pupil id').id(x.readerKeyId, 'pupil reader key id');
  const classes = sortedBy(content.classes, (c) => c.id, 'Classes');
  w.u32(classes.length);
  for (const c of classes) {
    w.id(c.id, 'class id');
    text(w, c.label, 'A class label');
    for (const [members, what] of /** @type {[Uint8Array[], string][]} */ ([[c.pupils, "A class's pupils"], [c.teachers, "A class's teachers"]])) {
      const ordered = sortedBy(members, (m) => m, what);
      w.u32(ordered.length);
      for (const m of ordered) w.id(m, 'class member');
    }
  }
  return w.finish();
}

/**
 * The approvals' bytes: each parsed (so only approvals are carried), sorted by approval id.
 * @param {Iterable<Uint8Array>} approvals
 */
function encodeApprovals(approvals) {
  const parsed = sortedBy([...approvals].map((raw) => ({ id: readApproval(raw).approval.approvalId, raw })), (a) => a.id, 'Approvals');
  const w = new Writer().u32(parsed.length);
  for (const { raw } of parsed) w.u32(raw.length).bytes(raw);
  return w.finish();
}

/**
 * Sign one directory version carrying `approvals` (signed approvals, approval.js); `nextSigningPk` is the
 * signing key's own public key unless this version announces a new school signing key.
 * Python: `sign_directory`.
 * @param {{secretKey: Uint8Array, publicKey: Uint8Array}} signing
 * @param {{schoolId: Uint8Array, version: number, prevHash: Uint8Array, createdMs: number,
 *   nextSigningPk: Uint8Array, content: DirectoryContent, approvals?: Iterable<Uint8Array>}} fields
 * @returns {Uint8Array}
 */
export function signDirectory(signing, { schoolId, version, prevHash, createdMs, nextSigningPk, content, approvals = [] }) {
  if (!Number.isInteger(version) || version < 1) throw new TypeError('Directory versions start at 1.');
  if ((version === 1) !== prevHash.every((x) => x === 0)) {
    throw new TypeError('Version 1, and only version 1, has an all-zero previous hash.');
  }
  const body = new Writer().u8(DIRECTORY_VERSION).id(schoolId, 'school id').u64(version)
    .bytes(prevHash, 32, 'previous hash').u64(createdMs).bytes(signing.publicKey, 32, 'signing key')
    .bytes(nextSigningPk, 32, 'next signing key').bytes(encodeContent(content)).bytes(encodeApprovals(approvals)).finish();
  const signature = sign(signing.secretKey, new Writer().bytes(ctx(SIG_CTX)).bytes(body).finish());
  return new Writer().bytes(body).bytes(signature).finish();
}

// --- reading ----------------------------------------------------------------------------------------

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
  for (let n = count(r, what, 'accounts', 16 + 1 + 128 + 1 + 8); n > 0; n--) {
    const id = r.id('account id');
    const bits = r.u8('roles');
    if (bits >> ROLES.length) throw new Malformed(`${what}: an account has unknown role bits`);
    const identityX25519Pk = r.bytes(32, 'identity X25519 key');
    const identityEd25519Pk = r.bytes(32, 'identity Ed25519 key');
    const binding = r.bytes(64, 'binding');
    const left = readFlag(r, what, 'left flag');
    const login = readText(r, what, 'login');
    const displayName = readText(r, what, 'display name');
    const roles = ROLES.filter((_, i) => (bits >> i) & 1);
    accounts.push({ id, roles, identityX25519Pk, identityEd25519Pk, binding, left, login, displayName });
  }
  checkOrder(accounts, (a) => a.id, what, 'accounts');
  /** @type {DirDevice[]} */
  const devices = [];
  for (let n = count(r, what, 'devices', 16 + 16 + 32 + 8 + 64 + 1); n > 0; n--) {
    const id = r.id('device id');
    const userId = r.id('device user');
    const publicKey = r.bytes(32, 'device key');
    const certifiedMs = r.u64('certified');
    const certSignature = r.bytes(64, 'certificate signature');
    devices.push({ id, userId, publicKey, certifiedMs, certSignature, revoked: readFlag(r, what, 'revoked') });
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
    for (const [field, named] of [['class pupils', "a class's pupils"], ['class teachers', "a class's teachers"]]) {
      const list = [];
      for (let m = count(r, what, field, 16); m > 0; m--) list.push(r.id(field.slice(0, -1)));
      lists.push(list);
      checkOrder(list, (x) => x, what, named);
    }
    classes.push({ id, label, pupils: lists[0], teachers: lists[1] });
  }
  checkOrder(classes, (c) => c.id, what, 'classes');
  return { accounts, devices, readerKeys, pupils, classes };
}

/**
 * The rules one version must meet on its own, beyond its encoding (PROTOCOL 13.1); Malformed otherwise.
 * @param {DirectoryContent} c
 * @param {string} what
 */
function checkStructure(c, what) {
  const accounts = new Set(c.accounts.map((a) => hexOf(a.id)));
  if (c.devices.some((d) => !accounts.has(hexOf(d.userId)))) {
    throw new Malformed(`${what}: a device belongs to an account the directory does not list`);
  }
  /** @type {Map<string, DirKey[]>} */
  const byId = new Map();
  for (const k of c.readerKeys) byId.set(hexOf(k.id), [...(byId.get(hexOf(k.id)) ?? []), k]);
  /** @type {Map<string, Set<string>>} */
  const idsOfPurpose = new Map();
  for (const [keyId, listed] of byId) {
    const versions = [...listed].sort((a, b) => a.version - b.version);
    if (new Set(versions.map((k) => k.purpose)).size !== 1) throw new Malformed(`${what}: one reader key id is listed with two purposes`);
    if (versions.some((k, i) => k.version !== i + 1)) {
      throw new Malformed(`${what}: a reader key's versions do not count up from 1 without a gap`);
    }
    if (versions.some((k) => k.current !== (k.version === versions.length))) {
      throw new Malformed(`${what}: the current version of a reader key is not its newest`);
    }
    const purpose = versions[0].purpose;
    idsOfPurpose.set(purpose, (idsOfPurpose.get(purpose) ?? new Set()).add(keyId));
  }
  for (const [purpose, ids] of idsOfPurpose) {
    if (purpose !== PUPIL_PURPOSE && ids.size > 1) {
      throw new Malformed(`${what}: ${purpose} is listed under two key ids; each group has one, fixed at founding`);
    }
  }
  const pupilKeys = idsOfPurpose.get(PUPIL_PURPOSE) ?? new Set();
  const used = c.pupils.map((x) => hexOf(x.readerKeyId));
  if (used.some((k) => !pupilKeys.has(k)) || new Set(used).size !== used.length) {
    throw new Malformed(`${what}: each pupil's reader key is a pupil key of its own`);
  }
  const pupils = new Set(c.pupils.map((x) => hexOf(x.id)));
  for (const k of c.classes) {
    if (k.pupils.some((x) => !pupils.has(hexOf(x))) || k.teachers.some((t) => !accounts.has(hexOf(t)))) {
      throw new Malformed(`${what}: a class names a pupil or teacher the directory does not list`);
    }
  }
}

/**
 * @param {Reader} r @param {string} what @param {Uint8Array} schoolId
 * @returns {Approval[]}
 */
function readApprovals(r, what, schoolId) {
  /** @type {Approval[]} */
  const out = [];
  for (let n = count(r, what, 'approvals', 4 + 200); n > 0; n--) {
    const size = r.u32('approval length');
    if (size > MAX_APPROVAL_BYTES) throw new Malformed(`${what}: an approval of ${size} bytes is too large`);
    const { approval } = readApproval(r.bytes(size, 'approval'), what);
    if (!constantTimeEqual(approval.schoolId, schoolId)) throw new Malformed(`${what}: an approval names another school`);
    out.push(approval);
  }
  checkOrder(out, (a) => a.approvalId, what, 'approvals');
  return out;
}

/**
 * Parse a signed version, check that it holds together and carries the signature of the key it names (a
 * client must use `verifyDirectory`, which also checks that key against its pin). Python: `read_directory`.
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
  const contentStart = r.pos;
  const content = readContent(r, what);
  const contentBytes = r.slice(contentStart, r.pos);
  const approvals = readApprovals(r, what, schoolId);
  const bodyEnd = r.pos;
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.done();
  checkStructure(content, what);
  if (!verify(signingPk, new Writer().bytes(ctx(SIG_CTX)).bytes(r.slice(0, bodyEnd)).finish(), signature)) {
    throw new BadSignature(`${what}: signature does not verify`);
  }
  const raw = Uint8Array.from(data);
  return {
    schoolId, version, prevHash, createdMs, signingPk, nextSigningPk, content, approvals, raw, hash: directoryHash(raw), contentBytes,
  };
}

/**
 * Every identity binding and device certificate verifies (BadSignature otherwise): the keys listed for an
 * account are the ones its own Ed25519 identity key vouches for, and its devices are the ones it certified.
 * A keyholder device checks this before it signs; every client checks it of what it accepts. Also the
 * structural rules of 13.1 (Malformed). Python: `check_content`.
 * @param {Uint8Array} schoolId
 * @param {DirectoryContent} content
 */
export function checkContent(schoolId, content) {
  const what = 'checking directory';
  checkStructure(content, what);
  /** @type {Map<string, Uint8Array>} */
  const identities = new Map();
  for (const a of content.accounts) {
    try {
      verifyIdentityBinding(a.binding, a.identityEd25519Pk, schoolId, a.id, a.identityX25519Pk);
    } catch (e) {
      if (!(e instanceof CryptoError)) throw e;
      throw new BadSignature(`${what}: an account's X25519 key is not bound by its Ed25519 identity key`);
    }
    identities.set(hexOf(a.id), a.identityEd25519Pk);
  }
  for (const x of content.devices) {
    const cert = makeDeviceCertBytes({
      schoolId, userId: x.userId, deviceId: x.id, devicePk: x.publicKey, createdMs: x.certifiedMs,
    }, x.certSignature);
    try {
      verifyDeviceCert(cert, /** @type {Uint8Array} */ (identities.get(hexOf(x.userId))));
    } catch (e) {
      if (!(e instanceof CryptoError)) throw e;
      throw new BadSignature(`${what}: a device is not certified by its account's identity key`);
    }
  }
}

// --- from one version to the next -------------------------------------------------------------------

/**
 * What `after` adds to `before` that lets someone read more (the items an approval must name): accounts new
 * or with new identity keys, roles added, teachers and pupils added to classes, pupils new or with another
 * key, and reader key versions new. Everything else narrows or merely certifies. Sorted by their bytes.
 * Python: `widenings`.
 * @param {DirectoryContent} before
 * @param {DirectoryContent} after
 * @returns {Item[]}
 */
export function widenings(before, after) {
  /** @type {Item[]} */
  const out = [];
  const oldAccounts = new Map(before.accounts.map((a) => [hexOf(a.id), a]));
  for (const a of after.accounts) {
    const old = oldAccounts.get(hexOf(a.id));
    if (!old || hexOf(old.identityX25519Pk) !== hexOf(a.identityX25519Pk) || hexOf(old.identityEd25519Pk) !== hexOf(a.identityEd25519Pk)) {
      out.push({ kind: 'account', userId: a.id, identityX25519Pk: a.identityX25519Pk, identityEd25519Pk: a.identityEd25519Pk });
    }
    const had = new Set(old?.roles ?? []);
    for (const role of new Set(a.roles)) if (!had.has(role)) out.push({ kind: 'role', userId: a.id, role });
  }
  const oldClasses = new Map(before.classes.map((k) => [hexOf(k.id), k]));
  for (const k of after.classes) {
    const old = oldClasses.get(hexOf(k.id));
    const teachers = new Set((old?.teachers ?? []).map(hexOf));
    const pupils = new Set((old?.pupils ?? []).map(hexOf));
    for (const t of k.teachers) if (!teachers.has(hexOf(t))) out.push({ kind: 'teaches', classId: k.id, userId: t });
    for (const x of k.pupils) if (!pupils.has(hexOf(x))) out.push({ kind: 'in_class', classId: k.id, pupilId: x });
  }
  const oldPupils = new Map(before.pupils.map((x) => [hexOf(x.id), hexOf(x.readerKeyId)]));
  for (const x of after.pupils) {
    if (oldPupils.get(hexOf(x.id)) !== hexOf(x.readerKeyId)) out.push({ kind: 'pupil', pupilId: x.id, readerKeyId: x.readerKeyId });
  }
  const oldKeys = new Set(before.readerKeys.map((k) => `${hexOf(k.id)}:${k.version}`));
  for (const k of after.readerKeys) {
    if (!oldKeys.has(`${hexOf(k.id)}:${k.version}`)) {
      out.push({ kind: 'key', readerKeyId: k.id, version: k.version, purpose: k.purpose, publicKey: k.publicKey });
    }
  }
  return sortItems(out);
}

/**
 * Nothing a version listed vanishes or changes, what was revoked or left stays so, and each group's key id
 * stays the one pinned at founding (Unapproved otherwise). Python: `check_unchanged`.
 * @param {DirectoryContent} before
 * @param {DirectoryContent} after
 */
export function checkUnchanged(before, after) {
  const what = 'checking directory change';
  const accounts = new Map(after.accounts.map((a) => [hexOf(a.id), a]));
  for (const a of before.accounts) {
    const now = accounts.get(hexOf(a.id));
    if (!now) throw new Unapproved(`${what}: an account listed before is missing`);
    if (a.left && !now.left) throw new Unapproved(`${what}: an account that left is listed again`);
  }
  const devices = new Map(after.devices.map((d) => [hexOf(d.id), d]));
  for (const d of before.devices) {
    const now = devices.get(hexOf(d.id));
    if (!now || hexOf(now.userId) !== hexOf(d.userId) || hexOf(now.publicKey) !== hexOf(d.publicKey)
      || now.certifiedMs !== d.certifiedMs || hexOf(now.certSignature) !== hexOf(d.certSignature)) {
      throw new Unapproved(`${what}: a device listed before was swapped or dropped`);
    }
    if (d.revoked && !now.revoked) throw new Unapproved(`${what}: a revoked device is listed as not revoked`);
  }
  const keys = new Map(after.readerKeys.map((k) => [`${hexOf(k.id)}:${k.version}`, k]));
  /** @type {Map<string, string>} */
  const pinned = new Map(before.readerKeys.filter((k) => k.purpose !== PUPIL_PURPOSE).map((k) => [k.purpose, hexOf(k.id)]));
  for (const k of before.readerKeys) {
    const now = keys.get(`${hexOf(k.id)}:${k.version}`);
    if (!now || now.purpose !== k.purpose || hexOf(now.publicKey) !== hexOf(k.publicKey)) {
      throw new Unapproved(`${what}: a reader key listed before was swapped or dropped`);
    }
  }
  for (const k of after.readerKeys) {
    const id = pinned.get(k.purpose);
    if (id !== undefined && hexOf(k.id) !== id) {
      throw new Unapproved(`${what}: ${k.purpose} is listed under a key id other than the one pinned at founding`);
    }
  }
}

/**
 * Check the step from `before` (the version a device holds) to `after` (the very next): nothing listed
 * vanishes or changes, and every widening is named by an approval made against `before` and signed by a
 * device that `before` lists for a safeguarding member who has not left. Returns the widenings. Throws
 * Unapproved, Rollback, BadSignature or NoKey. Python: `check_transition`.
 * @param {SignedDirectory} before
 * @param {SignedDirectory} after
 * @returns {Item[]}
 */
export function checkTransition(before, after) {
  const what = 'checking directory change';
  if (after.createdMs < before.createdMs) {
    throw new Rollback(`${what}: version ${after.version} was made before the version it follows`);
  }
  checkUnchanged(before.content, after.content);
  const keyholders = new Set(before.content.accounts.filter((a) => a.roles.includes('safeguarding') && !a.left).map((a) => hexOf(a.id)));
  const devices = new Map(before.content.devices.filter((d) => !d.revoked).map((d) => [hexOf(d.id), d]));
  /** @type {Set<string>} */
  const covered = new Set();
  for (const approval of after.approvals) {
    if (approval.baseVersion !== before.version || !constantTimeEqual(approval.baseHash, before.hash)) {
      throw new Unapproved(`${what}: an approval was made against another version`);
    }
    const device = devices.get(hexOf(approval.approverDevice));
    if (!keyholders.has(hexOf(approval.approverUser)) || !device || hexOf(device.userId) !== hexOf(approval.approverUser)) {
      throw new Unapproved(`${what}: an approval is not signed by a safeguarding keyholder's device`);
    }
    verifyApproval(approval.raw, before.schoolId, device.publicKey);
    for (const item of approval.items) covered.add(itemHex(item));
  }
  const wide = widenings(before.content, after.content);
  if (!constantTimeEqual(after.nextSigningPk, after.signingPk)) wide.push({ kind: 'signing', nextSigningPk: after.nextSigningPk });
  const named = new Set(wide.map(itemHex));
  const missing = [...named].filter((x) => !covered.has(x)).length;
  if (missing) throw new Unapproved(`${what}: ${missing} widenings of who can read have no keyholder's approval`);
  if ([...covered].some((x) => !named.has(x))) throw new Unapproved(`${what}: an approval names something this version does not add`);
  return sortItems(wide);
}

/**
 * A client's check of a served version: it parses and holds together, is this school's, is signed by the
 * pinned key (null only at first sign-in: trust on first use), its bindings and certificates verify, and
 * it is the very next version after `previous` (the newest this device accepted), chaining to it by hash,
 * with every widening approved (`checkTransition`). A device that missed versions follows each (`GET
 * /api/v1/directory?since=N` serves them). Python: `verify_directory`.
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
    if (d.version !== previous.version + 1) {
      throw new Rollback(`${what}: version ${d.version} skips versions after ${previous.version}; follow each`);
    }
    if (!constantTimeEqual(d.prevHash, previous.hash)) {
      throw new Rollback(`${what}: version ${d.version} does not follow the version this device holds`);
    }
  }
  checkContent(d.schoolId, d.content);
  if (previous) checkTransition(previous, d);
  else if (d.approvals.length && d.version === 1) {
    throw new Unapproved(`${what}: version 1 has nothing before it to approve against`);
  }
  return d;
}
