/**
 * 100,000+ hostile packets (`npm run fuzz`: 1,000,000) into the parser, and as many into live engines (responder +
 * browser over the in-memory link, the same decode -> handle path the sockets use):
 * nothing throws but ERR_MALFORMED_PACKET, nothing hangs, memory stays bounded, and the
 * advertiser and browser still work for everyone afterwards.
 * (test/integration/dnssd/ repeats the live part over real sockets in namespaces.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePacket, encodePacket } from '../../../src/dnssd/codec/index.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { Mdns } from '../../../src/dnssd/mdns.js';
import type { ServiceInstance } from '../../../src/dnssd/service-instance.js';
import { fuzzPackets } from './fuzz-packets.js';
import { FakeLink } from './fake-link.js';

/** PEERLINK_FUZZ_PACKETS (npm run fuzz: 1,000,000), else 100,000. */
const N = Number.isInteger(Number(process.env.PEERLINK_FUZZ_PACKETS)) && Number(process.env.PEERLINK_FUZZ_PACKETS) > 0 ? Number(process.env.PEERLINK_FUZZ_PACKETS) : 100_000;

test(`the parser survives ${N} random and mutated packets`, () => {
  const heapBefore = process.memoryUsage().heapUsed;
  const counts: Record<string, [number, number]> = {};
  let slowest = 0;
  for (const [buf, kind] of fuzzPackets(N, 12345)) {
    const c = (counts[kind] ??= [0, 0]);
    const t = performance.now();
    try {
      const p = decodePacket(buf);
      c[0]++;
      // whatever decodes must encode again, exactly (the responder echoes questions, the
      // querier sends cached records as known answers)
      const again = encodePacket(p);
      assert.deepEqual(decodePacket(again), p, `${kind}: not stable through encode/decode`);
    } catch (err) {
      assert.ok(isPeerlinkError(err, 'ERR_MALFORMED_PACKET'), `${kind}: unexpected ${String(err)} for ${buf.toString('hex')}`);
      c[1]++;
    }
    slowest = Math.max(slowest, performance.now() - t);
  }
  // every mutation kind was refused at times, and mutations that keep a packet parseable
  // were accepted at times, so both paths ran
  for (const [kind, [, bad]] of Object.entries(counts)) assert.ok(bad > 0, `${kind}: nothing refused`);
  for (const kind of ['flip', 'rdlength', 'splice']) assert.ok((counts[kind]?.[0] ?? 0) > 0, `${kind}: nothing accepted`);
  // a single packet taking a second would mean unbounded work (a loop), not a slow machine
  assert.ok(slowest < 1000, `slowest packet took ${slowest} ms`);
  const grown = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(grown < 200 * 1024 * 1024, `heap grew ${grown} bytes`);
});

test(`a live advertiser and browser survive ${N} hostile packets and keep working`, async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const [h1, h2, h3] = [link.host(1), link.host(2), link.host(3)];
  const adv = new Mdns({ network: h1, clock, host: 'victim' });
  const brw = new Mdns({ network: h2, clock, host: 'browser' });
  await Promise.all([adv.whenReady(), brw.whenReady()]);
  const ad = adv.advertise({ name: 'Victim', type: '_fuzz._tcp', port: 4000, txt: { v: '1' } });
  const browser = brw.browse({ type: '_fuzz._tcp' });
  const seen: ServiceInstance[] = [];
  browser.on('added', (s) => seen.push(s));
  await Promise.resolve();
  clock.advance(4000);
  assert.ok(ad.registered);
  assert.deepEqual(seen.map((s) => s.name), ['Victim']);

  let i = 0;
  for (const [buf] of fuzzPackets(N, 777, ['Victim', 'Other'])) {
    // from an on-link stranger, half to port 5353 and half as legacy queries
    link.inject(buf, '10.9.0.66', i % 2 === 0 ? 5353 : 40000 + (i % 1000));
    if (++i % 200 === 0) clock.advance(10);
  }
  clock.advance(10_000);
  const stats = h1.malformed + h2.malformed;
  assert.ok(stats > N / 2, `most packets were refused as malformed (${stats})`);
  assert.equal(adv.stats, undefined);

  // the advertiser still answers a fresh browser on an untouched host
  const fresh = new Mdns({ network: h3, clock, host: 'fresh' });
  await fresh.whenReady();
  const freshSeen: ServiceInstance[] = [];
  fresh.browse({ type: '_fuzz._tcp' }).on('added', (s) => freshSeen.push(s));
  await Promise.resolve();
  clock.advance(5000);
  assert.ok(freshSeen.some((s) => s.name === ad.name && s.port === 4000), `fresh browser saw ${JSON.stringify(freshSeen.map((s) => s.name))}`);

  // the fuzzed browser still sees a new advertisement
  const late = fresh.advertise({ name: 'After Fuzz', type: '_fuzz._tcp', port: 4001 });
  await Promise.resolve();
  clock.advance(5000);
  assert.ok(late.registered);
  assert.ok(seen.some((s) => s.name === 'After Fuzz'), `fuzzed browser saw ${JSON.stringify(seen.map((s) => s.name))}`);
  await Promise.all([adv.close(), brw.close(), fresh.close()]);
});
