// "Forgot your password?": a new password set with the recovery key (sync/join.js `recover`), keeping the
// same identity and so everything the person could read. The screen also says plainly what an admin's reset
// (without the recovery key) can and cannot bring back.

import { DecryptionFailed, Malformed, openLocal } from '../crypto/index.js';
import { ApiFailure } from '../sync/device.js';
import { groupSecret, recover } from '../sync/join.js';
import { b64d, hex, unhex } from '../sync/protocol.js';
import { passwordStrength } from './join.js';
import { keepSignedIn, openByIdentity } from './people.js';
import { showAuthenticator } from './qr.js';
import { byId, nextPaint, showScreen } from './ui.js';

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../sync/device.js').Api} Api */
/** @typedef {import('./people.js').Session} Session */

/** @param {string} code a school code: 32 hex digits or 22 characters of base64url */
function schoolId(code) {
  const clean = code.trim();
  if (/^[0-9a-fA-F]{32}$/.test(clean)) return unhex(clean.toLowerCase());
  const raw = b64d(clean, 'school code');
  if (raw.length !== 16) throw new TypeError('not a school code');
  return raw;
}

export class RecoverScreen {
  /**
   * @param {{store: LocalStore, api: Api, started: (session: Session) => Promise<void>, back: () => void}} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    const password = byId('recover-password', HTMLInputElement);
    password.addEventListener('input', () => {
      byId('recover-strength', HTMLElement).textContent = passwordStrength(password.value).hint;
    });
    byId('recover-form', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); void this.submit(); });
    byId('recover-cancel', HTMLButtonElement).addEventListener('click', () => hooks.back());
  }

  /**
   * @param {{school?: string, login?: string}} [prefill]
   */
  open({ school = '', login = '' } = {}) {
    const schoolField = byId('recover-school', HTMLInputElement);
    if (school) schoolField.value = school;
    if (login) byId('recover-login', HTMLInputElement).value = login;
    byId('recover-message', HTMLElement).textContent = '';
    showScreen('screen-recover', schoolField.value ? byId('recover-login', HTMLInputElement) : schoolField);
  }

  async submit() {
    const form = byId('recover-form', HTMLFormElement);
    form.dataset.state = 'working';
    try {
      form.dataset.state = await this.attempt() ? 'done' : 'failed';
    } catch (error) {
      form.dataset.state = 'failed';
      throw error;
    }
  }

  /** @returns {Promise<boolean>} whether the new password was set and the person signed in */
  async attempt() {
    const message = byId('recover-message', HTMLElement);
    const button = byId('recover-submit', HTMLButtonElement);
    const login = byId('recover-login', HTMLInputElement).value.trim();
    const key = byId('recover-key', HTMLInputElement);
    const password = byId('recover-password', HTMLInputElement);
    const again = byId('recover-password-again', HTMLInputElement);
    const totp = byId('recover-totp', HTMLInputElement);
    let school;
    try {
      school = schoolId(byId('recover-school', HTMLInputElement).value);
    } catch {
      message.textContent = 'The school code is not right. Ask your school office for it.';
      return false;
    }
    const strength = passwordStrength(password.value, [login]);
    if (!login || !key.value.trim()) {
      message.textContent = 'Enter your username and your recovery key.';
      return false;
    }
    if (!strength.ok) {
      message.textContent = strength.hint;
      return false;
    }
    if (password.value !== again.value) {
      message.textContent = 'The two passwords are not the same. Type them again.';
      return false;
    }
    const known = (await this.hooks.store.accounts()).find((a) => a.login === login && hex(a.schoolId) === hex(school));
    // A store of local format 2 opens with the identity keys the recovery key gives (docs/PROTOCOL.md 2.8): it
    // is kept whole. A version 1 store is sealed under the forgotten password alone.
    if (known && !known.wraps && await this.hooks.store.pendingCount(hex(known.deviceId))) {
      message.textContent = 'Entries written with your old password are still waiting to send from this device. '
        + 'Unlock with your old password first if you can, or ask the safeguarding team for help.';
      return false;
    }
    button.disabled = true;
    message.textContent = 'Checking your recovery key and making your new keys…';
    await nextPaint();
    try {
      /** @type {Uint8Array | null} */
      let dataKey = null;
      const { device, derived, expiresMs } = await recover(
        this.hooks.api, school, login, key.value, password.value, {
          totp: totp.value.trim() || undefined,
          keep: (identity) => {
            dataKey = known ? openByIdentity(known, identity) : null;
            if (!known || !dataKey) return null;
            return {
              deviceId: known.deviceId,
              deviceSeed: openLocal(dataKey, known.schoolId, known.userId, 'device-key', known.deviceId, known.sealed['device-key']),
            };
          },
        },
      );
      // This device keeps its drafts, queued entries and unsent audit entries: the data key is rewrapped
      // under the new password. Only a version 1 store with nothing waiting (checked above), sealed under
      // the forgotten password alone, is removed, and the new device starts afresh.
      if (known && !dataKey && !await this.hooks.store.pendingCount(hex(known.deviceId))) {
        await this.hooks.store.wipe(known.id, hex(known.deviceId));
      }
      const session = await keepSignedIn(this.hooks.store, derived, device, expiresMs, dataKey ? known : null, dataKey);
      for (const input of [key, password, again, totp]) input.value = '';
      message.textContent = '';
      await this.hooks.started(session);
      return true;
    } catch (error) {
      if (error instanceof ApiFailure && error.code === 'totp_enrolment_required') {
        const { totp_secret: secret, totp_uri: uri } = error.error;
        showAuthenticator('recover-enrol', String(secret ?? ''), String(uri ?? ''), groupSecret);
        byId('recover-enrol', HTMLElement).hidden = false;
        totp.focus();
      }
      message.textContent = explain(error);
      if (!message.textContent) throw error;
      return false;
    } finally {
      button.disabled = false;
    }
  }
}

/** @param {unknown} error */
function explain(error) {
  if (error instanceof Malformed) return 'The recovery key has a typo: check each group of four characters.';
  if (error instanceof DecryptionFailed) return 'That recovery key does not belong to this username at this school.';
  if (error instanceof ApiFailure) {
    return {
      totp_required: 'Your account also needs the code from your authenticator app.',
      totp_enrolment_required: 'Set up your authenticator app as shown, then enter its code and try again.',
      sign_in_failed: 'The code from your authenticator app is not right. Enter the newest one.',
      recovery_failed: 'The school server did not accept the recovery key. Start again from the beginning.',
      too_many_attempts: 'Too many attempts. Wait 15 minutes, then try again.',
    }[error.code] ?? `Setting a new password failed: ${error.detail}`;
  }
  if (error instanceof TypeError) return 'Cairn could not reach the school server. Check the connection and try again.';
  return '';
}
