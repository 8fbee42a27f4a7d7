// What a concern's record holds, and its validation with one stable error code per field: the twin of
// sync/record.py. Field paths and codes are part of the protocol (docs/PROTOCOL.md section 8.3): both
// languages give the same ones for the same input. Also the error family of the sync layer.

/** The root of every error the sync layer raises on bad input. */
export class SyncError extends Error {
  /** @type {string} */
  static code = 'sync_error';

  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = new.target.name;
    /** @type {string} */
    this.code = /** @type {typeof SyncError} */ (new.target).code;
  }
}

/** Event content or a record that breaks the format; `fields` maps each bad field's path to a code. */
export class InvalidEvent extends SyncError {
  static code = 'parse_failure';

  /**
   * @param {string} message
   * @param {Errors} [fields]
   */
  constructor(message, fields = {}) {
    const sorted = Object.fromEntries(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const detail = Object.entries(sorted).map(([k, v]) => `${k}: ${v}`).join(', ');
    super(detail ? `${message} (${detail})` : message);
    /** @type {Errors} */
    this.fields = sorted;
  }
}

/** Event content whose `v` is not a version this code knows. */
export class UnsupportedEventVersion extends InvalidEvent {
  static code = 'unsupported_version';
}

/** A clock reading more than the tolerated skew ahead of this device's clock. */
export class ClockSkew extends SyncError {
  static code = 'clock_skew';
}

/** @typedef {Record<string, string>} Errors  field path (`record.pupils[1].role`) to a snake_case code */
/** @typedef {(value: any, path: string, errors: Errors) => void} Check */

export const KINDS = Object.freeze(['safeguarding_concern', 'behaviour_incident', 'parental_contact', 'sen_note',
  'sharing_decision', 'general_note']);
export const ROLES = Object.freeze(['subject', 'victim', 'alleged_perpetrator', 'witness', 'other']);
export const SIDES = Object.freeze(['front', 'back']);
export const MARK_TYPES = Object.freeze(['bruise', 'cut', 'graze', 'scratch', 'burn', 'scald', 'bite', 'swelling',
  'mark', 'other']);
export const DECISIONS = Object.freeze(['refer_childrens_social_care', 'refer_police', 'refer_prevent', 'refer_lado',
  'refer_early_help', 'refer_other', 'monitor', 'no_referral']);
export const LAWFUL_BASES = Object.freeze(['consent', 'contract', 'legal_obligation', 'vital_interests', 'public_task',
  'legitimate_interests']);
export const STATUSES = Object.freeze(['open', 'awaiting', 'closed', 'reopened']);

export const LONG_TEXT = 20000;
export const MEDIUM_TEXT = 2000;
export const SHORT_TEXT = 200;
export const MAX_PUPILS = 32;
export const MAX_PRESENT = 32;
export const MAX_MARKS = 100;
export const MAX_NEED_TO_KNOW = 64;

const HEX_ID = /^[0-9a-f]{32}$/;
const CATEGORY = /^[a-z][a-z0-9_]{0,63}$/;
const BLANK = /^[ \t\n\r]*$/;
const BAD_CHAR = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const DATETIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2}))?$/;

/**
 * Record `code` for `path` unless it already has one: the first code found for a path wins, in both languages.
 * @param {Errors} errors
 * @param {string} path
 * @param {string} code
 */
export function fail(errors, path, code) {
  if (!Object.hasOwn(errors, path)) errors[path] = code;
}

/** @param {unknown} v @returns {v is Record<string, any>} */
export function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The length in Unicode code points (Python's `len`) of a well-formed string.
 * @param {string} s
 */
function codePoints(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--;
  }
  return n;
}

// --- primitive checks: each writes at most one code for its path ------------------------------------------

/**
 * A non-blank string of at most `limit` code points, without control characters or lone surrogates.
 * @param {unknown} value @param {string} path @param {Errors} errors @param {number} limit
 */
