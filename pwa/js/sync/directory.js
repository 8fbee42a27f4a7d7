// The client side of the signed directory (docs/PROTOCOL.md section 13), the twin of sync/directory.py:
// follow, pin, prepare, approve, sign.
//
// A device trusts no key the server serves unless the newest directory version signed with the school's
// signing key lists it. `follow` checks every version the server serves after the one this device holds, in
// order, against the key pinned at its first sign-in (trust on first use, shown as a fingerprint to
// compare): each must chain by hash, hold bindings and certificates that verify, keep what was listed, and
// carry a safeguarding keyholder's approval for everything that lets someone read more.
//
// A safeguarding keyholder's device, holding the `signing:directory` reader key, signs the next version when
// the school changed. `prepare` takes the server's current state and keeps only what the device may sign:
// everything that narrows or merely certifies (the closed list of PROTOCOL 13.4: revocations, leavers,
// removals, a new device certified by its own account, names and class labels) and the widenings in
// `allowed`: those its person approved on this device just now, or key versions it made itself in a
// rotation. Every other widening stays out, waiting, and is returned as `pending` for the Approvals page.

import {
  CryptoError, Malformed, SIGNING_PURPOSE, checkContent, checkUnchanged, directorySigningKey, encodeContent, fingerprint,
  itemHex, itemJson, signApproval, signDirectory, verifyDirectory, widenings,
} from '../crypto/index.js';
import { b64d, b64e, hex } from './protocol.js';

/** @typedef {import('../crypto/directory.js').SignedDirectory} SignedDirectory */
/** @typedef {import('../crypto/directory.js').DirectoryContent} DirectoryContent */
/** @typedef {import('../crypto/directory.js').DirAccount} DirAccount */
/** @typedef {import('../crypto/directory.js').DirDevice} DirDevice */
/** @typedef {import('../crypto/approval.js').Item} Item */
/**
 * An approval a version carries, as the listing shows it (the change log).
 * @typedef {{id: string, approver_user: string, approver_device: string, created_ms: number,
 *   items: Record<string, unknown>[]}} ListedApproval
 */
/**
 * The verified content of the newest signed version, in the JSON shape the app reads (base64url ids and keys).
 * @typedef {{
 *   version?: number,
 *   accounts: {id: string, login: string, display_name: string, roles: string[], identity_x25519_pk: string,
 *     identity_ed25519_pk: string, left: boolean}[],
 *   devices: {id: string, user_id: string, public_key: string, revoked: boolean}[],
 *   reader_keys: {id: string, version: number, purpose: string, public_key: string, current: boolean}[],
 *   pupils: {id: string, reader_key_id: string}[],
 *   classes: {id: string, label: string, pupils: string[], teachers: string[]}[],
 *   approvals?: ListedApproval[],
 * }} Listing
 */

/** What the server served (or asks a keyholder to sign) is not trusted; nothing was changed. */
export class DirectoryRefused extends Error {
  /** @param {string} code @param {string} detail */
  constructor(code, detail) {
    super(`${code}: ${detail}`);
    this.name = 'DirectoryRefused';
    this.code = code;
    this.detail = detail;
  }
}

/**
 * @typedef {object} Followed the newest version this device accepted, the key it now pins (the next
 *   version's signer), and whether the server has more versions to follow (`more`: ask again with the new version)
 * @property {SignedDirectory} directory
 * @property {Uint8Array} pinnedPk
 * @property {boolean} more
 */

/**
 * Check a GET /api/v1/directory answer: every version after the held one, in order, then the newest.
 * Returns null when the server has no signed version yet (nothing to trust); throws DirectoryRefused when
 * anything fails to verify, and nothing changes. Python: `follow`.
 * @param {any} served
 * @param {Uint8Array} schoolId
 * @param {Uint8Array | null} pinnedPk
 * @param {SignedDirectory | null} held
 * @returns {Followed | null}
 */
