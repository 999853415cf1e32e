/**
 * Finding 7, dial-target half: waves of advertisements followed by goodbyes must not grow a
 * browsing session's dial targets without bound: absent targets expire (absentPeerExpiry)
 * and there are at most maxPeerRecords of them (least recently seen evicted first).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, sleep, until } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { cleanup, startVictim } from './harness.js';
import { MdnsAttacker } from './mdns-lab.js';
import { goodbyePtr, instance, response, type RR } from './mdns-packets.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;

before(async () => {
  if (!skip) lab = await createLab({ hosts: 2, tag: 'dtgt' });
});
after(async () => {
  await cleanup();
  await killAllTracked();
  await lab?.teardown();
});

test('waves of advertisements and goodbyes: dial targets stay within maxPeerRecords and expire', { skip, timeout: 180_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const type = '_wave._tcp.local';
  const cap = 150;
  const expiry = 4000;
  const attacker = await MdnsAttacker.start(lab, 2);
  const v = await startVictim(
    { serviceType: 'wave', browse: true, advertise: false, autoConnect: false, interfaces: ['eth0'], budgets: { maxPeerRecords: cap, absentPeerExpiry: expiry } },
    { lab, host: 1 },
  );
  await sleep(1000);
  let peak = 0;
  for (let w = 0; w < 4; w++) {
    const names = Array.from({ length: 100 }, (_, i) => `w${w}-i${i}`);
    const ads: Buffer[] = [];
    for (let p = 0; p < names.length; p += 10) {
      const rrs: RR[] = names.slice(p, p + 10).flatMap((n) => instance(n, type, 'wave.local', 7100, 120));
      rrs.push({ name: 'wave.local', type: 'A', ttl: 120, data: '10.77.0.2', cacheFlush: true });
      ads.push(response(rrs));
    }
    await attacker.send(ads);
    await sleep(1000);
    peak = Math.max(peak, (await v.cost()).stats.targets);
    const byes: Buffer[] = [];
    for (let p = 0; p < names.length; p += 25) byes.push(response(names.slice(p, p + 25).map((n) => goodbyePtr(type, `${n}.${type}`))));
    await attacker.send(byes);
    await sleep(1500);
    peak = Math.max(peak, (await v.cost()).stats.targets);
  }
  t.diagnostic(`peak dial targets over 4 waves of 100: ${peak}`);
  assert.ok(peak >= 50, `the waves reached the victim (peak ${peak})`);
  assert.ok(peak <= cap, `dial targets reached ${peak} (cap ${cap})`);
  // every instance said goodbye: after absentPeerExpiry nothing is left
  await until(async () => (await v.cost()).stats.targets === 0, expiry * 3 + 5000, 'absent targets expired');
  await v.stop();
});
