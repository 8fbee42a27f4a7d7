// Approvals and keys, for a safeguarding keyholder: members waiting to join the SEN or safeguarding group
// (with how long they have waited; approve seals the group's key on this device, decline records it),
// reader keys held by one person or nobody (a risk of losing records), and envelopes held from devices
// revoked while offline (read them here, then accept them into the record or reject them, kept as
// evidence). Also the keyholder duties (pwa/js/sync/keyholder.js): while a reader is unlocked and
// online, this device grants what is owed and makes the new key versions leavers leave behind.

import { CryptoError, RECIPIENT_PERSON, RECIPIENT_READER_KEY, envelope } from '../crypto/index.js';
import { decode } from '../events.js';
import { ApiFailure } from '../sync/device.js';
import { DirectoryRefused } from '../sync/directory.js';
import { approve, decline, runDuties } from '../sync/keyholder.js';
import { b64d, hex, unhex } from '../sync/protocol.js';
import { byId, formatAge, formatTime, h, showScreen } from './ui.js';

/** @typedef {import('./people.js').Session} Session */
/**
 * @typedef {{member_id: string, login: string, display_name: string, purpose: string, requested_ms: number,
 *   age_ms: number}} PendingRow
 * @typedef {{reader_key_id: string, version: number, purpose: string, holders: string[]}} KeyRow
 * @typedef {{envelope_id: string, author_device: string, login: string, counter: number, device_time_ms: number,
 *   received_ms: number, decision: string | null, envelope: string}} HeldRow
 */

/** How often an unlocked reader's device runs its keyholder duties while online. */
export const DUTY_MS = 60_000;
const READING = ['teacher', 'sen', 'safeguarding'];
const GROUPS = /** @type {Record<string, string>} */ ({
  'group:safeguarding': 'the safeguarding team', 'group:sen': 'the SEN team',
});

/** @param {string} purpose */
function label(purpose) {
  if (GROUPS[purpose]) return `${GROUPS[purpose][0].toUpperCase()}${GROUPS[purpose].slice(1)}`;
  if (purpose === 'pupil') return 'A pupil';
  if (purpose === 'signing:directory') return 'The school signing key';
  return purpose;
}

export class ApprovalsScreen {
  /** @param {{back: () => void, problem: (message: string) => void}} hooks */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Session | null} */
    this.session = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
    /** @type {Promise<unknown> | null} */
    this.running = null;
    byId('nav-approvals', HTMLButtonElement).addEventListener('click', () => void this.show());
    byId('approvals-back', HTMLButtonElement).addEventListener('click', () => this.hooks.back());
    addEventListener('online', () => void this.duties());
  }

  /** @param {Session} session */
  open(session) {
    this.session = session;
    byId('nav-approvals', HTMLButtonElement).hidden = !session.record.roles.includes('safeguarding');
    if (session.record.roles.some((r) => READING.includes(r))) {
      this.timer = setInterval(() => void this.duties(), DUTY_MS);
      void this.duties();
    }
  }

  close() {
    this.session = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    byId('nav-approvals', HTMLButtonElement).hidden = true;
    for (const id of ['approvals-list', 'keys-list', 'held-list']) byId(id, HTMLUListElement).replaceChildren();
  }

  /** One round of keyholder duties, one at a time; offline or refused rounds wait for the next. */
  duties() {
    const session = this.session;
    if (!session || !navigator.onLine || this.running) return this.running ?? Promise.resolve(null);
    this.running = runDuties(session.device)
      .catch((error) => {
        if (error instanceof DirectoryRefused) {
          this.hooks.problem(`The school directory the server sent did not verify (${error.code}). Nothing was granted.`);
        } else if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error;
        return null;
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

  async list() {
    const session = this.session;
    if (!session) return;
    const message = byId('approvals-message', HTMLElement);
    try {
      const [pending, keys, held] = await Promise.all([
        session.device.call('GET', '/api/v1/approvals'),
        session.device.call('GET', '/api/v1/keys/single-holder'),
        session.device.call('GET', '/api/v1/held'),
      ]);
      if (message.dataset.kind === 'offline') message.textContent = ''; // a decision's outcome stays shown
      this.showPending(pending.pending);
      this.showKeys(keys.keys);
      this.showHeld(held.held);
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error;
      message.textContent = 'Approvals need a connection to the server.';
      message.dataset.kind = 'offline';
    }
  }

  /** @param {PendingRow[]} rows */
  showPending(rows) {
    const list = byId('approvals-list', HTMLUListElement);
    list.replaceChildren(...rows.map((row) => {
      const name = `${row.display_name} (${row.login})`;
      const approveButton = h('button', { type: 'button', class: 'primary', text: 'Approve', 'aria-label': `Approve ${name}` });
      const declineButton = h('button', { type: 'button', class: 'secondary', text: 'Decline', 'aria-label': `Decline ${name}` });
      approveButton.addEventListener('click', () => void this.decide(row, true));
      declineButton.addEventListener('click', () => void this.decide(row, false));
      return h('li', { class: 'approval' },
        h('p', { text: `${name} joined ${GROUPS[row.purpose] ?? row.purpose}` }),
        h('p', { class: 'hint', text: `Waiting ${formatAge(row.age_ms)}, since ${formatTime(row.requested_ms)}` }),
        h('div', { class: 'actions' }, approveButton, declineButton));
    }));
    if (!rows.length) list.append(h('li', { class: 'hint', text: 'Nobody is waiting for approval.' }));
  }

  /** @param {PendingRow} row @param {boolean} yes */
  async decide(row, yes) {
    const session = this.session;
    if (!session) return;
    const message = byId('approvals-message', HTMLElement);
    message.dataset.kind = 'decision';
    try {
      if (yes) await approve(session.device, row.member_id, row.purpose);
      else await decline(session.device, row.member_id, row.purpose);
      message.textContent = yes ? `${row.display_name} can now read what ${GROUPS[row.purpose] ?? row.purpose} reads.`
        : `${row.display_name} was not given ${GROUPS[row.purpose] ?? row.purpose}'s key.`;
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof ApiFailure || error instanceof Error)) throw error;
      message.textContent = `That did not work: ${error.message}`;
    }
    await this.list();
  }

  /** @param {KeyRow[]} rows */
  showKeys(rows) {
    const list = byId('keys-list', HTMLUListElement);
    const names = new Map((this.session?.device.directory?.accounts ?? []).map((a) => [a.id, a.display_name || a.login]));
    list.replaceChildren(...rows.map((row) => h('li', { class: 'risk' },
      h('p', { text: `${label(row.purpose)} key (version ${row.version})` }),
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
      const message = byId('approvals-message', HTMLElement);
      message.dataset.kind = 'decision';
      message.textContent = `That did not work: ${error.message}`;
    }
    await this.list();
  }
}
