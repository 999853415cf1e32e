/**
 * A session loads only what it uses (docs/memory.md): @peculiar/x509 and reflect-metadata (~16
 * MiB of RSS) only to make a certificate, ws and node:http only for the WebSocket transport,
 * node:tls (5–6.5 MiB on Node 24/26 with OpenSSL's set-up) only for its first PSK connection,
 * node:fs/promises and dns/promises (src/lazy-builtins.ts) only for files and host names, and
 * node:perf_hooks never (the global `performance` is the same object): ~1–2 MiB together.
 * Module loading is deterministic, so this is checked exactly, in a fresh process per mode
 * (fixtures/loaded-modules.ts: two sessions on loopback, connected, one message exchanged).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fixture = fileURLToPath(new URL('../fixtures/loaded-modules.js', import.meta.url));
const root = fileURLToPath(new URL('../../../../', import.meta.url));

function loaded(mode: string, entry?: string): Promise<{ packages: string[]; builtins: string[] }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [fixture, mode, ...(entry ? [entry] : [])], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${mode}: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as { packages: string[]; builtins: string[] });
    });
  });
}

/** Only for a certificate (PKI), the WebSocket transport or URL sources. */
const NOT_FOR_PSK = ['@peculiar/x509', 'reflect-metadata', 'tsyringe', 'ws'];
const NOT_FOR_PSK_BUILTINS = ['http', 'https'];
/**
 * Loaded on first use (src/lazy-builtins.ts; the global `performance`, not node:perf_hooks):
 * a lone session transfers no file, resolves no host name and measures no connection. Not
 * worker_threads and child_process for a started session: koffi (its copy of node:util's
 * properties, on Node 22+) and the first listening socket (node:net → cluster) load them.
 */
const LAZY_BUILTINS = ['fs/promises', 'perf_hooks', 'dns/promises'];
const LAZY_AT_IMPORT = [...LAZY_BUILTINS, 'worker_threads', 'child_process'];

test('importing the library loads no third-party package, nor node:tls, fs/promises, perf_hooks, dns/promises or child_process', async () => {
  const { packages, builtins } = await loaded('import');
  assert.deepEqual(packages, []);
  // Not worker_threads here: imported as ESM files, `import … from 'node:util'` makes Node build
  // node:util's ESM facade, which on Node 22+ reads util.setTraceSigInt and so loads it. The
  // bundle requires node:util as CommonJS (checked below).
  for (const b of [...NOT_FOR_PSK_BUILTINS, 'tls', ...LAZY_BUILTINS, 'child_process']) assert.ok(!builtins.includes(b), `node:${b} loaded by import`);
});

for (const mode of ['psk', 'none']) {
  test(`a connected ${mode} session does not load x509, reflect-metadata, ws or node:http`, async () => {
    const { packages, builtins } = await loaded(mode);
    for (const p of NOT_FOR_PSK) assert.ok(!packages.includes(p), `${p} loaded by a ${mode} session (${packages.join(' ')})`);
    for (const b of NOT_FOR_PSK_BUILTINS) assert.ok(!builtins.includes(b), `node:${b} loaded by a ${mode} session`);
  });
}

test('a started PSK session that has met no peer has not loaded node:tls, fs/promises, perf_hooks or dns/promises (nor x509, ws, http)', async () => {
  const { packages, builtins } = await loaded('lone');
  for (const p of NOT_FOR_PSK) assert.ok(!packages.includes(p), `${p} loaded by a lone session (${packages.join(' ')})`);
  for (const b of [...NOT_FOR_PSK_BUILTINS, 'tls', ...LAZY_BUILTINS]) assert.ok(!builtins.includes(b), `node:${b} loaded by a lone session`);
});

test('from the bundled entry point, importing loads none of node:tls, fs/promises, perf_hooks, dns/promises, worker_threads, child_process, and a lone session none of the first four', async () => {
  // Bundled here from the current dist/src, so a stale dist/src/bundle.js cannot pass it.
  const dir = mkdtempSync(join(tmpdir(), 'peerlink-lazy-'));
  try {
    const bundle = join(dir, 'bundle.js');
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, ['scripts/bundle.mjs', '--out', bundle], { cwd: root, timeout: 90_000 }, (err, _out, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve()));
    });
    const atImport = await loaded('import', bundle);
    for (const b of [...NOT_FOR_PSK_BUILTINS, 'tls', ...LAZY_AT_IMPORT]) assert.ok(!atImport.builtins.includes(b), `node:${b} loaded by importing the bundle`);
    const { packages, builtins } = await loaded('lone', bundle);
    for (const p of NOT_FOR_PSK) assert.ok(!packages.includes(p), `${p} loaded by a lone session (${packages.join(' ')})`);
    for (const b of [...NOT_FOR_PSK_BUILTINS, 'tls', ...LAZY_BUILTINS]) assert.ok(!builtins.includes(b), `node:${b} loaded by a lone session from the bundle`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a connected PSK session has loaded node:tls (the check above can see it)', async () => {
  const { builtins } = await loaded('psk');
  assert.ok(builtins.includes('tls'), builtins.join(' '));
});

test('a PKI session loads @peculiar/x509 to make its certificate (the check above can see it)', async () => {
  const { packages } = await loaded('pki');
  assert.ok(packages.includes('@peculiar/x509'), packages.join(' '));
  assert.ok(!packages.includes('ws'), packages.join(' '));
});
