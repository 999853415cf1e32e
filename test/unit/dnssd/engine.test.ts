/**
 * The responder, browser and resolver end to end over an in-memory link in fake time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { Mdns } from '../../../src/dnssd/mdns.js';
import { encodePacket, emptyPacket, CLASS_IN, RRType, type DnsPacket, type ResourceRecord } from '../../../src/dnssd/codec/index.js';
import type { ServiceInstance } from '../../../src/dnssd/service-instance.js';
import { FakeLink, type FakeHost } from './fake-link.js';

async function setup(n: number, hostNames?: string[]): Promise<{ clock: FakeClock; link: FakeLink; hosts: FakeHost[]; engines: Mdns[] }> {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const hosts = Array.from({ length: n }, (_, i) => link.host(i + 1));
  const engines = hosts.map((h, i) => new Mdns({ network: h, clock, host: hostNames?.[i] ?? `host${i + 1}` }));
  await Promise.all(engines.map((e) => e.whenReady()));
  return { clock, link, hosts, engines };
}

function collect(browser: { on(e: 'added' | 'removed' | 'changed', l: (s: ServiceInstance) => void): unknown }): { event: string; s: ServiceInstance }[] {
  const out: { event: string; s: ServiceInstance }[] = [];
  for (const e of ['added', 'removed', 'changed'] as const) browser.on(e, (s) => out.push({ event: e, s }));
  return out;
}

const q = (name: string, qtype: number, unicastResponse = false) => ({ name, qtype, qclass: CLASS_IN, unicastResponse });

test('probes three times 250 ms apart, then announces twice a second apart with RFC TTLs', async () => {
  const { clock, link, engines } = await setup(1);
  const ad = engines[0]!.advertise({ name: 'Living Room', type: '_example._tcp', port: 8080, txt: { a: '1' } });
  await Promise.resolve();
  let registeredAt = -1;
  const t0 = clock.now();
  ad.on('registered', () => (registeredAt = clock.now() - t0));
  clock.advance(5000);
  const probes = link.log.filter((s) => !s.packet.response && s.packet.authorities.length > 0);
  const serviceProbes = probes.filter((s) => s.packet.questions.some((x) => x.name === 'Living Room._example._tcp.local'));
  assert.equal(serviceProbes.length, 3);
  assert.deepEqual(serviceProbes.slice(1).map((s, i) => s.at - serviceProbes[i]!.at), [250, 250]);
  assert.ok(serviceProbes.every((s) => s.packet.questions.every((x) => x.qtype === RRType.ANY)));
  assert.ok(registeredAt >= 750 && registeredAt <= 1100, `registered after ${registeredAt} ms`);
  const announcements = link.log.filter((s) => s.packet.response && s.packet.answers.some((r) => r.type === 'SRV'));
  assert.ok(announcements.length >= 2);
  assert.equal(announcements[1]!.at - announcements[0]!.at, 1000);
  const recs = announcements[0]!.packet.answers;
  const byType = (t: string): ResourceRecord => recs.find((r) => r.type === t)!;
  assert.equal(byType('SRV').ttl, 120);
  assert.equal(byType('SRV').cacheFlush, true);
  assert.equal(byType('TXT').ttl, 4500);
  assert.equal(byType('TXT').cacheFlush, true);
  const ptrs = recs.filter((r) => r.type === 'PTR');
  assert.ok(ptrs.every((r) => r.ttl === 4500 && !r.cacheFlush));
  assert.ok(ptrs.some((r) => r.name === '_services._dns-sd._udp.local'));
  const addr = announcements[0]!.packet.additionals.filter((r) => r.type === 'A' || r.type === 'AAAA');
  assert.deepEqual(addr.map((r) => [r.type, r.ttl, r.cacheFlush]), [['A', 120, true], ['AAAA', 120, true]]);
  await engines[0]!.close();
});

test('browse: added once resolved, changed on TXT update, removed within 2 s of stop', async () => {
  const { clock, engines } = await setup(2);
  const ad = engines[0]!.advertise({ name: 'Living Room', type: '_example._tcp', port: 8080, txt: { a: '1', flag: true } });
  const browser = engines[1]!.browse({ type: '_example._tcp' });
  const events = collect(browser);
  await Promise.resolve();
  clock.advance(3000);
  assert.equal(events.length, 1);
  const added = events[0]!;
  assert.equal(added.event, 'added');
  assert.equal(added.s.name, 'Living Room');
  assert.equal(added.s.type, '_example._tcp');
  assert.equal(added.s.domain, 'local');
  assert.equal(added.s.host, 'host1.local');
  assert.equal(added.s.port, 8080);
  assert.deepEqual(added.s.addresses, ['10.9.0.1', 'fe80::1%eth0']);
  assert.deepEqual(added.s.txt, { a: '1', flag: null });
  assert.equal(added.s.interface, 'eth0');
  ad.update({ a: '2' });
  clock.advance(3000);
  assert.deepEqual(events.map((e) => e.event), ['added', 'changed']);
  assert.deepEqual(events[1]!.s.txt, { a: '2' });
  await ad.stop();
  const stoppedAt = clock.now();
  clock.advance(2000);
  assert.deepEqual(events.map((e) => e.event), ['added', 'changed', 'removed']);
  assert.ok(clock.now() - stoppedAt <= 2000);
  // the async iterator sees the same changes
  const ad2 = engines[0]!.advertise({ name: 'Second', type: '_example._tcp', port: 1 });
  const it = browser[Symbol.asyncIterator]();
  await Promise.resolve();
  clock.advance(3000);
  const next = await it.next();
  assert.equal(next.done, false);
  assert.equal(next.value?.event, 'added');
  assert.equal(next.value?.service.name, 'Second');
  await ad2.stop();
  browser.stop();
  assert.equal((await it.next()).done, true);
  await Promise.all(engines.map((e) => e.close()));
});

test('simultaneous probes for one name: exactly one renames to "Name (2)", a third host sees both', async () => {
  const { clock, engines } = await setup(3);
  const a = engines[0]!.advertise({ name: 'Printer', type: '_ipp._tcp', port: 631 });
  const b = engines[1]!.advertise({ name: 'Printer', type: '_ipp._tcp', port: 632 });
  const renames: string[] = [];
  a.on('renamed', (c) => renames.push(`a:${c.from}->${c.name}`));
  b.on('renamed', (c) => renames.push(`b:${c.from}->${c.name}`));
  const browser = engines[2]!.browse({ type: '_ipp._tcp' });
  const events = collect(browser);
  await Promise.resolve();
  clock.advance(10_000);
  assert.equal(renames.length, 1, renames.join());
  assert.match(renames[0]!, /Printer->Printer \(2\)$/);
  assert.deepEqual(new Set([a.name, b.name]), new Set(['Printer', 'Printer (2)']));
  assert.deepEqual(events.filter((e) => e.event === 'added').map((e) => `${e.s.name}:${e.s.port}`).sort(), [`Printer (2):${a.name === 'Printer' ? 632 : 631}`, `Printer:${a.name === 'Printer' ? 631 : 632}`]);
  await Promise.all(engines.map((e) => e.close()));
});

test('a later service with a taken name is renamed; a host name conflict renames the host', async () => {
  const { clock, engines } = await setup(2, ['same', 'same']);
  const hostRenames: string[] = [];
  engines.forEach((e) => e.on('hostRenamed', (c) => hostRenames.push(c.name)));
  const a = engines[0]!.advertise({ name: 'Svc', type: '_x._tcp', port: 1 });
  await Promise.resolve();
  clock.advance(5000);
  assert.equal(a.registered, true);
  const b = engines[1]!.advertise({ name: 'Svc', type: '_x._tcp', port: 2 });
  const registered: string[] = [];
  b.on('registered', (n) => registered.push(n));
  await Promise.resolve();
  clock.advance(10_000);
  assert.deepEqual(registered, ['Svc (2)']);
  assert.equal(a.name, 'Svc');
  assert.deepEqual(hostRenames, ['same-2.local']);
  assert.deepEqual(engines.map((e) => e.hostname).sort(), ['same-2.local', 'same.local']);
  await Promise.all(engines.map((e) => e.close()));
});

async function registered(n = 1): Promise<Awaited<ReturnType<typeof setup>>> {
  const env = await setup(n);
  env.engines[0]!.advertise({ name: 'Svc', type: '_x._tcp', port: 9, subtypes: ['_printer'] });
  await Promise.resolve();
  env.clock.advance(5000);
  env.link.log.length = 0;
  return env;
}

function query(env: Awaited<ReturnType<typeof setup>>, p: Partial<DnsPacket>, from = '10.9.0.99', port = 5353): void {
  env.link.inject(encodePacket({ ...emptyPacket(false), ...p }), from, port);
}

test('legacy unicast: reply to the source port, id and question echoed, TTL <= 10, no cache-flush', async () => {
  const env = await registered();
  query(env, { id: 4242, questions: [q('Svc._x._tcp.local', RRType.SRV)] }, '10.9.0.99', 40000);
  const out = env.hosts[0]!.unicastOut;
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]!.to, { address: '10.9.0.99', port: 40000 });
  const p = out[0]!.packet;
  assert.equal(p.id, 4242);
  assert.equal(p.questions[0]?.name, 'Svc._x._tcp.local');
  assert.equal(p.answers[0]?.type, 'SRV');
  for (const r of [...p.answers, ...p.additionals]) {
    assert.ok(r.ttl <= 10);
    assert.equal(r.cacheFlush, false);
  }
  await env.engines[0]!.close();
});

test('unique answers go out at once, shared ones after 20-120 ms; known answers suppress', async () => {
  const env = await registered();
  const t0 = env.clock.now();
  query(env, { questions: [q('host1.local', RRType.A)] });
  env.clock.advance(5);
  assert.equal(env.link.log.length, 1);
  assert.ok(env.link.log[0]!.at - t0 <= 1);
  env.link.log.length = 0;
  query(env, { questions: [q('_x._tcp.local', RRType.PTR)] });
  env.clock.advance(200);
  assert.equal(env.link.log.length, 1);
  const delay = env.link.log[0]!.at - env.clock.now() + 200;
  assert.ok(delay >= 20 && delay <= 120, `delay ${delay}`);
  const ans = env.link.log[0]!.packet;
  assert.equal(ans.answers[0]?.type, 'PTR');
  assert.deepEqual(ans.additionals.map((r) => r.type).sort(), ['A', 'AAAA', 'SRV', 'TXT']);
  env.link.log.length = 0;
  env.clock.advance(2000);
  const ptr: ResourceRecord = { name: '_x._tcp.local', type: 'PTR', target: 'Svc._x._tcp.local', ttl: 4000, rrclass: CLASS_IN, cacheFlush: false };
  query(env, { questions: [q('_x._tcp.local', RRType.PTR)], answers: [ptr] });
  env.clock.advance(500);
  assert.equal(env.link.log.length, 0, 'known answer with > half TTL suppresses');
  query(env, { questions: [q('_x._tcp.local', RRType.PTR)], answers: [{ ...ptr, ttl: 100 }] });
  env.clock.advance(500);
  assert.equal(env.link.log.length, 1, 'a known answer with < half TTL does not');
  await env.engines[0]!.close();
});

test('truncated known-answer lists: the responder waits for the rest before answering', async () => {
  const env = await registered();
  env.clock.advance(2000);
  const ptr: ResourceRecord = { name: '_x._tcp.local', type: 'PTR', target: 'Svc._x._tcp.local', ttl: 4000, rrclass: CLASS_IN, cacheFlush: false };
  query(env, { questions: [q('_x._tcp.local', RRType.PTR)], truncated: true });
  env.clock.advance(100);
  query(env, { answers: [ptr] });
  env.clock.advance(1000);
  assert.equal(env.link.log.length, 0, 'the known answer in the second packet suppressed the answer');
  query(env, { questions: [q('_x._tcp.local', RRType.PTR)], truncated: true });
  env.clock.advance(390);
  assert.equal(env.link.log.length, 0, 'still waiting for more known answers');
  env.clock.advance(600);
  assert.equal(env.link.log.length, 1);
  await env.engines[0]!.close();
});

test('QU questions get a unicast answer when the record was multicast recently, multicast otherwise', async () => {
  const env = await registered();
  query(env, { questions: [q('Svc._x._tcp.local', RRType.SRV, true)] });
  env.clock.advance(10);
  assert.equal(env.hosts[0]!.unicastOut.length, 1, 'SRV was announced moments ago: unicast');
  assert.deepEqual(env.hosts[0]!.unicastOut[0]!.to, { address: '10.9.0.99', port: 5353 });
  env.clock.advance(40_000);
  env.link.log.length = 0;
  query(env, { questions: [q('Svc._x._tcp.local', RRType.SRV, true)] });
  env.clock.advance(10);
  assert.equal(env.hosts[0]!.unicastOut.length, 1);
  assert.equal(env.link.log.length, 1, 'not multicast for a quarter TTL: multicast');
  await env.engines[0]!.close();
});

test('service enumeration and subtypes', async () => {
  const env = await registered(2);
  query(env, { questions: [q('_services._dns-sd._udp.local', RRType.PTR)] });
  env.clock.advance(200);
  const enumAnswer = env.link.log.find((s) => s.packet.response)!.packet;
  assert.deepEqual(enumAnswer.answers.map((r) => (r as { target: string }).target), ['_x._tcp.local']);
  const browser = env.engines[1]!.browse({ type: '_x._tcp', subtype: '_printer' });
  const other = env.engines[1]!.browse({ type: '_x._tcp', subtype: '_scanner' });
  const events = collect(browser);
  const none = collect(other);
  await Promise.resolve();
  env.clock.advance(3000);
  assert.deepEqual(events.map((e) => `${e.event}:${e.s.name}:${e.s.type}`), ['added:Svc:_x._tcp']);
  assert.equal(none.length, 0);
  await Promise.all(env.engines.map((e) => e.close()));
});

test('resolve() finds SRV, TXT and addresses; rejects with ERR_RESOLVE_FAILED when nobody answers', async () => {
  const env = await registered(2);
  const pending = env.engines[1]!.resolve({ name: 'Svc', type: '_x._tcp' }, { timeout: 2000 });
  for (let i = 0; i < 30; i++) {
    env.clock.advance(100);
    await new Promise((r) => setImmediate(r));
  }
  const found = await pending;
  assert.equal(found.length, 1);
  assert.equal(found[0]!.port, 9);
  assert.deepEqual(found[0]!.addresses, ['10.9.0.1', 'fe80::1%eth0']);
  const missing = env.engines[1]!.resolve({ name: 'Nobody', type: '_x._tcp' }, { timeout: 1000 });
  const caught = missing.catch((e: unknown) => e);
  for (let i = 0; i < 30; i++) {
    env.clock.advance(100);
    await new Promise((r) => setImmediate(r));
  }
  assert.equal((await caught as { code?: string }).code, 'ERR_RESOLVE_FAILED');
  await Promise.all(env.engines.map((e) => e.close()));
});

test('invalid input gets PeerlinkErrors with stable codes', async () => {
  const { engines } = await setup(1);
  const m = engines[0]!;
  assert.throws(() => m.advertise({ name: '', type: '_x._tcp', port: 1 }), { code: 'ERR_INVALID_INSTANCE_NAME' });
  assert.throws(() => m.advertise({ name: 'x', type: 'x._tcp', port: 1 }), { code: 'ERR_INVALID_SERVICE_TYPE' });
  assert.throws(() => m.advertise({ name: 'x', type: '_x._tcp', port: 70000 }), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => m.advertise({ name: 'x', type: '_x._tcp', port: 1, txt: { 'a=b': '1' } }), { code: 'ERR_INVALID_TXT' });
  assert.throws(() => m.browse({ type: '_toolongservicename._tcp' }), { code: 'ERR_INVALID_SERVICE_TYPE' });
  assert.throws(() => new Mdns({ interfaces: ['no-such-if0'] }), { code: 'ERR_UNKNOWN_INTERFACE' });
  await m.close();
  assert.throws(() => m.browse({ type: '_x._tcp' }), { code: 'ERR_CLOSED' });
});

test('refresh queries at 80 % keep a live instance; a silent departure is removed at TTL expiry', async () => {
  const { clock, link, engines } = await setup(2);
  engines[0]!.advertise({ name: 'Steady', type: '_x._tcp', port: 5 });
  const browser = engines[1]!.browse({ type: '_x._tcp' });
  const events = collect(browser);
  await Promise.resolve();
  clock.advance(5000);
  assert.deepEqual(events.map((e) => e.event), ['added']);
  const t0 = clock.now();
  link.log.length = 0;
  // the SRV (TTL 120 s) is refreshed from 96 s on: a query for it goes out
  clock.advance(100_000);
  const srvQueries = link.log.filter((s) => !s.packet.response && s.packet.questions.some((q) => q.qtype === RRType.SRV && q.name === 'Steady._x._tcp.local'));
  assert.ok(srvQueries.length >= 1, 'refresh query for the SRV');
  const at = srvQueries[0]!.at - t0;
  assert.ok(at >= 0.8 * 120_000 - 5000 && at <= 0.82 * 120_000, `first refresh at ${at} ms`);
  clock.advance(400_000);
  assert.deepEqual(events.map((e) => e.event), ['added'], 'still there after several TTLs');
  // the advertiser's host vanishes without a goodbye: records expire, the instance is removed
  link.filter = (s) => s.from === '10.9.0.1';
  clock.advance(130_000);
  assert.deepEqual(events.map((e) => e.event), ['added', 'removed']);
  await Promise.all(engines.map((e) => e.close()));
});

test('a question for a type we lack at a name we own gets an NSEC (RFC 6762 §6.1)', async () => {
  const env = await registered();
  query(env, { questions: [q('host1.local', RRType.TXT)] });
  env.clock.advance(50);
  const p = env.link.log.find((s) => s.packet.response)?.packet;
  assert.ok(p, 'answered');
  const nsec = p.answers[0];
  assert.equal(nsec?.type, 'NSEC');
  assert.deepEqual(nsec?.type === 'NSEC' && nsec.types, [RRType.A, RRType.AAAA]);
  assert.equal(nsec?.cacheFlush, true);
  env.link.log.length = 0;
  query(env, { questions: [q('Svc._x._tcp.local', RRType.A)] });
  env.clock.advance(50);
  const p2 = env.link.log.find((s) => s.packet.response)?.packet;
  assert.deepEqual(p2?.answers.map((r) => (r.type === 'NSEC' ? r.types : r.type)), [[RRType.TXT, RRType.SRV]]);
  // a name we do not own gets nothing
  env.link.log.length = 0;
  query(env, { questions: [q('other.local', RRType.A)] });
  env.clock.advance(50);
  assert.equal(env.link.log.length, 0);
  await env.engines[0]!.close();
});

test('diagnostics channels report registrations, conflicts and browse results', async () => {
  const dc = await import('node:diagnostics_channel');
  const seen: { ch: string; msg: unknown }[] = [];
  const subs = ['peerlink:dnssd:registration', 'peerlink:dnssd:conflict', 'peerlink:dnssd:browse'].map((ch) => {
    const fn = (msg: unknown): void => void seen.push({ ch, msg });
    dc.subscribe(ch, fn);
    return () => dc.unsubscribe(ch, fn);
  });
  try {
    const { clock, engines } = await setup(3);
    engines[0]!.advertise({ name: 'Diag', type: '_d._tcp', port: 1 });
    await Promise.resolve();
    clock.advance(3000);
    engines[1]!.advertise({ name: 'Diag', type: '_d._tcp', port: 2 });
    engines[2]!.browse({ type: '_d._tcp' });
    await Promise.resolve();
    clock.advance(6000);
    const states = seen.filter((s) => s.ch.endsWith('registration')).map((s) => (s.msg as { state: string; name: string }).state + ':' + (s.msg as { name: string }).name);
    assert.deepEqual(states.filter((x) => x.startsWith('registered')).sort(), ['registered:Diag', 'registered:Diag (2)']);
    assert.ok(states.includes('renamed:Diag (2)'));
    assert.deepEqual(seen.filter((s) => s.ch.endsWith('conflict')).map((s) => s.msg), [{ kind: 'service', name: 'Diag (2)', from: 'Diag' }]);
    assert.equal(seen.filter((s) => s.ch.endsWith('browse')).length, 2);
    await Promise.all(engines.map((e) => e.close()));
  } finally {
    subs.forEach((u) => u());
  }
});

test('a TXT replaced within the same second (and packets handled in the same millisecond) still reads as changed', async () => {
  const { clock, link, engines } = await setup(1);
  const browser = engines[0]!.browse({ type: '_z._tcp' });
  const events = collect(browser);
  await Promise.resolve();
  const rr = { rrclass: CLASS_IN };
  const announce = (v: string): Buffer =>
    encodePacket({
      ...emptyPacket(true),
      answers: [
        { ...rr, name: '_z._tcp.local', type: 'PTR', target: 'Z._z._tcp.local', ttl: 4500, cacheFlush: false },
        { ...rr, name: 'Z._z._tcp.local', type: 'SRV', priority: 0, weight: 0, port: 4204, target: 'zc.local', ttl: 120, cacheFlush: true },
        { ...rr, name: 'Z._z._tcp.local', type: 'TXT', strings: [Buffer.from(`v=${v}`)], ttl: 4500, cacheFlush: true },
        { ...rr, name: 'zc.local', type: 'A', address: '10.9.0.2', ttl: 120, cacheFlush: true },
      ],
    });
  link.inject(announce('1'), '10.9.0.2');
  clock.advance(100);
  assert.deepEqual(events.map((e) => e.s.txt.v), ['1']);
  // like python-zeroconf: the update's announcements 5 ms after the last old one, and the
  // old one's IPv6 copy handled after the new one, all in one millisecond
  link.inject(announce('1'), '10.9.0.2');
  link.inject(announce('2'), '10.9.0.2');
  link.inject(announce('1'), '10.9.0.2');
  link.inject(announce('2'), '10.9.0.2');
  clock.advance(1);
  assert.deepEqual(events.map((e) => `${e.event}:${e.s.txt.v}`), ['added:1', 'changed:2'], 'the last one received wins, even within a millisecond');
  clock.advance(225);
  link.inject(announce('2'), '10.9.0.2');
  clock.advance(100);
  assert.deepEqual(events.map((e) => `${e.event}:${e.s.txt.v}`), ['added:1', 'changed:2']);
  await engines[0]!.close();
});

/** Two engines on one host (same interface, addresses and host name) and a browser on another. */
async function siblings() {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const [keepNet, leaveNet, farNet] = [link.host(1), link.host(1), link.host(3)];
  const keeper = new Mdns({ network: keepNet, clock, host: 'hostx' });
  const leaver = new Mdns({ network: leaveNet, clock, host: 'hostx' });
  const far = new Mdns({ network: farNet, clock, host: 'far' });
  await Promise.all([keeper, leaver, far].map((e) => e.whenReady()));
  const renames: string[] = [];
  for (const e of [keeper, leaver]) e.on('hostRenamed', (c) => renames.push(c.name));
  keeper.advertise({ name: 'Keep', type: '_x._tcp', port: 1 });
  leaver.advertise({ name: 'Leaver', type: '_x._tcp', port: 2 });
  const browser = far.browse({ type: '_x._tcp' });
  const events = collect(browser);
  await Promise.resolve();
  clock.advance(6000);
  assert.deepEqual(renames, [], 'the shared host name is not a conflict');
  assert.deepEqual(events.map((e) => `${e.event}:${e.s.name}`).sort(), ['added:Keep', 'added:Leaver']);
  return { clock, link, keepNet, keeper, leaver, far, browser, events };
}

