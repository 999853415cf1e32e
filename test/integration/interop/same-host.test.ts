/**
 * Several responders on one host share UDP 5353 (RFC 6762 §15): peerlink processes beside
 * an Avahi daemon (and python-zeroconf) on the same host advertise and browse each other,
 * and another host sees all of them. Also the loopback-only mode: everything on `lo` in a
 * namespace that has nothing else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../harness/netns.js';
import { startAvahi } from '../../harness/avahi.js';
import { until, waitForJson } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';
import { zeroconfBrowse, zeroconfPublish, zeroconfReady, zeroconfRegistered, type ZeroconfBrowseEvent } from '../../harness/zeroconf.js';
import { DISCOVERY_MS, STARTUP_MS, oursAdvertise, oursBrowse, registered, waitAdded, withCapture } from './peers.js';
import { useLab } from './lab.js';

const skip = skipUnless('netns', 'avahi', 'zeroconf');
let lab: Lab | undefined;

const avahis = useLab(skip, { hosts: 2, tag: 'ish' }, (l) => {
  lab = l;
});

const T = { timeout: 300_000 };

test('several peerlink processes beside Avahi and python-zeroconf on one host see each other', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'zeroconf') || !lab) return;
  const type = '_plsame._tcp';
  const avahi = await startAvahi(lab, 1, { hostName: 'avahi-h1' });
  avahis.push(avahi);
  const sniffer = await lab.sniffMdns();
  // Everything below runs on h1, except the last browser on h2.
  const browseA = oursBrowse(lab, 1, type);
  const browseB = oursBrowse(lab, 1, type);
  const zc = zeroconfBrowse(lab, 1, type);
  await zeroconfReady(zc, STARTUP_MS);
  const one = oursAdvertise(lab, 1, 'Ours One', type, 4401, ['n=1'], { host: 'ours-one' });
  const two = oursAdvertise(lab, 1, 'Ours Two', type, 4402, ['n=2'], { host: 'ours-two' });
  const apub = avahi.publish('Avahi Local', type, 4403, ['n=3']);
  const zpub = zeroconfPublish(lab, 1, 'Zeroconf Local', type, 4404, ['n=4'], { server: 'zc-h1.local.', addresses: [lab.host(1).ipv4 ?? ''] });
  assert.equal(await registered(one), 'Ours One');
  assert.equal(await registered(two), 'Ours Two');
  await avahi.published(apub, STARTUP_MS);
  await zeroconfRegistered(zpub, STARTUP_MS);
  const remote = oursBrowse(lab, 2, type);

  const everyone = [
    ['Ours One', 4401],
    ['Ours Two', 4402],
    ['Avahi Local', 4403],
    ['Zeroconf Local', 4404],
  ] as const;
  for (const [browser, label] of [
    [browseA, 'peerlink browser A on h1'],
    [browseB, 'peerlink browser B on h1'],
    [remote, 'peerlink browser on h2'],
  ] as const) {
    for (const [name, port] of everyone) {
      const e = await withCapture(sniffer, type, waitAdded(browser, name, DISCOVERY_MS));
      assert.equal(e.port, port, `${label}: port of ${name}`);
    }
  }
  for (const [name, port] of everyone) {
    const e = await waitForJson<ZeroconfBrowseEvent>(zc, (x) => x.event === 'added' && x.name === name, DISCOVERY_MS, { what: `zeroconf on h1 sees ${name}` });
    assert.equal(e.port, port);
  }
  // Avahi on the same host resolves both of ours
  const lines = await until(
    async () => {
      const l = await avahi.browseOnce(type);
      const names = new Set(l.filter((x) => x.kind === '=').map((x) => x.name));
      return everyone.every(([n]) => names.has(n)) ? l : undefined;
    },
    DISCOVERY_MS,
    'Avahi on h1 to resolve every service',
    500,
  );
  const ourOne = lines.find((x) => x.kind === '=' && x.name === 'Ours One' && x.protocol === 'IPv4');
  assert.equal(ourOne?.port, 4401);
  assert.equal(ourOne?.host, 'ours-one.local');
});

test('loopback-only namespace: peerlink, Avahi and python-zeroconf find each other on lo', { skip, ...T }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'zeroconf') || !lab) return;
  const ns = await lab.addLoopbackNamespace();
  const type = '_pllo._tcp';
  const lo = { interfaces: ['lo'] };
  const browse = oursBrowse(lab, ns, type, lo);
  const a = oursAdvertise(lab, ns, 'Lo One', type, 4501, ['n=1'], { ...lo, host: 'lo-one' });
  const b = oursAdvertise(lab, ns, 'Lo Two', type, 4502, ['n=2'], { ...lo, host: 'lo-two' });
  assert.equal(await registered(a), 'Lo One');
  assert.equal(await registered(b), 'Lo Two');
  const one = await waitAdded(browse, 'Lo One', DISCOVERY_MS);
  await waitAdded(browse, 'Lo Two', DISCOVERY_MS);
  assert.equal(one.interface, 'lo');
  assert.ok(one.addresses?.includes('127.0.0.1'), `addresses ${JSON.stringify(one.addresses)}`);

  // python-zeroconf on lo (its sockets bound to 127.0.0.1) sees ours and is seen by us
  const zc = zeroconfBrowse(lab, ns, type, { ipVersion: 'v4', interfaces: ['127.0.0.1'] });
  await zeroconfReady(zc, STARTUP_MS);
  await waitForJson<ZeroconfBrowseEvent>(zc, (e) => e.event === 'added' && e.name === 'Lo One' && e.port === 4501, DISCOVERY_MS, { what: 'zeroconf on lo sees Lo One' });
  const zpub = zeroconfPublish(lab, ns, 'Lo Zeroconf', type, 4503, ['n=3'], { server: 'zc-lo.local.', addresses: ['127.0.0.1'], ipVersion: 'v4', interfaces: ['127.0.0.1'] });
  await zeroconfRegistered(zpub, STARTUP_MS);
  await waitAdded(browse, 'Lo Zeroconf', DISCOVERY_MS);

  // Avahi in the same namespace (it uses lo when lo is all there is)
  const avahi = await startAvahi(lab, ns, { hostName: 'avahi-lo', serverConf: ['use-ipv6=no'] });
  avahis.push(avahi);
  const apub = avahi.publish('Lo Avahi', type, 4504, ['n=4']);
  await avahi.published(apub, STARTUP_MS);
  await waitAdded(browse, 'Lo Avahi', DISCOVERY_MS);
  await until(
    async () => (await avahi.browseOnce(type)).find((l) => l.kind === '=' && l.name === 'Lo One' && l.port === 4501),
    DISCOVERY_MS,
    'Avahi on lo to resolve Lo One',
    500,
  );
});
