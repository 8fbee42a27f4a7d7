// Who may hold which reader key (sync/keyholder.js `mayHold`, the twin of sync/entitlement.py `may_hold`):
// the shared entitlement vectors of tests/vectors/entitlement/, every member against every key, the same
// table the Python suite runs (tests/sync/test_entitlement_vectors.py). And `isKeyholder`: a safeguarding
// member by the signed directory who holds the safeguarding group's key.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { b64e, unhex } from '../js/sync/protocol.js';
import { directoryView, isKeyholder, mayHold } from '../js/sync/keyholder.js';

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'vectors', 'entitlement');
const id = (/** @type {string} */ h) => b64e(unhex(h));

/**
 * The vector's directory (hex ids) as a verified listing shows it (base64url ids).
 * @param {any} d
 */
function listing(d) {
  return {
    accounts: d.accounts.map((/** @type {any} */ a) => ({ ...a, id: id(a.id) })),
    classes: d.classes.map((/** @type {any} */ c) => ({ ...c, id: id(c.id), pupils: c.pupils.map(id), teachers: c.teachers.map(id) })),
    reader_keys: d.reader_keys.map((/** @type {any} */ k) => ({ ...k, id: id(k.id) })),
    pupils: d.pupils.map((/** @type {any} */ x) => ({ id: id(x.id), reader_key_id: id(x.reader_key_id) })),
  };
}

const files = readdirSync(VECTORS).filter((name) => name.endsWith('.json')).sort();

test('the entitlement folder holds vectors', () => {
  assert.ok(files.length > 0, `no vectors under ${VECTORS}`);
});

for (const name of files) {
  const vector = JSON.parse(readFileSync(join(VECTORS, name), 'utf8'));
  test(`entitlement vector ${name}: every member against every key`, () => {
    assert.equal(vector.construct, 'entitlement');
    assert.equal(vector.expect, 'success');
    const { inputs } = vector;
    const view = directoryView(listing(inputs.directory));
    assert.ok(vector.output.table.length > 0);
    for (const row of vector.output.table) {
      const member = id(inputs.ids[row.member]);
      const key = id(inputs.keys[row.key]);
      assert.equal(mayHold(view, member, key), row.may_hold, `${row.member} and ${row.key}`);
    }
  });
}

test('a keyholder is a safeguarding member who holds the safeguarding key', () => {
  const vector = JSON.parse(readFileSync(join(VECTORS, files[0]), 'utf8'));
  const { inputs } = vector;
  const dsl = id(inputs.ids.dsl);
  const sg = id(inputs.keys['group:safeguarding']);
  const sen = id(inputs.keys['group:sen']);
  const directory = listing(inputs.directory);
  assert.equal(isKeyholder(directoryView(directory), dsl), false, 'no grant of the safeguarding key');
  assert.equal(isKeyholder(directoryView(directory, [[sen, 1, dsl]]), dsl), false, 'another key is not enough');
  assert.equal(isKeyholder(directoryView(directory, [[sg, 1, dsl]]), dsl), true);
  const senco = id(inputs.ids.senco);
  assert.equal(isKeyholder(directoryView(directory, [[sg, 1, senco]]), senco), false, 'the role comes from the directory');
  const left = id(inputs.ids.left);
  assert.equal(isKeyholder(directoryView(directory, [[sg, 1, left]]), left), false);
});
