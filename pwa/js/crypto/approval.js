// Approvals (docs/PROTOCOL.md section 13.3), the twin of crypto/approval.py: a safeguarding keyholder's
// signed consent to the widenings of one directory version. Anything that lets someone read more (a new
// account, a role, a teacher for a class, a pupil in a class, a pupil's key, a new reader key version, new
// identity keys, a new school signing key) is an **item**. A directory version that adds an item must carry
// an approval naming it, made against the version just before it and signed by a device of an account that
// version lists as a safeguarding member. So the school signing key alone (which every keyholder device
// holds, and a hostile server would love to borrow) cannot widen who reads.
//
// Items are plain objects `{kind, ...fields}` with byte strings as Uint8Array, compared and sorted by their
// canonical bytes (`encodeItem`; `itemHex` names one for a Map or Set):
//   {kind: 'account', userId, identityX25519Pk, identityEd25519Pk}
//   {kind: 'role', userId, role}
//   {kind: 'teaches', classId, userId}
//   {kind: 'in_class', classId, pupilId}
//   {kind: 'pupil', pupilId, readerKeyId}
//   {kind: 'key', readerKeyId, version, purpose, publicKey}
//   {kind: 'signing', nextSigningPk}

import { Reader, Writer, compareBytes } from './_codec.js';
import { SIGNATURE_BYTES, constantTimeEqual, ctx, sign, verify } from './_primitives.js';
import { BadSignature, Malformed, NoKey, UnsupportedVersion } from './errors.js';

export const APPROVAL_VERSION = 0x01;
/** The directory's role bits, in order: bit i of an account's roles byte is ROLES[i]. */
export const ROLES = Object.freeze(['contributor', 'teacher', 'sen', 'safeguarding', 'admin']);
export const ITEM_KINDS = Object.freeze({ account: 1, role: 2, teaches: 3, in_class: 4, pupil: 5, key: 6, signing: 7 });
const KIND_NAMES = Object.freeze(Object.fromEntries(Object.entries(ITEM_KINDS).map(([k, v]) => [v, k])));
const MAX_ITEMS = 100_000;
const MAX_TEXT = 1024;
const SIG_CTX = 'cairn/v1/approval/sig';

/**
 * @typedef {{kind: 'account', userId: Uint8Array, identityX25519Pk: Uint8Array, identityEd25519Pk: Uint8Array}
 *   | {kind: 'role', userId: Uint8Array, role: string}
 *   | {kind: 'teaches', classId: Uint8Array, userId: Uint8Array}
 *   | {kind: 'in_class', classId: Uint8Array, pupilId: Uint8Array}
 *   | {kind: 'pupil', pupilId: Uint8Array, readerKeyId: Uint8Array}
 *   | {kind: 'key', readerKeyId: Uint8Array, version: number, purpose: string, publicKey: Uint8Array}
 *   | {kind: 'signing', nextSigningPk: Uint8Array}} Item
 * @typedef {object} Approval
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} approvalId
 * @property {number} baseVersion the directory version it was made against: the one before the version that carries it
 * @property {Uint8Array} baseHash
 * @property {Uint8Array} approverUser
 * @property {Uint8Array} approverDevice
 * @property {number} createdMs
 * @property {Item[]} items sorted by their encoded bytes
 * @property {Uint8Array} raw the whole signed approval
 */

/**
 * An item's canonical bytes: its kind byte, then its fields (docs/PROTOCOL.md 13.3). A misuse (an unknown
 * kind or role, a field of the wrong length) is a TypeError.
 * @param {Item} item
 * @returns {Uint8Array}
 */
export function encodeItem(item) {
  const kind = item?.kind;
  if (typeof kind !== 'string' || !Object.hasOwn(ITEM_KINDS, kind)) {
    throw new TypeError(`Unknown approval item kind ${JSON.stringify(kind)}.`);
  }
  const w = new Writer().u8(ITEM_KINDS[/** @type {keyof typeof ITEM_KINDS} */ (kind)]);
  switch (item.kind) {
    case 'account':
      w.id(item.userId, 'user id').bytes(item.identityX25519Pk, 32, 'identity X25519 key')
        .bytes(item.identityEd25519Pk, 32, 'identity Ed25519 key');
      break;
    case 'role': {
      const bit = ROLES.indexOf(item.role);
      if (bit < 0) throw new TypeError(`Unknown role ${JSON.stringify(item.role)}.`);
      w.id(item.userId, 'user id').u8(bit);
      break;
    }
    case 'teaches':
      w.id(item.classId, 'class id').id(item.userId, 'user id');
      break;
    case 'in_class':
      w.id(item.classId, 'class id').id(item.pupilId, 'pupil id');
      break;
    case 'pupil':
      w.id(item.pupilId, 'pupil id').id(item.readerKeyId, 'reader key id');
      break;
    case 'key': {
      if (!Number.isInteger(item.version) || item.version < 1 || item.version > 0xffffffff) {
        throw new TypeError('A reader key version is 1 to 2^32 - 1.');
      }
      const purpose = new TextEncoder().encode(item.purpose);
      if (purpose.length < 1 || purpose.length > MAX_TEXT) throw new TypeError(`A purpose is 1 to ${MAX_TEXT} bytes of UTF-8.`);
      w.id(item.readerKeyId, 'reader key id').u32(item.version).u32(purpose.length).bytes(purpose)
        .bytes(item.publicKey, 32, 'reader key');
      break;
    }
    default:
      w.bytes(item.nextSigningPk, 32, 'next signing key');
  }
  return w.finish();
}

