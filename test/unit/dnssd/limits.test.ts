/**
 * What strangers on the link can make the engine send or keep, in fake time: the query and
 * re-announcement buckets, resolution capped per browser, rescues coalesced under RFC 6762 §6,
 * the TTL cap, and the on-link address rule used by discovery.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { Mdns } from '../../../src/dnssd/mdns.js';
import { MAX_SOURCES, RecordCache } from '../../../src/dnssd/cache.js';
import { DEFAULT_MDNS_LIMITS, TokenBucket } from '../../../src/dnssd/rate-limit.js';
import { onLink } from '../../../src/dnssd/transport.js';
import { encodePacket, emptyPacket, CLASS_IN, RRType, type ResourceRecord } from '../../../src/dnssd/codec/index.js';
import { FakeLink, fakeInterface, type FakeHost } from './fake-link.js';
import type { ServiceBrowser } from '../../../src/dnssd/browser.js';

function responseOf(answers: ResourceRecord[]): Buffer {
  return encodePacket({ ...emptyPacket(true), answers });
}

/** An engine on a fake link, with a second host there. */
async function victimOnLink(): Promise<{ clock: FakeClock; link: FakeLink; host: FakeHost; mdns: Mdns }> {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const host = link.host(1);
  link.host(9);
  const mdns = new Mdns({ network: host, clock, host: 'victim' });
  await mdns.whenReady();
  return { clock, link, host, mdns };
}

/** The same, browsing `type` for two seconds already. */
async function browsingVictim(type: string): Promise<{ clock: FakeClock; link: FakeLink; host: FakeHost; mdns: Mdns; browser: ServiceBrowser }> {
  const v = await victimOnLink();
  const browser = v.mdns.browse({ type });
  await new Promise((r) => setImmediate(r)); // the browser starts once the engine is ready
  v.clock.advance(2000);
  return { ...v, browser };
}

test('TokenBucket: a burst, then the rate; wait() says when the next token comes', () => {
  const clock = new FakeClock();
  const b = new TokenBucket(clock, 10, 20);
  let n = 0;
  while (b.take()) n++;
  assert.equal(n, 20);
  assert.equal(b.refused, 1);
  assert.equal(b.wait(), 100);
  clock.advance(100);
  assert.equal(b.take(), true);
  assert.equal(b.take(), false);
  clock.advance(10_000);
  n = 0;
  while (b.take()) n++;
  assert.equal(n, 20, 'no more than the burst saved up');
});

test('cache: no record is kept longer than maxTtl, whatever TTL its sender chose', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock, 100, 60);
  cache.addResponse([{ name: 'x.local', type: 'A', address: '10.9.0.9', ttl: 0x7fffffff, rrclass: CLASS_IN, cacheFlush: true }], 'eth0');
  assert.equal(cache.get('x.local', RRType.A)[0]?.record.ttl, 60);
  clock.advance(61_000);
  assert.equal(cache.get('x.local', RRType.A).length, 0);
  assert.equal(new RecordCache(clock).maxTtl, DEFAULT_MDNS_LIMITS.maxTtl);
});

test('cache full: the source holding the most records is evicted first, never an honest peer\'s handful', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock, 100);
  const honest: ResourceRecord[] = [
    { name: 'bob.local', type: 'A', address: '10.9.0.2', ttl: 120, rrclass: CLASS_IN, cacheFlush: true },
    { name: 'Bob._chat._tcp.local', type: 'SRV', priority: 0, weight: 0, port: 7000, target: 'bob.local', ttl: 120, rrclass: CLASS_IN, cacheFlush: true },
  ];
  cache.addResponse(honest, 'eth0', '10.9.0.2');
  // a stranger floods long-lived junk (it chooses the TTLs; the cap keeps them at 4500 s, still longer than Bob's 120)
  for (let p = 0; p < 50; p++) {
    const junk: ResourceRecord[] = [];
    for (let i = 0; i < 90; i++) junk.push({ name: `junk${p}-${i}.local`, type: 'A', address: '10.9.0.66', ttl: 86400, rrclass: CLASS_IN, cacheFlush: true });
    cache.addResponse(junk, 'eth0', '10.9.0.66');
  }
  assert.equal(cache.get('bob.local', RRType.A).length, 1, "Bob's address survives the flood");
  assert.equal(cache.get('Bob._chat._tcp.local', RRType.SRV).length, 1, "Bob's SRV survives the flood");
  assert.ok(cache.size <= 100, `cache holds ${cache.size}`);
});

