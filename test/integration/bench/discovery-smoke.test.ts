/**
 * Keeps bench/discovery from rotting: one run of the benchmark must finish and print a
 * table in which every publisher was seen by every browser. No timing is asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run } from '../../harness/proc.js';
import { REPO_ROOT } from '../../harness/paths.js';
import { requires, skipUnless } from '../../harness/prereq.js';

const skip = skipUnless('netns', 'avahi', 'zeroconf', 'python-dbus');

test('bench/discovery runs once and every browser sees every publisher', { skip, timeout: 300_000 }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'zeroconf', 'python-dbus')) return;
  const r = await run(process.execPath, [`${REPO_ROOT}/dist/bench/discovery/run.js`, '--runs', '1', '--json'], { timeoutMs: 240_000, check: false });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const samples = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { publisher: string; browser: string; ms: number | null });
  assert.equal(samples.length, 9, r.stdout);
  assert.ok(
    samples.every((s) => typeof s.ms === 'number' && s.ms > 0),
    `every pair discovered: ${JSON.stringify(samples)}`,
  );
  assert.match(r.stdout, /\| publisher \\ browser +\| peerlink/);
});
