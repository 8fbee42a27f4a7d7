// Fold benchmark of the JavaScript twin (pwa/js/fold.js), printing `name: value unit` lines.
//
//   node bench/fold.mjs
//
// 10,000 fictional concerns of 20 events each, shaped as in bench/fold.py: a created event, then
// amendments (about one in five written offline beside another edit), comments, actions, status changes,
// pupil links and a restriction. Decoded once (`decode_events_per_s`, with the canonical-form check), then
// folded (`fold_events_per_s`, best of three passes). One core.

import { canonicalJson, decode } from '../pwa/js/events.js';
import { fold } from '../pwa/js/fold.js';

const CONCERNS = 10000;
const EVENTS = 20;
const BASE_MS = 1790000000000;
const RESTRICTED = ['cse', 'sexual_abuse'];

/** A small seeded PRNG (mulberry32). @param {number} seed */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(20260921);
/** @template T @param {T[]} list */
const choice = (list) => list[Math.floor(rand() * list.length)];
const newId = () => Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256));
/** @param {Uint8Array} b */
const hex = (b) => Buffer.from(b).toString('hex');
const utf8 = new TextEncoder();

function concernContents() {
  const users = [0, 1, 2, 3].map(() => hex(newId()));
  const devices = [0, 1, 2].map(newId);
  const pupils = [0, 1].map(() => hex(newId()));
  /** @type {[Uint8Array, Record<string, any>][]} */
  const written = [];
  /** @type {string[]} */
  let heads = [];
  let wall = BASE_MS + Math.floor(rand() * 1e10);
  for (let n = 0; n < EVENTS; n++) {
    wall += 1 + Math.floor(rand() * 3600000);
    const eid = newId();
    /** @type {Record<string, any>} */
    let body;
    /** @type {string[]} */
    let parents;
    if (n === 0) {
      body = { type: 'created', entry_key_version: 1, record: {
        kind: 'safeguarding_concern', category: choice(['neglect', 'bullying', 'cse']), occurred_at: '2026-09-21T08:50',
        observed: 'Fictional observation '.repeat(8).trimEnd(), pupils: [{ pupil: pupils[0], role: 'subject' }] } };
      parents = [];
    } else {
      const r = rand();
      if (r < 0.45) body = { type: 'amended', field: choice(['location', 'observed', 'opinion']), value: `Fictional value ${n}` };
      else if (r < 0.6) body = { type: 'comment', text: `Fictional follow-up ${n}.` };
      else if (r < 0.7) body = { type: 'action_added', action: { text: 'Call home.', owner: users[1], due: '2026-10-01' } };
      else if (r < 0.8) body = { type: 'status_changed', status: choice(['awaiting', 'closed', 'reopened']) };
      else if (r < 0.9) body = { type: 'pupils_linked', pupils: [{ pupil: pupils[1], role: choice(['victim', 'witness']) }] };
      else body = { type: 'restriction_changed', restricted: true, reason: 'Sensitive.', entry_key_version: 2 };
      const concurrent = rand() < 0.2 && written.length > 1;
      parents = concurrent ? [...written[written.length - 1][1].parents].sort() : [...heads].sort();
    }
    const content = { v: 1, hlc: [wall, 0], author: choice(users), parents, ...body };
    heads = [...heads.filter((h) => !parents.includes(h)), hex(eid)];
    written.push([eid, content]);
  }
  return written.map(([eid, c]) => ({ eid, device: choice(devices), time: c.hlc[0], content: utf8.encode(canonicalJson(c)) }));
}

const raw = Array.from({ length: CONCERNS }, () => ({ concern: newId(), events: concernContents() }));
const total = CONCERNS * EVENTS;
let start = performance.now();
const concerns = raw.map(({ concern, events }) => events.map((e) => decode(e.content, {
  eventId: e.eid, concernId: concern, authorDevice: e.device, deviceTimeMs: e.time,
})));
console.log(`decode_events_per_s: ${Math.round(total / ((performance.now() - start) / 1000))} per_s`);

let best = Infinity;
const options = { safeguarding: ['00'.repeat(16)], restrictedCategories: RESTRICTED };
for (let pass = 0; pass < 3; pass++) {
  start = performance.now();
  for (const events of concerns) fold(events, options);
  best = Math.min(best, performance.now() - start);
}
console.log(`fold_events_per_s: ${Math.round(total / (best / 1000))} per_s`);
console.log(`fold_concern_us: ${(best * 1000 / CONCERNS).toFixed(1)} us`);
