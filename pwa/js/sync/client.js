// `SyncClient`: a browser device on the `/sync` websocket, the twin of sync/client.py.
//
// The outbox is replayed in order, a batch at a time, with the same envelope ids after any failure: the
// server's idempotency makes a replay of an already-stored envelope a plain ack. A refused envelope stays at
// the head of the outbox, marked, and nothing behind it is sent past it. docs/PROTOCOL.md section 9.
//
// A backfill (`backfill`) pulls from the beginning what keys the device holds but has not pulled from the
// beginning open, without moving the stored cursor; the server's `grants` and `directory` messages, which say
// that what the device can open may have grown, go to `onNotice`.

import { signDeliveryAuth, signDeviceAuth } from '../crypto/device.js';
import { LIMITS, PROTOCOL_VERSION, RETRYABLE, b64d, b64e, frame, hex, parseServer } from './protocol.js';
import { failedIndex } from './outbox.js';

/** @typedef {import('./outbox.js').Outbox} Outbox */
/** @typedef {import('../db.js').OutboxItem} OutboxItem */
/**
 * What a websocket must offer: the browser's `WebSocket`, or a fake in tests.
 * @typedef {object} SocketLike
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {((ev: any) => void) | null} onopen
 * @property {((ev: {data: unknown}) => void) | null} onmessage
 * @property {((ev: any) => void) | null} onclose
 * @property {((ev: any) => void) | null} onerror
 */
/** @typedef {Record<string, any> & {type: string}} Frame */

export class SyncError extends Error {
  /** @param {string} code @param {string} detail */
  constructor(code, detail) {
    super(`${code}: ${detail}`);
    this.name = new.target.name;
    this.code = code;
    this.detail = detail;
  }
}

/**
 * The server revoked this device. Its local store is wiped when it connects again (`connect` hands over what
 * it never sent, then wipes: docs/PROTOCOL.md 9.7); `wiped` says whether that has happened.
 */
export class Revoked extends SyncError {
  /** @param {string} code @param {string} detail @param {boolean} [wiped] */
  constructor(code, detail, wiped = false) {
    super(code, detail);
    this.wiped = wiped;
  }
}

/**
 * @typedef {object} SyncReport
 * @property {number} sent
 * @property {number} duplicates
 * @property {number} received
 * @property {[string, string][]} refused envelope id (hex) and the server's code
 */

/** @returns {SyncReport} */
export function newReport() {
  return { sent: 0, duplicates: 0, received: 0, refused: [] };
}

/**
 * @typedef {object} ClientOptions
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} deviceId
 * @property {Uint8Array} [deviceSecretKey] 64-byte Ed25519 secret key of this device
 * @property {string} [token] the session token from sign-in
 * @property {Uint8Array} [deliverySecretKey] instead of the two above: this device's 64-byte delivery key, for a
 *   delivery connection (docs/PROTOCOL.md 3.2) that sends what the outbox holds and may do nothing else
 * @property {number} [batchSize]
 * @property {number} [timeoutMs] how long a request may wait for its reply
 * @property {(url: string) => SocketLike} [socket] how to open a websocket (the browser's by default)
 * @property {(items: unknown[]) => void | Promise<void>} [onReceived] given each page and push before its
 *   cursor is stored, so what it keeps is never behind the cursor
 * @property {(kind: 'grants' | 'directory') => void} [onNotice] the server said a grant for this user was
 *   stored, or the directory has a new signed version (docs/PROTOCOL.md 9.4)
 */

export class SyncClient {
  /**
   * @param {string} url ws:// or wss:// URL of /sync
   * @param {Outbox} outbox
   * @param {ClientOptions} options
   */
  constructor(url, outbox, {
    schoolId, deviceId, deviceSecretKey, token = '', deliverySecretKey, batchSize = 128, timeoutMs = 30_000,
    socket = (u) => /** @type {SocketLike} */ (/** @type {unknown} */ (new WebSocket(u))), onReceived, onNotice,
  }) {
    this.url = url;
    this.outbox = outbox;
    this.schoolId = schoolId;
    this.deviceId = deviceId;
    this.deviceSecretKey = deviceSecretKey;
    this.token = token;
    this.deliverySecretKey = deliverySecretKey;
    if (!deviceSecretKey === !deliverySecretKey) throw new TypeError('SyncClient: give a device key or a delivery key');
    this.batchSize = Math.min(batchSize, LIMITS.max_put_envelopes);
    this.timeoutMs = timeoutMs;
    this.openSocket = socket;
    this.onReceived = onReceived;
    this.onNotice = onNotice;
    /** @type {SocketLike | null} */
    this.ws = null;
    this.live = false;
    /** @type {Map<string, {resolve: (f: Frame) => void, reject: (e: Error) => void}>} */
    this.waiting = new Map();
    this.nextId = 1;
    /** @type {SyncError | null} */
    this.closedReason = null;
    /** envelopes handed over to be held when the server said this device was revoked */
    this.handedOver = 0;
    /** @type {Promise<void>} pages and pushes are stored one after another, in order */
    this.storing = Promise.resolve();
    /** @type {Frame[]} frames that arrived before the handshake took them */
    this.early = [];
    /** @type {((f: Frame | null) => void) | null} */
    this.wake = null;
    this.ready = false;
  }

