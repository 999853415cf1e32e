/**
 * The package's entry point is one bundled file (scripts/bundle.mjs, docs/memory.md "One file"):
 * it must export what dist/src/index.js exports and work as a session. Bundled here into a
 * temporary directory from the current dist/src, so a stale dist/src/bundle.js cannot pass it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const fixture = fileURLToPath(new URL('../fixtures/bundle-session.js', import.meta.url));

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd: root, timeout: 90_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${args.join(' ')}: ${err.message}\n${stderr}`));
      resolve(stdout);
    });
  });
}

test('the bundled entry point exports the public API and runs a PSK session (node:tls loaded at the first connection)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'peerlink-bundle-'));
  try {
    const out = join(dir, 'bundle.js');
    await run(['scripts/bundle.mjs', '--out', out, '--check']);
    const got = JSON.parse((await run([fixture, out])).trim().split('\n').pop() ?? '') as { exports: string[]; message: string; tlsBefore: boolean; tlsAfter: boolean };
    const index = Object.keys(await import(new URL('../../../src/index.js', import.meta.url).href)).sort();
    assert.deepEqual(got.exports, index);
    assert.equal(got.message, 'hello through the bundle');
    assert.equal(got.tlsBefore, false);
    assert.equal(got.tlsAfter, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
