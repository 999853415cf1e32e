/**
 * Host-name conflicts when most packets are lost at the receivers: 100 processes on two cores
 * overflow their sockets' receive buffers (the scale lab at 100 peers: 90 % of mDNS datagrams
 * dropped). A host then claims a name whose owner it never heard, and the contest goes on for
 * minutes, every rename re-announcing a service that every peer must resolve again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { Mdns } from '../../../src/dnssd/mdns.js';
import { FakeLink } from './fake-link.js';

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('100 hosts named "vm", 70 % of packets lost at each receiver: distinct names, few renames, the contest over within 60 s', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const rnd = seeded(17);
  link.dropAt = () => rnd() < 0.7;
  const engines = Array.from({ length: 100 }, (_, i) => new Mdns({ network: link.host(i + 1), clock, host: 'vm' }));
  await Promise.all(engines.map((e) => e.whenReady()));
  const renames: number[] = [];
  engines.forEach((e) => e.on('hostRenamed', () => renames.push(clock.now())));
  const ads = engines.map((e, i) => e.advertise({ name: `peer ${i + 1}`, type: '_scale._tcp', port: 1000 + i }));
  await Promise.resolve();
  const t0 = clock.now();
  for (let s = 0; s < 120; s++) clock.advance(1000);
  const names = engines.map((e) => e.hostname);
  const late = renames.filter((t) => t - t0 > 60_000).length;
  assert.equal(new Set(names).size, 100, `host names not distinct: ${names.join(' ')}`);
  assert.equal(late, 0, `${late} renames after 60 s`);
  // one round: every loser of "vm" renames once (99), plus a few hash or late-heard collisions
  assert.ok(renames.length <= 110, `${renames.length} renames`);
  assert.equal(ads.filter((a) => !a.registered).length, 0);
  await Promise.all(engines.map((e) => e.close()));
});
