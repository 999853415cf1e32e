/**
 * The test harness itself: hosts reach each other over the lab bridge (IPv4, IPv6 ULA and
 * link-local), IPv6-only hosts have no IPv4, the loopback-only namespace carries multicast,
 * Avahi and python-zeroconf start inside namespaces, and teardown leaves nothing behind.
 */
import { test, before, after } from 'node:test';
import { readdirSync } from 'node:fs';
import assert from 'node:assert/strict';
import { createLab, listNetns, netnsPids, sweepStaleLabs, type Lab } from '../../harness/netns.js';
import { startAvahi, parseAvahiBrowseLine } from '../../harness/avahi.js';
import { zeroconfBrowse, zeroconfPublish, zeroconfReady, zeroconfRegistered, type ZeroconfBrowseEvent } from '../../harness/zeroconf.js';
import { waitForJson, waitForLine, killAllTracked, spawnTracked } from '../../harness/proc.js';
import { requires, skipUnless } from '../../harness/prereq.js';

const skip = skipUnless('netns');
let lab: Lab | undefined;

before(async () => {
  if (skip) return;
  lab = await createLab({ hosts: 3, hostOptions: [{}, {}, { ipv6Only: true }], tag: 'hs' });
});

after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

test('hosts reach each other over IPv4, IPv6 ULA and link-local', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const [h1, h2, h3] = [lab.host(1), lab.host(2), lab.host(3)];
  assert.ok(h1.ipv4 && h2.ipv4 && h2.ipv6 && h3.ipv6);
  assert.ok(await lab.reach(h1, h2.ipv4), 'IPv4');
  assert.ok(await lab.reach(h1, h3.ipv6), 'IPv6 ULA');
  const ll = await lab.linkLocal(h2);
  assert.ok(await lab.reach(h1, `${ll}%eth0`), 'IPv6 link-local');
  assert.ok(!(await lab.reach(h1, '10.99.0.1', 1000)), 'nothing outside the lab');
  // The IPv6-only host has no IPv4 address at all.
  const addrs = await lab.ip(h3, ['-4', '-o', 'addr', 'show', 'dev', 'eth0']);
  assert.equal(addrs.stdout.trim(), '');
});

test('multicast crosses the bridge (node UDP sender/receiver in two hosts)', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const recvScript = `
    const s = require('dgram').createSocket({ type: 'udp4', reuseAddr: true });
    s.on('message', (m, r) => { console.log(JSON.stringify({ got: m.toString(), from: r.address })); process.exit(0); });
    s.bind(45353, () => { s.addMembership('239.77.0.1', '${lab.host(2).ipv4}'); console.log(JSON.stringify({ ready: true })); });
    setTimeout(() => process.exit(3), 20000);`;
  const recv = lab.spawn(2, process.execPath, ['-e', recvScript]);
  await waitForJson(recv, (o) => o.ready === true, 20_000);
  const sendScript = `
    const s = require('dgram').createSocket('udp4');
    s.bind(() => { s.setMulticastInterface('${lab.host(1).ipv4}'); let n = 0;
      const iv = setInterval(() => { s.send('hello', 45353, '239.77.0.1'); if (++n > 20) { clearInterval(iv); s.close(); } }, 200); });`;
  lab.spawn(1, process.execPath, ['-e', sendScript]);
  const got = await waitForJson<{ got: string; from: string }>(recv, (o) => typeof o.got === 'string', 20_000);
  assert.equal(got.got, 'hello');
  assert.equal(got.from, lab.host(1).ipv4);
});

test('link down/up is visible inside the host', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  await lab.linkDown(2);
  assert.ok(!(await lab.reach(1, lab.host(2).ipv4 ?? '', 1500)));
  const down = await lab.ip(2, ['-o', 'link', 'show', 'eth0']);
  assert.match(down.stdout, /state DOWN/);
  await lab.linkUp(2);
  assert.ok(await lab.reach(1, lab.host(2).ipv4 ?? ''));
});

test('loopback-only namespace carries IPv4 multicast on lo', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const ns = await lab.addLoopbackNamespace();
  const links = await lab.exec(ns, 'ip', ['-o', 'link']);
  assert.deepEqual(
    links.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(':')[1]?.trim()),
    ['lo'],
  );
  // IPv4 only: on this kernel an IPv6 datagram to ff02::fb on lo is counted as
  // Ip6OutNoRoutes even with the ff00::/8 route, so the loopback mode is IPv4.
  const script = `
    const dgram = require('dgram');
    const r = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    r.on('message', (m) => { console.log(JSON.stringify({ got: m.toString() })); process.exit(0); });
    r.bind(45354, () => { r.addMembership('224.0.0.251', '127.0.0.1');
      const s = dgram.createSocket('udp4');
      s.bind(() => { s.setMulticastInterface('127.0.0.1'); s.send('v4', 45354, '224.0.0.251'); });
    });
    setTimeout(() => process.exit(3), 10000);`;
  const p = lab.spawn(ns, process.execPath, ['-e', script]);
  const got = await waitForJson<{ got: string }>(p, (o) => o.got !== undefined, 15_000);
  assert.equal(got.got, 'v4');
});

