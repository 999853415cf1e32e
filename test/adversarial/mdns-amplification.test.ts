/**
 * Finding 8 (mDNS amplification): what a few hand-built packets make a session send. Bare PTRs
 * (instances with nothing to resolve them) must not make it query without bound, and spoofed
 * goodbyes for its own records must not make it re-announce once per goodbye. Counted by the
 * victim's mDNS engine (packets it handed to its sockets, over both address families).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../harness/netns.js';
import { killAllTracked, sleep } from '../harness/proc.js';
import { requires, skipUnless } from '../harness/prereq.js';
import { cleanup, startVictim, type Victim } from './harness.js';
import { MdnsAttacker } from './mdns-lab.js';
import { goodbyePtr, response, type RR } from './mdns-packets.js';
import { DEFAULT_MDNS_LIMITS } from '../../src/dnssd/index.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;

before(async () => {
  if (!skip) lab = await createLab({ hosts: 2, tag: 'mamp' });
});
after(async () => {
  await cleanup();
  await killAllTracked();
  await lab?.teardown();
});

async function sent(v: Victim): Promise<number> {
  const c = await v.cost();
  assert.ok(c.mdns, 'victim reports mDNS counters');
  return c.mdns.sent;
}

test('300 bare PTRs: the queries they cause stay within the query budget', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const type = '_amp._tcp.local';
  const attacker = await MdnsAttacker.start(lab, 2);
  const v = await startVictim({ serviceType: 'amp', browse: true, advertise: false, interfaces: ['eth0'], mdnsStats: true }, { lab, host: 1 });
  await sleep(3000);
  const before = await sent(v);
  const packets: Buffer[] = [];
  for (let p = 0; p < 4; p++) {
    const rrs: RR[] = [];
    for (let i = 0; i < 75; i++) rrs.push({ name: type, type: 'PTR', ttl: 4500, data: `bare-${p * 75 + i}.${type}` });
    packets.push(response(rrs));
  }
  await attacker.send(packets);
  const seconds = 16;
  await sleep(seconds * 1000);
  const caused = (await sent(v)) - before;
  // each query goes out once per address family (IPv4 and IPv6 on eth0); the browse's own
  // continuous PTR query (at most 4 in 16 s, RFC 6762 §5.2) on top
  const limit = 2 * (DEFAULT_MDNS_LIMITS.queryBurst + DEFAULT_MDNS_LIMITS.queriesPerSecond * seconds) + 2 * 4;
  t.diagnostic(`packets sent in ${seconds} s after 300 bare PTRs: ${caused} (budget ${limit})`);
  assert.ok(caused <= limit, `victim sent ${caused} packets (budget ${limit})`);
  await v.stop();
});

test('200 spoofed goodbyes for our records: re-announcements coalesced (RFC 6762 §6: once per second per record)', { skip, timeout: 120_000 }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const attacker = await MdnsAttacker.start(lab, 2);
  const v = await startVictim({ serviceType: 'bye', browse: false, advertise: true, interfaces: ['eth0'], mdnsStats: true }, { lab, host: 1 });
  // probing (~0.75 s) and the two announcements, a second apart
  await sleep(4000);
  const before = await sent(v);
  const bye = response([goodbyePtr('_services._dns-sd._udp.local', '_bye._tcp.local')]);
  await attacker.send(Array.from({ length: 200 }, () => bye), 20, 100);
  await sleep(3000);
  const caused = (await sent(v)) - before;
  t.diagnostic(`packets sent after 200 goodbyes: ${caused}`);
  assert.ok(caused >= 1, 'the record wrongly withdrawn is still re-announced');
  // ~1 s of goodbyes + 3 s: at most one rescue per second per record, per family
  assert.ok(caused <= 2 * 6, `victim sent ${caused} re-announcements for 200 goodbyes`);
  await v.stop();
});