/**
 * An item's canonical bytes as lower-case hex: the name of an item in a Map or Set.
 * @param {Item} item
 */
export function itemHex(item) {
  return Array.from(encodeItem(item), (x) => x.toString(16).padStart(2, '0')).join('');
}

/**
 * Items sorted by their bytes, without duplicates.
 * @param {Iterable<Item>} items
 * @returns {Item[]}
 */
export function sortItems(items) {
  /** @type {Map<string, [Uint8Array, Item]>} */
  const unique = new Map();
  for (const item of items) {
    const bytes = encodeItem(item);
    unique.set(Array.from(bytes, (x) => x.toString(16).padStart(2, '0')).join(''), [bytes, item]);
  }
  return [...unique.values()].sort((a, b) => compareBytes(a[0], b[0])).map(([, item]) => item);
}

/**
 * @param {Reader} r
 * @param {string} what
 * @returns {Item}
 */
function readItem(r, what) {
  const code = r.u8('item kind');
  const kind = KIND_NAMES[code];
  if (kind === undefined) throw new Malformed(`${what}: unknown item kind ${code}`);
  switch (kind) {
    case 'account':
      return { kind, userId: r.id('user id'), identityX25519Pk: r.bytes(32, 'identity X25519 key'), identityEd25519Pk: r.bytes(32, 'identity Ed25519 key') };
    case 'role': {
      const userId = r.id('user id');
      const bit = r.u8('role');
      if (bit >= ROLES.length) throw new Malformed(`${what}: unknown role ${bit}`);
      return { kind, userId, role: ROLES[bit] };
    }
    case 'teaches':
      return { kind, classId: r.id('first id'), userId: r.id('second id') };
    case 'in_class':
      return { kind, classId: r.id('first id'), pupilId: r.id('second id') };
    case 'pupil':
      return { kind, pupilId: r.id('first id'), readerKeyId: r.id('second id') };
    case 'key': {
      const readerKeyId = r.id('reader key id');
      const version = r.u32('reader key version');
      const n = r.u32('purpose length');
      if (version === 0) throw new Malformed(`${what}: reader key versions start at 1`);
      if (n < 1 || n > MAX_TEXT) throw new Malformed(`${what}: a purpose is 1 to ${MAX_TEXT} bytes`);
      let purpose;
      try {
        purpose = new TextDecoder('utf-8', { fatal: true }).decode(r.bytes(n, 'purpose'));
      } catch (e) {
        if (e instanceof Malformed) throw e;
        throw new Malformed(`${what}: a purpose is not UTF-8`);
      }
      return { kind, readerKeyId, version, purpose, publicKey: r.bytes(32, 'reader key') };
    }
    default:
      return { kind: 'signing', nextSigningPk: r.bytes(32, 'next signing key') };
  }
}

/**
 * @param {Uint8Array} body
 */
function signedMessage(body) {
  return new Writer().bytes(ctx(SIG_CTX)).bytes(body).finish();
}

/**
 * Sign an approval of `items` with the approving device's key; the items are sorted here.
 * Python: `sign_approval`.
 * @param {Uint8Array} deviceSecretKey the 64-byte libsodium form
 * @param {{schoolId: Uint8Array, approvalId: Uint8Array, baseVersion: number, baseHash: Uint8Array,
 *   approverUser: Uint8Array, approverDevice: Uint8Array, createdMs: number, items: Iterable<Item>}} fields
 * @returns {Uint8Array}
 */
export function signApproval(deviceSecretKey, { schoolId, approvalId, baseVersion, baseHash, approverUser, approverDevice, createdMs, items }) {
  const encoded = sortItems(items).map(encodeItem);
  if (encoded.length < 1 || encoded.length > MAX_ITEMS) throw new TypeError(`An approval names 1 to ${MAX_ITEMS} items.`);
  const w = new Writer().u8(APPROVAL_VERSION).id(schoolId, 'school id').id(approvalId, 'approval id').u64(baseVersion)
    .bytes(baseHash, 32, 'base hash').id(approverUser, 'approver').id(approverDevice, 'approver device')
    .u64(createdMs).u32(encoded.length);
  for (const e of encoded) w.bytes(e);
  const body = w.finish();
  return new Writer().bytes(body).bytes(sign(deviceSecretKey, signedMessage(body))).finish();
}

