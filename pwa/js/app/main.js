// The staff app's entry point: opens the device's store, registers the service worker, and runs the screens
// (who is using this device, sign in, unlock, log a concern), the sending status, the privacy screen and the
// idle lock. Only one person is unlocked at a time; everyone else's keys stay sealed.

import { openStore } from '../db.js';
import { Api, ApiFailure } from '../sync/device.js';
import { b64d, hex, unhex } from '../sync/protocol.js';
import { groupSecret, parseJoinLink } from '../sync/join.js';
import { AdminScreen } from './admin.js';
import { ApprovalsScreen } from './approvals.js';
import { Capture } from './capture.js';
import { DevicesScreen } from './devices.js';
import { JoinFlow } from './join.js';
import { PasswordScreen } from './password.js';
import { WrongPassword, signInHere, unlock } from './people.js';
import { showAuthenticator } from './qr.js';
import { RecoverScreen } from './recover.js';
import { Review } from './review.js';
import { Syncer } from './syncer.js';
import { delivers } from './delivery.js';
import { byId, formatAge, formatTime, h, nextPaint, showScreen } from './ui.js';

/** @typedef {import('./people.js').Session} Session */
/** @typedef {import('../db.js').AccountRecord} AccountRecord */
/** @typedef {import('../sync/device.js').Derived} Derived */

const api = new Api();
let upgradeWaiting = false;
const store = await openStore({ onBlocking: () => showUpdate() });
const categories = (await (await fetch('/categories.json')).json()).categories;
/** Lock after this long without a touch or a key: five minutes, or the device's `idle-lock-ms` setting. */
const IDLE_MS = idleSetting(await store.setting('idle-lock-ms'));

/** @type {Session | null} */
let active = null;
/** @type {AccountRecord | null} */
let unlocking = null;
/** @type {Derived | undefined} */
let pendingSignIn;

const capture = new Capture({ categories, saved: () => { void requestSend(); void refreshStatus(); } });
const review = new Review({
  categories, showCapture: () => showScreen('screen-capture'), wrote: () => { void requestSend(); void refreshStatus(); },
});
const admin = new AdminScreen();
const approvals = new ApprovalsScreen({
  back: () => showScreen('screen-capture'), problem: (message) => syncerProblem(message), concerns: () => review.casebook,
});
const passwordScreen = new PasswordScreen({ back: () => showScreen('screen-capture') });
const devices = new DevicesScreen({ back: () => showScreen('screen-capture'), problem: (message) => syncerProblem(message) });
const joining = new JoinFlow({ store, api, started: (session) => start(session) });
const recovering = new RecoverScreen({ store, api, started: (session) => start(session), back: () => void showSignIn(true) });
const syncer = new Syncer(store, {
  active: () => active,
  casebook: () => review.casebook,
  changed: () => void refreshStatus(),
  revoked: (session) => void revoked(session),
  problem: (message) => syncerProblem(message),
});

/** @param {string} message a warning to keep on screen ('' clears it) */
function syncerProblem(message) {
  const line = byId('pending-refused', HTMLElement);
  line.hidden = !message;
  line.dataset.sticky = message ? 'true' : 'false';
  line.textContent = message;
}

// --- the service worker and updates ------------------------------------------------------------

function showUpdate() {
  upgradeWaiting = true;
  byId('update-banner', HTMLElement).hidden = false;
}

async function registerWorker() {
  if (!('serviceWorker' in navigator)) return;
  const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  void signalOfflineReady();
  const watch = (/** @type {ServiceWorker | null} */ worker) => {
    if (!worker) return;
    const check = () => {
      if (worker.state === 'installed' && navigator.serviceWorker.controller) showUpdate();
    };
    worker.addEventListener('statechange', check);
    check();
  };
  watch(registration.waiting);
  registration.addEventListener('updatefound', () => watch(registration.installing));
  byId('update-reload', HTMLButtonElement).addEventListener('click', async () => {
    await capture.flushDraft(); // the outbox is already durable; a draft in progress is sealed first
    const waiting = registration.waiting;
    if (!waiting) {
      location.reload();
      return;
    }
    navigator.serviceWorker.addEventListener('controllerchange', () => location.reload(), { once: true });
    waiting.postMessage({ type: 'skip-waiting' });
  });
  setInterval(() => void registration.update().catch(() => undefined), 30 * 60_000);
}

/** Mark the page once a service worker controls it, so the app (and its tests) know it will start with the
 * network off: `<html data-offline="ready">`. Waits on the worker's own events, never on polling. */
async function signalOfflineReady() {
  await navigator.serviceWorker.ready;
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
  }
  document.documentElement.dataset.offline = 'ready';
}

