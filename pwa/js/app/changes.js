// Widenings in plain words (docs/PROTOCOL.md 13.3, 13.4): each approval item as one line a safeguarding lead
// understands ("New staff: Ms Fictional Oak, teacher", "Ms Fictional Oak to teach Year 3 Oak", "Pupil added to
// Year 3 Oak: Ada Fernsby"), and the person or class it belongs to, so the Approvals page can group them. The
// items come from this device's own computation (or a verified approval); names come from the signed
// directory it holds, then from the server's unsigned rows for what is new, then from the roster.

import { b64d, b64e, hex } from '../sync/protocol.js';

/** @typedef {import('../crypto/approval.js').Item} Item */
/** @typedef {import('../sync/directory.js').Listing} Listing */
/**
 * Where names come from.
 * @typedef {object} Names
 * @property {Map<string, {name: string, login: string, roles: string[]}>} people account id (base64url) to names
 * @property {Set<string>} listedPeople accounts the signed directory this device holds lists
 * @property {Set<string>} listedPupils pupils it lists
 * @property {Map<string, string>} classes class id (base64url) to label
 * @property {Map<string, string>} pupils pupil id (hex) to name, from the roster this device opened
 * @property {Map<string, string>} pupilOfKey a pupil's reader key id (base64url) to the pupil's id (base64url)
 * @property {boolean} [past] items of an earlier version (the change log): whether an account or pupil was new
 *   then is not known from the version held now
 */
/**
 * @typedef {{key: string, title: string, order: number}} Group
 * @typedef {{item: Item, text: string, group: Group}} Described
 */

/** What each role lets someone do, in the words of the Staff screen. */
export const ROLE_WORDS = /** @type {Record<string, string>} */ ({
  contributor: 'contributor',
  teacher: 'teacher',
  sen: 'SEN team',
  safeguarding: 'safeguarding team',
  admin: 'admin',
});
const ROLE_LINES = /** @type {Record<string, string>} */ ({
  contributor: 'as a contributor (logs concerns, reads none)',
  teacher: "as a teacher (reads their classes' concerns once assigned)",
  sen: 'to join the SEN team (reads SEN concerns, school-wide)',
  safeguarding: 'to join the safeguarding team (reads everything, restricted included, and approves changes)',
  admin: 'as an admin (staff and classes; reads no concerns)',
});

/** @param {string} purpose */
export function keyLabel(purpose) {
  if (purpose === 'group:safeguarding') return 'safeguarding';
  if (purpose === 'group:sen') return 'SEN';
  if (purpose === 'signing:directory') return 'school signing';
  if (purpose === 'roster:staff') return 'staff roster';
  if (purpose === 'roster:sensitive') return 'sensitive roster';
  return purpose.startsWith('group:') ? purpose.slice('group:'.length) : purpose;
}

/**
 * Names from the signed directory this device holds, the server's unsigned rows (`current`, for accounts
 * and classes the signed directory does not list yet), the roster this device opened, and `extra` (names an
 * admin knows from its own invitations).
 * @param {{held: Listing | null, current?: any, pupils?: {id: string, name: string}[], extra?: Map<string, string>}} from
 * @returns {Names}
 */
export function namesFrom({ held, current = null, pupils = [], extra = new Map() }) {
  /** @type {Names} */
  const names = {
    people: new Map(), listedPeople: new Set(), listedPupils: new Set(), classes: new Map(), pupils: new Map(),
    pupilOfKey: new Map(),
  };
  for (const [id, name] of extra) names.people.set(id, { name, login: '', roles: [] });
  for (const source of [current, held]) { // the signed directory's names win over the server's
    if (!source) continue;
    for (const a of source.accounts ?? []) names.people.set(a.id, { name: a.display_name || a.login, login: a.login, roles: [...a.roles] });
    for (const c of source.classes ?? []) names.classes.set(c.id, c.label);
    for (const x of source.pupils ?? []) names.pupilOfKey.set(x.reader_key_id, x.id);
  }
  if (current) { // what the rows ask for (a new account's roles) over what is signed
    for (const a of current.accounts ?? []) {
      const known = names.people.get(a.id);
      if (known) known.roles = [...a.roles];
    }
  }
  for (const a of held?.accounts ?? []) names.listedPeople.add(a.id);
  for (const x of held?.pupils ?? []) names.listedPupils.add(x.id);
  for (const p of pupils) names.pupils.set(p.id, p.name);
  return names;
}

