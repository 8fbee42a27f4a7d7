// The concern fold: a pure, deterministic function from a set of events to the concern's state and history.
// The twin of sync/fold.py; the vectors under tests/vectors/fold/ hold both to the same output. The rules
// are in docs/PROTOCOL.md section 8.5 and at the top of sync/fold.py.

import { canonicalJson } from './events.js';
import { compareEvents } from './hlc.js';

/** @typedef {import('./events.js').Event} Event */
/** @typedef {{received_ms?: number, seq?: number}} Received */
/**
 * @typedef {object} FoldOptions
 * @property {Iterable<string>} [safeguarding] user ids with safeguarding authority (may lift a restriction)
 * @property {Iterable<string>} [restrictedCategories] category ids whose default sensitivity is restricted
 * @property {Record<string, Received> | Map<string, Received>} [received] side data per event id, history only
 */

export const FLAGS = Object.freeze([
  'conflict', 'equivocation', 'not_an_action', 'not_authorised', 'not_retractable', 'parent_not_before',
  'unknown_parent', 'unknown_target',
]);

/** @param {Uint8Array} a @param {Uint8Array} b */
function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** @param {string} a @param {string} b */
const compareStrings = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Which of two events under one id is kept: the smaller content, then device, then device time.
 * @param {Event} a @param {Event} b
 */
function compareCopies(a, b) {
  return compareBytes(a.content, b.content) || compareStrings(a.device, b.device) || a.deviceTimeMs - b.deviceTimeMs;
}

/**
 * @param {Iterable<Event>} events
 * @returns {{concern: string | null, byId: Map<string, Event>, equivocal: Set<string>}}
 */
function dedupe(events) {
  /** @type {Map<string, Event>} */
  const byId = new Map();
  const equivocal = new Set();
  /** @type {string | null} */
  let concern = null;
  for (const e of events) {
    if (concern === null) concern = e.concern;
    else if (e.concern !== concern) throw new Error(`fold takes the events of one concern; got ${concern} and ${e.concern}`);
    const old = byId.get(e.id);
    if (old === undefined) byId.set(e.id, e);
    else if (compareCopies(old, e) !== 0) {
      equivocal.add(e.id);
      if (compareCopies(e, old) < 0) byId.set(e.id, e);
    }
  }
  return { concern, byId, equivocal };
}

/**
 * Fold one concern's events (any order, duplicates allowed) into its state, as plain JSON-ready data.
 * @param {Iterable<Event>} events
 * @param {FoldOptions} [options]
 * @returns {Record<string, any>}
 */