async function requestSend() {
  if (navigator.onLine) await syncer.kick();
  else {
    const registration = await navigator.serviceWorker?.ready;
    const sync = /** @type {any} */ (registration)?.sync;
    await sync?.register('cairn-outbox').catch(() => undefined);
  }
}

// --- status --------------------------------------------------------------------------------------

async function refreshStatus() {
  const byDevice = await store.pendingByDevice();
  let count = 0;
  let oldest = Infinity;
  let refused = false;
  for (const row of byDevice.values()) {
    count += row.count;
    oldest = Math.min(oldest, row.oldestMs);
    refused = refused || row.refused !== null;
  }
  const counter = byId('pending-count', HTMLElement);
  counter.textContent = String(count);
  counter.dataset.count = String(count);
  byId('pending-noun', HTMLElement).textContent = count === 1 ? 'entry' : 'entries';
  byId('pending-age', HTMLElement).textContent = count ? `oldest ${formatAge(Date.now() - oldest)} ago` : '';
  const last = /** @type {number | undefined} */ (await store.setting('last-sync'));
  byId('last-sync', HTMLElement).textContent = last ? `last sent ${formatTime(last)}` : 'Nothing sent from this device yet';
  const net = byId('net-state', HTMLElement);
  net.textContent = navigator.onLine ? 'Online' : 'Offline';
  net.dataset.state = navigator.onLine ? 'online' : 'offline';
  /** @type {string[]} */
  const waitingFor = [];
  /** @type {string[]} */
  const sendsFor = [];
  for (const account of await store.accounts()) {
    const mine = byDevice.get(hex(account.deviceId));
    if (!mine || account.id === active?.id) continue;
    const line = `${mine.count} for ${account.displayName || account.login}`;
    (await delivers(store, account) ? sendsFor : waitingFor).push(line);
  }
  const lines = [];  // a colleague's entries leave without them (app/delivery.js), unless their device predates that
  if (sendsFor.length) lines.push(`${navigator.onLine ? 'Sending' : 'Sent when online, without unlocking'}: ${sendsFor.join(', ')}.`);
  if (waitingFor.length) lines.push(`Waiting until they unlock: ${waitingFor.join(', ')}.`);
  const locked = byId('pending-locked', HTMLElement);
  locked.hidden = lines.length === 0;
  locked.textContent = lines.join(' ');
  const refusedLine = byId('pending-refused', HTMLElement);
  if (refused) {
    refusedLine.hidden = false;
    refusedLine.textContent = 'The server refused an entry. It is kept on this device, unsent: please tell the safeguarding team.';
  } else if (refusedLine.dataset.sticky !== 'true') {
    refusedLine.hidden = true;
  }
  const mine = active ? byDevice.get(hex(active.record.deviceId))?.count ?? 0 : 0;
  byId('sync-now', HTMLButtonElement).hidden = !(mine && navigator.onLine);
}

async function checkStorage() {
  const storage = navigator.storage;
  if (!storage?.persist) return;
  const persisted = (await storage.persisted()) || (await storage.persist());
  byId('storage-warning', HTMLElement).hidden = persisted;
}

// --- people, sign-in and unlock ---------------------------------------------------------------------

async function showPeople() {
  const accounts = (await store.accounts()).sort((a, b) => b.lastUsedMs - a.lastUsedMs);
  if (!accounts.length) {
    showSignIn(false);
    return;
  }
  const byDevice = await store.pendingByDevice();
  byId('people-list', HTMLUListElement).replaceChildren(...accounts.map((account) => {
    const waiting = byDevice.get(hex(account.deviceId))?.count ?? 0;
    const button = h('button', { type: 'button', class: 'secondary' }, account.displayName || account.login,
      h('span', { class: 'person-meta', text: waiting ? `${waiting} waiting to send` : account.login }));
    button.addEventListener('click', () => showUnlock(account));
    return h('li', {}, button);
  }));
  setSession(null);
  showScreen('screen-people');
}

/** @param {boolean} cancellable */
async function showSignIn(cancellable) {
  const school = byId('sign-in-school', HTMLInputElement);
  if (!school.value) {
    school.value = new URLSearchParams(location.search).get('school') ?? String((await store.setting('school')) ?? '');
  }
  byId('sign-in-cancel', HTMLButtonElement).hidden = !cancellable;
  byId('sign-in-totp-field', HTMLElement).hidden = true;
  byId('sign-in-enrol', HTMLElement).hidden = true;
  byId('sign-in-message', HTMLElement).textContent = '';
  setSession(null);
  showScreen('screen-sign-in', school.value ? byId('sign-in-login', HTMLInputElement) : school);
}