const hostA = (r: ResourceRecord): boolean => r.type === 'A' && r.name === 'hostx.local';
const enumPtr = (r: ResourceRecord): boolean => r.type === 'PTR' && r.name === '_services._dns-sd._udp.local';

test('another process on the same host stops: no goodbyes for the records it shares with us, browsers see no flicker; the last one says them', async () => {
  const { clock, link, keepNet, keeper, leaver, far, browser, events } = await siblings();
  const from = link.log.length;
  await leaver.close();
  clock.advance(10_000);
  assert.deepEqual(events.map((e) => `${e.event}:${e.s.name}`).sort(), ['added:Keep', 'added:Leaver', 'removed:Leaver']);
  // its own records got their goodbyes; the host's addresses and the enumeration PTR, which the
  // keeper still publishes, did not (a goodbye would drop them from every cache a second later)
  const byes = link.log.slice(from).flatMap((s) => s.packet.answers.filter((r) => r.ttl === 0));
  assert.ok(byes.some((r) => r.type === 'SRV' && r.name.startsWith('Leaver.')), 'the leaver said goodbye to its SRV');
  assert.ok(!byes.some((r) => hostA(r) || enumPtr(r)), `goodbyes for shared records: ${byes.map((r) => `${r.name}/${r.type}`).join(', ')}`);
  // the last one on the host says goodbye to everything, and the browser sees Keep go within 2 s
  const from2 = link.log.length;
  const keepClosedAt = clock.now();
  let keepRemovedAt = -1;
  browser.on('removed', (s) => {
    if (s.name === 'Keep') keepRemovedAt = clock.now();
  });
  await keeper.close();
  clock.advance(2000);
  assert.ok(keepRemovedAt > 0 && keepRemovedAt - keepClosedAt <= 2000, `Keep removed ${keepRemovedAt - keepClosedAt} ms after close`);
  const lastByes = link.log.slice(from2).filter((s) => s.from === keepNet.address).flatMap((s) => s.packet.answers.filter((r) => r.ttl === 0));
  assert.ok(lastByes.some(hostA) && lastByes.some(enumPtr), 'the last responder on the host said goodbye to the host address and the enumeration PTR');
  await far.close();
});

