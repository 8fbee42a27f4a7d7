// The one module that touches IndexedDB (through idb). Every other module asks it by name: queue an envelope,
// read the head of the outbox, store a sealed draft. It holds only ciphertext and public bookkeeping: sealed
// envelopes, each device's chain state and cursor, and records sealed under the local key (docs/PROTOCOL.md
// section 12): the account's keys, drafts, the roster and the directory. Nothing is at rest in plaintext.
//
// Schema changes happen only in the stepwise blocks of `upgrade`, each of which adds and never drops user
// data, so an update of the app never loses the outbox.

import { openDB } from 'idb';

export const DB_NAME = 'cairn';
export const DB_VERSION = 2;

/**
 * @typedef {object} OutboxItem  one sealed, signed envelope waiting for the server's ack
 * @property {number} [position] the order of the device's outbox (auto-increment)
 * @property {string} device the author device id, hex
 * @property {string} account the user id, hex
 * @property {string} envelopeId hex
 * @property {Uint8Array} body the envelope
 * @property {number} queuedMs
 * @property {number} attempts
 * @property {string | null} failedCode the server's code when it refused this item
 * @property {string | null} failedDetail
 */
/**
 * @typedef {object} ChainRecord  what the device's next envelope follows (docs/PROTOCOL.md 6.1)
 * @property {string} device
 * @property {number} counter the last counter used (0: none yet)
 * @property {Uint8Array} lastHash
 * @property {[number, number] | null} lastHlc the device's last clock reading
 */
/**
 * @typedef {object} AccountRecord  a person signed in on this device; secrets only sealed
 * @property {string} id user id, hex
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} userId
 * @property {string} login
 * @property {string} displayName
 * @property {string[]} roles
 * @property {Uint8Array} kdfParams public Argon2id parameters: unlocking offline derives the local key from them
 * @property {Uint8Array} deviceId this account's device on this browser
 * @property {number} addedMs
 * @property {number} lastUsedMs
 * @property {Record<string, Uint8Array>} sealed local-sealed records by kind: identity, device-key, session, directory
 * @property {DataKeyWraps} [wraps] this device's data key for this person, wrapped (docs/PROTOCOL.md 2.8); a
 *   record without it is of local format version 1, re-sealed at its next unlock (section 12)
 * @property {string} [schoolName] the school's name as the server last gave it (printed headings)
 * @property {Uint8Array} [pinnedSigningPk] the school signing key pinned at this person's first sign-in here
 *   (public; docs/PROTOCOL.md 13)
 */
/**
 * The data key's wraps: `password` under the password's KEK, `identity` under the X25519 identity key, and,
 * while a password change waits for the server's answer, `staged` under the new password's KEK (whose KDF
 * parameters are `stagedKdfParams`). Ciphertext only.
 * @typedef {{password: Uint8Array, identity: Uint8Array, staged?: Uint8Array, stagedKdfParams?: Uint8Array}} DataKeyWraps
 */
/** @typedef {{id: string, account: string, updatedMs: number, sealed: Uint8Array}} DraftRecord */
/** @typedef {{account: string, updatedMs: number, sealed: Uint8Array}} RosterRecord */
/** @typedef {{device: string, cursor: string}} CursorRecord */
/** @typedef {{name: string, value: unknown}} SettingRecord */
/**
 * A device's delivery key: its 32-byte Ed25519 seed, in the clear on purpose (it can send only what is
 * already sealed and signed), and whether the server has its public half.
 * @typedef {{seed: Uint8Array, registered: boolean}} DeliveryRecord
 */
/**
 * One record of the review cache (pwa/js/review/): `key` is `account|kind|id`, `sealed` is a local-sealed
 * record of that kind (docs/PROTOCOL.md 12.1).
 * @typedef {{key: string, account: string, sealed: Uint8Array}} ReviewRecord
 */
