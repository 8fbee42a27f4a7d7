// Joining with an invitation and replacing a forgotten password with the recovery key, in the browser: the
// twins of `register` in sync/device.py and `recover` in sync/recovery.py (docs/PROTOCOL.md section 10).
// Every key is made here; the server receives public keys and sealed bundles only.

import {
  KdfParams, SLOT_PASSWORD, SLOT_RECOVERY, deriveAccount, formatRecoveryKey, generateIdentityKeys,
  generateRecoveryKey, identityPublicKeys, makeDeviceCert, newKdfParams, openBundle, parseRecoveryKey,
  recoveryAuthKeyPair, recoveryKek, sealBundle, signIdentityBinding, signRecoveryProof, signingKeyPair,
} from '../crypto/index.js';
import { Device, nowMs } from './device.js';
import { b64d, b64e, unhex } from './protocol.js';

/** @typedef {import('./device.js').Api} Api */
/** @typedef {import('./device.js').Derived} Derived */

/**
 * What joining gives: the recovery key to show once, and for accounts that read concerns the TOTP secret.
 * @typedef {object} Registration
 * @property {Uint8Array} userId
 * @property {string} login
 * @property {string[]} roles
 * @property {string} recoveryKey printed form, nine groups of four
 * @property {string | null} totpSecret Base32
 * @property {string | null} totpUri otpauth:// URI for an authenticator app
 */

