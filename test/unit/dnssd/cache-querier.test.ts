import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { RecordCache, REFRESH_POINTS } from '../../../src/dnssd/cache.js';
import { Querier, MAX_INTERVAL_MS } from '../../../src/dnssd/querier.js';
import { CLASS_IN, RRType, type ResourceRecord } from '../../../src/dnssd/codec/types.js';
import { compareProbeSets } from '../../../src/dnssd/codec/records.js';
import { FakeLink } from './fake-link.js';
import { PacketWriter, DEFAULT_MAX_SEND_BYTES } from '../../../src/dnssd/codec/encode.js';
import type { ReceivedPacket } from '../../../src/dnssd/transport.js';

const a = (address: string, ttl = 120, cacheFlush = true): ResourceRecord => ({ name: 'vm.local', type: 'A', address, ttl, rrclass: CLASS_IN, cacheFlush });

test('cache: records expire at their TTL; refresh points at 80/85/90/95 % (+0-2 %)', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock);
  const t0 = clock.now();
  const refreshes: number[] = [];
  const removed: number[] = [];
  cache.on('refresh', () => refreshes.push(clock.now() - t0));
  cache.on('removed', () => removed.push(clock.now() - t0));
  cache.addResponse([a('10.0.0.1', 100)], 'eth0');
  assert.equal(cache.get('VM.local', RRType.A, 'eth0').length, 1, 'names compare case-insensitively');
  clock.advance(101_000);
  assert.equal(refreshes.length, 4);
  refreshes.forEach((ms, i) => {
    const f = REFRESH_POINTS[i] as number;
    assert.ok(ms >= f * 100_000 && ms <= (f + 0.02) * 100_000, `refresh ${i} at ${ms}`);
  });
  assert.deepEqual(removed, [100_000]);
  assert.equal(cache.get('vm.local', RRType.A, 'eth0').length, 0);
});

test('cache: a goodbye removes the record one second later', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock);
  let removedAt = -1;
  const t0 = clock.now();
  cache.on('removed', () => (removedAt = clock.now() - t0));
  cache.addResponse([a('10.0.0.1')], 'eth0');
  cache.addResponse([a('10.0.0.1', 0)], 'eth0');
  clock.advance(999);
  assert.equal(removedAt, -1);
  clock.advance(2);
  assert.equal(removedAt, 1000);
});

test('cache: a fresh answer within the second after a goodbye cancels the removal (RFC 6762 §10.1)', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock);
  const removed: number[] = [];
  const t0 = clock.now();
  cache.on('removed', () => removed.push(clock.now() - t0));
  cache.addResponse([a('10.0.0.1')], 'eth0');
  clock.advance(5000);
  cache.addResponse([a('10.0.0.1', 0)], 'eth0');
  // still answerable during its last second, but no longer offered as a known answer
  assert.equal(cache.get('vm.local', RRType.A, 'eth0').length, 1);
  assert.equal(cache.knownAnswers('vm.local', RRType.A, 'eth0').length, 0);
  clock.advance(400);
  cache.addResponse([a('10.0.0.1')], 'eth0');
  clock.advance(10_000);
  assert.deepEqual(removed, []);
  assert.equal(cache.get('vm.local', RRType.A, 'eth0')[0]?.expiresAt, t0 + 5400 + 120_000);
});

test('cache: the cache-flush one-second rule', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock);
  // two addresses in one burst (within a second) both stay
  cache.addResponse([a('10.0.0.1')], 'eth0');
  clock.advance(500);
  cache.addResponse([a('10.0.0.2')], 'eth0');
  clock.advance(2000);
  assert.equal(cache.get('vm.local', RRType.A, 'eth0').length, 2);
  // a later cache-flush record makes the older members expire in one second
  cache.addResponse([a('10.0.0.3')], 'eth0');
  clock.advance(999);
  assert.equal(cache.get('vm.local', RRType.A, 'eth0').length, 3);
  clock.advance(2);
  assert.deepEqual(cache.get('vm.local', RRType.A, 'eth0').map((e) => (e.record as { address: string }).address), ['10.0.0.3']);
  // a shared record (no cache-flush) does not flush
  cache.addResponse([a('10.0.0.4', 120, false)], 'eth0');
  clock.advance(3000);
  assert.equal(cache.get('vm.local', RRType.A, 'eth0').length, 2);
  // other interfaces are separate caches
  assert.equal(cache.get('vm.local', RRType.A, 'eth1').length, 0);
});

test('cache: bounded size', () => {
  const clock = new FakeClock();
  const cache = new RecordCache(clock, 100);
  for (let i = 0; i < 1000; i++) cache.addResponse([{ ...a(`10.0.${i >> 8}.${i & 255}`), name: `h${i}.local` }], 'eth0');
  assert.ok(cache.size <= 100);
});

