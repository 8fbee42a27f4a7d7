// Small DOM helpers for the app's screens. Text always goes in as text (never as HTML), so nothing a person
// typed, and no pupil's name, can ever run as markup.

/**
 * The element with this id, checked to be of `type`.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{new (): T, prototype: T}} type
 * @returns {T}
 */
export function byId(id, type) {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`The page has no ${type.name} #${id}.`);
  return found;
}

/**
 * A new element with attributes and children (strings become text nodes).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | boolean | number | undefined>} [attrs]
 * @param {(Node | string | null | undefined | false)[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/**
 * Show one screen (any `section.screen` in the page) and hide the others; focus its heading (or `focus`) so a
 * screen reader follows. Listeners of the `cairn:screen` event (detail: the id) hear of each change.
 * @param {string} id
 * @param {HTMLElement} [focus]
 */
export function showScreen(id, focus) {
  byId(id, HTMLElement);
  for (const screen of Array.from(document.querySelectorAll('section.screen'))) {
    if (screen instanceof HTMLElement) screen.hidden = screen.id !== id;
  }
  document.dispatchEvent(new CustomEvent('cairn:screen', { detail: id }));
  const target = focus ?? byId(id, HTMLElement).querySelector('h1');
  if (target instanceof HTMLElement) {
    if (!target.hasAttribute('tabindex') && target.tagName === 'H1') target.setAttribute('tabindex', '-1');
    target.focus({ preventScroll: false });
  }
}

/**
 * "3 minutes", "2 hours", "5 days".
 * @param {number} ms
 */
export function formatAge(ms) {
  const minutes = Math.floor(ms / 60000);
  if (minutes < 1) return 'less than a minute';
  if (minutes < 60) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} hour${hours === 1 ? '' : 's'}`;
  const days = Math.floor(hours / 24);
  return `${days} days`;
}

/**
 * "10:42" today, "Tue 10:42" this week, "3 Nov 10:42" before.
 * @param {number} ms
 */
export function formatTime(ms) {
  const when = new Date(ms);
  const now = new Date();
  const time = when.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  if (when.toDateString() === now.toDateString()) return time;
  if (now.getTime() - ms < 6 * 86400000) return `${when.toLocaleDateString('en-GB', { weekday: 'short' })} ${time}`;
  return `${when.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' })} ${time}`;
}

/** Let the browser paint (a message before a slow step such as Argon2id). */
export function nextPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

/**
 * The local date and time as a datetime-local value (YYYY-MM-DDTHH:MM).
 * @param {Date} [when]
 */
export function localDateTime(when = new Date()) {
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}T${pad(when.getHours())}:${pad(when.getMinutes())}`;
}
