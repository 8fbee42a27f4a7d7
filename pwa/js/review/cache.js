// The review cache at rest: decrypted state of what this person can read, every record sealed under the
// local key (docs/PROTOCOL.md 12), through db.js's `review` store. Three kinds of record:
//
// - `review-index`, one per bucket (the first byte of the concern id, modulo BUCKETS): the summaries of its
//   concerns, so the inbox opens by opening 64 small boxes instead of thousands of envelopes;
// - `review-search`, one per bucket: the searchable text of its concerns, opened only for a search;
// - `review-concern`, one per concern: its decoded events, the entry keys it opened with (so a reader device
//   can write follow-ups offline) and each key version's recipients;
// - `review-state`, one per person: what they have read, and audit events not yet sent.
//
// A change re-seals only the buckets it touched. Nothing here is ever written in plaintext.

import { openLocal, sealLocal } from '../crypto/index.js';

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../db.js').ReviewRecord} ReviewRecord */

export const BUCKETS = 64;

/** The session's keys were wiped (lock, switch person): the cache refuses to seal under a zeroed key. */
export class Locked extends Error {}
const utf8 = new TextEncoder();
const text = new TextDecoder();

/**
 * The bucket of a concern id (hex).
 * @param {string} id
 */
export function bucketOf(id) {
  return parseInt(id.slice(0, 2), 16) % BUCKETS;
}

/** @param {number} n */
function bucketId(n) {
  const id = new Uint8Array(16);
  id[0] = n;
  return id;
}

/** @param {string} h */
function unhex(h) {
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export class SealedCache {
  /**
   * @param {LocalStore} store
   * @param {Uint8Array} localKey
   * @param {Uint8Array} schoolId
   * @param {Uint8Array} userId
   * @param {string} account user id, hex
   */
  constructor(store, localKey, schoolId, userId, account) {
    this.store = store;
    this.localKey = localKey;
    this.schoolId = schoolId;
    this.userId = userId;
    this.account = account;
  }

  /** @param {string} kind @param {Uint8Array} recordId @param {unknown} value @param {string} name */
  seal(kind, recordId, value, name) {
    if (this.localKey.every((b) => b === 0)) throw new Locked('The person locked this device: nothing more is written.');
    const sealed = sealLocal(this.localKey, this.schoolId, this.userId, kind, recordId, utf8.encode(JSON.stringify(value)));
    return { key: `${this.account}|${kind}|${name}`, account: this.account, sealed };
  }

  /** @param {string} kind @param {Uint8Array} recordId @param {Uint8Array} sealed @returns {any} */
  open(kind, recordId, sealed) {
    if (this.localKey.every((b) => b === 0)) throw new Locked('The person locked this device: nothing more is read.');
    return JSON.parse(text.decode(openLocal(this.localKey, this.schoolId, this.userId, kind, recordId, sealed)));
  }

  /**
   * Every bucket of one kind (`review-index` or `review-search`), opened, in bucket order.
   * @param {string} kind
   * @returns {Promise<Map<number, Record<string, any>>>}
   */
  async buckets(kind) {
    const out = new Map();
    for (const record of await this.store.reviewRecords(this.account, kind)) {
      const n = Number(record.key.slice(record.key.lastIndexOf('|') + 1));
      out.set(n, this.open(kind, bucketId(n), record.sealed));
    }
    return out;
  }

  /** @param {string} kind @param {number} n @param {Record<string, any>} value @returns {ReviewRecord} */
  bucketRecord(kind, n, value) {
    return this.seal(kind, bucketId(n), value, String(n));
  }

  /** @param {string} id hex @returns {Promise<any | null>} */
  async concern(id) {
    const record = await this.store.reviewRecord(`${this.account}|review-concern|${id}`);
    return record ? this.open('review-concern', unhex(id), record.sealed) : null;
  }

  /** @param {string} id @param {any} value @returns {ReviewRecord} */
  concernRecord(id, value) {
    return this.seal('review-concern', unhex(id), value, id);
  }

  /** @returns {Promise<any | null>} */
  async state() {
    const record = await this.store.reviewRecord(`${this.account}|review-state|${this.account}`);
    return record ? this.open('review-state', this.userId, record.sealed) : null;
  }

  /** @param {any} value @returns {ReviewRecord} */
  stateRecord(value) {
    return this.seal('review-state', this.userId, value, this.account);
  }

  /** @param {ReviewRecord[]} records */
  put(records) {
    return this.store.putReviewRecords(records);
  }
}
