/**
 * Wrong-host addresses after a host-name contest (issue 17, 100 hosts named `vm`): an
 * instance resolved on the link must carry only its own host's addresses.
 *
 * In the scale lab several hosts answered for one name at once (each claimed it after missing
 * the other's probes or defence under load), and a host that lost a name it had announced left
 * its address records in every cache for their 120 s TTL (no goodbye; the winner's cache-flush
 * retires them only where it arrives more than a second after them, RFC 6762 §10.2). Browsers
 * combined every A/AAAA under the SRV target, and sessions dialled another peer's host at this
 * instance's port: connection refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { RecordCache } from '../../../src/dnssd/cache.js';
import { CLASS_IN, type ResourceRecord } from '../../../src/dnssd/codec/types.js';
import { Mdns } from '../../../src/dnssd/mdns.js';
import { lookupParts, type ServiceInstance } from '../../../src/dnssd/service-instance.js';
import { Querier } from '../../../src/dnssd/querier.js';
import { ServiceBrowser } from '../../../src/dnssd/browser.js';
import type { ReceivedPacket } from '../../../src/dnssd/transport.js';
import { FakeLink } from './fake-link.js';

const IN = { rrclass: CLASS_IN, cacheFlush: true } as const;
const srv = (name: string, target: string, port: number): ResourceRecord => ({ name, type: 'SRV', priority: 0, weight: 0, port, target, ttl: 120, ...IN });
const a = (name: string, address: string): ResourceRecord => ({ name, type: 'A', address, ttl: 120, ...IN });
const aaaa = (name: string, address: string): ResourceRecord => ({ name, type: 'AAAA', address, ttl: 120, ...IN });

/** A browser of `_scale._tcp.local` with its own cache and querier on host 3 of a fake link. */
function browserRig(): { clock: FakeClock; link: FakeLink; cache: RecordCache; querier: Querier; br: ServiceBrowser } {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const h = link.host(3);
  const cache = new RecordCache(clock);
  const querier = new Querier(h, clock, cache);
  h.on('packet', (p: ReceivedPacket) => querier.handle(p));
  return { clock, link, cache, querier, br: new ServiceBrowser({ cache, querier, clock }, '_scale._tcp.local') };
}

test('resolution: the SRV target\'s addresses from another host answering for the same name (same second, no flush) are not the instance\'s', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock);
  const inst = 'p._scale._tcp.local';
  // P announces its instance and host over IPv4 and IPv6 (its link-local source)
  cache.addResponse([srv(inst, 'vm-9.local', 4001), a('vm-9.local', '10.9.0.1'), aaaa('vm-9.local', 'fe80::1')], 'eth0', '10.9.0.1');
  clock.advance(300);
  cache.addResponse([srv(inst, 'vm-9.local', 4001), a('vm-9.local', '10.9.0.1'), aaaa('vm-9.local', 'fe80::1')], 'eth0', 'fe80::1%eth0');
  // H answers for vm-9.local too, within the same second (the §10.2 one-second rule keeps both sets)
  clock.advance(300);
  cache.addResponse([a('vm-9.local', '10.9.0.2'), aaaa('vm-9.local', 'fe80::2')], 'eth0', '10.9.0.2');
  assert.equal(cache.get('vm-9.local', 1, 'eth0').length, 2, 'both A records are cached (the rule under test is resolution, not the cache)');
  assert.deepEqual(lookupParts(cache, inst, 'eth0').addresses, ['10.9.0.1', 'fe80::1%eth0']);
  // P's address records refreshed from its IPv6 source only, its SRV last heard over IPv4: still linked
  clock.advance(2000);
  cache.addResponse([a('vm-9.local', '10.9.0.1'), aaaa('vm-9.local', 'fe80::1')], 'eth0', 'fe80::1%eth0');
  cache.addResponse([srv(inst, 'vm-9.local', 4001)], 'eth0', '10.9.0.1');
  assert.deepEqual(lookupParts(cache, inst, 'eth0').addresses, ['10.9.0.1', 'fe80::1%eth0']);
  // P renamed to vm-12 (new SRV), and only H's records are left under vm-9: the SRV's sender
  // has no address there, so none (the browser asks for them), never H's
  cache.addResponse([srv(inst, 'vm-12.local', 4001)], 'eth0', '10.9.0.1');
  clock.advance(1500);
  cache.addResponse([a('vm-9.local', '10.9.0.2')], 'eth0', '10.9.0.2');
  cache.addResponse([srv('q._scale._tcp.local', 'vm-9.local', 4002)], 'eth0', '10.9.0.2');
  assert.deepEqual(lookupParts(cache, inst, 'eth0').addresses, []);
  assert.deepEqual(lookupParts(cache, 'q._scale._tcp.local', 'eth0').addresses, ['10.9.0.2']);
  // records cached without a source (unknown sender) are not filtered
  const bare = new RecordCache(clock);
  bare.addResponse([srv(inst, 'vm.local', 1), a('vm.local', '10.9.0.1'), a('vm.local', '10.9.0.2')], 'eth0');
  assert.deepEqual(lookupParts(bare, inst, 'eth0').addresses, ['10.9.0.1', '10.9.0.2']);
  cache.close();
  bare.close();
});

