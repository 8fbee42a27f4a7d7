// The concern fold in JavaScript: every vector under tests/vectors/fold/ (shared with the Python suite) run
// through events.js and fold.js, and a property-style test with a seeded PRNG: devices editing offline
// with skewed clocks, events delivered shuffled and duplicated, must converge and keep both sides of every
// concurrent edit. Fails, never passes vacuously, when the folder holds no vectors.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { decode, encode } from '../js/events.js';
import { fold, frontier } from '../js/fold.js';
import { nextHlc } from '../js/hlc.js';
import { InvalidEvent, UnsupportedEventVersion, validateRecord } from '../js/record.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const VECTORS = join(ROOT, 'tests', 'vectors', 'fold');
const CATEGORIES = JSON.parse(readFileSync(join(ROOT, 'sync', 'data', 'categories.json'), 'utf8')).categories;
const RESTRICTED = CATEGORIES.filter((/** @type {any} */ c) => c.sensitivity === 'restricted').map((/** @type {any} */ c) => c.id);

/** @param {string} hex */
const bytes = (hex) => new Uint8Array(Buffer.from(hex, 'hex'));
/** @param {Uint8Array} b */
const hex = (b) => Buffer.from(b).toString('hex');

/** A small seeded PRNG (mulberry32), so that every run deals the same hands. @param {number} seed */
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

/** @template T @param {T[]} list @param {() => number} rand @returns {T[]} */
function shuffled(list, rand) {
  const out = [...list];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** @param {any} e */
function decodeWire(e) {
  return decode(bytes(e.content), {
    eventId: bytes(e.id), concernId: bytes(e.concern), authorDevice: bytes(e.device), deviceTimeMs: e.device_time_ms,
  });
}

const files = readdirSync(VECTORS).filter((f) => f.endsWith('.json')).sort();

test('the fold vectors are there, with successes and both kinds of refusal', () => {
  assert.ok(files.length >= 30, `too few fold vectors under ${VECTORS}`);
  const expects = new Set(files.map((f) => JSON.parse(readFileSync(join(VECTORS, f), 'utf8')).expect));
  assert.deepEqual([...expects].sort(), ['parse_failure', 'success', 'unsupported_version']);
});

for (const file of files) {
  test(`fold vector ${file}`, () => {
    const v = JSON.parse(readFileSync(join(VECTORS, file), 'utf8'));
    assert.equal(file, `${v.area}_${v.condition}.json`);
    assert.equal(v.construct, 'fold');
    const i = v.inputs;
    if (v.expect !== 'success') {
      assert.equal(v.output, undefined);
      const cls = v.expect === 'unsupported_version' ? UnsupportedEventVersion : InvalidEvent;
      assert.throws(() => i.events.forEach(decodeWire), (/** @type {unknown} */ err) => {
        assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
        assert.equal(err.code, v.expect);
        assert.deepEqual(err.fields, i.error_fields);
        return true;
      });
      return;
    }
    const events = i.events.map(decodeWire);
    for (const e of events) {
      assert.equal(hex(encode(JSON.parse(Buffer.from(e.content).toString('utf8')))), hex(e.content), 'canonical content re-encodes to the same bytes');
    }
    const options = { safeguarding: i.safeguarding, restrictedCategories: i.restricted_categories, received: i.received };
    assert.deepStrictEqual(fold(events, options), v.output);
    const rand = prng(file.length * 7919);
    assert.deepStrictEqual(fold(shuffled([...events, ...events.slice(0, 3)], rand), options), v.output);
  });
}

test('the vector runner can fail: a changed output does not pass', () => {
  const v = JSON.parse(readFileSync(join(VECTORS, 'amend_concurrent_conflict.json'), 'utf8'));
  const events = v.inputs.events.map(decodeWire);
  const state = fold(events, { safeguarding: v.inputs.safeguarding, restrictedCategories: v.inputs.restricted_categories });
  assert.throws(() => assert.deepStrictEqual(state, { ...v.output, conflicts: [] }));
});

// --- property-style: offline devices, skewed clocks, shuffled and duplicated delivery -------------------------

const YEAR = 365 * 86400000;
const BASE = 1790000000000;
const FIELDS = ['location', 'observed', 'opinion'];

/**
 * Play one random script: 4 devices, each writing on what it has seen and syncing now and then.
 * @param {number} seed
 */
function play(seed) {
  const rand = prng(seed);
  const id = () => Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256));
  const concern = id();
  const users = Array.from({ length: 4 }, () => hex(id()));
  const pupils = Array.from({ length: 3 }, () => hex(id()));
  const devices = Array.from({ length: 4 }, () => ({
    id: id(), skew: Math.floor((rand() * 2 - 1) * YEAR), last: /** @type {import('../js/hlc.js').Hlc | null} */ (null),
    known: /** @type {Set<string>} */ (new Set()),
  }));
  /** @type {Map<string, import('../js/events.js').Event>} */
  const all = new Map();
  let minutes = 0;
  /** @param {number} d @param {number} u @param {Record<string, any>} body */
  const write = (d, u, body) => {
    minutes += 1;
    const dev = devices[d];
    const now = BASE + minutes * 60000 + dev.skew;
    const parents = body.type === 'created' ? [] : frontier([...dev.known].map((k) => /** @type {any} */ (all.get(k))));
    const hlc = nextHlc(dev.last, now, parents.map((p) => /** @type {any} */ (all.get(p)).hlc));
    dev.last = hlc;
    const content = encode({ v: 1, hlc: [...hlc], author: users[u], parents, ...body });
    const e = decode(content, { eventId: id(), concernId: concern, authorDevice: dev.id, deviceTimeMs: now });
    all.set(e.id, e);
    dev.known.add(e.id);
    return e;
  };
  write(0, 2, {
    type: 'created', entry_key_version: 1,
    record: { kind: 'safeguarding_concern', category: 'neglect', occurred_at: '2026-09-21', observed: 'Fictional.' },
  });
  const steps = 5 + Math.floor(rand() * 20);
  for (let s = 0; s < steps; s++) {
    const d = Math.floor(rand() * 4);
    const u = Math.floor(rand() * 4);
    const r = rand();
    if (r < 0.25) {
      const other = devices[Math.floor(rand() * 4)];
      for (const k of other.known) devices[d].known.add(k);
      continue;
    }
    if (devices[d].known.size === 0) for (const k of devices[0].known) devices[d].known.add(k);
    if (r < 0.6) {
      const field = FIELDS[Math.floor(rand() * 3)];
      write(d, u, { type: 'amended', field, value: `${field} ${s}` });
    } else if (r < 0.7) write(d, u, { type: 'pupils_linked', pupils: [{ pupil: pupils[Math.floor(rand() * 3)], role: rand() < 0.5 ? 'victim' : 'witness' }] });
    else if (r < 0.75) write(d, u, { type: 'pupils_unlinked', pupils: [pupils[Math.floor(rand() * 3)]] });
    else if (r < 0.85) write(d, u, { type: 'status_changed', status: ['awaiting', 'closed', 'reopened'][Math.floor(rand() * 3)] });
    else if (r < 0.9) write(d, u, { type: 'restriction_changed', restricted: false, reason: 'Reviewed.' });
    else if (r < 0.95) write(d, u, { type: 'reclassified', kind: 'safeguarding_concern', category: rand() < 0.5 ? 'cse' : 'neglect', entry_key_version: 2 });
    else write(d, u, { type: 'comment', text: `Comment ${s}.` });
  }
  return { events: [...all.values()], users, rand };
}

