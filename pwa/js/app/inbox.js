// The live inbox: every concern this person may read, alert-flagged first, unread ones marked, with filters by
// status, category, class and date. Rows come from the Casebook's summaries (no envelope is opened to list
// them) and are drawn a page at a time, so a device holding 20,000 concerns shows the first rows at once.
// New concerns appear while the page is open: the Casebook's 'changed' event redraws the rows shown.

import { KIND_LABELS, STATUS_LABELS, classes, formatRecordDate, label } from './labels.js';
import { byId, formatTime, h } from './ui.js';

/** @typedef {import('../review/casebook.js').Casebook} Casebook */
/** @typedef {import('../review/casebook.js').Summary} Summary */
/** @typedef {import('../review/casebook.js').InboxFilter} InboxFilter */
/** @typedef {import('../sync/writer.js').Category} Category */
/** @typedef {import('./people.js').Session} Session */

export const PAGE = 50;

/**
 * One concern as a row (the inbox and search use it): a button that opens it.
 * @param {Summary} s
 * @param {(id: string) => void} open
 * @param {string} [extra] a line under the row (search: what matched)
 */
export function caseRow(s, open, extra) {
  const names = s.pupils.map((p) => p.name || 'A pupil not on your roster').join(', ') || 'No pupil linked';
  const flags = [
    s.alert && h('span', { class: 'tag alert', text: 'Alert' }),
    s.unread && h('span', { class: 'tag unread', text: 'Unread' }),
    s.restricted && h('span', { class: 'tag restricted', text: 'Restricted' }),
    s.conflicted && h('span', { class: 'tag conflict', text: 'Edited in two places' }),
    s.overdueActions > 0 && h('span', { class: 'tag overdue', text: `${s.overdueActions} overdue` }),
    s.retracted && h('span', { class: 'tag', text: 'Withdrawn' }),
  ].filter(Boolean);
  const classLabels = [...new Set(s.pupils.map((p) => p.classLabel).filter(Boolean))].join(', ');
  const button = h('button', { type: 'button', class: 'case' },
    h('span', { class: 'case-title', text: `${names}: ${s.categoryLabel || label(KIND_LABELS, s.kind)}` }),
    h('span', { class: 'case-meta' },
      h('span', { text: formatRecordDate(s.occurredAt) }),
      h('span', { text: label(STATUS_LABELS, s.status) }),
      classLabels && h('span', { text: `Class ${classLabels}` }),
      s.assigneeName && h('span', { text: `Assigned to ${s.assigneeName}` }),
      s.receivedMs > 0 && h('span', { text: `Received ${formatTime(s.receivedMs)}` })),
    s.excerpt && h('span', { class: 'case-excerpt', text: s.excerpt }),
    extra && h('span', { class: 'case-meta', text: extra }),
    flags.length > 0 && h('span', { class: 'case-flags' }, ...flags));
  button.addEventListener('click', () => open(s.id));
  return h('li', { 'data-concern': s.id, 'data-unread': s.unread ? 'true' : 'false', 'data-alert': s.alert ? 'true' : 'false' },
    button);
}

/** YYYY-MM-DD (local midnight) to ms, or undefined. @param {string} value @param {number} [days] */
function dayMs(value, days = 0) {
  if (!value) return undefined;
  const [y, m, d] = value.split('-').map(Number);
  return new Date(y, m - 1, d + days).getTime();
}

