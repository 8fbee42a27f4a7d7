// The pupil picker (searching the roster decrypted on this device, by name and class) and the category picker
// (searching the school's categories). Results are plain buttons: tap, or Tab and Enter.

import { ROLES } from '../record.js';
import { byId, h } from './ui.js';

/** @typedef {import('./people.js').Pupil} Pupil */
/** @typedef {import('../sync/writer.js').Category} Category */
/** @typedef {Pupil & {role: string}} Linked */

const ROLE_LABELS = /** @type {Record<string, string>} */ ({
  subject: 'The entry is about them', victim: 'Harmed', alleged_perpetrator: 'Said to have caused harm', witness: 'Saw it',
  other: 'Other',
});
const MAX_RESULTS = 8;

/** @param {string} s */
function fold(s) {
  return s.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
}

/**
 * Whether every word typed starts some word of `text` ("ma" finds "Maple" and "Mara", not "Thomas").
 * @param {string[]} typed folded words
 * @param {string} text
 */
function matches(typed, text) {
  const words = fold(text).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  return typed.every((t) => words.some((w) => w.startsWith(t)));
}

export class PupilPicker {
  /** @param {{onChange: () => void}} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Pupil[]} */
    this.roster = [];
    /** @type {Linked[]} */
    this.chosen = [];
    this.search = byId('pupil-search', HTMLInputElement);
    this.results = byId('pupil-results', HTMLUListElement);
    this.list = byId('pupil-chosen', HTMLUListElement);
    this.search.addEventListener('input', () => this.renderResults());
    this.search.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.results.querySelector('button')?.click();
      }
    });
  }

  /** @param {Pupil[]} roster */
  setRoster(roster) {
    this.roster = roster;
    this.search.placeholder = roster.length ? `${roster.length} pupils` : 'No roster on this device yet';
  }

  /** @param {{pupil: string, role: string}[]} linked */
  set(linked) {
    this.chosen = linked.map(({ pupil, role }) => {
      const known = this.roster.find((p) => p.id === pupil);
      return { id: pupil, name: known?.name ?? 'Unknown pupil', className: known?.className ?? '', role };
    });
    this.search.value = '';
    this.renderResults();
    this.renderChosen();
  }

  renderResults() {
    const words = fold(this.search.value).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    if (!words.length) {
      this.results.replaceChildren();
      return;
    }
    const taken = new Set(this.chosen.map((p) => p.id));
    const found = this.roster
      .filter((p) => !taken.has(p.id))
      .filter((p) => matches(words, `${p.name} ${p.className}`))
      .slice(0, MAX_RESULTS);
    this.results.replaceChildren(...(found.length ? found.map((p) => {
      const button = h('button', { type: 'button' }, p.name, h('span', { class: 'sub', text: p.className }));
      button.addEventListener('click', () => this.add(p));
      return h('li', {}, button);
    }) : [h('li', { class: 'muted', text: 'No pupil matches. Try part of the first name, or the class.' })]));
  }

  /** @param {Pupil} pupil */
  add(pupil) {
    this.chosen.push({ ...pupil, role: 'subject' });
    this.search.value = '';
    this.renderResults();
    this.renderChosen();
    this.search.focus();
    this.hooks.onChange();
  }

  renderChosen() {
    this.list.replaceChildren(...this.chosen.map((p, i) => {
      const roleId = `pupil-role-${i}`;
      const role = h('select', { id: roleId }, ...ROLES.map((r) => h('option', { value: r, text: ROLE_LABELS[r] ?? r })));
      role.value = p.role;
      role.addEventListener('change', () => {
        p.role = role.value;
        this.hooks.onChange();
      });
      const remove = h('button', { type: 'button', class: 'quiet', 'aria-label': `Remove ${p.name}`, text: 'Remove' });
      remove.addEventListener('click', () => {
        this.chosen.splice(i, 1);
        this.renderChosen();
        this.search.focus();
        this.hooks.onChange();
      });
      return h('li', {},
        h('span', {}, h('span', { class: 'name', text: p.name }), h('span', { class: 'sub muted', text: ` ${p.className}` })),
        h('div', { class: 'field' }, h('label', { for: roleId, text: `How ${p.name} is involved` }), role),
        remove);
    }));
  }
}

export class CategoryPicker {
  /** @param {{onChange: () => void}} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Category[]} */
    this.categories = [];
    /** @type {Category | null} */
    this.chosen = null;
    this.search = byId('category-search', HTMLInputElement);
    this.results = byId('category-results', HTMLUListElement);
    this.shown = byId('category-chosen', HTMLElement);
    this.kind = byId('kind', HTMLSelectElement);
    this.search.addEventListener('input', () => this.renderResults());
    this.search.addEventListener('focus', () => {
      if (!this.chosen) this.renderResults();
    });
    this.search.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        this.results.querySelector('button')?.click();
      }
    });
  }

  /** @param {Category[]} categories */
  setCategories(categories) {
    this.categories = categories;
  }

  /** @param {string | null} id */
  set(id) {
    this.chosen = this.categories.find((c) => c.id === id) ?? null;
    this.search.value = '';
    this.results.replaceChildren();
    this.renderChosen();
  }

  renderResults() {
    const words = fold(this.search.value).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    const found = this.categories
      .filter((c) => matches(words, `${c.label} ${c.group.replace(/_/g, ' ')}`))
      .slice(0, words.length ? 12 : 60);
    this.results.replaceChildren(...(found.length ? found.map((c) => {
      const button = h('button', { type: 'button' }, c.label);
      button.addEventListener('click', () => this.choose(c));
      return h('li', {}, button);
    }) : [h('li', { class: 'muted', text: 'No category matches. Try another word, or choose Other pastoral.' })]));
  }

  /** @param {Category} category */
  choose(category) {
    this.chosen = category;
    this.kind.value = kindFor(category);
    this.search.value = '';
    this.results.replaceChildren();
    this.renderChosen();
    this.kind.focus();
    this.hooks.onChange();
  }

  renderChosen() {
    const c = this.chosen;
    this.shown.hidden = !c;
    if (!c) {
      this.shown.replaceChildren();
      return;
    }
    this.shown.replaceChildren(h('span', {}, c.label, c.sensitivity === 'restricted'
      ? h('span', { class: 'restricted', text: 'Restricted: only the safeguarding team will be able to read this.' }) : null));
  }
}

/**
 * The entry type a category suggests; the person can change it.
 * @param {Category} category
 */
export function kindFor(category) {
  if (category.group === 'behaviour') return 'behaviour_incident';
  if (category.group === 'sen') return 'sen_note';
  if (category.group === 'positive' || category.group === 'pastoral') return 'general_note';
  return 'safeguarding_concern';
}
