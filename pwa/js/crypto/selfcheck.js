// Known-answer checks: run one shared vector (tests/vectors/, docs/PROTOCOL.md section 7), the
// JavaScript twin of crypto/selfcheck.py.
//
// Pure and synchronous over an already-parsed vector; the caller reads the files (Node's test runner
// from disk, a page with `fetch`). No node:* import, no DOM: it runs the same in Node and in a browser.
//
// Not exported from index.js, as crypto/__init__.py does not export crypto.selfcheck: it drives the
// private randomness hook (_random.js `inject`) to reproduce seals byte for byte, so only the vector
// tests and a start-up self-check import it, by path. `checkVector` never awaits, so an injection
// begins and ends within one call and no other code can draw randomness while it is active.

import sodium from './sodium.js';
import * as random from './_random.js';
import {
  BadSignature, CryptoError, DecryptionFailed, Malformed, NoKey, Rollback, Unapproved, UnsupportedVersion,
} from './errors.js';
import { KdfParams, deriveAccount, signChallenge, verifyChallenge } from './account.js';
import { openBundle, sealBundle } from './bundle.js';
import {
  formatRecoveryKey, parseRecoveryKey, recoveryAuthKeyPair, recoveryKek, signPasswordChange, signRecoveryProof,
  verifyPasswordChange, verifyRecoveryProof,
} from './recovery.js';
import {
  makeDeviceCert, signDeliveryAuth, signDeviceAuth, verifyDeliveryAuth, verifyDeviceAuth, verifyDeviceCert,
} from './device.js';
import { unwrapKey, wrapKey } from './wrap.js';
import { makeGrant, openGrant } from './grant.js';
import { makeEntryGrant, openEntryGrant } from './entry_grant.js';
import { openRosterEntry, pupilIdFor, sealRosterEntry } from './roster.js';
import {
  SLOT_PASSWORD_WRAP, identityWrapKey, localKey, openLegacyLocal, openLocal, passwordWrapKey, sealLocal,
  unwrapDataKey, wrapDataKey,
} from './local.js';
import {
  directoryHash, directorySigningKey, encodeContent, fingerprint, readDirectory, signDirectory, verifyDirectory,
} from './directory.js';
import { encodeItem, itemFromJson, signApproval, verifyApproval } from './approval.js';
import { signIdentityBinding, verifyIdentityBinding } from './identity.js';
import * as envelope from './envelope.js';

/** The closed list of `expect` values (docs/PROTOCOL.md section 7). */
export const EXPECTS = Object.freeze([
  'success', 'parse_failure', 'auth_failure', 'bad_signature', 'no_key', 'unsupported_version', 'rollback',
  'unapproved',
]);

/** Folders of tests/vectors/ that hold rules, not constructions: run by their own suites (fold.test.mjs,
 * keyholder.test.mjs, mis.test.mjs), as crypto/selfcheck.py `RULE_FOLDERS`. */
export const RULE_FOLDERS = Object.freeze(['fold', 'entitlement', 'mis']);

