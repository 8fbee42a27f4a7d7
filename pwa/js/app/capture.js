// Logging a concern: the form, its encrypted draft, and saving.
//
// A draft is sealed under the person's local key (kind `draft`) a moment after each change, and at once when
// the screen is locked, hidden or left: nothing typed is ever at rest in plaintext. Saving checks the record,
// seals and signs the `created` event into the outbox (sync/writer.js), deletes the draft, and asks for a send.

import { InvalidEvent } from '../record.js';
import { ConcernWriter } from '../sync/writer.js';
import { hex, unhex } from '../sync/protocol.js';
import { BodyMap } from './bodymap.js';
import { CategoryPicker, PupilPicker } from './pickers.js';
import { byId, formatTime, localDateTime } from './ui.js';

/** @typedef {import('./people.js').Session} Session */
/** @typedef {import('../sync/writer.js').Category} Category */
/** @typedef {import('./bodymap.js').Mark} Mark */
/**
 * What the form holds, as the sealed draft keeps it.
 * @typedef {{pupils: {pupil: string, role: string}[], category: string | null, kind: string, occurred_at: string,
 *   location: string, observed: string, child_words: string, present: string, marks: Mark[],
 *   immediate_action: string, urgent: boolean}} FormState
 */

const AUTOSAVE_MS = 700;
const FIELD_NAMES = /** @type {Record<string, string>} */ ({
  category: 'Choose what kind of concern this is.',
  observed: 'Write what you saw or heard.',
  occurred_at: 'Give the date and time it happened.',
  pupils: 'Choose the pupil this is about.',
});

