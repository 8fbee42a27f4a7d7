// One concern's page: every field, the body map (read-only), actions with their owners and due dates (overdue
// ones marked), fields edited in two places at once shown side by side with a way to keep one, the full history
// (who, which role, "written offline 10:42, received 15:10"), and the safeguarding team's triage controls. Each
// triage control writes one signed event through the Casebook, so it works offline and reaches the history.
// A teacher's page is the same, read-only.

import { DECISIONS, KINDS, LAWFUL_BASES } from '../record.js';
import { TYPE_LABELS, drawMarks } from './bodymap.js';
import {
  BASIS_LABELS, DECISION_LABELS, FIELD_LABELS, KIND_LABELS, ROLE_LABELS, STAFF_ROLE_LABELS, STATUS_LABELS,
  formatRecordDate, label, staff, twoTimes,
} from './labels.js';
import { Choices } from './choices.js';
import { byId, h } from './ui.js';

/** @typedef {import('../review/casebook.js').Casebook} Casebook */
/** @typedef {import('../review/casebook.js').ConcernView} ConcernView */
/** @typedef {import('../review/casebook.js').Conflict} Conflict */
/** @typedef {import('../sync/writer.js').Category} Category */
/** @typedef {import('./people.js').Session} Session */
/** @typedef {import('./labels.js').Staff} Staff */

/**
 * @param {HTMLSelectElement} select
 * @param {[string, string][]} options value, text
 * @param {string} [keep] the value to select if present
 */
function options(select, options, keep) {
  select.replaceChildren(...options.map(([value, text]) => h('option', { value, text })));
  if (keep !== undefined && options.some(([v]) => v === keep)) select.value = keep;
}

