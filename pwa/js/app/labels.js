// Words the review screens show for the record's codes (kinds, statuses, roles, decisions), the names of staff
// from the school's directory, and the two times of every entry ("written offline 10:42, received 15:10").

import { b64d, hex } from '../sync/protocol.js';
import { formatTime } from './ui.js';

/** @typedef {import('../sync/device.js').Directory} Directory */

export const KIND_LABELS = /** @type {Record<string, string>} */ ({
  safeguarding_concern: 'Safeguarding concern', behaviour_incident: 'Behaviour incident',
  parental_contact: 'Contact with a parent or carer', sen_note: 'SEN note', sharing_decision: 'Sharing decision',
  general_note: 'General note',
});
export const STATUS_LABELS = /** @type {Record<string, string>} */ ({
  open: 'Open', awaiting: 'Awaiting', closed: 'Closed', reopened: 'Reopened',
});
export const ROLE_LABELS = /** @type {Record<string, string>} */ ({
  subject: 'Subject', victim: 'Victim', alleged_perpetrator: 'Alleged perpetrator', witness: 'Witness', other: 'Other',
});
export const STAFF_ROLE_LABELS = /** @type {Record<string, string>} */ ({
  contributor: 'contributor', teacher: 'teacher', sen: 'SEN team', safeguarding: 'safeguarding team', admin: 'admin',
});
export const DECISION_LABELS = /** @type {Record<string, string>} */ ({
  refer_childrens_social_care: "Refer to children's social care", refer_police: 'Refer to the police',
  refer_prevent: 'Refer to Prevent', refer_lado: 'Refer to the LADO', refer_early_help: 'Refer to early help',
  refer_other: 'Refer elsewhere', monitor: 'Monitor', no_referral: 'No referral',
});
export const BASIS_LABELS = /** @type {Record<string, string>} */ ({
  consent: 'Consent', contract: 'Contract', legal_obligation: 'Legal obligation', vital_interests: 'Vital interests',
  public_task: 'Public task', legitimate_interests: 'Legitimate interests',
});
export const FIELD_LABELS = /** @type {Record<string, string>} */ ({
  kind: 'Type of entry', category: 'Category', occurred_at: 'When it happened', location: 'Where',
  observed: 'What was seen or heard', opinion: 'Opinion', child_words: "The child's own words", present: 'Who was present',
  immediate_action: 'Action taken', decision: 'Decision', outcome: 'Outcome', need_to_know: 'Need-to-know staff',
  sharing: 'Sharing decision', urgent: 'Alert', status: 'Status', assignee: 'Assigned to', body_map: 'Body map',
});

/** A gap between writing and receiving longer than this is shown as "written offline". */
export const OFFLINE_GAP_MS = 2 * 60_000;

/** @param {Record<string, string>} labels @param {string} code */
export function label(labels, code) {
  return labels[code] ?? code.replace(/_/g, ' ');
}

/**
 * "written 10:42, received 10:42", "written offline 10:42, received 15:10", "written 10:42, not sent yet".
 * @param {number} writtenMs device time
 * @param {number | null | undefined} receivedMs server time
 */
export function twoTimes(writtenMs, receivedMs) {
  if (!receivedMs) return `written ${formatTime(writtenMs)}, not received by the server yet`;
  const offline = receivedMs - writtenMs > OFFLINE_GAP_MS;
  return `written ${offline ? 'offline ' : ''}${formatTime(writtenMs)}, received ${formatTime(receivedMs)}`;
}

/** "12 Mar 2026" from YYYY-MM-DD or YYYY-MM-DDTHH:MM (as written: no time zone is applied). @param {string} value */
export function formatRecordDate(value) {
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d))?$/.exec(value ?? '');
  if (!m) return value ?? '';
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][Number(m[2]) - 1];
  return `${Number(m[3])} ${month} ${m[1]}${m[4] ? ` ${m[4]}:${m[5]}` : ''}`;
}

/** Today as YYYY-MM-DD, local time. */
export function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** @typedef {{id: string, name: string, roles: string[]}} Staff */

/**
 * Current staff from the directory, ids as hex, sorted by name.
 * @param {Directory | null} directory
 * @returns {Staff[]}
 */
export function staff(directory) {
  if (!directory) return [];
  return directory.accounts.filter((a) => !a.left)
    .map((a) => ({ id: hex(b64d(a.id, 'id')), name: a.display_name || a.login, roles: a.roles }))
    .sort((a, b) => a.name.localeCompare(b.name, 'en-GB'));
}

/**
 * The school's classes from the directory, ids as hex; a teacher's own classes only, when `teacher` is given.
 * @param {Directory | null} directory
 * @param {string} [teacher] hex user id
 * @returns {{id: string, label: string}[]}
 */
export function classes(directory, teacher) {
  if (!directory) return [];
  return directory.classes
    .filter((c) => !teacher || c.teachers.some((t) => hex(b64d(t, 'id')) === teacher))
    .map((c) => ({ id: hex(b64d(c.id, 'id')), label: c.label }))
    .sort((a, b) => a.label.localeCompare(b.label, 'en-GB', { numeric: true }));
}
