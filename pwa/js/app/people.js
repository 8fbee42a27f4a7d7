// The people signed in on this device, and the one who is unlocked now.
//
// Signing in needs the server once; after that a person unlocks offline with the password: Argon2id over the
// stored (public) KDF parameters gives the KEK, and the KEK the local key (docs/PROTOCOL.md 12) that opens
// this person's sealed records. Keys live only in memory, in a `Session`, and are wiped on lock. At rest,
// each record is sealed and bound to school, user, kind and record id, so on a shared tablet one person's
// record can never be offered as another's.

import {
  CryptoError, KdfParams, deriveAccount, localKey, openLocal, readDirectory, sealLocal,
} from '../crypto/index.js';
import { Device, derive, signIn } from '../sync/device.js';
import { Outbox } from '../sync/outbox.js';
import { b64e, hex } from '../sync/protocol.js';

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../db.js').AccountRecord} AccountRecord */
/** @typedef {import('../sync/device.js').Api} Api */
/** @typedef {import('../sync/device.js').Derived} Derived */
/** @typedef {import('../sync/device.js').Directory} Directory */
/** @typedef {{id: string, name: string, className: string}} Pupil */

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** The password does not open this person's records. */
export class WrongPassword extends Error {}

/** An unlocked person: their keys, in memory only. */
export class Session {
  /**
   * @param {LocalStore} store
   * @param {AccountRecord} record
   * @param {Device} device
   * @param {Derived} derived kept to sign in again when the session token expires
   * @param {number} expiresMs
   */
  constructor(store, record, device, derived, expiresMs) {
    this.store = store;
    this.record = record;
    this.device = device;
    this.derived = derived;
    this.localKey = localKey(derived.account.kek);
    this.expiresMs = expiresMs;
    this.outbox = new Outbox(store, hex(record.deviceId), record.id);
    /** @type {Pupil[]} */
    this.pupils = [];
    this.refreshedMs = 0;
    /** Whether this unlock pinned the school signing key for the first time (show its fingerprint). */
    this.newlyPinned = false;
  }

  get id() {
    return this.record.id;
  }

  get name() {
    return this.record.displayName || this.record.login;
  }

  /** @param {string} kind @param {Uint8Array} recordId @param {Uint8Array} plaintext */
  seal(kind, recordId, plaintext) {
    return sealLocal(this.localKey, this.record.schoolId, this.record.userId, kind, recordId, plaintext);
  }

  /** @param {string} kind @param {Uint8Array} recordId @param {Uint8Array} sealed */
  open(kind, recordId, sealed) {
    return openLocal(this.localKey, this.record.schoolId, this.record.userId, kind, recordId, sealed);
  }

  /** @param {string} kind @param {Uint8Array} recordId @param {unknown} value */
  sealJson(kind, recordId, value) {
    return this.seal(kind, recordId, utf8.encode(JSON.stringify(value)));
  }

  /** @param {string} kind @param {Uint8Array} recordId @param {Uint8Array} sealed @returns {any} */
  openJson(kind, recordId, sealed) {
    return JSON.parse(text.decode(this.open(kind, recordId, sealed)));
  }

  /** Sign in again with the keys of this unlock (the token expired); accounts that read need a code. */
  async renew() {
    const { device, expiresMs } = await signIn(this.device.api, this.derived, {
      existing: { deviceId: this.device.deviceId, deviceSeed: this.device.deviceSeed },
    });
    this.device.token = device.token;
    this.expiresMs = expiresMs;
    await this.store.updateAccount(this.id, {
      session: this.sealJson('session', this.record.deviceId, { token: device.token, expires_ms: expiresMs }),
    });
  }

