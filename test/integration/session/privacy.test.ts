/**
 * Privacy mode (docs/security.md "Privacy"): nothing in the mDNS traffic of a session with
 * `privacy: true` — captured on the lab's switch, every packet in full — contains this machine's
 * host name, the display name or the peer id; two runs advertise different instance and host
 * names. The same capture of a session without privacy does contain the host name and the
 * display name (so the search can fail).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import type { Lab } from '../../harness/netns.js';
import { sleep, until, type TrackedProcess } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { startVictim } from '../../adversarial/harness.js';
import { useLab } from '../interop/lab.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;
useLab(skip, { hosts: 1, tag: 'priv' }, (l) => {
  lab = l;
});

const DISPLAY = 'Zebedee Quux';
const HOST_LABEL = (hostname().split('.')[0] ?? '').replace(/[^A-Za-z0-9-]/g, '-').replace(/^-+|-+$/g, '').toLowerCase();

interface Run {
  id: string;
  packets: Buffer[];
  lines: string[];
}

/** Starts a session on h1 (advertising and browsing on eth0), captures its mDNS for a few seconds, stops it. */
async function capture(sniffer: TrackedProcess, privacy: boolean): Promise<Run> {
  const since = sniffer.stdoutLines.length;
  const v = await startVictim({ serviceType: 'privy', displayName: DISPLAY, advertise: true, browse: true, interfaces: ['eth0'], privacy }, { lab: lab!, host: 1 });
  const from = `${lab!.host(1).ipv4 ?? ''}:5353`;
  const mine = (): string[] => sniffer.stdoutLines.slice(since).filter((l) => l.includes(` ${from} `));
  // Probes, then announcements (RFC 6762 §8): wait until an SRV answer went out, then a little more.
  await until(() => mine().some((l) => / R .*\/SRV\//.test(l)) || undefined, 20_000, 'an announcement');
  await sleep(2500);
  await v.stop();
  const lines = mine();
  return { id: v.id, lines, packets: lines.map((l) => Buffer.from(/ hex=([0-9a-f]+)$/.exec(l)?.[1] ?? '', 'hex')) };
}

function contains(run: Run, needle: string): boolean {
  const n = needle.toLowerCase();
  return run.packets.some((p) => p.toString('latin1').toLowerCase().includes(n));
}

function names(run: Run, type: 'SRV' | 'A'): Set<string> {
  const out = new Set<string>();
  for (const l of run.lines) for (const m of l.matchAll(/(?:an|ns|ar):([^ /]+)\/(SRV|A)\//g)) if (m[2] === type) out.add(m[1] as string);
  return out;
}

test('privacy: the mDNS traffic holds no host name, display name or id; two runs advertise different names', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  assert.ok(HOST_LABEL.length > 0);
  const sniffer = await lab.sniffMdns({ hex: true });

  const open = await capture(sniffer, false);
  assert.ok(open.packets.length > 0);
  // Without privacy, the search finds what it looks for.
  assert.ok(contains(open, HOST_LABEL), `host name "${HOST_LABEL}" expected without privacy`);
  assert.ok(contains(open, DISPLAY), 'display name expected without privacy');

  const one = await capture(sniffer, true);
  const two = await capture(sniffer, true);
  for (const run of [one, two]) {
    assert.ok(run.packets.length > 0);
    assert.ok(!contains(run, HOST_LABEL), `host name in privacy mode: ${run.lines.join('\n')}`);
    assert.ok(!contains(run, DISPLAY), 'display name in privacy mode');
    assert.ok(!contains(run, run.id), 'peer id (text) in privacy mode');
    assert.ok(!run.packets.some((p) => p.toString('hex').includes(run.id.replace(/-/g, ''))), 'peer id (bytes) in privacy mode');
  }
  const [srv1, srv2, a1, a2] = [names(one, 'SRV'), names(two, 'SRV'), names(one, 'A'), names(two, 'A')];
  t.diagnostic(`run 1: ${[...srv1, ...a1].join(', ')}; run 2: ${[...srv2, ...a2].join(', ')}`);
  assert.equal(srv1.size, 1);
  assert.equal(srv2.size, 1);
  assert.notDeepEqual([...srv1], [...srv2], 'instance names differ between runs');
  assert.ok(a1.size >= 1 && a2.size >= 1);
  for (const a of a1) assert.ok(!a2.has(a), 'host names differ between runs');
  assert.notEqual(one.id, two.id);
});
