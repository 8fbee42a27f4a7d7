// Wraps (docs/PROTOCOL.md section 4): a 32-byte key sealed to an X25519 public key, with associated
// data. The sealed box's design with a domain-separated KDF. 80 bytes.

import { Reader, Writer, checkBytes } from './_codec.js';
import { H, KEY_BYTES, aeadDecrypt, aeadEncrypt, keyedHash, x25519, x25519Base } from './_primitives.js';
import { randomBytes } from './_random.js';
import { Malformed } from './errors.js';

export const WRAP_BYTES = 80;

/**
 * The wrap's key and nonce.
 * @param {Uint8Array} shared
 * @param {Uint8Array} ephPk
 * @param {Uint8Array} recipientPk
 */
function keyAndNonce(shared, ephPk, recipientPk) {
  const both = new Writer().bytes(ephPk).bytes(recipientPk).finish();
  return {
    k: keyedHash(shared, 'cairn/v1/wrap/key', both),
    n: H('cairn/v1/wrap/nonce', both, 24),
  };
}

/**
 * Seal a 32-byte payload to an X25519 public key, bound to `ad`.
 * @param {Uint8Array} recipientPk 32 bytes
 * @param {Uint8Array} payload 32 bytes
 * @param {Uint8Array} ad
 * @returns {Uint8Array} 80 bytes
 */
export function wrapKey(recipientPk, payload, ad) {
  checkBytes(recipientPk, 32, 'wrapKey: recipientPk');
  checkBytes(payload, KEY_BYTES, 'wrapKey: payload');
  const ephSk = randomBytes(32);
  const ephPk = x25519Base(ephSk);
  const shared = x25519(ephSk, recipientPk, 'making wrap');
  ephSk.fill(0);
  const { k, n } = keyAndNonce(shared, ephPk, recipientPk);
  shared.fill(0);
  const box = aeadEncrypt(k, n, ad, payload);
  k.fill(0);
  return new Writer().bytes(ephPk).bytes(box).finish();
}

/**
 * Open a wrap with the recipient's X25519 secret key. The length is checked before any use.
 * @param {Uint8Array} wrap
 * @param {Uint8Array} recipientSk 32 bytes
 * @param {Uint8Array} ad
 * @returns {Uint8Array} the 32-byte payload
 */
export function unwrapKey(wrap, recipientSk, ad) {
  const what = 'opening wrap';
  if (!(wrap instanceof Uint8Array) || wrap.length !== WRAP_BYTES) {
    throw new Malformed(`${what}: expected ${WRAP_BYTES} bytes, got ${wrap instanceof Uint8Array ? wrap.length : typeof wrap}`);
  }
  checkBytes(recipientSk, 32, 'unwrapKey: recipientSk');
  const r = new Reader(wrap, what);
  const ephPk = r.bytes(32, 'eph_pk');
  const box = r.bytes(r.remaining, 'box');
  r.done();
  const recipientPk = x25519Base(recipientSk);
  const shared = x25519(recipientSk, ephPk, what);
  const { k, n } = keyAndNonce(shared, ephPk, recipientPk);
  shared.fill(0);
  const payload = aeadDecrypt(k, n, ad, box, what);
  k.fill(0);
  return payload;
}
