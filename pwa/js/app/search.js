// Search across everything this person may read: the Casebook searches its decrypted text in memory (nothing
// searchable is ever at rest unsealed, and no query leaves the device). Results are drawn a page at a time.

import { PAGE, caseRow } from './inbox.js';
import { byId } from './ui.js';

/** @typedef {import('../review/casebook.js').Casebook} Casebook */
/** @typedef {import('../review/casebook.js').SearchHit} SearchHit */

const DEBOUNCE_MS = 200;

export class SearchPage {
  /** @param {{open: (id: string) => void}} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Casebook | null} */
    this.casebook = null;
    /** @type {SearchHit[]} */
    this.hits = [];
    this.shown = PAGE;
    this.asked = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.pending = null;
    this.input = byId('search-input', HTMLInputElement);
    this.list = byId('search-results', HTMLUListElement);
    this.more = byId('search-more', HTMLButtonElement);
    this.input.addEventListener('input', () => {
      if (this.pending) clearTimeout(this.pending);
      this.pending = setTimeout(() => void this.run(), DEBOUNCE_MS);
    });
    byId('search-form', HTMLFormElement).addEventListener('submit', (event) => {
      event.preventDefault();
      if (this.pending) clearTimeout(this.pending);
      void this.run();
    });
    this.more.addEventListener('click', () => {
      const next = this.list.children.length;
      this.shown += PAGE;
      this.draw();
      const first = this.list.children[next]?.querySelector('button');
      if (first instanceof HTMLElement) first.focus();
    });
  }

  /** @param {Casebook} casebook */
  attach(casebook) {
    this.casebook = casebook;
  }

  /** Forget the query and its results (on lock). */
  detach() {
    if (this.pending) clearTimeout(this.pending);
    this.casebook = null;
    this.input.value = '';
    this.hits = [];
    this.list.replaceChildren();
    this.more.hidden = true;
    byId('search-summary', HTMLElement).textContent = '';
  }

  /** Search again (after typing, or when new entries arrive while results are shown). */
  async run() {
    const casebook = this.casebook;
    if (!casebook) return;
    const text = this.input.value.trim();
    const asked = ++this.asked;
    const hits = text.length >= 2 ? await casebook.search(text) : [];
    if (asked !== this.asked || this.casebook !== casebook) return; // a newer search, or locked meanwhile
    this.hits = hits;
    this.shown = PAGE;
    byId('search-summary', HTMLElement).textContent = text.length < 2 ? 'Type at least two letters.'
      : hits.length ? `${hits.length} ${hits.length === 1 ? 'entry matches' : 'entries match'}.` : 'Nothing matches.';
    this.draw();
  }

  draw() {
    const page = this.hits.slice(0, this.shown);
    this.list.replaceChildren(...page.map((hit) => {
      // What matched, unless the row already shows it (the excerpt, names and category are on the row).
      const shown = `${hit.summary.excerpt} ${hit.summary.categoryLabel} ${hit.summary.pupils.map((p) => p.name).join(' ')}`
        .toLowerCase().replace(/…$/, '');
      const more = hit.matches.filter((m) => !shown.includes(m.toLowerCase().slice(0, 60))).slice(0, 3);
      return caseRow(hit.summary, this.hooks.open, more.length ? `Also matches: ${more.join(' · ')}` : undefined);
    }));
    this.more.hidden = this.hits.length <= page.length;
    this.more.textContent = `Show more (${this.hits.length - page.length} more)`;
  }
}
