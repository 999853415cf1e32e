/**
 * One-off questions (cache refresh, resolution) in fake time: refresh questions asked together
 * (RFC 6762 §5.2) and §7.3 duplicate question suppression for them; refresh and resolution
 * questions over the family their cause came from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { RecordCache } from '../../../src/dnssd/cache.js';
import { Querier } from '../../../src/dnssd/querier.js';
import { ServiceBrowser } from '../../../src/dnssd/browser.js';
import { CLASS_IN, RRType, type Question, type ResourceRecord } from '../../../src/dnssd/codec/types.js';
import { PacketWriter, DEFAULT_MAX_SEND_BYTES } from '../../../src/dnssd/codec/encode.js';
import type { ReceivedPacket } from '../../../src/dnssd/transport.js';
import { FakeLink, type FakeHost } from './fake-link.js';

const INSTANCE = 'A._x._tcp.local';
const srv: ResourceRecord = { name: INSTANCE, type: 'SRV', priority: 0, weight: 0, port: 9, target: 'vm.local', ttl: 120, rrclass: CLASS_IN, cacheFlush: true };
const a: ResourceRecord = { name: 'vm.local', type: 'A', address: '10.9.0.2', ttl: 120, rrclass: CLASS_IN, cacheFlush: true };
const aaaa: ResourceRecord = { name: 'vm.local', type: 'AAAA', address: 'fe80::2', ttl: 120, rrclass: CLASS_IN, cacheFlush: true };
const ptr: ResourceRecord = { name: '_x._tcp.local', type: 'PTR', target: INSTANCE, ttl: 4500, rrclass: CLASS_IN, cacheFlush: false };
const question = (name: string, qtype: number, unicastResponse = false): Question => ({ name, qtype, qclass: CLASS_IN, unicastResponse });

function setup(families: ReadonlyArray<'IPv4' | 'IPv6'> = ['IPv4', 'IPv6']): { clock: FakeClock; link: FakeLink; mine: FakeHost; cache: RecordCache; q: Querier } {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const mine = link.host(1, families);
  const cache = new RecordCache(clock);
  const q = new Querier(mine, clock, cache);
  mine.on('packet', (p: ReceivedPacket) => q.handle(p));
  return { clock, link, mine, cache, q };
}

/** Another host (10.9.0.3) asks `questions` (QM unless said), with no known answers. */
function otherAsks(link: FakeLink, questions: Question[], family: 'IPv4' | 'IPv6' = 'IPv4'): void {
  const w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
  w.header(0, false);
  for (const x of questions) w.addQuestion(x);
  link.inject(w.finish(), '10.9.0.3', 5353, family);
}

test('refresh (RFC 6762 §5.2): records of one response due within REFRESH_AHEAD_MS are asked in one query, over the family they came from; unanswered, the next point asks again', () => {
  const { clock, link, mine, cache, q } = setup();
  q.addInterest(() => true);
  // an instance's SRV and its host's addresses, in one response from 10.9.0.2 (IPv4)
  cache.addResponse([srv, a, aaaa], 'eth0', '10.9.0.2');
  const ours = (): typeof link.log => link.log.filter((s) => s.from === mine.address && !s.packet.response);
  clock.advance(95_000);
  assert.equal(ours().length, 0, 'nothing before 80 % of the TTL');
  clock.advance(4_000); // the first points: 96-98.4 s, each with its own jitter
  assert.equal(ours().length, 1, 'one query for the three records (was one per record, on each family)');
  const first = ours()[0];
  assert.equal(first?.family, 'IPv4', 'over the family the records came from only');
  assert.deepEqual(first?.packet.questions.map((x) => `${x.name}/${x.qtype}`).sort(), [`${INSTANCE}/${RRType.SRV}`, `vm.local/${RRType.A}`, `vm.local/${RRType.AAAA}`].sort());
  // no answer came: the 85 % points (102-104.4 s) ask again, together
  clock.advance(6_000);
  assert.equal(ours().length, 2);
  assert.equal(ours()[1]?.packet.questions.length, 3);
  q.close();
});

test('refresh (RFC 6762 §7.3): a question another host asked within the last second is not asked again; if no answer comes the next point asks', () => {
  const { clock, link, mine, cache, q } = setup();
  q.addInterest(() => true);
  cache.addResponse([a], 'eth0', '10.9.0.2');
  const ours = (): number => link.log.filter((s) => s.from === mine.address && !s.packet.response).length;
  const point = (): number => cache.get('vm.local', RRType.A, 'eth0')[0]?.refreshAt[0] as number;
  const first = point();
  clock.advance(first - 500 - clock.now());
  otherAsks(link, [question('vm.local', RRType.A)], 'IPv6');
  clock.advance(1_000);
  assert.equal(ours(), 0, 'another host asked it 0.5 s before our point (on either family): its answer refreshes us too');
  assert.equal(q.suppressedQuestions, 1);
  // nobody answered: at the 85 % point ours goes out
  const second = point();
  assert.ok(second > first);
  clock.advance(second + 10 - clock.now());
  assert.equal(ours(), 1);
  // a QU question (the answer may go to the asker only) does not count
  const third = point();
  clock.advance(third - 500 - clock.now());
  otherAsks(link, [question('vm.local', RRType.A, true)]);
  clock.advance(1_000);
  assert.equal(ours(), 2);
  q.close();
});

test('browser: resolution questions go out over the family the instance\'s PTR came from, five of them (now, then 1, 2, 4, 8 s later)', () => {
  const { clock, link, mine, cache, q } = setup(['IPv4', 'IPv6']);
  const browser = new ServiceBrowser({ cache, querier: q, clock }, '_x._tcp.local');
  browser.start();
  const ours = (): typeof link.log => link.log.filter((s) => s.from === mine.address && s.packet.questions.some((x) => x.name === INSTANCE && x.qtype === RRType.SRV));
  cache.addResponse([ptr], 'eth0', 'fe80::2%eth0'); // heard over IPv6; nobody answers the questions
  clock.advance(20_000);
  assert.deepEqual(ours().map((s) => s.family), ['IPv6', 'IPv6', 'IPv6', 'IPv6', 'IPv6'], 'over IPv6 only (was: over both families)');
  const at = ours().map((s) => s.at - (ours()[0]?.at as number));
  assert.deepEqual(at, [0, 1000, 3000, 7000, 15_000]);
  browser.stop();
  q.close();
});