test('resolution: a host that sends its A record over IPv4 only (Avahi: AAAA on both families, no A over IPv6) keeps both families when its SRV was heard over IPv6', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock);
  const inst = 'avahi._p._tcp.local';
  // over IPv6, from its link-local source: SRV + AAAA (its ULA), no A
  cache.addResponse([srv(inst, 'avahi-h1.local', 4802), aaaa('avahi-h1.local', 'fd77::1')], 'eth0', 'fe80::a1%eth0');
  // over IPv4: SRV + A + AAAA — the AAAA it also sent over IPv6 ties 10.0.0.1 to that host
  cache.addResponse([srv(inst, 'avahi-h1.local', 4802), a('avahi-h1.local', '10.0.0.1'), aaaa('avahi-h1.local', 'fd77::1')], 'eth0', '10.0.0.1');
  // the IPv6 answer arrives last, so the SRV's latest source is the link-local one
  cache.addResponse([srv(inst, 'avahi-h1.local', 4802), aaaa('avahi-h1.local', 'fd77::1')], 'eth0', 'fe80::a1%eth0');
  assert.deepEqual(lookupParts(cache, inst, 'eth0').addresses, ['10.0.0.1', 'fd77::1']);
  // another host's A under the same name, heard only over IPv4 and tied to nothing of this host's, stays out
  cache.addResponse([a('avahi-h1.local', '10.0.0.2')], 'eth0', '10.0.0.2');
  assert.deepEqual(lookupParts(cache, inst, 'eth0').addresses, ['10.0.0.1', 'fd77::1']);
  cache.close();
});

test('two hosts that both claimed "vm" (probes lost): the loser says goodbye to its old address records, and a browser never reports another host\'s address for an instance', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const [h1, h2, h3] = [1, 2, 3].map((i) => link.host(i));
  const e1 = new Mdns({ network: h1!, clock, host: 'vm' });
  const e2 = new Mdns({ network: h2!, clock, host: 'vm' });
  const obs = new Mdns({ network: h3!, clock, host: 'obs' });
  await Promise.all([e1, e2, obs].map((e) => e.whenReady()));
  const own = new Map([['one', h1!.address], ['two', h2!.address]]);
  const wrong: string[] = [];
  const seen = new Set<string>();
  const check = (s: ServiceInstance): void => {
    seen.add(s.name);
    for (const addr of s.addresses) if (!addr.startsWith('fe80') && addr !== own.get(s.name)) wrong.push(`${s.name} (${s.host}) at ${addr}, t=${clock.now()}`);
  };
  const br = obs.browse({ type: '_scale._tcp' });
  br.on('added', check);
  br.on('changed', check);
  // the two "vm" hosts hear nothing of each other (nor does anyone hear them) for their first
  // 1.1 s — probes and first announcements lost, as on a starved link: both claim the name
  const t0 = clock.now();
  link.filter = (s) => clock.now() < t0 + 1100 && (s.from === h1!.address || s.from === h2!.address);
  e1.advertise({ name: 'one', type: '_scale._tcp', port: 4001 });
  e2.advertise({ name: 'two', type: '_scale._tcp', port: 4002 });
  await Promise.resolve();
  for (let i = 0; i < 200; i++) clock.advance(50);
  assert.notEqual(e1.hostname, e2.hostname, 'the contest ended');
  const [loser, loserHost] = e1.hostname === 'vm.local' ? [e2, h2!] : [e1, h1!];
  assert.equal(loser.hostname === 'vm.local', false);
  // both had announced vm.local (the contest happened after claiming)
  const announced = (addr: string): boolean => link.log.some((s) => s.packet.response && s.packet.answers.some((r) => r.type === 'A' && r.name === 'vm.local' && r.address === addr && r.ttl > 0));
  assert.ok(announced(h1!.address) && announced(h2!.address), 'both hosts announced vm.local before the conflict');
  const goodbye = link.log.some((s) => s.from === loserHost.address && s.packet.response && s.packet.answers.some((r) => r.type === 'A' && r.name === 'vm.local' && r.address === loserHost.address && r.ttl === 0));
  assert.ok(goodbye, 'the loser said goodbye to its vm.local address records (RFC 6762 §10.1)');
  assert.deepEqual([...seen].sort(), ['one', 'two']);
  assert.deepEqual(wrong, []);
  for (const s of br.services) check(s);
  assert.deepEqual(wrong, []);
  await Promise.all([e1, e2, obs].map((e) => e.close()));
});

