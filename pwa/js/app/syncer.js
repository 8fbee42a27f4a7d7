// When to send: on start, on the `online` event, on a timer, after each save, and when the service worker
// says the connection is back. One run at a time; each run opens the websocket as the unlocked person's
// device and replays that device's outbox in order (sync/client.js).
//
// A contributor's device then closes: it never pulls. A device whose person reads concerns (teacher, SEN,
// safeguarding: server/models.py READING_ROLES) with a Casebook open pulls everything readable after sending,
// feeds it to the Casebook, and keeps the websocket open so live pushes arrive the moment they commit; the
// next run reuses it, or reconnects if it closed.

import { Revoked, SyncClient, SyncError } from '../sync/client.js';
import { ApiFailure } from '../sync/device.js';
import { DirectoryRefused } from '../sync/directory.js';

/** @typedef {import('./people.js').Session} Session */
/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../sync/client.js').SyncReport} SyncReport */
/** @typedef {import('../review/casebook.js').Casebook} Casebook */
/** @typedef {import('../review/casebook.js').PulledItem} PulledItem */

/** Roles whose devices pull (server/models.py READING_ROLES). */
export const READING_ROLES = Object.freeze(['teacher', 'sen', 'safeguarding']);

/** @param {string[]} roles */
export function reads(roles) {
  return roles.some((r) => READING_ROLES.includes(r));
}

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
   *   problem: (message: string) => void, casebook?: () => Casebook | null}} hooks  problem('') clears the
   *   last one; casebook: the unlocked reader's Casebook, fed by pulls and pushes (none: send only)
   */
  constructor(store, hooks) {
    this.store = store;
    this.hooks = hooks;
    /** @type {Promise<void> | null} */
    this.running = null;
    this.again = false;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
    /** @type {{client: SyncClient, session: Session, casebook: Casebook} | null} a reader's open connection */
    this.live = null;
  }

  /** Close a reader's live connection (on lock, switching person, revocation). */
  stop() {
    this.live?.client.close();
    this.live = null;
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
    if (this.live && this.live.session !== session) this.stop();
    if (!session || !navigator.onLine) return;
    if (session.refreshedMs < Date.now() - REFRESH_MS) {
      try {
        await session.refresh();
        this.hooks.casebook?.()?.directoryChanged();
      } catch (error) {
        if (error instanceof DirectoryRefused) {
          this.hooks.problem(`The school directory the server sent did not verify (${error.code}). This device keeps the one `
            + 'it had. Tell the safeguarding lead.');
        } else if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error; // offline, or refused
      }
    }
    // Pull only once this unlock has opened the grants: an item pulled without its key would be skipped.
    const casebook = reads(session.device.roles) && session.refreshedMs ? this.hooks.casebook?.() ?? null : null;
    if (!casebook && !(await session.outbox.pendingCount())) return;
    try {
      const report = await this.flush(session, casebook);
      this.hooks.problem(report.refused.length
        ? 'The server refused an entry. It is kept on this device, unsent: please tell the safeguarding team.' : '');
      await this.store.setSetting('last-sync', Date.now());
    } catch (error) {
      if (error instanceof Revoked) {
        if (!error.wiped) await this.handOver(session);
        this.hooks.revoked(session);
      }
      else if (!(error instanceof SyncError || error instanceof TypeError || error instanceof ApiFailure)) throw error;
      else if (error instanceof ApiFailure && ['totp_required', 'totp_enrolment_required'].includes(error.code)) {
        this.hooks.problem('Your sign-in has expired. Sign in again (with your authenticator code) to send.');
      }
    }
  }

  /**
   * A revocation heard on a live socket: connect once more, so the device hands over what it never sent
   * (held for a DSL to review) and wipes its store; the server refuses the connection with device_revoked.
   * @param {Session} session
   */
  async handOver(session) {
    const device = session.device;
    const client = new SyncClient(syncUrl(), session.outbox, {
      schoolId: device.schoolId, deviceId: device.deviceId, deviceSecretKey: device.deviceKey.secretKey,
      token: device.token ?? '',
    });
    await client.connect().then(() => client.close(), () => undefined);
  }

  /**
   * Send; a reader also pulls, feeds its Casebook and stays connected for pushes.
   * @param {Session} session
   * @param {Casebook | null} [casebook]
   * @returns {Promise<SyncReport>}
   */
  async flush(session, casebook = null) {
    if (casebook && this.live?.casebook === casebook && this.live.client.connected && this.live.client.live) {
      const report = await this.live.client.flush();
      void casebook.syncAudit().catch(() => undefined); // the audit trail follows at the next run if this fails
      return report;
    }
    this.stop();
    const device = session.device;
    const open = () => new SyncClient(syncUrl(), session.outbox, {
      schoolId: device.schoolId, deviceId: device.deviceId, deviceSecretKey: device.deviceKey.secretKey,
      token: device.token ?? '',
      onReceived: casebook ? async (items) => {
        if (this.hooks.active() !== session || casebook.closed) { // locked meanwhile: keep the cursor, drop the socket
          this.stop();
          throw new SyncError('connection_closed', 'the person locked this device');
        }
        await casebook.ingest(/** @type {PulledItem[]} */ (items));
      } : undefined,
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
    if (!casebook) {
      try {
        return await client.flush();
      } finally {
        client.close();
      }
    }
    try {
      const report = await client.sync();
      this.live = { client, session, casebook };
      void casebook.syncAudit().catch(() => undefined); // the audit trail follows at the next run if this fails
      return report;
    } catch (error) {
      client.close();
      throw error;
    }
  }
}