export function follow(served, schoolId, pinnedPk, held) {
  if (served.signed === null || served.signed === undefined) {
    if (held) throw new DirectoryRefused('rollback', 'the server no longer serves a directory this device holds');
    return null;
  }
  let chain = [...(served.links ?? []).map((/** @type {string} */ x) => b64d(x, 'link')), b64d(served.signed, 'signed')];
  if (!held) chain = chain.slice(-1); // first sign-in: trust on first use of the newest version, as of its key
  let previous = held;
  let pin = pinnedPk;
  for (const raw of chain) {
    if (previous && hex(raw) === hex(previous.raw)) continue; // the version held, served again
    try {
      previous = verifyDirectory(raw, schoolId, pin, previous);
    } catch (e) {
      if (e instanceof CryptoError) throw new DirectoryRefused(e.code, e.message);
      throw e;
    }
    pin = previous.nextSigningPk;
  }
  return {
    directory: /** @type {SignedDirectory} */ (previous), pinnedPk: /** @type {Uint8Array} */ (pin), more: Boolean(served.more),
  };
}

/**
 * The pinned key as people compare it: six groups of four characters.
 * @param {Uint8Array} schoolId
 * @param {Uint8Array | null} pinnedPk
 */
export function fingerprintOf(schoolId, pinnedPk) {
  return pinnedPk ? fingerprint(schoolId, pinnedPk) : null;
}

/**
 * The verified content in the JSON shape the rest of the client reads (ids and keys as base64url), with the
 * approvals this version carries (the change log). Python: `listing`.
 * @param {SignedDirectory} d
 * @returns {Listing}
 */
export function listing(d) {
  const c = d.content;
  return {
    version: d.version,
    accounts: c.accounts.map((a) => ({
      id: b64e(a.id), login: a.login, display_name: a.displayName, roles: [...a.roles],
      identity_x25519_pk: b64e(a.identityX25519Pk), identity_ed25519_pk: b64e(a.identityEd25519Pk), left: a.left,
    })),
    devices: c.devices.map((x) => ({ id: b64e(x.id), user_id: b64e(x.userId), public_key: b64e(x.publicKey), revoked: x.revoked })),
    reader_keys: c.readerKeys.map((k) => ({
      id: b64e(k.id), version: k.version, purpose: k.purpose, public_key: b64e(k.publicKey), current: k.current,
    })),
    pupils: c.pupils.map((x) => ({ id: b64e(x.id), reader_key_id: b64e(x.readerKeyId) })),
    classes: c.classes.map((k) => ({
      id: b64e(k.id), label: k.label, pupils: k.pupils.map(b64e), teachers: k.teachers.map(b64e),
    })),
    approvals: d.approvals.map((a) => ({
      id: b64e(a.approvalId), approver_user: b64e(a.approverUser), approver_device: b64e(a.approverDevice),
      created_ms: a.createdMs, items: itemsJson(a.items),
    })),
  };
}

/**
 * A short stable name of what an item is about (not its keys), to match the server's request notes:
 * `role:<user>:<role>`, `teaches:<class>:<user>`, `account:<user>`, `key:<id>:<version>`, ... Python: `item_key`.
 * @param {Item} item
 * @returns {string}
 */
export function itemKey(item) {
  switch (item.kind) {
    case 'key': return `key:${b64e(item.readerKeyId)}:${item.version}`;
    case 'signing': return `signing:${b64e(item.nextSigningPk)}`;
    case 'account': return `account:${b64e(item.userId)}`;
    case 'role': return `role:${b64e(item.userId)}:${item.role}`;
    case 'teaches': return `teaches:${b64e(item.classId)}:${b64e(item.userId)}`;
    case 'in_class': return `in_class:${b64e(item.classId)}:${b64e(item.pupilId)}`;
    default: return `pupil:${b64e(item.pupilId)}:${b64e(item.readerKeyId)}`;
  }
}

/** @param {string} a @param {string} b */
const byCodePoint = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Items as JSON, byte strings as base64url, in the order of their `itemKey` (as Python sorts them).
 * Python: `items_json`.
 * @param {Iterable<Item>} items
 * @returns {Record<string, unknown>[]}
 */
export function itemsJson(items) {
  return [...items].sort((a, b) => byCodePoint(itemKey(a), itemKey(b))).map((item) => itemJson(item, b64e));
}