/** @param {string} code a school code: 32 hex digits or 22 characters of base64url */
function schoolId(code) {
  const clean = code.trim();
  if (/^[0-9a-fA-F]{32}$/.test(clean)) return unhex(clean);
  const raw = b64d(clean, 'school code');
  if (raw.length !== 16) throw new TypeError('not a school code');
  return raw;
}

async function submitSignIn() {
  const message = byId('sign-in-message', HTMLElement);
  const button = byId('sign-in-submit', HTMLButtonElement);
  const login = byId('sign-in-login', HTMLInputElement).value.trim();
  const password = byId('sign-in-password', HTMLInputElement);
  const totpField = byId('sign-in-totp-field', HTMLElement);
  const totp = byId('sign-in-totp', HTMLInputElement);
  let school;
  try {
    school = schoolId(byId('sign-in-school', HTMLInputElement).value);
  } catch {
    message.textContent = 'The school code is not right. Ask your school office for it.';
    return;
  }
  if (!login || !password.value) {
    message.textContent = 'Enter your username and password.';
    return;
  }
  if (!navigator.onLine) {
    message.textContent = 'Signing in for the first time needs a connection. Try again when you have signal.';
    return;
  }
  button.disabled = true;
  message.textContent = 'Signing in…';
  await nextPaint();
  try {
    const result = await signInHere(store, api, {
      schoolId: school, login, password: password.value, totp: totpField.hidden ? undefined : totp.value.trim(),
      derived: pendingSignIn,
    });
    pendingSignIn = result.derived;
    if (result.error) throw result.error;
    pendingSignIn = undefined;
    password.value = '';
    totp.value = '';
    byId('sign-in-enrol', HTMLElement).hidden = true;
    byId('sign-in-enrol-secret', HTMLElement).textContent = '';
    await start(/** @type {Session} */ (result.session));
  } catch (error) {
    if (error instanceof ApiFailure && error.code === 'totp_required') {
      totpField.hidden = false;
      message.textContent = 'Your account needs a code from your authenticator app too.';
      totp.focus();
    } else if (error instanceof ApiFailure && error.code === 'totp_enrolment_required') {
      // a good password, and an account that now needs an authenticator: set it up, then sign in with its code
      const { totp_secret: secret, totp_uri: uri } = error.error;
      showAuthenticator('sign-in-enrol', String(secret ?? ''), String(uri ?? ''), groupSecret);
      byId('sign-in-enrol', HTMLElement).hidden = false;
      totpField.hidden = false;
      message.textContent = 'Set up your authenticator app, then enter its code.';
      totp.focus();
    } else if (error instanceof ApiFailure) {
      message.textContent = {
        sign_in_failed: 'That username, password or code is not right.',
        too_many_attempts: 'Too many attempts. Wait 15 minutes, then try again.',
      }[error.code] ?? `Sign-in failed: ${error.detail}`;
      if (error.code === 'sign_in_failed') pendingSignIn = undefined;
    } else if (error instanceof WrongPassword) {
      message.textContent = error.message;
    } else if (error instanceof TypeError) {
      message.textContent = 'Cairn could not reach the school server. Check the connection and try again.';
    } else {
      message.textContent = 'Something went wrong while signing in. Please try again.';
      throw error;
    }
  } finally {
    button.disabled = false;
  }
}

/** @param {AccountRecord} account */
function showUnlock(account) {
  unlocking = account;
  byId('unlock-name', HTMLElement).textContent = account.displayName || account.login;
  byId('unlock-title', HTMLElement).textContent = `Unlock for ${account.displayName || account.login}`;
  byId('unlock-message', HTMLElement).textContent = '';
  showScreen('screen-unlock', byId('unlock-password', HTMLInputElement));
}

async function submitUnlock() {
  const account = unlocking;
  const password = byId('unlock-password', HTMLInputElement);
  const message = byId('unlock-message', HTMLElement);
  const button = byId('unlock-submit', HTMLButtonElement);
  if (!account || !password.value) return;
  button.disabled = true;
  message.textContent = 'Unlocking…';
  await nextPaint();
  try {
    const session = await unlock(store, api, account, password.value);
    password.value = '';
    await start(session);
  } catch (error) {
    if (!(error instanceof WrongPassword)) throw error;
    message.textContent = 'That password is not right. Try again.';
    password.select();
  } finally {
    button.disabled = false;
  }
}

/** @param {Session | null} session */
function setSession(session) {
  active = session;
  const who = byId('who', HTMLElement);
  who.hidden = !session;
  who.textContent = session ? session.name : '';
  byId('switch-person', HTMLButtonElement).hidden = !session;
  byId('lock-now', HTMLButtonElement).hidden = !session;
  void refreshStatus();
}

