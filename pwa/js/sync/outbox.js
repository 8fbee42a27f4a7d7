// One device's durable outbox, the twin of sync/outbox.py, over the browser's store (db.js).
//
// An envelope is written to the outbox, with the device's counter and chain hash, in one transaction before
// anything is sent; it leaves only when the server's ack for it arrives. Everything here is already sealed
// and signed: the envelopes are ciphertext that this device cannot open, and no entry key is kept.
// A refused item stays at the head, marked; nothing unsent is ever expired.

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../db.js').OutboxItem} OutboxItem */
/** @typedef {import('../db.js').ChainRecord} ChainRecord */

export class Outbox {
  /**
   * @param {LocalStore} store
   * @param {string} device this device's id, hex
   * @param {string} account its user's id, hex
   */
  constructor(store, device, account) {
    this.store = store;
    this.device = device;
    this.account = account;
  }

  /** @returns {Promise<ChainRecord>} */
  chain() {
    return this.store.chain(this.device);
  }

  /**
   * Seal the next envelope against the chain and queue it, atomically (see LocalStore.queue).
   * @param {(chain: ChainRecord) => {envelopeId: string, body: Uint8Array, hash: Uint8Array, hlc: [number, number] | null}} seal
   * @returns {Promise<string>}
   */
  queue(seal) {
    return this.store.queue(this.device, this.account, seal);
  }

  /**
   * @param {number} limit
   * @param {number} maxBytes
   * @returns {Promise<OutboxItem[]>}
   */
  head(limit, maxBytes) {
    return this.store.head(this.device, limit, maxBytes);
  }

  /** @param {string[]} envelopeIds hex */
  acknowledged(envelopeIds) {
    return this.store.acknowledged(envelopeIds);
  }

  /** @param {number} position @param {string} code @param {string} detail */
  failed(position, code, detail) {
    return this.store.failed(position, code, detail);
  }

  pendingCount() {
    return this.store.pendingCount(this.device);
  }

  oldestPendingMs() {
    return this.store.oldestPendingMs(this.device);
  }

  /** @returns {Promise<string | null>} */
  cursor() {
    return this.store.cursor(this.device);
  }

  /**
   * Pulled or pushed envelopes arrived. The capture side keeps none of them (a contributor can read
   * nothing, and a write-only device keeps nothing it could read); only the cursor moves.
   * @param {unknown[]} items
   * @param {string | null | undefined} cursor
   */
  async received(items, cursor) {
    void items;
    if (cursor) await this.store.setCursor(this.device, cursor);
  }

  /** A revoked device: remove every local record of this account. */
  wipe() {
    return this.store.wipe(this.account, this.device);
  }
}

/**
 * Which item of a put the server refused: its `fields` name `item N`; 0 when unknown (sync/client.py's
 * `_failed_index`).
 * @param {{fields?: Record<string, string>} & Record<string, any>} reply
 * @param {number} count
 * @returns {number}
 */
export function failedIndex(reply, count) {
  const where = JSON.stringify(reply.fields ?? {});
  for (let index = count - 1; index >= 0; index--) {
    if (where.includes(`item ${index}"`)) return index;
  }
  return 0;
}
