// Concern events: the content bytes of one envelope, their types, limits, encoding and decoding. The twin
// of sync/events.py (docs/PROTOCOL.md section 8.1).
//
// The content is canonical UTF-8 JSON: an object with keys sorted, no whitespace, integers only. `decode`
// refuses anything else, including content that parses but is not in canonical form, so the Python and
// JavaScript readers can never disagree on what an event says. The envelope's header supplies the event id
// (the envelope id), the concern id, the author device and the device time.

import { MAX_COUNTER, MAX_WALL_MS } from './hlc.js';
import {
  AMENDABLE_FIELDS, InvalidEvent, KINDS, LONG_TEXT, MAX_PUPILS, MEDIUM_TEXT, REGISTER_FIELDS, STATUSES,
  UnsupportedEventVersion, checkCategoryId, checkDate, checkEnum, checkField, checkId, checkInt, checkPupils,
  checkRecord, checkText, fail, isObject,
} from './record.js';

/** @typedef {import('./record.js').Errors} Errors */
/** @typedef {import('./hlc.js').Hlc} Hlc */

/**
 * One decoded event. Ids are 32 lower-case hex digits; `body` holds the type's own fields.
 * @typedef {object} Event
 * @property {string} id
 * @property {string} concern
 * @property {string} device
 * @property {number} deviceTimeMs
 * @property {Hlc} hlc
 * @property {string} author
 * @property {string[]} parents
 * @property {string} type
 * @property {Record<string, any>} body
 * @property {Uint8Array} content
 */

export const VERSION = 1;
export const MAX_CONTENT_BYTES = 262144;
export const MAX_PARENTS = 64;
export const MAX_ENTRY_KEY_VERSION = 2 ** 32 - 1;
const COMMON = ['v', 'type', 'hlc', 'author', 'parents'];

/** @typedef {(c: Record<string, any>, e: Errors) => void} BodyCheck */

/** @param {Record<string, any>} c @param {Errors} e */
function keyVersion(c, e) {
  if (Object.hasOwn(c, 'entry_key_version')) checkInt(c.entry_key_version, 'entry_key_version', e, 1, MAX_ENTRY_KEY_VERSION);
}

/**
 * A list of `low..high` distinct ids; true if it is one.
 * @param {unknown} value @param {string} path @param {Errors} e @param {number} low @param {number} high
 */
function idList(value, path, e, low, high) {
  if (!Array.isArray(value)) {
    fail(e, path, 'wrong_type');
    return false;
  }
  if (value.length < low) {
    fail(e, path, value.length === 0 ? 'empty' : 'too_few');
    return false;
  }
  if (value.length > high) {
    fail(e, path, 'too_many');
    return false;
  }
  const seen = new Set();
  value.forEach((v, i) => {
    checkId(v, `${path}[${i}]`, e);
    if (typeof v === 'string') {
      if (seen.has(v)) fail(e, `${path}[${i}]`, 'duplicate');
      seen.add(v);
    }
  });
  return true;
}

