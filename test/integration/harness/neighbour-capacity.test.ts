/**
 * A lab of 48 hosts in which every host reaches every other at once, over IPv4, IPv6 ULA and
 * link-local — what a 48-peer mesh does while it forms. Every namespace of the machine shares
 * one ARP and one NDP table, capped by the root namespace's gc_thresh3 (default 1024): 48 hosts
 * need 2256 ARP and 4512 NDP entries, so with the kernel's defaults more than half of these
 * connections went unanswered (the 48-peer scale lab's "dials time out after 10 s"). The lab
 * must size the tables (netns.ts, ensureNeighbourCapacity).
 *
 * No peerlink process here: one small Node process per host, connecting to a closed port (a
 * RST is the answer), so the test measures the lab, not the library.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLab, neighbourEntriesFor, type Lab } from '../../harness/netns.js';
import { killAllTracked, waitForJson, type TrackedProcess } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';

const skip = skipUnless('netns');
const SWEEP = fileURLToPath(new URL('../../harness/connect-sweep.js', import.meta.url));
const HOSTS = 48;
/** Nobody listens here: every reachable host answers with a RST. */
const CLOSED_PORT = 9;
let lab: Lab | undefined;

after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

test(`${HOSTS} hosts reach each other at once (IPv4, ULA, link-local): the neighbour tables fit the lab`, { skip, timeout: 240_000 }, async (t) => {
  if (!requires(t, 'netns')) return;
  lab = await createLab({ hosts: HOSTS, tag: 'nb' });
  const need = neighbourEntriesFor(HOSTS);
  for (const [family, entries] of [[4, need.arp], [6, need.ndp]] as const) {
    const cap = Number(readFileSync(`/proc/sys/net/ipv${family}/neigh/default/gc_thresh3`, 'utf8'));
    assert.ok(cap > entries, `IPv${family} neighbour table holds ${cap} entries, the lab needs ${entries}`);
  }
  const l = lab;
  const hosts = l.hosts;
  const linkLocal = await Promise.all(hosts.map((h) => l.linkLocal(h, 20_000)));
  const sweeps: TrackedProcess[] = hosts.map((h, i) => {
    const targets = hosts.flatMap((o, j) => (j === i ? [] : [o.ipv4 as string, o.ipv6 as string, `${linkLocal[j] as string}%eth0`]));
    return l.spawnNode(h, SWEEP, [String(CLOSED_PORT), '15000', ...targets], { stdin: true, label: `sweep h${h.index}` });
  });
  await Promise.all(sweeps.map((p) => waitForJson(p, (o) => o['ev'] === 'ready', 60_000, { what: `${p.label} ready` })));
  // all at once, as a mesh forming: entries are fresh together, so forced GC cannot make room
  for (const p of sweeps) p.writeLine('go');
  const results = await Promise.all(sweeps.map((p) => waitForJson<{ ev: string; answered: number; missed: string[] }>(p, (o) => o.ev === 'swept', 60_000, { what: `${p.label} swept` })));
  const answered = results.reduce((s, r) => s + r.answered, 0);
  const missed = results.flatMap((r, i) => r.missed.map((m) => `h${i + 1} → ${m}`));
  const total = HOSTS * (HOSTS - 1) * 3;
  t.diagnostic(`${answered} of ${total} connections answered`);
  assert.deepEqual(missed.slice(0, 10), [], `${missed.length} of ${total} connections unanswered within 15 s (first 10 shown)`);
});
