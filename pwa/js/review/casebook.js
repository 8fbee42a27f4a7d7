// The review side's data layer (no DOM): `Casebook`, what one unlocked reader device can read.
//
// Envelopes pulled or pushed by the server are verified against the directory's device keys, opened with the
// device's reader keys (and the person's own identity key, for need-to-know), decoded (events.js) and folded
// (fold.js) per concern. Decrypted state lives in memory only; at rest it is sealed under the local key
// (docs/PROTOCOL.md 12): one `review-index` record per bucket of concerns (their summaries, so the inbox opens
// without opening 20,000 envelopes), one `review-concern` record per concern (its events, entry keys and
// recipients), one `review-state` record (what this person has read, audits not yet sent). Nothing is ever
// written in plaintext.
//
// Triage writes signed events into the device's outbox like any entry (so it works offline and syncs):
// see ./triage.js. Who may see what follows docs/ARCHITECTURE.md: a person without the safeguarding role never
// sees a restricted concern (not even as a hidden row); a teacher sees only pupils currently in their classes; a
// contributor's device never holds a Casebook.
//
// Nothing hidden, nothing delayed (docs/PROTOCOL.md 9.5): what a pull brings that this device cannot open yet
// (no key of it yet, or an author device the directory does not list yet) is held, sealed, retried whenever
// the grants or the directory change, and counted (`waiting`). Entry key grants (a person named on a concern)
// and which keys the pulls have covered from the beginning are in ./grants.js; the syncer backfills the rest.

import { CryptoError, NoKey, RECIPIENT_PERSON, RECIPIENT_READER_KEY, envelope } from '../crypto/index.js';
import { decode } from '../events.js';
import { InvalidEvent } from '../record.js';
import { fold } from '../fold.js';
import { ApiFailure } from '../sync/device.js';
import { b64d, b64e, hex, unhex } from '../sync/protocol.js';
import { Locked, SealedCache, bucketOf } from './cache.js';
import { entryKeyList, keyNames, openEntryGrants } from './grants.js';

export { Locked };
import { actionsOf, describe, searchText, summarise, today, value } from './views.js';
import * as triage from './triage.js';

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('./views.js').Core} Core */
/** @typedef {import('../events.js').Event} Event */
/** @typedef {import('../sync/device.js').Device} Device */
/** @typedef {import('../sync/outbox.js').Outbox} Outbox */
/** @typedef {import('../sync/writer.js').Category} Category */

/** @typedef {import('./types.js').CasebookSession} CasebookSession */
/** @typedef {import('./types.js').PulledItem} PulledItem */
/** @typedef {import('./types.js').LinkedPupil} LinkedPupil */
/** @typedef {import('./types.js').Summary} Summary */
/** @typedef {import('./types.js').InboxFilter} InboxFilter */
/** @typedef {import('./types.js').HistoryEntry} HistoryEntry */
/** @typedef {import('./types.js').Conflict} Conflict */
/** @typedef {import('./types.js').Action} Action */
/** @typedef {import('./types.js').ConcernView} ConcernView */
/** @typedef {import('./types.js').ChronologyEntry} ChronologyEntry */
/** @typedef {import('./types.js').Chronology} Chronology */
/** @typedef {import('./types.js').SearchHit} SearchHit */
/** @typedef {import('./types.js').StoredEvent} StoredEvent */
/** @typedef {import('./types.js').ConcernBlob} ConcernBlob */
/** @typedef {import('./types.js').ReviewState} ReviewState */

/** Thrown by the triage methods when this person may not make that change; `code` is stable. */
export class NotAllowed extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.name = 'NotAllowed';
    this.code = code;
  }
}

/** @param {string} b64 */
const toHex = (b64) => hex(b64d(b64, 'id'));

/** @param {Summary} a @param {Summary} b */
function inboxOrder(a, b) {
  if (a.alert !== b.alert) return a.alert ? -1 : 1;
  return (b.writtenMs - a.writtenMs) || (b.receivedMs - a.receivedMs) || (a.id < b.id ? -1 : 1);
}