/** A vector's expected result differs from what the crypto layer did. */
export class SelfCheckFailed extends Error {
  /**
   * @param {string} message
   * @param {ErrorOptions} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = 'SelfCheckFailed';
  }
}

/**
 * The error class each failure `expect` names; the thrown error must be an instance with that `code`.
 * @type {Record<string, Function>}
 */
const ERRORS = {
  parse_failure: Malformed,
  auth_failure: DecryptionFailed,
  bad_signature: BadSignature,
  no_key: NoKey,
  unsupported_version: UnsupportedVersion,
  rollback: Rollback,
  unapproved: Unapproved,
};

/**
 * @typedef {object} Vector
 * @property {string} construct
 * @property {string} area
 * @property {string} condition
 * @property {string} comment
 * @property {string} expect
 * @property {Record<string, any>} inputs
 * @property {Record<string, any>} [output]
 */

/**
 * A byte string from a vector: lower-case hex, whole bytes.
 * @param {unknown} hex
 * @returns {Uint8Array}
 */
function b(hex) {
  if (typeof hex !== 'string' || !/^([0-9a-f]{2})*$/.test(hex)) {
    throw new SelfCheckFailed(`a byte string in a vector is lower-case hex of whole bytes, got ${JSON.stringify(hex)}`);
  }
  return sodium.from_hex(hex);
}

/** @param {Uint8Array} bytes */
function hex(bytes) {
  return sodium.to_hex(bytes);
}

/**
 * Compare plain data (strings, numbers, arrays, objects) and name what differs.
 * @param {string} what
 * @param {unknown} got
 * @param {unknown} want
 */
function same(what, got, want) {
  if (want === undefined) throw new SelfCheckFailed(`${what}: the vector gives no expected value`);
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new SelfCheckFailed(`${what}: got ${g}, expected ${w}`);
}

/**
 * Run `fn` with the vector's random strings injected, and check they were all consumed.
 * @template T
 * @param {unknown} list
 * @param {() => T} fn
 * @returns {T}
 */
function withRandom(list, fn) {
  if (!Array.isArray(list)) throw new SelfCheckFailed('a seal vector lists its random strings in inputs.random');
  random.inject(list.map(b));
  try {
    const out = fn();
    if (random.pending() !== 0) {
      throw new SelfCheckFailed(`${random.pending()} injected random string(s) were not consumed`);
    }
    return out;
  } finally {
    random.restore();
  }
}

/** @param {string} seed */
function signing(seed) {
  const kp = sodium.crypto_sign_seed_keypair(b(seed));
  return { publicKey: kp.publicKey, secretKey: kp.privateKey };
}

/**
 * A directory's content from its vector form (hex byte strings). Python: `content_from_json`.
 * @param {any} raw
 * @returns {import('./directory.js').DirectoryContent}
 */
function contentFromJson(raw) {
  return {
    accounts: raw.accounts.map((/** @type {any} */ a) => ({
      id: b(a.id), roles: a.roles, identityX25519Pk: b(a.identity_x25519_pk), identityEd25519Pk: b(a.identity_ed25519_pk),
      binding: b(a.binding), left: a.left, login: a.login, displayName: a.display_name,
    })),
    devices: raw.devices.map((/** @type {any} */ d) => ({
      id: b(d.id), userId: b(d.user_id), publicKey: b(d.public_key), certifiedMs: d.certified_ms,
      certSignature: b(d.cert_signature), revoked: d.revoked,
    })),
    readerKeys: raw.reader_keys.map((/** @type {any} */ k) => ({
      id: b(k.id), version: k.version, purpose: k.purpose, publicKey: b(k.public_key), current: k.current,
    })),
    pupils: raw.pupils.map((/** @type {any} */ x) => ({ id: b(x.id), readerKeyId: b(x.reader_key_id) })),
    classes: raw.classes.map((/** @type {any} */ c) => ({ id: b(c.id), label: c.label, pupils: c.pupils.map(b), teachers: c.teachers.map(b) })),
  };
}

/**
 * One check per construct, following the table in tests/vectors/README.md. `out` is the vector's
 * output for a success vector and null for a failure vector, where only the refusing step runs.
 * @type {Record<string, (i: Record<string, any>, out: Record<string, any> | null) => void>}
 */
const CHECKS = {
  account(i, out) {
    const params = KdfParams.decode(b(i.params));
    if (!out) {
      deriveAccount(i.password, params);
      return;
    }
    same('KdfParams round trip', hex(params.encode()), i.params);
    const keys = deriveAccount(i.password, params);
    same('login public key', hex(keys.loginPublicKey), out.login_pk);
    same('key-encryption key', hex(keys.kek), out.kek);
  },

  challenge(i, out) {
    const login = signing(i.login_seed);
    if (!out) {
      verifyChallenge(login.publicKey, b(i.school_id), b(i.user_id), b(i.challenge), b(i.signature));
      return;
    }
    const sig = signChallenge(login.secretKey, b(i.school_id), b(i.user_id), b(i.challenge));
    same('signature', hex(sig), out.signature);
    same('verify', verifyChallenge(login.publicKey, b(i.school_id), b(i.user_id), b(i.challenge), sig), true);
  },

  local(i, out) {
    /** @type {[Uint8Array, Uint8Array, string, Uint8Array]} */
    const args = [b(i.school_id), b(i.user_id), i.kind, b(i.record_id)];
    let opened;
    if (i.kek !== undefined) { // version 1, opened once with the old derivation
      const key = localKey(b(i.kek));
      if (out) same('local key', hex(key), out.local_key);
      opened = openLegacyLocal(key, ...args, b(i.sealed));
    } else {
      const key = b(i.data_key);
      if (out) same('sealed', hex(withRandom(i.random, () => sealLocal(key, ...args, b(i.plaintext)))), i.sealed);
      opened = openLocal(key, ...args, b(i.sealed));
    }
    if (out) same('plaintext', hex(opened), out.plaintext);
  },

  local_wrap(i, out) {
    const key = i.slot === SLOT_PASSWORD_WRAP ? passwordWrapKey(b(i.kek)) : identityWrapKey(b(i.identity_x25519_sk));
    /** @type {[Uint8Array, Uint8Array, Uint8Array]} */
    const ids = [b(i.school_id), b(i.user_id), b(i.device_id)];
    if (out) {
      same('wrap key', hex(key), out.wrap_key);
      same('wrap', hex(withRandom(i.random, () => wrapDataKey(b(i.data_key), key, i.slot, ...ids))), i.wrap);
    }
    const opened = unwrapDataKey(b(i.wrap), key, i.slot, ...ids);
    if (out) same('data key', hex(opened), out.data_key);
  },

  password_change(i, out) {
    const old = signing(i.old_login_seed);
    const fields = {
      schoolId: b(i.school_id), userId: b(i.user_id), challenge: b(i.challenge), kdfParams: b(i.kdf_params),
      loginPk: b(i.login_pk), bundle: b(i.bundle),
    };
    if (!out) {
      verifyPasswordChange(old.publicKey, fields, b(i.signature));
      return;
    }
    same('old login key', hex(old.publicKey), out.old_login_pk);
    const sig = signPasswordChange(old.secretKey, fields);
    same('signature', hex(sig), out.signature);
    same('verify', verifyPasswordChange(old.publicKey, fields, sig), true);
  },

  roster(i, out) {
    if (i.upn !== undefined) {
      if (!out) throw new SelfCheckFailed('a pupil id vector must succeed');
      same('pupil id', hex(pupilIdFor(b(i.roster_sk), i.upn)), out.pupil_id);
      return;
    }
    if (out) {
      const device = signing(i.device_seed);
      const entry = {
        schoolId: b(i.school_id), pupilId: b(i.pupil_id), keyId: b(i.key_id), keyVersion: i.key_version,
        authorDevice: b(i.author_device), content: b(i.content),
      };
      same('roster entry', hex(withRandom(i.random, () => sealRosterEntry(b(i.roster_sk), entry, device.secretKey))), i.entry);
    }
    /** @type {Map<string, Uint8Array>} */
    const keys = new Map(i.keys.map((/** @type {any} */ k) => [`${k.id}:${k.version}`, b(k.sk)]));
    const opened = openRosterEntry(b(i.entry), keys, b(i.reader_school_id), b(i.author_device_pk));
    if (out) {
      same('content', hex(opened.content), out.content);
      same('pupil id', hex(opened.pupilId), out.pupil_id);
    }
  },

  directory(i, out) {
    const schoolId = b(i.school_id);
    if (out && i.content) {
      const content = contentFromJson(i.content);
      same('content bytes', hex(encodeContent(content)), out.content_bytes);
      const made = signDirectory(directorySigningKey(b(i.signing_reader_sk)), {
        schoolId, version: i.version, prevHash: b(i.prev_hash), createdMs: i.created_ms,
        nextSigningPk: b(i.next_signing_pk), content, approvals: i.approvals.map(b),
      });
      same('signed directory', hex(made), i.signed);
    }
    const previous = i.previous ? readDirectory(b(i.previous)) : null;
    const d = verifyDirectory(b(i.signed), schoolId, b(i.pinned_pk), previous);
    if (out) {
      same('signing key', hex(d.signingPk), out.signing_pk);
      same('hash', hex(directoryHash(b(i.signed))), out.hash);
      same('fingerprint', fingerprint(schoolId, d.signingPk), out.fingerprint);
    }
  },

  approval(i, out) {
    if (out) {
      const items = i.items.map((/** @type {any} */ x) => itemFromJson(x, (v) => b(v)));
      same('item bytes', items.map((/** @type {any} */ x) => hex(encodeItem(x))), out.item_bytes);
      const made = signApproval(signing(i.device_seed).secretKey, {
        schoolId: b(i.school_id), approvalId: b(i.approval_id), baseVersion: i.base_version, baseHash: b(i.base_hash),
        approverUser: b(i.approver_user), approverDevice: b(i.approver_device), createdMs: i.created_ms, items,
      });
      same('approval', hex(made), out.approval);
    }
    const approval = verifyApproval(b(i.approval), b(i.school_id), b(i.device_pk));
    if (out) same('items', approval.items.map((x) => hex(encodeItem(x))), out.item_bytes);
  },

  identity_binding(i, out) {
    if (out) {
      const made = signIdentityBinding(signing(i.identity_ed25519_seed).secretKey, b(i.school_id), b(i.user_id), b(i.identity_x25519_pk));
      same('binding', hex(made), out.binding);
    }
    verifyIdentityBinding(b(i.binding), b(i.identity_ed25519_pk), b(i.school_id), b(i.user_id), b(i.identity_x25519_pk));
  },

  device_auth(i, out) {
    const device = signing(i.device_seed);
    if (!out) {
      verifyDeviceAuth(device.publicKey, b(i.school_id), b(i.device_id), b(i.nonce), b(i.signature));
      return;
    }
    const sig = signDeviceAuth(device.secretKey, b(i.school_id), b(i.device_id), b(i.nonce));
    same('signature', hex(sig), out.signature);
    verifyDeviceAuth(device.publicKey, b(i.school_id), b(i.device_id), b(i.nonce), sig);
  },

  delivery_auth(i, out) {
    const delivery = signing(i.delivery_seed);
    if (!out) {
      verifyDeliveryAuth(delivery.publicKey, b(i.school_id), b(i.device_id), b(i.nonce), b(i.signature));
      return;
    }
    const sig = signDeliveryAuth(delivery.secretKey, b(i.school_id), b(i.device_id), b(i.nonce));
    same('signature', hex(sig), out.signature);
    verifyDeliveryAuth(delivery.publicKey, b(i.school_id), b(i.device_id), b(i.nonce), sig);
  },

  bundle(i, out) {
    const open = () => openBundle(b(i.sealed), b(i.kek), i.slot, b(i.school_id), b(i.user_id));
    if (!out) {
      open();
      return;
    }
    const sealed = withRandom(i.random, () => sealBundle(
      { x25519Sk: b(i.identity_x25519_sk), ed25519Seed: b(i.identity_ed25519_seed) },
      b(i.kek), i.slot, b(i.school_id), b(i.user_id)));
    same('sealed bundle', hex(sealed), i.sealed);
    const keys = open();
    same('identity X25519 key', hex(keys.x25519Sk), out.identity_x25519_sk);
    same('identity Ed25519 seed', hex(keys.ed25519Seed), out.identity_ed25519_seed);
  },

  recovery(i, out) {
    if (!out) {
      parseRecoveryKey(i.text);
      return;
    }
    const secret = b(i.secret);
    same('printed form', formatRecoveryKey(secret), out.canonical);
    same('secret', hex(parseRecoveryKey(i.text)), i.secret);
    same('recovery KEK', hex(recoveryKek(secret)), out.kek);
    same('recovery auth key', hex(recoveryAuthKeyPair(secret).publicKey), out.auth_pk);
  },

  recovery_proof(i, out) {
    const auth = recoveryAuthKeyPair(b(i.recovery_secret));
    const fields = {
      schoolId: b(i.school_id), userId: b(i.user_id), challenge: b(i.challenge), kdfParams: b(i.kdf_params),
      loginPk: b(i.login_pk), bundle: b(i.bundle),
    };
    if (!out) {
      verifyRecoveryProof(auth.publicKey, fields, b(i.signature));
      return;
    }
    same('recovery auth key', hex(auth.publicKey), out.auth_pk);
    const sig = signRecoveryProof(auth.secretKey, fields);
    same('signature', hex(sig), out.signature);
    same('verify', verifyRecoveryProof(auth.publicKey, fields, sig), true);
  },

  device_cert(i, out) {
    if (!out) {
      verifyDeviceCert(b(i.cert), b(i.identity_ed25519_pk));
      return;
    }
    const identity = signing(i.identity_ed25519_seed);
    same('identity public key', hex(identity.publicKey), i.identity_ed25519_pk);
    const cert = makeDeviceCert({
      identitySecretKey: identity.secretKey, schoolId: b(i.school_id), userId: b(i.user_id),
      deviceId: b(i.device_id), devicePk: b(i.device_pk), createdMs: i.created_ms,
    });
    same('certificate', hex(cert), i.cert);
    const f = verifyDeviceCert(cert, identity.publicKey);
    same('school_id', hex(f.schoolId), out.school_id);
    same('user_id', hex(f.userId), out.user_id);
    same('device_id', hex(f.deviceId), out.device_id);
    same('device_pk', hex(f.devicePk), out.device_pk);
    same('created_ms', f.createdMs, out.created_ms);
  },

  wrap(i, out) {
    const unwrap = () => unwrapKey(b(i.wrap), b(i.recipient_sk), b(i.ad));
    if (!out) {
      unwrap();
      return;
    }
    const wrap = withRandom(i.random, () => wrapKey(b(i.recipient_pk), b(i.payload), b(i.ad)));
    same('wrap', hex(wrap), i.wrap);
    same('payload', hex(unwrap()), out.payload);
  },

  grant(i, out) {
    const open = () => openGrant(b(i.grant), {
      memberX25519Sk: b(i.member_x25519_sk), schoolId: b(i.school_id), memberId: b(i.member_id),
      granterDevicePk: b(i.granter_device_pk), readerPk: b(i.reader_pk),
    });
    if (!out) {
      open();
      return;
    }
    const granter = signing(i.granter_device_seed);
    same('granter device public key', hex(granter.publicKey), i.granter_device_pk);
    const grant = withRandom(i.random, () => makeGrant({
      granterDeviceSecretKey: granter.secretKey, schoolId: b(i.school_id), readerKeyId: b(i.reader_key_id),
      readerVersion: i.reader_version, memberId: b(i.member_id), granterDevice: b(i.granter_device),
      createdMs: i.created_ms, readerSk: b(i.reader_sk), memberX25519Pk: b(i.member_x25519_pk),
    }));
    same('grant', hex(grant), i.grant);
    same('reader key', hex(open()), out.reader_sk);
  },

  entry_grant(i, out) {
    const open = () => openEntryGrant(b(i.grant), {
      memberX25519Sk: b(i.member_x25519_sk), schoolId: b(i.school_id), memberId: b(i.member_id),
      granterDevicePk: b(i.granter_device_pk),
    });
    if (i.envelope !== undefined) {
      const { info, entryKey } = open();
      const opened = envelope.open(b(i.envelope), {
        authorDevicePk: b(i.author_device_pk), readerKeys: [],
        entryKeys: [{ concernId: info.concernId, version: info.entryVersion, key: entryKey }],
      });
      if (out) same('content', hex(opened.content), out.content);
      return;
    }
    if (!out) {
      open();
      return;
    }
    const granter = signing(i.granter_device_seed);
    same('granter device public key', hex(granter.publicKey), i.granter_device_pk);
    const grant = withRandom(i.random, () => makeEntryGrant({
      granterDeviceSecretKey: granter.secretKey, schoolId: b(i.school_id), concernId: b(i.concern_id),
      entryVersion: i.entry_version, memberId: b(i.member_id), granterDevice: b(i.granter_device),
      createdMs: i.created_ms, entryKey: b(i.entry_key), memberX25519Pk: b(i.member_x25519_pk),
    }));
    same('entry key grant', hex(grant), i.grant);
    const { info, entryKey } = open();
    same('concern id', hex(info.concernId), out.concern_id);
    same('entry key version', info.entryVersion, out.entry_version);
    same('entry key', hex(entryKey), out.entry_key);
  },

  envelope(i, out) {
    const open = () => envelope.open(b(i.envelope), {
      authorDevicePk: b(i.author_device_pk),
      readerKeys: i.reader_keys.map((/** @type {any} */ k) => ({ kind: k.kind, id: b(k.id), version: k.version, sk: b(k.sk) })),
    });
    if (!out) {
      open();
      return;
    }
    const device = signing(i.device_seed);
    same('author device public key', hex(device.publicKey), i.author_device_pk);
    const sealed = withRandom(i.random, () => envelope.seal({
      kind: i.kind, schoolId: b(i.school_id), envelopeId: b(i.envelope_id), concernId: b(i.concern_id),
      authorDevice: b(i.author_device), counter: i.counter, prevHash: b(i.prev_hash),
      deviceTimeMs: i.device_time_ms, entryKeyVersion: i.entry_key_version,
      pupilIds: i.pupil_ids.map(b),
      recipients: i.recipients.map((/** @type {any} */ r) => ({ kind: r.kind, id: b(r.id), version: r.version, pk: b(r.pk) })),
      entryKey: b(i.entry_key), content: b(i.content), deviceSecretKey: device.secretKey,
    }));
    same('envelope', hex(sealed), i.envelope);
    same('envelope hash', hex(envelope.envelopeHash(sealed)), out.envelope_hash);
    const opened = open();
    same('content', hex(opened.content), out.content);
    same('entry key', hex(opened.entryKey), i.entry_key);
    same('padded size', envelope.paddedSize(opened.content.length), out.padded_size);
    same('ciphertext length', opened.header.ct.length - 16, out.padded_size);
  },

  padding(i, out) {
    if (!out) throw new SelfCheckFailed('padding vectors only state sizes: their expect is success');
    same('padded sizes', i.lengths.map((/** @type {number} */ n) => envelope.paddedSize(n)), out.padded);
  },
};

/**
 * Run one vector; throw SelfCheckFailed unless the crypto layer does exactly what it expects: a
 * success vector reproduces every output byte for byte, a failure vector is refused with the error
 * class its `expect` names (and that `code`). Unknown constructs and expects are refused.
 * @param {Vector} vector
 */
export function checkVector(vector) {
  const construct = vector?.construct;
  const expect = vector?.expect;
  if (typeof construct !== 'string' || !Object.hasOwn(CHECKS, construct)) {
    throw new SelfCheckFailed(`unknown construct ${JSON.stringify(construct)}`);
  }
  if (!EXPECTS.includes(expect)) {
    throw new SelfCheckFailed(`unknown expect ${JSON.stringify(expect)}`);
  }
  const out = expect === 'success' ? vector.output ?? null : null;
  if (expect === 'success' && (out === null || typeof out !== 'object' || Object.keys(out).length === 0)) {
    throw new SelfCheckFailed('a success vector must give its output');
  }
  if (vector.inputs === null || typeof vector.inputs !== 'object') {
    throw new SelfCheckFailed('a vector must give its inputs');
  }
  try {
    CHECKS[construct](vector.inputs, out);
  } catch (e) {
    if (e instanceof SelfCheckFailed) throw e;
    if (expect === 'success' || !(e instanceof CryptoError)) {
      throw new SelfCheckFailed(`expected ${expect}, got ${describe(e)}`, { cause: e });
    }
    const cls = ERRORS[expect];
    if (!(e instanceof cls) || e.code !== expect) {
      throw new SelfCheckFailed(`expected ${cls.name} (${expect}), got ${describe(e)}`, { cause: e });
    }
    return;
  }
  if (expect !== 'success') throw new SelfCheckFailed(`expected ${expect}, but it succeeded`);
}

/** @param {unknown} e */
function describe(e) {
  if (e instanceof CryptoError) return `${e.constructor.name} (${e.code}): ${e.message}`;
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}
