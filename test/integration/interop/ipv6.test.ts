/**
 * An IPv6-only host (no IPv4 address, no IPv4 multicast route) interoperates: Avahi and
 * python-zeroconf on other hosts see our service with IPv6 addresses, and we see theirs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../harness/netns.js';
import type { Avahi } from '../../harness/avahi.js';
import { until, waitForJson } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { zeroconfBrowse, zeroconfPublish, zeroconfReady, zeroconfRegistered, type ZeroconfBrowseEvent } from '../../harness/zeroconf.js';
import { DISCOVERY_MS, STARTUP_MS, oursAdvertise, oursBrowse, registered, txtSet, waitAdded } from './peers.js';
import { useLab, startAvahiH2 } from './lab.js';

const skip = skipUnless('netns', 'avahi', 'zeroconf');
let lab: Lab | undefined;
let avahi: Avahi | undefined;

// h1 is IPv6-only; h2 runs Avahi, h3 python-zeroconf (both dual-stack).
useLab(skip, { hosts: 3, hostOptions: [{ ipv6Only: true }], tag: 'iv6' }, async (l, avahis) => {
  lab = l;
  avahi = await startAvahiH2(l, avahis);
});

const T = { timeout: 300_000 };

test('our service on an IPv6-only host is seen by Avahi and python-zeroconf, with IPv6 addresses only', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'zeroconf') || !lab || !avahi) return;
  const type = '_plv6a._tcp';
  const zc = zeroconfBrowse(lab, 3, type);
  await zeroconfReady(zc, STARTUP_MS);
  const ours = oursAdvertise(lab, 1, 'Only Six', type, 4301, ['v=6'], { host: 'ours-v6' });
  assert.equal(await registered(ours), 'Only Six');

  const ll = await lab.linkLocal(1);
  const seen = await waitForJson<ZeroconfBrowseEvent>(zc, (e) => e.event === 'added' && e.name === 'Only Six', DISCOVERY_MS, { what: 'zeroconf added' });
  assert.equal(seen.port, 4301);
  assert.deepEqual(seen.txt, { v: '6' });
  const addrs = seen.addresses ?? [];
  assert.ok(addrs.length > 0 && addrs.every((a) => a.includes(':')), `only IPv6 addresses: ${JSON.stringify(addrs)}`);
  assert.ok(
    addrs.some((a) => a === lab?.host(1).ipv6 || a.startsWith(ll)),
    `h1's address among ${JSON.stringify(addrs)}`,
  );

  const line = await until(
    async () => (await avahi?.browseOnce(type))?.find((l) => l.kind === '=' && l.name === 'Only Six'),
    DISCOVERY_MS,
    'Avahi to resolve "Only Six"',
    500,
  );
  assert.equal(line.protocol, 'IPv6');
  assert.equal(line.port, 4301);
  assert.deepEqual(txtSet(line.txt), ['v=6']);
  assert.ok(line.address === lab.host(1).ipv6 || line.address?.startsWith('fe80:'), `address ${line.address}`);
  await ours.stop();
});

test('an IPv6-only host browses Avahi and python-zeroconf services', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'zeroconf') || !lab || !avahi) return;
  const type = '_plv6b._tcp';
  const browse = oursBrowse(lab, 1, type);
  const apub = avahi.publish('Avahi Dual', type, 4302, ['from=avahi']);
  await avahi.published(apub);
  const zpub = zeroconfPublish(lab, 3, 'Zeroconf Dual', type, 4303, ['from=zc'], {
    server: 'zc-h3.local.',
    addresses: [lab.host(3).ipv4 ?? '', lab.host(3).ipv6 ?? ''],
  });
  await zeroconfRegistered(zpub, STARTUP_MS);
  const a = await waitAdded(browse, 'Avahi Dual', STARTUP_MS);
  const z = await waitAdded(browse, 'Zeroconf Dual', STARTUP_MS);
  assert.equal(a.txt?.from, 'avahi');
  assert.equal(z.txt?.from, 'zc');
  assert.equal(a.port, 4302);
  assert.equal(z.port, 4303);
  // reachable addresses for an IPv6-only host: the peers' IPv6 ones must be there
  const ll2 = await lab.linkLocal(2);
  assert.ok(
    a.addresses?.some((x) => x === lab?.host(2).ipv6 || x === `${ll2}%eth0`),
    `Avahi host's IPv6 address in ${JSON.stringify(a.addresses)}`,
  );
  assert.ok(z.addresses?.includes(lab.host(3).ipv6 ?? ''), `zeroconf host's IPv6 address in ${JSON.stringify(z.addresses)}`);
});
