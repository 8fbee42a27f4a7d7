// A pupil's chronology: every concern, behaviour incident, parental contact and note this person may read about
// one pupil, in the order they happened, with the pupil's role in each; filtered by type and category. Printing
// uses the print style sheet (the browser makes the PDF), headed with the school, the pupil, the date and who
// printed it; each print is recorded as an audited event first.

import { KIND_LABELS, ROLE_LABELS, STATUS_LABELS, formatRecordDate, label, twoTimes } from './labels.js';
import { byId, h } from './ui.js';

/** @typedef {import('../review/casebook.js').Casebook} Casebook */
/** @typedef {import('../review/casebook.js').Chronology} Chronology */
/** @typedef {import('../review/casebook.js').ChronologyEntry} ChronologyEntry */
/** @typedef {import('../sync/writer.js').Category} Category */
/** @typedef {import('./people.js').Session} Session */

const PAGE = 200;

export class ChronologyPage {
  /**
   * @param {{categories: Category[], back: () => void, open: (id: string) => void, school: () => string,
   *   audited: () => void}} hooks  audited: a print is in the audit queue (send it now)
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Casebook | null} */
    this.casebook = null;
    /** @type {Session | null} */
    this.session = null;
    /** @type {string | null} */
    this.pupilId = null;
    /** @type {Chronology | null} */
    this.data = null;
    this.shown = PAGE;
    this.drawing = 0;
    this.list = byId('chronology-list', HTMLOListElement);
    this.kind = byId('chronology-kind', HTMLSelectElement);
    this.category = byId('chronology-category', HTMLSelectElement);
    this.more = byId('chronology-more', HTMLButtonElement);
    this.message = byId('chronology-message', HTMLElement);
    this.kind.append(...Object.entries(KIND_LABELS).map(([value, text]) => h('option', { value, text })));
    this.category.append(...hooks.categories.map((c) => h('option', { value: c.id, text: c.label })));
    const refilter = () => {
      this.shown = PAGE;
      void this.render();
    };
    this.kind.addEventListener('change', refilter);
    this.category.addEventListener('change', refilter);
    byId('chronology-filters', HTMLFormElement).addEventListener('submit', (event) => event.preventDefault());
    byId('chronology-back', HTMLButtonElement).addEventListener('click', () => this.hooks.back());
    byId('chronology-print', HTMLButtonElement).addEventListener('click', () => void this.print());
    this.more.addEventListener('click', () => {
      this.shown += PAGE;
      this.draw();
    });
  }

  /**
   * @param {Casebook} casebook
   * @param {Session} session
   * @param {string} pupilId hex
   */
  async show(casebook, session, pupilId) {
    this.casebook = casebook;
    this.session = session;
    if (this.pupilId !== pupilId) {
      this.kind.value = '';
      this.category.value = '';
      this.message.textContent = '';
    }
    this.pupilId = pupilId;
    this.shown = PAGE;
    await this.render();
  }

  close() {
    this.casebook = null;
    this.session = null;
    this.pupilId = null;
    this.data = null;
    this.list.replaceChildren();
    for (const id of ['print-school', 'print-pupil', 'print-when', 'print-by']) byId(id, HTMLElement).textContent = '';
  }

  async render() {
    const casebook = this.casebook;
    const pupilId = this.pupilId;
    if (!casebook || !pupilId) return;
    /** @type {{kinds?: string[], categories?: string[]}} */
    const filter = {};
    if (this.kind.value) filter.kinds = [this.kind.value];
    if (this.category.value) filter.categories = [this.category.value];
    const drawing = ++this.drawing;
    const data = await casebook.chronology(pupilId, filter);
    if (this.pupilId !== pupilId || drawing !== this.drawing) return; // a newer redraw came meanwhile
    this.data = data;
    const who = data.pupil.name || 'A pupil not on your roster';
    byId('chronology-title', HTMLElement).textContent = `Chronology: ${who}${data.pupil.classLabel ? ` (${data.pupil.classLabel})` : ''}`;
    const n = data.entries.length;
    const filtered = Object.keys(filter).length > 0;
    byId('chronology-summary', HTMLElement).textContent = n
      ? `${n} ${n === 1 ? 'entry' : 'entries'}${filtered ? ` ${n === 1 ? 'matches' : 'match'} the filters` : ''}, oldest first.`
      : filtered ? 'Nothing matches these filters.' : 'Nothing recorded about this pupil that you can read.';
    this.draw();
  }

  draw() {
    const data = this.data;
    if (!data) return;
    const page = data.entries.slice(0, this.shown);
    this.list.replaceChildren(...page.map((e) => this.row(e)));
    this.more.hidden = data.entries.length <= page.length;
    this.more.textContent = `Show more (${data.entries.length - page.length} more)`;
  }

  /** @param {ChronologyEntry} e */
  row(e) {
    const open = h('button', {
      type: 'button', class: 'link-button no-print', text: 'Open', 'aria-label': `Open the entry of ${formatRecordDate(e.occurredAt)}`,
    });
    open.addEventListener('click', () => this.hooks.open(e.id));
    const actions = e.actions.map((a) => `${a.done ? 'Done' : 'To do'}: ${a.text} `
      + `(${a.ownerName}${a.due ? `, due ${formatRecordDate(a.due)}` : ''})`);
    return h('li', { 'data-entry': e.id, 'data-kind': e.kind },
      h('div', { class: 'entry-head' },
        h('span', { class: 'entry-date', text: formatRecordDate(e.occurredAt) }),
        h('span', { text: `${label(KIND_LABELS, e.kind)}: ${e.categoryLabel}` }),
        h('span', { class: 'tag', text: label(ROLE_LABELS, e.role) }),
        e.restricted && h('span', { class: 'tag restricted', text: 'Restricted' })),
      h('p', { class: 'entry-text', text: e.observed }),
      e.outcome && h('p', { class: 'entry-text', text: `Outcome: ${e.outcome}` }),
      ...actions.map((a) => h('p', { class: 'entry-meta', text: a })),
      h('p', {
        class: 'entry-meta', text: `${label(STATUS_LABELS, e.status)}. By ${e.authorName || 'unknown'}, ${twoTimes(e.writtenMs, e.receivedMs)}`,
      }),
      open);
  }

  /** Record the print in the audit trail, fill the print heading, then open the browser's print dialog. */
  async print() {
    const casebook = this.casebook;
    const session = this.session;
    const data = this.data;
    if (!casebook || !session || !data || !this.pupilId) return;
    const button = byId('chronology-print', HTMLButtonElement);
    button.disabled = true;
    try {
      await casebook.auditPrint(this.pupilId);
      this.hooks.audited();
    } catch (error) {
      this.message.textContent = 'The print could not be recorded, so it was not printed. Please try again.';
      throw error;
    } finally {
      button.disabled = false;
    }
    this.shown = data.entries.length; // every entry goes on paper
    this.draw();
    byId('print-school', HTMLElement).textContent = this.hooks.school();
    const pupil = `${data.pupil.name || 'a pupil'}${data.pupil.classLabel ? `, class ${data.pupil.classLabel}` : ''}`;
    byId('print-pupil', HTMLElement).textContent = `Chronology of ${pupil}`;
    const now = new Date().toLocaleString('en-GB', { dateStyle: 'long', timeStyle: 'short' });
    byId('print-when', HTMLElement).textContent = `Printed ${now}`;
    byId('print-by', HTMLElement).textContent = `by ${session.name}. Confidential: safeguarding record.`;
    this.message.textContent = '';
    window.print();
  }
}
