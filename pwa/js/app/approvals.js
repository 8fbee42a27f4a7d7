// The Approvals page, for a safeguarding keyholder (docs/PROTOCOL.md 13.5, docs/OPERATIONS.md "Approvals").
//
// - What waits: the widenings this device computes itself from the server's `current` rows against the
//   signed directory version it holds (never the server's list), each in plain words, grouped by person or
//   class, with the server's note (who asked, when, why: unsigned) and how long it has waited. The person
//   ticks what they approve; "Approve selected" asks once, repeating the list, then this device signs an
//   approval and the next directory version carrying it (Device.approve). "Decline selected" undoes the
//   requests on the server (POST /api/v1/approvals/decline). Nothing widens without this page.
// - The change log: the approvals of recent versions, each verified on this device against the approving
//   device's key in the directory it holds (an approval that does not verify is shown as such).
// - Keys held by one person or nobody (a risk of losing records), and entries held from devices revoked
//   while offline (read here, then accepted into the record or rejected, kept as evidence).
// Also the keyholder duties (pwa/js/sync/keyholder.js): while an approved keyholder is unlocked and online,
// this device grants what is owed, makes the new key versions leavers leave behind, and, from its Casebook,
// makes again the entry key grants of a keyholder who left the team or lost the device.

import { CryptoError, RECIPIENT_PERSON, RECIPIENT_READER_KEY, envelope, itemFromJson, itemHex, verifyApproval } from '../crypto/index.js';
import { decode } from '../events.js';
import { ApiFailure, Locked } from '../sync/device.js';
import { DirectoryRefused, itemKey, itemsJson } from '../sync/directory.js';
import { runDuties } from '../sync/keyholder.js';
import { b64d, b64e, hex, unhex } from '../sync/protocol.js';
import { grouped, keyLabel, namesFrom } from './changes.js';
import { byId, formatAge, formatTime, h, showScreen } from './ui.js';

/** @typedef {import('./people.js').Session} Session */
/** @typedef {import('../crypto/approval.js').Item} Item */
/** @typedef {import('./changes.js').Names} Names */
/**
 * @typedef {{item: Record<string, unknown>, subject: string, requested_by: {user_id: string, login: string,
 *   display_name: string} | null, requested_ms: number | null, age_ms: number | null, reason: string}} NoteRow
 * @typedef {{version: number, approval_id: string, approver: {user_id: string, login?: string, display_name?: string},
 *   approver_device: string, created_ms: number, items: Record<string, unknown>[], approval: string}} LogRow
 * @typedef {{reader_key_id: string, version: number, purpose: string, holders: string[]}} KeyRow
 * @typedef {{envelope_id: string, author_device: string, login: string, counter: number, device_time_ms: number,
 *   received_ms: number, decision: string | null, envelope: string}} HeldRow
 */

/** How often an unlocked keyholder's device runs its duties while online. */
export const DUTY_MS = 60_000;
/** Change log entries shown, and how many changes an entry shows before they fold away. */
const LOG_SHOWN = 20;
const LOG_OPEN = 6;

