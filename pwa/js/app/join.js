// The join screens, opened by an invitation link (`/#join=<school>.<code>`): choose a password (keys are made
// on this device, sync/join.js), see the recovery key and confirm it by typing it back or printing it, enrol
// the authenticator app where the account reads concerns, and be signed in here like anyone else.

import { CryptoError, formatRecoveryKey, parseRecoveryKey } from '../crypto/index.js';
import { ApiFailure } from '../sync/device.js';
import { groupSecret, register } from '../sync/join.js';
import { signInHere } from './people.js';
import { showAuthenticator } from './qr.js';
import { byId, nextPaint, showScreen } from './ui.js';

/** @typedef {import('../db.js').LocalStore} LocalStore */
/** @typedef {import('../sync/device.js').Api} Api */
/** @typedef {import('./people.js').Session} Session */
/** @typedef {import('../sync/join.js').Registration} Registration */
/** @typedef {import('../sync/device.js').Derived} Derived */

export const MIN_PASSWORD = 12;

/**
 * A plain-words judgement of a new password, and whether it is acceptable at all.
 * @param {string} password
 * @param {string[]} [avoid] words the password must not be (the login, for instance)
 * @returns {{ok: boolean, hint: string}}
 */
export function passwordStrength(password, avoid = []) {
  if (password.length < MIN_PASSWORD) {
    return { ok: false, hint: `Too short: ${password.length} of at least ${MIN_PASSWORD} characters.` };
  }
  const lower = password.toLowerCase();
  if (avoid.some((word) => word && lower.includes(word.toLowerCase())) || /^(.)\1+$/.test(password)) {
    return { ok: false, hint: 'Too easy to guess: do not use your username or one repeated character.' };
  }
  const kinds = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  const words = password.trim().split(/\s+/).length;
  if (password.length >= 20 || (password.length >= 16 && (kinds >= 3 || words >= 4))) {
    return { ok: true, hint: 'Strong.' };
  }
  return { ok: true, hint: 'Acceptable. Longer is stronger: add another word.' };
}

