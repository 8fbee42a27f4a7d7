// The keyholder's check before sealing (sync/keyholder.js `mayHold`), table-driven, the same cases as
// sync/entitlement.py `may_hold`: roles and classes from the signed directory decide what a device seals.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { directoryView, mayHold } from '../js/sync/keyholder.js';

const directory = {
  accounts: [
    { id: 'dsl', roles: ['safeguarding', 'admin'], left: false },
    { id: 'teacher', roles: ['teacher'], left: false },
    { id: 'senco', roles: ['teacher', 'sen'], left: false },
    { id: 'lunch', roles: ['contributor'], left: false },
    { id: 'gone', roles: ['teacher'], left: true },
  ],
  classes: [{ id: 'oak', label: 'Oak', pupils: ['p1'], teachers: ['teacher', 'gone'] }],
  pupils: [{ id: 'p1', reader_key_id: 'k-p1' }, { id: 'p2', reader_key_id: 'k-p2' }],
  reader_keys: [
    { id: 'k-p1', version: 1, purpose: 'pupil' }, { id: 'k-p2', version: 1, purpose: 'pupil' },
    { id: 'k-sg', version: 1, purpose: 'group:safeguarding' }, { id: 'k-sen', version: 2, purpose: 'group:sen' },
    { id: 'k-staff', version: 1, purpose: 'roster:staff' }, { id: 'k-sens', version: 1, purpose: 'roster:sensitive' },
    { id: 'k-sign', version: 1, purpose: 'signing:directory' },
  ],
};

/** @type {[string, string, boolean][]} */
const CASES = [
  ['dsl', 'k-p2', true], ['dsl', 'k-sg', true], ['dsl', 'k-sen', true], ['dsl', 'k-sign', true],
  ['teacher', 'k-p1', true], ['teacher', 'k-p2', false], ['teacher', 'k-sg', false], ['teacher', 'k-sen', false],
  ['teacher', 'k-sign', false], ['senco', 'k-sen', true], ['senco', 'k-p1', false], ['senco', 'k-sg', false],
  ['lunch', 'k-staff', true], ['lunch', 'k-sens', false], ['teacher', 'k-sens', true], ['lunch', 'k-p1', false],
  ['gone', 'k-p1', false], ['gone', 'k-staff', false], ['nobody', 'k-staff', false], ['dsl', 'k-unknown', false],
];

for (const [member, key, expected] of CASES) {
  test(`${member} ${expected ? 'may' : 'may not'} hold ${key}`, () => {
    assert.equal(mayHold(directoryView(/** @type {any} */ (directory)), member, key), expected);
  });
}