test('a goodbye for a record we still publish, from another responder on this host that did not know: rescued before caches drop it', async () => {
  const { clock, link, keepNet, keeper, leaver, far, events } = await siblings();
  // what a sibling that never heard us would send (another implementation, or one started late)
  const bye = encodePacket({
    ...emptyPacket(true),
    answers: [
      { name: 'hostx.local', type: 'A', address: keepNet.address, ttl: 0, rrclass: CLASS_IN, cacheFlush: true },
      { name: '_services._dns-sd._udp.local', type: 'PTR', target: '_x._tcp.local', ttl: 0, rrclass: CLASS_IN, cacheFlush: false },
    ],
  });
  const from = link.log.length;
  const byeAt = clock.now();
  link.inject(bye, keepNet.address);
  clock.advance(10_000);
  const after = link.log.slice(from);
  const rescued = (pred: (r: ResourceRecord) => boolean): number | undefined => after.find((s) => s.packet.answers.some((r) => r.ttl > 0 && pred(r)))?.at;
  const aAt = rescued((r) => hostA(r) && r.ttl === 120);
  const enumAt = rescued((r) => enumPtr(r) && r.ttl === 4500);
  assert.ok(aAt !== undefined && enumAt !== undefined && aAt - byeAt < 1000 && enumAt - byeAt < 1000, `rescues ${String(aAt)} ${String(enumAt)} after a goodbye at ${byeAt}`);
  assert.deepEqual(events.map((e) => `${e.event}:${e.s.name}`).sort(), ['added:Keep', 'added:Leaver'], 'no flicker');
  await Promise.all([keeper.close(), leaver.close(), far.close()]);
});

test('a goodbye for a record we do not publish is not answered', async () => {
  const env = await setup(2);
  const ad = env.engines[0]!.advertise({ name: 'Solo', type: '_y._tcp', port: 1 });
  await Promise.resolve();
  env.clock.advance(5000);
  const from = env.link.log.length;
  await ad.stop();
  env.clock.advance(3000);
  // the stopped service's goodbyes are the last word: nobody re-announces them
  const later = env.link.log.slice(from).filter((s) => s.packet.response && s.packet.answers.some((r) => r.ttl > 0 && (r.name.includes('Solo') || r.name === '_services._dns-sd._udp.local')));
  assert.deepEqual(later, []);
  await Promise.all(env.engines.map((e) => e.close()));
});
