// docs/security.md must list every budget of src/session/budgets.ts with its default, and
// resolveBudgets must refuse what is not a budget or not a positive number.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DEFAULT_BUDGETS, resolveBudgets } from '../../../src/session/budgets.js';
import { isPeerlinkError } from '../../../src/errors.js';

const root = new URL('../../../../', import.meta.url);

test('docs/security.md lists every budget with its default', () => {
  const doc = readFileSync(new URL('docs/security.md', root), 'utf8');
  const wrong: string[] = [];
  for (const [name, value] of Object.entries(DEFAULT_BUDGETS)) {
    const row = new RegExp(`^\\| \`${name}\` \\| ([^|]+) \\|`, 'm').exec(doc);
    const shown = row?.[1]?.replace(/[\s ]/g, '') ?? '';
    if (!shown.startsWith(String(value))) wrong.push(`${name} (default ${value}, doc: ${row?.[1]?.trim() ?? 'missing'})`);
  }
  assert.deepEqual(wrong, []);
});

test('resolveBudgets: defaults, overrides, and refusals with ERR_INVALID_ARGUMENT', () => {
  assert.deepEqual(resolveBudgets(undefined), DEFAULT_BUDGETS);
  assert.equal(resolveBudgets({ streamsPerPeer: 5 }).streamsPerPeer, 5);
  assert.equal(resolveBudgets({ transferIdleTimeout: 2 ** 31 - 1 }).transferIdleTimeout, 2 ** 31 - 1);
  assert.equal(resolveBudgets({ dialBackoffInitial: 0.5 }).dialBackoffInitial, 0.5);
  for (const bad of [{ nope: 1 }, { streamsPerPeer: 0 }, { streamsPerPeer: -1 }, { streamsPerPeer: Number.NaN }, { streamsPerPeer: '3' }, { streamsPerPeer: 1.5 }, { transferIdleTimeout: 1e10 }]) {
    assert.throws(() => resolveBudgets(bad as never), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  }
});
