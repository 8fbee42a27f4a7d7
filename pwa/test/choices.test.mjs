// A redraw keeps what the person chose in a triage control and has not saved yet (a loaded CI saved the old
// status: two redraws between choosing and saving put the record's value back).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Choices } from '../js/app/choices.js';

test('a choice survives any number of redraws until the record catches up with it', () => {
  const c = new Choices();
  assert.equal(c.begin('concern-1'), true);
  assert.equal(c.pick('status-to', '', 'open'), 'open'); // first fill: the record's state
  // The person chooses "awaiting"; events arrive and the page redraws three times before they press Set status.
  for (let i = 0; i < 3; i += 1) {
    assert.equal(c.begin('concern-1'), false);
    assert.equal(c.pick('status-to', 'awaiting', 'open'), 'awaiting', `redraw ${i + 1} undid the choice`);
  }
  // Saved: the record now says "awaiting", and so does the control.
  assert.equal(c.pick('status-to', 'awaiting', 'awaiting'), 'awaiting');
  // Another device sets it to "closed" while the person has not touched the control: the page follows.
  assert.equal(c.pick('status-to', 'awaiting', 'closed'), 'closed');
});

test('an untouched control follows the record, and a new concern starts from its own state', () => {
  const c = new Choices();
  c.begin('concern-1');
  assert.equal(c.pick('assign-to', '', ''), '');
  assert.equal(c.pick('assign-to', '', 'dsl'), 'dsl'); // assigned elsewhere: shown
  c.pick('status-to', 'open', 'open');
  assert.equal(c.begin('concern-2'), true);
  assert.equal(c.pick('status-to', 'awaiting', 'new'), 'new'); // what was chosen on concern-1 is not carried over
});

test('a reset forgets the record and the choices', () => {
  const c = new Choices();
  c.begin('concern-1');
  c.pick('status-to', 'open', 'open');
  c.reset();
  assert.equal(c.begin('concern-1'), true);
  assert.equal(c.pick('status-to', 'awaiting', 'open'), 'open');
});
