// Thin wrappers over libsodium (docs/PROTOCOL.md section 1). No policy here beyond exact lengths,
// refusing an all-zero X25519 result, and turning libsodium's failures into typed errors.

import sodium from './sodium.js';
import { Writer, checkBytes } from './_codec.js';
import { DecryptionFailed } from './errors.js';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;
export const SIGNATURE_BYTES = 64;
export const ED25519_SK_BYTES = 64;

const EMPTY = new Uint8Array(0);

/**
 * `u8(len(label)) || label`, for an ASCII label that starts with `cairn/v1/`.
 * @param {string} label
 * @returns {Uint8Array}
 */
export function ctx(label) {
  if (!label.startsWith('cairn/v1/') || label.length > 255 || !/^[\x20-\x7e]+$/.test(label)) {
    throw new TypeError(`A context label must be printable ASCII starting with "cairn/v1/", got ${JSON.stringify(label)}.`);
  }
  return new Writer().u8(label.length).bytes(sodium.from_string(label)).finish();
}

/**
 * `H(label, data)`: unkeyed BLAKE2b over `ctx(label) || data`, 32 bytes (24 for nonces).
 * @param {string} label
 * @param {Uint8Array} data
 * @param {number} [outlen]
 * @returns {Uint8Array}
 */
export function H(label, data, outlen = 32) {
  return sodium.crypto_generichash(outlen, new Writer().bytes(ctx(label)).bytes(data).finish(), null);
}

/**
 * Keyed BLAKE2b-256 over `ctx(label) || data`, key 16 to 64 bytes.
 * @param {Uint8Array} key
 * @param {string} label
 * @param {Uint8Array} data
 * @returns {Uint8Array}
 */
export function keyedHash(key, label, data) {
  if (!(key instanceof Uint8Array) || key.length < 16 || key.length > 64) {
    throw new TypeError('A BLAKE2b key must be a Uint8Array of 16 to 64 bytes.');
  }
  return sodium.crypto_generichash(32, new Writer().bytes(ctx(label)).bytes(data).finish(), key);
}

/**
 * `KDF(key, label)`: keyed BLAKE2b-256 over `ctx(label)`.
 * @param {Uint8Array} key
 * @param {string} label
 * @returns {Uint8Array}
 */
export function KDF(key, label) {
  return keyedHash(key, label, EMPTY);
}

/**
 * XChaCha20-Poly1305 (IETF): ciphertext followed by the 16-byte tag.
 * @param {Uint8Array} key
 * @param {Uint8Array} nonce
 * @param {Uint8Array} ad
 * @param {Uint8Array} message
 * @returns {Uint8Array}
 */
export function aeadEncrypt(key, nonce, ad, message) {
  checkBytes(key, KEY_BYTES, 'An AEAD key');
  checkBytes(nonce, NONCE_BYTES, 'An AEAD nonce');
  return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, null, nonce, key);
}

/**
 * Decrypt and authenticate; a failed tag is DecryptionFailed.
 * @param {Uint8Array} key
 * @param {Uint8Array} nonce
 * @param {Uint8Array} ad
 * @param {Uint8Array} ciphertext
 * @param {string} what the step, for the message: "opening envelope"
 * @returns {Uint8Array}
 */
export function aeadDecrypt(key, nonce, ad, ciphertext, what) {
  checkBytes(key, KEY_BYTES, 'An AEAD key');
  checkBytes(nonce, NONCE_BYTES, 'An AEAD nonce');
  if (ciphertext.length < TAG_BYTES) {
    throw new DecryptionFailed(`${what}: ciphertext is shorter than its tag`);
  }
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    throw new DecryptionFailed(`${what}: authentication tag does not match`);
  }
}

/**
 * X25519(sk, pk); an all-zero result (a low-order public key) is refused with DecryptionFailed.
 * @param {Uint8Array} sk
 * @param {Uint8Array} pk
 * @param {string} what
 * @returns {Uint8Array}
 */
export function x25519(sk, pk, what) {
  checkBytes(sk, 32, 'An X25519 secret key');
  checkBytes(pk, 32, 'An X25519 public key');
  let shared;
  try {
    shared = sodium.crypto_scalarmult(sk, pk);
  } catch {
    throw new DecryptionFailed(`${what}: X25519 result is all zero (low-order public key)`);
  }
  if (sodium.is_zero(shared)) {
    throw new DecryptionFailed(`${what}: X25519 result is all zero (low-order public key)`);
  }
  return shared;
}

/**
 * The X25519 public key of a secret key.
 * @param {Uint8Array} sk
 * @returns {Uint8Array}
 */
export function x25519Base(sk) {
  checkBytes(sk, 32, 'An X25519 secret key');
  return sodium.crypto_scalarmult_base(sk);
}

/**
 * The Ed25519 key pair of a 32-byte seed; `secretKey` is libsodium's 64-byte form.
 * @param {Uint8Array} seed
 * @returns {{publicKey: Uint8Array, secretKey: Uint8Array}}
 */
export function signKeyPair(seed) {
  checkBytes(seed, 32, 'An Ed25519 seed');
  const kp = sodium.crypto_sign_seed_keypair(seed);
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

/**
 * The Ed25519 public key inside a 64-byte libsodium secret key.
 * @param {Uint8Array} secretKey
 * @returns {Uint8Array}
 */
export function signPublicKey(secretKey) {
  checkBytes(secretKey, ED25519_SK_BYTES, 'An Ed25519 secret key');
  return sodium.crypto_sign_ed25519_sk_to_pk(secretKey);
}

/**
 * Ed25519 detached signature.
 * @param {Uint8Array} secretKey 64-byte libsodium form
 * @param {Uint8Array} message
 * @returns {Uint8Array}
 */
export function sign(secretKey, message) {
  checkBytes(secretKey, ED25519_SK_BYTES, 'An Ed25519 secret key');
  return sodium.crypto_sign_detached(message, secretKey);
}

/**
 * Ed25519 verification as libsodium does it (non-canonical signatures refused). A key or signature
 * of the wrong length does not verify.
 * @param {Uint8Array} publicKey
 * @param {Uint8Array} message
 * @param {Uint8Array} signature
 * @returns {boolean}
 */
export function verify(publicKey, message, signature) {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) return false;
  try {
    return sodium.crypto_sign_verify_detached(signature, message, publicKey);
  } catch {
    return false;
  }
}

/**
 * Argon2id v1.3, 32-byte output.
 * @param {Uint8Array} password
 * @param {Uint8Array} salt 16 bytes
 * @param {number} opslimit
 * @param {number} memlimit bytes
 * @returns {Uint8Array}
 */
export function argon2id(password, salt, opslimit, memlimit) {
  checkBytes(salt, 16, 'An Argon2id salt');
  return sodium.crypto_pwhash(32, password, salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13);
}

/**
 * Constant-time comparison; strings of different lengths are unequal.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function constantTimeEqual(a, b) {
  if (a.length !== b.length) return false;
  if (a.length === 0) return true;
  return sodium.memcmp(a, b);
}
