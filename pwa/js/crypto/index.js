// Cairn's v1 cryptographic constructions, the JavaScript twin of crypto/ (docs/PROTOCOL.md).
// This list is the public API; modules whose names start with `_` are private.

export {
  CryptoError, Malformed, DecryptionFailed, BadSignature, NoKey, UnsupportedVersion, ParametersBelowFloor, Rollback,
  Unapproved,
} from './errors.js';
export {
  KdfParams, newKdfParams, deriveAccount, signChallenge, verifyChallenge,
} from './account.js';
export {
  SLOT_PASSWORD, SLOT_RECOVERY, sealBundle, openBundle, generateIdentityKeys, identityPublicKeys,
} from './bundle.js';
export {
  generateRecoveryKey, formatRecoveryKey, parseRecoveryKey, recoveryKek, recoveryAuthKeyPair,
  signPasswordChange, signRecoveryProof, verifyPasswordChange, verifyRecoveryProof,
} from './recovery.js';
export {
  makeDeviceCert, makeDeviceCertBytes, signDeliveryAuth, signDeviceAuth, signingKeyPair, verifyDeliveryAuth,
  verifyDeviceAuth, verifyDeviceCert,
} from './device.js';
export { signIdentityBinding, verifyIdentityBinding } from './identity.js';
export {
  ROLES, encodeItem, itemFromJson, itemHex, itemJson, readApproval, signApproval, sortItems, verifyApproval,
} from './approval.js';
export { wrapKey, unwrapKey } from './wrap.js';
export { generateReaderKey, makeGrant, openGrant, readGrant } from './grant.js';
export { makeEntryGrant, openEntryGrant, readEntryGrant } from './entry_grant.js';
export {
  PUPIL_PURPOSE, SIGNING_PURPOSE, checkContent, checkTransition, checkUnchanged, directoryHash, directorySigningKey,
  encodeContent, fingerprint, readDirectory, signDirectory, verifyDirectory, widenings,
} from './directory.js';
export {
  KIND_CONCERN_EVENT, RECIPIENT_READER_KEY, RECIPIENT_PERSON, paddedSize, generateEntryKey, envelopeHash,
} from './envelope.js';
/** seal, open, parse, verify, envelopeHash, paddedSize: `envelope.seal(...)` as in Python. */
export * as envelope from './envelope.js';
export { ROSTER_PAD, openRosterEntry, pupilIdFor, rosterEntryAuthor, sealRosterEntry } from './roster.js';
export {
  SLOT_IDENTITY_WRAP, SLOT_PASSWORD_WRAP, identityWrapKey, localKey, newDataKey, openLegacyLocal, openLocal,
  passwordWrapKey, sealLocal, unwrapDataKey, wrapDataKey,
} from './local.js';
