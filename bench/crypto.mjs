// Benchmarks of the JavaScript crypto (pwa/js/crypto/), printing `name: value unit` lines.
//
//   node bench/crypto.mjs
//
// Envelopes carry a 1 KiB body to 3 recipients; opening verifies the signature. Argon2id uses the
// account floor (3 passes, 64 MiB). Each figure runs for about 1.5 s.

import sodium from '../pwa/js/crypto/sodium.js';
import {
  KdfParams, RECIPIENT_PERSON, RECIPIENT_READER_KEY, deriveAccount, envelope, generateEntryKey, makeGrant,
  openGrant,
} from '../pwa/js/crypto/index.js';

const SECONDS = 1.5;

/**
 * Run `fn` repeatedly for about SECONDS; return calls per second and mean milliseconds per call.
 * @param {() => unknown} fn
 */
function measure(fn) {
  fn(); // warm up
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    fn();
    n++;
    elapsed = performance.now() - start;
  } while (elapsed < SECONDS * 1000);
  return { perSecond: (n * 1000) / elapsed, ms: elapsed / n };
}

/** @param {number} n */
const rnd = (n) => sodium.randombytes_buf(n);

const device = sodium.crypto_sign_keypair();
const readers = [RECIPIENT_READER_KEY, RECIPIENT_READER_KEY, RECIPIENT_PERSON].map((kind, i) => {
  const kp = sodium.crypto_box_keypair();
  return { kind, id: rnd(16), version: i + 1, pk: kp.publicKey, sk: kp.privateKey };
});
const sealInput = {
  kind: envelope.KIND_CONCERN_EVENT, schoolId: rnd(16), envelopeId: rnd(16), concernId: rnd(16),
  authorDevice: rnd(16), counter: 1, prevHash: new Uint8Array(32), deviceTimeMs: Date.now(),
  entryKeyVersion: 1, pupilIds: [rnd(16), rnd(16)],
  recipients: readers.map(({ kind, id, version, pk }) => ({ kind, id, version, pk })),
  entryKey: generateEntryKey(), content: rnd(1024), deviceSecretKey: device.privateKey,
};
const sealed = envelope.seal(sealInput);
const openKeys = { authorDevicePk: device.publicKey, readerKeys: [readers[2]] };

const granter = sodium.crypto_sign_keypair();
const member = sodium.crypto_box_keypair();
const reader = sodium.crypto_box_keypair();
const grantInput = {
  granterDeviceSecretKey: granter.privateKey, schoolId: rnd(16), readerKeyId: rnd(16), readerVersion: 1,
  memberId: rnd(16), granterDevice: rnd(16), createdMs: Date.now(), readerSk: reader.privateKey,
  memberX25519Pk: member.publicKey,
};
const grant = makeGrant(grantInput);
const grantOpener = {
  memberX25519Sk: member.privateKey, schoolId: grantInput.schoolId, memberId: grantInput.memberId,
  granterDevicePk: granter.publicKey, readerPk: reader.publicKey,
};

const params = new KdfParams({ opslimit: 3, memlimit: 64 * 1024 * 1024, salt: rnd(16) });

const seal = measure(() => envelope.seal(sealInput));
console.log(`envelope_seal_per_s: ${Math.round(seal.perSecond)} per_s`);
const open = measure(() => envelope.open(sealed, openKeys));
console.log(`envelope_open_per_s: ${Math.round(open.perSecond)} per_s`);
const grantOpen = measure(() => openGrant(grant, grantOpener));
console.log(`grant_open_per_s: ${Math.round(grantOpen.perSecond)} per_s`);
const argon = measure(() => deriveAccount('correct horse battery staple', params));
console.log(`argon2id_ms: ${Math.round(argon.ms)} ms`);