test('Avahi starts inside a namespace and python-zeroconf sees its service', { skip }, async (t) => {
  if (!requires(t, 'netns', 'avahi', 'zeroconf') || !lab) return;
  const avahi = await startAvahi(lab, 1);
  const browser = zeroconfBrowse(lab, 2, '_plharness._tcp');
  await zeroconfReady(browser);
  const pub = avahi.publish('Harness Service', '_plharness._tcp', 4242, ['a=1', 'flag']);
  assert.equal(await avahi.published(pub), 'Harness Service');
  const seen = await waitForJson<ZeroconfBrowseEvent>(browser, (e) => e.event === 'added' && e.name === 'Harness Service', 20_000);
  assert.equal(seen.port, 4242);
  assert.equal(seen.txt?.a, '1');
  assert.equal(seen.server, `${avahi.hostName}.local.`);

  // and the reverse: Avahi sees a zeroconf publisher (on the IPv6-only host, over IPv6)
  const zpub = zeroconfPublish(lab, 3, 'From Zeroconf', '_plharness._tcp', 4343, ['b=2'], { server: 'zc-h3.local.' });
  assert.equal(await zeroconfRegistered(zpub), 'From Zeroconf');
  const watch = avahi.browse('_plharness._tcp');
  const line = parseAvahiBrowseLine(await waitForLine(watch, (l) => parseAvahiBrowseLine(l)?.kind === '=' && parseAvahiBrowseLine(l)?.name === 'From Zeroconf', 20_000));
  assert.deepEqual(line?.txt, ['b=2']);
  assert.equal(line?.port, 4343);
  assert.equal(line?.host, 'zc-h3.local');
  await zpub.stop();
  await waitForLine(watch, (l) => parseAvahiBrowseLine(l)?.kind === '-' && parseAvahiBrowseLine(l)?.name === 'From Zeroconf', 5_000);
  await avahi.stop();
});

test('teardown kills processes and deletes every namespace; the root namespace is untouched', { skip }, async (t) => {
  if (!requires(t, 'netns')) return;
  const rootLinks = (): string[] => readdirSync('/sys/class/net').sort();
  const rootBefore = rootLinks();
  const tmp = await createLab({ hosts: 2, tag: 'td' });
  assert.deepEqual(rootLinks(), rootBefore, 'no interface of the lab appears in the root namespace');
  const sleeper = tmp.spawn(1, 'sleep', ['300']);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(netnsPids(tmp.host(1).ns).length, 1);
  const names = tmp.namespaces;
  assert.equal(names.length, 3);
  assert.ok(names.every((n) => listNetns().includes(n)));
  await tmp.teardown();
  await sleeper.exited;
  assert.ok(names.every((n) => !listNetns().includes(n)), 'no namespace left');
  assert.ok(!listNetns().some((n) => n.startsWith(`${tmp.prefix}-`)));
  assert.deepEqual(rootLinks(), rootBefore);
});

test('avahi-browse -p lines parse (escapes, TXT, removal)', () => {
  const eq = parseAvahiBrowseLine('=;eth0;IPv4;Living\\032Room\\059x;_ex._tcp;local;h.local;10.0.0.1;80;"b=two words" "a=1"');
  assert.deepEqual(eq, {
    kind: '=',
    interface: 'eth0',
    protocol: 'IPv4',
    name: 'Living Room;x',
    type: '_ex._tcp',
    domain: 'local',
    host: 'h.local',
    address: '10.0.0.1',
    port: 80,
    txt: ['b=two words', 'a=1'],
  });
  assert.equal(parseAvahiBrowseLine('-;eth0;IPv6;Caf\\195\\169;_ex._tcp;local')?.name, 'Café');
  assert.equal(parseAvahiBrowseLine('garbage'), undefined);
});

test('a lab left behind by a killed test process is swept by the next createLab', { skip }, async (t) => {
  if (!requires(t, 'netns')) return;
  const harness = new URL('../../harness/netns.js', import.meta.url).href;
  const script = `
    const { createLab } = await import(${JSON.stringify(harness)});
    const lab = await createLab({ hosts: 1, tag: 'orphan' });
    lab.spawn(1, 'sleep', ['300']);
    console.log(JSON.stringify({ namespaces: lab.namespaces }));
    setInterval(() => {}, 1000);`;
  const orphanMaker = spawnTracked(process.execPath, ['--input-type=module', '-e', script]);
  const { namespaces } = await waitForJson<{ namespaces: string[] }>(orphanMaker, (o) => Array.isArray(o.namespaces), 30_000);
  orphanMaker.signal('SIGKILL'); // no after-hook, no exit hook: the namespaces stay
  await orphanMaker.exited;
  assert.ok(namespaces.every((n) => listNetns().includes(n)), 'left behind');
  sweepStaleLabs();
  assert.ok(namespaces.every((n) => !listNetns().includes(n)), `swept: ${namespaces.join(' ')}`);
});
