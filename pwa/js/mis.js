// Reading a pupil file exported from the school's MIS, in the browser that imports it: the server never sees a
// name, a UPN or a date of birth. The same reader as sync/mis.py (docs/PROTOCOL.md 11.1), kept alike by the
// shared vectors of tests/vectors/mis/: the DfE Common Transfer File (XML, read by the browser's DOMParser,
// a DTD or an entity refused before parsing) and CSV as SIMS, Arbor and Bromcom export it (csv-parse). Every
// row is checked and each problem named by line and column with a stable code; a file with any problem yields
// no pupils at all.

import { parse as parseCsv } from 'csv-parse/browser/esm/sync';

export const MAX_BYTES = 8 * 1024 * 1024;
export const MAX_PUPILS = 3000;
const MAX_TEXT = 100;

/** Each field, and the headings (compared without case, spaces or punctuation) the common MIS exports give it. */
export const FIELDS = {
  upn: ['upn', 'uniquepupilnumber', 'pupilupn'],
  legal_surname: ['legalsurname', 'surname', 'lastname', 'familyname', 'legallastname'],
  legal_forename: ['legalforename', 'forename', 'firstname', 'legalfirstname', 'givenname', 'forenames'],
  preferred_surname: ['preferredsurname', 'preferredlastname', 'knownassurname'],
  preferred_forename: ['preferredforename', 'preferredfirstname', 'preferredname', 'knownas', 'chosenname'],
  date_of_birth: ['dob', 'dateofbirth', 'birthdate'],
  year_group: ['yeargroup', 'year', 'ncyear', 'ncyearactual', 'curriculumyear', 'nationalcurriculumyear'],
  registration_group: ['reggroup', 'registrationgroup', 'regform', 'form', 'formgroup', 'tutorgroup', 'class',
    'registrationform', 'classname'],
  sen_status: ['senstatus', 'sen', 'senprovision', 'senstage', 'sendstatus', 'senprovisiontype'],
  pupil_premium: ['pupilpremium', 'pp', 'pupilpremiumindicator', 'ppindicator', 'pupilpremiumeligible',
    'pupilpremiumflag'],
  looked_after: ['lookedafter', 'incare', 'cla', 'lac', 'childlookedafter', 'lookedafterchild', 'incarestatus'],
  eal: ['eal', 'englishasanadditionallanguage', 'ealstatus', 'ealflag'],
  first_language: ['firstlanguage', 'language', 'homelanguage', 'mothertongue'],
  admission_date: ['admissiondate', 'dateofadmission', 'entrydate', 'dateofentry', 'startdate', 'admitted'],
  leaving_date: ['leavingdate', 'dateofleaving', 'leavedate', 'enddate', 'dateleft'],
};
export const REQUIRED = ['upn', 'legal_surname', 'legal_forename', 'date_of_birth', 'year_group'];

/** The codes a row's column can get (their words are the Python reader's, PROTOCOL 11.1). */
export const PROBLEMS = ['missing', 'too_long', 'invalid_text', 'bad_upn', 'bad_check_letter', 'duplicate_upn',
  'bad_date', 'implausible_date', 'leaving_before_admission', 'bad_year_group', 'bad_flag', 'bad_sen_status'];
/** The codes of a file that cannot be read at all. */
export const FILE_CODES = ['too_large', 'too_many_pupils', 'empty', 'unknown_format', 'missing_columns',
  'ambiguous_columns', 'unknown_column', 'bad_csv', 'bad_xml', 'forbidden_xml', 'not_ctf'];

const TRUE = new Set(['y', 'yes', 'true', 't', '1']);
const FALSE = new Set(['n', 'no', 'false', 'f', '0', '']);
/** @type {Record<string, string>} */
const SEN = { n: 'N', no: 'N', nosen: 'N', none: 'N', '': 'N', k: 'K', sensupport: 'K', support: 'K',
  e: 'E', ehcplan: 'E', ehcp: 'E', ehc: 'E', s: 'E', statement: 'E', statemented: 'E' };