/** @type {Record<string, [string[], string[], BodyCheck]>} type: [required body keys, optional body keys, check] */
export const TYPES = {
  created: [['record', 'entry_key_version'], [], (c, e) => {
    checkRecord(c.record, 'record', e);
    keyVersion(c, e);
    if (Array.isArray(c.parents) ? c.parents.length > 0 : c.parents) fail(e, 'parents', 'not_allowed');
  }],
  amended: [['field', 'value'], [], (c, e) => {
    checkEnum(c.field, 'field', e, AMENDABLE_FIELDS);
    if (!Object.hasOwn(e, 'field') && Object.hasOwn(c, 'value')) checkField(c.field, c.value, 'value', e);
  }],
  action_added: [['action'], [], (c, e) => {
    const action = c.action;
    if (!isObject(action)) {
      fail(e, 'action', 'wrong_type');
      return;
    }
    for (const key of Object.keys(action)) {
      if (!['text', 'owner', 'due'].includes(key)) fail(e, `action.${key}`, 'unknown_field');
    }
    for (const key of ['text', 'owner']) {
      if (!Object.hasOwn(action, key)) fail(e, `action.${key}`, 'required');
    }
    if (Object.hasOwn(action, 'text')) checkText(action.text, 'action.text', e, MEDIUM_TEXT);
    if (Object.hasOwn(action, 'owner')) checkId(action.owner, 'action.owner', e);
    if (Object.hasOwn(action, 'due')) checkDate(action.due, 'action.due', e);
  }],
  action_completed: [['target'], ['note'], (c, e) => {
    checkId(c.target, 'target', e);
    if (Object.hasOwn(c, 'note')) checkText(c.note, 'note', e, MEDIUM_TEXT);
  }],
  status_changed: [['status'], ['note'], (c, e) => {
    checkEnum(c.status, 'status', e, STATUSES);
    if (Object.hasOwn(c, 'note')) checkText(c.note, 'note', e, MEDIUM_TEXT);
  }],
  pupils_linked: [['pupils'], [], (c, e) => checkPupils(c.pupils, 'pupils', e)],
  pupils_unlinked: [['pupils'], [], (c, e) => {
    idList(c.pupils, 'pupils', e, 1, MAX_PUPILS);
  }],
  reclassified: [['kind', 'category', 'entry_key_version'], ['reason'], (c, e) => {
    checkEnum(c.kind, 'kind', e, KINDS);
    checkCategoryId(c.category, 'category', e);
    keyVersion(c, e);
    if (Object.hasOwn(c, 'reason')) checkText(c.reason, 'reason', e, MEDIUM_TEXT);
  }],
  assigned: [['assignee'], [], (c, e) => {
    if (c.assignee !== null && c.assignee !== undefined) checkId(c.assignee, 'assignee', e);
  }],
  comment: [['text'], [], (c, e) => checkText(c.text, 'text', e, LONG_TEXT)],
  retracted: [['reason'], ['target'], (c, e) => {
    checkText(c.reason, 'reason', e, MEDIUM_TEXT);
    if (Object.hasOwn(c, 'target')) checkId(c.target, 'target', e);
  }],
  conflict_resolved: [['field', 'value', 'resolves'], [], (c, e) => {
    checkEnum(c.field, 'field', e, REGISTER_FIELDS);
    if (!Object.hasOwn(e, 'field') && Object.hasOwn(c, 'value')) checkField(c.field, c.value, 'value', e);
    if (idList(c.resolves, 'resolves', e, 2, MAX_PARENTS)) {
      const parents = Array.isArray(c.parents) && !Object.hasOwn(e, 'parents') ? new Set(c.parents) : null;
      c.resolves.forEach((/** @type {unknown} */ r, /** @type {number} */ i) => {
        if (parents !== null && !Object.hasOwn(e, `resolves[${i}]`) && !parents.has(r)) fail(e, `resolves[${i}]`, 'not_a_parent');
      });
    }
  }],
  restriction_changed: [['restricted', 'reason'], ['entry_key_version'], (c, e) => {
    if (typeof c.restricted !== 'boolean') fail(e, 'restricted', 'wrong_type');
    checkText(c.reason, 'reason', e, MEDIUM_TEXT);
    keyVersion(c, e);
    if (c.restricted === true && !Object.hasOwn(c, 'entry_key_version')) fail(e, 'entry_key_version', 'required');
  }],
};
const TYPE_NAMES = new Set(Object.keys(TYPES));

/** @param {unknown} content */
function checkVersion(content) {
  if (!isObject(content)) throw new InvalidEvent('decoding event content', { content: 'wrong_type' });
  if (!Object.hasOwn(content, 'v')) throw new InvalidEvent('decoding event content', { v: 'required' });
  const v = content.v;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new InvalidEvent('decoding event content', { v: 'wrong_type' });
  if (v !== VERSION) {
    throw new UnsupportedEventVersion(`decoding event content: version ${v} is unknown`, { v: 'unknown_value' });
  }
}

/**
 * Every field error of a content object whose version is known; empty if it is valid.
 * @param {Record<string, any>} content
 * @returns {Errors}
 */