/**
 * @typedef {{
 *   outbox: {key: number, value: OutboxItem, indexes: {envelopeId: string, device: string}},
 *   chain: {key: string, value: ChainRecord},
 *   accounts: {key: string, value: AccountRecord},
 *   drafts: {key: string, value: DraftRecord, indexes: {account: string}},
 *   roster: {key: string, value: RosterRecord},
 *   cursor: {key: string, value: CursorRecord},
 *   settings: {key: string, value: SettingRecord},
 *   review: {key: string, value: ReviewRecord, indexes: {account: string}},
 * }} CairnSchema
 */
/** @typedef {import('idb').IDBPDatabase<CairnSchema>} CairnDb */

/**
 * Open (and upgrade, step by step) the device's database.
 * @param {{name?: string, onBlocking?: () => void}} [options] onBlocking: a newer version of the app needs
 *   this connection closed; it is closed, and the page should offer a reload
 * @returns {Promise<LocalStore>}
 */
export async function openStore({ name = DB_NAME, onBlocking } = {}) {
  /** @type {CairnDb} */
  const db = await openDB(name, DB_VERSION, {
    upgrade(raw, oldVersion) {
      const udb = /** @type {CairnDb} */ (/** @type {unknown} */ (raw));
      if (oldVersion < 1) {
        const outbox = udb.createObjectStore('outbox', { keyPath: 'position', autoIncrement: true });
        outbox.createIndex('envelopeId', 'envelopeId', { unique: true });
        outbox.createIndex('device', 'device');
        udb.createObjectStore('chain', { keyPath: 'device' });
        udb.createObjectStore('accounts', { keyPath: 'id' });
        udb.createObjectStore('drafts', { keyPath: 'id' }).createIndex('account', 'account');
        udb.createObjectStore('roster', { keyPath: 'account' });
        udb.createObjectStore('cursor', { keyPath: 'device' });
        udb.createObjectStore('settings', { keyPath: 'name' });
      }
      if (oldVersion < 2) {
        udb.createObjectStore('review', { keyPath: 'key' }).createIndex('account', 'account');
      }
      // Version 3 and later: add a block `if (oldVersion < 3) { ... }` here. Never delete a store or
      // a record that holds user data; move it.
    },
    blocking() {
      db.close();
      onBlocking?.();
    },
  });
  return new LocalStore(db);
}

/** The device's store. Method names follow sync/outbox.py where they do the same thing. */
export class LocalStore {
  /** @param {CairnDb} db */
  constructor(db) {
    this.db = db;
  }

  close() {
    this.db.close();
  }

  // --- the outbox and the chain ------------------------------------------------------------------

  /**
   * The device's chain state (counter 0 and a zero hash before its first envelope).
   * @param {string} device
   * @returns {Promise<ChainRecord>}
   */
  async chain(device) {
    return (await this.db.get('chain', device)) ?? { device, counter: 0, lastHash: new Uint8Array(32), lastHlc: null };
  }

  /**
   * Seal the next envelope against the device's chain and queue it, in one transaction: if `seal` throws,
   * neither the chain nor the outbox changes. `seal` must be synchronous (no await inside), so the
   * transaction stays open.
   * @param {string} device
   * @param {string} account
   * @param {(chain: ChainRecord) => {envelopeId: string, body: Uint8Array, hash: Uint8Array, hlc: [number, number] | null}} seal
   * @returns {Promise<string>} the envelope id
   */
  async queue(device, account, seal) {
    const tx = this.db.transaction(['chain', 'outbox'], 'readwrite');
    const chains = tx.objectStore('chain');
    const chain = (await chains.get(device)) ?? { device, counter: 0, lastHash: new Uint8Array(32), lastHlc: null };
    let made;
    try {
      made = seal(chain);
    } catch (error) {
      tx.abort();
      await tx.done.catch(() => undefined);
      throw error;
    }
    await Promise.all([
      tx.objectStore('outbox').add({
        device, account, envelopeId: made.envelopeId, body: made.body, queuedMs: Date.now(), attempts: 0,
        failedCode: null, failedDetail: null,
      }),
      chains.put({ device, counter: chain.counter + 1, lastHash: made.hash, lastHlc: made.hlc ?? chain.lastHlc }),
      tx.done,
    ]);
    return made.envelopeId;
  }

