// Known-answer vectors shared with the Python suite: one test per file under tests/vectors/, each run
// through checkVector (js/crypto/selfcheck.js, the twin of crypto/selfcheck.py). Fails (never passes
// vacuously) when the folder holds no vectors, a construct this suite does not know, or an `expect`
// outside the closed list; and proves the runner itself can fail.
//
// tests/vectors/fold/, entitlement/ and mis/ hold rules, not constructions (RULE_FOLDERS): the
// concern fold's scenarios (test/fold.test.mjs), who may hold which key (test/keyholder.test.mjs) and what a
// pupil file from the MIS holds (test/mis.test.mjs). They
// are skipped here by name, and only they.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { EXPECTS, RULE_FOLDERS, SelfCheckFailed, checkVector } from '../js/crypto/selfcheck.js';

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'vectors');
/** Top-level folders of tests/vectors/ that belong to another suite. */
const OTHER_SUITES = new Set(RULE_FOLDERS);
const CONSTRUCTS = [
  'account', 'challenge', 'bundle', 'recovery', 'recovery_proof', 'device_cert', 'device_auth', 'delivery_auth', 'wrap', 'grant',
  'entry_grant', 'envelope', 'padding', 'roster', 'local', 'local_wrap', 'password_change', 'directory', 'approval',
  'identity_binding',
];

/**
 * @param {string} dir
 * @returns {string[]}
 */
function jsonFiles(dir) {
  /** @type {string[]} */
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...jsonFiles(path));
    else if (name.endsWith('.json')) out.push(path);
  }
  return out;
}

/** @param {string} file */
const nameOf = (file) => relative(VECTORS, file).split(sep).join('/');

/** @param {string} name e.g. "wrap/unwrap_success.json" */
const load = (name) => JSON.parse(readFileSync(join(VECTORS, ...name.split('/')), 'utf8'));

const files = jsonFiles(VECTORS).filter((f) => !OTHER_SUITES.has(nameOf(f).split('/')[0]));

test('the vector folder holds vectors for every construct, and for no unknown one', () => {
  assert.ok(files.length > 0, `no vectors under ${VECTORS}`);
  const seen = new Set(files.map((f) => nameOf(f).split('/')[0]));
  assert.deepEqual([...seen].sort(), [...CONSTRUCTS].sort());
});

test('checkVector refuses an unknown construct', () => {
  const v = load('wrap/unwrap_success.json');
  assert.throws(() => checkVector({ ...v, construct: 'teleport' }), SelfCheckFailed);
  assert.throws(() => checkVector({ ...v, construct: 'fold' }), SelfCheckFailed, 'fold vectors are not crypto vectors');
  assert.throws(() => checkVector({ ...v, construct: 'entitlement' }), SelfCheckFailed, 'nor are entitlement vectors');
  assert.throws(() => checkVector({ ...v, construct: 'toString' }), SelfCheckFailed);
});

test('checkVector refuses an expect outside the closed list', () => {
  assert.deepEqual([...EXPECTS], ['success', 'parse_failure', 'auth_failure', 'bad_signature', 'no_key', 'unsupported_version', 'rollback', 'unapproved']);
  assert.deepEqual([...RULE_FOLDERS], ['fold', 'entitlement', 'mis']);
  const v = load('wrap/unwrap_tampered_box.json');
  for (const expect of ['failure', 'error', 'Auth_Failure', undefined]) {
    assert.throws(() => checkVector({ ...v, expect }), /unknown expect/);
  }
});

test('the runner can fail: a wrong expectation is caught', () => {
  const ok = load('wrap/unwrap_success.json');
  assert.throws(() => checkVector({ ...ok, expect: 'auth_failure' }), (e) => {
    assert.ok(e instanceof SelfCheckFailed);
    assert.match(e.message, /expected auth_failure, but it succeeded/);
    return true;
  });
  const tampered = load('wrap/unwrap_tampered_box.json');
  assert.throws(() => checkVector({ ...tampered, expect: 'bad_signature' }), (e) => {
    assert.ok(e instanceof SelfCheckFailed);
    assert.match(e.message, /expected BadSignature \(bad_signature\), got DecryptionFailed \(auth_failure\)/);
    return true;
  });
  const flipped = ok.inputs.wrap.slice(0, -1) + (ok.inputs.wrap.endsWith('0') ? '1' : '0');
  const wrongBytes = { ...ok, inputs: { ...ok.inputs, wrap: flipped } };
  assert.throws(() => checkVector(wrongBytes), SelfCheckFailed, 'a seal that differs by one bit is caught');
});

for (const file of files) {
  const name = nameOf(file);
  test(`vector ${name}`, () => {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(name, `${v.construct}/${v.area}_${v.condition}.json`, 'the file is named for its case');
    assert.ok(typeof v.comment === 'string' && v.comment.length > 0, 'every vector says what it checks');
    assert.equal(v.expect === 'success', v.output !== undefined, 'success vectors, and only they, have an output');
    checkVector(v);
  });
}
