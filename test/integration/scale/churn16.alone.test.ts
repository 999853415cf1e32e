/**
 * Churn: 16 hosts; for two minutes, every second a random peer leaves (SIGKILL and graceful in
 * turn) and a new one joins. Afterwards every live peer is connected to exactly the live set
 * (peers killed without a word are dropped, newcomers connected), nobody is stuck in
 * `connecting`, and a peer that lived through it all holds no more fds or timers than it did
 * early on (a leak of one per departed peer would show as +60).
 *
 * Runs alone (`*.alone.test.ts`).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { requires } from '../../harness/prereq.js';
import { ScaleLab, type PeerMetrics } from '../../harness/scale-lab.js';

let lab: ScaleLab | undefined;
after(async () => {
  await lab?.teardown();
});

const N = 16;
const SECONDS = 120;

test(`churn with ${N} peers for ${SECONDS} s: the live set converges, no fd or timer leak`, { timeout: 900_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  lab = await ScaleLab.create({ hosts: N, tag: 'ch16', countTimers: true, countMdns: false });
  const peers = await lab.startAll();
  const observer = peers[0]!;
  const first = await lab.waitMesh(180_000, 1000);
  assert.ok(first.ok, `no initial mesh: ${first.check.problems.join('; ')}`);
  const samples: PeerMetrics[] = [];
  const counts = await lab.churn(SECONDS, [observer], async (elapsed) => {
    // one sample every ~15 s
    if (elapsed < samples.length * 15_000) return;
    const m = (await lab!.metrics([observer])).get(observer);
    if (m) samples.push(m);
  });
  t.diagnostic(`${counts.kills} killed, ${counts.graceful} left, ${counts.joins} joined`);
  const end = Date.now();
  // killed peers are noticed by keepalive (≤ 8 s); newcomers still being meshed
  const settled = await lab.waitMesh(180_000, 1000);
  t.diagnostic(`live set converged ${settled.at - end} ms after the last join`);
  assert.ok(settled.ok, `live set not converged: ${settled.check.problems.join('; ')}`);
  for (const p of lab.live()) {
    const stuck = p.stuckConnecting().filter((s) => !lab!.live().some((q) => q.id === s.peer));
    assert.deepEqual(stuck, [], `h${p.host} still lists departed peers as connecting`);
  }
  // leaks: the observer after the run vs early in it (both with ~N peers connected)
  await new Promise((r) => setTimeout(r, 3000));
  const last = (await lab.metrics([observer])).get(observer)!;
  const early = samples[1] ?? samples[0]!;
  t.diagnostic(`observer: fds ${early.fds} -> ${last.fds}, timers ${String(early.timers)} -> ${String(last.timers)}, rss ${(early.rss / 2 ** 20).toFixed(1)} -> ${(last.rss / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(last.fds <= early.fds + 10, `fds grew from ${early.fds} to ${last.fds} over ${counts.joins} joins`);
  assert.ok((last.timers ?? 0) <= (early.timers ?? 0) + 20, `timers grew from ${String(early.timers)} to ${String(last.timers)}`);
});