  /**
   * The device's oldest queued envelopes, in order, up to `limit` items and about `maxBytes` once encoded.
   * @param {string} device
   * @param {number} limit
   * @param {number} maxBytes
   * @returns {Promise<OutboxItem[]>}
   */
  async head(device, limit, maxBytes) {
    /** @type {OutboxItem[]} */
    const out = [];
    let size = 0;
    let cursor = await this.db.transaction('outbox').store.index('device').openCursor(IDBKeyRange.only(device));
    while (cursor && out.length < limit) {
      size += Math.ceil((cursor.value.body.length * 4) / 3) + 8;
      if (out.length && size > maxBytes) break;
      out.push(cursor.value);
      cursor = await cursor.continue();
    }
    return out;
  }

  /**
   * The server stored these durably: they leave the outbox, and the device keeps no copy.
   * @param {string[]} envelopeIds hex
   */
  async acknowledged(envelopeIds) {
    const tx = this.db.transaction('outbox', 'readwrite');
    const index = tx.store.index('envelopeId');
    const done = [];
    for (const id of envelopeIds) {
      const key = await index.getKey(id);
      if (key !== undefined) done.push(tx.store.delete(key));
    }
    await Promise.all([...done, tx.done]);
  }

  /**
   * The server refused the item at `position`: it stays at the head, marked, for a person to see.
   * @param {number} position
   * @param {string} code
   * @param {string} detail
   */
  async failed(position, code, detail) {
    const tx = this.db.transaction('outbox', 'readwrite');
    const item = await tx.store.get(position);
    if (item) await tx.store.put({ ...item, attempts: item.attempts + 1, failedCode: code, failedDetail: detail.slice(0, 500) });
    await tx.done;
  }

  /**
   * How many envelopes wait, for one device or for every device on this browser.
   * @param {string} [device]
   */
  async pendingCount(device) {
    return device === undefined ? this.db.count('outbox') : this.db.countFromIndex('outbox', 'device', device);
  }

  /**
   * When the oldest waiting envelope was queued (null when none waits).
   * @param {string} [device]
   * @returns {Promise<number | null>}
   */
  async oldestPendingMs(device) {
    const tx = this.db.transaction('outbox');
    const cursor = device === undefined ? await tx.store.openCursor()
      : await tx.store.index('device').openCursor(IDBKeyRange.only(device));
    return cursor ? cursor.value.queuedMs : null;
  }

  /**
   * Pending envelopes and refusals per device, for the status line (no envelope bytes leave this method).
   * @returns {Promise<Map<string, {count: number, oldestMs: number, refused: string | null}>>}
   */
  async pendingByDevice() {
    /** @type {Map<string, {count: number, oldestMs: number, refused: string | null}>} */
    const out = new Map();
    let cursor = await this.db.transaction('outbox').store.openCursor();
    while (cursor) {
      const { device, queuedMs, failedCode } = cursor.value;
      const row = out.get(device) ?? { count: 0, oldestMs: queuedMs, refused: null };
      row.count += 1;
      row.oldestMs = Math.min(row.oldestMs, queuedMs);
      row.refused = row.refused ?? failedCode;
      out.set(device, row);
      cursor = await cursor.continue();
    }
    return out;
  }

  // --- the cursor --------------------------------------------------------------------------------

  /** @param {string} device @returns {Promise<string | null>} */
  async cursor(device) {
    return (await this.db.get('cursor', device))?.cursor ?? null;
  }

  /** @param {string} device @param {string} cursor */
  async setCursor(device, cursor) {
    await this.db.put('cursor', { device, cursor });
  }

  // --- accounts on this device, drafts, roster, settings -------------------------------------------

  /** @returns {Promise<AccountRecord[]>} */
  async accounts() {
    return this.db.getAll('accounts');
  }

