// Device certificates (docs/PROTOCOL.md section 3): the user's identity Ed25519 key certifies a
// device's own Ed25519 key. 153 bytes.

import { Reader, Writer } from './_codec.js';
import { SIGNATURE_BYTES, ctx, sign, signKeyPair, verify } from './_primitives.js';
import { BadSignature, Malformed, UnsupportedVersion } from './errors.js';

export const DEVICE_CERT_VERSION = 0x01;
export const DEVICE_CERT_BYTES = 153;
const SIGNED_BYTES = DEVICE_CERT_BYTES - SIGNATURE_BYTES;

/**
 * @typedef {object} DeviceCertFields
 * @property {Uint8Array} schoolId
 * @property {Uint8Array} userId
 * @property {Uint8Array} deviceId
 * @property {Uint8Array} devicePk 32 bytes (Ed25519)
 * @property {number} createdMs
 */

/**
 * The Ed25519 key pair of a 32-byte seed (a device key, or the identity signing key of a bundle);
 * `secretKey` is libsodium's 64-byte form. Python: `SigningKey(seed)`.
 * @param {Uint8Array} seed
 * @returns {{publicKey: Uint8Array, secretKey: Uint8Array}}
 */
export function signingKeyPair(seed) {
  return signKeyPair(seed);
}

/** @param {DeviceCertFields} fields */
function certBody({ schoolId, userId, deviceId, devicePk, createdMs }) {
  return new Writer()
    .u8(DEVICE_CERT_VERSION)
    .id(schoolId, 'schoolId')
    .id(userId, 'userId')
    .id(deviceId, 'deviceId')
    .bytes(devicePk, 32, 'devicePk')
    .u64(createdMs)
    .finish();
}

/** @param {Uint8Array} body */
function signedMessage(body) {
  return new Writer().bytes(ctx('cairn/v1/device-cert')).bytes(body).finish();
}

/**
 * Make a device certificate.
 * @param {DeviceCertFields & {identitySecretKey: Uint8Array}} fields identitySecretKey is the 64-byte libsodium form
 * @returns {Uint8Array}
 */
export function makeDeviceCert({ identitySecretKey, schoolId, userId, deviceId, devicePk, createdMs }) {
  const body = certBody({ schoolId, userId, deviceId, devicePk, createdMs });
  return new Writer().bytes(body).bytes(sign(identitySecretKey, signedMessage(body))).finish();
}

/**
 * A certificate's bytes from its fields and signature (the signed directory carries only those two that
 * the rest of the device's entry does not already hold). Not checked: `verifyDeviceCert` is.
 * Python: `make_device_cert_bytes`.
 * @param {DeviceCertFields} fields
 * @param {Uint8Array} signature
 * @returns {Uint8Array}
 */
export function makeDeviceCertBytes(fields, signature) {
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) {
    throw new Malformed(`a certificate signature is ${SIGNATURE_BYTES} bytes, not ${signature?.length}`);
  }
  return new Writer().bytes(certBody(fields)).bytes(signature).finish();
}

/**
 * Verify a device certificate against the user's identity Ed25519 public key; return its fields.
 * @param {Uint8Array} cert
 * @param {Uint8Array} identityPk 32 bytes
 * @returns {DeviceCertFields}
 */
export function verifyDeviceCert(cert, identityPk) {
  const what = 'verifying device certificate';
  const r = new Reader(cert, what);
  const version = r.u8('version');
  if (version !== DEVICE_CERT_VERSION) {
    throw new UnsupportedVersion(`${what}: unknown version ${version}`);
  }
  if (cert.length !== DEVICE_CERT_BYTES) {
    throw new Malformed(`${what}: expected ${DEVICE_CERT_BYTES} bytes, got ${cert.length}`);
  }
  const schoolId = r.id('school_id');
  const userId = r.id('user_id');
  const deviceId = r.id('device_id');
  const devicePk = r.bytes(32, 'device_pk');
  const createdMs = r.u64('created_ms');
  const signature = r.bytes(SIGNATURE_BYTES, 'signature');
  r.done();
  if (!verify(identityPk, signedMessage(cert.subarray(0, SIGNED_BYTES)), signature)) {
    throw new BadSignature(`${what}: signature does not match`);
  }
  return { schoolId, userId, deviceId, devicePk, createdMs };
}

/**
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} deviceId
 * @param {Uint8Array} nonce 32 bytes
 */
function authMessage(schoolId, deviceId, nonce, label = 'cairn/v1/device/auth') {
  return new Writer()
    .bytes(ctx(label))
    .id(schoolId, 'schoolId')
    .id(deviceId, 'deviceId')
    .bytes(nonce, 32, 'nonce')
    .finish();
}

/**
 * The device's proof on opening a sync connection: its key signs the server's fresh nonce.
 * @param {Uint8Array} deviceSecretKey 64-byte libsodium form
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} deviceId
 * @param {Uint8Array} nonce
 * @returns {Uint8Array}
 */
export function signDeviceAuth(deviceSecretKey, schoolId, deviceId, nonce) {
  return sign(deviceSecretKey, authMessage(schoolId, deviceId, nonce));
}

/**
 * Throw BadSignature unless `signature` is the device's answer to `nonce`.
 * @param {Uint8Array} devicePk
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} deviceId
 * @param {Uint8Array} nonce
 * @param {Uint8Array} signature
 */
export function verifyDeviceAuth(devicePk, schoolId, deviceId, nonce, signature) {
  if (!verify(devicePk, authMessage(schoolId, deviceId, nonce), signature)) {
    throw new BadSignature('verifying device proof: signature does not verify');
  }
}

/**
 * A device's delivery proof (PROTOCOL 3.2): its delivery key, kept outside the person's sealed keys so a locked
 * shared tablet can send what is already sealed, signs the server's fresh nonce. Python: `sign_delivery_auth`.
 * @param {Uint8Array} deliverySecretKey 64-byte libsodium form
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} deviceId
 * @param {Uint8Array} nonce
 * @returns {Uint8Array}
 */
export function signDeliveryAuth(deliverySecretKey, schoolId, deviceId, nonce) {
  return sign(deliverySecretKey, authMessage(schoolId, deviceId, nonce, 'cairn/v1/device/deliver'));
}

/**
 * Throw BadSignature unless `signature` is the delivery key's answer to `nonce`.
 * @param {Uint8Array} deliveryPk
 * @param {Uint8Array} schoolId
 * @param {Uint8Array} deviceId
 * @param {Uint8Array} nonce
 * @param {Uint8Array} signature
 */
export function verifyDeliveryAuth(deliveryPk, schoolId, deviceId, nonce, signature) {
  if (!verify(deliveryPk, authMessage(schoolId, deviceId, nonce, 'cairn/v1/device/deliver'), signature)) {
    throw new BadSignature('verifying delivery proof: signature does not verify');
  }
}
