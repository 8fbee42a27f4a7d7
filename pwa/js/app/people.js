// The people signed in on this device, and the one who is unlocked now.
//
// Signing in needs the server once; after that a person unlocks offline with the password: Argon2id over the
// stored (public) KDF parameters gives the KEK, the KEK opens the wrap of this device's data key
// (docs/PROTOCOL.md 2.8), and the data key opens this person's sealed records (12). The password only wraps
// the data key: changing it, or replacing it with the recovery key, rewraps the key and re-seals nothing, so
// drafts, the outbox's device key and unsent audit entries all survive. Keys live only in memory, in a
// `Session`, and are wiped on lock. At rest, each record is sealed and bound to school, user, kind and record
// id, so on a shared tablet one person's record can never be offered as another's.

import {
  CryptoError, KdfParams, SLOT_PASSWORD, SLOT_PASSWORD_WRAP, deriveAccount, localKey, newDataKey, newKdfParams,
  openLegacyLocal, openLocal, passwordWrapKey, readDirectory, sealBundle, sealLocal, signPasswordChange,
  signingKeyPair, wrapDataKey,
} from '../crypto/index.js';
import { ApiFailure, Device, derive, signIn } from '../sync/device.js';
import { WrongPassword, openByIdentity, openByPassword, upgradeStore, wrapsFor } from './datakey.js';
import { Outbox } from '../sync/outbox.js';
import { b64d, b64e, hex } from '../sync/protocol.js';

export { WrongPassword, openByIdentity };

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../db.js').AccountRecord} AccountRecord */
/** @typedef {import('../db.js').DataKeyWraps} DataKeyWraps */
/** @typedef {import('../crypto/bundle.js').IdentityKeys} IdentityKeys */
/** @typedef {import('../sync/device.js').Api} Api */
/** @typedef {import('../sync/device.js').Derived} Derived */
/** @typedef {import('../sync/device.js').Directory} Directory */
/** @typedef {{id: string, name: string, className: string}} Pupil */

const utf8 = new TextEncoder();
const text = new TextDecoder();