export function checkText(value, path, errors, limit) {
  if (typeof value !== 'string') fail(errors, path, 'wrong_type');
  else if (BAD_CHAR.test(value)) fail(errors, path, 'bad_format');
  else if (BLANK.test(value)) fail(errors, path, 'empty');
  else if (value.length > limit && codePoints(value) > limit) fail(errors, path, 'too_long');
}

/** A 16-byte id as 32 lower-case hex digits. @param {unknown} value @param {string} path @param {Errors} errors */
export function checkId(value, path, errors) {
  if (typeof value !== 'string') fail(errors, path, 'wrong_type');
  else if (!HEX_ID.test(value)) fail(errors, path, 'bad_format');
}

/** @param {unknown} value @param {string} path @param {Errors} errors @param {number} low @param {number} high */
export function checkInt(value, path, errors, low, high) {
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(errors, path, 'wrong_type');
  else if (value < low || value > high) fail(errors, path, 'out_of_range');
}

/**
 * @param {unknown} value @param {string} path @param {Errors} errors
 * @param {readonly string[] | ReadonlySet<string>} allowed
 */
export function checkEnum(value, path, errors, allowed) {
  if (typeof value !== 'string') fail(errors, path, 'wrong_type');
  else if (!(Array.isArray(allowed) ? allowed.includes(value) : /** @type {ReadonlySet<string>} */ (allowed).has(value))) {
    fail(errors, path, 'unknown_value');
  }
}

/** @param {unknown} value @param {string} path @param {Errors} errors */
export function checkBool(value, path, errors) {
  if (typeof value !== 'boolean') fail(errors, path, 'wrong_type');
}

/** @param {unknown} value @param {string} path @param {Errors} errors */
export function checkCategoryId(value, path, errors) {
  if (typeof value !== 'string') fail(errors, path, 'wrong_type');
  else if (!CATEGORY.test(value)) fail(errors, path, 'bad_format');
}

/** @param {number} y @param {number} m @param {number} d */
function validDate(y, m, d) {
  if (!(y >= 1900 && y <= 9999 && m >= 1 && m <= 12)) return false;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];
  return d >= 1 && d <= days;
}

/**
 * `YYYY-MM-DD` (or, with `withTime`, optionally `YYYY-MM-DDTHH:MM`), school local time, a real day.
 * @param {unknown} value @param {string} path @param {Errors} errors @param {boolean} [withTime]
 */
export function checkDate(value, path, errors, withTime = false) {
  if (typeof value !== 'string') {
    fail(errors, path, 'wrong_type');
    return;
  }
  const m = (withTime ? DATETIME : DATE).exec(value);
  if (!m) {
    fail(errors, path, 'bad_format');
    return;
  }
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!validDate(y, mo, d) || (withTime && m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59))) {
    fail(errors, path, 'out_of_range');
  }
}

/**
 * An object with no unknown keys and every required key; true if `value` is an object.
 * @param {unknown} value @param {string} path @param {Errors} errors
 * @param {readonly string[]} required @param {readonly string[]} optional
 * @returns {value is Record<string, any>}
 */
export function checkObject(value, path, errors, required, optional) {
  if (!isObject(value)) {
    fail(errors, path, 'wrong_type');
    return false;
  }
  for (const key of Object.keys(value)) {
    if (!required.includes(key) && !optional.includes(key)) fail(errors, `${path}.${key}`, 'unknown_field');
  }
  for (const key of required) {
    if (!Object.hasOwn(value, key)) fail(errors, `${path}.${key}`, 'required');
  }
  return true;
}

/**
 * A non-empty list of at most `limit` items, each checked by `item`; true if it is one.
 * @param {unknown} value @param {string} path @param {Errors} errors @param {number} limit @param {Check} item
 * @returns {value is any[]}
 */
function checkList(value, path, errors, limit, item) {
  if (!Array.isArray(value)) {
    fail(errors, path, 'wrong_type');
    return false;
  }
  if (value.length === 0) {
    fail(errors, path, 'empty');
    return false;
  }
  if (value.length > limit) {
    fail(errors, path, 'too_many');
    return false;
  }
  value.forEach((v, i) => item(v, `${path}[${i}]`, errors));
  return true;
}