export class Casebook {
  /**
   * @param {CasebookSession} session
   * @param {Category[]} categories
   * @param {SealedCache} cache
   * @param {Map<number, Record<string, Core>>} buckets
   * @param {ReviewState} state
   */
  constructor(session, categories, cache, buckets, state) {
    this.session = session;
    this.categories = new Map(categories.map((c) => [c.id, c]));
    this.cache = cache;
    this.buckets = buckets;
    this.state = state;
    /** @type {Map<number, Record<string, string>> | null} searchable text by bucket, opened on first need */
    this.searchBuckets = null;
    /** @type {Set<(detail: {ids: string[]}) => void>} */
    this.listeners = new Set();
    /** @type {Summary[] | null} */
    this.sorted = null;
    /** @type {Promise<unknown>} one write at a time, in order */
    this.queue = Promise.resolve();
    this.closed = false;
    /** @type {Promise<number> | null} the audit sync in progress: one at a time */
    this.auditing = null;
    this.me = hex(session.device.userId);
    this.state.held ??= [];
    this.state.covered ??= [];
    this.state.entryGrants ??= [];
    this.state.grantsToSend ??= [];
    /** @type {Map<string, Uint8Array>} entry keys from entry key grants, by `${concern hex}:${version}` (memory only) */
    this.entryKeys = new Map();
    /** @type {Set<string>} entry key grants refused for good, this unlock */
    this.refusedGrants = new Set();
    /** @type {string[]} why entry key grants were refused or not sent (never key bytes) */
    this.grantProblems = [];
    this.safeguardingRole = false;
    this.senRole = false;
    /** @type {Map<string, {name: string, roles: string[], left: boolean, x25519: string}>} */
    this.staffById = new Map();
    /** @type {Map<string, Uint8Array>} */
    this.devicePks = new Map();
    /** @type {Map<string, {id: string, label: string}[]>} */
    this.classesOfPupil = new Map();
    /** @type {Set<string>} */
    this.myPupils = new Set();
    /** @type {Set<string>} */
    this.safeguardingIds = new Set();
    /** @type {Map<string, {name: string, className: string}>} */
    this.pupilNames = new Map();
    this.readDirectory();
  }

  /**
   * Open this person's sealed cache (fast: summaries only, no envelope is opened).
   * @param {CasebookSession} session
   * @param {{categories: Category[]}} options
   * @returns {Promise<Casebook>}
   */
  static async load(session, { categories }) {
    const { device } = session;
    const cache = new SealedCache(session.store, session.localKey, device.schoolId, device.userId, hex(device.userId));
    try {
      const [buckets, state] = await Promise.all([cache.buckets('review-index'), cache.state()]);
      return new Casebook(session, categories, cache, buckets, state ?? { read: {}, pending: [], auditAfter: 0 });
    } catch (error) {
      if (!(error instanceof CryptoError) || session.localKey.every((b) => b === 0)) throw error;
      // Sealed under another local key (the password was reset): it is only a cache of what the server
      // holds, so it is dropped with the cursor and the next pull fills it again. Unsent audit entries go too.
      await session.store.clearReview(hex(device.userId), hex(device.deviceId));
      return new Casebook(session, categories, cache, new Map(), { read: {}, pending: [], auditAfter: 0 });
    }
  }

  /**
   * Recompute what comes from the directory (names, classes, device keys); call after `Device.refresh()`.
   * Items held back for want of a key or a device are tried again.
   */
  directoryChanged() {
    this.readDirectory();
    if (this.state.held?.length) void this.serial(() => this.retryHeld());
  }

  async retryHeld() {
    const held = this.state.held ?? [];
    this.state.held = [];
    await this.ingestNow(held, false);
    await this.saveState();
    this.emit([]); // what waits may have changed even when nothing opened
  }

  /** Open the entry key grants kept in the review state that are not open yet (the directory names signers). */
  openGrants() {
    const { device } = this.session;
    const { problems } = openEntryGrants({
      grants: this.state.entryGrants ?? [], opened: this.entryKeys, refused: this.refusedGrants, dir: device.directory,
      memberX25519Sk: device.identity.x25519Sk, schoolId: device.schoolId, memberId: device.userId,
    });
    this.grantProblems.push(...problems);
  }

  /**
   * Online: fetch the entry key grants addressed to this person (GET /api/v1/entry-grants), keep new ones in the
   * sealed state, open them, and try again what was held. Returns how many entry keys opened now.
   * @returns {Promise<number>}
   */
  async refreshEntryGrants() {
    const page = await this.session.device.call('GET', '/api/v1/entry-grants');
    return this.serial(async () => {
      const known = new Set(this.state.entryGrants);
      const fresh = /** @type {string[]} */ (page.grants).filter((g) => !known.has(g));
      if (!fresh.length) return 0;
      this.state.entryGrants = [...(this.state.entryGrants ?? []), ...fresh];
      const before = this.entryKeys.size;
      this.openGrants();
      await this.saveState();
      const opened = this.entryKeys.size - before;
      if (opened && this.state.held?.length) await this.retryHeld();
      return opened;
    });
  }