export class Inbox {
  /**
   * @param {{categories: Category[], open: (id: string) => void, counted: (unread: number) => void}} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Casebook | null} */
    this.casebook = null;
    this.shown = PAGE;
    this.list = byId('inbox-list', HTMLUListElement);
    this.more = byId('inbox-more', HTMLButtonElement);
    this.form = byId('inbox-filter-form', HTMLFormElement);
    this.inputs = {
      status: byId('filter-status', HTMLSelectElement),
      category: byId('filter-category', HTMLSelectElement),
      classId: byId('filter-class', HTMLSelectElement),
      from: byId('filter-from', HTMLInputElement),
      to: byId('filter-to', HTMLInputElement),
      unread: byId('filter-unread', HTMLInputElement),
    };
    this.inputs.category.append(...hooks.categories.map((c) => h('option', { value: c.id, text: c.label })));
    const refilter = () => {
      this.shown = PAGE;
      this.render();
    };
    this.form.addEventListener('change', refilter);
    this.form.addEventListener('submit', (event) => event.preventDefault());
    this.form.addEventListener('reset', () => setTimeout(refilter, 0));
    this.more.addEventListener('click', () => {
      const next = this.list.children.length;
      this.shown += PAGE;
      this.render();
      const first = this.list.children[next]?.querySelector('button');
      if (first instanceof HTMLElement) first.focus();
    });
  }

  /**
   * @param {Casebook} casebook
   * @param {Session} session
   * @param {'teacher' | 'team'} view
   */
  attach(casebook, session, view) {
    this.casebook = casebook;
    this.shown = PAGE;
    this.form.reset();
    const own = view === 'teacher' ? session.id : undefined;
    this.inputs.classId.replaceChildren(h('option', { value: '', text: view === 'teacher' ? 'All my classes' : 'Any class' }),
      ...classes(session.device.directory, own).map((c) => h('option', { value: c.id, text: c.label })));
    byId('inbox-title', HTMLElement).textContent = view === 'teacher' ? 'My classes' : 'Inbox';
  }

  /** The inbox before the Casebook has opened: empty, saying it is opening (render() replaces it). */
  loading() {
    delete byId('screen-inbox', HTMLElement).dataset.ready;
    this.list.replaceChildren();
    this.more.hidden = true;
    byId('inbox-summary', HTMLElement).textContent = '';
    byId('inbox-waiting', HTMLElement).hidden = true;
    const empty = byId('inbox-empty', HTMLElement);
    empty.textContent = 'Opening the records held on this device…';
    empty.hidden = false;
  }

  detach() {
    this.casebook = null;
    delete byId('screen-inbox', HTMLElement).dataset.ready;
    this.list.replaceChildren();
    byId('inbox-summary', HTMLElement).textContent = '';
  }

  /** @returns {InboxFilter} */
  filter() {
    const i = this.inputs;
    /** @type {InboxFilter} */
    const f = {};
    if (i.status.value) f.status = i.status.value;
    if (i.category.value) f.category = i.category.value;
    if (i.classId.value) f.classId = i.classId.value;
    const from = dayMs(i.from.value);
    const to = dayMs(i.to.value, 1);
    if (from !== undefined) f.from = from;
    if (to !== undefined) f.to = to;
    if (i.unread.checked) f.unread = true;
    return f;
  }

  /** Draw the first `shown` rows of the filtered inbox, keeping the focus on the row that had it. */
  render() {
    const casebook = this.casebook;
    if (!casebook) return;
    byId('screen-inbox', HTMLElement).dataset.ready = ''; // drawn from the Casebook (tests wait on it)
    const focused = document.activeElement?.closest('[data-concern]')?.getAttribute('data-concern');
    const filter = this.filter();
    const rows = casebook.inbox(filter);
    const unread = casebook.unreadCount();
    this.hooks.counted(unread);
    const page = rows.slice(0, this.shown);
    this.list.replaceChildren(...page.map((s) => caseRow(s, this.hooks.open)));
    this.more.hidden = rows.length <= page.length;
    this.more.textContent = `Show more (${rows.length - page.length} more)`;
    const active = Object.keys(filter).length;
    byId('inbox-filter-note', HTMLElement).textContent = active ? `(${active} on)` : '';
    const one = rows.length === 1;
    const matching = active ? ` ${one ? 'matches' : 'match'} the filters` : '';
    byId('inbox-summary', HTMLElement).textContent = rows.length
      ? `${rows.length} ${one ? 'entry' : 'entries'}${matching}, ${unread} unread in all.` : '';
    this.renderWaiting(casebook);
    const empty = byId('inbox-empty', HTMLElement);
    empty.hidden = rows.length > 0;
    empty.textContent = active ? 'Nothing matches these filters.' : 'Nothing here yet. New concerns appear here as soon as they arrive.';
    if (focused) {
      const again = this.list.querySelector(`[data-concern="${focused}"] button`);
      if (again instanceof HTMLElement) again.focus({ preventScroll: true });
    }
  }

  /**
   * Say how many entries this device holds but cannot open yet, and why (docs/PROTOCOL.md 12.1): they open
   * by themselves when the keys or the directory arrive.
   * @param {Casebook} casebook
   */
  renderWaiting(casebook) {
    const { keys, device } = casebook.waiting();
    const note = byId('inbox-waiting', HTMLElement);
    const entries = (/** @type {number} */ n, /** @type {string} */ one, /** @type {string} */ many) => `${n} ${n === 1 ? one : many}`;
    const parts = [];
    if (keys) parts.push(`${entries(keys, 'entry waits', 'entries wait')} for keys from the safeguarding team.`);
    if (device) {
      parts.push(`${entries(device, 'entry waits', 'entries wait')} until ${device === 1 ? 'its author\'s device is' : 'their authors\' devices are'} approved.`);
    }
    note.textContent = parts.join(' ');
    note.hidden = parts.length === 0;
    note.dataset.keys = String(keys);
    note.dataset.device = String(device);
  }
}
