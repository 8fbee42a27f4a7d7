// The device side of accounts and keys in the browser, the twin of sync/device.py: sign-in over the HTTP API
// (docs/PROTOCOL.md part 2, section 10), and `Device`, which holds what a signed-in device knows (identity,
// device key, token, the reader keys its grants open, the directory) and seals concerns into its outbox.
// Every key is made here, never on the server.

import {
  KdfParams, RECIPIENT_PERSON, RECIPIENT_READER_KEY, SLOT_PASSWORD, deriveAccount, envelope, envelopeHash,
  generateEntryKey, itemHex, makeDeviceCert, makeGrant, openBundle, openGrant, openRosterEntry, readGrant,
  rosterEntryAuthor, signChallenge, signingKeyPair, sortItems,
} from '../crypto/index.js';
import { b64d, b64e, hex, unhex } from './protocol.js';
import * as signed from './directory.js';

/** @typedef {import('./outbox.js').Outbox} Outbox */
/** @typedef {import('../db.js').ChainRecord} ChainRecord */
/** @typedef {import('../crypto/envelope.js').Recipient} Recipient */
/** @typedef {import('../crypto/bundle.js').IdentityKeys} IdentityKeys */
/** @typedef {import('../crypto/account.js').AccountKeys} AccountKeys */
/**
 * The school's directory: the verified content of the newest version signed with the school signing key
 * (sync/directory.js `listing`). Nothing the server serves unsigned is ever read as a key.
 * @typedef {import('./directory.js').Listing} Directory
 */
/** @typedef {import('../crypto/directory.js').SignedDirectory} SignedDirectory */
/** @typedef {import('../crypto/approval.js').Item} Item */

export const SAFEGUARDING = 'group:safeguarding';
export const SEN = 'group:sen';
export const ROSTER_STAFF = 'roster:staff';
export const ROSTER_SENSITIVE = 'roster:sensitive';

export class ApiFailure extends Error {
  /**
   * @param {number} status @param {string} code @param {string} detail
   * @param {Record<string, string>} [fields] per-field codes, as the server names them
   * @param {Record<string, unknown>} [error] the whole error object (totp_enrolment_required carries
   *   `totp_secret` and `totp_uri`)
   */
  constructor(status, code, detail, fields = {}, error = {}) {
    super(`${status} ${code}: ${detail}`);
    this.name = 'ApiFailure';
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.fields = fields;
    this.error = error;
  }
}

/** The device's keys were wiped (its person locked the app) while the work ran: its outcome is moot. */
export class Locked extends Error {
  constructor() {
    super('locked: the keys this work needed were wiped');
    this.name = 'Locked';
  }
}

export function nowMs() {
  return Date.now();
}