  /** @param {string} id @returns {Promise<AccountRecord | undefined>} */
  async account(id) {
    return this.db.get('accounts', id);
  }

  /** @param {AccountRecord} record */
  async putAccount(record) {
    await this.db.put('accounts', record);
  }

  /**
   * Replace some sealed records of an account, leaving the others.
   * @param {string} id
   * @param {Record<string, Uint8Array>} sealed
   * @param {Partial<AccountRecord>} [fields]
   */
  async updateAccount(id, sealed, fields = {}) {
    const tx = this.db.transaction('accounts', 'readwrite');
    const record = await tx.store.get(id);
    if (record) await tx.store.put({ ...record, ...fields, sealed: { ...record.sealed, ...sealed } });
    await tx.done;
  }

  /**
   * Re-seal every local record of one account, in one transaction, so that a crash leaves all of them as
   * they were or all re-sealed: a version 1 store opened once with the old key (docs/PROTOCOL.md 12).
   * `reseal(where, key, sealed)` is synchronous (the transaction stays open) and returns the new sealed
   * bytes, or null to drop a record that is only a cache; `where` is `account:<kind>`, `draft`, `roster`
   * or `review`, `key` the record's key in its store. `fields` are set on the account record with it.
   * @param {string} account
   * @param {(where: string, key: string, sealed: Uint8Array) => Uint8Array | null} reseal
   * @param {Partial<AccountRecord>} fields
   */
  async resealAccount(account, reseal, fields) {
    const tx = this.db.transaction(['accounts', 'drafts', 'roster', 'review'], 'readwrite');
    const record = await tx.objectStore('accounts').get(account);
    if (!record) {
      tx.abort();
      await tx.done.catch(() => undefined);
      throw new Error('This person is not on this device.');
    }
    const drafts = await tx.objectStore('drafts').index('account').getAll(IDBKeyRange.only(account));
    const roster = await tx.objectStore('roster').get(account);
    const review = await tx.objectStore('review').index('account').getAll(IDBKeyRange.only(account));
    /** @type {Promise<unknown>[]} */
    const writes = [];
    try {
      /** @type {Record<string, Uint8Array>} */
      const sealed = {};
      for (const [kind, bytes] of Object.entries(record.sealed)) {
        const made = reseal(`account:${kind}`, account, bytes);
        if (made) sealed[kind] = made;
      }
      writes.push(tx.objectStore('accounts').put({ ...record, ...fields, sealed }));
      for (const draft of drafts) {
        const made = reseal('draft', draft.id, draft.sealed);
        writes.push(made ? tx.objectStore('drafts').put({ ...draft, sealed: made }) : tx.objectStore('drafts').delete(draft.id));
      }
      if (roster) {
        const made = reseal('roster', account, roster.sealed);
        writes.push(made ? tx.objectStore('roster').put({ ...roster, sealed: made }) : tx.objectStore('roster').delete(account));
      }
      for (const item of review) {
        const made = reseal('review', item.key, item.sealed);
        writes.push(made ? tx.objectStore('review').put({ ...item, sealed: made }) : tx.objectStore('review').delete(item.key));
      }
    } catch (error) {
      tx.abort();
      await tx.done.catch(() => undefined);
      throw error;
    }
    await Promise.all([...writes, tx.done]);
  }

  /** @param {string} account @returns {Promise<DraftRecord[]>} */
  async drafts(account) {
    return this.db.getAllFromIndex('drafts', 'account', account);
  }

  /** @param {DraftRecord} draft */
  async putDraft(draft) {
    await this.db.put('drafts', draft);
  }

  /** @param {string} id */
  async deleteDraft(id) {
    await this.db.delete('drafts', id);
  }

  /** @param {string} account @returns {Promise<RosterRecord | undefined>} */
  async roster(account) {
    return this.db.get('roster', account);
  }

  /** @param {RosterRecord} record */
  async putRoster(record) {
    await this.db.put('roster', record);
  }

  /** @param {string} name @returns {Promise<unknown>} */
  async setting(name) {
    return (await this.db.get('settings', name))?.value;
  }

