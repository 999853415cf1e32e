// docs/errors.md must list every code in src/errors.ts, with a line each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const root = new URL('../../../../', import.meta.url);

test('docs/errors.md lists every error code', () => {
  const src = readFileSync(new URL('src/errors.ts', root), 'utf8');
  const doc = readFileSync(new URL('docs/errors.md', root), 'utf8');
  const codes = [...src.matchAll(/'(ERR_[A-Z0-9_]+)'/g)].map((m) => m[1]!);
  assert.ok(codes.length > 20);
  const missing = [...new Set(codes)].filter((c) => !new RegExp(`^\\| \`${c}\` \\|`, 'm').test(doc));
  assert.deepEqual(missing, [], `missing from docs/errors.md: ${missing.join(', ')}`);
});
