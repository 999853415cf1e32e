/**
 * 100 sessions on one link: 10 hosts (namespaces on one bridge) of 10 sessions each — one
 * process per host, its sessions sharing one dnssd engine (the `mdns` option) — all in one star
 * session with a PSK, started together, every namespace with this machine's host name: every
 * session ends with exactly 99 connected peers (4 950 pairs) and no duplicate connection.
 * 100 processes of one session each do not fit two cores (bench/scale/README.md); this is the
 * arrangement in which 100 peers form a full mesh here, in 24–31 s after the last ready.
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

const HOSTS = 10;
const PER_HOST = 10;
const N = HOSTS * PER_HOST;

test(`mesh of ${N} sessions (${HOSTS} hosts × ${PER_HOST}) started together: ${N - 1} connected peers each, no duplicates`, { timeout: 600_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  lab = await ScaleLab.create({ hosts: HOSTS, tag: 'm100', sessionsPerHost: PER_HOST });
  const peers = await lab.startAll();
  assert.equal(peers.length, N);
  const lastReady = Math.max(...peers.map((p) => p.readyAt));
  // generous: a protocol deadline, not a speed assert (24–31 s on this 2-core machine)
  const mesh = await lab.waitMesh(240_000, 1000);
  t.diagnostic(`full mesh ${mesh.at - lastReady} ms after the last ready`);
  assert.ok(mesh.ok, `no full mesh: ${mesh.check.missing} missing, ${mesh.check.duplicates} duplicates; ${mesh.check.problems.join('; ')}`);
  // settled, and still so a few keepalives later (no duplicate resolved late, nobody dropped)
  await new Promise((r) => setTimeout(r, 5000));
  const st = await lab.statuses();
  const ids = peers.map((p) => p.id);
  assert.equal(new Set(ids).size, N, 'every session has an id of its own');
  for (const [p, s] of st) {
    assert.equal(s.unique, N - 1, `${p.label} has ${s.unique} distinct connected peers`);
    assert.equal(s.stats.controlConnections, N - 1, `${p.label} has ${s.stats.controlConnections} control connections`);
    assert.deepEqual([...s.connected].sort(), ids.filter((id) => id !== s.id).sort(), `${p.label}: not exactly the others`);
  }
  const c = ScaleLab.check(st, ids);
  assert.deepEqual({ missing: c.missing, duplicates: c.duplicates, stale: c.stale }, { missing: 0, duplicates: 0, stale: 0 });
});
