/**
 * Resolution that fails a whole round (five questions over 15 s, every answer lost: a lossy
 * link, a busy host's full socket buffer) is tried again in later rounds while the instance's
 * PTR lives, 15 s after the round, then 30 s, 60 s … up to an hour. Before, the instance stayed
 * unresolved until its PTR was heard again — which a browser holding it as a known answer
 * may not hear for an hour.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { Mdns } from '../../../src/dnssd/mdns.js';
import { REVISIT_MS } from '../../../src/dnssd/browser.js';
import { encodePacket, emptyPacket, CLASS_IN, type ResourceRecord } from '../../../src/dnssd/codec/index.js';
import { FakeLink } from './fake-link.js';

function ptrPacket(type: string, instance: string): Buffer {
  const ptr: ResourceRecord = { name: `${type}.local`, type: 'PTR', target: `${instance}.${type}.local`, ttl: 4500, rrclass: CLASS_IN, cacheFlush: false };
  return encodePacket({ ...emptyPacket(true), answers: [ptr] });
}

/**
 * An owner advertising `name` and a browser on a fake link (and a stranger's host, 10.9.0.9),
 * browsing for 5 s while nothing the owner sends reaches it (`rig.blocked`).
 */
async function blockedOwner(name: string) {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const [ownerHost, browserHost] = [link.host(1), link.host(2)];
  link.host(9);
  const owner = new Mdns({ network: ownerHost, clock, host: 'owner' });
  const engine = new Mdns({ network: browserHost, clock, host: 'browser' });
  await Promise.all([owner.whenReady(), engine.whenReady()]);
  const rig = { clock, link, ownerHost, browserHost, owner, engine, blocked: true, added: [] as number[] };
  link.dropAt = (s, to) => rig.blocked && s.from === ownerHost.address && to === browserHost;
  owner.advertise({ name, type: '_rv._tcp', port: 7 });
  const browser = engine.browse({ type: '_rv._tcp' });
  browser.on('added', (s) => { if (s.name === name) rig.added.push(clock.now()); });
  await new Promise((r) => setImmediate(r));
  clock.advance(5000);
  return { ...rig, browser, rig };
}

test('a round of resolution whose every answer was lost is followed by another: the instance resolves without its PTR being heard again', async () => {
  const { clock, link, ownerHost, browserHost, owner, engine: browserEngine, browser, rig, added } = await blockedOwner('lossy');
  // the browser hears the PTR once (a packet that got through), then every answer is lost
  const heardAt = clock.now();
  link.inject(ptrPacket('_rv._tcp', 'lossy'), ownerHost.address);
  clock.advance(16_000);
  assert.deepEqual(added, [], 'not resolved while the answers are lost');
  const asked = (since: number): number => link.log.filter((s) => s.at >= since && s.from === browserHost.address && !s.packet.response && s.packet.questions.some((q) => q.name.startsWith('lossy.'))).length;
  const firstRound = asked(heardAt);
  assert.ok(firstRound >= 5, `${firstRound} questions in the first round`);
  rig.blocked = false;
  const quietFrom = clock.now();
  // the next round comes 15 s (±20 %) after this one ended (its last question waits 16 s)
  clock.advance(60_000);
  assert.equal(added.length, 1, 'resolved by a later round');
  const took = (added[0] as number) - heardAt;
  assert.ok(took >= 15_000 + 0.8 * REVISIT_MS && took <= 32_000 + 1.2 * REVISIT_MS + 1000, `resolved ${took} ms after its PTR`);
  assert.ok(asked(quietFrom) >= 1, 'it asked again');
  browser.stop();
  await Promise.all([owner.close(), browserEngine.close()]);
});

test('an instance nobody answers for (a dead host\'s PTR, 75 minutes in caches): rounds back off to an hour, a few dozen questions in all, none once the PTR expires', async () => {
  const clock = new FakeClock();
  const link = new FakeLink(clock);
  const browserHost = link.host(2);
  link.host(9);
  const engine = new Mdns({ network: browserHost, clock, host: 'browser' });
  await engine.whenReady();
  const browser = engine.browse({ type: '_rv._tcp' });
  await new Promise((r) => setImmediate(r));
  clock.advance(2000);
  const heardAt = clock.now();
  link.inject(ptrPacket('_rv._tcp', 'ghost'), '10.9.0.9');
  const questions = (from: number, to: number): number =>
    link.log.filter((s) => s.at >= from && s.at < to && s.from === browserHost.address && !s.packet.response && s.packet.questions.some((q) => q.name.startsWith('ghost.'))).length;
  for (let t = 0; t < 4600; t++) clock.advance(1000);
  const first = questions(heardAt, heardAt + 20_000);
  const later = questions(heardAt + 20_000, heardAt + 4_500_000);
  // one round is 5 questions (one packet each, or one per family); rounds at ~15 s, 45 s,
  // 105 s, 225 s, 465 s, 945 s, 1905 s and 3825 s after the first round ended
  assert.ok(first >= 5 && first <= 10, `${first} questions in the first round`);
  assert.ok(later >= 5 * 6, `${later} questions in later rounds: it kept trying`);
  assert.ok(later <= 10 * 9, `${later} questions in later rounds over 75 minutes`);
  const after = questions(heardAt + 4_500_000 + 5000, clock.now());
  assert.equal(after, 0, 'none once the PTR has expired');
  browser.stop();
  await engine.close();
});

test('a stranger\'s never-resolving PTRs in their later rounds do not hold up an instance heard for the first time', async () => {
  const { clock, link, ownerHost, owner, engine, browser, rig, added } = await blockedOwner('real');
  // 200 bare PTRs from a stranger: 16 at a time, 5 questions each, then a round again and again
  const ptrs: ResourceRecord[] = Array.from({ length: 200 }, (_, i) => ({ name: '_rv._tcp.local', type: 'PTR', target: `bare-${i}._rv._tcp.local`, ttl: 4500, rrclass: CLASS_IN, cacheFlush: false }));
  for (let i = 0; i < 200; i += 50) link.inject(encodePacket({ ...emptyPacket(true), answers: ptrs.slice(i, i + 50) }), '10.9.0.9');
  for (let t = 0; t < 900; t++) clock.advance(1000);
  // now the real instance is heard for the first time
  rig.blocked = false;
  const heardAt = clock.now();
  link.inject(ptrPacket('_rv._tcp', 'real'), ownerHost.address);
  for (let t = 0; t < 120 && added.length === 0; t++) clock.advance(1000);
  const addedAt = added[0];
  assert.ok(addedAt !== undefined && addedAt - heardAt <= 20_000, `resolved ${addedAt === undefined ? 'never' : `${addedAt - heardAt} ms`} after its PTR, behind the stranger's rounds`);
  browser.stop();
  await Promise.all([owner.close(), engine.close()]);
});