  get connected() {
    return this.ws !== null && this.ready;
  }

  // --- connection --------------------------------------------------------------------------------

  /** @returns {Promise<Frame>} the server's `ready` */
  async connect() {
    this.closedReason = null;
    this.ready = false;
    this.early = [];
    const ws = this.openSocket(this.url);
    this.ws = ws;
    ws.onmessage = (ev) => this.dispatch(String(ev.data));
    ws.onclose = () => this.closed();
    ws.onerror = () => undefined; // onclose follows
    const challenge = await this.handshakeFrame();
    if (challenge.type !== 'challenge') throw new SyncError('malformed_frame', 'the server did not start with a challenge');
    const nonce = b64d(challenge.nonce, 'nonce');
    if (this.deliverySecretKey) {
      const proof = signDeliveryAuth(this.deliverySecretKey, this.schoolId, this.deviceId, nonce);
      ws.send(frame({ type: 'deliver', id: 'auth', device_id: b64e(this.deviceId), signature: b64e(proof), protocol: PROTOCOL_VERSION }));
    } else {
      const proof = signDeviceAuth(/** @type {Uint8Array} */ (this.deviceSecretKey), this.schoolId, this.deviceId, nonce);
      ws.send(frame({
        type: 'auth', id: 'auth', token: this.token, device_id: b64e(this.deviceId), signature: b64e(proof),
        protocol: PROTOCOL_VERSION,
      }));
    }
    const ready = await this.handshakeFrame();
    if (ready.type === 'error') {
      if (ready.code === 'device_revoked' && !this.deliverySecretKey) { // a hand-over needs the device key
        this.handedOver = await this.handOver();
        this.close();
        await this.outbox.wipe();
        throw new Revoked(ready.code, ready.detail, true);
      }
      this.close();
      throw new SyncError(ready.code, ready.detail);
    }
    this.ready = true;
    return ready;
  }

  /**
   * Revoked: give the server what this device wrote and never sent, to be held for a DSL to review, before
   * the wipe (sync/client.py `_hand_over`). Returns how many envelopes the server took.
   * @returns {Promise<number>}
   */
  async handOver() {
    let count = 0;
    for (let n = 0; this.ws; n++) {
      const head = await this.outbox.head(this.batchSize, LIMITS.max_frame_bytes - 4096);
      if (!head.length) break;
      this.ws.send(frame({ type: 'hand_over', id: `h${n}`, envelopes: head.map((p) => b64e(p.body)) }));
      let reply;
      try {
        reply = await this.handshakeFrame();
      } catch {
        break; // cut short: wipe anyway
      }
      if (reply.type !== 'held') break;
      await this.outbox.acknowledged(head.map((p) => p.envelopeId));
      count += head.length;
    }
    return count;
  }

