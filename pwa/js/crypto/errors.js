// The one error family of the crypto layer (docs/PROTOCOL.md section 1.1).
//
// Every failure of a construction is one of these. `code` is stable and is what the known-answer
// vectors' `expect` field names. Messages say which construction and which step failed; they never
// carry key bytes or plaintext.

/** The root of every error the crypto layer raises on bad input. */
export class CryptoError extends Error {
  /** @type {string} */
  static code = 'crypto_error';

  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = new.target.name;
    /** @type {string} */
    this.code = /** @type {typeof CryptoError} */ (new.target).code;
  }
}

/** Truncated or trailing bytes, a count or length out of range, bad padding, a recovery key typo. */
export class Malformed extends CryptoError {
  static code = 'parse_failure';
}

/** An AEAD tag fails, a key commitment does not match, a grant holds an unlisted key. */
export class DecryptionFailed extends CryptoError {
  static code = 'auth_failure';
}

/** An Ed25519 signature fails, or the signer is not the author named inside the plaintext. */
export class BadSignature extends CryptoError {
  static code = 'bad_signature';
}

/** None of the reader's keys is among the recipients, or the object is addressed to someone else. */
export class NoKey extends CryptoError {
  static code = 'no_key';
}

/** An unknown version byte or algorithm id. */
export class UnsupportedVersion extends CryptoError {
  static code = 'unsupported_version';
}

/** Argon2id parameters below the client's floor or above its ceiling. */
export class ParametersBelowFloor extends UnsupportedVersion {
  static code = 'unsupported_version';
}

/** A signed directory version not newer than the one already accepted, or one that does not chain. */
export class Rollback extends CryptoError {
  static code = 'rollback';
}

/**
 * A signed directory version that widens who can read without a safeguarding keyholder's approval, or
 * changes what may never change (a listed key swapped or dropped, a revoked device or a leaver back).
 */
export class Unapproved extends CryptoError {
  static code = 'unapproved';
}
