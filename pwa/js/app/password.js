// The Password page: the unlocked person changes their password (POST /api/v1/account/password, through
// people.js `changePassword`). The device's data key is only rewrapped (docs/PROTOCOL.md 2.8), so drafts,
// entries waiting to send and unsent audit entries stay readable; every other session of the account ends.

import { ApiFailure } from '../sync/device.js';
import { passwordStrength } from './join.js';
import { changePassword } from './people.js';
import { byId, nextPaint, showScreen } from './ui.js';

/** @typedef {import('./people.js').Session} Session */

/** Accounts that read concerns, and admins, give a code from their authenticator app too (10.5). */
const SECOND_FACTOR = ['teacher', 'sen', 'safeguarding', 'admin'];

export class PasswordScreen {
  /** @param {{back: () => void}} hooks back: leave the page */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {Session | null} */
    this.session = null;
    const fresh = byId('password-new', HTMLInputElement);
    fresh.addEventListener('input', () => {
      byId('password-strength', HTMLElement).textContent = passwordStrength(fresh.value).hint;
    });
    byId('nav-password', HTMLButtonElement).addEventListener('click', () => this.show());
    byId('password-back', HTMLButtonElement).addEventListener('click', () => this.hooks.back());
    byId('password-form', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); void this.submit(); });
  }

  /** @param {Session} session */
  open(session) {
    this.session = session;
    byId('nav-password', HTMLButtonElement).hidden = false;
  }

  close() {
    this.session = null;
    byId('nav-password', HTMLButtonElement).hidden = true;
    this.clear();
  }

  clear() {
    for (const id of ['password-old', 'password-new', 'password-again', 'password-totp']) byId(id, HTMLInputElement).value = '';
  }

  show() {
    const session = this.session;
    if (!session) return;
    byId('password-totp-field', HTMLElement).hidden = !session.record.roles.some((r) => SECOND_FACTOR.includes(r));
    byId('password-message', HTMLElement).textContent = '';
    byId('password-form', HTMLFormElement).dataset.state = '';
    showScreen('screen-password', byId('password-old', HTMLInputElement));
  }

  async submit() {
    const form = byId('password-form', HTMLFormElement);
    form.dataset.state = 'working';
    try {
      form.dataset.state = await this.attempt() ? 'done' : 'failed';
    } catch (error) {
      form.dataset.state = 'failed';
      throw error;
    }
  }

  /** @returns {Promise<boolean>} whether the password was changed */
  async attempt() {
    const session = this.session;
    const message = byId('password-message', HTMLElement);
    if (!session) return false;
    const old = byId('password-old', HTMLInputElement);
    const fresh = byId('password-new', HTMLInputElement);
    const again = byId('password-again', HTMLInputElement);
    const totp = byId('password-totp', HTMLInputElement);
    if (!old.value) {
      message.textContent = 'Enter your current password.';
      return false;
    }
    const strength = passwordStrength(fresh.value, [session.record.login]);
    if (!strength.ok) {
      message.textContent = strength.hint;
      return false;
    }
    if (fresh.value !== again.value) {
      message.textContent = 'The two new passwords are not the same. Type them again.';
      return false;
    }
    if (fresh.value === old.value) {
      message.textContent = 'The new password is the same as the current one.';
      return false;
    }
    if (!navigator.onLine) {
      message.textContent = 'Changing your password needs a connection. Try again when you have signal.';
      return false;
    }
    const button = byId('password-submit', HTMLButtonElement);
    button.disabled = true;
    message.textContent = 'Checking your password and making your new keys…';
    await nextPaint();
    try {
      await changePassword(session, old.value, fresh.value, { totp: totp.value.trim() || undefined });
      this.clear();
      message.textContent = 'Your password is changed. Everything on this device is kept; your other devices are signed out.';
      return true;
    } catch (error) {
      if (error instanceof ApiFailure) {
        message.textContent = {
          password_change_failed: 'That current password, or the code, is not right. Nothing was changed.',
          totp_required: 'Your account also needs the code from your authenticator app.',
          too_many_attempts: 'Too many attempts. Wait 15 minutes, then try again.',
        }[error.code] ?? `Changing the password failed: ${error.detail}`;
        if (error.code === 'totp_required') byId('password-totp-field', HTMLElement).hidden = false;
        return false;
      }
      if (error instanceof TypeError) {
        message.textContent = 'Cairn could not reach the school server. Try again: until the change is confirmed, '
          + 'this device opens with either password.';
        return false;
      }
      throw error;
    } finally {
      button.disabled = false;
    }
  }
}