/** An unlocked person: their keys, in memory only. */
export class Session {
  /**
   * @param {LocalStore} store
   * @param {AccountRecord} record
   * @param {Device} device
   * @param {Derived} derived kept to sign in again when the session token expires
   * @param {number} expiresMs
   * @param {Uint8Array} dataKey this device's data key for this person (docs/PROTOCOL.md 2.8)
   */
  constructor(store, record, device, derived, expiresMs, dataKey) {
    this.store = store;
    this.record = record;
    this.device = device;
    this.derived = derived;
    /** The data key: it seals every local record of this person (the name is the review cache's). */
    this.localKey = dataKey;
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
    this.device.wiped = true; // directory work still in flight ends as `Locked`, not as a failed decryption
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
 * If the person is already on this device, their existing device (and its outbox, drafts and unsent audit
 * entries) is kept, whatever happened to the password meanwhile: the new password, or the identity keys the
 * server's bundle gives, opens the data key again. `device` is the device a new account was registered with
 * (sync/join.js), signed in for the first time.
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
  /** @type {Uint8Array | null} */
  let dataKey = null;
  let byIdentity = false;
  if (known?.wraps) {
    dataKey = openByPassword(known, keys.account.kek) ?? openByPassword(known, keys.account.kek, true);
    // not opened: the password changed on another device, or was recovered; the bundle opens it below
    byIdentity = !dataKey;
    existing = {
      deviceId: known.deviceId,
      deviceSeed: dataKey ? openLocal(dataKey, known.schoolId, known.userId, 'device-key', known.deviceId, known.sealed['device-key'])
        : new Uint8Array(32), // a placeholder: the server knows this device's key, and the proof is the login key's
    };
  } else if (known) {
    try {
      const key = localKey(keys.account.kek);
      existing = { deviceId: known.deviceId, deviceSeed: openLegacyLocal(key, known.schoolId, known.userId, 'device-key', known.deviceId, known.sealed['device-key']) };
      key.fill(0);
    } catch (error) {
      if (!(error instanceof CryptoError)) throw error;
      // A version 1 store sealed under a password this device no longer has: unsent entries need its device
      // key, which only the old password opens, so never replace a record that still has some.
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
  if (known && byIdentity) {
    dataKey = openByIdentity(known, result.device.identity);
    if (!dataKey) {
      return { derived: keys, error: new WrongPassword('The keys kept on this device for you do not open. '
        + 'Ask the safeguarding team for help before removing anything.') };
    }
    const seed = openLocal(dataKey, known.schoolId, known.userId, 'device-key', known.deviceId, known.sealed['device-key']);
    result.device.deviceSeed = seed;
    result.device.deviceKey = signingKeyPair(seed);
  }
  const session = await keepSignedIn(store, keys, result.device, result.expiresMs, known, dataKey);
  return { session, derived: keys };
}

/**
 * Keep a person just signed in (or recovered, sync/join.js) on this device: the data key (the one this device
 * already holds for them, or a new one) wrapped under the password's KEK and the identity key, their keys
 * sealed under it, then a first refresh. One write replaces the old wraps with the new, so a crash leaves
 * one set or the other, and either opens.
 * @param {LocalStore} store
 * @param {Derived} keys
 * @param {Device} device
 * @param {number} expiresMs
 * @param {AccountRecord | null} [known] this person's record on this device, if any
 * @param {Uint8Array | null} [opened] the data key of `known`, opened already
 * @returns {Promise<Session>}
 */
export async function keepSignedIn(store, keys, device, expiresMs, known, opened = null) {
  const { login, schoolId } = keys;
  const sameDevice = known && hex(known.deviceId) === hex(device.deviceId);
  let dataKey = sameDevice ? opened : null;
  if (sameDevice && !dataKey && known && !known.wraps) {
    try {
      dataKey = await upgradeStore(store, known, keys.account.kek); // version 1, same password: re-sealed
    } catch (error) {
      if (!(error instanceof WrongPassword)) throw error;
    }
  }
  const reused = dataKey !== null;
  const key = dataKey ?? newDataKey();
  /** @type {AccountRecord} */
  const record = {
    id: hex(device.userId), schoolId: device.schoolId, userId: device.userId, login, displayName: known?.displayName ?? login,
    roles: device.roles, kdfParams: keys.kdfParams, deviceId: device.deviceId, addedMs: known?.addedMs ?? Date.now(),
    lastUsedMs: Date.now(), sealed: {},
  };
  record.wraps = wrapsFor(key, keys.account.kek, device.identity.x25519Sk, record);
  if (known?.pinnedSigningPk) {  // the school signing key this person pinned here before, and the version held
    record.pinnedSigningPk = known.pinnedSigningPk;
    device.pinnedSigningPk = known.pinnedSigningPk;
    if (reused) {
      const upgraded = (await store.account(known.id)) ?? known;
      device.signedDirectory = heldDirectory(key, upgraded);
    }
  }
  const session = new Session(store, record, device, keys, expiresMs, key);
  record.sealed = sealedKeys(session, /** @type {string} */ (device.token), expiresMs);
  await store.putAccount(record);
  await store.setSetting('school', hex(schoolId));
  await session.refresh();
  return session;
}

/**
 * Change this person's password (docs/PROTOCOL.md 2.9, 10.1), online: the old login key signs the new
 * material over a fresh challenge. The data key is rewrapped, never re-sealed: the new wrap is stored beside
 * the old one before the request, replaces it when the server answers, and is dropped if the server refuses;
 * a lost answer leaves a store that opens with either password. Every other session of the account ends.
 * @param {Session} session
 * @param {string} oldPassword
 * @param {string} newPassword
 * @param {{totp?: string}} [options]
 */
export async function changePassword(session, oldPassword, newPassword, { totp } = {}) {
  const { device, store } = session;
  const { schoolId, userId, deviceId } = session.record;
  const start = await device.call('POST', '/api/v1/account/password/start', {});
  const old = deriveAccount(oldPassword, KdfParams.decode(b64d(start.kdf_params, 'kdf_params')));
  const kdfParams = newKdfParams().encode();
  const next = deriveAccount(newPassword, KdfParams.decode(kdfParams));
  const bundle = sealBundle(device.identity, next.kek, SLOT_PASSWORD, schoolId, userId);
  const signature = signPasswordChange(old.loginSecretKey, {
    schoolId, userId, challenge: b64d(start.nonce, 'nonce'), kdfParams, loginPk: next.loginPublicKey, bundle,
  });
  for (const k of [old.kek, old.loginSecretKey, old.loginSeed]) k.fill(0);
  const wraps = /** @type {DataKeyWraps} */ ((await store.account(session.id))?.wraps ?? session.record.wraps);
  const byNew = passwordWrapKey(next.kek);
  const staged = wrapDataKey(session.localKey, byNew, SLOT_PASSWORD_WRAP, schoolId, userId, deviceId);
  byNew.fill(0);
  await store.updateAccount(session.id, {}, { wraps: { password: wraps.password, identity: wraps.identity, staged, stagedKdfParams: kdfParams } });
  /** @type {Record<string, unknown>} */
  const body = {
    challenge_id: start.challenge_id, signature: b64e(signature), kdf_params: b64e(kdfParams),
    login_pk: b64e(next.loginPublicKey), bundle: b64e(bundle),
  };
  if (totp) body.totp = totp;
  try {
    await device.call('POST', '/api/v1/account/password', body);
  } catch (error) {
    if (error instanceof ApiFailure) { // refused: nothing changed on the server, so the staged wrap goes
      await store.updateAccount(session.id, {}, { wraps: { password: wraps.password, identity: wraps.identity } });
    }
    throw error;
  }
  const changed = { password: staged, identity: wraps.identity };
  await store.updateAccount(session.id, {}, { kdfParams, wraps: changed });
  session.record = { ...session.record, kdfParams, wraps: changed };
  for (const k of [session.derived.account.kek, session.derived.account.loginSecretKey, session.derived.account.loginSeed]) k.fill(0);
  session.derived = { ...session.derived, kdfParams, account: next };
}

/**
 * The newest signed directory version this person's device accepted, sealed at rest (null if none, or if
 * the record predates the signed directory: the next refresh follows the server's again).
 * @param {Uint8Array} key the data key
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
 * Unlock a person already on this device, with no network: derive the KEK, open the data key and with it
 * their records. A version 1 store is re-sealed first; a wrap staged by a password change whose answer was
 * lost opens with the new password, and then replaces the old.
 * @param {LocalStore} store
 * @param {Api} api
 * @param {AccountRecord} record
 * @param {string} password
 * @returns {Promise<Session>}
 */
export async function unlock(store, api, record, password) {
  let account = deriveAccount(password, KdfParams.decode(record.kdfParams));
  /** @type {Uint8Array | null} */
  let dataKey;
  if (!record.wraps) {
    dataKey = await upgradeStore(store, record, account.kek);
    record = (await store.account(record.id)) ?? record;
  } else {
    dataKey = openByPassword(record, account.kek);
    const { staged, stagedKdfParams, identity: identityWrap } = record.wraps;
    if (!dataKey && staged && stagedKdfParams) {
      const next = deriveAccount(password, KdfParams.decode(stagedKdfParams));
      dataKey = openByPassword(record, next.kek, true);
      if (dataKey) {
        account = next;
        await store.updateAccount(record.id, {}, { kdfParams: stagedKdfParams, wraps: { password: staged, identity: identityWrap } });
        record = (await store.account(record.id)) ?? record;
      }
    }
    if (!dataKey) throw new WrongPassword('That password does not unlock this account.');
  }
  const { schoolId, userId, deviceId } = record;
  const both = openLocal(dataKey, schoolId, userId, 'identity', userId, record.sealed.identity);
  const identity = { x25519Sk: both.slice(0, 32), ed25519Seed: both.slice(32, 64) };
  both.fill(0);
  const deviceSeed = openLocal(dataKey, schoolId, userId, 'device-key', deviceId, record.sealed['device-key']);
  const token = JSON.parse(text.decode(openLocal(dataKey, schoolId, userId, 'session', deviceId, record.sealed.session)));
  const signedDirectory = heldDirectory(dataKey, record);
  const device = new Device({
    api, schoolId, userId, login: record.login, identity, deviceId, deviceSeed, roles: record.roles,
    token: token.token, signedDirectory, pinnedSigningPk: record.pinnedSigningPk ?? null,
  });
  const derived = { schoolId, login: record.login, userId, kdfParams: record.kdfParams, account };
  const session = new Session(store, record, device, derived, token.expires_ms, dataKey);
  const roster = await store.roster(record.id);
  if (roster) session.pupils = session.openJson('roster', userId, roster.sealed);
  await store.updateAccount(record.id, {}, { lastUsedMs: Date.now() });
  return session;
}
