// When to send: on start, on the `online` event, on a timer, after each save, and when the service worker
// says the connection is back. One run at a time; each run opens the websocket as the unlocked person's
// device, replays that device's outbox in order (sync/client.js), and closes.

import { Revoked, SyncClient, SyncError } from '../sync/client.js';
import { ApiFailure } from '../sync/device.js';

/** @typedef {import('./people.js').Session} Session */
/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../sync/client.js').SyncReport} SyncReport */

export const TIMER_MS = 60_000;
const REFRESH_MS = 10 * 60_000;

/** @returns {string} */
export function syncUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/sync`;
}

export class Syncer {
  /**
   * @param {LocalStore} store
   * @param {{active: () => Session | null, changed: () => void, revoked: (s: Session) => void,
   *   problem: (message: string) => void}} hooks  problem('') clears the last one
   */
  constructor(store, hooks) {
    this.store = store;
    this.hooks = hooks;
    /** @type {Promise<void> | null} */
    this.running = null;
    this.again = false;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
  }

  start() {
    addEventListener('online', () => this.kick());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.kick();
    });
    navigator.serviceWorker?.addEventListener('message', (event) => {
      if (event.data?.type === 'replay') this.kick();
    });
    this.timer = setInterval(() => this.kick(), TIMER_MS);
  }

  /** Run now, or once more after the run in progress. @returns {Promise<void>} */
  kick() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.runOnce();
        } while (this.again);
      } finally {
        this.running = null;
        this.hooks.changed();
      }
    })();
    return this.running;
  }

  async runOnce() {
    const session = this.hooks.active();
    if (!session || !navigator.onLine) return;
    if (session.refreshedMs < Date.now() - REFRESH_MS) {
      try {
        await session.refresh();
      } catch (error) {
        if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error; // offline, or refused
      }
    }
    if (!(await session.outbox.pendingCount())) return;
    try {
      const report = await this.flush(session);
      this.hooks.problem(report.refused.length
        ? 'The server refused an entry. It is kept on this device, unsent: please tell the safeguarding team.' : '');
      await this.store.setSetting('last-sync', Date.now());
    } catch (error) {
      if (error instanceof Revoked) this.hooks.revoked(session);
      else if (!(error instanceof SyncError || error instanceof TypeError || error instanceof ApiFailure)) throw error;
      else if (error instanceof ApiFailure && error.code === 'totp_required') {
        this.hooks.problem('Your sign-in has expired. Sign in again (with your authenticator code) to send.');
      }
    }
  }

  /**
   * @param {Session} session
   * @returns {Promise<SyncReport>}
   */
  async flush(session) {
    const device = session.device;
    const open = () => new SyncClient(syncUrl(), session.outbox, {
      schoolId: device.schoolId, deviceId: device.deviceId, deviceSecretKey: device.deviceKey.secretKey,
      token: device.token ?? '',
    });
    let client = open();
    try {
      await client.connect();
    } catch (error) {
      if (!(error instanceof SyncError) || !['auth_failed', 'session_expired'].includes(error.code)) throw error;
      await session.renew();
      client = open();
      await client.connect();
    }
    try {
      return await client.flush();
    } finally {
      client.close();
    }
  }
}
