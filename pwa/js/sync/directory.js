// The client side of the signed directory (docs/PROTOCOL.md section 13), the twin of sync/directory.py:
// follow what GET /api/v1/directory serves against the pinned school signing key and the version held,
// turn the verified content into the listing the app reads, and, on a safeguarding keyholder's device,
// check the server's current state and sign it as the next version.

import {
  CryptoError, SIGNING_PURPOSE, directorySigningKey, fingerprint, signDirectory, verifyDirectory, verifyDeviceCert,
} from '../crypto/index.js';
import { b64d, b64e, hex } from './protocol.js';

/** @typedef {import('../crypto/directory.js').SignedDirectory} SignedDirectory */
/** @typedef {import('../crypto/directory.js').DirectoryContent} DirectoryContent */
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
 * Check a GET /api/v1/directory answer: rotation links in order, then the newest version. Returns null when
 * the server has no signed version yet; throws DirectoryRefused when anything fails to verify.
 * Python: `follow`.
 * @param {any} served
 * @param {Uint8Array} schoolId
 * @param {Uint8Array | null} pinnedPk
 * @param {SignedDirectory | null} held
 * @returns {{directory: SignedDirectory, pinnedPk: Uint8Array} | null}
 */
export function follow(served, schoolId, pinnedPk, held) {
  if (served.signed === null || served.signed === undefined) {
    if (held) throw new DirectoryRefused('rollback', 'the server no longer serves a directory this device holds');
    return null;
  }
  const chain = [...(served.links ?? []), served.signed].map((x) => b64d(x, 'signed'));
  let previous = held;
  let pin = pinnedPk;
  for (const raw of chain) {
    if (previous && hex(raw) === hex(previous.raw)) continue;
    try {
      previous = verifyDirectory(raw, schoolId, pin, previous);
    } catch (e) {
      if (e instanceof CryptoError) throw new DirectoryRefused(e.code, e.message);
      throw e;
    }
    pin = previous.nextSigningPk;
  }
  return { directory: /** @type {SignedDirectory} */ (previous), pinnedPk: /** @type {Uint8Array} */ (pin) };
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
  };
}

/**
 * The content a keyholder signs, from the server's `current` state.
 * @param {any} current
 * @returns {DirectoryContent}
 */
export function contentFromListing(current) {
  const id = (/** @type {string} */ x) => b64d(x, 'id');
  return {
    accounts: current.accounts.map((/** @type {any} */ a) => ({
      id: id(a.id), roles: a.roles, identityX25519Pk: b64d(a.identity_x25519_pk, 'pk'),
      identityEd25519Pk: b64d(a.identity_ed25519_pk, 'pk'), left: Boolean(a.left), login: a.login, displayName: a.display_name,
    })),
    devices: current.devices.map((/** @type {any} */ x) => ({
      id: id(x.id), userId: id(x.user_id), publicKey: b64d(x.public_key, 'pk'), revoked: Boolean(x.revoked),
    })),
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
 * What a keyholder device checks before signing the server's current state: each device's certificate
 * verifies with its user's identity key for that school, user, device and key; no device or reader key an
 * earlier version listed was swapped or dropped, and no revoked device brought back. Python:
 * `check_before_signing`.
 * @param {Uint8Array} schoolId
 * @param {any} current
 * @param {SignedDirectory | null} held
 * @returns {DirectoryContent}
 */
export function checkBeforeSigning(schoolId, current, held) {
  const content = contentFromListing(current);
  const identities = new Map(content.accounts.map((a) => [hex(a.id), a.identityEd25519Pk]));
  for (const raw of current.devices) {
    const deviceId = b64d(raw.id, 'id');
    const userId = b64d(raw.user_id, 'id');
    const pk = b64d(raw.public_key, 'pk');
    let cert;
    try {
      cert = verifyDeviceCert(b64d(raw.cert ?? '', 'cert'), identities.get(hex(userId)) ?? new Uint8Array(32));
    } catch (e) {
      if (e instanceof CryptoError) throw new DirectoryRefused('bad_certificate', `device ${raw.id} is not certified by its user`);
      throw e;
    }
    if (hex(cert.schoolId) !== hex(schoolId) || hex(cert.userId) !== hex(userId) || hex(cert.deviceId) !== hex(deviceId)
      || hex(cert.devicePk) !== hex(pk)) {
      throw new DirectoryRefused('bad_certificate', `device ${raw.id}'s certificate names something else`);
    }
  }
  if (held) {
    const before = held.content;
    const devices = new Map(content.devices.map((d) => [hex(d.id), d]));
    for (const d of before.devices) {
      const now = devices.get(hex(d.id));
      if (!now || hex(now.publicKey) !== hex(d.publicKey)) throw new DirectoryRefused('swapped_key', 'a device listed before was swapped or dropped');
      if (d.revoked && !now.revoked) throw new DirectoryRefused('swapped_key', 'a revoked device is listed as not revoked');
    }
    const keys = new Map(content.readerKeys.map((k) => [`${hex(k.id)}:${k.version}`, k]));
    for (const k of before.readerKeys) {
      const now = keys.get(`${hex(k.id)}:${k.version}`);
      if (!now || hex(now.publicKey) !== hex(k.publicKey)) throw new DirectoryRefused('swapped_key', 'a reader key listed before was swapped or dropped');
    }
  }
  return content;
}

/**
 * The school signing key this device holds whose public key is `wantPk` (or, before any version exists,
 * the current `signing:directory` key it holds); null when it holds none.
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
  }
  return null;
}

/**
 * The version after `held` (or version 1), signed with `key`.
 * @param {{publicKey: Uint8Array, secretKey: Uint8Array}} key
 * @param {Uint8Array} schoolId
 * @param {DirectoryContent} content
 * @param {SignedDirectory | null} held
 * @param {number} createdMs
 */
export function signNext(key, schoolId, content, held, createdMs) {
  return signDirectory(key, {
    schoolId, version: held ? held.version + 1 : 1, prevHash: held ? held.hash : new Uint8Array(32), createdMs,
    nextSigningPk: key.publicKey, content,
  });
}
