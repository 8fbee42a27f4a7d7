// The identity binding (docs/PROTOCOL.md section 2.7), the twin of crypto/identity.py: an account's Ed25519
// identity key vouches for its X25519 identity key. Grants and named-person wraps are sealed to the X25519
// key, so without a binding whoever serves the directory could pair an account's real Ed25519 key with an
// X25519 key of its own, and every grant sealed to that account would open for it. Made on the account's
// own device at registration (and again only by a recovery that changes the identity keys, which a
// safeguarding keyholder approves).

import { Writer } from './_codec.js';
import { SIGNATURE_BYTES, ctx, sign, verify } from './_primitives.js';
import { BadSignature, Malformed } from './errors.js';

export const BINDING_BYTES = SIGNATURE_BYTES;
const CTX = 'cairn/v1/identity/binding';

/**
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {Uint8Array} identityX25519Pk
 */
function message(schoolId, userId, identityX25519Pk) {
  return new Writer().bytes(ctx(CTX)).id(schoolId, 'school id').id(userId, 'user id')
    .bytes(identityX25519Pk, 32, 'identity X25519 key').finish();
}

/**
 * 64 bytes: the identity Ed25519 key's signature over school, user and the X25519 identity key.
 * Python: `sign_identity_binding`.
 * @param {Uint8Array} identitySecretKey the 64-byte libsodium form
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {Uint8Array} identityX25519Pk
 * @returns {Uint8Array}
 */
export function signIdentityBinding(identitySecretKey, schoolId, userId, identityX25519Pk) {
  return sign(identitySecretKey, message(schoolId, userId, identityX25519Pk));
}

/**
 * Throw BadSignature unless `binding` is the Ed25519 identity key's signature over the X25519 key
 * (Malformed for a binding that is not 64 bytes, or a field of the wrong length). Python:
 * `verify_identity_binding`.
 * @param {Uint8Array} binding
 * @param {Uint8Array} identityEd25519Pk
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} userId
 * @param {Uint8Array} identityX25519Pk
 */
export function verifyIdentityBinding(binding, identityEd25519Pk, schoolId, userId, identityX25519Pk) {
  const what = 'verifying identity binding';
  let signed;
  try {
    signed = message(schoolId, userId, identityX25519Pk);
  } catch (e) {
    if (e instanceof TypeError) throw new Malformed(`${what}: ${e.message}`);
    throw e;
  }
  if (!(binding instanceof Uint8Array) || binding.length !== BINDING_BYTES) {
    throw new Malformed(`${what}: a binding is ${BINDING_BYTES} bytes, not ${binding?.length}`);
  }
  if (!verify(identityEd25519Pk, signed, binding)) throw new BadSignature(`${what}: signature does not verify`);
}
