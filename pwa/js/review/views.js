// Pure functions from a folded concern (fold.js) to what the review screens show: the compact summary kept
// in the sealed index, the searchable text, and the lines of a concern's history. No I/O, no DOM.

/** @typedef {Record<string, any>} Folded */

/**
 * What the index keeps of one concern (names are resolved when read, so a renamed person shows right).
 * @typedef {object} Core
 * @property {string} id
 * @property {string} kind
 * @property {string} category
 * @property {string} status
 * @property {boolean} restricted
 * @property {boolean} urgent
 * @property {string} excerpt
 * @property {string} occurredAt
 * @property {{id: string, roles: string[]}[]} pupils
 * @property {number} writtenMs
 * @property {number} receivedMs
 * @property {number} updatedMs
 * @property {number} othersMs server time of the newest event written by someone else (0: none)
 * @property {string | null} assignee
 * @property {boolean} conflicted
 * @property {string[]} dues due dates of open actions
 * @property {boolean} retracted
 * @property {string} author
 * @property {string[]} needToKnow
 */

export const EXCERPT_CHARS = 160;

/** @param {Folded} state @param {string} name @returns {any} the first head's value, or null */
export function value(state, name) {
  const heads = state.fields[name];
  return heads && heads.length ? heads[0].value : null;
}

/**
 * Open actions and whether each is done: an action is done once an `action_completed` names it.
 * @param {Folded} state
 */
export function actionsOf(state) {
  /** @type {{id: string, text: string, owner: string, due: string | null, done: boolean, retracted: boolean}[]} */
  const out = state.actions.map((/** @type {Record<string, any>} */ a) => ({
    id: a.event, text: a.text, owner: a.owner, due: a.due ?? null,
    done: (a.completed_by ?? []).length > 0, retracted: a.retracted_by.length > 0,
  }));
  return out;
}

/**
 * @param {Folded} state
 * @param {Map<string, {deviceTimeMs: number, receivedMs: number | null}>} times per event id
 * @param {string} me user id, hex
 * @returns {Core}
 */
export function summarise(state, times, me) {
  const created = state.created.length ? state.history.find((/** @type {any} */ h) => h.event === state.created[0]) : null;
  let updatedMs = 0;
  let othersMs = 0;
  for (const h of state.history) {
    const t = times.get(h.event);
    const at = t?.receivedMs ?? 0;
    if (at > updatedMs) updatedMs = at;
    if (h.author !== me && at > othersMs) othersMs = at;
  }
  const observed = String(value(state, 'observed') ?? '');
  const createdTimes = created ? times.get(created.event) : undefined;
  return {
    id: state.concern,
    kind: String(value(state, 'kind') ?? ''),
    category: String(value(state, 'category') ?? ''),
    status: String(value(state, 'status') ?? 'open'),
    restricted: state.restricted,
    urgent: value(state, 'urgent') === true,
    excerpt: observed.length > EXCERPT_CHARS ? `${observed.slice(0, EXCERPT_CHARS - 1)}…` : observed,
    occurredAt: String(value(state, 'occurred_at') ?? ''),
    pupils: state.pupils.map((/** @type {any} */ p) => ({ id: p.pupil, roles: p.roles })),
    writtenMs: createdTimes?.deviceTimeMs ?? 0,
    receivedMs: createdTimes?.receivedMs ?? 0,
    updatedMs,
    othersMs,
    assignee: value(state, 'assignee'),
    conflicted: state.conflicts.length > 0,
    dues: actionsOf(state).filter((a) => !a.done && !a.retracted && a.due).map((a) => String(a.due)),
    retracted: state.retracted_by.length > 0,
    author: created ? created.author : '',
    needToKnow: value(state, 'need_to_know') ?? [],
  };
}

/**
 * Every piece of text a person could search for in this concern, lower-cased.
 * @param {Folded} state
 */
export function searchText(state) {
  /** @type {string[]} */
  const parts = [];
  for (const [name, heads] of Object.entries(state.fields)) {
    if (['need_to_know', 'assignee', 'body_map', 'urgent'].includes(name)) continue;
    for (const head of /** @type {{value: any}[]} */ (heads)) {
      const v = head.value;
      if (typeof v === 'string') parts.push(v);
      else if (Array.isArray(v)) parts.push(...v.filter((x) => typeof x === 'string'));
      else if (v && typeof v === 'object') parts.push(...Object.values(v).filter((x) => typeof x === 'string'));
    }
  }
  for (const a of state.actions) parts.push(a.text);
  for (const c of state.comments) parts.push(c.text);
  return parts.join('\n').toLowerCase();
}

/** Today as YYYY-MM-DD in local time. @param {number} [nowMs] */
export function today(nowMs = Date.now()) {
  const d = new Date(nowMs);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

const FIELD_NAMES = /** @type {Record<string, string>} */ ({
  occurred_at: 'when it happened', location: 'where', observed: 'what was seen or heard', opinion: 'opinion',
  child_words: "the child's words", present: 'who was present', body_map: 'the body map',
  immediate_action: 'immediate action', decision: 'the decision', outcome: 'the outcome',
  need_to_know: 'need-to-know staff', sharing: 'the sharing decision', urgent: 'urgency', status: 'status',
  assignee: 'who handles it', kind: 'kind', category: 'category',
});

/** @param {string} field */
export function fieldName(field) {
  return FIELD_NAMES[field] ?? field.replace(/_/g, ' ');
}

/**
 * A one-line description of a history entry.
 * @param {Record<string, any>} entry the fold's history entry
 * @param {(userId: string) => string} nameOf
 * @param {(category: string) => string} labelOf
 */
export function describe(entry, nameOf, labelOf) {
  const b = entry.body;
  switch (entry.type) {
    case 'created': return 'Logged';
    case 'amended': return `Changed ${fieldName(b.field)}`;
    case 'action_added': return `Action for ${nameOf(b.action.owner)}: ${b.action.text}${b.action.due ? ` (due ${b.action.due})` : ''}`;
    case 'action_completed': return `Action completed${b.note ? `: ${b.note}` : ''}`;
    case 'status_changed': return `Status set to ${b.status}${b.note ? `: ${b.note}` : ''}`;
    case 'pupils_linked': return `Linked ${b.pupils.length === 1 ? 'a pupil' : `${b.pupils.length} pupils`}`;
    case 'pupils_unlinked': return `Unlinked ${b.pupils.length === 1 ? 'a pupil' : `${b.pupils.length} pupils`}`;
    case 'reclassified': return `Reclassified as ${labelOf(b.category)}${b.reason ? `: ${b.reason}` : ''}`;
    case 'assigned': return b.assignee ? `Assigned to ${nameOf(b.assignee)}` : 'Unassigned';
    case 'comment': return b.text;
    case 'retracted': return `Retracted: ${b.reason}`;
    case 'conflict_resolved': return `Resolved the conflict over ${fieldName(b.field)}`;
    case 'restriction_changed': return `${b.restricted ? 'Restricted' : 'Restriction lifted'}: ${b.reason}`;
    default: return entry.type;
  }
}
