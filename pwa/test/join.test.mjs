// Joining and recovery in the browser (sync/join.js), the twins of sync/device.py `register` and
// sync/recovery.py `recover`, against a fake API that checks every field as the Python server does:
// lengths, the device certificate, both bundle slots, the recovery auth key and the recovery proof.
// The real server accepts the same bodies in tests/pwa/test_onboarding.py.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DecryptionFailed, KdfParams, Malformed, SLOT_PASSWORD, SLOT_RECOVERY, deriveAccount, identityPublicKeys,
  openBundle, parseRecoveryKey, recoveryAuthKeyPair, recoveryKek, verifyDeviceCert, verifyRecoveryProof,
} from '../js/crypto/index.js';
import { groupSecret, parseJoinLink, recover, register } from '../js/sync/join.js';
import { b64d, b64e, hex } from '../js/sync/protocol.js';

const SCHOOL = new Uint8Array(16).fill(4);
const PASSWORD = 'a fictional joining passphrase';
const NEW_PASSWORD = 'a fictional new passphrase';

/** A fake of the server's registration and recovery routes, holding one account. */
class FakeServer {
  constructor() {
    /** @type {Record<string, any> | null} */
    this.account = null;
    /** @type {Uint8Array | null} */
    this.nonce = null;
    /** @type {string[]} */
    this.calls = [];
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {string | null} token
   * @param {Record<string, any>} body
   */
  async call(method, path, token, body) {
    this.calls.push(path);
    if (path === '/api/v1/register') return this.register(body);
    if (path === '/api/v1/recover/start') {
      this.nonce = new Uint8Array(32).fill(9);
      const account = /** @type {Record<string, any>} */ (this.account);
      return { challenge_id: b64e(new Uint8Array(16).fill(1)), nonce: b64e(this.nonce), user_id: account.user_id,
        recovery_bundle: account.recovery_bundle };
    }
    if (path === '/api/v1/recover/finish') return this.finish(body);
    if (path === '/api/v1/devices/certify') {
      assert.equal(token, 'fake-token');
      const account = /** @type {Record<string, any>} */ (this.account);
      verifyDeviceCert(b64d(body.cert, 'cert'), b64d(account.identity_ed25519_pk, 'pk'));
      return {};
    }
    throw new Error(`unexpected call ${method} ${path}`);
  }

  /** @param {Record<string, any>} body */
  register(body) {
    assert.equal(b64d(body.school_id, 's').length, 16);
    assert.equal(body.code, 'c0de'.repeat(10));
    assert.equal(b64d(body.kdf_params, 'k').length, 26);
    for (const name of ['login_pk', 'identity_x25519_pk', 'identity_ed25519_pk', 'recovery_auth_pk', 'device_pk']) {
      assert.equal(b64d(body[name], name).length, 32, name);
    }
    assert.equal(b64d(body.bundle, 'b').length, 107);
    assert.equal(b64d(body.recovery_bundle, 'r').length, 107);
    const cert = verifyDeviceCert(b64d(body.device_cert, 'cert'), b64d(body.identity_ed25519_pk, 'pk'));
    assert.equal(hex(cert.devicePk), hex(b64d(body.device_pk, 'pk')));
    assert.equal(hex(cert.deviceId), hex(b64d(body.device_id, 'id')));
    assert.equal(hex(cert.schoolId), hex(SCHOOL));
    this.account = { ...body, user_id: b64e(cert.userId) };
    return { user_id: b64e(cert.userId), login: 'fictional.teacher@example.org', roles: ['teacher'],
      totp_secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', totp_uri: 'otpauth://totp/Cairn:x?secret=J&issuer=Cairn' };
  }

  /** @param {Record<string, any>} body */
  finish(body) {
    const account = /** @type {Record<string, any>} */ (this.account);
    verifyRecoveryProof(b64d(account.recovery_auth_pk, 'pk'), {
      schoolId: SCHOOL, userId: b64d(account.user_id, 'u'), challenge: /** @type {Uint8Array} */ (this.nonce),
      kdfParams: b64d(body.kdf_params, 'k'), loginPk: b64d(body.login_pk, 'l'), bundle: b64d(body.bundle, 'b'),
    }, b64d(body.signature, 'sig'));
    assert.equal(body.totp, '123456');
    Object.assign(account, { kdf_params: body.kdf_params, login_pk: body.login_pk, bundle: body.bundle });
    return { token: 'fake-token', expires_ms: 1, user_id: account.user_id, roles: ['teacher'], bundle: body.bundle,
      device_known: false };
  }
}

/** @param {FakeServer} server */
function api(server) {
  return /** @type {any} */ ({ call: server.call.bind(server) });
}

test('register makes every key on the device and the server gets public halves and sealed bundles', async () => {
  const server = new FakeServer();
  const { registration, device } = await register(api(server), SCHOOL, 'c0de'.repeat(10), PASSWORD);
  const sent = /** @type {Record<string, any>} */ (server.account);
  assert.match(registration.recoveryKey, /^([0-9A-Z]{4}-){8}[0-9A-Z]{4}$/);
  assert.equal(registration.totpSecret, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  const account = deriveAccount(PASSWORD, KdfParams.decode(b64d(sent.kdf_params, 'k')));
  assert.equal(hex(account.loginPublicKey), hex(b64d(sent.login_pk, 'l')));
  const userId = registration.userId;
  const byPassword = openBundle(b64d(sent.bundle, 'b'), account.kek, SLOT_PASSWORD, SCHOOL, userId);
  const secret = parseRecoveryKey(registration.recoveryKey.toLowerCase().replaceAll('-', ' '));
  const byRecovery = openBundle(b64d(sent.recovery_bundle, 'r'), recoveryKek(secret), SLOT_RECOVERY, SCHOOL, userId);
  assert.equal(hex(byPassword.x25519Sk), hex(byRecovery.x25519Sk));
  assert.equal(hex(byPassword.ed25519Seed), hex(device.identity.ed25519Seed));
  const publics = identityPublicKeys(byPassword);
  assert.equal(hex(publics.x25519Pk), hex(b64d(sent.identity_x25519_pk, 'x')));
  assert.equal(hex(recoveryAuthKeyPair(secret).publicKey), hex(b64d(sent.recovery_auth_pk, 'a')));
  assert.throws(() => openBundle(b64d(sent.bundle, 'b'), account.kek, SLOT_RECOVERY, SCHOOL, userId), Malformed);
});

test('recover keeps the identity and signs the new password material with the recovery key', async () => {
  const server = new FakeServer();
  const { registration, device } = await register(api(server), SCHOOL, 'c0de'.repeat(10), PASSWORD);
  const { device: recovered, derived } = await recover(
    api(server), SCHOOL, registration.login, ` ${registration.recoveryKey.toLowerCase()} `, NEW_PASSWORD, { totp: '123456' },
  );
  assert.equal(hex(recovered.identity.x25519Sk), hex(device.identity.x25519Sk));
  assert.equal(recovered.token, 'fake-token');
  assert.deepEqual(server.calls.slice(-3), ['/api/v1/recover/start', '/api/v1/recover/finish', '/api/v1/devices/certify']);
  const sent = /** @type {Record<string, any>} */ (server.account);
  const account = deriveAccount(NEW_PASSWORD, KdfParams.decode(b64d(sent.kdf_params, 'k')));
  assert.equal(hex(account.kek), hex(derived.account.kek));
  openBundle(b64d(sent.bundle, 'b'), account.kek, SLOT_PASSWORD, SCHOOL, registration.userId);
});

test('a typo or another recovery key fails on the device before anything changes', async () => {
  const server = new FakeServer();
  const { registration } = await register(api(server), SCHOOL, 'c0de'.repeat(10), PASSWORD);
  const before = /** @type {Record<string, any>} */ ({ ...server.account });
  const last = registration.recoveryKey.at(-1) === '0' ? '1' : '0';
  await assert.rejects(recover(api(server), SCHOOL, 'x', registration.recoveryKey.slice(0, -1) + last, NEW_PASSWORD), Malformed);
  const other = new FakeServer();
  const { registration: someoneElse } = await register(api(other), SCHOOL, 'c0de'.repeat(10), PASSWORD);
  await assert.rejects(recover(api(server), SCHOOL, 'x', someoneElse.recoveryKey, NEW_PASSWORD), DecryptionFailed);
  assert.deepEqual(server.account, before);
  assert.ok(!server.calls.includes('/api/v1/recover/finish'));
});

test('an invitation link carries the school and the code in the fragment', () => {
  const link = parseJoinLink(`#join=${'AB'.repeat(16)}.${'c0de'.repeat(10)}`);
  assert.ok(link);
  assert.equal(hex(link.schoolId), 'ab'.repeat(16));
  assert.equal(link.code, 'c0de'.repeat(10));
  for (const bad of ['', '#join=', `#join=${'ab'.repeat(15)}.c0dec0dec0dec0de`, `#join=${'ab'.repeat(16)}.code-with-dash`,
    `#join=${'ab'.repeat(16)}`, `#other=${'ab'.repeat(16)}.c0dec0dec0dec0de`]) {
    assert.equal(parseJoinLink(bad), null, bad);
  }
  assert.equal(groupSecret('JBSWY3DPEHPK3PXP'), 'JBSW Y3DP EHPK 3PXP');
});