  /** @returns {Promise<Frame>} */
  handshakeFrame() {
    const first = this.early.shift();
    if (first) return Promise.resolve(first);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.wake = null;
        this.close();
        reject(new SyncError('connection_closed', 'the server did not answer in time'));
      }, this.timeoutMs);
      this.wake = (f) => {
        clearTimeout(timer);
        this.wake = null;
        if (f) resolve(f);
        else reject(this.closedReason ?? new SyncError('connection_closed', 'the connection closed'));
      };
    });
  }

  /** @param {string} text */
  dispatch(text) {
    let body;
    try {
      body = parseServer(text);
    } catch {
      return;
    }
    if (!this.ready) {
      if (this.wake) this.wake(body);
      else this.early.push(body);
      return;
    }
    if (body.type === 'push') {
      this.store(body).catch(() => undefined); // not stored: the cursor stays, the next pull brings it again
    } else if (body.type === 'grants' || body.type === 'directory') {
      this.onNotice?.(body.type);
    } else if (body.type === 'revoked') {
      // the wipe follows when it connects again, after handing over what it never sent
      this.closedReason = new Revoked('device_revoked', body.reason ?? 'revoked');
    } else if (body.type === 'error' && body.code === 'session_expired') {
      // signed out, expired, or ended by a recovery or password change: the socket closes (4003)
      this.closedReason = new SyncError('session_expired', String(body.detail ?? 'sign in again'));
    } else if (typeof body.id === 'string' && this.waiting.has(body.id)) {
      const waiter = /** @type {{resolve: (f: Frame) => void}} */ (this.waiting.get(body.id));
      this.waiting.delete(body.id);
      waiter.resolve(body);
    }
  }

  closed() {
    const reason = this.closedReason ?? new SyncError('connection_closed', 'the connection closed');
    for (const waiter of this.waiting.values()) waiter.reject(reason);
    this.waiting.clear();
    this.wake?.(null);
    this.ws = null;
    this.ready = false;
    this.live = false;
  }

  close() {
    const ws = this.ws;
    if (ws) {
      ws.onmessage = null;
      ws.close();
      this.closed();
    }
  }

  /**
   * @param {Record<string, unknown>} body
   * @returns {Promise<Frame>}
   */
  request(body) {
    const ws = this.ws;
    if (!ws || !this.ready) return Promise.reject(this.closedReason ?? new SyncError('connection_closed', 'not connected'));
    const id = `r${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        this.close();
        reject(new SyncError('connection_closed', 'the server did not answer in time'));
      }, this.timeoutMs);
      this.waiting.set(id, {
        resolve: (f) => { clearTimeout(timer); resolve(f); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      ws.send(frame({ ...body, id }));
    });
  }

  /** @param {Frame} body @param {boolean} [moveCursor] false for a backfill: the stored cursor stays @returns {Promise<void>} */
  store(body, moveCursor = true) {
    const items = /** @type {unknown[]} */ (body.items ?? []);
    const run = this.storing.then(async () => {
      if (this.onReceived && items.length) await this.onReceived(items);
      await this.outbox.received(items, moveCursor ? body.cursor : null);
    });
    this.storing = run.catch(() => undefined);
    return run;
  }

  // --- the work ----------------------------------------------------------------------------------

  /**
   * Send the outbox in order until it is empty or its head is refused.
   * @param {SyncReport} [report]
   * @returns {Promise<SyncReport>}
   */
  async flush(report = newReport()) {
    for (;;) {
      const head = await this.outbox.head(this.batchSize, LIMITS.max_frame_bytes - 4096);
      if (!head.length) return report;
      const reply = await this.request({ type: 'put', envelopes: head.map((p) => b64e(p.body)) });
      if (reply.type === 'error') {
        if (RETRYABLE.has(reply.code)) throw new SyncError(reply.code, reply.detail);
        const index = failedIndex(reply, head.length);
        if (index) await this.resend(head.slice(0, index), report);
        const refused = /** @type {OutboxItem} */ (head[index]);
        await this.outbox.failed(/** @type {number} */ (refused.position), reply.code, reply.detail ?? '');
        report.refused.push([refused.envelopeId, reply.code]);
        return report;
      }
      await this.acknowledge(reply, report);
    }
  }

  /**
   * Send the items before a refused one on their own, so good entries are not held back.
   * @param {OutboxItem[]} items
   * @param {SyncReport} report
   */
  async resend(items, report) {
    const reply = await this.request({ type: 'put', envelopes: items.map((p) => b64e(p.body)) });
    if (reply.type === 'ack') await this.acknowledge(reply, report);
  }

  /** @param {Frame} reply @param {SyncReport} report */
  async acknowledge(reply, report) {
    /** @type {{envelope_id: string, duplicate: boolean}[]} */
    const results = reply.results;
    await this.outbox.acknowledged(results.map((r) => hex(b64d(r.envelope_id, 'envelope_id'))));
    for (const r of results) {
      if (r.duplicate) report.duplicates += 1;
      else report.sent += 1;
    }
  }

  /**
   * Pull pages from the stored cursor until the server says done; then pushes arrive live.
   * @param {SyncReport} [report]
   * @param {number} [limit]
   * @returns {Promise<SyncReport>}
   */
  async pullAll(report = newReport(), limit = LIMITS.max_pull_limit) {
    for (;;) {
      const reply = await this.request({ type: 'pull', cursor: await this.outbox.cursor(), limit });
      if (reply.type === 'error') throw new SyncError(reply.code, reply.detail);
      await this.store(reply);
      report.received += reply.items.length;
      if (reply.done) {
        this.live = true;
        return report;
      }
    }
  }

  /**
   * Pull from the beginning what the named keys open (docs/PROTOCOL.md 9.5), page by page to the end, without
   * moving the stored cursor: `keys` are reader key versions, `entry_keys` entry key grants (concern id and
   * version), together at most `max_backfill_keys`. Returns the indexes the server refused (`not_granted`:
   * not held now), as `keys[0]`, `entry_keys[1]`; nothing was read then.
   * @param {{keys?: {id: string, version: number}[], entry_keys?: {id: string, version: number}[]}} named
   * @param {SyncReport} [report]
   * @param {number} [limit]
   * @returns {Promise<string[]>}
   */
  async backfill(named, report = newReport(), limit = LIMITS.max_pull_limit) {
    /** @type {Record<string, unknown>} */
    const body = { type: 'pull', limit };
    if (named.keys?.length) body.keys = named.keys;
    if (named.entry_keys?.length) body.entry_keys = named.entry_keys;
    /** @type {string | null} */
    let cursor = null;
    for (;;) {
      const reply = await this.request({ ...body, cursor });
      if (reply.type === 'error') {
        if (reply.code === 'not_granted') return Object.keys(reply.fields ?? {});
        throw new SyncError(reply.code, reply.detail);
      }
      await this.store(reply, false);
      report.received += reply.items.length;
      if (reply.done) return [];
      cursor = reply.cursor;
    }
  }

  /**
   * Connect if needed, send everything queued, pull everything readable.
   * @returns {Promise<SyncReport>}
   */
  async sync() {
    if (!this.connected) {
      this.close();
      await this.connect();
    }
    const report = await this.flush();
    return this.pullAll(report);
  }
}
