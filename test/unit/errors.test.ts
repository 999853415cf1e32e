import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerlinkError, isPeerlinkError } from '../../src/errors.js';

test('PeerlinkError carries a stable code', () => {
  const e = new PeerlinkError('ERR_PSK_MISMATCH', 'the pre-shared keys differ');
  assert.equal(e.code, 'ERR_PSK_MISMATCH');
  assert.ok(isPeerlinkError(e, 'ERR_PSK_MISMATCH'));
  assert.ok(!isPeerlinkError(e, 'ERR_CLOSED'));
  assert.ok(!isPeerlinkError(new Error('x')));
});