/**
 * @param {Names} names
 * @param {Uint8Array} id
 */
function person(names, id) {
  return names.people.get(b64e(id))?.name || 'a new account';
}

/**
 * @param {Names} names
 * @param {Uint8Array} pupilId
 */
function pupil(names, pupilId) {
  return names.pupils.get(hex(pupilId)) ?? null;
}

/**
 * One item in plain words, with the person or class it belongs to.
 * @param {Item} item
 * @param {Names} names
 * @returns {Described}
 */
export function describe(item, names) {
  /** @param {Uint8Array} id */
  const personGroup = (id) => {
    const p = names.people.get(b64e(id));
    return { key: `person:${b64e(id)}`, title: p ? `${p.name}${p.login && p.login !== p.name ? ` (${p.login})` : ''}` : 'A new account', order: 0 };
  };
  /** @param {Uint8Array} id */
  const classGroup = (id) => ({ key: `class:${b64e(id)}`, title: `Class ${names.classes.get(b64e(id)) ?? '(a new class)'}`, order: 1 });
  const keys = { key: 'keys', title: 'Pupils and keys', order: 2 };
  switch (item.kind) {
    case 'account': {
      if (names.past) return { item, group: personGroup(item.userId), text: `${person(names, item.userId)}'s account and identity keys` };
      if (names.listedPeople.has(b64e(item.userId))) {
        return {
          item, group: personGroup(item.userId),
          text: `Identity keys changed for ${person(names, item.userId)}: approve only after an approved recovery`,
        };
      }
      const order = Object.keys(ROLE_WORDS);
      const roles = [...(names.people.get(b64e(item.userId))?.roles ?? [])]
        .sort((a, b) => order.indexOf(a) - order.indexOf(b)).map((r) => ROLE_WORDS[r] ?? r);
      return { item, group: personGroup(item.userId), text: `New staff: ${person(names, item.userId)}${roles.length ? `, ${roles.join(', ')}` : ''}` };
    }
    case 'role':
      return { item, group: personGroup(item.userId), text: `${person(names, item.userId)} ${ROLE_LINES[item.role] ?? `with the role ${item.role}`}` };
    case 'teaches':
      return { item, group: classGroup(item.classId), text: `${person(names, item.userId)} to teach ${names.classes.get(b64e(item.classId)) ?? 'a new class'}` };
    case 'in_class': {
      const name = pupil(names, item.pupilId);
      return { item, group: classGroup(item.classId), text: `Pupil added to ${names.classes.get(b64e(item.classId)) ?? 'a new class'}${name ? `: ${name}` : ''}` };
    }
    case 'pupil': {
      const name = pupil(names, item.pupilId) ?? 'a pupil';
      return {
        item, group: keys,
        text: names.past ? `${name} on the list, with a reader key` : names.listedPupils.has(b64e(item.pupilId))
          ? `Another reader key for ${name}: approve only if the school replaced it` : `New pupil on the list: ${name}`,
      };
    }
    case 'key': {
      if (item.purpose === 'pupil') {
        const id = names.pupilOfKey.get(b64e(item.readerKeyId));
        const name = id ? names.pupils.get(hex(b64d(id, 'pupil id'))) ?? null : null;
        return { item, group: keys, text: item.version === 1 ? `Reader key for ${name ?? 'a new pupil'}` : `New version ${item.version} of ${name ? `${name}'s` : 'a pupil\'s'} key` };
      }
      const label = keyLabel(item.purpose);
      return { item, group: keys, text: item.version === 1 ? `New ${label} key` : `New version ${item.version} of the ${label} key` };
    }
    default:
      return { item, group: keys, text: 'New school signing key: the fingerprint staff compare will change' };
  }
}

/**
 * Items described and grouped by person or class, groups in a stable order (people, classes, keys).
 * @param {Item[]} items
 * @param {Names} names
 * @returns {{group: Group, lines: Described[]}[]}
 */
export function grouped(items, names) {
  /** @type {Map<string, {group: Group, lines: Described[]}>} */
  const out = new Map();
  for (const item of items) {
    const line = describe(item, names);
    const entry = out.get(line.group.key) ?? { group: line.group, lines: [] };
    entry.lines.push(line);
    out.set(line.group.key, entry);
  }
  return [...out.values()].sort((a, b) => a.group.order - b.group.order || a.group.title.localeCompare(b.group.title, 'en-GB'));
}
