// Randomness for the public API, with a private hook for the known-answer vector tests.
//
// Only the vector tests call `inject`: it makes the next `randomBytes` calls return the given byte
// strings, in order, so a seal can be reproduced byte for byte. Nothing in the app may use it.

import sodium from './sodium.js';

/** @type {Uint8Array[] | null} */
let injected = null;

/**
 * Return `n` random bytes from libsodium's CSPRNG (or, under `inject`, the next injected string).
 * @param {number} n
 * @returns {Uint8Array}
 */
export function randomBytes(n) {
  if (injected !== null) {
    const next = injected.shift();
    if (next === undefined) {
      throw new Error(`_random.inject: a ${n}-byte random string was requested but the injected list is exhausted.`);
    }
    if (next.length !== n) {
      throw new Error(`_random.inject: a ${n}-byte random string was requested but the next injected one has ${next.length} bytes.`);
    }
    return Uint8Array.from(next);
  }
  return sodium.randombytes_buf(n);
}

/**
 * Private hook for vector tests: the following `randomBytes` calls return these strings in order.
 * @param {Uint8Array[]} list
 */
export function inject(list) {
  injected = list.map((b) => Uint8Array.from(b));
}

/** How many injected strings have not been consumed yet (0 when not injecting). */
export function pending() {
  return injected === null ? 0 : injected.length;
}

/** End injection: `randomBytes` draws from the CSPRNG again. */
export function restore() {
  injected = null;
}
