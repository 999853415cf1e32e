/** `peerlink interfaces` (the command lives in src/cli; it is a thin view of src/path). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { run } from '../../../src/cli/commands/interfaces.js';
import { main } from '../../../src/cli/main.js';
import type { CliIO } from '../../../src/cli/io.js';

function fakeIO(): { io: CliIO; out: () => string; err: () => string; abort: () => void } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d: Buffer) => (o += d.toString()));
  stderr.on('data', (d: Buffer) => (e += d.toString()));
  const ac = new AbortController();
  return { io: { stdin: new PassThrough(), stdout, stderr, env: {}, signal: ac.signal }, out: () => o, err: () => e, abort: () => ac.abort('SIGTERM') };
}

test('interfaces --json: one object per interface per line, loopback included, not default', async () => {
  const f = fakeIO();
  assert.equal(await run(['--json'], f.io), 0);
  const lines = f.out().trim().split('\n');
  const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const lo = objs.find((o) => o.loopback === true);
  assert.ok(lo);
  assert.equal(lo.type, 'loopback');
  assert.equal(lo.default, false);
  assert.equal(typeof lo.index, 'number');
  const addrs = lo.addresses as { family: string; address: string; prefixLength: number; scope: string }[];
  assert.ok(addrs.some((a) => a.address === '127.0.0.1' && a.prefixLength === 8 && a.scope === 'host' && a.family === 'IPv4'));
  for (const o of objs) for (const k of ['name', 'index', 'type', 'up', 'running', 'multicast', 'mtu', 'default', 'addresses']) assert.ok(k in o, `${k} in ${JSON.stringify(o)}`);
});

test('interfaces: human table with a header; extra argument is a usage error (exit 2)', async () => {
  const f = fakeIO();
  assert.equal(await run([], f.io), 0);
  assert.match(f.out(), /^ NAME +INDEX +TYPE +STATE +FLAGS +MTU +ADDRESSES/);
  assert.match(f.out(), /loopback/);
  const g = fakeIO();
  assert.equal(await main(['interfaces', 'extra'], g.io), 2);
  assert.match(g.err(), /takes no arguments/);
  const h = fakeIO();
  assert.equal(await main(['interfaces', '--nope'], h.io), 2);
});

test('interfaces --watch ends cleanly (exit 0) on SIGTERM', async () => {
  const f = fakeIO();
  const done = run(['--watch', '--json'], f.io);
  await new Promise((r) => setTimeout(r, 300));
  f.abort();
  assert.equal(await done, 0);
});