/**
 * Parse an approval: the approval, the signed bytes and the signature. Checks the form, not the signature.
 * Python: `read_approval`.
 * @param {Uint8Array} data
 * @param {string} [what]
 * @returns {{approval: Approval, body: Uint8Array, signature: Uint8Array}}
 */
export function readApproval(data, what = 'reading approval') {
  const r = new Reader(data, what);
  const version = r.u8('version');
  if (version !== APPROVAL_VERSION) throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  const schoolId = r.id('school id');
  const approvalId = r.id('approval id');
  const baseVersion = r.u64('base version');
  const baseHash = r.bytes(32, 'base hash');
  const approverUser = r.id('approver');
  const approverDevice = r.id('approver device');
  const createdMs = r.u64('created');
  const count = r.u32('item count');
  if (count < 1 || count > MAX_ITEMS) throw new Malformed(`${what}: ${count} items; 1 to ${MAX_ITEMS} are allowed`);
  /** @type {Item[]} */
  const items = [];
  /** @type {Uint8Array[]} */
  const encoded = [];
  for (let n = 0; n < count; n++) {
    const start = r.pos;
    items.push(readItem(r, what));
    encoded.push(r.slice(start, r.pos));
  }
  for (let i = 1; i < encoded.length; i++) {
    if (compareBytes(encoded[i - 1], encoded[i]) >= 0) throw new Malformed(`${what}: items are not sorted by their bytes, or repeat`);
  }
  const bodyEnd = r.pos;
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.done();
  const approval = {
    schoolId, approvalId, baseVersion, baseHash, approverUser, approverDevice, createdMs, items, raw: Uint8Array.from(data),
  };
  return { approval, body: r.slice(0, bodyEnd), signature };
}

/**
 * Parse, check the school and the approving device's signature (`devicePk` from the directory the approval
 * was made against). Python: `verify_approval`.
 * @param {Uint8Array} data
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} devicePk
 * @returns {Approval}
 */
export function verifyApproval(data, schoolId, devicePk) {
  const what = 'verifying approval';
  const { approval, body, signature } = readApproval(data, what);
  if (!constantTimeEqual(approval.schoolId, schoolId)) throw new NoKey(`${what}: the approval belongs to another school`);
  if (!verify(devicePk, signedMessage(body), signature)) throw new BadSignature(`${what}: signature does not verify`);
  return approval;
}

/** The JSON field names of each kind, in order (PROTOCOL 10.1 `GET /api/v1/approvals`). */
const FIELDS = Object.freeze({
  account: [['user_id', 'userId'], ['identity_x25519_pk', 'identityX25519Pk'], ['identity_ed25519_pk', 'identityEd25519Pk']],
  role: [['user_id', 'userId'], ['role', 'role']],
  teaches: [['class_id', 'classId'], ['user_id', 'userId']],
  in_class: [['class_id', 'classId'], ['pupil_id', 'pupilId']],
  pupil: [['pupil_id', 'pupilId'], ['reader_key_id', 'readerKeyId']],
  key: [['reader_key_id', 'readerKeyId'], ['version', 'version'], ['purpose', 'purpose'], ['public_key', 'publicKey']],
  signing: [['next_signing_pk', 'nextSigningPk']],
});
const PLAIN = new Set(['role', 'version', 'purpose']);

/**
 * An item as JSON fields (`kind` and snake_case names); byte strings go through `encode`. Python: `item_json`.
 * @param {Item} item
 * @param {(bytes: Uint8Array) => unknown} encode
 * @returns {Record<string, unknown>}
 */
export function itemJson(item, encode) {
  /** @type {Record<string, unknown>} */
  const out = { kind: item.kind };
  const fields = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (item));
  for (const [name, field] of FIELDS[item.kind]) out[name] = PLAIN.has(name) ? fields[field] : encode(/** @type {Uint8Array} */ (fields[field]));
  return out;
}

/**
 * The inverse of `itemJson`; `decode(value, name)` turns a byte field's JSON form into bytes. Throws
 * TypeError for an unknown kind, a missing field or a value `encodeItem` refuses. Python: `item_from_json`.
 * @param {any} data
 * @param {(value: any, name: string) => Uint8Array} decode
 * @returns {Item}
 */
export function itemFromJson(data, decode) {
  const kind = data?.kind;
  if (typeof kind !== 'string' || !Object.hasOwn(FIELDS, kind)) throw new TypeError(`Unknown item kind ${JSON.stringify(kind)}.`);
  /** @type {Record<string, unknown>} */
  const item = { kind };
  for (const [name, field] of FIELDS[/** @type {keyof typeof FIELDS} */ (kind)]) {
    if (!Object.hasOwn(data, name)) throw new TypeError(`An item of kind ${kind} needs ${name}.`);
    item[field] = PLAIN.has(name) ? data[name] : decode(data[name], name);
  }
  const made = /** @type {Item} */ (/** @type {unknown} */ (item));
  encodeItem(made); // refuses wrong lengths and values
  return made;
}