/** @param {number} n @param {string} one @param {string} [many] */
const count = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export class ApprovalsScreen {
  /**
   * @param {{back: () => void, problem: (message: string) => void,
   *   concerns: () => import('../sync/keyholder.js').Concerns | null}} hooks `concerns`: the unlocked person's
   *   Casebook, once loaded (the duties make entry key grants again from what it holds)
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Session | null} */
    this.session = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
    /** @type {Promise<unknown> | null} */
    this.running = null;
    /** @type {Map<string, Item>} what the page shows as waiting, by `itemHex` */
    this.shown = new Map();
    /** @type {{action: 'approve' | 'decline', items: Item[]} | null} */
    this.asking = null;
    byId('nav-approvals', HTMLButtonElement).addEventListener('click', () => void this.show());
    byId('approvals-back', HTMLButtonElement).addEventListener('click', () => this.hooks.back());
    byId('approvals-form', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); this.ask('approve'); });
    byId('approvals-decline', HTMLButtonElement).addEventListener('click', () => this.ask('decline'));
    byId('approvals-select-all', HTMLButtonElement).addEventListener('click', () => this.selectAll());
    byId('approvals-confirm-yes', HTMLButtonElement).addEventListener('click', () => void this.confirmed());
    byId('approvals-confirm-no', HTMLButtonElement).addEventListener('click', () => this.closeConfirm());
    byId('approvals-confirm', HTMLDialogElement).addEventListener('close', () => { this.asking = null; });
    addEventListener('online', () => void this.duties());
  }

  /** After unlock: keyholders get the page and their duties. @param {Session} session */
  open(session) {
    this.session = session;
    const keyholder = session.record.roles.includes('safeguarding');
    byId('nav-approvals', HTMLButtonElement).hidden = !keyholder;
    if (keyholder) {
      this.timer = setInterval(() => void this.duties(), DUTY_MS);
      void this.duties();
    }
  }

  close() {
    this.session = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.shown.clear();
    this.closeConfirm();
    byId('nav-approvals', HTMLButtonElement).hidden = true;
    for (const id of ['approvals-groups', 'approvals-log', 'keys-list', 'held-list']) byId(id, HTMLElement).replaceChildren();
  }

  /**
   * One round of keyholder duties, one at a time; offline or refused rounds wait for the next. runDuties
   * does nothing for a person the signed directory does not make an approved keyholder.
   */
  duties() {
    const session = this.session;
    if (!session || !navigator.onLine || this.running) return this.running ?? Promise.resolve(null);
    this.running = runDuties(session.device, this.hooks.concerns())
      .catch((error) => {
        if (error instanceof DirectoryRefused) {
          this.hooks.problem(`The school directory the server sent did not verify (${error.code}). Nothing was granted, `
            + 'and this device keeps the version it had.');
        } else if (!(error instanceof TypeError || error instanceof ApiFailure || error instanceof Locked)) throw error;
        return null; // offline, refused, or locked while it ran: the next round
      })
      .finally(() => {
        this.running = null;
        const root = document.documentElement; // rounds done: a state the browser tests wait on
        root.dataset.keyholderRounds = String(Number(root.dataset.keyholderRounds ?? '0') + 1);
      });
    return this.running;
  }

  async show() {
    if (!this.session) return;
    showScreen('screen-approvals');
    await this.list();
  }

  /** @param {string} text @param {string} kind */
  say(text, kind) {
    const message = byId('approvals-message', HTMLElement);
    message.textContent = text;
    message.dataset.kind = kind;
  }

  async list() {
    const session = this.session;
    if (!session) return;
    const form = byId('approvals-form', HTMLFormElement);
    form.dataset.state = 'loading';
    /** @type {Item[]} */
    let pending = [];
    try {
      pending = await session.device.pending(); // computed here, from `current` and the version held
    } catch (error) {
      if (error instanceof DirectoryRefused) {
        this.say(`The school directory the server sent did not verify (${error.code}): this device approves nothing `
          + 'until it does. Tell the other safeguarding keyholders.', 'refused');
      } else if (error instanceof TypeError || error instanceof ApiFailure) {
        this.say('Approvals need a connection to the server.', 'offline');
        form.dataset.state = 'offline';
        return;
      } else if (error instanceof Locked) return; // locked while it ran: the screen is closed
      else throw error;
    }
    try {
      const [notes, keys, held] = await Promise.all([
        session.device.call('GET', '/api/v1/approvals'),
        session.device.call('GET', '/api/v1/keys/single-holder'),
        session.device.call('GET', '/api/v1/held'),
      ]);
      if (byId('approvals-message', HTMLElement).dataset.kind === 'offline') this.say('', '');
      const names = namesFrom({ held: session.device.directory, current: session.device.serverCurrent, pupils: session.pupils });
      this.showPending(pending, notes.pending, names);
      this.showLog(notes.log, { ...names, past: true });
      this.showKeys(keys.keys);
      this.showHeld(held.held);
      form.dataset.state = 'ready';
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error;
      this.say('Approvals need a connection to the server.', 'offline');
      form.dataset.state = 'offline';
    }
  }

  /**
   * @param {Item[]} items what this device computed
   * @param {NoteRow[]} notes the server's notes, matched to items by what they are about
   * @param {Names} names
   */
  showPending(items, notes, names) {
    const bySubject = new Map(notes.map((n) => [n.subject, n]));
    const now = Date.now();
    this.shown = new Map(items.map((i) => [itemHex(i), i]));
    const groups = grouped(items, names);
    let n = 0;
    byId('approvals-groups', HTMLElement).replaceChildren(...groups.map(({ group, lines }) => h('fieldset', { class: 'group approval-group' },
      h('legend', { text: group.title }),
      lines.length > 2 ? this.groupToggle(group.title, lines.length) : null,
      ...lines.map((line) => {
        const id = `approve-item-${n++}`;
        const note = bySubject.get(itemKey(line.item));
        const waited = note?.requested_ms ? Math.max(0, now - note.requested_ms) : null;
        const who = note?.requested_by ? `${note.requested_by.display_name || note.requested_by.login}` : null;
        const noteText = note && (who || note.reason)
          ? `Server's note (not signed): ${who ? `asked by ${who}` : 'asked'}${note.requested_ms ? `, ${formatTime(note.requested_ms)}` : ''}`
            + `${note.reason ? `: “${note.reason}”` : ''}`
          : 'No note from the server.';
        return h('div', { class: 'approval-item', 'data-item': itemHex(line.item), 'data-kind': line.item.kind },
          h('div', { class: 'check' },
            h('input', { id, type: 'checkbox', value: itemHex(line.item), 'aria-describedby': `${id}-note` }),
            h('label', { for: id, text: line.text })),
          h('p', { id: `${id}-note`, class: 'hint note' }, noteText,
            waited !== null ? h('span', { class: 'waited', text: ` Waiting ${formatAge(waited)}.` }) : null));
      }))));
    const none = !items.length;
    byId('approvals-none', HTMLElement).hidden = !none;
    byId('approvals-actions', HTMLElement).hidden = none;
    byId('approvals-reason-field', HTMLElement).hidden = none;
    byId('approvals-count', HTMLElement).textContent = none ? '' : `${count(items.length, 'change')} waiting.`;
  }

  /**
   * A button that ticks (or clears) every change of one group: a class list of thirty pupils is one decision.
   * @param {string} title
   * @param {number} n
   */
  groupToggle(title, n) {
    const button = h('button', { type: 'button', class: 'quiet group-toggle', text: `Select all ${n}`, 'aria-label': `Select all ${n} changes for ${title}` });
    button.addEventListener('click', () => {
      const boxes = /** @type {HTMLInputElement[]} */ (Array.from(button.closest('fieldset')?.querySelectorAll('input[type=checkbox]') ?? []));
      const all = boxes.every((b) => b.checked);
      for (const box of boxes) box.checked = !all;
    });
    return button;
  }

  selectAll() {
    const boxes = this.boxes();
    const all = boxes.every((b) => b.checked);
    for (const box of boxes) box.checked = !all;
  }

  /** @returns {HTMLInputElement[]} */
  boxes() {
    return /** @type {HTMLInputElement[]} */ (Array.from(byId('approvals-groups', HTMLElement).querySelectorAll('input[type=checkbox]')));
  }

  /** @returns {Item[]} */
  selected() {
    return this.boxes().filter((b) => b.checked).map((b) => this.shown.get(b.value)).filter((i) => i !== undefined);
  }

  /**
   * One confirmation that repeats the list: "Approve 14 changes: ...".
   * @param {'approve' | 'decline'} action
   */
  ask(action) {
    const items = this.selected();
    if (!items.length) {
      this.say(`Tick the changes to ${action} first.`, 'choose');
      return;
    }
    const session = this.session;
    if (!session) return;
    const names = namesFrom({ held: session.device.directory, current: session.device.serverCurrent, pupils: session.pupils });
    const lines = grouped(items, names).flatMap(({ lines: l }) => l.map((x) => x.text));
    this.asking = { action, items };
    byId('approvals-confirm-title', HTMLElement).textContent = `${action === 'approve' ? 'Approve' : 'Decline'} ${count(items.length, 'change')}:`;
    byId('approvals-confirm-list', HTMLUListElement).replaceChildren(...lines.map((text) => h('li', { text })));
    byId('approvals-confirm-hint', HTMLElement).textContent = action === 'approve'
      ? 'This device signs your approval. The people named can then read what these changes give them.'
      : 'The requests are undone: roles taken back, teachers and pupils taken out of classes, new accounts closed.';
    byId('approvals-confirm-yes', HTMLButtonElement).textContent = action === 'approve' ? `Approve ${count(items.length, 'change')}` : `Decline ${count(items.length, 'change')}`;
    byId('approvals-confirm', HTMLDialogElement).showModal();
    byId('approvals-confirm-no', HTMLButtonElement).focus();
  }

  closeConfirm() {
    const dialog = byId('approvals-confirm', HTMLDialogElement);
    if (dialog.open) dialog.close();
    this.asking = null;
  }

  async confirmed() {
    const session = this.session;
    const asking = this.asking;
    this.closeConfirm();
    if (!session || !asking) return;
    const form = byId('approvals-form', HTMLFormElement);
    form.dataset.state = 'working';
    try {
      if (asking.action === 'approve') {
        const added = new Set((await session.device.approve(asking.items)).map(itemHex));
        const done = asking.items.filter((i) => added.has(itemHex(i))).length;
        await session.refresh(); // keep the new version sealed on this device
        if (this.running) await this.running; // a round that began before the approval...
        await this.duties(); // ...then one after it: the keys the approval entitles follow now
        this.say(done === asking.items.length ? `Approved ${count(done, 'change')}.`
          : `Approved ${done} of ${count(asking.items.length, 'change')}: the others changed on the server meanwhile. Look at them again.`, 'approved');
      } else {
        const reason = byId('approvals-reason', HTMLInputElement);
        const out = await session.device.call('POST', '/api/v1/approvals/decline', { items: itemsJson(asking.items), reason: reason.value.trim() });
        reason.value = '';
        this.say(`Declined ${count(out.declined, 'change')}: the requests were undone.`, 'declined');
      }
    } catch (error) {
      if (error instanceof DirectoryRefused) this.say(`Nothing was approved: ${error.detail}`, 'failed');
      else if (error instanceof ApiFailure || error instanceof TypeError) this.say(`That did not work: ${error.message}`, 'failed');
      else if (error instanceof Locked) return; // locked while it ran: the screen is closed
      else throw error;
    }
    await this.list();
  }

  /**
   * The change log: each approval verified on this device against the approving device's key in the signed
   * directory it holds; the items shown are those the signature covers.
   * @param {LogRow[]} rows
   * @param {Names} names
   */
  showLog(rows, names) {
    const device = this.session?.device;
    const log = byId('approvals-log', HTMLUListElement);
    if (!device) return;
    const devices = new Map((device.directory?.devices ?? []).map((d) => [d.id, d]));
    log.replaceChildren(...rows.slice(0, LOG_SHOWN).map((row) => {
      const approver = row.approver.display_name || row.approver.login || 'someone';
      /** @type {Item[]} */
      let items = [];
      let verified = false;
      try {
        const listed = devices.get(row.approver_device);
        if (listed && listed.user_id === row.approver.user_id) {
          const approval = verifyApproval(b64d(row.approval, 'approval'), device.schoolId, b64d(listed.public_key, 'pk'));
          verified = b64e(approval.approverDevice) === row.approver_device && b64e(approval.approverUser) === listed.user_id;
          items = approval.items;
        }
      } catch (error) {
        if (!(error instanceof CryptoError || error instanceof TypeError)) throw error;
      }
      if (!verified) {
        items = [];
        for (const raw of row.items) {
          try {
            items.push(itemFromJson(raw, (v, name) => b64d(v, name)));
          } catch (error) {
            if (!(error instanceof TypeError)) throw error;
          }
        }
      }
      const lines = grouped(items, names).flatMap(({ lines: l }) => l.map((x) => x.text));
      const list = h('ul', { class: 'log-items' }, ...lines.map((text) => h('li', { text })));
      return h('li', { class: 'log-entry', 'data-verified': String(verified) },
        h('p', {}, h('strong', { text: `Version ${row.version}` }), ` — approved by ${approver}, ${formatTime(row.created_ms)}: ${count(items.length, 'change')}`),
        h('p', { class: verified ? 'hint' : 'hint unverified', text: verified ? 'Signature checked on this device.'
          : 'Could not be verified on this device: do not rely on this entry.' }),
        lines.length > LOG_OPEN ? h('details', { class: 'more' }, h('summary', { text: `Show the ${lines.length} changes` }), list) : list);
    }));
    if (!rows.length) log.append(h('li', { class: 'hint', text: 'No approvals yet.' }));
  }

  /** @param {KeyRow[]} rows */
  showKeys(rows) {
    const list = byId('keys-list', HTMLUListElement);
    const names = new Map((this.session?.device.directory?.accounts ?? []).map((a) => [a.id, a.display_name || a.login]));
    list.replaceChildren(...rows.map((row) => h('li', { class: 'risk' },
      h('p', { text: row.purpose === 'pupil' ? `A pupil's key (version ${row.version})` : `The ${keyLabel(row.purpose)} key (version ${row.version})` }),
      h('p', { class: 'hint', text: row.holders.length
        ? `Only ${names.get(row.holders[0]) ?? 'one person'} holds it: if they lose it, records sealed to it are lost.`
        : 'Nobody holds it now.' }))));
    if (!rows.length) list.append(h('li', { class: 'hint', text: 'Every key has at least two holders.' }));
  }

  /** @param {HeldRow[]} rows */
  showHeld(rows) {
    const list = byId('held-list', HTMLUListElement);
    const undecided = new Set();
    list.replaceChildren(...rows.map((row) => {
      const first = row.decision === null && !undecided.has(row.author_device);
      if (row.decision === null) undecided.add(row.author_device);
      const item = h('li', { class: 'held' },
        h('p', { text: `From ${row.login}'s revoked device, entry ${row.counter}: written ${formatTime(row.device_time_ms)}, `
          + `received ${formatTime(row.received_ms)}` }),
        h('p', { class: 'held-content', text: this.readHeld(row) }));
      if (row.decision !== null) {
        item.append(h('p', { class: 'hint', text: row.decision === 'accepted' ? 'Accepted into the record.'
          : 'Rejected: kept as evidence, never delivered.' }));
      } else if (first) {
        const accept = h('button', { type: 'button', class: 'primary', text: 'Accept', 'aria-label': `Accept entry ${row.counter} from ${row.login}` });
        const reject = h('button', { type: 'button', class: 'secondary', text: 'Reject', 'aria-label': `Reject entry ${row.counter} from ${row.login}` });
        accept.addEventListener('click', () => void this.decideHeld(row, 'accept'));
        reject.addEventListener('click', () => void this.decideHeld(row, 'reject'));
        item.append(h('div', { class: 'actions' }, accept, reject));
      } else {
        item.append(h('p', { class: 'hint', text: 'Decide the earlier entries from this device first.' }));
      }
      return item;
    }));
    if (!rows.length) list.append(h('li', { class: 'hint', text: 'No entries are held.' }));
  }

  /** The held entry's content, opened with this device's keys, as text (never as HTML). @param {HeldRow} row */
  readHeld(row) {
    const device = this.session?.device;
    const author = device?.directory?.devices.find((d) => d.id === row.author_device);
    if (!device || !author) return 'This device cannot check who wrote it: the directory does not list its device.';
    /** @type {import('../crypto/envelope.js').ReaderKey[]} */
    const keys = [{ kind: RECIPIENT_PERSON, id: device.userId, version: 1, sk: device.identity.x25519Sk }];
    for (const [name, sk] of device.readerKeys) {
      const [id, version] = name.split(':');
      keys.push({ kind: RECIPIENT_READER_KEY, id: unhex(id), version: Number(version), sk });
    }
    try {
      const opened = envelope.open(b64d(row.envelope, 'envelope'), { authorDevicePk: b64d(author.public_key, 'pk'), readerKeys: keys });
      const h2 = opened.header;
      const event = decode(opened.content, { eventId: h2.envelopeId, concernId: h2.concernId, authorDevice: h2.authorDevice, deviceTimeMs: h2.deviceTimeMs });
      const fields = event.body.record && typeof event.body.record === 'object' ? event.body.record : event.body;
      const text = Object.entries(fields).filter(([, v]) => typeof v === 'string').map(([k, v]) => `${k}: ${v}`);
      return [`${event.type} (concern ${hex(h2.concernId).slice(0, 8)})`, ...text].join('\n');
    } catch (error) {
      if (!(error instanceof CryptoError || error instanceof TypeError || error instanceof Error)) throw error;
      return 'This device holds no key that opens it.';
    }
  }

  /** @param {HeldRow} row @param {'accept' | 'reject'} decision */
  async decideHeld(row, decision) {
    const session = this.session;
    if (!session) return;
    try {
      await session.device.call('POST', '/api/v1/held/decide', { envelope_id: row.envelope_id, decision });
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error;
      this.say(`That did not work: ${error.message}`, 'decision');
    }
    await this.list();
  }
}
