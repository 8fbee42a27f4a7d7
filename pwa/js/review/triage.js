// Triage: every change a reader makes to a concern is a signed event, sealed under the concern's entry key
// and queued in the device's outbox like any entry, so it works offline and syncs (docs/PROTOCOL.md 8.4).
// The writer's event is applied to the local Casebook at once, marked "not yet received".
//
// Keys follow docs/ARCHITECTURE.md. A follow-up is sealed under the newest entry key version this device holds, to that
// version's recipients plus any named need-to-know staff. Restricting makes a new version sealed to the
// safeguarding group and named staff only; the readers who lose access get a notice under the old version (a
// `restriction_changed` whose reason is the fixed RESTRICTION_NOTICE), so their devices stop showing it.
// Lifting makes a new version sealed to the full set again, naming every restricting event as a parent so
// a reader who never saw the events in between still folds the lift correctly. Naming someone on a
// need-to-know basis also re-seals every entry key version this device holds to them (entry key grants,
// docs/PROTOCOL.md 5.1), kept sealed in the review state until the server takes them, so they read the
// concern from its first event.

import {
  KIND_CONCERN_EVENT, RECIPIENT_PERSON, RECIPIENT_READER_KEY, envelope, envelopeHash, generateEntryKey,
} from '../crypto/index.js';
import { VERSION, decode, encode } from '../events.js';
import { frontier } from '../fold.js';
import { nextHlc } from '../hlc.js';
import { uuid7 } from '../sync/device.js';
import { b64d, b64e, hex, unhex } from '../sync/protocol.js';
import { Casebook, NotAllowed } from './casebook.js';
import { makeEntryGrants } from './grants.js';

/** @typedef {import('./casebook.js').ConcernBlob} ConcernBlob */
/** @typedef {import('../crypto/envelope.js').Recipient} Recipient */
/** @typedef {{kind: number, id: string, version: number}} Ref */

/** What readers who lose access by a restriction are told, instead of the reason. */
export const RESTRICTION_NOTICE = 'Restricted by the safeguarding team.';
const MAX_PARENTS = 64;

/** @param {Casebook} cb @param {string} id */
async function load(cb, id) {
  const blob = await cb.blob(id);
  if (!blob) throw new NotAllowed('unknown_concern', 'This device holds no concern with that id.');
  const state = cb.fold(blob);
  const held = Object.keys(blob.keys).map(Number);
  const version = held.length ? Math.max(...held) : 0;
  if (!version || version < state.entry_key_version) {
    throw new NotAllowed('no_entry_key', 'This device does not hold the newest key of this concern, so it cannot add to it.');
  }
  return { blob, state, version };
}

/** @param {Casebook} cb */
function mustTriage(cb) {
  if (!cb.safeguardingRole) throw new NotAllowed('not_safeguarding', 'Only the safeguarding team can triage a concern.');
}

/**
 * Public keys of `refs` from the directory (never from the envelope).
 * @param {Casebook} cb @param {Ref[]} refs @returns {Recipient[]}
 */
function resolveRefs(cb, refs) {
  const dir = cb.session.device.dir();
  return refs.map((r) => {
    if (r.kind === RECIPIENT_PERSON) {
      const a = dir.accounts.find((x) => hex(b64d(x.id, 'id')) === r.id);
      if (!a) throw new NotAllowed('unknown_recipient', 'A reader of this concern is not in the directory.');
      return { kind: r.kind, id: unhex(r.id), version: r.version, pk: b64d(a.identity_x25519_pk, 'pk') };
    }
    const k = dir.reader_keys.find((x) => hex(b64d(x.id, 'id')) === r.id && x.version === r.version);
    if (!k) throw new NotAllowed('unknown_recipient', 'A reader key of this concern is not in the directory.');
    return { kind: RECIPIENT_READER_KEY, id: unhex(r.id), version: r.version, pk: b64d(k.public_key, 'pk') };
  });
}

/** @param {Casebook} cb @param {string[]} userIds @returns {[Uint8Array, Uint8Array][]} */
function people(cb, userIds) {
  const dir = cb.session.device.dir();
  return userIds.map((u) => {
    const a = dir.accounts.find((x) => hex(b64d(x.id, 'id')) === u && !x.left);
    if (!a) throw new NotAllowed('unknown_person', 'A named person is not a current member of staff.');
    return [unhex(u), b64d(a.identity_x25519_pk, 'pk')];
  });
}