const ENGLISH = new Set(['eng', 'english', 'enb', 'believedtobeenglish', 'englishbelieved']);
/** What is trimmed from a cell: only these, as sync/mis.py (trim() takes more, U+FEFF among them). */
const EDGES = /^[ \t\r\n]+|[ \t\r\n]+$/g;
/** The XML declaration, the only part of a CTF read by pattern (the same as sync/mis.py's). */
const DECLARATION = /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]+\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*\?>/;
const UPN_ALPHABET = 'ABCDEFGHJKLMNPQRTUVWXYZ0123456789';
const TEXT_ONLY = new Set(['legal_surname', 'legal_forename', 'preferred_surname', 'preferred_forename',
  'registration_group']);

/**
 * @typedef {{upn: string, legal_surname: string, legal_forename: string, preferred_surname: string,
 *   preferred_forename: string, date_of_birth: string, year_group: string, registration_group: string,
 *   sen_status: string, pupil_premium: boolean, looked_after: boolean, eal: boolean,
 *   admission_date: string | null, leaving_date: string | null, line: number}} MisPupil  dates as yyyy-mm-dd
 * @typedef {{line: number, column: string, code: string}} Problem
 * @typedef {{format: 'csv' | 'ctf', pupils: MisPupil[], problems: Problem[], columns: Record<string, string>,
 *   ignored: string[]}} MisFile
 * @typedef {(text: string) => Document} XmlParser  parses XML, throwing MisFileError('bad_xml') when it is not
 *   well formed
 */

export class MisFileError extends Error {
  /** @param {string} code one of FILE_CODES @param {string} [detail] */
  constructor(code, detail = '') {
    super(`${code}${detail ? `: ${detail}` : ''}`);
    this.name = 'MisFileError';
    this.code = code;
    this.detail = detail;
  }
}

/** @param {string} heading */
const key = (heading) => Array.from(heading.toLowerCase()).filter((c) => /[\p{L}\p{N}]/u.test(c)).join('');

/**
 * Which heading each field is under, and the headings no field took.
 * @param {string[]} headings
 * @returns {{columns: Record<string, string>, ignored: string[]}}
 */
export function detectColumns(headings) {
  /** @type {Record<string, string[]>} */
  const found = {};
  const ignored = [];
  for (const heading of headings) {
    const field = Object.keys(FIELDS).find((f) => /** @type {Record<string, string[]>} */ (FIELDS)[f].includes(key(heading)));
    if (field) (found[field] ??= []).push(heading);
    else if (heading.replace(EDGES, '')) ignored.push(heading);
  }
  const twice = Object.entries(found).filter(([, h]) => h.length > 1).map(([f, h]) => `${f} (${h.join(' or ')})`).sort();
  if (twice.length) throw new MisFileError('ambiguous_columns', twice.join('; '));
  const columns = Object.fromEntries(Object.entries(found).map(([f, h]) => [f, h[0]]));
  const missing = REQUIRED.filter((f) => !(f in columns));
  if (missing.length) throw new MisFileError('missing_columns', missing.join(', '));
  return { columns, ignored };
}

/** Windows-1252's 0x80 to 0x9F (the rest is Latin-1), an undefined byte U+FFFD: as Python's cp1252 with
 * errors="replace". Written out because runtimes differ: Node's TextDecoder reads 0x80 as U+0080. */
const CP1252_HIGH = '\u20AC\uFFFD\u201A\u0192\u201E\u2026\u2020\u2021\u02C6\u2030\u0160\u2039\u0152\uFFFD\u017D\uFFFD'
  + '\uFFFD\u2018\u2019\u201C\u201D\u2022\u2013\u2014\u02DC\u2122\u0161\u203A\u0153\uFFFD\u017E\u0178';

/** @param {Uint8Array} data */
function decode(data) {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data); // a byte-order mark is dropped
  } catch {
    return Array.from(data, (b) => (b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80] : String.fromCharCode(b))).join(''); // Windows exports
  }
}

/**
 * A CTF or a CSV, told apart by their first characters.
 * @param {Uint8Array} data
 * @param {{columns?: Record<string, string>, today?: string, xml?: XmlParser}} [options] today: yyyy-mm-dd
 * @returns {MisFile}
 */