  /** Online: fetch the directory, open grants and the roster; keep them sealed for offline use. */
  async refresh() {
    await this.device.refresh();
    const directory = /** @type {Directory} */ (this.device.directory ?? { accounts: [] });
    const me = directory.accounts.find((a) => a.id === b64e(this.record.userId));
    /** @type {Pupil[]} */
    const pupils = [];
    try {
      for (const [id, fields] of await this.device.roster()) {
        pupils.push({ id, name: String(fields.name ?? ''), className: String(fields.class ?? '') });
      }
    } catch (error) {
      if (!(error instanceof CryptoError)) throw error;
    }
    pupils.sort((a, b) => a.name.localeCompare(b.name, 'en-GB'));
    this.pupils = pupils;
    this.refreshedMs = Date.now();
    const displayName = me?.display_name ?? this.record.displayName;
    this.record = { ...this.record, displayName, roles: me?.roles ?? this.record.roles };
    const held = this.device.signedDirectory;
    const pinnedSigningPk = this.device.pinnedSigningPk ?? undefined;
    if (pinnedSigningPk && !this.record.pinnedSigningPk) this.newlyPinned = true;
    const schoolName = this.device.schoolName ?? this.record.schoolName;
    this.record = { ...this.record, pinnedSigningPk, schoolName };
    await this.store.updateAccount(this.id, held ? {
      directory: this.seal('directory', this.record.userId, held.raw), // the signed version, as the school signed it
    } : {}, { displayName, roles: this.record.roles, pinnedSigningPk, schoolName });
    await this.store.putRoster({
      account: this.id, updatedMs: this.refreshedMs, sealed: this.sealJson('roster', this.record.userId, pupils),
    });
  }

  /** Wipe every key this session holds (the objects stay, empty). */
  wipe() {
    for (const key of [
      this.localKey, this.derived.account.kek, this.derived.account.loginSecretKey, this.derived.account.loginSeed,
      this.device.identity.x25519Sk, this.device.identity.ed25519Seed, this.device.deviceSeed,
      this.device.deviceKey.secretKey, ...this.device.readerKeys.values(),
    ]) key.fill(0);
    this.device.readerKeys.clear();
    this.device.token = null;
    this.pupils = [];
  }
}

/**
 * Seal what a signed-in device must keep: identity keys, device key, session token.
 * @param {Session} session
 * @param {string} token
 * @param {number} expiresMs
 */
function sealedKeys(session, token, expiresMs) {
  const { identity, deviceSeed } = session.device;
  const both = new Uint8Array(64);
  both.set(identity.x25519Sk, 0);
  both.set(identity.ed25519Seed, 32);
  const sealed = {
    identity: session.seal('identity', session.record.userId, both),
    'device-key': session.seal('device-key', session.record.deviceId, deviceSeed),
    session: session.sealJson('session', session.record.deviceId, { token, expires_ms: expiresMs }),
  };
  both.fill(0);
  return sealed;
}

/**
 * Sign in online and keep this person on the device. `derived` is reused when the server asks for a code.
 * If the person is already on this device, their existing device (and its outbox) is kept; `device` is the
 * device a new account was registered with (sync/join.js), signed in for the first time.
 * @param {LocalStore} store
 * @param {Api} api
 * @param {{schoolId: Uint8Array, login: string, password: string, totp?: string, derived?: Derived,
 *   device?: {deviceId: Uint8Array, deviceSeed: Uint8Array}}} input
 * @returns {Promise<{session?: Session, derived: Derived, error?: unknown}>}
 */
export async function signInHere(store, api, { schoolId, login, password, totp, derived, device: registered }) {
  const keys = derived && derived.login === login && hex(derived.schoolId) === hex(schoolId)
    ? derived : await derive(api, schoolId, login, password);
  const known = await store.account(hex(keys.userId));
  /** @type {{deviceId: Uint8Array, deviceSeed: Uint8Array} | undefined} */
  let existing = registered;
  if (known) {
    try {
      const key = localKey(keys.account.kek);
      existing = { deviceId: known.deviceId, deviceSeed: openLocal(key, known.schoolId, known.userId, 'device-key', known.deviceId, known.sealed['device-key']) };
    } catch (error) {
      if (!(error instanceof CryptoError)) throw error;
      // The password changed since this device last saw it. Unsent entries need the old device key,
      // which only the old password opens: never replace a record that still has some.
      if (await store.pendingCount(hex(known.deviceId))) {
        return { derived: keys, error: new WrongPassword('Entries from your last password are still waiting to send. '
          + 'Unlock with your previous password first, so they can be sent.') };
      }
    }
  }
  let result;
  try {
    result = await signIn(api, keys, { totp, existing });
  } catch (error) {
    return { derived: keys, error };
  }
  const session = await keepSignedIn(store, keys, result.device, result.expiresMs, known);
  return { session, derived: keys };
}

