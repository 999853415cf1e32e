#!/usr/bin/env node
// Runs the compiled test files (dist/test/**/*.test.js) with node's test runner.
//   node scripts/run-tests.mjs [--only unit|integration] [--no-alone] [name-substring ...]
// --no-alone leaves out the `*.alone.test.js` files (CI runs them on Node 20 and 26 only).
// Integration suites build their own network namespaces with unique names, so files
// run side by side; --test-concurrency is set explicitly because node's default on a
// 2-core machine is 1. Files named `*.alone.test.js` (scale tests that need the whole
// machine, e.g. 32 peer processes) run after the others, one at a time, with nothing beside them.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawn } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
let only = null;
let noAlone = false;
const filters = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only = args[++i];
  else if (args[i] === '--no-alone') noAlone = true;
  else filters.push(args[i]);
}

function walk(dir, out) {
  let entries;
  try { entries = readdirSync(dir); } catch { return out; }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files = walk(join(root, 'dist', 'test'), []).sort();
if (only) files = files.filter((f) => relative(join(root, 'dist', 'test'), f).startsWith(only + '/'));
// Substrings match the path below dist/test only: a checkout whose own path holds the word
// (e.g. /work/wt/partials and "partial") must not select every file.
if (filters.length) files = files.filter((f) => filters.some((s) => relative(join(root, 'dist', 'test'), f).includes(s)));
if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
const concurrency = process.env.PEERLINK_TEST_CONCURRENCY ?? '4';
const alone = noAlone ? [] : files.filter((f) => f.endsWith('.alone.test.js'));
const shared = files.filter((f) => !f.endsWith('.alone.test.js'));

// The CLI's pki profiles (identity keys, known peers) live under XDG_CONFIG_HOME: every run
// gets a fresh one, so tests never read or write the user's ~/.config/peerlink, and no run
// remembers the keys of an earlier one.
const configHome = mkdtempSync(join(tmpdir(), 'peerlink-test-config-'));
const env = { ...process.env, XDG_CONFIG_HOME: configHome };

function runFiles(list, conc) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [
      '--test',
      `--test-concurrency=${conc}`,
      '--test-timeout=900000',
      '--test-reporter=spec',
      ...list,
    ], { stdio: 'inherit', cwd: root, env });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

let code = 0;
if (shared.length > 0) code = await runFiles(shared, concurrency);
if (alone.length > 0) {
  if (shared.length > 0) console.log(`\nrun-tests: ${alone.length} file(s) that run alone: ${alone.map((f) => relative(root, f)).join(', ')}`);
  const c = await runFiles(alone, '1');
  code = code || c;
}
rmSync(configHome, { recursive: true, force: true });
process.exit(code);