test('300 bare PTRs: at most maxResolving instances are resolved at a time, and queries stay within the bucket', async () => {
  const { clock, link, host, mdns, browser } = await browsingVictim('_amp._tcp');
  const from = link.log.length;
  const ptrs: ResourceRecord[] = Array.from({ length: 300 }, (_, i) => ({ name: '_amp._tcp.local', type: 'PTR', target: `bare-${i}._amp._tcp.local`, ttl: 4500, rrclass: CLASS_IN, cacheFlush: false }));
  for (let i = 0; i < 300; i += 50) link.inject(responseOf(ptrs.slice(i, i + 50)), '10.9.0.9');
  clock.advance(1500);
  const asked = (since: number): Set<string> => {
    const names = new Set<string>();
    for (const s of link.log.slice(since)) if (s.from === host.address && !s.packet.response) for (const q of s.packet.questions) if (q.name.startsWith('bare-')) names.add(q.name);
    return names;
  };
  // one source announced them all: its share of queries (a burst of 4× the rate) is spent first
  const sourceBurst = 4 * DEFAULT_MDNS_LIMITS.queriesPerSourcePerSecond;
  assert.ok(asked(from).size <= DEFAULT_MDNS_LIMITS.maxResolving, `${asked(from).size} instances resolved at once`);
  assert.ok(asked(from).size >= Math.min(DEFAULT_MDNS_LIMITS.maxResolving, sourceBurst), `${asked(from).size} instances resolved in the first 1.5 s`);
  clock.advance(14_500);
  const queries = link.log.slice(from).filter((s) => s.from === host.address && !s.packet.response).length;
  const limit = DEFAULT_MDNS_LIMITS.queryBurst + DEFAULT_MDNS_LIMITS.queriesPerSecond * 16 + 4;
  assert.ok(queries <= limit, `${queries} queries in 16 s (limit ${limit})`);
  // the waiting ones get their turn once the first give up
  clock.advance(60_000);
  assert.ok(asked(from).size > DEFAULT_MDNS_LIMITS.maxResolving * 2, `${asked(from).size} instances tried`);
  browser.stop();
  await mdns.close();
});

test('200 spoofed goodbyes: our record is re-announced, at most once a second (RFC 6762 §6)', async () => {
  const { clock, link, host, mdns } = await victimOnLink();
  mdns.advertise({ name: 'V', type: '_bye._tcp', port: 4000 });
  await new Promise((r) => setImmediate(r)); // registered once the engine is ready
  clock.advance(5000);
  const from = link.log.length;
  const bye = responseOf([{ name: '_services._dns-sd._udp.local', type: 'PTR', target: '_bye._tcp.local', ttl: 0, rrclass: CLASS_IN, cacheFlush: false }]);
  for (let i = 0; i < 200; i++) {
    link.inject(bye, '10.9.0.9');
    clock.advance(10);
  }
  clock.advance(3000);
  const rescues = link.log.slice(from).filter((s) => s.from === host.address && s.packet.response && s.packet.answers.some((r) => r.type === 'PTR' && r.name === '_services._dns-sd._udp.local' && r.ttl > 0));
  assert.ok(rescues.length >= 2 && rescues.length <= 3, `${rescues.length} re-announcements over 2 s of goodbyes`);
  for (let i = 1; i < rescues.length; i++) assert.ok((rescues[i]?.at ?? 0) - (rescues[i - 1]?.at ?? 0) >= 1000, 'a second apart');
  await mdns.close();
});

