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
import { HostNameContest, addressLabel } from '../../../src/dnssd/host-contest.js';
import { nextInstanceName } from '../../../src/dnssd/names.js';
import type { ResourceRecord } from '../../../src/dnssd/codec/types.js';

test('100 hosts named "vm", 70 % of packets lost at each receiver: distinct names, few renames, the contest over within 60 s', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  // the FakeClock's random() is seeded (as in steady-sim.ts): a failure can be replayed
  link.dropAt = () => clock.random() < 0.7;
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

test('a host that loses its name after announcing keeps its service name, though it reads its own earlier SRV (old target) seconds late', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const a = new Mdns({ network: link.host(1), clock, host: 'vm' });
  const b = new Mdns({ network: link.host(2), clock, host: 'vm' });
  const c = new Mdns({ network: link.host(3), clock, host: 'c' });
  await Promise.all([a, b, c].map((e) => e.whenReady()));
  // a and b cannot hear each other at first: both claim "vm"
  let apart = true;
  const hostA = link.hosts[0];
  const hostB = link.hosts[1];
  link.dropAt = (s, to) => apart && ((s.from === hostA!.address && to === hostB) || (s.from === hostB!.address && to === hostA));
  // a reads its own packets 12 s late (a starved process): its announcements of "alpha" (target
  // vm.local, sent in its first seconds) reach it after it has lost "vm" and renamed
  link.delayAt = (s, to) => (s.from === hostA!.address && to === hostA ? 12_000 : 0);
  const adA = a.advertise({ name: 'alpha', type: '_x._tcp', port: 1001 });
  b.advertise({ name: 'beta', type: '_x._tcp', port: 1002 });
  const t0 = clock.now();
  const serviceRenames: string[] = [];
  adA.on('renamed', (ch) => serviceRenames.push(ch.name));
  await Promise.resolve();
  clock.advance(10_000);
  assert.equal(a.hostname, 'vm.local');
  assert.equal(b.hostname, 'vm.local');
  // now they hear each other; a browser's queries make both answer with their address records
  apart = false;
  c.browse({ type: '_x._tcp' });
  await Promise.resolve();
  for (let i = 0; i < 30; i++) clock.advance(1000);
  assert.notEqual(a.hostname, b.hostname, 'the host-name conflict was settled');
  assert.notEqual(a.hostname, 'vm.local', 'a (the smaller address) lost the tie-break');
  assert.deepEqual(serviceRenames, [], `"alpha" was renamed after its own echo: ${serviceRenames.join(', ')}`);
  // nor probed again: its own earlier SRV was taken for another host's (a conflict, RFC 6762 §9)
  const reprobes = link.log.filter((s) => s.from === hostA!.address && !s.packet.response && s.at - t0 > 5000 && s.packet.authorities.some((r) => r.name.startsWith('alpha.')));
  assert.equal(reprobes.length, 0, `"alpha" probed again ${reprobes.length} times after its own echo`);
  assert.equal(adA.name, 'alpha');
  await Promise.all([a, b, c].map((e) => e.close()));
});

test('a label taken after an earlier conflict and lost again goes to the address label, not the next number (hosts that heard no one walk vm-8, vm-9 … together)', () => {
  const clock = new FakeClock();
  const contest = new HostNameContest(clock);
  const ours = (name: string) => (): ResourceRecord[] => [{ name, type: 'A', rrclass: 1, cacheFlush: true, ttl: 120, address: '10.77.0.42' }];
  assert.equal(contest.next('vm', ours('vm.local'), undefined, 'eth0'), 'vm-2', 'a first rename with nobody else probing: the plain sequence');
  assert.equal(contest.next('pi-4', ours('pi-4.local'), undefined, 'eth0'), 'pi-5', 'a configured name ending in digits: its first rename is the plain sequence');
  const second = contest.next('vm-8', ours('vm-8.local'), undefined, 'eth0', true);
  assert.match(second, /^vm-\d{6}$/);
  assert.equal(second, addressLabel('vm', ours('vm-8.local')()), 'from our addresses');
  assert.notEqual(addressLabel('vm', [{ name: 'x.local', type: 'A', rrclass: 1, cacheFlush: true, ttl: 120, address: '10.77.0.43' }]), second, 'another address, another label');
});

test('a service name taken after an earlier conflict and lost again jumps ahead, not to the next number (two hosts that lose each other\'s probes walk (2), (3), (4) … in step)', async () => {
  assert.equal(nextInstanceName('vm-a8d5'), 'vm-a8d5 (2)', 'a first conflict: the plain walk');
  assert.equal(nextInstanceName('vm-a8d5 (2)', 348), 'vm-a8d5 (350)');
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const owner = new Mdns({ network: link.host(1), clock, host: 'h1' });
  const late = new Mdns({ network: link.host(2), clock, host: 'h2' });
  await Promise.all([owner, late].map((e) => e.whenReady()));
  owner.advertise({ name: 'vm-a8d5 (2)', type: '_x._tcp', port: 1000 });
  await Promise.resolve();
  clock.advance(5000);
  const ad = late.advertise({ name: 'vm-a8d5 (2)', type: '_x._tcp', port: 1001 });
  await Promise.resolve();
  clock.advance(5000);
  assert.equal(ad.registered, true);
  const m = /^vm-a8d5 \((\d+)\)$/.exec(ad.name);
  assert.ok(m && Number(m[1]) > 2, `renamed to ${ad.name}`);
  assert.notEqual(ad.name, 'vm-a8d5 (3)', 'not the next number, which a twin in the same state would take too');
  await Promise.all([owner, late].map((e) => e.close()));
});
