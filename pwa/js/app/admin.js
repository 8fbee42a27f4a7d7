// The admin's Staff screen: invite one person (with a reason the safeguarding team sees), import a staff CSV
// (read on this device and sent as text; the server invites everyone in it or nobody), copy or print the
// invitation links, follow each invitation's status, see which of the admin's requests wait for a
// safeguarding keyholder's approval (docs/PROTOCOL.md 13.5), and reset an account whose owner lost both
// password and recovery key.

import { itemFromJson } from '../crypto/index.js';
import { ApiFailure } from '../sync/device.js';
import { b64d, b64e, hex } from '../sync/protocol.js';
import { describe, namesFrom } from './changes.js';
import { byId, formatAge, formatTime, h, showScreen } from './ui.js';

/** @typedef {import('./people.js').Session} Session */
/**
 * @typedef {{login: string, display_name: string, roles: string[], classes: string[], code: string,
 *   expires_ms: number}} Invited
 */

const ROLES = /** @type {const} */ ([
  ['contributor', 'Contributor (logs concerns)'],
  ['teacher', 'Teacher'],
  ['sen', 'SEN team'],
  ['safeguarding', 'Safeguarding team'],
  ['admin', 'Admin (staff and classes)'],
]);
const STATUS = /** @type {Record<string, string>} */ ({
  pending: 'Invited, not joined yet',
  expired: 'Link expired: invite again',
  joined: 'Joined; authenticator not confirmed yet',
  active: 'Joined',
  left: 'Closed',
});
// The codes the server gives a staff file's rows (docs/PROTOCOL.md 10.3), in plain words.
const PROBLEMS = /** @type {Record<string, string>} */ ({
  missing: 'is empty',
  too_long: 'is too long',
  invalid_email: 'is not an email address',
  unknown_role: 'names a role Cairn does not have (contributor, teacher, sen, safeguarding, admin)',
  duplicate_in_file: 'appears on an earlier line too',
  classes_need_teacher: 'gives classes to someone who is not a teacher',
  unknown_class: 'names a class this school does not have',
  ambiguous_class: 'names a class label two classes share',
  already_staff: 'belongs to someone already on the staff',
  already_invited: 'already has an invitation waiting',
  not_csv: 'does not have the same number of columns as the header',
  empty: 'has no staff in it',
  missing_columns: 'lacks a name, email or roles column',
  unknown_columns: 'has a column other than name, email, roles, classes',
  too_many_rows: 'has more than 500 staff',
});

/**
 * Show a result line: `ok` for what went well, otherwise a problem.
 * @param {string} id
 * @param {string} text
 * @param {boolean} ok
 */
function say(id, text, ok) {
  const line = byId(id, HTMLElement);
  line.textContent = text;
  line.classList.toggle('ok', ok);
}

/**
 * "rows[3].email" as "Line 3, email".
 * @param {string} where
 */
function place(where) {
  const found = /^rows\[(\d+)\](?:\.(\w+))?$/.exec(where);
  if (!found) return 'The file';
  return `Line ${found[1]}${found[2] ? `, ${found[2]}` : ''}`;
}