test('replicas converge under shuffled, duplicated delivery and year-skewed clocks', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const { events, users, rand } = play(seed);
    const options = { safeguarding: [users[0]], restrictedCategories: RESTRICTED };
    const reference = fold(events, options);
    assert.deepEqual(reference.history.map((/** @type {any} */ h) => h.event).sort(), events.map((e) => e.id).sort(), 'every event accounted for');
    for (let k = 0; k < 3; k++) {
      const extra = events.filter(() => rand() < 0.5);
      assert.deepStrictEqual(fold(shuffled([...events, ...extra], rand), options), reference, `seed ${seed}`);
    }
    // Both sides kept: a field shown with several different values is, and only is, a conflict.
    for (const [field, candidates] of Object.entries(reference.fields)) {
      const distinct = new Set(candidates.map((/** @type {any} */ c) => JSON.stringify(c.value)));
      assert.equal(reference.conflicts.includes(field), distinct.size > 1, `seed ${seed} ${field}`);
    }
  }
});

test('concurrent edits of one field are both kept and flagged', () => {
  const { events, users } = play(42);
  const created = events[0];
  const rand = prng(7);
  /** @param {string} value @param {number} n */
  const edit = (value, n) => decode(encode({
    v: 1, type: 'amended', hlc: [created.hlc[0] + n, 0], author: users[n], parents: [created.id], field: 'location', value,
  }), { eventId: Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256)), concernId: bytes(created.concern),
    authorDevice: bytes(created.device), deviceTimeMs: created.hlc[0] + n });
  const a = edit('Hall', 1);
  const b = edit('Stage', 2);
  const state = fold([created, b, a]);
  assert.deepEqual(state.fields.location.map((/** @type {any} */ c) => c.value), ['Hall', 'Stage']);
  assert.deepEqual(state.conflicts, ['location']);
});

test('record validation names each bad field with the same codes as Python', () => {
  const pupil = 'a1'.repeat(16);
  const good = { kind: 'safeguarding_concern', category: 'neglect', occurred_at: '2026-09-21T08:50', observed: 'Seen.', pupils: [{ pupil, role: 'subject' }] };
  validateRecord(good, CATEGORIES.map((/** @type {any} */ c) => c.id));
  assert.throws(() => validateRecord({ ...good, category: 'made_up', observed: '\u{1F600}'.repeat(20001), occurred_at: '2025-02-29' },
    CATEGORIES.map((/** @type {any} */ c) => c.id)), (/** @type {any} */ err) => {
    assert.deepEqual(err.fields, { category: 'unknown_value', observed: 'too_long', occurred_at: 'out_of_range' });
    return true;
  });
  validateRecord({ ...good, observed: '\u{1F600}'.repeat(20000) }); // code points, not UTF-16 units
  assert.throws(() => validateRecord({ ...good, kind: 'sharing_decision' }), (/** @type {any} */ err) => err.fields.sharing === 'required');
});