test('querier: continuous queries start at 20-120 ms, then 1 s doubling up to 60 min', () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const host = link.host(1);
  const q = new Querier(host, clock, new RecordCache(clock));
  const stop = q.startContinuous('_x._tcp.local', RRType.PTR);
  clock.advance(10 * 3600 * 1000);
  const times = [...q.history('_x._tcp.local', RRType.PTR)];
  assert.ok(times.length > 10);
  const t0 = (times[0] as number) - 1_000_000;
  assert.ok(t0 >= 20 && t0 <= 120, `first query after ${t0} ms`);
  const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
  assert.deepEqual(gaps.slice(0, 5), [1000, 2000, 4000, 8000, 16000]);
  assert.ok(gaps.every((g) => g <= MAX_INTERVAL_MS));
  assert.equal(gaps[gaps.length - 1], MAX_INTERVAL_MS);
  stop();
  const sent = link.log.length;
  clock.advance(10 * 3600 * 1000);
  assert.equal(link.log.length, sent, 'no queries after stop');
});

test('querier: known answers go with the question, split over TC packets when many', () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const host = link.host(1);
  const cache = new RecordCache(clock);
  const q = new Querier(host, clock, cache);
  const ptrs: ResourceRecord[] = Array.from({ length: 60 }, (_, i) => ({ name: '_x._tcp.local', type: 'PTR', target: `Instance number ${i} with a long name._x._tcp.local`, ttl: 4500, rrclass: CLASS_IN, cacheFlush: false }));
  cache.addResponse(ptrs, 'eth0');
  // one with less than half its TTL left is not a known answer
  cache.addResponse([{ name: '_x._tcp.local', type: 'PTR', target: 'Old._x._tcp.local', ttl: 10, rrclass: CLASS_IN, cacheFlush: false }], 'eth0');
  clock.advance(6000);
  q.query([{ name: '_x._tcp.local', qtype: RRType.PTR, qclass: CLASS_IN, unicastResponse: false }]);
  const sent = link.log.map((s) => s.packet);
  assert.ok(sent.length >= 2, 'split over several packets');
  assert.equal(sent[0]?.questions.length, 1);
  sent.slice(0, -1).forEach((p) => assert.equal(p.truncated, true));
  assert.equal(sent[sent.length - 1]?.truncated, false);
  const targets = sent.flatMap((p) => p.answers.map((r) => (r as { target: string }).target));
  assert.equal(targets.length, 60);
  assert.ok(!targets.includes('Old._x._tcp.local'));
  for (const p of sent) assert.ok(p.answers.every((r) => r.ttl < 4500 && r.ttl > 4400));
});

