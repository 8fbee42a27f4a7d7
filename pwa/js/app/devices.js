// The devices page: the school key's fingerprint to compare with the safeguarding lead's, the unlocked
// person's devices (every device of the school for an admin or safeguarding lead) with when each was last
// seen, and a one-step revoke for a lost tablet (POST /api/v1/devices/revoke). Also the keyholder's duty
// of the signed directory: a safeguarding lead's device, while unlocked and online, signs the next
// directory version soon after the school changes (docs/PROTOCOL.md 13).

import { ApiFailure, Locked } from '../sync/device.js';
import { DirectoryRefused } from '../sync/directory.js';
import { b64d, b64e } from '../sync/protocol.js';
import { byId, formatAge, formatTime, h, showScreen } from './ui.js';

/** @typedef {import('./people.js').Session} Session */
/**
 * One row of GET /api/v1/devices.
 * @typedef {{id: string, user_id: string, login: string, display_name: string, created_ms: number,
 *   last_seen_ms: number | null, revoked_ms: number | null, this_device: boolean, may_revoke: boolean}} DeviceRow
 */

/** How often a keyholder's device asks whether the directory needs signing. */
export const DUTY_MS = 60_000;

export class DevicesScreen {
  /**
   * @param {{back: () => void, problem: (message: string) => void}} hooks back: leave the page;
   *   problem: show (or, with '', clear) a warning about the directory
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Session | null} */
    this.session = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
    this.warned = false;
    byId('nav-devices', HTMLButtonElement).addEventListener('click', () => void this.show());
    byId('devices-back', HTMLButtonElement).addEventListener('click', () => this.hooks.back());
    byId('fingerprint-notice-compare', HTMLButtonElement).addEventListener('click', () => void this.show());
    byId('fingerprint-notice-done', HTMLButtonElement).addEventListener('click', () => {
      byId('fingerprint-notice', HTMLElement).hidden = true;
    });
  }

  /**
   * After unlock: the Devices button; after a first sign-in, the fingerprint to compare; for a safeguarding
   * lead, the signing duty.
   * @param {Session} session
   */
  open(session) {
    this.session = session;
    byId('nav-devices', HTMLButtonElement).hidden = false;
    const fingerprint = session.device.fingerprint;
    if (session.newlyPinned && fingerprint) {
      byId('fingerprint-notice-text', HTMLElement).textContent = fingerprint;
      byId('fingerprint-notice', HTMLElement).hidden = false;
    }
    if (session.record.roles.includes('safeguarding')) {
      this.timer = setInterval(() => void this.duty(), DUTY_MS);
      void this.duty();
    }
  }

  close() {
    this.session = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    byId('nav-devices', HTMLButtonElement).hidden = true;
    byId('fingerprint-notice', HTMLElement).hidden = true;
    byId('devices-list', HTMLUListElement).replaceChildren();
  }

  /**
   * A keyholder's duty: when the server says the school changed since the newest signed version, refresh
   * (which checks the change and signs the next version with the school key this device holds).
   * @returns {Promise<boolean>} whether a refresh ran
   */
  async duty() {
    const session = this.session;
    if (!session || !navigator.onLine) return false;
    try {
      const served = await session.device.followDirectory();
      if (!served.changed || !served.current) return false;
      await session.refresh();
      if (this.warned) this.hooks.problem('');
      this.warned = false;
      return true;
    } catch (error) {
      if (error instanceof DirectoryRefused) {
        this.hooks.problem(`The school directory the server sent did not verify (${error.code}). `
          + 'Nothing was signed. Tell the safeguarding lead.');
        this.warned = true;
        return false;
      }
      if (error instanceof TypeError || error instanceof ApiFailure || error instanceof Locked) return false; // offline, refused, locked
      throw error;
    }
  }

  async show() {
    const session = this.session;
    if (!session) return;
    byId('fingerprint-notice', HTMLElement).hidden = true;
    byId('fingerprint-text', HTMLElement).textContent = session.device.fingerprint
      ?? 'Not known yet: this device has not fetched the signed directory.';
    showScreen('screen-devices');
    await this.list();
  }

  async list() {
    const session = this.session;
    if (!session) return;
    const message = byId('devices-message', HTMLElement);
    /** @type {DeviceRow[]} */
    let rows;
    try {
      rows = (await session.device.call('GET', '/api/v1/devices')).devices;
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error;
      message.textContent = 'The device list needs a connection to the server.';
      return;
    }
    message.textContent = '';
    const now = Date.now();
    byId('devices-list', HTMLUListElement).replaceChildren(...rows.map((row) => {
      const seen = row.last_seen_ms === null ? 'never seen' : `last seen ${formatAge(now - row.last_seen_ms)} ago`;
      const state = row.revoked_ms !== null ? `revoked ${formatTime(row.revoked_ms)}` : seen;
      const label = `${row.display_name}${row.this_device ? ' (this device)' : ''}`;
      const item = h('li', { 'data-device': row.id },
        h('span', {}, label, h('span', { class: 'device-meta', text: `Added ${formatTime(row.created_ms)}; ${state}` })));
      if (row.may_revoke && !row.this_device) {
        const button = h('button', { type: 'button', class: 'secondary', text: 'Revoke',
          'aria-label': `Revoke ${row.display_name}'s device added ${formatTime(row.created_ms)}` });
        button.addEventListener('click', () => void this.revoke(row, button));
        item.append(button);
      }
      return item;
    }));
  }

  /**
   * Revoke one device at once: the server ends its sessions and closes its sockets.
   * @param {DeviceRow} row
   * @param {HTMLButtonElement} button
   */
  async revoke(row, button) {
    const session = this.session;
    if (!session) return;
    button.disabled = true;
    const message = byId('devices-message', HTMLElement);
    try {
      await session.device.call('POST', '/api/v1/devices/revoke', { device_id: b64e(b64d(row.id, 'device id')) });
    } catch (error) {
      if (!(error instanceof TypeError || error instanceof ApiFailure)) throw error;
      message.textContent = error instanceof ApiFailure && error.code === 'forbidden'
        ? 'Only the device\'s owner or an admin can revoke it.' : 'Could not reach the server. Try again.';
      button.disabled = false;
      return;
    }
    await this.list();
    message.textContent = `Revoked ${row.display_name}'s device. It can no longer sign in.`;
  }
}
