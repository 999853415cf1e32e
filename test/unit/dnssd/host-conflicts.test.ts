/**
 * Host-name conflicts at scale (RFC 6762 §9): a room of cloned machines that all start with
 * the same host name. Renaming one name per round (`vm` → `vm-2` → `vm-3` …, everyone
 * probing the same next name) takes N rounds and, past 15 conflicts in 10 s, a 5 s pause per
 * round (§8.1): 48 hosts took about a minute to name themselves, and their services were
 * announced only then. Here each loser of a simultaneous probe takes its own rank among the
 * contenders it heard, and skips labels it has seen in use, so everyone is named in a few rounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { Mdns } from '../../../src/dnssd/mdns.js';
import { FakeLink } from './fake-link.js';

async function room(n: number, clock: FakeClock, link: FakeLink, first = 1): Promise<Mdns[]> {
  const engines = Array.from({ length: n }, (_, i) => new Mdns({ network: link.host(first + i), clock, host: 'vm' }));
  await Promise.all(engines.map((e) => e.whenReady()));
  return engines;
}

test('48 hosts named "vm" started together: distinct host names and every service registered within 10 s, few renames each', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const engines = await room(48, clock, link);
  const renames = new Map<Mdns, number>();
  for (const e of engines) e.on('hostRenamed', () => renames.set(e, (renames.get(e) ?? 0) + 1));
  const ads = engines.map((e, i) => e.advertise({ name: `peer ${i + 1}`, type: '_scale._tcp', port: 1000 + i }));
  await Promise.resolve();
  clock.advance(10_000);
  const names = engines.map((e) => e.hostname);
  assert.equal(new Set(names).size, 48, `host names not distinct: ${names.join(' ')}`);
  assert.ok(names.includes('vm.local'));
  const unregistered = ads.filter((a) => !a.registered).length;
  assert.equal(unregistered, 0, `${unregistered} of 48 services not registered after 10 s`);
  const most = Math.max(...renames.values());
  assert.ok(most <= 4, `a host renamed itself ${most} times`);
  // the SRV target of every announced service is its engine's current host name
  const last = new Map<string, string>();
  for (const s of link.log) for (const r of s.packet.answers) if (r.type === 'SRV' && r.ttl > 0) last.set(r.name, r.target);
  ads.forEach((a, i) => assert.equal(last.get(`${a.name}._scale._tcp.local`), engines[i]!.hostname, `SRV target of ${a.name}`));
  await Promise.all(engines.map((e) => e.close()));
});

test('a host named "vm" joining 20 named hosts skips the labels it has heard and is named within 3 s', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const engines = await room(20, clock, link);
  for (const [i, e] of engines.entries()) e.advertise({ name: `peer ${i + 1}`, type: '_scale._tcp', port: 1000 + i });
  for (const e of engines) e.browse({ type: '_scale._tcp' });
  await Promise.resolve();
  clock.advance(30_000);
  assert.equal(new Set(engines.map((e) => e.hostname)).size, 20);
  const [late] = await room(1, clock, link, 21);
  let renames = 0;
  late!.on('hostRenamed', () => renames++);
  late!.browse({ type: '_scale._tcp' });
  const ad = late!.advertise({ name: 'late', type: '_scale._tcp', port: 2000 });
  await Promise.resolve();
  clock.advance(3000);
  assert.equal(ad.registered, true, `not registered after 3 s (host ${late!.hostname}, ${renames} renames)`);
  assert.ok(!engines.some((e) => e.hostname === late!.hostname), `${late!.hostname} is taken`);
  // answers to its first browse query arrive while it probes: it may step past a few names before it heard them all
  assert.ok(renames <= 6, `${renames} renames`);
  await Promise.all([...engines, late!].map((e) => e.close()));
});