test('querier: duplicate question suppression (RFC 6762 §7.3): another host asking the same QM question with no known answers we lack counts as our query', () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const mine = link.host(1);
  const other = link.host(2);
  const cache = new RecordCache(clock);
  const q = new Querier(mine, clock, cache);
  mine.on('packet', (p: ReceivedPacket) => q.handle(p));
  const ptr = (target: string): ResourceRecord => ({ name: '_x._tcp.local', type: 'PTR', target, ttl: 4500, rrclass: CLASS_IN, cacheFlush: false });
  const question = (unicastResponse = false) => ({ name: '_X._tcp.local', qtype: RRType.PTR, qclass: CLASS_IN, unicastResponse });
  const otherAsks = (known: ResourceRecord[] = [], o: { unicastResponse?: boolean; truncated?: boolean; port?: number } = {}): void => {
    const w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
    w.header(0, false);
    if (o.truncated) w.setTruncated(true);
    w.addQuestion(question(o.unicastResponse));
    for (const r of known) w.addRecord(1, r);
    link.inject(w.finish(), other.address, o.port ?? 5353);
  };
  const ours = (): number => link.log.filter((s) => s.from === mine.address).length;
  cache.addResponse([ptr('A._x._tcp.local')], 'eth0');
  q.startContinuous('_x._tcp.local', RRType.PTR);
  clock.advance(200); // the first query goes out 20-120 ms after the start
  assert.equal(ours(), 1);
  // Then every 1, 2, 4, 8 … s: due at t1 + 1000, 3000, 7000, 15000, 31000, 63000, 127000, 255000.
  const t1 = q.history('_x._tcp.local', RRType.PTR)[0] as number;
  const at = (ms: number): void => clock.advance(t1 + ms - clock.now());

  // Seen within the half-interval before our next query (due at +1000): ours is not sent.
  at(700);
  otherAsks([ptr('A._x._tcp.local')]);
  at(1100);
  assert.equal(ours(), 1, 'suppressed');
  assert.equal(q.suppressedQueries, 1);
  // This host has no IPv6 socket: nothing went out, so nothing is recorded as sent.
  assert.equal(q.history('_x._tcp.local', RRType.PTR).length, 1);
  // The schedule goes on as if it had been sent: the next one is 2 s later, and it goes out.
  at(2900);
  assert.equal(ours(), 1);
  at(3100);
  assert.equal(ours(), 2);

  // Seen more than half an interval before ours (4 s interval, seen 2.5 s before): ours goes out.
  at(4500);
  otherAsks();
  at(7100);
  assert.equal(ours(), 3);

  // Not duplicates: their known answers include one we do not have (we could miss its answer),
  // a QU question, a truncated query (more known answers follow), a legacy querier (not port 5353).
  const cases: Array<[string, number, () => void]> = [
    ['an unknown known answer', 15_000, () => otherAsks([ptr('A._x._tcp.local'), ptr('B._x._tcp.local')])],
    ['QU', 31_000, () => otherAsks([], { unicastResponse: true })],
    ['TC', 63_000, () => otherAsks([], { truncated: true })],
    ['legacy port', 127_000, () => otherAsks([], { port: 40000 })],
  ];
  for (const [what, due, ask] of cases) {
    const before = ours();
    at(due - 100);
    ask();
    at(due + 100);
    assert.equal(ours(), before + 1, `${what}: our query still goes out`);
  }
  assert.equal(q.suppressedQueries, 1);

  // A known answer of theirs that we hold with less than half its TTL left is not one we would
  // list (§7.1): not a duplicate either. The same record with its TTL renewed is.
  const short = (target: string): ResourceRecord => ({ ...ptr(target), ttl: 100 });
  at(255_000 - 100 - 60_000);
  cache.addResponse([short('C._x._tcp.local')], 'eth0'); // at the next due time, 40 s of its 100 left
  const before = ours();
  at(255_000 - 100);
  otherAsks([ptr('A._x._tcp.local'), short('C._x._tcp.local')]);
  at(255_000 + 100);
  assert.equal(ours(), before + 1, 'a record past half its TTL: our query still goes out');
  at(511_000 - 5000);
  cache.addResponse([short('C._x._tcp.local')], 'eth0'); // renewed: 95 s left at the next due time
  at(511_000 - 100);
  otherAsks([ptr('A._x._tcp.local'), short('C._x._tcp.local')]);
  at(511_000 + 100);
  assert.equal(ours(), before + 1, 'every known answer is one we hold: suppressed');
  assert.equal(q.suppressedQueries, 2);
  q.close();
});

test('querier: duplicate question suppression is per address family: a duplicate heard over IPv4 only leaves our IPv6 query', () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const mine = link.host(1, ['IPv4', 'IPv6']);
  const other = link.host(2, ['IPv4', 'IPv6']);
  const q = new Querier(mine, clock, new RecordCache(clock));
  mine.on('packet', (p: ReceivedPacket) => q.handle(p));
  const ask = (family: 'IPv4' | 'IPv6'): void => {
    const w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
    w.header(0, false);
    w.addQuestion({ name: '_x._tcp.local', qtype: RRType.PTR, qclass: CLASS_IN, unicastResponse: false });
    link.inject(w.finish(), other.address, 5353, family);
  };
  const ours = (family: 'IPv4' | 'IPv6'): number => link.log.filter((s) => s.from === mine.address && s.family === family).length;
  q.startContinuous('_x._tcp.local', RRType.PTR);
  clock.advance(200);
  assert.deepEqual([ours('IPv4'), ours('IPv6')], [1, 0], 'the first query goes over IPv4 alone');
  const t1 = q.history('_x._tcp.local', RRType.PTR)[0] as number;
  const at = (ms: number): void => clock.advance(t1 + ms - clock.now());
  at(700);
  ask('IPv4');
  at(1100);
  assert.deepEqual([ours('IPv4'), ours('IPv6')], [1, 1], 'only the IPv4 query suppressed');
  at(2700); // next due at +3000 (2 s interval): heard over both families → nothing sent
  ask('IPv4');
  ask('IPv6');
  at(3100);
  assert.deepEqual([ours('IPv4'), ours('IPv6')], [1, 1], 'both suppressed');
  assert.equal(q.suppressedQueries, 3);
  at(7100);
  assert.deepEqual([ours('IPv4'), ours('IPv6')], [2, 2], 'and the schedule goes on');
  q.close();
});

