// The review side of the app, by role: which sections an unlocked person gets, and the screens behind them.
//
// - A contributor (any staff who only logs) gets "Log a concern" and nothing else: no Casebook is opened, so
//   nothing pulled is ever on their screen.
// - A teacher gets "Log a concern" and "My classes": the concerns about pupils in their classes that are not
//   restricted (the Casebook never holds or lists a restricted one for them: no row, no count).
// - The SEN team and the safeguarding team get "Log a concern", "Inbox" and "Search"; only the safeguarding
//   team gets the triage controls on a concern's page.
//
// The inbox, a concern, a pupil's chronology and search redraw live on the Casebook's 'changed' event.

import { Casebook } from '../review/casebook.js';
import { hex } from '../sync/protocol.js';
import { ChronologyPage } from './chronology.js';
import { ConcernPage } from './concern.js';
import { Inbox } from './inbox.js';
import { SearchPage } from './search.js';
import { byId, showScreen } from './ui.js';

/** @typedef {import('./people.js').Session} Session */
/** @typedef {import('../sync/writer.js').Category} Category */
/** @typedef {'contributor' | 'teacher' | 'team'} View */

/**
 * What this person's roles let them see.
 * @param {string[]} roles
 * @returns {View}
 */
export function viewOf(roles) {
  if (roles.includes('safeguarding') || roles.includes('sen')) return 'team';
  if (roles.includes('teacher')) return 'teacher';
  return 'contributor';
}

const NAV = /** @type {const} */ (['nav-capture', 'nav-inbox', 'nav-search']);