/**
 * The content a keyholder checks and signs, from the server's `current` state (JSON), with each account's
 * binding and each device's certificate fields. Python: `content_from_listing`.
 * @param {any} current
 * @returns {DirectoryContent}
 */
export function contentFromListing(current) {
  const id = (/** @type {string} */ x) => b64d(x, 'id');
  return {
    accounts: current.accounts.map((/** @type {any} */ a) => ({
      id: id(a.id), roles: [...a.roles], identityX25519Pk: b64d(a.identity_x25519_pk, 'pk'),
      identityEd25519Pk: b64d(a.identity_ed25519_pk, 'pk'), binding: b64d(a.binding, 'binding'), left: Boolean(a.left),
      login: a.login, displayName: a.display_name,
    })),
    devices: current.devices.map((/** @type {any} */ x) => {
      const cert = b64d(x.cert, 'cert');
      if (cert.length !== 153) throw new DirectoryRefused('bad_certificate', `device ${x.id} has no certificate of the right length`);
      const certifiedMs = Number(new DataView(cert.buffer, cert.byteOffset + 81, 8).getBigUint64(0, false));
      return {
        id: id(x.id), userId: id(x.user_id), publicKey: b64d(x.public_key, 'pk'), certifiedMs,
        certSignature: cert.slice(89), revoked: Boolean(x.revoked),
      };
    }),
    readerKeys: current.reader_keys.map((/** @type {any} */ k) => ({
      id: id(k.id), version: k.version, purpose: k.purpose, publicKey: b64d(k.public_key, 'pk'), current: Boolean(k.current),
    })),
    pupils: current.pupils.map((/** @type {any} */ x) => ({ id: id(x.id), readerKeyId: id(x.reader_key_id) })),
    classes: current.classes.map((/** @type {any} */ k) => ({
      id: id(k.id), label: k.label, pupils: k.pupils.map(id), teachers: k.teachers.map(id),
    })),
  };
}

/**
 * What a keyholder device may sign now: the content, the widenings it includes (which its approval names),
 * and the widenings left out, waiting for a keyholder's approval. Python: `Prepared`.
 */
export class Prepared {
  /**
   * @param {DirectoryContent} content
   * @param {Item[]} [included]
   * @param {Item[]} [pending]
   */
  constructor(content, included = [], pending = []) {
    this.content = content;
    this.included = included;
    this.pending = pending;
  }

  /** @param {SignedDirectory | null} held */
  differsFrom(held) {
    return !held || hex(encodeContent(this.content)) !== hex(held.contentBytes);
  }
}

/**
 * The next content a keyholder device may sign from the server's `current` state: every binding and
 * certificate must verify and nothing the held version lists may vanish or change (DirectoryRefused
 * otherwise); of the widenings, only those in `allowed` are kept, the rest (and what depends on them) are
 * left out and returned as `pending`. Version 1 (nothing held) is the founding device's own.
 * Python: `prepare`.
 * @param {Uint8Array} schoolId
 * @param {any} current
 * @param {SignedDirectory | null} held
 * @param {Iterable<Item>} [allowed]
 * @returns {Prepared}
 */
export function prepare(schoolId, current, held, allowed = []) {
  let content;
  try {
    content = contentFromListing(current);
  } catch (e) {
    if (e instanceof DirectoryRefused) throw e;
    throw new DirectoryRefused('malformed', `the server's current state does not read: ${e instanceof Error ? e.message : e}`);
  }
  try {
    checkContent(schoolId, content);
  } catch (e) {
    // content that does not hold together (two key ids for a group, say) is not a certificate's fault
    if (e instanceof Malformed) throw new DirectoryRefused('malformed', e.message);
    if (e instanceof CryptoError) throw new DirectoryRefused('bad_certificate', e.message);
    throw e;
  }
  if (!held) return new Prepared(recurrent(content));
  try {
    checkUnchanged(held.content, content);
  } catch (e) {
    if (e instanceof CryptoError) throw new DirectoryRefused('swapped_key', e.message);
    throw e;
  }
  const wide = widenings(held.content, content);
  const allowedSet = new Set([...allowed].map(itemHex));
  const pending = wide.filter((i) => !allowedSet.has(itemHex(i)));
  const kept = without(content, pending, held.content);
  try {
    checkContent(schoolId, kept);
  } catch (e) { // leaving things out never breaks a binding or certificate
    if (e instanceof CryptoError) throw new DirectoryRefused('malformed', e.message);
    throw e;
  }
  const included = widenings(held.content, kept);
  const names = new Set(included.map(itemHex));
  return new Prepared(kept, included, wide.filter((i) => !names.has(itemHex(i))));
}