  /**
   * Online, once the outbox is sent: give the server the entry key grants this device made when its person
   * named someone (POST /api/v1/entry-grants). A refusal drops them (and is noted); a network failure keeps
   * them for the next run. Returns how many were sent.
   * @returns {Promise<number>}
   */
  async sendEntryGrants() {
    const pending = await this.serial(async () => (this.state.grantsToSend ?? []).slice(0, 1000));
    if (!pending.length) return 0;
    try {
      await this.session.device.call('POST', '/api/v1/entry-grants', { grants: pending });
    } catch (error) {
      if (!(error instanceof ApiFailure) || error.status >= 500 || error.status === 429) throw error;
      this.grantProblems.push(`the server refused entry key grants: ${error.code}`);
    }
    await this.serial(async () => {
      const sent = new Set(pending);
      this.state.grantsToSend = (this.state.grantsToSend ?? []).filter((g) => !sent.has(g));
      await this.saveState();
    });
    return pending.length;
  }

  /** Every key this device reads with, by name (./grants.js): reader keys and entry keys. @returns {string[]} */
  keyNames() {
    return keyNames(this.session.device.readerKeys.keys(), this.entryKeys.keys());
  }

  /** The keys this device holds that its pulls have not covered from the beginning. @returns {string[]} */
  uncovered() {
    const covered = new Set(this.state.covered);
    return this.keyNames().filter((k) => !covered.has(k));
  }

  /** Note that `names` are covered from the beginning (a pull from null, or a backfill, reached its end). @param {string[]} names */
  cover(names) {
    return this.serial(async () => {
      this.state.covered = [...new Set([...(this.state.covered ?? []), ...names])].sort();
      await this.saveState();
    });
  }

  /**
   * How many entries (concerns) wait, and why: `keys`, for a key this device has not been given yet; `device`,
   * for an author device the signed directory does not list yet. A concern partly shown is not counted.
   * @returns {{keys: number, device: number}}
   */
  waiting() {
    const keys = new Set();
    const device = new Set();
    for (const item of this.state.held ?? []) {
      try {
        const h = envelope.parse(b64d(item.envelope, 'envelope'));
        const concern = hex(h.concernId);
        if (this.buckets.get(bucketOf(concern))?.[concern]) continue;
        (this.devicePks.has(hex(h.authorDevice)) ? keys : device).add(concern);
      } catch {
        // refused for good when tried: not waiting
      }
    }
    for (const concern of device) keys.delete(concern);
    return { keys: keys.size, device: device.size };
  }

  readDirectory() {
    const dir = this.session.device.directory;
    const roles = new Set(this.session.device.roles);
    this.safeguardingRole = roles.has('safeguarding');
    this.senRole = roles.has('sen');
    this.staffById = new Map();
    this.devicePks = new Map();
    this.classesOfPupil = new Map();
    this.myPupils = new Set();
    this.safeguardingIds = new Set();
    if (dir) {
      for (const a of dir.accounts) {
        const id = toHex(a.id);
        this.staffById.set(id, { name: a.display_name || a.login, roles: a.roles, left: a.left, x25519: a.identity_x25519_pk });
        if (a.roles.includes('safeguarding')) this.safeguardingIds.add(id);
      }
      for (const d of dir.devices) this.devicePks.set(toHex(d.id), b64d(d.public_key, 'public_key'));
      for (const c of dir.classes) {
        const cls = { id: toHex(c.id), label: c.label };
        const mine = c.teachers.some((t) => toHex(t) === this.me);
        for (const p of c.pupils) {
          const pupil = toHex(p);
          this.classesOfPupil.set(pupil, [...(this.classesOfPupil.get(pupil) ?? []), cls]);
          if (mine) this.myPupils.add(pupil);
        }
      }
    }
    this.pupilNames = new Map(this.session.pupils.map((p) => [p.id, { name: p.name, className: p.className }]));
    this.sorted = null;
    if (dir) this.openGrants();
  }

  /**
   * @param {'changed'} event
   * @param {(detail: {ids: string[]}) => void} callback
   * @returns {() => void} unsubscribes
   */
  on(event, callback) {
    if (event !== 'changed') throw new TypeError(`Casebook has no event ${event}.`);
    this.listeners.add(callback);
    return () => this.listeners.delete(callback);
  }

  /** @param {string[]} ids */
  emit(ids) {
    this.sorted = null;
    for (const cb of this.listeners) cb({ ids });
  }

  /** The staff this person can name (assign, actions, need-to-know), by name. */
  staff() {
    return [...this.staffById].filter(([, s]) => !s.left)
      .map(([id, s]) => ({ id, name: s.name, roles: s.roles }))
      .sort((a, b) => a.name.localeCompare(b.name, 'en-GB'));
  }

  /** @param {string} id user id hex */
  nameOf(id) {
    return this.staffById.get(id)?.name ?? 'someone no longer listed';
  }

