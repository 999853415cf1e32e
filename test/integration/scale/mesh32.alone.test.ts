/**
 * 32 hosts (namespaces on one bridge, one session process each, PSK, star), started
 * together, every namespace with this machine's host name: every peer ends with exactly 31
 * connected peers and no duplicate connection. Before host-contest.ts the 32 engines renamed
 * their shared host name one round at a time and the mesh took half a minute or more to form
 * (at 48 the first-started hosts never found each other within a minute).
 *
 * Runs alone (`*.alone.test.ts`: scripts/run-tests.mjs runs it after the other files, by itself).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { requires } from '../../harness/prereq.js';
import { ScaleLab } from '../../harness/scale-lab.js';

let lab: ScaleLab | undefined;
after(async () => {
  await lab?.teardown();
});

const N = 32;

test(`mesh of ${N} hosts started together: ${N - 1} connected peers each, no duplicates`, { timeout: 600_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  lab = await ScaleLab.create({ hosts: N, tag: 'm32' });
  const peers = await lab.startAll();
  const lastReady = Math.max(...peers.map((p) => p.readyAt));
  // generous: 32 Node processes start on a shared 2-core machine
  const mesh = await lab.waitMesh(240_000, 1000);
  t.diagnostic(`full mesh ${mesh.at - lastReady} ms after the last ready`);
  assert.ok(mesh.ok, `no full mesh: ${mesh.check.problems.join('; ')}`);
  // settled, and still so a few keepalives later (no duplicate resolved late, nobody dropped)
  await new Promise((r) => setTimeout(r, 5000));
  const st = await lab.statuses();
  const ids = peers.map((p) => p.id);
  for (const [p, s] of st) {
    assert.equal(s.connected.length, N - 1, `h${p.host} has ${s.connected.length} connected peers`);
    assert.equal(s.unique, N - 1, `h${p.host} lists a peer twice`);
    assert.equal(s.stats.controlConnections, N - 1, `h${p.host} has ${s.stats.controlConnections} control connections`);
    assert.deepEqual([...s.connected].sort(), ids.filter((id) => id !== s.id).sort());
  }
  const c = ScaleLab.check(st, ids);
  assert.deepEqual({ missing: c.missing, duplicates: c.duplicates, stale: c.stale }, { missing: 0, duplicates: 0, stale: 0 });
});