export function checkContent(content) {
  /** @type {Errors} */
  const e = {};
  for (const key of COMMON) if (!Object.hasOwn(content, key)) e[key] = 'required';
  if (Object.hasOwn(content, 'type')) checkEnum(content.type, 'type', e, TYPE_NAMES);
  if (Object.hasOwn(content, 'hlc')) {
    const hlc = content.hlc;
    if (!Array.isArray(hlc) || hlc.length !== 2) fail(e, 'hlc', 'wrong_type');
    else {
      checkInt(hlc[0], 'hlc[0]', e, 0, MAX_WALL_MS);
      checkInt(hlc[1], 'hlc[1]', e, 0, MAX_COUNTER);
    }
  }
  if (Object.hasOwn(content, 'author')) checkId(content.author, 'author', e);
  if (Object.hasOwn(content, 'parents')) idList(content.parents, 'parents', e, 0, MAX_PARENTS);
  if (Object.hasOwn(e, 'type')) return e; // the body of an unknown type cannot be checked
  const kind = content.type;
  const [required, optional, check] = TYPES[kind];
  for (const key of Object.keys(content)) {
    if (!COMMON.includes(key) && !required.includes(key) && !optional.includes(key)) fail(e, key, 'unknown_field');
  }
  for (const key of required) if (!Object.hasOwn(content, key)) fail(e, key, 'required');
  check(content, e);
  if (kind !== 'created' && Array.isArray(content.parents) && content.parents.length === 0) fail(e, 'parents', 'empty');
  return e;
}

/**
 * Canonical JSON text: keys sorted, no whitespace (what Python's `json.dumps(sort_keys=True,
 * separators=(",", ":"), ensure_ascii=False)` writes for the same value).
 * @param {unknown} value
 * @returns {string}
 */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** @param {Uint8Array} a @param {Uint8Array} b */
function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Canonical bytes of a content object; throws InvalidEvent naming every bad field.
 * @param {Record<string, any>} content
 * @returns {Uint8Array}
 */
export function encode(content) {
  checkVersion(content);
  const errors = checkContent(content);
  if (Object.keys(errors).length) throw new InvalidEvent('encoding event content', errors);
  const data = utf8.encode(canonicalJson(content));
  if (data.length > MAX_CONTENT_BYTES) throw new InvalidEvent('encoding event content', { content: 'too_large' });
  return data;
}

/** @param {Uint8Array} bytes */
function toHex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/**
 * Decode one envelope's content; the header fields come from the envelope's signed header.
 * @param {Uint8Array} content
 * @param {{eventId: Uint8Array, concernId: Uint8Array, authorDevice: Uint8Array, deviceTimeMs: number}} header
 * @returns {Event}
 */
export function decode(content, { eventId, concernId, authorDevice, deviceTimeMs }) {
  for (const [name, value] of /** @type {[string, unknown][]} */ ([['eventId', eventId], ['concernId', concernId], ['authorDevice', authorDevice]])) {
    if (!(value instanceof Uint8Array) || value.length !== 16) throw new TypeError(`${name} must be 16 bytes.`);
  }
  if (content.length > MAX_CONTENT_BYTES) throw new InvalidEvent('decoding event content', { content: 'too_large' });
  let text;
  try {
    text = utf8Strict.decode(content);
  } catch {
    throw new InvalidEvent('decoding event content', { content: 'bad_encoding' });
  }
  let obj;
  try {
    obj = JSON.parse(text);
  } catch {
    throw new InvalidEvent('decoding event content', { content: 'bad_json' });
  }
  checkVersion(obj);
  const errors = checkContent(obj);
  if (Object.keys(errors).length) throw new InvalidEvent('decoding event content', errors);
  if (!sameBytes(utf8.encode(canonicalJson(obj)), content)) {
    throw new InvalidEvent('decoding event content', { content: 'not_canonical' });
  }
  /** @type {Record<string, any>} */
  const body = {};
  for (const [k, v] of Object.entries(obj)) if (!COMMON.includes(k)) body[k] = v;
  return {
    id: toHex(eventId), concern: toHex(concernId), device: toHex(authorDevice), deviceTimeMs,
    hlc: [obj.hlc[0], obj.hlc[1]], author: obj.author, parents: [...obj.parents], type: obj.type, body,
    content: Uint8Array.from(content),
  };
}