export function readFile(data, options = {}) {
  if (data.length > MAX_BYTES) throw new MisFileError('too_large');
  let i = data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf ? 3 : 0;
  while (i < data.length && [0x20, 0x09, 0x0d, 0x0a].includes(data[i])) i += 1;
  return data[i] === 0x3c ? readCtf(data, options) : readCsv(data, options);
}

/**
 * A CSV with a heading line; `columns` (field -> heading) replaces the detected ones.
 * @param {Uint8Array} data
 * @param {{columns?: Record<string, string>, today?: string}} [options]
 * @returns {MisFile}
 */
export function readCsv(data, { columns, today } = {}) {
  if (data.length > MAX_BYTES) throw new MisFileError('too_large');
  const text = decode(data);
  const first = text.split('\n', 1)[0];
  const delimiter = first.includes('\t') && !first.includes(',') ? '\t' : ',';
  /** @type {{record: string[], info: {lines: number}}[]} */
  let records;
  // As Python's csv module in strict mode: a quoted field must be closed and followed by a delimiter or the end
  // of the line; a quote inside an unquoted field is an ordinary character (csv-parse calls that relaxing).
  /** @param {boolean} relax */
  const parse = (relax) => /** @type {{record: string[], info: {lines: number}}[]} */ (/** @type {unknown} */ (
    parseCsv(text, { delimiter, record_delimiter: ['\r\n', '\n', '\r'], relax_column_count: true, relax_quotes: relax,
      skip_empty_lines: false, info: true, bom: true })));
  try {
    try {
      records = parse(false);
    } catch (error) {
      if (!(error instanceof Error && /** @type {any} */ (error).code === 'INVALID_OPENING_QUOTE')) throw error;
      records = parse(true);
    }
  } catch (error) {
    throw new MisFileError('bad_csv', error instanceof Error ? error.message : '');
  }
  if (!records.length) throw new MisFileError('empty');
  const headings = records[0].record;
  if (headings.filter((h) => h.replace(EDGES, '')).length < 2) throw new MisFileError('unknown_format', 'the first line is not a heading line');
  let chosen;
  let ignored;
  if (columns === undefined) ({ columns: chosen, ignored } = detectColumns(headings));
  else {
    const unknown = Object.values(columns).filter((h) => !headings.includes(h)).sort();
    if (unknown.length) throw new MisFileError('unknown_column', unknown.join(', '));
    const missing = REQUIRED.filter((f) => !(f in columns));
    if (missing.length) throw new MisFileError('missing_columns', missing.join(', '));
    chosen = { ...columns };
    const taken = new Set(Object.values(chosen));
    ignored = headings.filter((h) => h.replace(EDGES, '') && !taken.has(h));
  }
  const where = Object.entries(chosen).map(([f, h]) => /** @type {[string, number]} */ ([f, headings.indexOf(h)]));
  /** @type {[number, Record<string, string>][]} */
  const rows = [];
  let line = records[0].info.lines + 1;
  for (const { record, info } of records.slice(1)) {
    if (record.some((c) => c.replace(EDGES, ''))) rows.push([line, Object.fromEntries(where.map(([f, n]) => [f, record[n] ?? '']))]);
    line = info.lines + 1;
  }
  if (rows.length > MAX_PUPILS) throw new MisFileError('too_many_pupils');
  return checked('csv', rows, chosen, ignored, today ?? isoToday());
}

/** The browser's XML parser: a document, or MisFileError('bad_xml'). @type {XmlParser} */
export function browserXml(text) {
  const doc = new DOMParser().parseFromString(text, 'application/xml');
  if (doc.getElementsByTagName('parsererror').length) throw new MisFileError('bad_xml');
  return doc;
}

/** @param {Element} el */
const kids = (el) => /** @type {Element[]} */ (Array.from(el.childNodes).filter((n) => n.nodeType === 1));
/** @param {Element} el */
const local = (el) => el.localName ?? el.nodeName.split(':').pop() ?? '';

/** An element's text before its first child element, as ElementTree's `.text` (comments skipped). @param {Element} el */
function ownText(el) {
  let text = '';
  for (const n of Array.from(el.childNodes)) {
    if (n.nodeType === 1) break;
    if (n.nodeType === 3 || n.nodeType === 4) text += n.nodeValue ?? '';
  }
  return text;
}