/** @param {unknown[]} values @param {string} path @param {Errors} errors */
function noDuplicates(values, path, errors) {
  const seen = new Set();
  values.forEach((v, i) => {
    if (typeof v === 'string') {
      if (seen.has(v)) fail(errors, `${path}[${i}]`, 'duplicate');
      seen.add(v);
    }
  });
}

// --- fields of the record ---------------------------------------------------------------------------------

/** @type {Check} */
function checkPupil(value, path, errors) {
  if (checkObject(value, path, errors, ['pupil', 'role'], [])) {
    if (Object.hasOwn(value, 'pupil')) checkId(value.pupil, `${path}.pupil`, errors);
    if (Object.hasOwn(value, 'role')) checkEnum(value.role, `${path}.role`, errors, ROLES);
  }
}

/** Linked pupils, each with its own role; a pupil appears once. @type {Check} */
export function checkPupils(value, path, errors) {
  if (checkList(value, path, errors, MAX_PUPILS, checkPupil)) {
    noDuplicates(value.map((p) => (isObject(p) ? p.pupil : undefined)), path, errors);
  }
}

/**
 * Check the listed keys of an object that are present, each with its own check.
 * @param {Record<string, any>} value @param {string} path @param {Errors} errors
 * @param {[string, Check][]} checks
 */
function checkKeys(value, path, errors, checks) {
  for (const [key, check] of checks) {
    if (Object.hasOwn(value, key)) check(value[key], `${path}.${key}`, errors);
  }
}

/** @param {number} limit @returns {Check} */
const text = (limit) => (v, p, e) => checkText(v, p, e, limit);

/** @type {Check} */
function checkMark(value, path, errors) {
  if (!checkObject(value, path, errors, ['pupil', 'side', 'x', 'y', 'type'], ['region', 'size_mm', 'colour', 'note'])) {
    return;
  }
  checkKeys(value, path, errors, [
    ['pupil', checkId],
    ['side', (v, p, e) => checkEnum(v, p, e, SIDES)],
    ['x', (v, p, e) => checkInt(v, p, e, 0, 1000)],
    ['y', (v, p, e) => checkInt(v, p, e, 0, 1000)],
    ['type', (v, p, e) => checkEnum(v, p, e, MARK_TYPES)],
    ['region', text(100)],
    ['size_mm', (v, p, e) => checkInt(v, p, e, 1, 2000)],
    ['colour', text(40)],
    ['note', text(500)],
  ]);
}

/** @type {Check} */
function checkDecision(value, path, errors) {
  if (checkObject(value, path, errors, ['decision', 'rationale'], [])) {
    checkKeys(value, path, errors, [
      ['decision', (v, p, e) => checkEnum(v, p, e, DECISIONS)],
      ['rationale', text(LONG_TEXT)],
    ]);
  }
}

/** @type {Check} */
function checkSharing(value, path, errors) {
  if (checkObject(value, path, errors, ['shared', 'with', 'what', 'lawful_basis', 'reason'], [])) {
    checkKeys(value, path, errors, [
      ['shared', checkBool],
      ['with', text(SHORT_TEXT)],
      ['what', text(MEDIUM_TEXT)],
      ['lawful_basis', (v, p, e) => checkEnum(v, p, e, LAWFUL_BASES)],
      ['reason', text(LONG_TEXT)],
    ]);
  }
}