/** @param {number} n */
function random(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/**
 * A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version and variant bits, 74 random bits.
 * @returns {Uint8Array}
 */
export function uuid7() {
  const raw = random(16);
  let ms = nowMs();
  for (let i = 5; i >= 0; i--) {
    raw[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  raw[6] = 0x70 | (raw[6] & 0x0f);
  raw[8] = 0x80 | (raw[8] & 0x3f);
  return raw;
}

/** The server's HTTP API, same origin by default. */
export class Api {
  /** @param {string} [base] */
  constructor(base = '') {
    this.base = base;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {string | null} token
   * @param {Record<string, unknown>} [body]
   * @returns {Promise<any>}
   */
  async call(method, path, token, body) {
    /** @type {Record<string, string>} */
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const response = await fetch(this.base + path, {
      method, headers, body: method === 'GET' ? undefined : JSON.stringify(body ?? {}), cache: 'no-store',
      credentials: 'omit',
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : {};
    if (!response.ok) {
      const error = data.error ?? {};
      throw new ApiFailure(response.status, error.code ?? 'unknown', error.detail ?? '', error.fields ?? {}, error);
    }
    return data;
  }
}

/**
 * What the password gives, made once per sign-in attempt (Argon2id is slow on purpose): reused if the
 * server then asks for a one-time code.
 * @typedef {object} Derived
 * @property {Uint8Array} schoolId
 * @property {string} login
 * @property {Uint8Array} userId
 * @property {Uint8Array} kdfParams the 26 bytes the server sent
 * @property {AccountKeys} account
 */

/**
 * Ask for the account's KDF parameters and derive its keys from the password.
 * @param {Api} api
 * @param {Uint8Array} schoolId
 * @param {string} login
 * @param {string} password
 * @returns {Promise<Derived>}
 */
export async function derive(api, schoolId, login, password) {
  const start = await api.call('POST', '/api/v1/sign-in/start', null, { school_id: b64e(schoolId), login });
  const kdfParams = b64d(start.kdf_params, 'kdf_params');
  const account = deriveAccount(password, KdfParams.decode(kdfParams));
  return { schoolId, login, userId: b64d(start.user_id, 'user_id'), kdfParams, account };
}

/**
 * Sign in with derived keys (and a TOTP code where the account reads concerns). Without `existing` this is
 * a new device: it makes its own key, and its user's identity key (opened from the bundle the server returns
 * after a good proof) certifies it. Python: `sign_in`.
 * @param {Api} api
 * @param {Derived} derived
 * @param {{totp?: string, existing?: {deviceId: Uint8Array, deviceSeed: Uint8Array}}} [options]
 * @returns {Promise<{device: Device, expiresMs: number}>}
 */
export async function signIn(api, derived, { totp, existing } = {}) {
  const { schoolId, login, account } = derived;
  const start = await api.call('POST', '/api/v1/sign-in/start', null, { school_id: b64e(schoolId), login });
  const userId = b64d(start.user_id, 'user_id');
  const deviceId = existing?.deviceId ?? random(16);
  const deviceSeed = existing?.deviceSeed ?? random(32);
  const deviceKey = signingKeyPair(deviceSeed);
  /** @type {Record<string, unknown>} */
  const body = {
    challenge_id: start.challenge_id,
    device_id: b64e(deviceId),
    device_pk: b64e(deviceKey.publicKey),
    signature: b64e(signChallenge(account.loginSecretKey, schoolId, userId, b64d(start.nonce, 'nonce'))),
  };
  if (totp) body.totp = totp;
  const finish = await api.call('POST', '/api/v1/sign-in/finish', null, body);
  const identity = openBundle(b64d(finish.bundle, 'bundle'), account.kek, SLOT_PASSWORD, schoolId, userId);
  const device = new Device({
    api, schoolId, userId, login, identity, deviceId, deviceSeed, roles: finish.roles, token: finish.token,
  });
  if (!finish.device_known) {
    const cert = makeDeviceCert({
      identitySecretKey: signingKeyPair(identity.ed25519Seed).secretKey, schoolId, userId, deviceId,
      devicePk: deviceKey.publicKey, createdMs: nowMs(),
    });
    await api.call('POST', '/api/v1/devices/certify', finish.token, { cert: b64e(cert) });
  }
  return { device, expiresMs: finish.expires_ms };
}

/**
 * @typedef {object} DeviceFields
 * @property {Api} api
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} userId
 * @property {string} login
 * @property {IdentityKeys} identity
 * @property {Uint8Array} deviceId
 * @property {Uint8Array} deviceSeed
 * @property {string[]} roles
 * @property {string | null} [token]
 * @property {Directory | null} [directory]
 * @property {Uint8Array | null} [pinnedSigningPk] the school signing key, pinned at first sign-in
 * @property {SignedDirectory | null} [signedDirectory] the newest signed version this device accepted
 */

/** A signed-in (or unlocked) device: identity, device key, session token, and what its grants open. */
export class Device {
  /** @param {DeviceFields} fields */
  constructor({
    api, schoolId, userId, login, identity, deviceId, deviceSeed, roles, token = null, directory = null,
    pinnedSigningPk = null, signedDirectory = null,
  }) {
    this.api = api;
    this.schoolId = schoolId;
    this.userId = userId;
    this.login = login;
    this.identity = identity;
    this.deviceId = deviceId;
    this.deviceSeed = deviceSeed;
    this.deviceKey = signingKeyPair(deviceSeed);
    this.roles = roles;
    this.token = token;
    this.pinnedSigningPk = pinnedSigningPk;
    this.signedDirectory = signedDirectory;
    /** @type {string | null} the school's name as the server gives it: for headings, never for trust */
    this.schoolName = null;
    /**
     * The server's unsigned `current` rows from the last answer that had them (keyholders only): names and
     * labels to show beside the widenings this device computed, never keys to trust.
     * @type {any}
     */
    this.serverCurrent = null;
    this.directory = signedDirectory ? signed.listing(signedDirectory) : directory;
    /** @type {Promise<void>} directory work runs one at a time (`serial`) */
    this.directoryQueue = Promise.resolve();
    /** set when the session's keys are wiped (a lock): work still running fails as `Locked` */
    this.wiped = false;
    /** @type {Map<string, Uint8Array>} reader key secrets by `${hex(id)}:${version}` */
    this.readerKeys = new Map();
    /** @type {Map<string, Item>} key versions this device made in rotations (by `itemHex`): it lists them unattended */
    this.madeKeys = new Map();
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {Record<string, unknown>} [body]
   */
  call(method, path, body) {
    return this.api.call(method, path, this.token, body);
  }

  /** The pinned school signing key as people compare it (six groups of four), or null before the first. */
  get fingerprint() {
    return signed.fingerprintOf(this.schoolId, this.pinnedSigningPk);
  }

  /**
   * Follow the signed directory (docs/PROTOCOL.md 13), open every grant addressed to this user, and, on a
   * safeguarding keyholder's device, sign the next directory version if the school changed in a way it may
   * sign unattended (PROTOCOL 13.4): never a widening its person has not approved. Python: `Device.refresh`.
   */
  refresh() {
    return this.serial(async () => {
      const served = await this.follow();
      await this.openGrants();
      if (await this.resign(served)) await this.openGrants();
    });
  }

  /**
   * Run directory work one at a time on this device (the app refreshes from several places at once: a
   * version fetched before another call moved on would otherwise look like a rollback).
   * @template T
   * @param {() => Promise<T>} work
   * @returns {Promise<T>}
   */
  serial(work) {
    const guarded = async () => {
      if (this.wiped) throw new Locked();
      try {
        return await work();
      } catch (error) {
        throw this.wiped ? new Locked() : error; // a key zeroed under it, not a refusal or a bad directory
      }
    };
    const run = this.directoryQueue.then(guarded, guarded);
    this.directoryQueue = run.then(() => undefined, () => undefined);
    return run;
  }

  /**
   * Fetch the directory, verify every version after the one held against the pinned key, and keep the
   * newest; throws DirectoryRefused (keeping what it held) when one does not verify.
   * Python: `Device.follow_directory`.
   * @returns {Promise<any>} what the server answered last
   */
  followDirectory() {
    return this.serial(() => this.follow());
  }

  /**
   * The widenings the server's state holds that no keyholder has approved yet, computed on this device from
   * the server's `current` and the version it holds (for a keyholder; empty for anyone else, whom the
   * server sends no `current`). Python: `Device.pending`.
   * @returns {Promise<Item[]>}
   */
  pending() {
    return this.serial(async () => {
      const served = await this.follow();
      if (!served.changed || !served.current || !this.signedDirectory) return [];
      return signed.waiting(this.schoolId, served.current, this.signedDirectory, this.madeKeys.values());
    });
  }

  /**
   * This keyholder approves `items` (the widenings its person saw and confirmed on this device; null: every
   * widening pending now, as a reviewed list), signing an approval and the next directory version that
   * lists them, in one step. Returns what the new version added. Python: `Device.approve`.
   * @param {Iterable<Item> | null} [items]
   * @returns {Promise<Item[]>}
   */
  approve(items = null) {
    return this.serial(async () => {
      const served = await this.follow();
      if (!this.signedDirectory) throw new signed.DirectoryRefused('no_directory', 'the school has no signed directory yet');
      if (!served.changed || !served.current) return [];
      const held = this.signedDirectory;
      const chosen = items === null ? signed.waiting(this.schoolId, served.current, held, []) : [...items];
      /** @type {Item[]} */
      let included = [];
      if (await this.resign(served, chosen) && this.signedDirectory !== held) {
        included = sortItems(this.signedDirectory.approvals.flatMap((a) => a.items));
      }
      await this.openGrants();
      return included;
    });
  }

  /**
   * `followDirectory` without waiting its turn, only inside `serial`: follows every version, asking again
   * while the server says `more`.
   * @returns {Promise<any>}
   */
  async follow() {
    for (;;) {
      const since = this.signedDirectory ? this.signedDirectory.version : 0;
      const served = await this.call('GET', `/api/v1/directory?since=${since}`);
      if (typeof served.school_name === 'string') this.schoolName = served.school_name; // headings only, unsigned
      this.serverCurrent = served.changed && served.current ? served.current : null;
      const followed = signed.follow(served, this.schoolId, this.pinnedSigningPk, this.signedDirectory);
      if (followed) {
        this.signedDirectory = followed.directory;
        this.pinnedSigningPk = followed.pinnedPk;
        this.directory = signed.listing(followed.directory);
      }
      if (!followed || !followed.more) return served;
    }
  }

  /**
   * Sign the next version if the server's state changed in a way this device may sign: what narrows or
   * certifies, its own rotations' key versions (`madeKeys`), and `allowed` (what its person just approved).
   * Returns whether it published one. Runs inside `serial`. Python: `Device._resign`, except that a change
   * needing a decision (new identity keys for a listed account) makes an unattended round sign nothing
   * rather than fail, so the rest of a refresh goes on and the Approvals page can show the change.
   * @param {any} served
   * @param {Iterable<Item>} [allowed]
   * @param {number} [attempts]
   */
  async resign(served, allowed = [], attempts = 3) {
    const chosen = [...allowed];
    for (let i = 0; i < attempts; i++) {
      if (!served.changed || !served.current) return false;
      const key = signed.signingKeyFor(this.readerKeys, served.current.reader_keys, this.pinnedSigningPk);
      if (!key) return false;
      const held = this.signedDirectory;
      let raw;
      try {
        let prepared;
        try {
          prepared = signed.prepare(this.schoolId, served.current, held, [...chosen, ...this.madeKeys.values()]);
        } catch (e) { // new identity keys or another pupil key wait for a keyholder's decision: sign nothing now
          if (e instanceof signed.DirectoryRefused && signed.NEEDS_DECISION.includes(e.code) && !chosen.length) return false;
          throw e;
        }
        if (!prepared.differsFrom(held)) return false;
        const approvals = prepared.included.length && held
          ? [signed.makeApproval(this.deviceKey.secretKey, this.deviceId, this.userId, held, prepared.included)] : [];
        raw = signed.signNext(key, this.schoolId, prepared.content, held, nowMs(), { approvals });
      } finally {
        key.secretKey.fill(0);
      }
      try {
        await this.call('POST', '/api/v1/directory', { signed: b64e(raw) });
      } catch (e) {
        if (!(e instanceof ApiFailure) || e.code !== 'stale_directory') throw e;
        served = await this.follow();
        continue;
      }
      await this.follow();
      return true;
    }
    return false;
  }

  /**
   * Publish `version` of a reader key made on this device, sealed to `members` in one request (POST
   * /api/v1/keys/rotate); this device may then list it in the directory unattended (PROTOCOL 13.4, item 4).
   * Python: `Device.rotate_key`.
   * @param {Uint8Array} keyId
   * @param {number} version
   * @param {{publicKey: Uint8Array, secretKey: Uint8Array}} pair
   * @param {Uint8Array[]} members
   */
  async rotateKey(keyId, version, pair, members) {
    const listed = new Map(this.dir().accounts.map((a) => [a.id, b64d(a.identity_x25519_pk, 'pk')]));
    const entry = this.dir().reader_keys.find((k) => k.id === b64e(keyId));
    if (!entry) throw new Error('The directory does not list this reader key.');
    const grants = members.map((member) => {
      const memberPk = listed.get(b64e(member));
      if (!memberPk) throw new Error('The directory does not list this member.');
      return b64e(makeGrant({
        granterDeviceSecretKey: this.deviceKey.secretKey, schoolId: this.schoolId, readerKeyId: keyId, readerVersion: version,
        memberId: member, granterDevice: this.deviceId, createdMs: nowMs(), readerSk: pair.secretKey, memberX25519Pk: memberPk,
      }));
    });
    await this.call('POST', '/api/v1/keys/rotate', {
      reader_key_id: b64e(keyId), version, public_key: b64e(pair.publicKey), grants,
    });
    this.readerKeys.set(`${hex(keyId)}:${version}`, pair.secretKey);
    /** @type {Item} */
    const made = { kind: 'key', readerKeyId: keyId, version, purpose: entry.purpose, publicKey: pair.publicKey };
    this.madeKeys.set(itemHex(made), made);
    await this.refresh();
  }

  /**
   * What this device holds, as the entitlement rules read it: (reader key id, version, this user), base64url.
   * @returns {[string, number, string][]}
   */
  holdings() {
    const me = b64e(this.userId);
    return [...this.readerKeys.keys()].map((name) => {
      const [id, version] = name.split(':');
      return /** @type {[string, number, string]} */ ([b64e(unhex(id)), Number(version), me]);
    });
  }

  /** Open every grant addressed to this user whose granter device and key the signed directory lists. */
  async openGrants() {
    const directory = this.directory;
    if (!directory) return;
    const devices = new Map(directory.devices.map((d) => [hex(b64d(d.id, 'id')), b64d(d.public_key, 'pk')]));
    const listed = new Map(directory.reader_keys.map((k) => [`${hex(b64d(k.id, 'id'))}:${k.version}`, b64d(k.public_key, 'pk')]));
    for (const raw of (await this.call('GET', '/api/v1/grants')).grants) {
      const grant = b64d(raw, 'grant');
      const info = readGrant(grant);
      const key = `${hex(info.readerKeyId)}:${info.readerVersion}`;
      const granterPk = devices.get(hex(info.granterDevice));
      const readerPk = listed.get(key);
      if (this.readerKeys.has(key) || !readerPk || !granterPk) continue;
      this.readerKeys.set(key, openGrant(grant, {
        memberX25519Sk: this.identity.x25519Sk, schoolId: this.schoolId, memberId: this.userId,
        granterDevicePk: granterPk, readerPk,
      }));
    }
  }

  /** @returns {Directory} */
  dir() {
    if (!this.directory) throw new Error('This device has no directory yet: sign in online once.');
    return this.directory;
  }

  /**
   * The current version of a group's reader key, from the directory.
   * @param {string} purpose
   * @returns {{id: Uint8Array, version: number, pk: Uint8Array}}
   */
  groupKey(purpose) {
    const versions = this.dir().reader_keys.filter((k) => k.purpose === purpose && k.current);
    if (!versions.length) throw new Error(`The directory lists no current key for ${purpose}.`);
    const best = versions.reduce((a, b) => (b.version > a.version ? b : a));
    return { id: b64d(best.id, 'id'), version: best.version, pk: b64d(best.public_key, 'pk') };
  }

  /**
   * @param {Uint8Array} pupilId
   * @returns {{id: Uint8Array, version: number, pk: Uint8Array}}
   */
  pupilKey(pupilId) {
    const want = b64e(pupilId);
    const pupil = this.dir().pupils.find((p) => p.id === want);
    if (!pupil) throw new Error('The directory does not list this pupil.');
    const versions = this.dir().reader_keys.filter((k) => k.id === pupil.reader_key_id && k.current);
    if (!versions.length) throw new Error('The directory lists no current key for this pupil.');
    const best = versions.reduce((a, b) => (b.version > a.version ? b : a));
    return { id: b64d(best.id, 'id'), version: best.version, pk: b64d(best.public_key, 'pk') };
  }

  /**
   * docs/ARCHITECTURE.md's rule (Keys): the safeguarding group always; each pupil's key unless restricted; the category's
   * groups unless restricted; named people. Every key comes from the directory.
   * @param {Uint8Array[]} pupilIds
   * @param {{restricted?: boolean, groups?: string[], people?: [Uint8Array, Uint8Array][]}} [options]
   * @returns {Recipient[]}
   */
  recipientsFor(pupilIds, { restricted = false, groups = [], people = [] } = {}) {
    const safeguarding = this.groupKey(SAFEGUARDING);
    /** @type {Recipient[]} */
    const out = [{ kind: RECIPIENT_READER_KEY, id: safeguarding.id, version: safeguarding.version, pk: safeguarding.pk }];
    if (!restricted) {
      for (const pupil of pupilIds) {
        const k = this.pupilKey(pupil);
        out.push({ kind: RECIPIENT_READER_KEY, id: k.id, version: k.version, pk: k.pk });
      }
      for (const group of groups) {
        const k = this.groupKey(group);
        out.push({ kind: RECIPIENT_READER_KEY, id: k.id, version: k.version, pk: k.pk });
      }
    }
    const listed = new Map(this.dir().accounts.map((a) => [a.id, a.identity_x25519_pk]));
    for (const [userId, pk] of people) {
      if (listed.get(b64e(userId)) !== b64e(pk)) throw new Error('A named person\'s key is not the one the signed directory lists.');
      out.push({ kind: RECIPIENT_PERSON, id: userId, version: 1, pk });
    }
    return out;
  }

  /**
   * Fetch and open the roster this user may read: pupil id (hex) to fields (staff and sensitive merged).
   * An entry by a device the directory does not list is never trusted.
   * @returns {Promise<Map<string, Record<string, unknown>>>}
   */
  async roster() {
    const devices = new Map(this.dir().devices.map((d) => [hex(b64d(d.id, 'id')), b64d(d.public_key, 'pk')]));
    /** @type {Map<string, Record<string, unknown>>} */
    const out = new Map();
    for (const raw of (await this.call('GET', '/api/v1/roster')).entries) {
      const data = b64d(raw, 'entry');
      const authorPk = devices.get(hex(rosterEntryAuthor(data)));
      if (!authorPk) continue;
      const opened = openRosterEntry(data, this.readerKeys, this.schoolId, authorPk);
      const key = hex(opened.pupilId);
      out.set(key, { ...(out.get(key) ?? {}), ...JSON.parse(new TextDecoder().decode(opened.content)) });
    }
    return out;
  }

  /**
   * Seal one event and queue it in `outbox` (durably, before any network). `content` is the event's bytes,
   * or a function that makes them from the device's chain state (so its clock reading follows the last one).
   * A fresh entry key is made when none is given, and wiped after sealing: it is never stored.
   * @param {Outbox} outbox
   * @param {Uint8Array | ((chain: ChainRecord) => {content: Uint8Array, hlc: [number, number] | null})} content
   * @param {{concernId?: Uint8Array, entryKey?: Uint8Array, pupilIds?: Uint8Array[], restricted?: boolean,
   *   groups?: string[], recipients?: Recipient[]}} [options]
   * @returns {Promise<string>} the envelope id, hex
   */
  async write(outbox, content, { concernId = random(16), entryKey, pupilIds = [], restricted = false, groups = [], recipients } = {}) {
    const key = entryKey ?? generateEntryKey();
    const chosen = recipients ?? this.recipientsFor(pupilIds, { restricted, groups });
    try {
      return await outbox.queue((chain) => {
        const made = typeof content === 'function' ? content(chain) : { content, hlc: null };
        const envelopeId = uuid7();
        const sealed = envelope.seal({
          kind: envelope.KIND_CONCERN_EVENT, schoolId: this.schoolId, envelopeId, concernId,
          authorDevice: this.deviceId, counter: chain.counter + 1, prevHash: chain.lastHash, deviceTimeMs: nowMs(),
          entryKeyVersion: 1, pupilIds, recipients: chosen, entryKey: key, content: made.content,
          deviceSecretKey: this.deviceKey.secretKey,
        });
        return { envelopeId: hex(envelopeId), body: sealed, hash: envelopeHash(sealed), hlc: made.hlc };
      });
    } finally {
      if (!entryKey) key.fill(0);
    }
  }
}