test('cache: records with a TTL under minRefreshTtl get no refresh points (they live as long as their owner re-announces them)', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock, 100, 4500, DEFAULT_MDNS_LIMITS.minRefreshTtl);
  let refreshes = 0;
  cache.on('refresh', () => refreshes++);
  cache.addResponse([{ name: 'short.local', type: 'A', address: '10.9.0.66', ttl: 1, rrclass: CLASS_IN, cacheFlush: true }], 'eth0');
  clock.advance(1500);
  assert.equal(refreshes, 0, 'no refresh for a 1 s record');
  assert.equal(cache.get('short.local', RRType.A).length, 0, 'it expired at its TTL');
  cache.addResponse([{ name: 'ok.local', type: 'A', address: '10.9.0.2', ttl: 20, rrclass: CLASS_IN, cacheFlush: true }], 'eth0');
  clock.advance(20_000);
  assert.equal(refreshes, 4, 'a 20 s record: 80/85/90/95 %');
});

test("a stranger's many records spend its own query share, not the engine's: an honest peer's records are still refreshed (RFC 6762 §5.2)", async () => {
  const { clock, link, host, mdns, browser } = await browsingVictim('_st._tcp');
  const type = '_st._tcp.local';
  const rec = (name: string, ttl: number, host: string, address: string): ResourceRecord[] => [
    { name: type, type: 'PTR', target: `${name}.${type}`, ttl: 4500, rrclass: CLASS_IN, cacheFlush: false },
    { name: `${name}.${type}`, type: 'SRV', priority: 0, weight: 0, port: 7000, target: host, ttl, rrclass: CLASS_IN, cacheFlush: true },
    { name: `${name}.${type}`, type: 'TXT', strings: [], ttl, rrclass: CLASS_IN, cacheFlush: true },
    { name: host, type: 'A', address, ttl, rrclass: CLASS_IN, cacheFlush: true },
  ];
  link.inject(responseOf(rec('Bob', 20, 'bob.local', '10.9.0.2')), '10.9.0.2');
  const bobAt = clock.now();
  // the stranger: 300 instances whose records live 10 s (as short as still refreshed), each
  // announced again every 10 s, spread evenly: about 360 refresh queries wanted a second
  const from = link.log.length;
  for (let step = 0; step < 250; step++) {
    const junk: ResourceRecord[] = [];
    for (let i = 0; i < 3; i++) {
      const n = (step * 3 + i) % 300;
      junk.push(...rec(`junk${n}`, 10, `junk${n}.local`, '10.9.0.66'));
    }
    link.inject(responseOf(junk), '10.9.0.66');
    clock.advance(100);
  }
  // Bob's SRV and address (20 s) were due for refresh from 16 s on
  const asked = link.log.slice(from).filter((s) => s.from === host.address && !s.packet.response && s.at - bobAt < 20_000 && s.packet.questions.some((q) => q.name === 'Bob._st._tcp.local' || q.name === 'bob.local'));
  assert.ok(asked.length >= 1, "no refresh query for Bob's records went out before they expired");
  assert.ok(mdns.limited.sourceQueries > 0, "the stranger's queries were held to its share");
  browser.stop();
  await mdns.close();
});

test('onLink: in a subnet of the interface, or IPv6 link-local scoped to it', () => {
  const eth0 = fakeInterface(1);
  assert.equal(onLink('10.9.0.200', eth0), true);
  assert.equal(onLink('10.9.1.2', eth0), false);
  assert.equal(onLink('8.8.8.8', eth0), false);
  assert.equal(onLink('fe80::9%eth0', eth0), true);
  assert.equal(onLink('fe80::9%wlan0', eth0), false);
  assert.equal(onLink('fe80::9', eth0), false);
  assert.equal(onLink('2001:db8::1', eth0), false);
});

test('one record repeated from 1000 source addresses: the cache remembers at most MAX_SOURCES of them, the latest', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock);
  const rec: ResourceRecord = { name: 'h.local', type: 'A', address: '10.0.0.1', ttl: 120, rrclass: CLASS_IN, cacheFlush: true };
  for (let i = 0; i < 1000; i++) cache.addResponse([rec], 'eth0', `10.1.${i >> 8}.${i & 255}`);
  const [e] = cache.get('h.local', RRType.A, 'eth0');
  assert.ok(e);
  assert.equal(e.sources.length, MAX_SOURCES);
  assert.deepEqual(e.sources, ['10.1.3.228', '10.1.3.229', '10.1.3.230', '10.1.3.231']);
  assert.equal(e.source, '10.1.3.231');
  cache.close();
});
