/**
 * Freed heap pages given back (src/net/sockopt.ts releaseFreeMemory, src/session/memory-trim.ts):
 * glibc keeps freed chunks in the middle of its heap until malloc_trim; a child process frees
 * most of 48 MiB of 64 KiB buffers while every 8th stays, and its RSS must fall after the call.
 * And a session trims once after a burst of connections has been quiet for 10 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { PeerSession } from '../../../src/session/index.js';
import { Endpoint } from '../../../src/net/index.js';

const glibc = process.platform === 'linux' && typeof (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime === 'string';

test('releaseFreeMemory returns freed heap pages to the kernel (RSS falls)', { skip: glibc ? false : 'needs Linux with glibc' }, () => {
  const sockopt = fileURLToPath(new URL('../../../src/net/sockopt.js', import.meta.url));
  const script = `
    const { releaseFreeMemory } = await import(${JSON.stringify(sockopt)});
    const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    let bufs = [];
    for (let i = 0; i < 768; i++) bufs.push(Buffer.alloc(65536, 1));
    bufs = bufs.filter((_, i) => i % 8 === 0); // every 8th stays: the freed ones lie below it
    for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 50)); }
    const before = rss();
    const ok = releaseFreeMemory();
    const after = rss();
    console.log(JSON.stringify({ ok, before, after, kept: bufs.length }));`;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=commonjs', '-e', `(async () => {${script}})()`], { encoding: 'utf8' });
  const r = JSON.parse(out.trim().split('\n').pop() as string) as { ok: boolean; before: number; after: number };
  assert.equal(r.ok, true, 'malloc_trim is available');
  assert.ok(r.before - r.after > 16, `RSS ${r.before.toFixed(1)} → ${r.after.toFixed(1)} MiB: the ~42 MiB freed should mostly go back`);
});

test('a session trims once after a burst of 16 connection events has been quiet for 10 s', { skip: glibc ? false : 'needs Linux with glibc', timeout: 60_000 }, async () => {
  const key = randomBytes(32).toString('hex');
  const mk = (name: string, extra = {}): PeerSession => new PeerSession({ serviceType: 'trim', displayName: name, advertise: false, browse: false, security: { mode: 'psk', key }, ...extra });
  const hub = mk('Hub');
  const off = mk('NoTrim', { trimMemory: false });
  const spokes = Array.from({ length: 8 }, (_, i) => mk(`S${i}`));
  try {
    await hub.start();
    await off.start();
    for (const s of spokes) await s.start();
    for (const s of spokes) {
      await s.connect(Endpoint.hostPort('127.0.0.1', hub.listenPort));
      await s.connect(Endpoint.hostPort('127.0.0.1', off.listenPort));
    }
    for (const s of spokes) await s.close(); // 8 opened + 8 closed on the hub: 16 events
    const quietFrom = Date.now();
    assert.equal(hub.stats.memoryTrims, 0, 'not while the burst is fresh');
    while (hub.stats.memoryTrims === 0 && Date.now() - quietFrom < 20_000) await new Promise((r) => setTimeout(r, 250));
    const took = Date.now() - quietFrom;
    assert.equal(hub.stats.memoryTrims, 1);
    assert.ok(took >= 9_000, `trimmed ${took} ms after the last event (quiet period 10 s)`);
    assert.equal(off.stats.memoryTrims, 0, 'trimMemory: false');
  } finally {
    await Promise.allSettled([hub.close(), off.close(), ...spokes.map((s) => s.close())]);
  }
});