/**
 * The text at the first of `paths` (slash-separated local names) that is present, else ''.
 * @param {Element | null} el @param {...string} paths
 */
function find(el, ...paths) {
  for (const path of paths) {
    /** @type {Element | null | undefined} */
    let node = el;
    for (const part of path.split('/')) node = node ? kids(node).find((c) => local(c) === part) : null;
    const text = node ? ownText(node).replace(EDGES, '') : '';
    if (node && text) return text;
  }
  return '';
}

/** @param {Element} pupil */
function firstLanguage(pupil) {
  const direct = find(pupil, 'BasicDetails/FirstLanguage', 'FirstLanguage');
  if (direct) return direct;
  /** @param {Element} el @returns {Element[]} */
  const all = (el) => kids(el).flatMap((c) => [c, ...all(c)]);
  for (const languages of all(pupil).filter((c) => local(c) === 'Languages')) {
    for (const entry of kids(languages)) {
      if (['F', ''].includes(find(entry, 'LanguageType')) && find(entry, 'Language')) return find(entry, 'Language');
    }
  }
  return '';
}

/**
 * A Common Transfer File: every <Pupil> of its <CTFpupilData>.
 * @param {Uint8Array} data
 * @param {{today?: string, xml?: XmlParser}} [options]
 * @returns {MisFile}
 */
export function readCtf(data, { today, xml = browserXml } = {}) {
  if (data.length > MAX_BYTES) throw new MisFileError('too_large');
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new MisFileError('bad_xml', 'not UTF-8'); // as expat says of a UTF-8 document with a broken byte
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.replace(/^[ \t\r\n]+/, '').startsWith('<?xml') && !text.startsWith('<?xml')) {
    throw new MisFileError('bad_xml', 'the XML declaration is not at the start');
  }
  if (text.startsWith('<?xml') && [' ', '\t', '\r', '\n'].includes(text[5])) {
    const declared = text.match(DECLARATION);
    if (!declared) throw new MisFileError('bad_xml', 'the XML declaration is malformed');
    if (declared[3] !== undefined && declared[3].toLowerCase() !== 'utf-8') throw new MisFileError('bad_xml', 'an encoding that is not UTF-8');
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(text)) throw new MisFileError('bad_xml', 'a character XML forbids');
  if (text.includes('<!DOCTYPE') || text.includes('<!ENTITY')) throw new MisFileError('forbidden_xml', 'a DTD');
  const root = xml(text).documentElement;
  const pupilData = root ? kids(root).find((c) => local(c) === 'CTFpupilData') : undefined;
  if (!root || local(root) !== 'CTfile' || !pupilData) throw new MisFileError('not_ctf');
  const pupils = kids(pupilData).filter((c) => local(c) === 'Pupil');
  if (pupils.length > MAX_PUPILS) throw new MisFileError('too_many_pupils');
  const rows = pupils.map((pupil, n) => {
    const history = kids(pupil).filter((c) => local(c) === 'SchoolHistory').flatMap((c) => kids(c).filter((s) => local(s) === 'School'));
    const latest = history.at(-1) ?? null;
    return /** @type {[number, Record<string, string>]} */ ([n + 1, {
      upn: find(pupil, 'UPN'),
      legal_surname: find(pupil, 'Surname', 'BasicDetails/LegalSurname', 'BasicDetails/Surname'),
      legal_forename: find(pupil, 'Forename', 'BasicDetails/LegalForename', 'BasicDetails/Forename'),
      preferred_surname: find(pupil, 'BasicDetails/PreferredSurname', 'PreferredSurname'),
      preferred_forename: find(pupil, 'BasicDetails/PreferredForename', 'PreferredForename'),
      date_of_birth: find(pupil, 'DOB', 'BasicDetails/DOB'),
      year_group: find(pupil, 'BasicDetails/NCyearActual', 'NCyearActual'),
      sen_status: find(pupil, 'SENhistory/SEN/SENprovision', 'SEN/SENprovision', 'BasicDetails/SENprovision'),
      looked_after: find(pupil, 'LookedAfter/InCare', 'BasicDetails/InCare', 'InCare'),
      first_language: firstLanguage(pupil),
      admission_date: find(latest, 'EntryDate'),
      leaving_date: find(latest, 'LeavingDate'),
    }]);
  });
  const read = Object.fromEntries(Object.keys(FIELDS).filter((f) => !['registration_group', 'pupil_premium', 'eal'].includes(f))
    .map((f) => [f, f]));
  return checked('ctf', rows, read, [], today ?? isoToday());
}