/** @type {Record<string, Check>} */
const FIELD_CHECKS = {
  kind: (v, p, e) => checkEnum(v, p, e, KINDS),
  category: checkCategoryId,
  occurred_at: (v, p, e) => checkDate(v, p, e, true),
  location: text(SHORT_TEXT),
  observed: text(LONG_TEXT),
  opinion: text(LONG_TEXT),
  child_words: text(LONG_TEXT),
  present: (v, p, e) => checkList(v, p, e, MAX_PRESENT, text(SHORT_TEXT)),
  pupils: checkPupils,
  body_map: (v, p, e) => checkList(v, p, e, MAX_MARKS, checkMark),
  immediate_action: text(LONG_TEXT),
  decision: checkDecision,
  outcome: text(LONG_TEXT),
  need_to_know: (v, p, e) => {
    if (checkList(v, p, e, MAX_NEED_TO_KNOW, checkId)) noDuplicates(v, p, e);
  },
  sharing: checkSharing,
  urgent: checkBool,
};
export const RECORD_FIELDS = Object.freeze(Object.keys(FIELD_CHECKS));
export const REQUIRED_FIELDS = Object.freeze(['kind', 'category', 'occurred_at', 'observed']);
export const AMENDABLE_FIELDS = Object.freeze(RECORD_FIELDS.filter((f) => !['kind', 'category', 'pupils'].includes(f)));
/** Single-value fields of the folded state, each a multi-value register (docs/PROTOCOL.md 8.5). */
export const REGISTER_FIELDS = Object.freeze([...RECORD_FIELDS.filter((f) => f !== 'pupils'), 'status', 'assignee']);
const OPTIONAL_FIELDS = RECORD_FIELDS.filter((f) => !REQUIRED_FIELDS.includes(f));

/** @type {Record<string, Check>} */
const REGISTER_EXTRA = {
  status: (v, p, e) => checkEnum(v, p, e, STATUSES),
  assignee: checkId,
};

/**
 * Check one register field's value; `null` clears an optional field and is refused for a required one.
 * @param {string} name @param {unknown} value @param {string} path @param {Errors} errors
 */
export function checkField(name, value, path, errors) {
  if (value === null) {
    if (REQUIRED_FIELDS.includes(name) || name === 'status') fail(errors, path, 'required');
    return;
  }
  (FIELD_CHECKS[name] ?? REGISTER_EXTRA[name])(value, path, errors);
}

/**
 * Check a whole record into `errors`; with `categories`, the category must be one of those ids.
 * @param {unknown} value @param {string} path @param {Errors} errors
 * @param {Iterable<string> | null} [categories]
 */
export function checkRecord(value, path, errors, categories = null) {
  if (!checkObject(value, path, errors, REQUIRED_FIELDS, OPTIONAL_FIELDS)) return;
  for (const [name, check] of Object.entries(FIELD_CHECKS)) {
    if (Object.hasOwn(value, name)) check(value[name], `${path}.${name}`, errors);
  }
  const kind = value.kind;
  if (kind === 'sharing_decision' && !Object.hasOwn(value, 'sharing')) fail(errors, `${path}.sharing`, 'required');
  else if (KINDS.includes(kind) && kind !== 'sharing_decision' && Object.hasOwn(value, 'sharing')) {
    fail(errors, `${path}.sharing`, 'not_allowed');
  }
  if (categories && typeof value.category === 'string' && !Object.hasOwn(errors, `${path}.category`)) {
    if (!new Set(categories).has(value.category)) fail(errors, `${path}.category`, 'unknown_value');
  }
  const linked = new Set(Array.isArray(value.pupils) ? value.pupils.filter(isObject).map((p) => p.pupil) : []);
  const marks = Array.isArray(value.body_map) ? value.body_map : [];
  marks.forEach((mark, i) => {
    const markPath = `${path}.body_map[${i}].pupil`;
    if (isObject(mark) && typeof mark.pupil === 'string' && !Object.hasOwn(errors, markPath) && !linked.has(mark.pupil)) {
      fail(errors, markPath, 'unknown_pupil');
    }
  });
}

/**
 * Throw `InvalidEvent` naming every bad field of `record` (paths without a prefix, for forms).
 * @param {unknown} record
 * @param {Iterable<string> | null} [categories] the school's category ids
 */
export function validateRecord(record, categories = null) {
  /** @type {Errors} */
  const errors = {};
  checkRecord(record, 'record', errors, categories);
  if (Object.keys(errors).length) {
    throw new InvalidEvent('checking record',
      Object.fromEntries(Object.entries(errors).map(([k, v]) => [k.startsWith('record.') ? k.slice(7) : k, v])));
  }
}
