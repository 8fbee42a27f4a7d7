// Envelopes beyond the vectors: random round trips, and every single-bit flip refused.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import sodium from '../js/crypto/sodium.js';
import {
  BadSignature, CryptoError, NoKey, RECIPIENT_PERSON, RECIPIENT_READER_KEY, envelope, generateEntryKey,
} from '../js/crypto/index.js';

/** @param {number} n */
const rnd = (n) => sodium.randombytes_buf(n);

/**
 * A random author, recipient set and header, ready to seal.
 * @param {number} recipientCount
 * @param {number} pupilCount
 * @param {Uint8Array} content
 */
function scenario(recipientCount, pupilCount, content) {
  const device = sodium.crypto_sign_keypair();
  const readers = Array.from({ length: recipientCount }, (_, i) => {
    const kp = sodium.crypto_box_keypair();
    return {
      kind: i % 3 === 2 ? RECIPIENT_PERSON : RECIPIENT_READER_KEY,
      id: rnd(16),
      version: 1 + sodium.randombytes_uniform(5),
      pk: kp.publicKey,
      sk: kp.privateKey,
    };
  });
  const input = {
    kind: envelope.KIND_CONCERN_EVENT,
    schoolId: rnd(16),
    envelopeId: rnd(16),
    concernId: rnd(16),
    authorDevice: rnd(16),
    counter: 1 + sodium.randombytes_uniform(1000),
    prevHash: rnd(32),
    deviceTimeMs: 1_790_000_000_000 + sodium.randombytes_uniform(1_000_000),
    entryKeyVersion: 1 + sodium.randombytes_uniform(3),
    pupilIds: Array.from({ length: pupilCount }, () => rnd(16)),
    recipients: readers.map(({ kind, id, version, pk }) => ({ kind, id, version, pk })),
    entryKey: generateEntryKey(),
    content,
    deviceSecretKey: device.privateKey,
  };
  return { device, readers, input, sealed: envelope.seal(input) };
}

test('seal then open round-trips random bodies for every recipient', () => {
  const lengths = [0, 1, 219, 220, 1024, 5000, 65499, 65500, 70000];
  for (let round = 0; round < 12; round++) {
    const length = round < lengths.length ? lengths[round] : sodium.randombytes_uniform(20000);
    const content = rnd(length);
    const { device, readers, input, sealed } = scenario(
      1 + sodium.randombytes_uniform(6), sodium.randombytes_uniform(33), content);

    const parsed = envelope.verify(sealed, device.publicKey);
    assert.equal(parsed.ct.length - 16, envelope.paddedSize(length));
    assert.equal(parsed.recipients.length, readers.length);
    assert.deepEqual(parsed.pupilIds, input.pupilIds);
    assert.equal(parsed.counter, input.counter);

    for (const r of readers) {
      // The reader holds this key plus a decoy that is not a recipient.
      const readerKeys = [{ kind: RECIPIENT_READER_KEY, id: rnd(16), version: 1, sk: rnd(32) }, r];
      const opened = envelope.open(sealed, { authorDevicePk: device.publicKey, readerKeys });
      assert.deepEqual(opened.content, content);
      assert.deepEqual(opened.entryKey, input.entryKey);
      assert.deepEqual(opened.header.envelopeId, input.envelopeId);
    }
  }
});

test('seal makes a fresh nonce and fresh wraps every time', () => {
  const { input, sealed } = scenario(2, 1, rnd(10));
  const again = envelope.seal(input);
  assert.notDeepEqual(again, sealed);
  assert.notDeepEqual(envelope.parse(again).nonce, envelope.parse(sealed).nonce);
  assert.notDeepEqual(envelope.parse(again).wraps[0], envelope.parse(sealed).wraps[0]);
});

test('open refuses a reader without a recipient key and a wrong author key', () => {
  const { device, readers, sealed } = scenario(2, 1, rnd(100));
  const stranger = [{ kind: RECIPIENT_READER_KEY, id: rnd(16), version: 1, sk: rnd(32) }];
  assert.throws(() => envelope.open(sealed, { authorDevicePk: device.publicKey, readerKeys: stranger }), NoKey);
  const otherVersion = [{ ...readers[0], version: readers[0].version + 1 }];
  assert.throws(() => envelope.open(sealed, { authorDevicePk: device.publicKey, readerKeys: otherVersion }), NoKey);
  const other = sodium.crypto_sign_keypair();
  assert.throws(() => envelope.open(sealed, { authorDevicePk: other.publicKey, readerKeys: readers }), BadSignature);
});

test('seal refuses misuse with a TypeError before drawing randomness', () => {
  const { input } = scenario(2, 0, rnd(1));
  assert.throws(() => envelope.seal({ ...input, recipients: [input.recipients[0], input.recipients[0]] }), TypeError);
  assert.throws(() => envelope.seal({ ...input, recipients: [] }), TypeError);
  assert.throws(() => envelope.seal({ ...input, entryKeyVersion: 0 }), TypeError);
  assert.throws(() => envelope.seal({ ...input, entryKey: rnd(31) }), TypeError);
  assert.throws(() => envelope.seal({ ...input, pupilIds: Array.from({ length: 33 }, () => rnd(16)) }), TypeError);
});

test('flipping any single bit of an envelope makes open throw a CryptoError', () => {
  const { device, readers, sealed } = scenario(3, 2, rnd(300));
  const parsed = envelope.parse(sealed);
  const header = parsed.headerBytes.length;
  const regions = {
    header: [0, header],
    commitment: [header, header + 32],
    wraps: [header + 32, header + 32 + 80 * 3],
    ct_len: [header + 32 + 240, header + 32 + 244],
    ct: [header + 32 + 244, sealed.length - 64],
    signature: [sealed.length - 64, sealed.length],
  };
  assert.equal(regions.ct[1] - regions.ct[0], parsed.ct.length);
  const keys = { authorDevicePk: device.publicKey, readerKeys: readers };
  assert.equal(envelope.open(sealed, keys).content.length, 300);

  /** @type {Record<string, Record<string, number>>} */
  const seen = {};
  for (const [region, [start, end]] of Object.entries(regions)) {
    seen[region] = {};
    for (let bit = start * 8; bit < end * 8; bit++) {
      const flipped = Uint8Array.from(sealed);
      flipped[bit >> 3] ^= 1 << (bit & 7);
      let opened;
      try {
        opened = envelope.open(flipped, keys);
      } catch (e) {
        assert.ok(e instanceof CryptoError, `bit ${bit} (${region}): ${String(e)} is not a CryptoError`);
        seen[region][e.code] = (seen[region][e.code] ?? 0) + 1;
        continue;
      }
      assert.fail(`bit ${bit} (${region}) flipped and open still returned ${opened.content.length} bytes`);
    }
  }
  // Every region was exercised, and the signature is what catches tampering after parsing.
  for (const region of Object.keys(regions)) {
    assert.ok(Object.keys(seen[region]).length > 0, `no flips in ${region}`);
  }
  assert.deepEqual(Object.keys(seen.signature), ['bad_signature']);
  assert.deepEqual(Object.keys(seen.ct), ['bad_signature']);
  assert.deepEqual(Object.keys(seen.ct_len), ['parse_failure']);
});