export class JoinFlow {
  /**
   * @param {{store: LocalStore, api: Api, started: (session: Session) => Promise<void>}} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    /** @type {{schoolId: Uint8Array, code: string} | null} */
    this.link = null;
    /** @type {{registration: Registration, deviceId: Uint8Array, deviceSeed: Uint8Array, derived: Derived} | null} */
    this.joined = null;
    this.printed = false;
    const password = byId('join-password', HTMLInputElement);
    password.addEventListener('input', () => {
      byId('join-strength', HTMLElement).textContent = password.value ? passwordStrength(password.value).hint : '';
    });
    byId('join-form', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); void this.submit(); });
    byId('recovery-key-form', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); void this.confirmKey(); });
    byId('recovery-key-print', HTMLButtonElement).addEventListener('click', () => {
      addEventListener('afterprint', () => {
        this.printed = true;
        byId('recovery-key-message', HTMLElement).textContent = 'Printed. Keep the paper somewhere safe, then continue.';
      }, { once: true });
      print();
    });
    byId('totp-form', HTMLFormElement).addEventListener('submit', (e) => { e.preventDefault(); void this.confirmTotp(); });
  }

  /**
   * Show the join screen for an invitation link.
   * @param {{schoolId: Uint8Array, code: string}} link
   */
  open(link) {
    this.link = link;
    byId('join-message', HTMLElement).textContent = '';
    showScreen('screen-join', byId('join-password', HTMLInputElement));
  }

  async submit() {
    const message = byId('join-message', HTMLElement);
    const password = byId('join-password', HTMLInputElement);
    const again = byId('join-password-again', HTMLInputElement);
    const button = byId('join-submit', HTMLButtonElement);
    const strength = passwordStrength(password.value);
    if (!this.link) return;
    if (!strength.ok) {
      message.textContent = strength.hint;
      password.focus();
      return;
    }
    if (password.value !== again.value) {
      message.textContent = 'The two passwords are not the same. Type them again.';
      again.select();
      return;
    }
    button.disabled = true;
    message.textContent = 'Making your keys on this device…';
    await nextPaint();
    try {
      const { registration, device, deviceSeed, derived } = await register(
        this.hooks.api, this.link.schoolId, this.link.code, password.value);
      this.joined = { registration, deviceId: device.deviceId, deviceSeed, derived }; // the password is not kept
      password.value = '';
      again.value = '';
      history.replaceState(null, '', location.pathname + location.search); // the code is used: drop it from the address
      message.textContent = '';
      this.showKey();
    } catch (error) {
      if (error instanceof ApiFailure) {
        message.textContent = error.code === 'invalid_invitation'
          ? 'This invitation link was already used, or has expired. Ask your school office for a new one.'
          : `Joining failed: ${error.detail}`;
      } else if (error instanceof TypeError) {
        message.textContent = 'Cairn could not reach the school server. Check the connection and try again.';
      } else {
        throw error;
      }
    } finally {
      button.disabled = false;
    }
  }

  showKey() {
    const joined = /** @type {NonNullable<typeof this.joined>} */ (this.joined);
    byId('recovery-key-text', HTMLElement).textContent = joined.registration.recoveryKey;
    byId('recovery-key-message', HTMLElement).textContent = '';
    this.printed = false;
    showScreen('screen-recovery-key');
  }

  async confirmKey() {
    const joined = this.joined;
    const message = byId('recovery-key-message', HTMLElement);
    const typed = byId('recovery-key-typed', HTMLInputElement);
    if (!joined) return;
    if (!this.printed || typed.value.trim()) {
      let same = false;
      try {
        same = formatRecoveryKey(parseRecoveryKey(typed.value)) === joined.registration.recoveryKey;
      } catch (error) {
        if (!(error instanceof CryptoError)) throw error;
      }
      if (!same) {
        message.textContent = typed.value.trim()
          ? 'That is not your recovery key: check each group of four.'
          : 'Type your recovery key back, or print it, before going on.';
        typed.focus();
        return;
      }
    }
    typed.value = '';
    byId('recovery-key-text', HTMLElement).textContent = '';
    if (joined.registration.totpSecret) {
      const { totpSecret, totpUri } = joined.registration;
      showAuthenticator('totp', totpSecret, totpUri ?? '', groupSecret);
      byId('totp-message', HTMLElement).textContent = '';
      showScreen('screen-totp', byId('totp-code', HTMLInputElement));
    } else {
      await this.signIn(undefined, message);
    }
  }

  async confirmTotp() {
    const code = byId('totp-code', HTMLInputElement);
    const message = byId('totp-message', HTMLElement);
    if (!/^\d{6}$/.test(code.value.trim())) {
      message.textContent = 'Enter the six digits the app shows now.';
      code.focus();
      return;
    }
    await this.signIn(code.value.trim(), message);
  }

  /**
   * First sign-in on the device the keys were made on; for a reading account the first good code confirms
   * the authenticator.
   * @param {string | undefined} totp
   * @param {HTMLElement} message
   */
  async signIn(totp, message) {
    const joined = this.joined;
    if (!joined || !this.link) return;
    message.textContent = 'Signing in…';
    await nextPaint();
    const result = await signInHere(this.hooks.store, this.hooks.api, {
      schoolId: this.link.schoolId, login: joined.registration.login, password: '', derived: joined.derived, totp,
      device: { deviceId: joined.deviceId, deviceSeed: joined.deviceSeed },
    });
    if (result.error) {
      const error = result.error;
      if (error instanceof ApiFailure && error.code === 'sign_in_failed') {
        message.textContent = 'That code is not right. Check the time on your phone is set automatically, and enter the newest code.';
      } else if (error instanceof ApiFailure && error.code === 'too_many_attempts') {
        message.textContent = 'Too many attempts. Wait 15 minutes, then sign in from the start screen.';
      } else if (error instanceof TypeError) {
        message.textContent = 'Cairn could not reach the school server. Check the connection and try again.';
      } else {
        throw error;
      }
      return;
    }
    byId('totp-code', HTMLInputElement).value = '';
    this.joined = null;
    this.link = null;
    message.textContent = '';
    await this.hooks.started(/** @type {Session} */ (result.session));
  }
}
