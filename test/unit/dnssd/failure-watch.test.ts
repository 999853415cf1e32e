/**
 * RFC 6762 §10.4 / §10.5: a host killed without goodbyes stops being reported within seconds
 * of a failure indication (reconfirm), by the host that reconfirmed and, passively, by every
 * other host that heard its unanswered queries; its PTR (75 minutes) goes with its SRV. A live
 * instance that is reconfirmed answers and stays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { Mdns } from '../../../src/dnssd/mdns.js';
import type { ServiceInstance } from '../../../src/dnssd/service-instance.js';
import { FakeLink, type FakeHost } from './fake-link.js';
import { encodePacket } from '../../../src/dnssd/codec/encode.js';
import { CLASS_IN, emptyPacket, RRType } from '../../../src/dnssd/codec/types.js';

test('reconfirm: a killed instance is removed within 15 s everywhere (not after its 120 s SRV TTL); a live one stays', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const hosts = [1, 2, 3, 4].map((i) => link.host(i));
  const [dead, alive, b, c] = hosts.map((h, i) => new Mdns({ network: h, clock, host: `h${i + 1}` })) as [Mdns, Mdns, Mdns, Mdns];
  await Promise.all([dead, alive, b, c].map((e) => e.whenReady()));
  dead.advertise({ name: 'dead', type: '_x._tcp', port: 1 });
  alive.advertise({ name: 'alive', type: '_x._tcp', port: 2 });
  const removed = new Map<string, string[]>();
  for (const [who, e] of [['b', b], ['c', c]] as const) {
    const br = e.browse({ type: '_x._tcp' });
    br.on('removed', (s: ServiceInstance) => removed.set(who, [...(removed.get(who) ?? []), s.name]));
  }
  await Promise.resolve();
  clock.advance(10_000);
  // SIGKILL: nothing more from that host, not even goodbyes
  const deadAddress = hosts[0]!.address;
  link.filter = (s) => s.from === deadAddress;
  const killedAt = clock.now();
  b.reconfirm({ name: 'dead', type: '_x._tcp' });
  b.reconfirm({ name: 'alive', type: '_x._tcp' });
  clock.advance(15_000);
  assert.deepEqual(removed.get('b'), ['dead'], `b removed ${JSON.stringify(removed.get('b'))} within ${clock.now() - killedAt} ms`);
  assert.deepEqual(removed.get('c'), ['dead'], 'c, which only heard the unanswered queries, removed it too');
  assert.ok(b.flushedUnanswered >= 3, `b flushed ${b.flushedUnanswered} records (SRV, TXT, PTR)`);
  // and it stays gone: no PTR left to resolve again
  clock.advance(60_000);
  assert.deepEqual(removed.get('b'), ['dead']);
  await Promise.all([dead, alive, b, c].map((e) => e.close()));
});

test('a dead host with many instances: every one is removed within its SRV TTL, and the confirmations cost a few packets, not two per instance', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const [ownerHost, browserHost] = [link.host(1), link.host(2)];
  const owner = new Mdns({ network: ownerHost, clock, host: 'many' });
  const engine = new Mdns({ network: browserHost, clock, host: 'browser' });
  await Promise.all([owner.whenReady(), engine.whenReady()]);
  for (let i = 0; i < 24; i++) owner.advertise({ name: `svc ${i}`, type: '_many._tcp', port: 100 + i });
  const browser = engine.browse({ type: '_many._tcp' });
  await new Promise((r) => setImmediate(r));
  clock.advance(20_000);
  assert.equal(browser.services.length, 24);
  // SIGKILL
  link.filter = (s) => s.from === ownerHost.address;
  const killedAt = clock.now();
  const gone = new Set<string>();
  browser.on('removed', (s) => gone.add(s.name));
  while (gone.size < 24 && clock.now() - killedAt < 150_000) clock.advance(1000);
  assert.equal(gone.size, 24, `${gone.size} of 24 removed in ${clock.now() - killedAt} ms`);
  assert.ok(clock.now() - killedAt <= 120_000, `all removed ${clock.now() - killedAt} ms after the kill`);
  // no PTR left to resolve again: nothing asked for them afterwards
  const from = link.log.length;
  clock.advance(120_000);
  const asked = link.log.slice(from).filter((s) => s.from === browserHost.address && !s.packet.response && s.packet.questions.some((q) => q.name.startsWith('svc '))).length;
  assert.equal(asked, 0, `${asked} questions for the dead instances after their removal`);
  const confirmations = link.log.filter((s) => s.at >= killedAt && s.from === browserHost.address && !s.packet.response && s.packet.questions.length > 0 && s.packet.questions.every((q) => q.qtype === 33) && s.packet.questions.length >= 2).length;
  assert.ok(confirmations <= 6, `${confirmations} confirmation packets`);
  browser.stop();
  await Promise.all([owner.close(), engine.close()]);
});

/**
 * A live instance X whose answers never reach B (B's socket buffer full), and two stranger's
 * queries for X's SRV without known answers: with a punctual loop, B's passive watch turns the
 * SRV suspect, asks for it, hears nothing and flushes it (the rule, RFC 6762 §10.5). If B's own
 * loop stood still ≥ 1 s meanwhile, "nobody answered" is no evidence (the answers may have been
 * dropped at B's full socket buffer): the watch is dropped, B asks nothing and keeps X.
 */