/**
 * Keep a person just signed in (or recovered, sync/join.js) on this device: their keys sealed under the
 * password's local key, then a first refresh.
 * @param {LocalStore} store
 * @param {Derived} keys
 * @param {Device} device
 * @param {number} expiresMs
 * @param {AccountRecord | null} [known] this person's record on this device, if any
 * @returns {Promise<Session>}
 */
export async function keepSignedIn(store, keys, device, expiresMs, known) {
  const { login, schoolId } = keys;
  /** @type {AccountRecord} */
  const record = {
    id: hex(device.userId), schoolId: device.schoolId, userId: device.userId, login, displayName: known?.displayName ?? login,
    roles: device.roles, kdfParams: keys.kdfParams, deviceId: device.deviceId, addedMs: known?.addedMs ?? Date.now(),
    lastUsedMs: Date.now(), sealed: {},
  };
  if (known?.pinnedSigningPk) {  // the school signing key this person pinned here before, and the version held
    record.pinnedSigningPk = known.pinnedSigningPk;
    device.pinnedSigningPk = known.pinnedSigningPk;
    const key = localKey(keys.account.kek);
    device.signedDirectory = heldDirectory(key, known);
    key.fill(0);
  }
  const session = new Session(store, record, device, keys, expiresMs);
  record.sealed = sealedKeys(session, /** @type {string} */ (device.token), expiresMs);
  await store.putAccount(record);
  await store.setSetting('school', hex(schoolId));
  await session.refresh();
  return session;
}

/**
 * The newest signed directory version this person's device accepted, sealed at rest (null if none, or if
 * the record predates the signed directory: the next refresh follows the server's again).
 * @param {Uint8Array} key the local key
 * @param {AccountRecord} record
 * @returns {import('../crypto/directory.js').SignedDirectory | null}
 */
function heldDirectory(key, record) {
  if (!record.sealed.directory) return null;
  try {
    return readDirectory(openLocal(key, record.schoolId, record.userId, 'directory', record.userId, record.sealed.directory));
  } catch (error) {
    if (error instanceof CryptoError) return null;
    throw error;
  }
}

/**
 * Unlock a person already on this device, with no network: derive the local key and open their records.
 * @param {LocalStore} store
 * @param {Api} api
 * @param {AccountRecord} record
 * @param {string} password
 * @returns {Promise<Session>}
 */
export async function unlock(store, api, record, password) {
  const account = deriveAccount(password, KdfParams.decode(record.kdfParams));
  const key = localKey(account.kek);
  const { schoolId, userId, deviceId } = record;
  let both;
  try {
    both = openLocal(key, schoolId, userId, 'identity', userId, record.sealed.identity);
  } catch (error) {
    if (error instanceof CryptoError) throw new WrongPassword('That password does not unlock this account.');
    throw error;
  }
  const identity = { x25519Sk: both.slice(0, 32), ed25519Seed: both.slice(32, 64) };
  both.fill(0);
  const deviceSeed = openLocal(key, schoolId, userId, 'device-key', deviceId, record.sealed['device-key']);
  const token = JSON.parse(text.decode(openLocal(key, schoolId, userId, 'session', deviceId, record.sealed.session)));
  const signedDirectory = heldDirectory(key, record);
  key.fill(0);
  const device = new Device({
    api, schoolId, userId, login: record.login, identity, deviceId, deviceSeed, roles: record.roles,
    token: token.token, signedDirectory, pinnedSigningPk: record.pinnedSigningPk ?? null,
  });
  const derived = { schoolId, login: record.login, userId, kdfParams: record.kdfParams, account };
  const session = new Session(store, record, device, derived, token.expires_ms);
  const roster = await store.roster(record.id);
  if (roster) session.pupils = session.openJson('roster', userId, roster.sealed);
  await store.updateAccount(record.id, {}, { lastUsedMs: Date.now() });
  return session;
}
