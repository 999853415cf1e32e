/**
 * Tarpits: a stranger advertises instances (mDNS answers built by hand) at TCP ports that accept
 * and then stall — never a byte of TLS back — so that each dial of ours holds one of the
 * session's `dialsInFlight` handshake places until connectionTimeout. Measured here: how many of
 * those places the stranger holds at once (one address; then many addresses once each has timed
 * out), what it costs the victim in sockets and fds, and how long an honest peer that appears
 * meanwhile waits for its dial. Victim: a browsing session in lab host h1; attacker: raw UDP and
 * TCP from h2 (mdns-attacker.ts); the honest peer: a session in h3 that only advertises, so that
 * only the victim's own dial can connect the two.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, sleep, until, waitForJson } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { cleanup, startVictim } from './harness.js';
import { MdnsAttacker } from './mdns-lab.js';
import { instance, response, type RR } from './mdns-packets.js';
import { DEFAULT_BUDGETS } from '../../src/session/budgets.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;

before(async () => {
  if (!skip) lab = await createLab({ hosts: 3, tag: 'tarp' });
});
after(async () => {
  await cleanup();
  await killAllTracked();
  await lab?.teardown();
});

/** TLS with a PSK, as `peerlink chat` runs it: a dial holds its place through the TLS handshake. */
const security = { mode: 'psk' as const, key: '5a'.repeat(32) };
const sum = (o: Record<string, number>, tags: readonly string[]): number => tags.reduce((n, t) => n + (o[t] ?? 0), 0);

test('tarpit instances hold at most dialsInFlightPerAddress places per address and dialsInFlightSuspect once they timed out; an honest peer is dialled at once', { skip, timeout: 240_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const b = DEFAULT_BUDGETS;
  const connectionTimeout = 6000;
  const type = '_tarp._tcp.local';
  const attacker = await MdnsAttacker.start(lab, 2);
  // one address with 12 stalling ports, and 6 more addresses of h2 (on h1's link) with one each
  for (let i = 0; i < 12; i++) await attacker.tarpit('10.77.0.2', 7100 + i, `one-${i}`, 'one');
  const extra = [12, 13, 14, 15, 16, 17].map((n) => `10.77.0.${n}`);
  for (const [i, a] of extra.entries()) {
    await lab.ip(2, ['addr', 'add', `${a}/32`, 'dev', 'eth0']);
    await attacker.tarpit(a, 7200, `a${i}`);
  }
  const tags = [...Array.from({ length: 12 }, (_, i) => `one-${i}`), ...extra.map((_, i) => `a${i}`)];
  const v = await startVictim({ serviceType: 'tarp', browse: true, advertise: false, interfaces: ['eth0'], connectionTimeout, security }, { lab, host: 1 });
  await sleep(1000);
  const base = await v.cost();

  // (1) 12 instances at one address: at most dialsInFlightPerAddress handshakes there at once
  const one: RR[] = [];
  for (let i = 0; i < 12; i++) one.push(...instance(`pit-${i}`, type, 'pit.local', 7100 + i, 4500));
  one.push({ name: 'pit.local', type: 'A', ttl: 4500, data: '10.77.0.2', cacheFlush: true });
  await attacker.send([response(one)]);
  await until(async () => sum((await attacker.tarpits()).counts, tags) >= 1, 15_000, 'a first dial of a tarpit');
  await sleep(connectionTimeout + 3000);
  const p1 = await attacker.tarpits();
  t.diagnostic(`one address, 12 ports, ${connectionTimeout + 3000} ms: ${sum(p1.counts, tags)} dials, at most ${p1.maxOpen.one ?? 0} open at once (cap ${b.dialsInFlightPerAddress})`);
  assert.ok((p1.maxOpen.one ?? 0) <= b.dialsInFlightPerAddress, `${p1.maxOpen.one ?? 0} stalled handshakes at one address at once`);

  // (2) 6 more addresses: together they take every place until each has timed out once; from
  // then on, all of them together hold at most dialsInFlightSuspect places
  const many: RR[] = [];
  for (const [i, a] of extra.entries()) {
    many.push(...instance(`far-${i}`, type, `far-${i}.local`, 7200, 4500));
    many.push({ name: `far-${i}.local`, type: 'A', ttl: 4500, data: a, cacheFlush: true });
  }
  await attacker.send([response(many)]);
  // every destination dialled at least once: 12 ports at one address, 2 at a time, take a while
  await until(async () => {
    const c = (await attacker.tarpits()).counts;
    return tags.every((tag) => (c[tag] ?? 0) >= 1);
  }, 12 * connectionTimeout, 'every tarpit dialled');
  const whileNew = await v.cost();
  // every destination has timed out at least once by now (each was dialled, and waited out)
  await sleep(connectionTimeout + 2000);
  const p2a = await attacker.tarpits();
  assert.ok((p2a.maxOpen['*'] ?? 0) <= b.dialsInFlight, `${p2a.maxOpen['*'] ?? 0} stalled handshakes at once`);
  await attacker.resetMax();
  await sleep(2 * connectionTimeout);
  const p2 = await attacker.tarpits();
  const heldAtOnce = p2.maxOpen['*'] ?? 0;
  t.diagnostic(`7 addresses, 18 tarpits: ${sum(p2.counts, tags)} dials in all; after each timed out, at most ${heldAtOnce} open at once (cap ${b.dialsInFlightSuspect}); victim outgoing TCP while they were new: ${whileNew.outgoing}, fds ${base.fds} → ${whileNew.fds}`);
  assert.ok(heldAtOnce <= b.dialsInFlightSuspect, `${heldAtOnce} stalled handshakes at once after every destination timed out`);
  assert.ok(whileNew.outgoing <= b.dialsInFlight, `${whileNew.outgoing} outgoing connections`);
  assert.ok(whileNew.fds - base.fds <= b.dialsInFlight + 4, `fds ${base.fds} → ${whileNew.fds}`);

  // (3) an honest peer appears meanwhile: the victim dials it without waiting for a tarpit's place
  const honest = await startVictim({ serviceType: 'tarp', browse: false, advertise: true, interfaces: ['eth0'], security }, { lab, host: 3 });
  const readyAt = Date.now();
  await waitForJson(v.proc, (e) => e.ev === 'peer' && e.peer === honest.id && e.state === 'connected', 4 * connectionTimeout);
  const waited = Date.now() - readyAt;
  const p3 = await attacker.tarpits();
  t.diagnostic(`honest peer connected ${waited} ms after it was ready; tarpit connections open then: ${p3.open['*'] ?? 0}`);
  // found (~1 s after its announcement) and dialled at once: well within a tarpit's connectionTimeout
  assert.ok(waited < connectionTimeout, `the honest peer waited ${waited} ms`);
  const end = await v.cost();
  t.diagnostic(`budget counts: ${JSON.stringify(end.stats.budgets)}`);
  await honest.stop();
  await v.stop();
});
