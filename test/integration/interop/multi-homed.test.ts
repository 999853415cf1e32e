/**
 * Two hosts joined by two links (eth0 on the bridge, 10.77.0.0/24; eth1 a direct veth,
 * 10.55.0.0/24): answers on each interface carry that interface's addresses, and our
 * browser reports one `added` per interface with the addresses seen there — checked
 * against Avahi, which is per-interface throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../harness/netns.js';
import { startAvahi, type Avahi } from '../../harness/avahi.js';
import { until } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { DISCOVERY_MS, STARTUP_MS, oursAdvertise, oursBrowse, registered, waitAdded, type BrowseLine } from './peers.js';
import { useLab, addDirectLink } from './lab.js';

const skip = skipUnless('netns', 'avahi');
let lab: Lab | undefined;

const avahis = useLab(skip, { hosts: 2, tag: 'imh' }, async (l, started) => {
  lab = l;
  await addDirectLink(l, l.host(1), l.host(2));
  started.push(await startAvahi(l, 1, { hostName: 'avahi-h1', serverConf: ['use-ipv6=no'] }));
  started.push(await startAvahi(l, 2, { hostName: 'avahi-h2', serverConf: ['use-ipv6=no'] }));
});

const T = { timeout: 300_000 };

test('Avahi sees our service on both links, each with that link\'s address', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab) return;
  const avahi = avahis[1] as Avahi;
  const type = '_plmh1._tcp';
  const ours = oursAdvertise(lab, 1, 'Ours Twice', type, 4801, ['v=1'], { host: 'ours-h1' });
  await registered(ours);
  const lines = await until(
    async () => {
      const l = (await avahi.browseOnce(type)).filter((x) => x.kind === '=' && x.name === 'Ours Twice' && x.protocol === 'IPv4');
      return l.some((x) => x.interface === 'eth0') && l.some((x) => x.interface === 'eth1') ? l : undefined;
    },
    DISCOVERY_MS,
    'Avahi to resolve Ours Twice on eth0 and eth1',
    500,
  );
  for (const l of lines) {
    const expected = l.interface === 'eth0' ? '10.77.0.1' : '10.55.0.1';
    assert.equal(l.address, expected, `address on ${l.interface}: ${JSON.stringify(l)}`);
    assert.equal(l.port, 4801);
  }
});

test('we see an Avahi service once per link, each with that link\'s addresses only', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi') || !lab) return;
  const avahi = avahis[0] as Avahi;
  const type = '_plmh2._tcp';
  const browse = oursBrowse(lab, 2, type);
  const pub = avahi.publish('Avahi Twice', type, 4802, ['v=2']);
  await avahi.published(pub);
  await waitAdded(browse, 'Avahi Twice', STARTUP_MS, (e) => e.interface === 'eth0');
  await waitAdded(browse, 'Avahi Twice', STARTUP_MS, (e) => e.interface === 'eth1');
  // (Avahi also publishes AAAA records over IPv4 mDNS: fd77::1 belongs to eth0 only)
  const v4 = (e: BrowseLine): string[] => (e.addresses ?? []).filter((a) => !a.includes(':'));
  // `added` comes with the first address seen; Avahi may send its AAAA before its A on a link,
  // and the A then arrives as `changed`: judge each link by its latest state once it has an IPv4
  const latest = (iface: string): BrowseLine | undefined =>
    browse.json<BrowseLine>().filter((e) => e.name === 'Avahi Twice' && e.interface === iface && e.event !== 'removed').at(-1);
  const [on0, on1] = await until(() => {
    const l0 = latest('eth0');
    const l1 = latest('eth1');
    return l0 && l1 && v4(l0).length > 0 && v4(l1).length > 0 ? ([l0, l1] as const) : undefined;
  }, DISCOVERY_MS, 'an IPv4 address for Avahi Twice on eth0 and eth1').catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${browse.tail()}`, { cause: err });
  });
  assert.deepEqual(v4(on0), ['10.77.0.1'], `eth0: ${JSON.stringify(on0)}`);
  assert.deepEqual(v4(on1), ['10.55.0.1'], `eth1: ${JSON.stringify(on1)}`);
  assert.ok(!(on1.addresses ?? []).includes('fd77::1'), `eth0's ULA must not be reported on eth1: ${JSON.stringify(on1)}`);
  for (const e of [on0, on1]) {
    assert.equal(e.host, 'avahi-h1.local');
    assert.equal(e.port, 4802);
    assert.deepEqual(e.txt, { v: '2' });
  }
  const added = browse.json<BrowseLine>().filter((e) => e.event === 'added' && e.name === 'Avahi Twice');
  assert.equal(added.length, 2, 'exactly one added per interface');
});

test('our own browser sees our service once per link, with that link\'s addresses', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const type = '_plmh3._tcp';
  const browse = oursBrowse(lab, 2, type);
  const ours = oursAdvertise(lab, 1, 'Ours Both', type, 4803, [], { host: 'ours-both' });
  await registered(ours);
  const on0 = await waitAdded(browse, 'Ours Both', DISCOVERY_MS, (e) => e.interface === 'eth0');
  const on1 = await waitAdded(browse, 'Ours Both', DISCOVERY_MS, (e) => e.interface === 'eth1');
  const v4 = (e: BrowseLine): string[] => (e.addresses ?? []).filter((a) => !a.includes(':'));
  assert.deepEqual(v4(on0), ['10.77.0.1']);
  assert.deepEqual(v4(on1), ['10.55.0.1']);
  assert.ok((on1.addresses ?? []).every((a) => !a.startsWith('fe80:') || a.endsWith('%eth1')), `link-local zone on eth1: ${JSON.stringify(on1.addresses)}`);
});