/** @param {Session} session */
async function start(session) {
  setSession(session);
  resetIdle();
  await capture.open(session);
  showScreen('screen-capture');
  await review.open(session); // the sections this person's roles allow (a reader's Casebook opens here)
  admin.open(session);
  devices.open(session);
  passwordScreen.open(session);
  approvals.open(session);
  void checkStorage();
  void refreshStatus();
  void syncer.kick();
}

/** Lock whoever is unlocked: their draft is sealed, their keys wiped. */
async function lock() {
  const session = active;
  if (!session) return;
  await capture.close();
  syncer.stop();
  review.close();
  admin.close();
  devices.close();
  passwordScreen.close();
  approvals.close();
  setSession(null);
  session.wipe();
  void syncer.kick(); // what they queued leaves now, without them (app/delivery.js)
}

/** @param {Session} session */
async function revoked(session) {
  await lock();
  await session.outbox.wipe();
  await showPeople();
  const line = byId('pending-refused', HTMLElement);
  line.hidden = false;
  line.dataset.sticky = 'true';
  line.textContent = `${session.name}'s access on this device was removed, so their data here has been wiped.`;
}

// --- privacy and idle lock ---------------------------------------------------------------------------

async function hideEverything() {
  byId('privacy-screen', HTMLElement).hidden = false;
  byId('app', HTMLElement).hidden = true;
  byId('privacy-off', HTMLButtonElement).focus();
  for (const id of ['sign-in-password', 'sign-in-totp', 'unlock-password']) byId(id, HTMLInputElement).value = '';
  const screen = byId('privacy-screen', HTMLElement);
  delete screen.dataset.state;
  const was = active;
  await lock();
  if (was) {
    const account = await store.account(was.id);
    if (account) unlocking = account;
  }
  screen.dataset.state = 'locked'; // the draft is sealed and the form cleared (tests wait on this)
}

function showAgain() {
  byId('privacy-screen', HTMLElement).hidden = true;
  byId('app', HTMLElement).hidden = false;
  if (unlocking) showUnlock(unlocking);
  else void showPeople();
}

/** @param {unknown} value */
function idleSetting(value) {
  return typeof value === 'number' && value >= 1000 && value <= 3_600_000 ? value : 5 * 60_000;
}

let idle = /** @type {ReturnType<typeof setTimeout> | null} */ (null);
function resetIdle() {
  if (idle) clearTimeout(idle);
  idle = setTimeout(async () => {
    if (!active) return;
    await lock();
    await showPeople();
  }, IDLE_MS);
}

// --- wiring --------------------------------------------------------------------------------------

byId('sign-in-form', HTMLFormElement).addEventListener('submit', (event) => { event.preventDefault(); void submitSignIn(); });
byId('sign-in-cancel', HTMLButtonElement).addEventListener('click', () => void showPeople());
byId('unlock-form', HTMLFormElement).addEventListener('submit', (event) => { event.preventDefault(); void submitUnlock(); });
byId('unlock-cancel', HTMLButtonElement).addEventListener('click', () => void showPeople());
byId('add-person', HTMLButtonElement).addEventListener('click', () => void showSignIn(true));
byId('sign-in-forgot', HTMLButtonElement).addEventListener('click', () => recovering.open({
  school: byId('sign-in-school', HTMLInputElement).value, login: byId('sign-in-login', HTMLInputElement).value,
}));
byId('switch-person', HTMLButtonElement).addEventListener('click', async () => { await lock(); await showPeople(); });
byId('lock-now', HTMLButtonElement).addEventListener('click', async () => {
  const was = active;
  await lock();
  const account = was && (await store.account(was.id));
  if (account) showUnlock(account);
  else await showPeople();
});
byId('privacy-on', HTMLButtonElement).addEventListener('click', () => void hideEverything());
byId('privacy-off', HTMLButtonElement).addEventListener('click', showAgain);
byId('sync-now', HTMLButtonElement).addEventListener('click', () => void syncer.kick());
for (const type of ['pointerdown', 'keydown', 'input']) addEventListener(type, resetIdle, { passive: true });
addEventListener('online', () => void refreshStatus());
addEventListener('offline', () => void refreshStatus());
addEventListener('pagehide', () => void capture.flushDraft());
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') void capture.flushDraft();
});
setInterval(() => void refreshStatus(), 30_000);

syncer.start();
await refreshStatus();
const invitation = parseJoinLink(location.hash); // an invitation link opens the join screens
if (invitation) joining.open(invitation);
else await showPeople();
document.documentElement.dataset.ready = 'true';
performance.mark('cairn:ready');
if (upgradeWaiting) showUpdate();
void registerWorker().catch(() => undefined);