test('reconfirmAddresses: asks for the SRV target\'s A/AAAA (and the SRV, not the TXT); a killed host\'s addresses are flushed and its instance removed, a live one stays', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const [h1, h2, h3] = [1, 2, 3].map((i) => link.host(i));
  const dead = new Mdns({ network: h1!, clock, host: 'dead' });
  const alive = new Mdns({ network: h2!, clock, host: 'alive' });
  const obs = new Mdns({ network: h3!, clock, host: 'obs' });
  await Promise.all([dead, alive, obs].map((e) => e.whenReady()));
  dead.advertise({ name: 'one', type: '_scale._tcp', port: 4001 });
  alive.advertise({ name: 'two', type: '_scale._tcp', port: 4002 });
  const br = obs.browse({ type: '_scale._tcp' });
  const removed: string[] = [];
  br.on('removed', (s: ServiceInstance) => removed.push(s.name));
  await Promise.resolve();
  clock.advance(10_000);
  assert.deepEqual(br.services.map((s) => s.name).sort(), ['one', 'two']);
  // SIGKILL: nothing more from that host, not even goodbyes
  link.filter = (s) => s.from === h1!.address;
  const from = link.log.length;
  obs.reconfirmAddresses({ name: 'one', type: '_scale._tcp' });
  obs.reconfirmAddresses({ name: 'two', type: '_scale._tcp' });
  clock.advance(15_000);
  const questions = link.log.slice(from).filter((s) => s.from === h3!.address && !s.packet.response).flatMap((s) => s.packet.questions.map((q) => `${q.name}/${q.qtype}`));
  assert.ok(questions.includes('dead.local/1') && questions.includes('dead.local/28') && questions.includes('alive.local/1'), `asked ${questions.join(' ')}`);
  assert.ok(!questions.some((q) => q.endsWith('/16')), `no TXT question: ${questions.join(' ')}`);
  assert.deepEqual(removed, ['one']);
  assert.deepEqual(br.services.map((s) => s.name), ['two']);
  assert.ok(obs.flushedUnanswered >= 1);
  await Promise.all([dead, alive, obs].map((e) => e.close()));
});

test('an SRV whose sender has no address under its target (it renamed; the new SRV was missed): resolution asks for the SRV again with the addresses, and follows the answer', () => {
  const { clock, link, cache, querier, br } = browserRig();
  const seen: ServiceInstance[] = [];
  br.on('added', (s) => seen.push(s));
  br.on('changed', (s) => seen.push(s));
  br.start();
  const inst = 'p._scale._tcp.local';
  const ptr: ResourceRecord = { name: '_scale._tcp.local', type: 'PTR', target: inst, ttl: 4500, rrclass: CLASS_IN, cacheFlush: false };
  const txt: ResourceRecord = { name: inst, type: 'TXT', strings: [Buffer.from('v=1')], ttl: 4500, ...IN };
  // P's old SRV (target vm-9); under vm-9 only H's address (P said goodbye to its own)
  cache.addResponse([ptr, srv(inst, 'vm-9.local', 4001), txt], 'eth0', '10.9.0.1');
  cache.addResponse([a('vm-9.local', '10.9.0.2')], 'eth0', '10.9.0.2');
  const from = link.log.length;
  clock.advance(2000);
  assert.equal(seen.length, 0, `not reported at another host's address: ${JSON.stringify(seen)}`);
  const asked = link.log.slice(from).filter((s) => !s.packet.response).flatMap((s) => s.packet.questions.map((q) => `${q.name}/${q.qtype}`));
  assert.ok(asked.includes(`${inst}/33`) && asked.includes('vm-9.local/1'), `asked ${asked.join(' ')}`);
  // P answers with its current SRV and host
  cache.addResponse([srv(inst, 'vm-12.local', 4001), a('vm-12.local', '10.9.0.1')], 'eth0', '10.9.0.1');
  clock.advance(2000);
  assert.deepEqual(seen.map((s) => `${s.host} ${s.addresses.join(',')}`), ['vm-12.local 10.9.0.1']);
  br.stop();
  querier.close();
  cache.close();
});

test('a reported instance whose host\'s address records another claimant of the name flushed (§10.2) is not reported removed: it keeps its address and is resolved again', () => {
  const { clock, cache, querier, br } = browserRig();
  const events: string[] = [];
  br.on('added', (s) => events.push(`added ${s.addresses.join(',')}`));
  br.on('changed', (s) => events.push(`changed ${s.addresses.join(',')}`));
  br.on('removed', () => events.push('removed'));
  br.start();
  const inst = 'p._scale._tcp.local';
  const ptr: ResourceRecord = { name: '_scale._tcp.local', type: 'PTR', target: inst, ttl: 4500, rrclass: CLASS_IN, cacheFlush: false };
  const txt: ResourceRecord = { name: inst, type: 'TXT', strings: [Buffer.from('v=1')], ttl: 4500, ...IN };
  cache.addResponse([ptr, srv(inst, 'vm-9.local', 4001), txt, a('vm-9.local', '10.9.0.1')], 'eth0', '10.9.0.1');
  clock.advance(2000);
  // H claims vm-9 too: its cache-flush set retires P's A record (received more than a second before)
  cache.addResponse([a('vm-9.local', '10.9.0.2')], 'eth0', '10.9.0.2');
  clock.advance(3000);
  assert.deepEqual(events, ['added 10.9.0.1']);
  assert.deepEqual(br.services.map((s) => s.addresses), [['10.9.0.1']]);
  br.stop();
  querier.close();
  cache.close();
});