export class Review {
  /**
   * @param {{categories: Category[], showCapture: () => void, wrote: () => void}} hooks  wrote: a triage
   *   change is in the outbox (send it now)
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Session | null} */
    this.session = null;
    /** @type {Casebook | null} */
    this.casebook = null;
    /** @type {View} */
    this.view = 'contributor';
    /** @type {(() => void) | null} */
    this.unsubscribe = null;
    /** @type {string[]} where "Back" goes: the screens before the one shown */
    this.trail = [];
    this.inbox = new Inbox({
      categories: hooks.categories, open: (id) => void this.openConcern(id), counted: (n) => this.counted(n),
    });
    this.concern = new ConcernPage({
      categories: hooks.categories, back: () => this.back(), chronology: (pupil) => void this.openChronology(pupil),
      changed: () => {
        this.refreshCount();
        this.hooks.wrote();
      },
    });
    this.chronology = new ChronologyPage({
      categories: hooks.categories, back: () => this.back(), open: (id) => void this.openConcern(id),
      school: () => this.schoolName(), audited: () => this.hooks.wrote(),
    });
    this.search = new SearchPage({ open: (id) => void this.openConcern(id) });
    for (const id of NAV) {
      const button = byId(id, HTMLButtonElement);
      button.addEventListener('click', () => this.go(button.dataset.screen ?? 'screen-capture'));
    }
    document.addEventListener('cairn:screen', (event) => {
      const shown = /** @type {CustomEvent<string>} */ (event).detail;
      for (const id of NAV) {
        const button = byId(id, HTMLButtonElement);
        const current = button.dataset.screen === shown || (id === 'nav-inbox' && ['screen-concern', 'screen-chronology'].includes(shown)
          && this.trail[0] !== 'screen-search') || (id === 'nav-search' && ['screen-concern', 'screen-chronology'].includes(shown)
          && this.trail[0] === 'screen-search');
        if (current) button.setAttribute('aria-current', 'page');
        else button.removeAttribute('aria-current');
      }
    });
  }

  /**
   * After unlock: show the sections this person's roles allow and, for a reader, open their Casebook.
   * @param {Session} session
   */
  async open(session) {
    this.session = session;
    this.view = viewOf(session.record.roles);
    const nav = byId('sections', HTMLElement);
    nav.hidden = this.view === 'contributor';
    byId('nav-inbox', HTMLButtonElement).hidden = this.view === 'contributor';
    byId('nav-search', HTMLButtonElement).hidden = this.view !== 'team';
    byId('nav-inbox-label', HTMLElement).textContent = this.view === 'teacher' ? 'My classes' : 'Inbox';
    if (this.view === 'contributor') return;
    performance.mark('cairn:casebook-load');
    const casebook = await Casebook.load(session, { categories: this.hooks.categories });
    if (this.session !== session) return; // locked meanwhile
    this.casebook = casebook;
    this.inbox.attach(casebook, session, this.view === 'teacher' ? 'teacher' : 'team');
    this.search.attach(casebook);
    this.unsubscribe = casebook.on('changed', ({ ids }) => this.changed(ids));
    this.refreshCount();
    const shown = this.current(); // a section tapped while the Casebook opened
    if (shown === 'screen-inbox') this.inbox.render();
    else if (shown === 'screen-search') void this.search.run();
  }

  /** On lock: forget every decrypted thing on screen. */
  close() {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.casebook?.close(); // nothing more is written or decrypted under the keys being locked away
    this.casebook = null;
    this.session = null;
    this.trail = [];
    this.inbox.detach();
    this.concern.close();
    this.chronology.close();
    this.search.detach();
    byId('sections', HTMLElement).hidden = true;
    this.counted(0);
  }

  /** The section shown now, if it is one of ours. */
  current() {
    for (const id of ['screen-inbox', 'screen-concern', 'screen-chronology', 'screen-search']) {
      if (!byId(id, HTMLElement).hidden) return id;
    }
    return null;
  }

  /** @param {string} screen a section from the navigation */
  go(screen) {
    this.trail = [];
    if (screen === 'screen-capture') {
      this.hooks.showCapture();
      return;
    }
    if (!this.session || this.view === 'contributor') return;
    // A tap while the Casebook still opens is not lost: the section shows at once, saying so, and fills
    // when the load ends (open() renders it then).
    if (screen === 'screen-inbox') {
      if (this.casebook) this.inbox.render();
      else this.inbox.loading();
      showScreen('screen-inbox');
    } else if (screen === 'screen-search' && this.view === 'team') {
      showScreen('screen-search', byId('search-input', HTMLInputElement));
      if (this.casebook) void this.search.run();
    }
  }

  /** @param {string} id */
  async openConcern(id) {
    const casebook = this.casebook;
    const session = this.session;
    if (!casebook || !session) return;
    const from = this.current();
    if (from && from !== 'screen-concern') this.trail.push(from);
    await this.concern.show(casebook, session, id);
    showScreen('screen-concern');
  }

  /** @param {string} pupilId */
  async openChronology(pupilId) {
    const casebook = this.casebook;
    const session = this.session;
    if (!casebook || !session) return;
    const from = this.current();
    if (from && from !== 'screen-chronology') this.trail.push(from);
    await this.chronology.show(casebook, session, pupilId);
    showScreen('screen-chronology');
  }

  back() {
    const to = this.trail.pop() ?? 'screen-inbox';
    if (to === 'screen-concern' && this.concern.id) {
      void this.concern.render().then(() => showScreen('screen-concern'));
    } else if (to === 'screen-chronology' && this.chronology.pupilId) {
      void this.chronology.render().then(() => showScreen('screen-chronology'));
    } else if (to === 'screen-search') {
      this.search.draw();
      showScreen('screen-search');
    } else {
      this.inbox.render();
      const from = this.concern.id && document.querySelector(`#inbox-list [data-concern="${this.concern.id}"] button`);
      showScreen('screen-inbox', from instanceof HTMLElement ? from : undefined); // back on the row it left
    }
  }

  /**
   * New or changed concerns (pulled, pushed live, or written here): redraw what is on screen.
   * @param {string[]} ids
   */
  changed(ids) {
    const shown = this.current();
    if (shown === 'screen-inbox') this.inbox.render();
    else this.refreshCount();
    if (shown === 'screen-concern' && this.concern.id && ids.includes(this.concern.id)) void this.concern.render();
    if (shown === 'screen-chronology') void this.chronology.render();
    if (shown === 'screen-search' && this.search.input.value.trim()) void this.search.run();
  }

  refreshCount() {
    if (this.casebook) this.counted(this.casebook.unreadCount());
  }

  /** @param {number} unread */
  counted(unread) {
    const badge = byId('unread-count', HTMLElement);
    badge.textContent = String(unread);
    badge.dataset.count = String(unread);
    badge.hidden = unread === 0;
    byId('unread-label', HTMLElement).textContent = unread ? `(${unread} unread)` : '';
  }

  /** The school's name for a printed heading (the directory's, when it gives one). */
  schoolName() {
    const name = this.session?.device.schoolName ?? this.session?.record.schoolName;
    if (name) return name;
    const id = this.session ? hex(this.session.record.schoolId) : '';
    return id ? `School ${id.slice(0, 8)}` : 'School';
  }
}