/** Codes of `prepare` that say the server's rows need a keyholder's decision before anything is signed. */
export const NEEDS_DECISION = Object.freeze(['identity_changed', 'pupil_key_changed']);

/**
 * The widenings the server's `current` rows hold beyond the held version, except `allowed` (what this
 * device made itself): what the Approvals page lists. Unlike `prepare` it does not fail on a change that
 * needs a decision first (new identity keys for a listed account), so that change can be shown and decided.
 * DirectoryRefused for rows whose bindings or certificates do not verify, or that drop or swap what the
 * held version lists.
 * @param {Uint8Array} schoolId
 * @param {any} current
 * @param {SignedDirectory} held
 * @param {Iterable<Item>} [allowed]
 * @returns {Item[]}
 */
export function waiting(schoolId, current, held, allowed = []) {
  try {
    return prepare(schoolId, current, held, allowed).pending;
  } catch (e) {
    if (!(e instanceof DirectoryRefused) || !NEEDS_DECISION.includes(e.code)) throw e;
  }
  const made = new Set([...allowed].map(itemHex));
  return widenings(held.content, contentFromListing(current)).filter((i) => !made.has(itemHex(i)));
}

/**
 * `c` without the pending widenings and what depends on them (a new account's devices and classes, a new
 * pupil's class places). Changes that cannot be left out (new identity keys for an account listed before,
 * another key for a listed pupil) throw DirectoryRefused: they need a decision first.
 * @param {DirectoryContent} c
 * @param {Item[]} pending
 * @param {DirectoryContent} before
 * @returns {DirectoryContent}
 */
function without(c, pending, before) {
  const oldAccounts = new Set(before.accounts.map((a) => hex(a.id)));
  const oldPupils = new Set(before.pupils.map((x) => hex(x.id)));
  /** @type {Set<string>} */
  const dropAccounts = new Set();
  /** @type {Set<string>} */
  const roles = new Set();
  /** @type {Set<string>} */
  const teaches = new Set();
  /** @type {Set<string>} */
  const inClass = new Set();
  /** @type {Set<string>} */
  const keys = new Set();
  /** @type {Set<string>} */
  const dropPupils = new Set();
  for (const i of pending) {
    if (i.kind === 'account') {
      if (oldAccounts.has(hex(i.userId))) {
        throw new DirectoryRefused('identity_changed', 'the server lists new identity keys for an account: '
          + 'approve them only if that person recovered their account with a keyholder');
      }
      dropAccounts.add(hex(i.userId));
    } else if (i.kind === 'pupil') {
      if (oldPupils.has(hex(i.pupilId))) throw new DirectoryRefused('pupil_key_changed', 'the server lists another reader key for a pupil');
      dropPupils.add(hex(i.pupilId));
    } else if (i.kind === 'role') roles.add(`${hex(i.userId)}:${i.role}`);
    else if (i.kind === 'teaches') teaches.add(`${hex(i.classId)}:${hex(i.userId)}`);
    else if (i.kind === 'in_class') inClass.add(`${hex(i.classId)}:${hex(i.pupilId)}`);
    else if (i.kind === 'key') keys.add(`${hex(i.readerKeyId)}:${i.version}`);
  }
  const readerKeys = c.readerKeys.filter((k) => !keys.has(`${hex(k.id)}:${k.version}`));
  const listedKeys = new Set(readerKeys.map((k) => hex(k.id)));
  const pupils = c.pupils.filter((x) => !dropPupils.has(hex(x.id)) && listedKeys.has(hex(x.readerKeyId)));
  const pupilIds = new Set(pupils.map((x) => hex(x.id)));
  const accounts = c.accounts.filter((a) => !dropAccounts.has(hex(a.id)))
    .map((a) => ({ ...a, roles: a.roles.filter((r) => !roles.has(`${hex(a.id)}:${r}`)) }));
  const accountIds = new Set(accounts.map((a) => hex(a.id)));
  const classes = c.classes.map((k) => ({
    ...k,
    pupils: k.pupils.filter((x) => !inClass.has(`${hex(k.id)}:${hex(x)}`) && pupilIds.has(hex(x))),
    teachers: k.teachers.filter((t) => !teaches.has(`${hex(k.id)}:${hex(t)}`) && accountIds.has(hex(t))),
  }));
  const devices = c.devices.filter((d) => accountIds.has(hex(d.userId)));
  return recurrent({ accounts, devices, readerKeys, pupils, classes });
}