/** An owner X advertising `name` and a browser B that has found it, 20 s in; `removed` turns true when B reports it removed. */
async function ownerAndBrowser(name: string): Promise<{ clock: FakeClock; link: FakeLink; xHost: FakeHost; bHost: FakeHost; b: Mdns; removed: () => boolean; close: () => Promise<void> }> {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const [xHost, bHost] = [link.host(1), link.host(2)];
  const x = new Mdns({ network: xHost, clock, host: 'x' });
  const b = new Mdns({ network: bHost, clock, host: 'b' });
  await Promise.all([x.whenReady(), b.whenReady()]);
  x.advertise({ name, type: '_x._tcp', port: 1 });
  const browser = b.browse({ type: '_x._tcp' });
  let removed = false;
  browser.on('removed', () => { removed = true; });
  await new Promise((r) => setImmediate(r));
  clock.advance(20_000);
  assert.equal(browser.services.length, 1);
  return {
    clock, link, xHost, bHost, b,
    removed: () => removed,
    close: async () => {
      browser.stop();
      await Promise.all([x.close(), b.close()]);
    },
  };
}

/**
 * Two strangers' queries for X's SRV (at 0 and 1 s), then B's loop stands still for `stallMs`
 * from `stallAt` ms after the second. With `armEarly`, a stranger asked for X's TXT 600 ms before
 * the first: B's once-a-second sweep then runs 400 ms past each whole second of the SRV's watch.
 * `firstAskAt`: when B first asked for the SRV itself, ms after the first stranger's SRV query.
 */
async function unansweredAtB(stallMs: number, opts: { stallAt?: number; armEarly?: boolean } = {}): Promise<{ removed: boolean; asked: number; abandoned: number; firstAskAt: number }> {
  const { clock, link, xHost, bHost, b, removed, close } = await ownerAndBrowser('live');
  link.dropAt = (s, to) => to === bHost && s.from === xHost.address;
  const from = link.log.length;
  const ask = (qtype: number = RRType.SRV): void => link.inject(encodePacket({ ...emptyPacket(false), questions: [{ name: 'live._x._tcp.local', qtype, qclass: CLASS_IN, unicastResponse: false }] }), '10.9.0.77');
  if (opts.armEarly) {
    ask(RRType.TXT);
    clock.advance(600);
  }
  const t0 = clock.now();
  ask();
  clock.advance(1000);
  ask();
  clock.advance(opts.stallAt ?? 500);
  if (stallMs > 0) clock.stall(stallMs);
  clock.advance(20_000);
  const asks = link.log.slice(from).filter((s) => s.from === bHost.address && !s.packet.response && s.packet.questions.some((q) => q.qtype === RRType.SRV && q.name.startsWith('live.')));
  const abandoned = b.watchesAbandoned;
  await close();
  return { removed: removed(), asked: asks.length, abandoned, firstAskAt: asks.length > 0 ? (asks[0] as { at: number }).at - t0 : Number.NaN };
}

test('passive failure watch and our own stalled loop: unanswered while B ran on time is flushed; unanswered across a 2 s stall of B is not evidence (no confirmation sent, X kept)', async () => {
  const punctual = await unansweredAtB(0);
  assert.equal(punctual.removed, true, 'with a punctual loop the unanswered SRV is flushed');
  assert.ok(punctual.asked >= 2, `B confirmed it first (${punctual.asked} questions)`);
  const stalled = await unansweredAtB(2000);
  assert.equal(stalled.removed, false, 'after a 2 s stall the live instance is kept');
  assert.equal(stalled.asked, 0, `B sent ${stalled.asked} confirmation questions`);
  assert.ok(stalled.abandoned >= 1);
  // a stall under a second does not count as time unanswered: the verdict comes, later by the
  // stall (our own confirmation questions start that much later than with a punctual loop)
  const short = await unansweredAtB(800);
  assert.equal(short.removed, true);
  // …later by the stall. B's sweep due 400 ms past a whole second of the SRV's watch runs 950 ms
  // late (frozen from 10 ms before it for 960 ms), and every sweep after it too: counted as time
  // unanswered, the watch would cross its threshold before the shifted sweep that follows it and
  // be confirmed 50 ms sooner than with a punctual loop; discounted, a sweep later (+950 ms)
  const punctualOffset = await unansweredAtB(0, { armEarly: true });
  const offset = await unansweredAtB(960, { armEarly: true, stallAt: 390 });
  assert.equal(offset.removed, true);
  assert.ok(offset.firstAskAt >= punctualOffset.firstAskAt + 900, `first confirmation ${offset.firstAskAt} ms after the strangers' first SRV query, with a punctual loop ${punctualOffset.firstAskAt} ms: the 950 ms stall was counted as time unanswered`);
});

test('reconfirm across a 2 s stall of our own loop: a failure indication is evidence of its own, the killed instance is still removed within 15 s', async () => {
  const { clock, link, xHost, b, removed, close } = await ownerAndBrowser('dead');
  link.filter = (s) => s.from === xHost.address;
  b.reconfirm({ name: 'dead', type: '_x._tcp' });
  clock.advance(1500);
  clock.stall(2000);
  clock.advance(11_500);
  assert.equal(removed(), true);
  await close();
});
