/**
 * Strangers who become peers (security `none`: anyone can) stretch the victim's keepalive pace
 * (src/session/keepalive-pace.ts) and make it trim its heap (src/session/memory-trim.ts). Raw
 * peers from sockets, each a live peer (answers PINGs), join and leave; the test measures what
 * that costs the victim: how slow its liveness checks get (the stretch stops at
 * MAX_STRETCHED_INTERVAL), how often it calls malloc_trim (at most once per 10 s quiet period),
 * and its fds and connections once they left.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { cleanup, rawPeer, startVictim } from './harness.js';
import { until } from '../harness/proc.js';
import { MAX_STRETCHED_INTERVAL } from '../../src/session/keepalive-pace.js';

after(cleanup);

const ATTACKERS = 40;

test(`${ATTACKERS} raw peers stretch the keepalive pace only to ${MAX_STRETCHED_INTERVAL} ms, the pace returns once they leave, and their joining and leaving makes at most one heap trim per quiet period`, { timeout: 180_000 }, async (t) => {
  // 200 ms / 600 ms at 1 exchange a second: 40 peers would ask for 40 s without the cap.
  const v = await startVictim({ keepaliveInterval: 200, keepaliveTimeout: 600, keepaliveRate: 1 });
  const before = await v.cost();
  const t0 = Date.now();
  const sockets: Socket[] = [];
  for (let i = 0; i < ATTACKERS; i++) sockets.push((await rawPeer(v, { displayName: `a${i}`, peerId: randomBytes(16) })).socket);
  // Each connection takes the pace at its next tick (and only when it moved by more than 10 %):
  // watch for two of the longest intervals; without the cap the later ones would ask for 40 s.
  let stretched = await v.cost();
  let longest = 0;
  for (const end = Date.now() + 1.1 * MAX_STRETCHED_INTERVAL; Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 2000));
    stretched = await v.cost();
    assert.equal(stretched.keepaliveMs.length, ATTACKERS, 'every stranger is a connected peer');
    for (const k of stretched.keepaliveMs) {
      assert.ok(k !== null && k.intervalMs <= MAX_STRETCHED_INTERVAL, `interval ${k?.intervalMs} ms: never past the cap`);
      assert.equal(k.timeoutMs, 3 * k.intervalMs);
      longest = Math.max(longest, k.intervalMs);
    }
  }
  assert.equal(longest, MAX_STRETCHED_INTERVAL, 'the strangers did stretch it, to the cap');
  t.diagnostic(`with ${ATTACKERS} strangers as peers: interval ${MAX_STRETCHED_INTERVAL} ms, timeout ${3 * MAX_STRETCHED_INTERVAL} ms (configured 200 / 600; one peer at 1 a second: 1000 / 3000); fds ${before.fds} → ${stretched.fds}, rss +${((stretched.rss - before.rss) / 2 ** 20).toFixed(1)} MiB`);

  // They leave; one stays (an honest peer, say): its pace comes back to one peer's (1 s at 1 a second).
  for (const s of sockets.slice(1)) s.destroy();
  const back = await until(async () => {
    const c = await v.cost();
    return c.keepaliveMs.length === 1 && c.keepaliveMs[0]?.intervalMs === 1000 ? c : undefined;
  }, MAX_STRETCHED_INTERVAL + 10_000, 'the remaining peer back at 1 s');
  assert.deepEqual(back.keepaliveMs[0], { intervalMs: 1000, timeoutMs: 3000 });
  (sockets[0] as Socket).destroy();
  const gone = await until(async () => {
    const c = await v.cost();
    return c.incoming === 0 && c.stats.controlConnections === 0 ? c : undefined;
  }, 20_000, 'every attacker connection closed');
  // 80 connection events, then quiet: the trims follow quiet periods, not events.
  await new Promise((r) => setTimeout(r, 11_000));
  const end = await v.cost();
  const elapsed = Date.now() - t0;
  const trims = end.stats['memoryTrims'] as number;
  t.diagnostic(`${2 * ATTACKERS} connection events in ${(elapsed / 1000).toFixed(0)} s: ${trims} heap trims; fds ${before.fds} → ${gone.fds}`);
  assert.ok(trims >= 1, 'a trim after the quiet period (glibc)');
  assert.ok(trims <= Math.floor(elapsed / 10_000), `${trims} trims in ${elapsed} ms: at most one per 10 s`);
  assert.ok(gone.fds <= before.fds + 2, `fds ${before.fds} → ${gone.fds}`);
});