  /** @param {string} id category id */
  labelOf(id) {
    return this.categories.get(id)?.label ?? id;
  }

  /** What the keys may open and docs/ARCHITECTURE.md's rules show to this person. @param {Core} c */
  visible(c) {
    if (this.safeguardingRole) return true;
    if (c.needToKnow.includes(this.me)) return true;
    if (c.restricted) return false;
    if (c.pupils.some((p) => this.myPupils.has(p.id))) return true;
    return this.senRole && (this.categories.get(c.category)?.readers ?? []).includes('sen');
  }

  // --- reading ----------------------------------------------------------------------------------

  /** @param {Core} c @param {string} day @returns {Summary} */
  summary(c, day) {
    const pupils = c.pupils.map((p) => {
      const names = this.pupilNames.get(p.id);
      const classes = this.classesOfPupil.get(p.id) ?? [];
      return {
        id: p.id, role: p.roles[0] ?? 'other', roles: p.roles, name: names?.name ?? '',
        classLabel: names?.className || classes.map((k) => k.label).join(', '),
      };
    });
    const read = this.state.read[c.id] ?? 0;
    return {
      id: c.id, kind: c.kind, category: c.category, categoryLabel: this.labelOf(c.category), status: c.status,
      restricted: c.restricted, alert: c.urgent, excerpt: c.excerpt, occurredAt: c.occurredAt, pupils,
      classIds: [...new Set(c.pupils.flatMap((p) => (this.classesOfPupil.get(p.id) ?? []).map((k) => k.id)))],
      writtenMs: c.writtenMs, receivedMs: c.receivedMs, updatedMs: c.updatedMs, assignee: c.assignee,
      assigneeName: c.assignee ? this.nameOf(c.assignee) : '', unread: c.othersMs > read,
      conflicted: c.conflicted, overdueActions: c.dues.filter((d) => d < day).length, retracted: c.retracted,
      authorName: c.author ? this.nameOf(c.author) : '',
    };
  }

  /** Every visible summary, in inbox order (kept until something changes). @returns {Summary[]} */
  all() {
    if (!this.sorted) {
      const day = today();
      /** @type {Summary[]} */
      const out = [];
      for (const bucket of this.buckets.values()) {
        for (const c of Object.values(bucket)) if (this.visible(c)) out.push(this.summary(c, day));
      }
      this.sorted = out.sort(inboxOrder);
    }
    return this.sorted;
  }

  /** @param {InboxFilter & {limit?: number}} [filter] @returns {Summary[]} alert-flagged first, then newest */
  inbox(filter = {}) {
    const { status, category, classId, pupilId, kind, from, to, unread, assignedToMe, limit } = filter;
    const out = this.all().filter((s) => (status === undefined || s.status === status)
      && (category === undefined || s.category === category)
      && (kind === undefined || s.kind === kind)
      && (classId === undefined || s.classIds.includes(classId))
      && (pupilId === undefined || s.pupils.some((p) => p.id === pupilId))
      && (from === undefined || s.writtenMs >= from)
      && (to === undefined || s.writtenMs < to)
      && (unread === undefined || s.unread === unread)
      && (!assignedToMe || s.assignee === this.me));
    return limit === undefined ? out : out.slice(0, limit);
  }

  /** @returns {number} */
  unreadCount() {
    return this.all().reduce((n, s) => n + (s.unread ? 1 : 0), 0);
  }

  /** The sealed record of a concern, opened. @param {string} id @returns {Promise<ConcernBlob | null>} */
  blob(id) {
    return this.cache.concern(id);
  }

  /** @param {ConcernBlob} blob @returns {Event[]} */
  static events(blob) {
    return Object.values(blob.events).map((e) => ({
      id: e.id, concern: blob.id, device: e.device, deviceTimeMs: e.deviceTimeMs, hlc: e.hlc, author: e.author,
      parents: e.parents, type: e.type, body: e.body, content: b64d(e.content, 'content'),
    }));
  }

  /** @param {ConcernBlob} blob @returns {Record<string, any>} */
  fold(blob) {
    /** @type {Map<string, {received_ms?: number, seq?: number}>} */
    const received = new Map();
    for (const e of Object.values(blob.events)) {
      if (e.receivedMs !== null) received.set(e.id, { received_ms: e.receivedMs, seq: e.seq ?? undefined });
    }
    const restrictedCategories = [...this.categories.values()].filter((c) => c.sensitivity === 'restricted').map((c) => c.id);
    return fold(Casebook.events(blob), { safeguarding: this.safeguardingIds, restrictedCategories, received });
  }