/** @param {Recipient[]} list */
function distinct(list) {
  const seen = new Set();
  return list.filter((r) => {
    const k = `${r.kind}:${hex(r.id)}:${r.version}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** @param {Recipient[]} list @returns {Ref[]} */
const refsOf = (list) => list.map((r) => ({ kind: r.kind, id: hex(r.id), version: r.version }));

/**
 * Seal one event of `blob`'s concern into the outbox, then apply it to the Casebook.
 * @param {Casebook} cb
 * @param {ConcernBlob} blob
 * @param {{type: string, body: Record<string, any>, parents: string[], version: number, entryKey: Uint8Array,
 *   recipients: Recipient[], pupilIds: string[]}} what
 * @returns {Promise<string>} the event id
 */
async function seal(cb, blob, { type, body, parents, version, entryKey, recipients, pupilIds }) {
  const { device, outbox } = cb.session;
  const sortedParents = [...new Set(parents)].sort().slice(0, MAX_PARENTS);
  const seen = sortedParents.map((p) => blob.events[p]?.hlc).filter((h) => h !== undefined);
  const concernId = unhex(blob.id);
  /** @type {{id: Uint8Array, content: Uint8Array, deviceTimeMs: number} | null} */
  let made = null;
  await outbox.queue((chain) => {
    const hlc = nextHlc(chain.lastHlc, Date.now(), /** @type {[number, number][]} */ (seen));
    const content = encode({ v: VERSION, type, hlc: [hlc[0], hlc[1]], author: cb.me, parents: sortedParents, ...body });
    const id = uuid7();
    const deviceTimeMs = Date.now();
    const sealed = envelope.seal({
      kind: KIND_CONCERN_EVENT, schoolId: device.schoolId, envelopeId: id, concernId, authorDevice: device.deviceId,
      counter: chain.counter + 1, prevHash: chain.lastHash, deviceTimeMs, entryKeyVersion: version,
      pupilIds: pupilIds.map(unhex), recipients, entryKey, content, deviceSecretKey: device.deviceKey.secretKey,
    });
    made = { id, content, deviceTimeMs };
    return { envelopeId: hex(id), body: sealed, hash: envelopeHash(sealed), hlc: [hlc[0], hlc[1]] };
  });
  const m = /** @type {{id: Uint8Array, content: Uint8Array, deviceTimeMs: number}} */ (/** @type {unknown} */ (made));
  const event = decode(m.content, { eventId: m.id, concernId, authorDevice: device.deviceId, deviceTimeMs: m.deviceTimeMs });
  blob.events[event.id] = {
    id: event.id, device: event.device, deviceTimeMs: event.deviceTimeMs, hlc: [event.hlc[0], event.hlc[1]],
    author: event.author, parents: event.parents, type: event.type, body: event.body, content: b64e(event.content),
    receivedMs: null, seq: null,
  };
  await cb.apply(new Map([[blob.id, [{
    event, opened: null, receivedMs: null, seq: null, entryKey, version, recipients: refsOf(recipients), pupilIds,
  }]]]));
  return event.id;
}

/**
 * A follow-up under the newest key version held, to its recipients and the named need-to-know staff.
 * @param {Casebook} cb @param {ConcernBlob} blob @param {Record<string, any>} state @param {number} version
 * @param {string} type @param {Record<string, any>} body @param {string[]} [extraParents]
 * @param {string[]} [alsoNamed] people named by this very event (user ids, hex)
 */
function followUp(cb, blob, state, version, type, body, extraParents = [], alsoNamed = []) {
  const v = String(version);
  const named = people(cb, [...new Set([
    ...(state.fields.need_to_know ?? []).flatMap((/** @type {any} */ h) => h.value ?? []), ...alsoNamed,
  ])]);
  const recipients = distinct([
    ...resolveRefs(cb, blob.recipients[v] ?? []),
    ...named.map(([id, pk]) => ({ kind: RECIPIENT_PERSON, id, version: 1, pk })),
  ]);
  const entryKey = b64d(blob.keys[v], 'entry key');
  return seal(cb, blob, {
    type, body, parents: [...frontier(Casebook.events(blob)), ...extraParents], version, entryKey, recipients,
    pupilIds: blob.pupilIds[v] ?? [],
  });
}

/**
 * Write one event of `type` with `body` to concern `id` (triage rules checked first).
 * @param {Casebook} cb @param {string} id @param {string} type @param {Record<string, any>} body
 * @returns {Promise<string>} the new event's id
 */
export function write(cb, id, type, body) {
  return cb.serial(async () => {
    const { blob, state, version } = await load(cb, id);
    if (type === 'action_completed') {
      const action = state.actions.find((/** @type {any} */ a) => a.event === body.target);
      if (!action) throw new NotAllowed('unknown_action', 'This concern has no such action.');
      if (action.owner !== cb.me && !cb.safeguardingRole) {
        throw new NotAllowed('not_owner', 'Only the owner of an action or the safeguarding team can complete it.');
      }
    } else if (type !== 'comment') mustTriage(cb);
    return followUp(cb, blob, state, version, type, body);
  });
}

/** @param {Casebook} cb @param {string} id @param {string[]} userIds */
export function addNeedToKnow(cb, id, userIds) {
  return cb.serial(async () => {
    mustTriage(cb);
    const { blob, state, version } = await load(cb, id);
    people(cb, userIds);
    const current = (state.fields.need_to_know ?? []).flatMap((/** @type {any} */ h) => h.value ?? []);
    const value = [...new Set([...current, ...userIds])];
    const eventId = await followUp(cb, blob, state, version, 'amended', { field: 'need_to_know', value }, [], userIds);
    const { device } = cb.session;
    const grants = makeEntryGrants({
      schoolId: device.schoolId, concernId: unhex(blob.id), keys: blob.keys, people: people(cb, userIds),
      deviceId: device.deviceId, deviceSecretKey: device.deviceKey.secretKey,
    });
    cb.state.grantsToSend = [...(cb.state.grantsToSend ?? []), ...grants];
    await cb.saveState();
    return eventId;
  });
}

/**
 * Restrict: a notice to the readers who lose access, then the event with the reason under a new key version
 * sealed to the safeguarding group and named staff only.
 * @param {Casebook} cb @param {string} id @param {string} reason
 */
export function restrict(cb, id, reason) {
  return cb.serial(async () => {
    mustTriage(cb);
    const { blob, state, version } = await load(cb, id);
    if (state.restricted) throw new NotAllowed('already_restricted', 'This concern is already restricted.');
    const next = version + 1;
    await followUp(cb, blob, state, version, 'restriction_changed',
      { restricted: true, reason: RESTRICTION_NOTICE, entry_key_version: next });
    return sealNewVersion(cb, blob, next, true, 'restriction_changed', { restricted: true, reason, entry_key_version: next });
  });
}

/**
 * Seal an event under a fresh entry key version: restricted (safeguarding and named staff) or to everyone
 * docs/ARCHITECTURE.md names (safeguarding, each linked pupil, the category's groups, named staff).
 * @param {Casebook} cb @param {ConcernBlob} blob @param {number} version @param {boolean} restricted
 * @param {string} type @param {Record<string, any>} body @param {string[]} [extraParents]
 */
function sealNewVersion(cb, blob, version, restricted, type, body, extraParents = []) {
  const state = cb.fold(blob);
  const device = cb.session.device;
  const named = people(cb, (state.fields.need_to_know ?? []).flatMap((/** @type {any} */ h) => h.value ?? []));
  const pupils = state.pupils.map((/** @type {any} */ p) => p.pupil);
  const category = cb.categories.get(type === 'reclassified' ? body.category : (state.fields.category?.[0]?.value ?? ''));
  const recipients = device.recipientsFor(pupils.map(unhex), {
    restricted, groups: (category?.readers ?? []).map((g) => `group:${g}`), people: named,
  });
  return seal(cb, blob, {
    type, body, parents: [...frontier(Casebook.events(blob)), ...extraParents], version, entryKey: generateEntryKey(),
    recipients, pupilIds: pupils,
  });
}

/** @param {Casebook} cb @param {string} id @param {string} reason */
export function lift(cb, id, reason) {
  return cb.serial(async () => {
    mustTriage(cb);
    const { blob, state, version } = await load(cb, id);
    if (!state.restricted) throw new NotAllowed('not_restricted', 'This concern is not restricted.');
    return sealNewVersion(cb, blob, version + 1, false, 'restriction_changed',
      { restricted: false, reason, entry_key_version: version + 1 }, state.restricting);
  });
}

/**
 * @param {Casebook} cb @param {string} id @param {string} kind @param {string} category @param {string} [reason]
 */
export function reclassify(cb, id, kind, category, reason) {
  return cb.serial(async () => {
    mustTriage(cb);
    const { blob, state, version } = await load(cb, id);
    const target = cb.categories.get(category);
    if (!target) throw new NotAllowed('unknown_category', 'That category is not one of the school\'s.');
    const extra = reason ? { reason } : {};
    if (target.sensitivity === 'restricted' && !state.restricted) {
      const next = version + 1;
      await followUp(cb, blob, state, version, 'restriction_changed',
        { restricted: true, reason: RESTRICTION_NOTICE, entry_key_version: next });
      return sealNewVersion(cb, blob, next, true, 'reclassified', { kind, category, entry_key_version: next, ...extra });
    }
    const groups = target.readers.map((g) => cb.session.device.groupKey(`group:${g}`));
    const v = String(version);
    const had = new Set((blob.recipients[v] ?? []).map((r) => `${r.id}:${r.version}`));
    if (!state.restricted && groups.some((g) => !had.has(`${hex(g.id)}:${g.version}`))) {
      return sealNewVersion(cb, blob, version + 1, false, 'reclassified', { kind, category, entry_key_version: version + 1, ...extra });
    }
    return followUp(cb, blob, state, version, 'reclassified', { kind, category, entry_key_version: version, ...extra });
  });
}

/**
 * @param {Casebook} cb @param {string} id @param {string} field @param {any} value @param {string[]} eventIds
 */
export function resolve(cb, id, field, value, eventIds) {
  return cb.serial(async () => {
    mustTriage(cb);
    const { blob, state, version } = await load(cb, id);
    if (!state.conflicts.includes(field)) throw new NotAllowed('no_conflict', 'That field is not in conflict.');
    if (field.startsWith('pupils.')) {
      const body = { pupils: [{ pupil: field.slice(7), role: value }] };
      return followUp(cb, blob, state, version, 'pupils_linked', body, eventIds);
    }
    return followUp(cb, blob, state, version, 'conflict_resolved', { field, value, resolves: [...eventIds].sort() }, eventIds);
  });
}