/** @param {number} n */
function random(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/**
 * Read an invitation link's fragment: `#join=<school id, 32 hex digits>.<code>`. The code stays in the
 * fragment, which browsers never send to a server, so it never reaches a log.
 * @param {string} hash location.hash
 * @returns {{schoolId: Uint8Array, code: string} | null}
 */
export function parseJoinLink(hash) {
  const found = /^#join=([0-9a-f]{32})\.([0-9a-f]{16,64})$/i.exec(hash.trim());
  return found ? { schoolId: unhex(found[1].toLowerCase()), code: found[2].toLowerCase() } : null;
}

/**
 * Accept an invitation: make the account's keys on this device, send only public halves and sealed bundles,
 * and return the recovery key to show once with the device (not yet signed in: sign in next, with the TOTP
 * code where the account reads concerns). Python: `sync.device.register`.
 * @param {Api} api
 * @param {Uint8Array} schoolId
 * @param {string} code
 * @param {string} password
 * @returns {Promise<{registration: Registration, device: Device, derived: Derived, deviceSeed: Uint8Array}>}
 */
export async function register(api, schoolId, code, password) {
  const userId = random(16);
  const deviceId = random(16);
  const deviceSeed = random(32);
  const params = newKdfParams();
  const account = deriveAccount(password, params);
  const identity = generateIdentityKeys();
  const publicKeys = identityPublicKeys(identity);
  const secret = generateRecoveryKey();
  const deviceKey = signingKeyPair(deviceSeed);
  const identitySecretKey = signingKeyPair(identity.ed25519Seed).secretKey;
  const cert = makeDeviceCert({
    identitySecretKey, schoolId, userId, deviceId, devicePk: deviceKey.publicKey, createdMs: nowMs(),
  });
  const binding = signIdentityBinding(identitySecretKey, schoolId, userId, publicKeys.x25519Pk); // PROTOCOL 2.7
  identitySecretKey.fill(0);
  const kdfParams = params.encode();
  const out = await api.call('POST', '/api/v1/register', null, {
    school_id: b64e(schoolId),
    code,
    kdf_params: b64e(kdfParams),
    login_pk: b64e(account.loginPublicKey),
    identity_x25519_pk: b64e(publicKeys.x25519Pk),
    identity_ed25519_pk: b64e(publicKeys.ed25519Pk),
    identity_binding: b64e(binding),
    bundle: b64e(sealBundle(identity, account.kek, SLOT_PASSWORD, schoolId, userId)),
    recovery_bundle: b64e(sealBundle(identity, recoveryKek(secret), SLOT_RECOVERY, schoolId, userId)),
    recovery_auth_pk: b64e(recoveryAuthKeyPair(secret).publicKey),
    device_id: b64e(deviceId),
    device_pk: b64e(deviceKey.publicKey),
    device_cert: b64e(cert),
  });
  const recoveryKey = formatRecoveryKey(secret);
  secret.fill(0);
  /** @type {Registration} */
  const registration = {
    userId, login: out.login, roles: out.roles, recoveryKey,
    totpSecret: out.totp_secret ?? null, totpUri: out.totp_uri ?? null,
  };
  const device = new Device({ api, schoolId, userId, login: out.login, identity, deviceId, deviceSeed, roles: out.roles });
  const derived = { schoolId, login: out.login, userId, kdfParams, account };
  return { registration, device, derived, deviceSeed };
}

/**
 * Set a new password with the recovery key and sign in as a new device: the same identity, so every grant
 * still opens. A typo in the key throws Malformed before anything is sent; a key that does not open this
 * account's recovery bundle throws DecryptionFailed. Python: `sync.recovery.recover`.
 * @param {Api} api
 * @param {Uint8Array} schoolId
 * @param {string} login
 * @param {string} recoveryKey as typed: spaces, dashes and case do not matter
 * @param {string} newPassword
 * @param {{totp?: string, keep?: (identity: import('../crypto/bundle.js').IdentityKeys) =>
 *   {deviceId: Uint8Array, deviceSeed: Uint8Array} | null}} [options] keep: given the identity keys the
 *   recovery key opened, this device's own id and key if it holds a store for the person (its data key opens
 *   with the identity key, docs/PROTOCOL.md 2.8): the same device is then signed in, with everything it holds
 * @returns {Promise<{device: Device, derived: Derived, expiresMs: number}>}
 */
export async function recover(api, schoolId, login, recoveryKey, newPassword, { totp, keep } = {}) {
  const secret = parseRecoveryKey(recoveryKey);
  const start = await api.call('POST', '/api/v1/recover/start', null, { school_id: b64e(schoolId), login });
  const userId = b64d(start.user_id, 'user_id');
  const identity = openBundle(b64d(start.recovery_bundle, 'recovery_bundle'), recoveryKek(secret), SLOT_RECOVERY, schoolId, userId);
  const params = newKdfParams();
  const kdfParams = params.encode();
  const account = deriveAccount(newPassword, KdfParams.decode(kdfParams));
  const bundle = sealBundle(identity, account.kek, SLOT_PASSWORD, schoolId, userId);
  const auth = recoveryAuthKeyPair(secret);
  secret.fill(0);
  const signature = signRecoveryProof(auth.secretKey, {
    schoolId, userId, challenge: b64d(start.nonce, 'nonce'), kdfParams, loginPk: account.loginPublicKey, bundle,
  });
  auth.secretKey.fill(0);
  const kept = keep?.(identity) ?? null;
  const deviceId = kept?.deviceId ?? random(16);
  const deviceSeed = kept?.deviceSeed ?? random(32);
  const deviceKey = signingKeyPair(deviceSeed);
  /** @type {Record<string, unknown>} */
  const body = {
    challenge_id: start.challenge_id, signature: b64e(signature), kdf_params: b64e(kdfParams),
    login_pk: b64e(account.loginPublicKey), bundle: b64e(bundle), device_id: b64e(deviceId),
    device_pk: b64e(deviceKey.publicKey),
  };
  if (totp) body.totp = totp;
  const finish = await api.call('POST', '/api/v1/recover/finish', null, body);
  const device = new Device({
    api, schoolId, userId, login, identity, deviceId, deviceSeed, roles: finish.roles, token: finish.token,
  });
  if (!finish.device_known) {
    const cert = makeDeviceCert({
      identitySecretKey: signingKeyPair(identity.ed25519Seed).secretKey, schoolId, userId, deviceId,
      devicePk: deviceKey.publicKey, createdMs: nowMs(),
    });
    await api.call('POST', '/api/v1/devices/certify', finish.token, { cert: b64e(cert) });
  }
  return { device, derived: { schoolId, login, userId, kdfParams, account }, expiresMs: finish.expires_ms };
}

/**
 * A TOTP secret in groups of four, easier to type into an authenticator app by hand.
 * @param {string} secret Base32
 */
export function groupSecret(secret) {
  return (secret.match(/.{1,4}/g) ?? []).join(' ');
}