  /** @param {string} name @param {unknown} value */
  async setSetting(name, value) {
    await this.db.put('settings', { name, value });
  }

  /**
   * This device's delivery key (docs/PROTOCOL.md 3.2), kept outside the person's sealed records so the device
   * can send what it sealed while they are locked out: it signs a delivery connection, and nothing else.
   * @param {string} device hex
   * @returns {Promise<DeliveryRecord | undefined>}
   */
  async deliveryKey(device) {
    return /** @type {DeliveryRecord | undefined} */ ((await this.db.get('settings', `delivery:${device}`))?.value);
  }

  /**
   * Keep a device's delivery key, in one transaction with a check that its account is still on this device
   * (a wipe that ran meanwhile must not be followed by a key of a device that is gone).
   * @param {string} account hex @param {string} device hex @param {DeliveryRecord} record
   * @returns {Promise<boolean>} false if the account is not on this device (nothing was written)
   */
  async setDeliveryKey(account, device, record) {
    const tx = this.db.transaction(['accounts', 'settings'], 'readwrite');
    const here = (await tx.objectStore('accounts').get(account)) !== undefined;
    if (here) await tx.objectStore('settings').put({ name: `delivery:${device}`, value: record });
    await tx.done;
    return here;
  }

  // --- the review cache (sealed; pwa/js/review/cache.js) ------------------------------------------

  /**
   * Every review record of one account and kind, by key.
   * @param {string} account
   * @param {string} kind
   * @returns {Promise<ReviewRecord[]>}
   */
  async reviewRecords(account, kind) {
    const prefix = `${account}|${kind}|`;
    return this.db.getAll('review', IDBKeyRange.bound(prefix, `${prefix}\uffff`));
  }

  /** @param {string} key @returns {Promise<ReviewRecord | undefined>} */
  async reviewRecord(key) {
    return this.db.get('review', key);
  }

  /**
   * Forget one account's review cache and its device's pull cursor, in one transaction, so the next pull
   * starts from the beginning (the cache no longer opens, e.g. after a password reset changed the local key).
   * @param {string} account
   * @param {string} device
   */
  async clearReview(account, device) {
    const tx = this.db.transaction(['review', 'cursor'], 'readwrite');
    const review = tx.objectStore('review');
    await Promise.all([
      ...(await review.index('account').getAllKeys(IDBKeyRange.only(account))).map((key) => review.delete(key)),
      tx.objectStore('cursor').delete(device),
      tx.done,
    ]);
  }

  /**
   * Write review records in one transaction.
   * @param {ReviewRecord[]} records
   */
  async putReviewRecords(records) {
    const tx = this.db.transaction('review', 'readwrite');
    await Promise.all([...records.map((r) => tx.store.put(r)), tx.done]);
  }

  /**
   * Remove everything of one account and its device (a revoked device, or a person removed from this
   * tablet). Unsent envelopes are dropped only here.
   * @param {string} account
   * @param {string} device
   */
  async wipe(account, device) {
    const tx = this.db.transaction(['outbox', 'chain', 'accounts', 'drafts', 'roster', 'cursor', 'review', 'settings'],
      'readwrite');
    const outbox = tx.objectStore('outbox');
    const drafts = tx.objectStore('drafts');
    const review = tx.objectStore('review');
    const done = [
      ...(await review.index('account').getAllKeys(IDBKeyRange.only(account))).map((key) => review.delete(key)),
      ...(await outbox.index('device').getAllKeys(IDBKeyRange.only(device))).map((key) => outbox.delete(key)),
      ...(await drafts.index('account').getAllKeys(IDBKeyRange.only(account))).map((key) => drafts.delete(key)),
      tx.objectStore('chain').delete(device),
      tx.objectStore('cursor').delete(device),
      tx.objectStore('roster').delete(account),
      tx.objectStore('accounts').delete(account),
      tx.objectStore('settings').delete(`delivery:${device}`),
    ];
    await Promise.all([...done, tx.done]);
  }
}