  /** @param {string} id @returns {Promise<ConcernView | null>} */
  async concern(id) {
    const core = this.buckets.get(bucketOf(id))?.[id];
    if (!core || !this.visible(core)) return null;
    const blob = await this.blob(id);
    if (!blob) return null;
    const state = this.fold(blob);
    const day = today();
    const name = (/** @type {string} */ u) => this.nameOf(u);
    const label = (/** @type {string} */ c) => this.labelOf(c);
    /** @type {Record<string, any>} */
    const fields = {};
    for (const key of Object.keys(state.fields)) fields[key] = value(state, key);
    const record = Object.fromEntries(Object.entries(fields).filter(([k]) => !['status', 'assignee'].includes(k)));
    const history = state.history.map((/** @type {Record<string, any>} */ h) => ({
      eventId: h.event, type: h.type, author: h.author, authorName: this.nameOf(h.author),
      authorRoles: this.staffById.get(h.author)?.roles ?? [], deviceTimeMs: h.device_time_ms,
      receivedMs: h.received_ms ?? null, text: describe(h, name, label), body: h.body, flags: h.flags,
    }));
    const times = new Map(state.history.map((/** @type {any} */ h) => [h.event, h.device_time_ms]));
    const conflicts = state.conflicts.map((/** @type {string} */ field) => {
      const heads = field.startsWith('pupils.')
        ? state.pupils.find((/** @type {any} */ p) => `pupils.${p.pupil}` === field).candidates.map((/** @type {any} */ c) => ({ ...c, value: c.role }))
        : state.fields[field];
      return {
        field, versions: heads.map((/** @type {any} */ h) => ({
          eventId: h.event, value: h.value, author: h.author, authorName: this.nameOf(h.author),
          deviceTimeMs: times.get(h.event) ?? 0,
        })),
      };
    });
    return {
      summary: this.summary(core, day), fields, record, bodyMap: fields.body_map ?? [], history, conflicts,
      actions: actionsOf(state).map((a) => ({
        ...a, ownerName: this.nameOf(a.owner), overdue: !a.done && !a.retracted && a.due !== null && a.due < day,
      })),
      comments: state.comments.map((/** @type {any} */ c) => ({
        id: c.event, text: c.text, author: c.author, authorName: this.nameOf(c.author), retracted: c.retracted_by.length > 0,
      })),
      needToKnow: (fields.need_to_know ?? []).map((/** @type {string} */ u) => ({ id: u, name: this.nameOf(u) })),
      sharing: fields.sharing ?? null, decision: fields.decision ?? null, canTriage: this.safeguardingRole,
      entryKeyVersion: state.entry_key_version, missingParents: state.missing_parents,
    };
  }

  /**
   * @param {string} pupilId hex
   * @param {{kinds?: string[], categories?: string[]}} [filter]
   * @returns {Promise<Chronology>}
   */
  async chronology(pupilId, { kinds, categories } = {}) {
    const names = this.pupilNames.get(pupilId);
    const classes = this.classesOfPupil.get(pupilId) ?? [];
    const cores = [];
    for (const bucket of this.buckets.values()) {
      for (const c of Object.values(bucket)) {
        if (!c.retracted && c.pupils.some((p) => p.id === pupilId) && this.visible(c)
          && (!kinds || kinds.includes(c.kind)) && (!categories || categories.includes(c.category))
          && !this.categories.get(c.category)?.off_chronology) cores.push(c);
      }
    }
    const entries = await Promise.all(cores.map(async (c) => {
      const blob = await this.blob(c.id);
      const state = blob ? this.fold(blob) : null;
      const role = c.pupils.find((p) => p.id === pupilId)?.roles[0] ?? 'other';
      return {
        id: c.id, kind: c.kind, category: c.category, categoryLabel: this.labelOf(c.category), role,
        occurredAt: c.occurredAt, writtenMs: c.writtenMs, receivedMs: c.receivedMs, status: c.status,
        restricted: c.restricted, authorName: c.author ? this.nameOf(c.author) : '',
        observed: state ? String(value(state, 'observed') ?? '') : c.excerpt,
        outcome: state ? String(value(state, 'outcome') ?? '') : '',
        actions: state ? actionsOf(state).filter((a) => !a.retracted)
          .map((a) => ({ text: a.text, ownerName: this.nameOf(a.owner), due: a.due, done: a.done })) : [],
      };
    }));
    entries.sort((a, b) => (a.occurredAt < b.occurredAt ? -1 : a.occurredAt > b.occurredAt ? 1 : a.writtenMs - b.writtenMs));
    return {
      pupil: { id: pupilId, name: names?.name ?? '', classLabel: names?.className || classes.map((k) => k.label).join(', ') },
      entries,
    };
  }

  /** @returns {Promise<Map<number, Record<string, string>>>} */
  async searchIndex() {
    if (!this.searchBuckets) this.searchBuckets = await this.cache.buckets('review-search');
    return this.searchBuckets;
  }