test('tie-breaking compares class, type, then rdata bytes; the later set wins', () => {
  const r = (address: string): ResourceRecord => a(address);
  assert.ok(compareProbeSets([r('10.0.0.2')], [r('10.0.0.1')]) > 0);
  assert.ok(compareProbeSets([r('10.0.0.1')], [r('10.0.0.2')]) < 0);
  assert.equal(compareProbeSets([r('10.0.0.1'), r('10.0.0.2')], [r('10.0.0.2'), r('10.0.0.1')]), 0, 'order-independent');
  assert.ok(compareProbeSets([r('10.0.0.1'), r('10.0.0.2')], [r('10.0.0.1')]) > 0, 'a longer set wins when the shared part is equal');
  const aaaa: ResourceRecord = { name: 'vm.local', type: 'AAAA', address: '::1', ttl: 120, rrclass: CLASS_IN, cacheFlush: true };
  assert.ok(compareProbeSets([aaaa], [r('255.255.255.255')]) > 0, 'type 28 > type 1');
  // RFC 6762 §8.2 example: SRV rdata compared byte-wise (priority/weight/port first)
  const srv = (port: number): ResourceRecord => ({ name: 'x._http._tcp.local', type: 'SRV', priority: 0, weight: 0, port, target: 'vm.local', ttl: 120, rrclass: CLASS_IN, cacheFlush: true });
  assert.ok(compareProbeSets([srv(8080)], [srv(80)]) > 0);
});

test('browse on a dual-stack link: the first query (no known answers) goes over IPv4 alone and is answered once per responder; a responder on IPv6 alone is found by the second, a second later', async () => {
  const { Mdns } = await import('../../../src/dnssd/mdns.js');
  const clock = new FakeClock();
  const link = new FakeLink(clock, { v6Sources: true });
  const [dual, v6only, browserHost] = [link.host(1, ['IPv4', 'IPv6']), link.host(2, ['IPv6']), link.host(3, ['IPv4', 'IPv6'])];
  const responders = [new Mdns({ network: dual, clock, host: 'dual' }), new Mdns({ network: v6only, clock, host: 'six' })];
  await Promise.all(responders.map((e) => e.whenReady()));
  responders[0]?.advertise({ name: 'dual', type: '_fam._tcp', port: 1 });
  responders[1]?.advertise({ name: 'six', type: '_fam._tcp', port: 2 });
  await new Promise((r) => setImmediate(r));
  clock.advance(10_000); // probed and announced before the browser's engine exists
  const engine = new Mdns({ network: browserHost, clock, host: 'browser' });
  await engine.whenReady();
  const from = link.log.length;
  const startedAt = clock.now();
  const found = new Map<string, number>();
  const browser = engine.browse({ type: '_fam._tcp' });
  browser.on('added', (s) => found.set(s.name, clock.now() - startedAt));
  await new Promise((r) => setImmediate(r));
  clock.advance(900);
  const sent = link.log.slice(from);
  const queries = sent.filter((s) => s.from === browserHost.address && !s.packet.response);
  assert.deepEqual(queries.map((s) => s.family), ['IPv4'], 'one first query, over IPv4');
  assert.equal(queries[0]?.packet.questions[0]?.unicastResponse, true, 'asked from the engine\'s start: QU (RFC 6762 §5.4)');
  const answers = sent.filter((s) => s.from === dual.address && s.packet.response);
  assert.deepEqual(answers.map((s) => s.family), ['IPv4'], 'answered once, over IPv4');
  assert.equal(answers[0]?.to?.address, browserHost.address, 'by unicast, to the browser alone: the responder announced its records a moment ago');
  assert.ok(found.has('dual') && !found.has('six'), `found ${JSON.stringify([...found])}`);
  clock.advance(1500);
  assert.ok((found.get('six') ?? Infinity) <= 2400, `the IPv6-only responder found after ${found.get('six')} ms`);
  browser.stop();
  await Promise.all([engine, ...responders].map((e) => e.close()));
});

test('QU (RFC 6762 §5.4) only for the first query of a question asked from the interface\'s activation: a browse started later asks QM, and so does every retransmission', async () => {
  const { Mdns } = await import('../../../src/dnssd/mdns.js');
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const host = link.host(1);
  const engine = new Mdns({ network: host, clock, host: 'asker' });
  await engine.whenReady();
  const qu = (): boolean[] => link.log.filter((s) => s.from === host.address && !s.packet.response && s.packet.authorities.length === 0).flatMap((s) => s.packet.questions.filter((q) => q.qtype === RRType.PTR).map((q) => q.unicastResponse));
  const early = engine.browse({ type: '_early._tcp' });
  await new Promise((r) => setImmediate(r));
  clock.advance(4000);
  assert.deepEqual(qu(), [true, false, false], 'the first QU, its retransmissions QM');
  clock.advance(10_000);
  const before = qu().length;
  const late = engine.browse({ type: '_late._tcp' });
  await new Promise((r) => setImmediate(r));
  clock.advance(500);
  assert.deepEqual(qu().slice(before), [false], 'a browse asked 14 s after the start: QM');
  early.stop();
  late.stop();
  await engine.close();
});
