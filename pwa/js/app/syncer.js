// When to send: on start, on the `online` event, on a timer, after each save, and when the service worker
// says the connection is back. One run at a time; each run opens the websocket as the unlocked person's
// device and replays that device's outbox in order (sync/client.js).
//
// A contributor's device then closes: it never pulls. A device whose person reads concerns (teacher, SEN,
// safeguarding: server/models.py READING_ROLES) with a Casebook open pulls everything readable after sending,
// feeds it to the Casebook, and keeps the websocket open so live pushes arrive the moment they commit; the
// next run reuses it, or reconnects if it closed.
//
// Keys that arrive late are read from the beginning (docs/PROTOCOL.md 9.5): after each pull and each run the
// reader's device backfills every key it holds that its pulls have not covered, and when the server says a
// grant arrived or the directory has a new version (`grants`, `directory`), the next run refreshes the
// directory and grants at once, opens what the Casebook held, and backfills what the new keys open.
//
// Sending never waits for the author: each run first delivers the outboxes of everyone on this device who
// is locked out (or everyone, when nobody is unlocked) with the device's delivery key (app/delivery.js).

import { Revoked, SyncClient, SyncError } from '../sync/client.js';
import { ApiFailure } from '../sync/device.js';
import { DirectoryRefused } from '../sync/directory.js';
import { LIMITS } from '../sync/protocol.js';
import { backfillFields, refusedNames } from '../review/grants.js';
import { deliverLocked, ensureDeliveryKey } from './delivery.js';

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
    /** @type {Set<'grants' | 'directory'>} what the server said since the last run */
    this.notices = new Set();
    /** @type {WeakSet<Casebook>} Casebooks whose entry key grants were fetched this unlock */
    this.fetched = new WeakSet();
  }

  /** Close a reader's live connection (on lock, switching person, revocation). */
  stop() {
    this.live?.client.close();
    this.live = null;
    delete document.documentElement.dataset.live;
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
    try {
      await this.runFor(session);
    } catch (error) {
      // Locked or switched mid-run: that person's keys were overwritten, so what failed is theirs to retry
      // at their next unlock; it is not an error of the run that follows.
      if (session !== this.hooks.active()) return;
      throw error;
    }
  }

  /** @param {Session | null} session the person unlocked when the run began */
  async runFor(session) {
    if (this.live && this.live.session !== session) this.stop();
    if (!navigator.onLine) return;
    const delivered = await deliverLocked(this.store, syncUrl(), session?.id ?? null);
    if (delivered.sent || delivered.duplicates) await this.store.setSetting('last-sync', Date.now());
    if (!session) return;
    try {
      await ensureDeliveryKey(this.store, session);
      document.documentElement.dataset.delivery = 'ready'; // what this person writes leaves without them
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error; // offline or refused: next run
    }
    const notices = this.notices;
    this.notices = new Set();
    const open = this.hooks.casebook?.() ?? null;
    if (notices.size || session.refreshedMs < Date.now() - REFRESH_MS) {
      try {
        await session.refresh();
        open?.directoryChanged();
        if (open) {
          await open.refreshEntryGrants();
          this.fetched.add(open);
        }
      } catch (error) {
        if (error instanceof DirectoryRefused) {
          this.hooks.problem(`The school directory the server sent did not verify (${error.code}). This device keeps the one `
            + 'it had. Tell the safeguarding lead.');
        } else if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error; // offline, or refused
      }
    }
    // Pull only once this unlock has opened the grants: an item pulled without its key would be skipped.
    const casebook = reads(session.device.roles) && session.refreshedMs ? this.hooks.casebook?.() ?? null : null;
    if (casebook && !this.fetched.has(casebook)) {
      try {
        await casebook.refreshEntryGrants();
        this.fetched.add(casebook);
      } catch (error) {
        if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error; // offline: the next run
      }
    }
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
   * Backfill every key the Casebook holds that its pulls have not covered from the beginning, a few dozen at a
   * time (docs/PROTOCOL.md 9.5). Keys the server refuses (not held any more) are left for another run.
   * @param {SyncClient} client @param {Casebook} casebook @param {SyncReport} report
   */
  async backfill(client, casebook, report) {
    const skip = new Set();
    for (;;) {
      const names = casebook.uncovered().filter((n) => !skip.has(n)).slice(0, LIMITS.max_backfill_keys);
      if (!names.length) return;
      const refused = refusedNames(names, await client.backfill(backfillFields(names), report));
      if (refused.length) {
        for (const n of refused) skip.add(n);
        continue; // nothing was read: ask again without them
      }
      await casebook.cover(names);
    }
  }

  /**
   * After a reader's run: the audit trail and, once the outbox is empty (their concern's events are on the
   * server), the entry key grants its person made. Either follows at the next run if it fails.
   * @param {Session} session @param {Casebook} casebook
   */
  after(session, casebook) {
    void casebook.syncAudit().catch(() => undefined);
    void session.outbox.pendingCount().then((n) => (n ? 0 : casebook.sendEntryGrants())).catch(() => undefined);
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
      await this.backfill(this.live.client, casebook, report);
      this.after(session, casebook);
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
      onNotice: casebook ? (kind) => {
        this.notices.add(kind);
        void this.kick();
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
      const fromStart = (await session.outbox.cursor()) === null;
      const held = casebook.keyNames(); // a pull from the beginning reads everything these open
      const report = await client.sync();
      if (fromStart) await casebook.cover(held);
      await this.backfill(client, casebook, report);
      this.live = { client, session, casebook };
      document.documentElement.dataset.live = 'true'; // pulled to the end: pushes arrive live from now on
      this.after(session, casebook);
      return report;
    } catch (error) {
      client.close();
      throw error;
    }
  }
}