  /**
   * Every visible concern whose text holds every word of `text` (case-insensitive), best first. Opened in
   * memory only.
   * @param {string} text
   * @returns {Promise<SearchHit[]>}
   */
  async search(text) {
    const words = text.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return [];
    const day = today();
    /** @type {SearchHit[]} */
    const hits = [];
    for (const [n, bucket] of await this.searchIndex()) {
      const cores = this.buckets.get(n) ?? {};
      for (const [id, body] of Object.entries(bucket)) {
        const core = cores[id];
        if (!core || !this.visible(core)) continue;
        const s = this.summary(core, day);
        const hay = `${body}\n${s.pupils.map((p) => p.name.toLowerCase()).join('\n')}\n${s.categoryLabel.toLowerCase()}`;
        if (!words.every((w) => hay.includes(w))) continue;
        let score = 0;
        for (const w of words) score += hay.split(w).length - 1;
        const matches = hay.split('\n').filter((line) => words.some((w) => line.includes(w))).slice(0, 3);
        hits.push({ id, score, summary: s, matches });
      }
    }
    return hits.sort((a, b) => (b.score - a.score) || inboxOrder(a.summary, b.summary));
  }

  // --- ingest -----------------------------------------------------------------------------------

  /** The keys this device can open with: its reader keys and the person's own identity key. */
  readerKeys() {
    const { device } = this.session;
    /** @type {import('../crypto/envelope.js').ReaderKey[]} */
    const keys = [{ kind: RECIPIENT_PERSON, id: device.userId, version: 1, sk: device.identity.x25519Sk }];
    for (const [name, sk] of device.readerKeys) {
      const [id, version] = name.split(':');
      keys.push({ kind: RECIPIENT_READER_KEY, id: unhex(id), version: Number(version), sk });
    }
    return keys;
  }

  /** After lock: every later read or write is refused (the session's keys are being wiped). */
  close() {
    this.closed = true;
    this.listeners.clear();
  }