export class Capture {
  /**
   * @param {{categories: Category[], saved: (session: Session) => void}} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Session | null} */
    this.session = null;
    /** @type {Uint8Array | null} */
    this.draftId = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.pending = null;
    this.saving = false;
    this.form = byId('capture-form', HTMLFormElement);
    this.message = byId('capture-message', HTMLElement);
    this.draftState = byId('draft-state', HTMLElement);
    this.fields = {
      kind: byId('kind', HTMLSelectElement),
      occurred_at: byId('occurred-at', HTMLInputElement),
      location: byId('location', HTMLInputElement),
      observed: byId('observed', HTMLTextAreaElement),
      child_words: byId('child-words', HTMLTextAreaElement),
      present: byId('present', HTMLTextAreaElement),
      immediate_action: byId('immediate-action', HTMLTextAreaElement),
      urgent: byId('urgent', HTMLInputElement),
    };
    const changed = () => this.changed();
    this.pupils = new PupilPicker({ onChange: () => { this.bodymap.pupilsChanged(); changed(); } });
    this.categories = new CategoryPicker({ onChange: changed });
    this.categories.setCategories(hooks.categories);
    this.bodymap = new BodyMap({ onChange: changed, pupils: () => this.pupils.chosen });
    this.form.addEventListener('input', changed);
    this.form.addEventListener('change', changed);
    this.fields.urgent.addEventListener('change', () => {
      byId('urgent-help', HTMLElement).hidden = !this.fields.urgent.checked;
    });
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.save();
    });
    const discard = byId('capture-discard', HTMLButtonElement);
    /** @type {ReturnType<typeof setTimeout> | null} */
    let armed = null;
    discard.addEventListener('click', () => {
      if (!armed) { // two taps, so one stray tap never throws an entry away
        discard.textContent = 'Tap again to discard';
        armed = setTimeout(() => { armed = null; discard.textContent = 'Discard draft'; }, 4000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      discard.textContent = 'Discard draft';
      void this.discard();
    });
  }

  /**
   * Open the form for an unlocked person: their roster, and their newest draft if there is one.
   * @param {Session} session
   */
  async open(session) {
    this.session = session;
    this.pupils.setRoster(session.pupils);
    const drafts = (await session.store.drafts(session.id)).sort((a, b) => b.updatedMs - a.updatedMs);
    const newest = drafts[0];
    this.message.textContent = '';
    this.message.classList.remove('ok');
    if (newest) {
      this.draftId = unhex(newest.id);
      this.fill(/** @type {FormState} */ (session.openJson('draft', this.draftId, newest.sealed)));
      this.draftState.textContent = `Your unfinished entry from ${formatTime(newest.updatedMs)} is back. It is kept on this device, encrypted.`;
    } else {
      this.reset();
    }
  }

  /** Save the draft now, then forget the person (their keys are wiped by the caller). */
  async close() {
    await this.flushDraft();
    this.session = null;
    this.reset();
    this.draftState.textContent = '';
  }

  reset() {
    this.draftId = null;
    this.fill({
      pupils: [], category: null, kind: 'safeguarding_concern', occurred_at: localDateTime(), location: '', observed: '',
      child_words: '', present: '', marks: [], immediate_action: '', urgent: false,
    });
    this.draftState.textContent = '';
  }

  /** @param {FormState} state */
  fill(state) {
    this.pupils.set(state.pupils);
    this.categories.set(state.category);
    this.fields.kind.value = state.kind;
    this.fields.occurred_at.value = state.occurred_at;
    this.fields.location.value = state.location;
    this.fields.observed.value = state.observed;
    this.fields.child_words.value = state.child_words;
    this.fields.present.value = state.present;
    this.fields.immediate_action.value = state.immediate_action;
    this.fields.urgent.checked = state.urgent;
    byId('urgent-help', HTMLElement).hidden = !state.urgent;
    this.bodymap.pupilsChanged();
    this.bodymap.set(state.marks);
  }

  /** @returns {FormState} */
  state() {
    const f = this.fields;
    return {
      pupils: this.pupils.chosen.map((p) => ({ pupil: p.id, role: p.role })), category: this.categories.chosen?.id ?? null,
      kind: f.kind.value, occurred_at: f.occurred_at.value, location: f.location.value, observed: f.observed.value,
      child_words: f.child_words.value, present: f.present.value, marks: this.bodymap.marks.map((m) => ({ ...m })),
      immediate_action: f.immediate_action.value, urgent: f.urgent.checked,
    };
  }

  /** @param {FormState} s */
  static empty(s) {
    return !s.pupils.length && !s.category && !s.location.trim() && !s.observed.trim() && !s.child_words.trim()
      && !s.present.trim() && !s.marks.length && !s.immediate_action.trim() && !s.urgent;
  }

  changed() {
    if (!this.session) return;
    if (this.pending) clearTimeout(this.pending);
    this.pending = setTimeout(() => void this.flushDraft(), AUTOSAVE_MS);
  }

  /** Seal the form into its draft now (nothing to do if it is empty). */
  async flushDraft() {
    if (this.pending) clearTimeout(this.pending);
    this.pending = null;
    const session = this.session;
    if (!session || this.saving) return;
    const state = this.state();
    if (Capture.empty(state)) {
      if (this.draftId) await session.store.deleteDraft(hex(this.draftId));
      this.draftId = null;
      return;
    }
    this.draftId = this.draftId ?? globalThis.crypto.getRandomValues(new Uint8Array(16));
    const updatedMs = Date.now();
    await session.store.putDraft({
      id: hex(this.draftId), account: session.id, updatedMs, sealed: session.sealJson('draft', this.draftId, state),
    });
    this.draftState.textContent = `Draft kept on this device, encrypted, at ${formatTime(updatedMs)}.`;
  }

  /** @param {FormState} s @returns {Record<string, any>} */
  static record(s) {
    /** @type {Record<string, any>} */
    const record = { kind: s.kind, category: s.category ?? '', occurred_at: s.occurred_at, observed: s.observed };
    const text = (/** @type {string} */ key, /** @type {string} */ value) => {
      if (value.trim()) record[key] = value;
    };
    text('location', s.location.trim());
    text('child_words', s.child_words);
    text('immediate_action', s.immediate_action);
    const present = s.present.split('\n').map((line) => line.trim()).filter(Boolean);
    if (present.length) record.present = present;
    if (s.pupils.length) record.pupils = s.pupils;
    if (s.marks.length) record.body_map = s.marks;
    if (s.urgent) record.urgent = true;
    return record;
  }

  async save() {
    const session = this.session;
    if (!session) return;
    const state = this.state();
    const problems = [];
    if (!state.pupils.length) problems.push(FIELD_NAMES.pupils);
    if (!state.category) problems.push(FIELD_NAMES.category);
    if (!state.observed.trim()) problems.push(FIELD_NAMES.observed);
    if (!state.occurred_at) problems.push(FIELD_NAMES.occurred_at);
    if (problems.length) {
      this.say(problems.join(' '), false);
      return;
    }
    const button = byId('capture-save', HTMLButtonElement);
    button.disabled = true;
    if (this.pending) clearTimeout(this.pending);
    this.pending = null;
    this.saving = true; // no autosave may write a draft of what is being saved
    try {
      performance.mark('cairn:seal-start');
      const writer = new ConcernWriter(session.device, session.outbox, this.hooks.categories);
      await writer.create(Capture.record(state));
      performance.measure('cairn:seal-to-outbox', 'cairn:seal-start');
      if (this.draftId) await session.store.deleteDraft(hex(this.draftId));
      this.reset();
      this.say(navigator.onLine ? 'Saved. Sending it to the safeguarding team now.'
        : 'Saved on this device, encrypted. It will be sent as soon as there is a connection.', true);
      this.hooks.saved(session);
      byId('capture-title', HTMLElement).focus();
    } catch (error) {
      if (error instanceof InvalidEvent) {
        this.say(`Please check: ${Object.keys(error.fields).map((f) => FIELD_NAMES[f] ?? f.replace(/_/g, ' ')).join(', ')}`, false);
      } else {
        this.say('This entry could not be saved. It is still here as a draft; please try again.', false);
        throw error;
      }
    } finally {
      this.saving = false;
      button.disabled = false;
    }
  }

  async discard() {
    if (!this.session) return;
    if (this.draftId) await this.session.store.deleteDraft(hex(this.draftId));
    this.reset();
    this.say('Draft discarded.', true);
  }

  /** @param {string} text @param {boolean} ok */
  say(text, ok) {
    this.message.textContent = text;
    this.message.classList.toggle('ok', ok);
    this.message.setAttribute('role', ok ? 'status' : 'alert');
  }
}