function isoToday() {
  const now = new Date();
  return iso(now.getFullYear(), now.getMonth() + 1, now.getDate());
}

/** @param {number} y @param {number} m @param {number} d */
const iso = (y, m, d) => `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;

/**
 * yyyy-mm-dd, from what exports write (dd/mm/yyyy, yyyy-mm-dd, dd-mm-yyyy, dd.mm.yyyy, dd/mm/yy, an xs:dateTime).
 * @param {string} value
 * @returns {string} or throws
 */
function parseDate(value) {
  const v = value.replace(EDGES, '');
  const forms = /** @type {[RegExp, (m: RegExpMatchArray) => [number, number, number]][]} */ ([
    [/^(\d{1,2})\/(\d{1,2})\/(\d{4})$/, (m) => [+m[3], +m[2], +m[1]]],
    [/^(\d{4})-(\d{1,2})-(\d{1,2})$/, (m) => [+m[1], +m[2], +m[3]]],
    [/^(\d{1,2})-(\d{1,2})-(\d{4})$/, (m) => [+m[3], +m[2], +m[1]]],
    [/^(\d{1,2})\.(\d{1,2})\.(\d{4})$/, (m) => [+m[3], +m[2], +m[1]]],
    [/^(\d{1,2})\/(\d{1,2})\/(\d{2})$/, (m) => [+m[3] + (+m[3] < 69 ? 2000 : 1900), +m[2], +m[1]]],
  ]);
  for (const [form, parts] of forms) {
    const m = v.match(form);
    if (!m) continue;
    const [y, mo, d] = parts(m);
    const when = new Date(Date.UTC(y, mo - 1, d));
    if (y >= 1 && when.getUTCFullYear() === y && when.getUTCMonth() === mo - 1 && when.getUTCDate() === d) return iso(y, mo, d);
  }
  if (v.includes('T')) return parseDate(v.split('T', 1)[0]);
  throw new RangeError('not a date');
}

/** @param {string} value */
function yearGroup(value) {
  let k = key(value);
  k = k.startsWith('year') ? k.slice(4) : k;
  k = k.startsWith('y') ? k.slice(1) : k;
  if (['r', 'reception', 'rec'].includes(k)) return 'R';
  if (['n1', 'n2', 'x'].includes(k)) return k.toUpperCase();
  if (k === 'nursery') return 'N2';
  if (/^\d+$/.test(k) && +k >= 1 && +k <= 14) return String(+k);
  return null;
}

/** @param {string} value @param {boolean} required @returns {[string, string | null]} */
function textOf(value, required) {
  const v = value.replace(EDGES, '').normalize('NFC');
  if (!v) return ['', required ? 'missing' : null];
  if (Array.from(v).length > MAX_TEXT) return ['', 'too_long'];
  if (/[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\uFFFD]/u.test(v)) return ['', 'invalid_text'];
  return [v, null];
}

/** @param {string} body the UPN's last 12 characters */
function checkLetter(body) {
  let sum = 0;
  for (let i = 0; i < 12; i += 1) sum += (i + 2) * UPN_ALPHABET.indexOf(body[i]);
  return UPN_ALPHABET[sum % 23];
}

/**
 * The UPN in its compact form and the problem with it (the checks of python-stdnum's gb.upn: length, format,
 * check letter; the local authority number is not checked, as the check letter decides).
 * @param {string} raw @returns {[string, string | null]}
 */
function upnOf(raw) {
  const upn = raw.replace(EDGES, '').replaceAll(' ', '').toUpperCase();
  if (!raw.replace(EDGES, '')) return ['', 'missing'];
  if (!/^[A-Z0-9]*$/.test(upn)) return ['', 'bad_upn'];
  if (upn.length !== 13) return ['', 'bad_upn'];
  if (!/^\d{11}$/.test(upn.slice(1, 12)) || !UPN_ALPHABET.includes(upn[12])) return ['', 'bad_upn'];
  if (checkLetter(upn.slice(1)) !== upn[0]) return ['', 'bad_check_letter'];
  return [upn, null];
}

/**
 * @param {'csv' | 'ctf'} kind @param {[number, Record<string, string>][]} rows @param {Record<string, string>} columns
 * @param {string[]} ignored @param {string} today yyyy-mm-dd
 * @returns {MisFile}
 */
function checked(kind, rows, columns, ignored, today) {
  if (!rows.length) throw new MisFileError('empty');
  /** @type {Problem[]} */
  const problems = [];
  /** @type {MisPupil[]} */
  const pupils = [];
  /** @type {Set<string>} */
  const seen = new Set();
  const [ty, tm, td] = today.split('-').map(Number);
  const oldest = new Date(Date.UTC(ty, tm - 1, td) - 25 * 366 * 86_400_000).toISOString().slice(0, 10);
  for (const [line, cells] of rows) {
    const before = problems.length;
    /** @param {string} field @param {string} code */
    const flag = (field, code) => problems.push({ line, column: columns[field] ?? field, code });
    /** @type {Record<string, string>} */
    const values = {};
    for (const name of TEXT_ONLY) {
      const [value, code] = textOf(cells[name] ?? '', REQUIRED.includes(name));
      values[name] = value;
      if (code) flag(name, code);
    }
    values.preferred_surname ||= values.legal_surname;
    values.preferred_forename ||= values.legal_forename;
    const [upn, upnProblem] = upnOf(cells.upn ?? '');
    if (upnProblem) flag('upn', upnProblem);
    if (upn && seen.has(upn)) flag('upn', 'duplicate_upn');
    else if (upn) seen.add(upn);
    /** @type {Record<string, string | null>} */
    const dates = {};
    for (const name of ['date_of_birth', 'admission_date', 'leaving_date']) {
      const raw = (cells[name] ?? '').replace(EDGES, '');
      dates[name] = null;
      if (!raw) {
        if (REQUIRED.includes(name)) flag(name, 'missing');
        continue;
      }
      try {
        dates[name] = parseDate(raw);
      } catch {
        flag(name, 'bad_date');
      }
    }
    const { date_of_birth: born, admission_date: admitted, leaving_date: left } = dates;
    if (born && (born > today || born < oldest)) flag('date_of_birth', 'implausible_date');
    if (born && admitted && admitted < born) flag('admission_date', 'implausible_date');
    if (admitted && left && left < admitted) flag('leaving_date', 'leaving_before_admission');
    const year = yearGroup(cells.year_group ?? '');
    if (year === null) flag('year_group', (cells.year_group ?? '').replace(EDGES, '') ? 'bad_year_group' : 'missing');
    const sen = SEN[key(cells.sen_status ?? '')];
    if (sen === undefined) flag('sen_status', 'bad_sen_status');
    /** @type {Record<string, boolean>} */
    const flags = {};
    for (const name of ['pupil_premium', 'looked_after', 'eal']) {
      const raw = (cells[name] ?? '').replace(EDGES, '').toLowerCase();
      if (!TRUE.has(raw) && !FALSE.has(raw)) flag(name, 'bad_flag');
      flags[name] = TRUE.has(raw);
    }
    if (!('eal' in columns) && (cells.first_language ?? '').replace(EDGES, '')) flags.eal = !ENGLISH.has(key(cells.first_language));
    if (problems.length === before && born && year !== null && sen !== undefined) {
      pupils.push({
        upn, legal_surname: values.legal_surname, legal_forename: values.legal_forename,
        preferred_surname: values.preferred_surname, preferred_forename: values.preferred_forename,
        date_of_birth: born, year_group: year, registration_group: values.registration_group, sen_status: sen,
        pupil_premium: flags.pupil_premium, looked_after: flags.looked_after, eal: flags.eal,
        admission_date: admitted, leaving_date: left, line,
      });
    }
  }
  return { format: kind, pupils: problems.length ? [] : pupils, problems, columns, ignored };
}