export class ConcernPage {
  /**
   * @param {{categories: Category[], back: () => void, chronology: (pupilId: string) => void,
   *   changed: () => void}} hooks  changed: after this page wrote an event
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.categories = new Map(hooks.categories.map((c) => [c.id, c]));
    /** @type {Casebook | null} */
    this.casebook = null;
    /** @type {Session | null} */
    this.session = null;
    /** @type {string | null} */
    this.id = null;
    /** @type {ConcernView | null} */
    this.view = null;
    this.drawing = 0;
    /** what the person chose in the triage controls and has not saved yet (./choices.js) */
    this.choices = new Choices();
    /** @type {Map<string, Staff>} */
    this.people = new Map();
    this.message = byId('concern-message', HTMLElement);
    byId('concern-back', HTMLButtonElement).addEventListener('click', () => this.hooks.back());
    options(byId('reclassify-kind', HTMLSelectElement), KINDS.map((k) => [k, label(KIND_LABELS, k)]));
    options(byId('reclassify-category', HTMLSelectElement), hooks.categories.map((c) => [c.id, c.label]));
    options(byId('sharing-decision', HTMLSelectElement), [['yes', 'Information was shared'], ['no', 'Information was not shared'],
      ...DECISIONS.map((d) => /** @type {[string, string]} */ ([`decision:${d}`, `Decision only: ${label(DECISION_LABELS, d)}`]))]);
    options(byId('sharing-basis', HTMLSelectElement), LAWFUL_BASES.map((b) => [b, label(BASIS_LABELS, b)]), 'public_task');
    this.forms();
  }

  /** Wire each triage form to its Casebook method. */
  forms() {
    /** @param {string} id @param {(cb: Casebook, id: string) => Promise<unknown>} run @param {string} done */
    const wire = (id, run, done) => {
      const form = byId(id, HTMLFormElement);
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        void this.act(form, run, done);
      });
    };
    wire('triage-assign', (cb, id) => cb.assign(id, byId('assign-to', HTMLSelectElement).value || null), 'Assignment saved.');
    wire('triage-status', (cb, id) => {
      const note = byId('status-note', HTMLInputElement).value.trim();
      return cb.setStatus(id, byId('status-to', HTMLSelectElement).value, note || undefined);
    }, 'Status saved.');
    wire('triage-action', (cb, id) => {
      const text = byId('action-text', HTMLTextAreaElement).value.trim();
      if (!text) throw new UserError('Write what needs doing.');
      const due = byId('action-due', HTMLInputElement).value;
      return cb.addAction(id, { text, owner: byId('action-owner', HTMLSelectElement).value, ...(due ? { due } : {}) });
    }, 'Action added.');
    wire('triage-restrict', (cb, id) => (this.view?.summary.restricted
      ? cb.liftRestriction(id, 'Lifted by the safeguarding team.')
      : cb.restrict(id, 'Restricted by the safeguarding team.')), 'Restriction changed.');
    wire('triage-need', (cb, id) => {
      const person = byId('need-person', HTMLSelectElement).value;
      if (!person) throw new UserError('Choose a member of staff.');
      return cb.addNeedToKnow(id, [person]);
    }, 'Need-to-know staff added.');
    wire('triage-sharing', (cb, id) => {
      const choice = byId('sharing-decision', HTMLSelectElement).value;
      const reason = byId('sharing-reason', HTMLTextAreaElement).value.trim();
      const withWhom = byId('sharing-with', HTMLInputElement).value.trim();
      if (!reason) throw new UserError('Give the reason for the decision.');
      if (choice.startsWith('decision:')) return cb.recordDecision(id, { decision: choice.slice(9), rationale: reason });
      if (!withWhom) throw new UserError('Say who the information was shared with, or would have been.');
      return cb.recordSharing(id, {
        shared: choice === 'yes', with: withWhom,
        what: byId('sharing-what', HTMLInputElement).value.trim() || 'This concern and its history',
        lawful_basis: byId('sharing-basis', HTMLSelectElement).value, reason,
      });
    }, 'Decision recorded.');
    wire('triage-reclassify', (cb, id) => {
      const reason = byId('reclassify-reason', HTMLInputElement).value.trim();
      return cb.reclassify(id, byId('reclassify-kind', HTMLSelectElement).value,
        byId('reclassify-category', HTMLSelectElement).value, reason || undefined);
    }, 'Reclassified.');
    wire('comment-form', (cb, id) => {
      const text = byId('comment-text', HTMLTextAreaElement).value.trim();
      if (!text) throw new UserError('Write a comment first.');
      return cb.comment(id, text);
    }, 'Comment added.');
  }

  /**
   * Run one triage change, then redraw; a refusal or a mistake is said on the page, never thrown away.
   * @param {HTMLElement} form the form (or the block) the change came from: its buttons wait, its fields empty
   * @param {(cb: Casebook, id: string) => Promise<unknown>} run
   * @param {string} done
   */
  async act(form, run, done) {
    const casebook = this.casebook;
    const id = this.id;
    if (!casebook || !id) return;
    const buttons = Array.from(form.querySelectorAll('button'));
    for (const b of buttons) b.disabled = true;
    try {
      await run(casebook, id);
      for (const el of Array.from(form.querySelectorAll('textarea, input'))) {
        if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) el.value = '';
      }
      this.say(done, true);
      this.hooks.changed();
      await this.render();
    } catch (error) {
      if (error instanceof UserError || (error instanceof Error && error.name === 'NotAllowed')) this.say(error.message, false);
      else {
        this.say('That change could not be saved. Please try again.', false);
        throw error;
      }
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  /** @param {string} text @param {boolean} ok */
  say(text, ok) {
    this.message.textContent = text;
    this.message.classList.toggle('ok', ok);
    this.message.setAttribute('role', ok ? 'status' : 'alert');
  }

  /**
   * @param {Casebook} casebook
   * @param {Session} session
   * @param {string} id
   */
  async show(casebook, session, id) {
    this.casebook = casebook;
    this.session = session;
    this.people = new Map(staff(session.device.directory).map((s) => [s.id, s]));
    if (this.id !== id) this.say('', true);
    this.id = id;
    await this.render();
    if (this.view?.summary.unread) {
      await casebook.markRead(id);
      this.hooks.changed();
    }
  }

  close() {
    this.casebook = null;
    this.session = null;
    this.id = null;
    this.choices.reset();
    this.view = null;
    for (const list of ['concern-fields', 'concern-history', 'concern-actions', 'conflict-list', 'concern-marks', 'concern-outlines']) {
      byId(list, HTMLElement).replaceChildren();
    }
  }

  /** Redraw from the Casebook (after a change of ours, or a pushed event of this concern). */
  async render() {
    const casebook = this.casebook;
    const id = this.id;
    if (!casebook || !id) return;
    const drawing = ++this.drawing;
    const view = await casebook.concern(id);
    if (this.id !== id || drawing !== this.drawing) return; // another concern, or a newer redraw, came meanwhile
    this.view = view;
    if (!view) {
      byId('concern-title', HTMLElement).textContent = 'This concern is not available';
      byId('concern-badges', HTMLElement).replaceChildren();
      byId('concern-fields', HTMLElement).replaceChildren(
        h('div', {}, h('dt', { text: 'Why' }), h('dd', { text: 'It is not on this device, or you can no longer read it.' })));
      for (const part of ['concern-conflicts', 'concern-bodymap', 'triage', 'concern-comment']) byId(part, HTMLElement).hidden = true;
      byId('concern-history', HTMLElement).replaceChildren();
      byId('concern-actions', HTMLElement).replaceChildren();
      return;
    }
    const s = view.summary;
    const names = s.pupils.map((p) => p.name || 'A pupil not on your roster').join(', ') || 'No pupil linked';
    byId('concern-title', HTMLElement).textContent = `${names}: ${s.categoryLabel || label(KIND_LABELS, s.kind)}`;
    byId('concern-badges', HTMLElement).replaceChildren(...[
      h('span', { class: 'tag', text: label(STATUS_LABELS, s.status) }),
      s.alert && h('span', { class: 'tag alert', text: 'Alert' }),
      s.restricted && h('span', { class: 'tag restricted', text: 'Restricted' }),
      view.conflicts.length > 0 && h('span', { class: 'tag conflict', text: 'Edited in two places' }),
      s.retracted && h('span', { class: 'tag', text: 'Withdrawn' }),
      view.missingParents.length > 0 && h('span', { class: 'tag', text: 'Some history has not arrived yet' }),
    ].filter((x) => x instanceof Node));
    this.renderConflicts(view);
    this.renderFields(view);
    this.renderBodyMap(view);
    this.renderActions(view);
    this.renderTriage(view);
    this.renderHistory(view);
  }

  /** @param {string} field @param {any} value @returns {string} */
  value(field, value) {
    if (value === null || value === undefined || value === '') return '';
    switch (field) {
      case 'kind': return label(KIND_LABELS, value);
      case 'category': return this.categories.get(value)?.label ?? value;
      case 'status': return label(STATUS_LABELS, value);
      case 'occurred_at': return formatRecordDate(value);
      case 'assignee': return this.name(value);
      case 'urgent': return value ? 'Yes: the safeguarding team was alerted' : 'No';
      case 'present': return Array.isArray(value) ? value.join('\n') : String(value);
      case 'need_to_know': return Array.isArray(value) ? value.map((p) => this.name(p)).join(', ') : String(value);
      case 'decision': return `${label(DECISION_LABELS, value.decision)}: ${value.rationale}`;
      case 'sharing': return `${value.shared ? 'Shared' : 'Not shared'} with ${value.with} (${label(BASIS_LABELS, value.lawful_basis)}). `
        + `What: ${value.what}. Why: ${value.reason}`;
      case 'body_map': return `${value.length} mark${value.length === 1 ? '' : 's'}`;
      default: return typeof value === 'string' ? value : JSON.stringify(value);
    }
  }

  /** @param {string} userId hex */
  name(userId) {
    return this.people.get(userId)?.name ?? 'Someone who has left';
  }

  /** @param {ConcernView} view */
  renderConflicts(view) {
    const section = byId('concern-conflicts', HTMLElement);
    section.hidden = view.conflicts.length === 0;
    const canResolve = view.canTriage;
    byId('conflict-list', HTMLElement).replaceChildren(...view.conflicts.map((c, n) => {
      const title = `conflict-${n}-title`;
      return h('div', { class: 'conflict', 'data-conflict': c.field, role: 'group', 'aria-labelledby': title },
        h('h3', { id: title, text: label(FIELD_LABELS, c.field) }),
        h('div', { class: 'versions' }, ...c.versions.map((v, i) => {
          const keep = canResolve && h('button', { type: 'button', class: 'secondary', 'data-version': v.eventId,
            text: `Keep version ${i + 1}` });
          if (keep) {
            keep.addEventListener('click', () => void this.act(/** @type {HTMLElement} */ (keep.parentElement),
              (cb, id) => cb.resolveConflict(id, c.field, v.value, c.versions.map((x) => x.eventId)), `Kept version ${i + 1}.`));
          }
          return h('div', { class: 'version' },
            h('p', { class: 'by', text: `Version ${i + 1}: ${v.authorName}, written ${formatTimeSafe(v.deviceTimeMs)}` }),
            h('p', { class: 'value', text: this.value(c.field, v.value) || '(emptied)' }),
            keep);
        })));
    }));
  }

  /** @param {ConcernView} view */
  renderFields(view) {
    const s = view.summary;
    const fields = view.fields;
    const conflicted = new Set(view.conflicts.map((c) => c.field));
    /** @type {[string, Node | string][]} */
    const rows = [];
    /** @param {string} field @param {any} value */
    const add = (field, value) => {
      const text = this.value(field, value);
      if (!text) return;
      const versions = view.conflicts.find((c) => c.field === field)?.versions.length;
      rows.push([label(FIELD_LABELS, field), conflicted.has(field) ? `${text} (one of ${versions} versions)` : text]);
    };
    const pupils = h('ul', { class: 'plain' }, ...s.pupils.map((p) => {
      const open = h('button', { type: 'button', class: 'link-button', 'data-chronology': p.id,
        text: `Chronology of ${p.name || 'a pupil not on your roster'}${p.classLabel ? ` (${p.classLabel})` : ''}` });
      open.addEventListener('click', () => this.hooks.chronology(p.id));
      return h('li', {}, h('span', { text: `${label(ROLE_LABELS, p.role)}: ` }), open);
    }));
    rows.push(['Pupils', pupils]);
    for (const field of ['kind', 'category', 'occurred_at', 'location', 'observed', 'child_words', 'opinion', 'present',
      'immediate_action', 'urgent', 'decision', 'outcome', 'sharing']) {
      add(field, fields[field] ?? view.record[field]);
    }
    add('status', s.status);
    rows.push(['Assigned to', s.assigneeName || 'Nobody yet']);
    if (view.needToKnow.length) rows.push([FIELD_LABELS.need_to_know, view.needToKnow.map((p) => p.name).join(', ')]);
    rows.push(['Logged by', `${s.authorName || 'Unknown'}, ${s.writtenMs ? twoTimes(s.writtenMs, s.receivedMs) : 'time unknown'}`]);
    byId('concern-fields', HTMLElement).replaceChildren(...rows.map(([dt, dd]) => h('div', {}, h('dt', { text: dt }), h('dd', {}, dd))));
  }

  /** @param {ConcernView} view */
  renderBodyMap(view) {
    const marks = view.bodyMap ?? [];
    const section = byId('concern-bodymap', HTMLElement);
    section.hidden = marks.length === 0;
    const outlines = byId('concern-outlines', HTMLElement);
    if (!marks.length) {
      outlines.replaceChildren();
      return;
    }
    const figures = ['front', 'back'].map((side) => {
      const source = document.querySelector(`#outline-${side} svg`);
      const svg = /** @type {SVGSVGElement} */ (source?.cloneNode(true));
      const layer = svg?.querySelector('g.marks');
      if (layer) drawMarks(layer, marks, side);
      return h('figure', { class: 'outline-figure' }, svg ?? null,
        h('figcaption', { class: 'outline-label', text: side === 'front' ? 'Front' : 'Back' }));
    });
    outlines.replaceChildren(...figures);
    const who = new Map(view.summary.pupils.map((p) => [p.id, p.name]));
    byId('concern-marks', HTMLElement).replaceChildren(...marks.map((m, i) => h('li', {
      text: [`${i + 1}. ${label(TYPE_LABELS, m.type)}, ${m.side}`, who.get(m.pupil), m.size_mm && `${m.size_mm} mm`, m.colour,
        m.note].filter(Boolean).join(', '),
    })));
  }

  /** @param {ConcernView} view */
  renderActions(view) {
    const actions = view.actions.filter((a) => !a.retracted);
    byId('concern-no-actions', HTMLElement).hidden = actions.length > 0;
    byId('concern-actions', HTMLElement).replaceChildren(...actions.map((a) => {
      const mayComplete = view.canTriage || a.owner === this.session?.id;
      const done = mayComplete && !a.done && !a.retracted && h('button', { type: 'button', class: 'secondary', text: 'Mark done',
        'aria-label': `Mark done: ${a.text}` });
      if (done) {
        done.addEventListener('click', () => void this.act(/** @type {HTMLElement} */ (done.parentElement),
          (cb, id) => cb.completeAction(id, a.id), 'Action marked done.'));
      }
      return h('li', { class: a.done ? 'done' : a.overdue ? 'overdue' : undefined, 'data-action': a.id },
        h('div', {},
          h('p', { class: 'action-text', text: a.text }),
          h('p', { class: 'action-meta' }, `${a.ownerName || 'Unknown'}${a.due ? `, due ${formatRecordDate(a.due)}` : ''} `,
            a.done ? h('span', { class: 'tag done', text: 'Done' })
              : a.overdue ? h('span', { class: 'tag overdue', text: 'Overdue' }) : '')),
        done);
    }));
  }

  /** @param {ConcernView} view */
  renderTriage(view) {
    byId('triage', HTMLElement).hidden = !view.canTriage;
    byId('concern-comment', HTMLElement).hidden = false; // every reader may add a comment
    if (!view.canTriage) return;
    const s = view.summary;
    // A redraw (a pushed event, our own change) keeps what the person is choosing; a new concern starts
    // from its own state.
    this.choices.begin(s.id);
    /** @param {string} id @param {string} state */
    const pick = (id, state) => this.choices.pick(id, byId(id, HTMLSelectElement).value, state);
    const everyone = [...this.people.values()];
    const team = everyone.filter((p) => p.roles.includes('safeguarding'));
    options(byId('assign-to', HTMLSelectElement), [['', 'Nobody'], ...team.map((p) => /** @type {[string, string]} */ ([p.id, p.name]))],
      pick('assign-to', s.assignee ?? ''));
    options(byId('status-to', HTMLSelectElement), Object.entries(STATUS_LABELS), pick('status-to', s.status));
    options(byId('action-owner', HTMLSelectElement), everyone.map((p) => [p.id, p.name]), pick('action-owner', this.session?.id ?? ''));
    const named = new Set(view.needToKnow.map((p) => p.id));
    options(byId('need-person', HTMLSelectElement), [['', 'Choose a member of staff'],
      ...everyone.filter((p) => !named.has(p.id) && !p.roles.includes('safeguarding'))
        .map((p) => /** @type {[string, string]} */ ([p.id, p.name]))],
      pick('need-person', ''));
    byId('reclassify-kind', HTMLSelectElement).value = pick('reclassify-kind', s.kind);
    byId('reclassify-category', HTMLSelectElement).value = pick('reclassify-category', s.category);
    byId('restrict-state', HTMLElement).textContent = s.restricted
      ? 'Restricted: only the safeguarding team and named staff can read it.'
      : 'Not restricted: the pupils\' teachers can read it too.';
    byId('restrict-toggle', HTMLButtonElement).textContent = s.restricted ? 'Lift restriction' : 'Restrict';
  }

  /** @param {ConcernView} view */
  renderHistory(view) {
    byId('concern-history', HTMLElement).replaceChildren(...view.history.map((e) => {
      const roles = e.authorRoles.map((r) => label(STAFF_ROLE_LABELS, r)).join(', ');
      const late = e.receivedMs !== null && e.receivedMs - e.deviceTimeMs > 2 * 60_000;
      return h('li', { 'data-event': e.eventId, 'data-type': e.type, class: e.flags.length ? 'flagged' : undefined },
        h('p', { class: 'what', text: e.text }),
        h('p', { class: 'who', text: `${e.authorName || 'Unknown'}${roles ? `, ${roles}` : ''}` }),
        h('p', { class: late ? 'when late' : 'when', text: twoTimes(e.deviceTimeMs, e.receivedMs) }),
        e.flags.includes('conflict') ? h('p', { class: 'who', text: 'Made at the same time as another change (see above).' }) : null,
        e.flags.includes('not_authorised') ? h('p', { class: 'who', text: 'Not applied: its author was not allowed to make it.' }) : null);
    }));
  }
}

/** A mistake by the person using the form (said on the page; nothing is written). */
class UserError extends Error {}

/** @param {number} ms */
function formatTimeSafe(ms) {
  if (!ms) return 'at an unknown time';
  return new Date(ms).toLocaleString('en-GB', { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}
