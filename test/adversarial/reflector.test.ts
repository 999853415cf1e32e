/**
 * Finding 6 (reflector): mDNS answers naming many instances at one address:port must not make a
 * browsing session dial that address over and over, and addresses that are not on the link the
 * answer came from are never dialled. Victim: a browsing session in lab host h1; attacker: raw
 * UDP packets built by hand from h2, which also counts the TCP connections the victim makes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, sleep, until } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { cleanup, startVictim } from './harness.js';
import { MdnsAttacker } from './mdns-lab.js';
import { instance, response, type RR } from './mdns-packets.js';
import { DEFAULT_BUDGETS } from '../../src/session/budgets.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;

before(async () => {
  if (!skip) lab = await createLab({ hosts: 2, tag: 'refl' });
});
after(async () => {
  await cleanup();
  await killAllTracked();
  await lab?.teardown();
});

/** Dials the back-off rule allows to one destination within `ms` (the first at 0). */
function allowedDials(ms: number): number {
  const b = DEFAULT_BUDGETS;
  let at = 0;
  let n = 0;
  while (at <= ms) {
    n++;
    at += n < b.dialFailuresBeforeSlow ? b.dialBackoffInitial * 2 ** (n - 1) : b.dialBackoffSlow;
  }
  return n;
}

test('100 instances naming one address:port: dials there follow the per-destination back-off', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const type = '_refl._tcp.local';
  const attacker = await MdnsAttacker.start(lab, 2);
  await attacker.listen('10.77.0.2', 7000, 'reflect');
  const v = await startVictim({ serviceType: 'refl', browse: true, advertise: false, interfaces: ['eth0'] }, { lab, host: 1 });
  await sleep(1000);
  const packets: Buffer[] = [];
  for (let p = 0; p < 10; p++) {
    const rrs: RR[] = [];
    for (let i = 0; i < 10; i++) rrs.push(...instance(`svc-${p * 10 + i}`, type, 'evil.local', 7000, 4500));
    rrs.push({ name: 'evil.local', type: 'A', ttl: 4500, data: '10.77.0.2', cacheFlush: true });
    packets.push(response(rrs));
  }
  const started = Date.now();
  await attacker.send(packets);
  await until(async () => ((await attacker.counts()).reflect ?? 0) > 0, 10_000, 'a first dial');
  await sleep(Math.max(0, started + 15_000 - Date.now()));
  const dials = (await attacker.counts()).reflect ?? 0;
  const limit = allowedDials(15_000);
  t.diagnostic(`dials to 10.77.0.2:7000 in 15 s: ${dials} (rule allows ${limit})`);
  assert.ok(dials <= limit, `victim dialled the reflected address ${dials} times in 15 s (back-off allows ${limit})`);
  const c = await v.cost();
  assert.ok(c.stats.targets <= 100, JSON.stringify(c.stats));
  await v.stop();
});

test('addresses off the arrival interface are never dialled; on-link ones are', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const type = '_hyg._tcp.local';
  // 10.99.0.5 lives on h2 and h1 has a route to it: reachable, but not on h1's link (10.77.0.0/24)
  await lab.ip(2, ['addr', 'add', '10.99.0.5/32', 'dev', 'eth0']);
  await lab.ip(1, ['route', 'add', '10.99.0.0/24', 'via', '10.77.0.2']);
  const attacker = await MdnsAttacker.start(lab, 2);
  await attacker.listen('10.99.0.5', 7001, 'offlink');
  await attacker.listen('10.77.0.2', 7002, 'onlink');
  const v = await startVictim({ serviceType: 'hyg', browse: true, advertise: false, interfaces: ['eth0'] }, { lab, host: 1 });
  await sleep(1000);
  const far: RR[] = [];
  for (let i = 0; i < 5; i++) far.push(...instance(`far-${i}`, type, 'far.local', 7001, 120));
  far.push({ name: 'far.local', type: 'A', ttl: 120, data: '10.99.0.5', cacheFlush: true });
  const near: RR[] = [...instance('near', type, 'near.local', 7002, 120), { name: 'near.local', type: 'A', ttl: 120, data: '10.77.0.2', cacheFlush: true }];
  await attacker.send([response(far), response(near)]);
  await until(async () => ((await attacker.counts()).onlink ?? 0) > 0, 15_000, 'the on-link instance dialled');
  await sleep(4000);
  const counts = await attacker.counts();
  t.diagnostic(JSON.stringify(counts));
  assert.equal(counts.offlink ?? 0, 0, 'an address off the arrival interface was dialled');
  await v.stop();
});