  /** Run `task` after every earlier write. @template T @param {() => Promise<T>} task @returns {Promise<T>} */
  serial(task) {
    const guarded = () => {
      if (this.closed) throw new Locked('This Casebook was closed when its person locked the device.');
      return task();
    };
    const run = this.queue.then(guarded, guarded);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * A device that signed in after this person's directory was fetched (a colleague on a new tablet, live
   * while this inbox is open) wrote some of `items`: fetch the directory once, so its key is known. Offline
   * or refused, the items stay skipped and the next pull after a refresh brings them again.
   * (Added by the screens' helper: without it a concern from a newly signed-in device never appeared live.)
   * @param {PulledItem[]} items
   */
  async learnDevices(items) {
    const unknown = items.some((item) => {
      try {
        return !this.devicePks.has(hex(envelope.parse(b64d(item.envelope, 'envelope')).authorDevice));
      } catch {
        return false;
      }
    });
    if (!unknown) return;
    try {
      await this.session.device.refresh();
      this.directoryChanged(); // held items are tried again after these (without learning again: no loop)
    } catch (error) {
      // Offline, a server error, or a directory this device refuses (the syncer warns about that one): the
      // items from unknown devices are held and tried again after the next good refresh.
      const expected = ['ApiFailure', 'DirectoryRefused', 'Locked']; // Locked: the person locked meanwhile
      if (!(error instanceof TypeError || (error instanceof Error && expected.includes(error.name)))) throw error;
    }
  }

  /**
   * Verify, open, decode and fold pulled or pushed items; persist sealed; fire 'changed' with the ids.
   * Items that fail verification or decoding are skipped for good; items this device holds no key for, or
   * whose author device the directory does not list yet, are skipped and held (sealed) for a later try.
   * @param {PulledItem[]} items
   * @returns {Promise<{added: string[], updated: string[], skipped: number}>}
   */
  ingest(items) {
    return this.serial(() => this.ingestNow(items));
  }

  /** @param {PulledItem[]} items @param {boolean} [learn] fetch the directory for an unknown author device */
  async ingestNow(items, learn = true) {
    if (learn) await this.learnDevices(items);
    const keys = this.readerKeys();
    const entryKeys = entryKeyList(this.entryKeys);
    /** @type {Map<string, {event: Event, opened: import('../crypto/envelope.js').Opened, receivedMs: number | null, seq: number | null}[]>} */
    const byConcern = new Map();
    let skipped = 0;
    /** @type {PulledItem[]} */
    const held = [];
    for (const item of items) {
      try {
        const bytes = b64d(item.envelope, 'envelope');
        const parsed = envelope.parse(bytes);
        const pk = this.devicePks.get(hex(parsed.authorDevice));
        if (!pk) {
          held.push(item);
          skipped += 1;
          continue;
        }
        const opened = envelope.open(bytes, { authorDevicePk: pk, readerKeys: keys, entryKeys });
        const h = opened.header;
        const event = decode(opened.content, {
          eventId: h.envelopeId, concernId: h.concernId, authorDevice: h.authorDevice, deviceTimeMs: h.deviceTimeMs,
        });
        const list = byConcern.get(event.concern) ?? [];
        list.push({ event, opened, receivedMs: item.server_time_ms, seq: item.seq });
        byConcern.set(event.concern, list);
      } catch (error) {
        if (!(error instanceof CryptoError || error instanceof InvalidEvent || error instanceof TypeError)) throw error;
        if (error instanceof NoKey) held.push(item); // a grant may arrive later; anything else is refused for good
        skipped += 1;
      }
    }
    if (held.length) {
      // Never dropped: the cursor has moved past them, so this list is their only copy on this device.
      const kept = new Set((this.state.held ?? []).map((i) => i.seq));
      this.state.held = [...(this.state.held ?? []), ...held.filter((i) => !kept.has(i.seq))];
      await this.saveState();
    }
    const { added, updated } = await this.apply(byConcern);
    if (held.length && !added.length && !updated.length) this.emit([]); // the waiting count changed
    return { added, updated, skipped };
  }

  /**
   * Add opened events to their concerns' sealed records, refold, and persist the touched buckets.
   * @param {Map<string, {event: Event, opened: import('../crypto/envelope.js').Opened | null,
   *   receivedMs: number | null, seq: number | null, entryKey?: Uint8Array, version?: number,
   *   recipients?: {kind: number, id: string, version: number}[], pupilIds?: string[]}[]>} byConcern
   */
  async apply(byConcern) {
    /** @type {string[]} */ const added = [];
    /** @type {string[]} */ const updated = [];
    if (!byConcern.size) return { added, updated };
    const search = await this.searchIndex();
    /** @type {import('../db.js').ReviewRecord[]} */
    const records = [];
    const dirty = new Set();
    for (const [id, list] of byConcern) {
      const blob = (await this.blob(id)) ?? { id, events: {}, keys: {}, recipients: {}, pupilIds: {} };
      const isNew = Object.keys(blob.events).length === 0;
      for (const { event, opened, receivedMs, seq, entryKey, version, recipients, pupilIds } of list) {
        const old = blob.events[event.id];
        blob.events[event.id] = {
          id: event.id, device: event.device, deviceTimeMs: event.deviceTimeMs, hlc: [event.hlc[0], event.hlc[1]],
          author: event.author, parents: event.parents, type: event.type, body: event.body,
          content: b64e(event.content), receivedMs: receivedMs ?? old?.receivedMs ?? null, seq: seq ?? old?.seq ?? null,
        };
        const h = opened?.header;
        const v = String(h ? h.entryKeyVersion : version);
        const key = opened?.entryKey ?? entryKey;
        if (key && !blob.keys[v]) blob.keys[v] = b64e(key);
        if (h) {
          blob.recipients[v] = h.recipients.map((r) => ({ kind: r.kind, id: hex(r.id), version: r.version }));
          blob.pupilIds[v] = h.pupilIds.map(hex);
        } else if (recipients && pupilIds) {
          blob.recipients[v] = recipients;
          blob.pupilIds[v] = pupilIds;
        }
        opened?.entryKey.fill(0);
      }
      const state = this.fold(blob);
      const times = new Map(Object.values(blob.events).map((e) => [e.id, { deviceTimeMs: e.deviceTimeMs, receivedMs: e.receivedMs }]));
      const n = bucketOf(id);
      const bucket = this.buckets.get(n) ?? {};
      bucket[id] = summarise(state, times, this.me);
      this.buckets.set(n, bucket);
      const texts = search.get(n) ?? {};
      texts[id] = searchText(state);
      search.set(n, texts);
      dirty.add(n);
      records.push(this.cache.concernRecord(id, blob));
      (isNew ? added : updated).push(id);
    }
    for (const n of dirty) {
      records.push(this.cache.bucketRecord('review-index', n, /** @type {Record<string, any>} */ (this.buckets.get(n))));
      records.push(this.cache.bucketRecord('review-search', n, /** @type {Record<string, any>} */ (search.get(n))));
    }
    await this.cache.put(records);
    this.emit([...added, ...updated]);
    return { added, updated };
  }

  // --- read state and audit ---------------------------------------------------------------------

  /** Persist the read state. */
  saveState() {
    return this.cache.put([this.cache.stateRecord(this.state)]);
  }

  /**
   * Mark read here and queue the audited `concern.opened` for the server. Read means "up to the newest event
   * received", in server time, so a device's own clock never decides what is unread.
   * @param {string} id
   */
  markRead(id) {
    return this.serial(async () => {
      const core = this.buckets.get(bucketOf(id))?.[id];
      this.state.read[id] = Math.max(core?.updatedMs ?? 0, this.state.read[id] ?? 0);
      this.state.pending.push({ action: 'concern.opened', target: id });
      await this.saveState();
      this.emit([id]);
    });
  }

  /** Queue the audited `chronology.printed` for the server. @param {string} pupilId */
  auditPrint(pupilId) {
    return this.serial(async () => {
      this.state.pending.push({ action: 'chronology.printed', target: pupilId });
      await this.saveState();
    });
  }

  /**
   * Online: send queued audit events (POST /api/v1/audit), then learn what this person opened on other
   * devices (GET /api/v1/audit/opened). Returns how many were sent. The network calls run outside the write
   * queue, so triage never waits on them.
   * @returns {Promise<number>}
   */
  syncAudit() {
    if (!this.auditing) this.auditing = this.syncAuditNow().finally(() => { this.auditing = null; });
    return this.auditing;
  }

  /** @returns {Promise<number>} */
  async syncAuditNow() {
    const device = this.session.device;
    const pending = await this.serial(async () => this.state.pending.slice(0, 100));
    if (pending.length) {
      await device.call('POST', '/api/v1/audit', { events: pending });
      await this.serial(async () => {
        this.state.pending = this.state.pending.slice(pending.length); // only this run's sender removes them
        await this.saveState();
      });
    }
    for (;;) {
      const after = this.state.auditAfter;
      const page = await device.call('GET', `/api/v1/audit/opened?after=${after}`);
      const changed = await this.serial(async () => {
        /** @type {string[]} */
        const ids = [];
        for (const row of page.opened) {
          if ((this.state.read[row.target] ?? 0) < row.at_ms) {
            this.state.read[row.target] = row.at_ms;
            ids.push(row.target);
          }
        }
        this.state.auditAfter = Math.max(this.state.auditAfter, page.next);
        await this.saveState();
        return ids;
      });
      if (changed.length) this.emit(changed);
      if (page.done) break;
    }
    return pending.length;
  }

  // --- triage: each a signed event through the outbox (./triage.js) -----------------------------

  /** @param {string} id @param {string | null} userId */
  assign(id, userId) { return triage.write(this, id, 'assigned', { assignee: userId }); }

  /** @param {string} id @param {string} status @param {string} [note] */
  setStatus(id, status, note) { return triage.write(this, id, 'status_changed', note ? { status, note } : { status }); }

  /** @param {string} id @param {{text: string, owner: string, due?: string}} action */
  addAction(id, action) { return triage.write(this, id, 'action_added', { action }); }

  /** @param {string} id @param {string} actionId @param {string} [note] */
  completeAction(id, actionId, note) {
    return triage.write(this, id, 'action_completed', note ? { target: actionId, note } : { target: actionId });
  }

  /** @param {string} id @param {string} text */
  comment(id, text) { return triage.write(this, id, 'comment', { text }); }

  /** @param {string} id @param {string} field @param {any} value */
  amend(id, field, value) { return triage.write(this, id, 'amended', { field, value }); }

  /** @param {string} id @param {string[]} userIds added to the named need-to-know staff */
  addNeedToKnow(id, userIds) { return triage.addNeedToKnow(this, id, userIds); }

  /**
   * @param {string} id
   * @param {{shared: boolean, with: string, what: string, lawful_basis: string, reason: string}} sharing
   */
  recordSharing(id, sharing) { return triage.write(this, id, 'amended', { field: 'sharing', value: sharing }); }

  /** @param {string} id @param {{decision: string, rationale: string}} decision */
  recordDecision(id, decision) { return triage.write(this, id, 'amended', { field: 'decision', value: decision }); }

  /** @param {string} id @param {string} kind @param {string} category @param {string} [reason] */
  reclassify(id, kind, category, reason) { return triage.reclassify(this, id, kind, category, reason); }

  /** @param {string} id @param {string} reason */
  restrict(id, reason) { return triage.restrict(this, id, reason); }

  /** @param {string} id @param {string} reason */
  liftRestriction(id, reason) { return triage.lift(this, id, reason); }

  /**
   * Choose (or write) the value of a field in conflict; `eventIds` are the versions chosen between.
   * @param {string} id @param {string} field @param {any} value @param {string[]} eventIds
   */
  resolveConflict(id, field, value, eventIds) { return triage.resolve(this, id, field, value, eventIds); }
}