export function fold(events, { safeguarding = [], restrictedCategories = [], received } = {}) {
  const { concern, byId, equivocal } = dedupe(events);
  const order = [...byId.values()].sort(compareEvents);
  /** @type {Map<string, number>} */
  const index = new Map();
  order.forEach((e, i) => index.set(e.id, i));
  const n = order.length;
  const words = Math.max(1, Math.ceil(n / 32));
  /** @type {Uint32Array[]} */
  const anc = new Array(n); // bitset of each event's ancestors, by position in `order`
  /** @type {Map<number, Set<string>>} */
  const flags = new Map();
  /** @type {Set<string>} */
  const missing = new Set();
  const restrictedCats = new Set(restrictedCategories);
  const guard = new Set(safeguarding);

  /** @param {number} i @param {string} name */
  const flag = (i, name) => {
    let s = flags.get(i);
    if (s === undefined) flags.set(i, (s = new Set()));
    s.add(name);
  };
  /** @param {Uint32Array} bits @param {number} i */
  const has = (bits, i) => (bits[i >>> 5] & (1 << (i & 31))) !== 0;

  /** @type {Map<string, [number, any][]>} */
  const registers = new Map();
  /** @type {Map<string, [number, string | null][]>} */
  const pupils = new Map();
  /** @type {number[]} */ const actions = [];
  /** @type {number[]} */ const comments = [];
  /** @type {number[]} */ const restricting = [];
  /** @type {number[]} */ const lifts = [];
  /** @type {number[]} */ const retractions = [];
  /** @type {number[]} */ const completions = [];
  /** @type {number[]} */ const created = [];
  let keyVersion = 0;

  /** @template T @param {Map<string, [number, T][]>} map @param {string} key @param {number} i @param {T} value */
  const write = (map, key, i, value) => {
    const list = map.get(key);
    if (list === undefined) map.set(key, [[i, value]]);
    else list.push([i, value]);
  };

  for (let i = 0; i < n; i++) {
    const e = order[i];
    const a = new Uint32Array(words);
    for (const p of e.parents) {
      const j = index.get(p);
      if (j === undefined) {
        missing.add(p);
        flag(i, 'unknown_parent');
      } else if (j < i) {
        const aj = anc[j];
        for (let w = 0; w < words; w++) a[w] |= aj[w];
        a[j >>> 5] |= 1 << (j & 31);
      } else {
        flag(i, 'parent_not_before');
      }
    }
    anc[i] = a;
    const body = e.body;
    if (typeof body.entry_key_version === 'number' && body.entry_key_version > keyVersion) keyVersion = body.entry_key_version;
    switch (e.type) {
      case 'amended':
      case 'conflict_resolved':
        write(registers, body.field, i, body.value);
        if (body.field === 'category' && restrictedCats.has(body.value)) restricting.push(i);
        break;
      case 'comment':
        comments.push(i);
        break;
      case 'action_added':
        actions.push(i);
        break;
      case 'status_changed':
        write(registers, 'status', i, body.status);
        break;
      case 'assigned':
        write(registers, 'assignee', i, body.assignee);
        break;
      case 'pupils_linked':
        for (const link of body.pupils) write(pupils, link.pupil, i, link.role);
        break;
      case 'pupils_unlinked':
        for (const pupil of body.pupils) write(pupils, pupil, i, null);
        break;
      case 'created':
        created.push(i);
        for (const [field, value] of Object.entries(body.record)) {
          if (field === 'pupils') for (const link of value) write(pupils, link.pupil, i, link.role);
          else write(registers, field, i, value);
        }
        write(registers, 'status', i, 'open');
        if (restrictedCats.has(body.record.category)) restricting.push(i);
        break;
      case 'reclassified':
        write(registers, 'kind', i, body.kind);
        write(registers, 'category', i, body.category);
        if (restrictedCats.has(body.category)) restricting.push(i);
        break;
      case 'restriction_changed':
        if (body.restricted) restricting.push(i);
        else if (guard.has(e.author)) lifts.push(i);
        else flag(i, 'not_authorised');
        break;
      case 'retracted':
        retractions.push(i);
        break;
      case 'action_completed':
        completions.push(i);
        break;
      default:
        throw new Error(`fold: unknown event type ${e.type}`);
    }
  }

  /** @param {number[]} list */
  const cover = (list) => {
    const covered = new Uint32Array(words);
    for (const i of list) {
      const ai = anc[i];
      for (let w = 0; w < words; w++) covered[w] |= ai[w];
    }
    return covered;
  };
  /** @template T @param {[number, T][]} writes @returns {[number, T][]} */
  const heads = (writes) => {
    if (writes.length === 1) return writes;
    const covered = cover(writes.map(([i]) => i));
    return writes.filter(([i]) => !has(covered, i));
  };

  /** @type {string[]} */
  const conflicts = [];
  /** @param {string} name @param {[number, unknown][]} live */
  const conflicting = (name, live) => {
    if (live.length < 2) return;
    const first = canonicalJson(live[0][1]);
    if (live.slice(1).some(([, v]) => canonicalJson(v) !== first)) {
      conflicts.push(name);
      for (const [i] of live) flag(i, 'conflict');
    }
  };

  /** @type {Record<string, {event: string, author: string, value: any}[]>} */
  const fields = {};
  for (const [name, writes] of registers) {
    const live = heads(writes);
    conflicting(name, live);
    if (live.some(([, v]) => v !== null)) {
      fields[name] = live.map(([i, value]) => ({ event: order[i].id, author: order[i].author, value }));
    }
  }

  const linked = [];
  for (const pupil of [...pupils.keys()].sort(compareStrings)) {
    const live = heads(/** @type {[number, string | null][]} */ (pupils.get(pupil)));
    const roles = [...new Set(live.map(([, r]) => r).filter((r) => r !== null))].sort(compareStrings);
    if (roles.length) {
      conflicting(`pupils.${pupil}`, live);
      linked.push({
        pupil, roles, candidates: live.map(([i, role]) => ({ event: order[i].id, author: order[i].author, role })),
      });
    }
  }

  const lifted = cover(lifts);
  const liveRestricting = restricting.filter((i) => !has(lifted, i));

  const creators = new Set(created.map((i) => order[i].author));
  /** @type {string[]} */
  const retractedConcern = [];
  /** @type {Map<number, string[]>} */
  const retractedItems = new Map();
  for (const i of retractions) {
    const e = order[i];
    const target = e.body.target;
    const j = target === undefined ? undefined : index.get(target);
    if (target !== undefined && j === undefined) flag(i, 'unknown_target');
    else if (j === undefined || order[j].type === 'created') {
      if (guard.has(e.author) || creators.has(e.author)) retractedConcern.push(e.id);
      else flag(i, 'not_authorised');
    } else if (order[j].type !== 'comment' && order[j].type !== 'action_added') flag(i, 'not_retractable');
    else if (guard.has(e.author) || e.author === order[j].author) {
      const list = retractedItems.get(j);
      if (list === undefined) retractedItems.set(j, [e.id]);
      else list.push(e.id);
    } else flag(i, 'not_authorised');
  }

  /** @type {Map<number, string[]>} */
  const completed = new Map();
  for (const i of completions) {
    const e = order[i];
    const j = index.get(e.body.target);
    if (j === undefined) flag(i, 'unknown_target');
    else if (order[j].type !== 'action_added') flag(i, 'not_an_action');
    else if (guard.has(e.author) || e.author === order[j].author || e.author === order[j].body.action.owner) {
      const list = completed.get(j);
      if (list === undefined) completed.set(j, [e.id]);
      else list.push(e.id);
    } else flag(i, 'not_authorised');
  }

  for (const id of equivocal) flag(/** @type {number} */ (index.get(id)), 'equivocation');

  /** @param {number} i @param {Record<string, any>} extra */
  const item = (i, extra) => ({
    event: order[i].id, author: order[i].author, ...extra, retracted_by: retractedItems.get(i) ?? [],
  });
  const side = received instanceof Map ? (/** @type {string} */ id) => received.get(id)
    : (/** @type {string} */ id) => (received && Object.hasOwn(received, id) ? received[id] : undefined);

  const history = order.map((e, i) => {
    /** @type {Record<string, any>} */
    const entry = {
      event: e.id, type: e.type, author: e.author, device: e.device, hlc: [e.hlc[0], e.hlc[1]],
      device_time_ms: e.deviceTimeMs, parents: [...e.parents], body: e.body,
      flags: flags.has(i) ? [.../** @type {Set<string>} */ (flags.get(i))].sort(compareStrings) : [],
    };
    const s = side(e.id);
    if (s) {
      if (s.received_ms !== undefined) entry.received_ms = s.received_ms;
      if (s.seq !== undefined) entry.seq = s.seq;
    }
    return entry;
  });

  return {
    concern,
    created: created.map((i) => order[i].id),
    fields,
    pupils: linked,
    actions: actions.map((i) => item(i, { ...order[i].body.action, completed_by: completed.get(i) ?? [] })),
    comments: comments.map((i) => item(i, { text: order[i].body.text })),
    restricted: liveRestricting.length > 0,
    restricting: liveRestricting.map((i) => order[i].id),
    retracted_by: retractedConcern,
    entry_key_version: keyVersion,
    conflicts: conflicts.sort(compareStrings),
    missing_parents: [...missing].sort(compareStrings),
    equivocations: [...equivocal].sort(compareStrings),
    history,
  };
}

/**
 * The ids a new event should name as parents: those no other event in the set descends from. A parent
 * link counts as in `fold`: only to an event in the set that comes earlier in the total order.
 * @param {Iterable<Event>} events
 * @returns {string[]}
 */
export function frontier(events) {
  const unique = dedupe(events).byId;
  const named = new Set();
  for (const e of unique.values()) {
    for (const p of e.parents) {
      const parent = unique.get(p);
      if (parent !== undefined && compareEvents(parent, e) < 0) named.add(p);
    }
  }
  return [...unique.keys()].filter((id) => !named.has(id)).sort(compareStrings);
}