/**
 * Each reader key's newest listed version is its current one (PROTOCOL 13.1).
 * @param {DirectoryContent} c
 * @returns {DirectoryContent}
 */
function recurrent(c) {
  /** @type {Map<string, number>} */
  const newest = new Map();
  for (const k of c.readerKeys) newest.set(hex(k.id), Math.max(newest.get(hex(k.id)) ?? 0, k.version));
  return { ...c, readerKeys: c.readerKeys.map((k) => ({ ...k, current: k.version === newest.get(hex(k.id)) })) };
}

/**
 * This keyholder device's signed approval of `items`, made against the version it holds. Python: `make_approval`.
 * @param {Uint8Array} deviceSecretKey 64-byte libsodium form
 * @param {Uint8Array} deviceId
 * @param {Uint8Array} userId
 * @param {SignedDirectory} held
 * @param {Iterable<Item>} items
 * @param {number} [createdMs]
 * @returns {Uint8Array}
 */
export function makeApproval(deviceSecretKey, deviceId, userId, held, items, createdMs = Date.now()) {
  return signApproval(deviceSecretKey, {
    schoolId: held.schoolId, approvalId: globalThis.crypto.getRandomValues(new Uint8Array(16)), baseVersion: held.version,
    baseHash: held.hash, approverUser: userId, approverDevice: deviceId, createdMs, items,
  });
}

/**
 * The school signing key this device holds whose public key is `wantPk` (or, before any version exists,
 * the current `signing:directory` key it holds); null when it holds none. Python: `signing_key_for`.
 * @param {Map<string, Uint8Array>} readerKeys secrets by `${hex(id)}:${version}`
 * @param {{id: string, version: number, purpose: string, current: boolean}[]} listed
 * @param {Uint8Array | null} wantPk
 */
export function signingKeyFor(readerKeys, listed, wantPk) {
  for (const k of [...listed].sort((a, b) => b.version - a.version)) {
    if (k.purpose !== SIGNING_PURPOSE) continue;
    const sk = readerKeys.get(`${hex(b64d(k.id, 'id'))}:${k.version}`);
    if (!sk) continue;
    const key = directorySigningKey(sk);
    if ((!wantPk && k.current) || (wantPk && hex(key.publicKey) === hex(wantPk))) return key;
    key.secretKey.fill(0);
  }
  return null;
}

/**
 * The version after `held` (or version 1), signed with `key`, carrying `approvals`. Python: `sign_next`.
 * @param {{publicKey: Uint8Array, secretKey: Uint8Array}} key
 * @param {Uint8Array} schoolId
 * @param {DirectoryContent} content
 * @param {SignedDirectory | null} held
 * @param {number} createdMs
 * @param {{nextSigningPk?: Uint8Array, approvals?: Uint8Array[]}} [options]
 */
export function signNext(key, schoolId, content, held, createdMs, { nextSigningPk, approvals = [] } = {}) {
  return signDirectory(key, {
    schoolId, version: held ? held.version + 1 : 1, prevHash: held ? held.hash : new Uint8Array(32),
    createdMs: Math.max(createdMs, held ? held.createdMs : 0), nextSigningPk: nextSigningPk ?? key.publicKey, content,
    approvals,
  });
}