export class AdminScreen {
  constructor() {
    /** @type {Session | null} */
    this.session = null;
    byId('nav-admin', HTMLButtonElement).addEventListener('click', () => void this.show());
    byId('invite-form', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); void this.invite(); });
    byId('import-form', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); void this.importFile(); });
    byId('reset-form', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); void this.reset(); });
    byId('links-print', HTMLButtonElement).addEventListener('click', () => print());
    document.addEventListener('cairn:screen', (event) => {
      const button = byId('nav-admin', HTMLButtonElement);
      if (/** @type {CustomEvent<string>} */ (event).detail === 'screen-admin') button.setAttribute('aria-current', 'page');
      else button.removeAttribute('aria-current');
    });
    byId('invite-roles', HTMLElement).replaceChildren(...ROLES.map(([role, label]) => h('div', { class: 'check' },
      h('input', { id: `invite-role-${role}`, type: 'checkbox', value: role }),
      h('label', { for: `invite-role-${role}`, text: label }))));
  }

  /** After unlock: admins get the Staff section. @param {Session} session */
  open(session) {
    this.session = session;
    const admin = session.record.roles.includes('admin');
    byId('nav-admin', HTMLButtonElement).hidden = !admin;
    if (admin) byId('sections', HTMLElement).hidden = false;
  }

  close() {
    this.session = null;
    byId('nav-admin', HTMLButtonElement).hidden = true;
    byId('links-list', HTMLUListElement).replaceChildren();
    byId('links-panel', HTMLElement).hidden = true;
    byId('invitations-list', HTMLUListElement).replaceChildren();
    byId('waiting-list', HTMLUListElement).replaceChildren();
    byId('waiting-summary', HTMLElement).textContent = '';
  }

  async show() {
    const session = this.session;
    if (!session) return;
    const directory = session.device.directory;
    const classes = (directory?.classes ?? []).map((c) => c.label).sort((a, b) => a.localeCompare(b, 'en-GB'));
    byId('invite-classes', HTMLElement).replaceChildren(...(classes.length ? classes.map((label, n) => h('div', { class: 'check' },
      h('input', { id: `invite-class-${n}`, type: 'checkbox', value: label }),
      h('label', { for: `invite-class-${n}`, text: label }))) : [h('p', { class: 'muted', text: 'No classes yet.' })]));
    const me = b64e(session.record.userId);
    const people = (directory?.accounts ?? []).filter((a) => !a.left && a.id !== me);
    byId('reset-who', HTMLSelectElement).replaceChildren(h('option', { value: '', text: 'Choose a person' }),
      ...people.map((a) => h('option', { value: a.id, text: `${a.display_name} (${a.login})` })));
    showScreen('screen-admin');
    await this.refreshList();
  }

  async refreshList() {
    const session = this.session;
    if (!session) return;
    const list = byId('invitations-list', HTMLUListElement);
    try {
      const { invitations } = await session.device.call('GET', '/api/v1/admin/invitations');
      await this.showWaiting(invitations);
      list.replaceChildren(...invitations.map((/** @type {any} */ i) => {
        const item = h('li', { 'data-status': i.status },
          h('span', { class: 'who', text: `${i.display_name} (${i.login})` }),
          h('span', { class: 'tag', text: STATUS[i.status] ?? i.status }),
          h('span', { class: 'muted', text: [i.roles.join(', '), i.classes.join(', '),
            i.used_ms ? `joined ${formatTime(i.used_ms)}` : `until ${formatTime(i.expires_ms)}`].filter(Boolean).join(' · ') }));
        if (i.status === 'pending' || i.status === 'expired') {
          // codes are shown once: a lost or expired link is replaced by a new one (the old one stops working)
          const renew = h('button', { type: 'button', class: 'secondary', text: 'New link',
            'aria-label': `New link for ${i.display_name}` });
          renew.addEventListener('click', () => void this.renew(i.login));
          item.append(renew);
        }
        return item;
      }));
    } catch (error) {
      if (!(error instanceof ApiFailure || error instanceof TypeError)) throw error;
      list.replaceChildren(h('li', { class: 'muted', text: 'The list needs a connection to the school server.' }));
    }
  }

  /**
   * How many of this admin's requests wait for the safeguarding team, with a short list (GET
   * /api/v1/approvals `pending`: the server's notes; names from the signed directory, or, for someone not
   * listed yet, from this admin's own invitations).
   * @param {{display_name: string, created_ms: number}[]} invitations
   */
  async showWaiting(invitations) {
    const session = this.session;
    if (!session) return;
    const summary = byId('waiting-summary', HTMLElement);
    const list = byId('waiting-list', HTMLUListElement);
    /** @type {any[]} */
    let pending;
    try {
      pending = (await session.device.call('GET', '/api/v1/approvals')).pending;
    } catch (error) {
      if (!(error instanceof ApiFailure || error instanceof TypeError)) throw error;
      summary.textContent = 'What waits for the safeguarding team needs a connection to the school server.';
      return;
    }
    const me = b64e(session.record.userId);
    const mine = pending.filter((p) => p.requested_by?.user_id === me);
    const invitedAt = new Map(invitations.map((i) => [i.created_ms, i.display_name]));
    /** @type {Map<string, string>} */
    const extra = new Map();
    for (const p of pending) {
      const user = p.item.user_id;
      if (typeof user === 'string' && invitedAt.has(p.requested_ms)) extra.set(user, /** @type {string} */ (invitedAt.get(p.requested_ms)));
    }
    const names = namesFrom({ held: session.device.directory, extra });
    summary.textContent = mine.length
      ? `${mine.length} of your request${mine.length === 1 ? '' : 's'} ${mine.length === 1 ? 'waits' : 'wait'} for a safeguarding keyholder's approval`
        + `${pending.length > mine.length ? ` (${pending.length} in all)` : ''}.`
      : pending.length ? `Nothing you asked for waits; ${pending.length} other request${pending.length === 1 ? ' waits' : 's wait'}.`
        : 'Nothing waits for the safeguarding team.';
    summary.dataset.mine = String(mine.length);
    const shown = mine.slice(0, 8);
    list.replaceChildren(...shown.map((p) => {
      let text = 'A change';
      try {
        text = describe(itemFromJson(p.item, (v, name) => b64d(v, name)), names).text;
      } catch (error) {
        if (!(error instanceof TypeError)) throw error;
      }
      const age = typeof p.age_ms === 'number' ? `, asked ${formatAge(p.age_ms)} ago` : '';
      return h('li', { text: `${text}${age}${p.reason ? `: “${p.reason}”` : ''}` });
    }));
    if (mine.length > shown.length) list.append(h('li', { class: 'muted', text: `and ${mine.length - shown.length} more` }));
  }

  /** @param {Invited[]} invited */
  showLinks(invited) {
    const session = /** @type {Session} */ (this.session);
    const school = hex(session.record.schoolId);
    const items = invited.map((person, n) => {
      const link = `${location.origin}/#join=${school}.${person.code}`;
      const copy = h('button', { type: 'button', class: 'secondary', text: 'Copy link' });
      copy.addEventListener('click', async () => {
        await navigator.clipboard?.writeText(link).catch(() => undefined);
        copy.textContent = 'Copied';
      });
      return h('li', {},
        h('span', { class: 'who', text: `${person.display_name} (${person.login})` }),
        h('label', { for: `link-${n}-${person.code.slice(0, 6)}`, class: 'visually-hidden', text: `Invitation link for ${person.display_name}` }),
        h('input', { id: `link-${n}-${person.code.slice(0, 6)}`, class: 'link', readonly: true, value: link }),
        copy);
    });
    byId('links-list', HTMLUListElement).prepend(...items);
    byId('links-panel', HTMLElement).hidden = false;
  }

  async invite() {
    const session = this.session;
    const message = byId('invite-message', HTMLElement);
    if (!session) return;
    const name = byId('invite-name', HTMLInputElement);
    const login = byId('invite-login', HTMLInputElement);
    const checked = (/** @type {string} */ id) => Array.from(byId(id, HTMLElement).querySelectorAll('input:checked'))
      .map((input) => /** @type {HTMLInputElement} */ (input).value);
    const roles = checked('invite-roles');
    const classes = checked('invite-classes');
    const reason = byId('invite-reason', HTMLInputElement);
    if (!name.value.trim() || !login.value.trim() || !roles.length) {
      message.textContent = 'Give a name, an email and at least one role.';
      return;
    }
    try {
      const made = await session.device.call('POST', '/api/v1/admin/invitations', {
        login: login.value.trim().toLowerCase(), display_name: name.value.trim(), roles, classes,
        ...(reason.value.trim() ? { reason: reason.value.trim() } : {}),
      });
      this.showLinks([{ login: login.value.trim().toLowerCase(), display_name: name.value.trim(), roles, classes, ...made }]);
      say('invite-message', `Invited ${name.value.trim()}. Send them the link below. They read nothing until a `
        + 'safeguarding keyholder approves the new account.', true);
      name.value = '';
      login.value = '';
      reason.value = '';
      for (const input of Array.from(byId('invite-form', HTMLFormElement).querySelectorAll('input[type=checkbox]'))) {
        /** @type {HTMLInputElement} */ (input).checked = false;
      }
      await this.refreshList();
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      const fields = Object.entries(error.fields);
      message.classList.remove('ok');
      message.textContent = fields.length
        ? fields.map(([field, code]) => `${field === 'login' ? 'The email' : `The ${field}`} ${PROBLEMS[code] ?? code}.`).join(' ')
        : `Inviting failed: ${error.detail}`;
    }
  }

  async importFile() {
    const session = this.session;
    const message = byId('import-message', HTMLElement);
    const problems = byId('import-problems', HTMLUListElement);
    const file = byId('import-file', HTMLInputElement).files?.[0];
    problems.replaceChildren();
    if (!session) return;
    if (!file) {
      message.textContent = 'Choose the staff CSV file first.';
      return;
    }
    const text = await file.text(); // read here: the file never leaves this device except as this request
    try {
      const { invitations } = await session.device.call('POST', '/api/v1/admin/invitations/import', { csv: text });
      this.showLinks(invitations);
      say('import-message', `Invited ${invitations.length} staff. Send each person their own link below.`, true);
      byId('import-file', HTMLInputElement).value = '';
      await this.refreshList();
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      const fields = Object.entries(error.fields);
      message.classList.remove('ok');
      message.textContent = error.code === 'invalid_staff_csv'
        ? `Nobody was invited: the file has ${fields.length === 1 ? 'a problem' : `${fields.length} problems`}. Correct the file and import it again.`
        : `Importing failed: ${error.detail}`;
      problems.replaceChildren(...fields.map(([where, code]) => h('li', { text: `${place(where)} ${PROBLEMS[code] ?? code}.` })));
    }
  }

  /** @param {string} login */
  async renew(login) {
    const session = this.session;
    if (!session) return;
    try {
      this.showLinks([await session.device.call('POST', '/api/v1/admin/invitations/renew', { login })]);
      await this.refreshList();
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      await this.refreshList();
    }
  }

  async reset() {
    const session = this.session;
    const message = byId('reset-message', HTMLElement);
    const who = byId('reset-who', HTMLSelectElement);
    const understood = byId('reset-understood', HTMLInputElement);
    if (!session) return;
    if (!who.value) {
      message.textContent = 'Choose the person whose account to reset.';
      return;
    }
    if (!understood.checked) {
      message.textContent = 'Tick the box to confirm: the old account cannot be opened again.';
      return;
    }
    try {
      const out = await session.device.call('POST', '/api/v1/admin/accounts/reset', { user_id: who.value });
      this.showLinks([out.invitation]);
      say('reset-message', `${out.invitation.display_name}'s old account is closed. Send them the new link, then ask the `
        + 'safeguarding team to give their new account its access again.', true);
      understood.checked = false;
      who.value = '';
      await this.refreshList();
    } catch (error) {
      if (!(error instanceof ApiFailure)) throw error;
      say('reset-message', `Resetting failed: ${error.detail}`, false);
    }
  }
}
