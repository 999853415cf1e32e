/**
 * ours <-> ours over real sockets, between network-namespace hosts on one bridge (and on
 * lo in a loopback-only namespace), through the `peerlink advertise / browse` CLI contract.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLab, type Lab } from '../../harness/netns.js';
import { killAllTracked, run, sleep, until, waitForJson, waitForLine, type TrackedProcess } from '../../harness/proc.js';
import { requires, skipUnless, missing } from '../../harness/prereq.js';
import { PEERLINK_BIN, fixtureScript } from '../../harness/paths.js';

const FIXTURE = fixtureScript('advertise-update.js');
const skip = skipUnless('netns');
let lab: Lab | undefined;

before(async () => {
  if (!skip) lab = await createLab({ hosts: 4, hostOptions: [{}, {}, {}, { ipv6Only: true }], tag: 'dnssd' });
});
after(async () => {
  await killAllTracked();
  await lab?.teardown();
});

interface Added {
  event: string;
  name: string;
  type: string;
  domain: string;
  host: string;
  port: number;
  addresses: string[];
  txt: Record<string, string | null>;
  interface: string;
  binaryTxt?: string[];
}

function peerlink(h: number | string, args: string[]): TrackedProcess {
  return (lab as Lab).spawnNode(h, PEERLINK_BIN, args);
}

test('advertise on one host, browse on another: resolved instance with the CLI JSON shape', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const adv = peerlink(1, ['advertise', 'Living Room', '_plone._tcp', '8080', 'a=1', 'flag', 'empty=', '--json', '--host', 'h1']);
  const reg = await waitForJson(adv, (e) => e.event === 'registered', 30_000);
  assert.deepEqual(reg, { event: 'registered', name: 'Living Room', type: '_plone._tcp', port: 8080 });
  const browse = peerlink(2, ['browse', '_plone._tcp', '--json', '--timeout', '60']);
  const added = await waitForJson<Added>(browse, (e) => e.event === 'added', 30_000);
  const ll = await lab.linkLocal(1);
  assert.deepEqual(added, {
    event: 'added',
    name: 'Living Room',
    type: '_plone._tcp',
    domain: 'local',
    host: 'h1.local',
    port: 8080,
    addresses: ['10.77.0.1', 'fd77::1', `${ll}%eth0`].sort((x, y) => (x.includes(':') === y.includes(':') ? x.localeCompare(y) : x.includes(':') ? 1 : -1)),
    txt: { a: '1', flag: null, empty: '' },
    interface: 'eth0',
  });
  // SIGINT: goodbye, exit 0, removal seen within 2 s
  const stopAt = Date.now();
  adv.signal('SIGINT');
  const removed = await waitForJson(browse, (e) => e.event === 'removed', 10_000);
  assert.ok(Date.now() - stopAt < 2500, `removed after ${Date.now() - stopAt} ms`);
  assert.deepEqual(removed, { event: 'removed', name: 'Living Room', type: '_plone._tcp', domain: 'local', interface: 'eth0' });
  assert.equal((await adv.exited).code, 0);
  browse.signal('SIGTERM');
  assert.equal((await browse.exited).code, 0);
});

test('browse --timeout exits 0; unknown interface is a usage error (exit 2)', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const b = peerlink(2, ['browse', '_nothing._tcp', '--json', '--timeout', '1']);
  assert.equal((await b.exited).code, 0);
  const bad = peerlink(2, ['browse', '_nothing._tcp', '--interface', 'nope0']);
  assert.equal((await bad.exited).code, 2);
  assert.match(bad.stderrLines.join('\n'), /ERR_UNKNOWN_INTERFACE/);
  const badType = peerlink(2, ['advertise', 'x', 'nottype', '1']);
  assert.equal((await badType.exited).code, 2);
});

test('name conflict between two hosts: exactly one renames, a third host sees both', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const browse = peerlink(3, ['browse', '_plconf._tcp', '--json', '--timeout', '90']);
  // default host names: every namespace has the same one, so the host name conflicts too
  const a = peerlink(1, ['advertise', 'Twin', '_plconf._tcp', '7001', '--json']);
  const b = peerlink(2, ['advertise', 'Twin', '_plconf._tcp', '7002', '--json']);
  const finalA = await waitForJson<{ event: string; name: string }>(a, (e) => e.event === 'registered', 40_000);
  const finalB = await waitForJson<{ event: string; name: string }>(b, (e) => e.event === 'registered', 40_000);
  assert.deepEqual(new Set([finalA.name, finalB.name]), new Set(['Twin', 'Twin (2)']));
  const renamed = [...a.json(), ...b.json()].filter((e) => e.event === 'renamed');
  assert.equal(renamed.length, 1, JSON.stringify(renamed));
  assert.deepEqual(renamed[0], { event: 'renamed', from: 'Twin', name: 'Twin (2)' });
  const seen = new Map<string, Added>();
  await waitForJson<Added>(browse, (e) => {
    if (e.event === 'added') seen.set(e.name, e);
    return seen.size === 2;
  }, 40_000);
  const ports = new Map([...seen.values()].map((s) => [s.name, s.port]));
  assert.equal(ports.get(finalA.name), 7001);
  assert.equal(ports.get(finalB.name), 7002);
  // the two hosts ended with different host names
  assert.notEqual(seen.get('Twin')?.host, seen.get('Twin (2)')?.host);
  await Promise.all([a.stop(), b.stop(), browse.stop()]);
});

test('TXT update is seen as `changed` by the other side', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const adv = lab.spawnNode(1, FIXTURE, ['Updater', '_plupd._tcp', '9000', 'v=1', '--host', 'h1upd'], { stdin: true });
  await waitForJson(adv, (e) => e.event === 'registered', 30_000);
  const browse = peerlink(2, ['browse', '_plupd._tcp', '--json', '--timeout', '60']);
  const added = await waitForJson<Added>(browse, (e) => e.event === 'added', 30_000);
  assert.deepEqual(added.txt, { v: '1' });
  adv.writeLine('update v=2 extra=yes');
  await waitForJson(adv, (e) => e.event === 'updated', 10_000);
  const changed = await waitForJson<Added>(browse, (e) => e.event === 'changed', 10_000);
  assert.deepEqual(changed.txt, { v: '2', extra: 'yes' });
  assert.equal(changed.port, 9000);
  await Promise.all([adv.stop(), browse.stop()]);
});

test('an IPv6-only host advertises and browses', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const adv = peerlink(4, ['advertise', 'Six', '_plsix._tcp', '6666', '--json', '--host', 'h4']);
  await waitForJson(adv, (e) => e.event === 'registered', 30_000);
  const browse = peerlink(1, ['browse', '_plsix._tcp', '--json', '--timeout', '60']);
  const added = await waitForJson<Added>(browse, (e) => e.event === 'added', 30_000);
  assert.equal(added.host, 'h4.local');
  assert.ok(added.addresses.length >= 2);
  assert.ok(added.addresses.every((a) => a.includes(':')), JSON.stringify(added.addresses));
  assert.ok(added.addresses.some((a) => a.startsWith('fe80:') && a.endsWith('%eth0')));
  // and the IPv6-only host sees an IPv4+IPv6 host's service
  const adv1 = peerlink(1, ['advertise', 'Dual', '_plsix._tcp', '6667', '--json', '--host', 'h1six']);
  await waitForJson(adv1, (e) => e.event === 'registered', 30_000);
  const browse4 = peerlink(4, ['browse', '_plsix._tcp', '--json', '--timeout', '60']);
  const dual = await waitForJson<Added>(browse4, (e) => e.event === 'added' && e.name === 'Dual', 30_000);
  assert.equal(dual.port, 6667);
  await Promise.all([adv.stop(), adv1.stop(), browse.stop(), browse4.stop()]);
});

test('several peerlink processes on one host see each other', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  // the sniffer says "ready" before its group memberships are active: start it first, and rely
  // on it only once it has captured this test's announcements
  const sniffer = await lab.sniffMdns();
  const a = peerlink(1, ['advertise', 'One', '_plmulti._tcp', '1001', '--json']);
  const b = peerlink(1, ['advertise', 'Two', '_plmulti._tcp', '1002', '--json']);
  await Promise.all([waitForJson(a, (e) => e.event === 'registered', 30_000), waitForJson(b, (e) => e.event === 'registered', 30_000)]);
  // same host, same addresses: the host name is shared without a conflict
  assert.equal([...a.json(), ...b.json()].filter((e) => e.event === 'renamed').length, 0);
  const seen = new Set<string>();
  const local = peerlink(1, ['browse', '_plmulti._tcp', '--json', '--timeout', '60']);
  await waitForJson<Added>(local, (e) => {
    if (e.event === 'added') seen.add(e.name);
    return seen.size === 2;
  }, 30_000);
  const remote = new Set<string>();
  const far = peerlink(2, ['browse', '_plmulti._tcp', '--json', '--timeout', '60']);
  await waitForJson<Added>(far, (e) => {
    if (e.event === 'added') remote.add(e.name);
    return remote.size === 2;
  }, 30_000);
  // one of them stops: the others on that host and the remote browser see it go
  await until(() => sniffer.stdoutLines.some((l) => l.includes(' 10.77.0.1:5353 R ') && l.includes('_plmulti._tcp.local/PTR/4500')), 30_000, 'the sniffer capturing our announcements');
  const mark = sniffer.stdoutLines.length;
  b.signal('SIGINT');
  await waitForJson(local, (e) => e.event === 'removed' && e.name === 'Two', 10_000);
  await waitForJson(far, (e) => e.event === 'removed' && e.name === 'Two', 10_000);
  assert.equal((await b.exited).code, 0);
  // The host's addresses and the `_services._dns-sd._udp` PTR are One's too: Two, having heard
  // One publish them (its announcements, its answers to the browsers), leaves them out of its
  // goodbyes (src/dnssd/sibling-records.ts), so no browser drops One. A flicker would show ~1 s
  // after Two's goodbye, like Two's removal: 3 s more is ample margin.
  await sleep(3000);
  for (const [where, proc] of [['local', local], ['far', far]] as const) {
    const wrong = proc.json().filter((e) => e.event === 'removed' && e.name === 'One');
    assert.deepEqual(wrong, [], `${where} browser dropped One: ${proc.tail()}`);
    assert.equal(proc.json().filter((e) => e.event === 'added' && e.name === 'One').length, 1, `${where}: One added exactly once`);
  }
  // on the wire: host 1 said goodbye to Two's own records, and not to the shared ones
  const lines = sniffer.stdoutLines.slice(mark).map((l) => {
    const [ms, src] = l.split(' ');
    return { ms: Number(ms), src: src ?? '', l };
  }).filter((x) => x.src.startsWith('10.77.0.1:'));
  const wire = lines.map((x) => x.l).join('\n');
  assert.ok(lines.some((x) => /Two\._plmulti\._tcp\.local\/SRV\/0/.test(x.l)), `goodbye for Two's SRV:\n${wire}`);
  for (const rec of ['_services._dns-sd._udp.local/PTR', '.local/A']) {
    assert.ok(!lines.some((x) => x.l.includes(`${rec}/0`)), `a goodbye for ${rec}, which One still publishes:\n${wire}`);
  }
  await Promise.all([a.stop(), local.stop(), far.stop(), sniffer.stop()]);
});

test('loopback-only mode: advertise and browse on lo in a lo-only namespace', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const ns = await lab.addLoopbackNamespace('dnssdlo');
  const adv = peerlink(ns, ['advertise', 'Local', '_pllo._tcp', '5000', 'k=v', '--interface', 'lo', '--json']);
  await waitForJson(adv, (e) => e.event === 'registered', 30_000);
  const browse = peerlink(ns, ['browse', '_pllo._tcp', '--interface', 'lo', '--json', '--timeout', '60']);
  const added = await waitForJson<Added>(browse, (e) => e.event === 'added', 30_000);
  assert.equal(added.interface, 'lo');
  assert.ok(added.addresses.includes('127.0.0.1'), JSON.stringify(added.addresses));
  assert.deepEqual(added.txt, { k: 'v' });
  // without --interface lo, lo is not used: nothing is found (and nothing is sent)
  const none = peerlink(ns, ['browse', '_pllo._tcp', '--json', '--timeout', '3']);
  // `browse --timeout` ends normally with exit 0 (docs/cli.md), found or not
  assert.equal((await none.exited).code, 0, none.tail());
  assert.equal(none.json().filter((e) => e.event === 'added').length, 0);
  await Promise.all([adv.stop(), browse.stop()]);
});

test('legacy unicast query (dig -p 5353) gets a unicast answer with TTL <= 10', { skip: skip || (missing('dig') && !process.env.CI ? 'dig is not installed' : false) }, async (t) => {
  if (!requires(t, 'netns', 'dig') || !lab) return;
  const adv = peerlink(1, ['advertise', 'Digme', '_pldig._tcp', '5300', '--json', '--host', 'h1dig']);
  await waitForJson(adv, (e) => e.event === 'registered', 30_000);
  const host = lab.host(1);
  const r = await run('ip', ['netns', 'exec', lab.host(2).ns, 'dig', '+time=3', '+tries=2', '-p', '5353', `@${host.ipv4 as string}`, 'h1dig.local', 'A'], { check: false, timeoutMs: 30_000 });
  assert.match(r.stdout, /status: NOERROR/);
  const m = /^h1dig\.local\.\s+(\d+)\s+IN\s+A\s+10\.77\.0\.1$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  assert.ok(Number(m[1]) <= 10);
  await adv.stop();
  await sleep(100);
});

test('link down on the browser: removed; link up: found again; a new address: changed', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const adv = peerlink(1, ['advertise', 'Flappy', '_plflap._tcp', '8080', '--json', '--host', 'h1flap']);
  await waitForJson(adv, (e) => e.event === 'registered', 30_000);
  const browse = peerlink(2, ['browse', '_plflap._tcp', '--json', '--timeout', '120']);
  await waitForJson(browse, (e) => e.event === 'added', 30_000);
  await lab.linkDown(2);
  await waitForJson(browse, (e) => e.event === 'removed', 15_000);
  const since = browse.stdoutLines.length;
  await lab.linkUp(2);
  await waitForJson(browse, (e) => e.event === 'added', 30_000, { since });
  await lab.ip(1, ['addr', 'add', '10.77.0.101/24', 'dev', 'eth0']);
  const changed = await waitForJson<Added>(browse, (e) => e.event === 'changed' && (e.addresses as string[]).includes('10.77.0.101'), 30_000);
  assert.ok(changed.addresses.includes('10.77.0.1'));
  await lab.ip(1, ['addr', 'del', '10.77.0.101/24', 'dev', 'eth0']);
  await waitForJson<Added>(browse, (e) => e.event === 'changed' && !(e.addresses as string[]).includes('10.77.0.101'), 30_000);
  await Promise.all([adv.stop(), browse.stop()]);
});

test('an interface that appears after start is adopted (default selection only)', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  const adv = peerlink(1, ['advertise', 'Grows', '_plgrow._tcp', '4605', '--json', '--host', 'h1grow']);
  const pinned = peerlink(1, ['advertise', 'Pinned', '_plgrow._tcp', '4606', '--json', '--host', 'h1pin', '--interface', 'eth0']);
  await Promise.all([waitForJson(adv, (e) => e.event === 'registered', 30_000), waitForJson(pinned, (e) => e.event === 'registered', 30_000)]);
  const [h1, h3] = [lab.host(1), lab.host(3)];
  await lab.ip(h1, ['link', 'add', 'eth9', 'type', 'veth', 'peer', 'name', 'eth9', 'netns', h3.ns]);
  try {
    await lab.ip(h1, ['addr', 'add', '10.56.0.1/24', 'dev', 'eth9']);
    await lab.ip(h3, ['addr', 'add', '10.56.0.3/24', 'dev', 'eth9']);
    await lab.ip(h1, ['link', 'set', 'eth9', 'up']);
    await lab.ip(h3, ['link', 'set', 'eth9', 'up']);
    const browse = peerlink(3, ['browse', '_plgrow._tcp', '--interface', 'eth9', '--json', '--timeout', '20']);
    const added = await waitForJson<Added>(browse, (e) => e.event === 'added' && e.name === 'Grows', 30_000);
    assert.equal(added.interface, 'eth9');
    assert.ok(added.addresses.includes('10.56.0.1'), JSON.stringify(added.addresses));
    await browse.exited;
    // the advertiser that named its interface did not spread to the new one
    assert.equal(browse.json().filter((e) => e.name === 'Pinned').length, 0);
  } finally {
    await lab.ip(h1, ['link', 'del', 'eth9']).catch(() => undefined);
  }
  await Promise.all([adv.stop(), pinned.stop()]);
});

test('with no usable interface at start, advertise waits and registers once one comes up', { skip }, async (t) => {
  if (!requires(t, 'netns') || !lab) return;
  await lab.linkDown(3);
  let adv: TrackedProcess;
  try {
    adv = peerlink(3, ['advertise', 'Patient', '_plwait._tcp', '4700', '--json', '--host', 'h3wait']);
    await waitForLine(adv, (l) => l.includes('waiting for one to come up'), 30_000, { stderr: true });
    assert.equal(adv.json().length, 0, 'not registered while there is no link');
  } finally {
    await lab.linkUp(3);
  }
  await waitForJson(adv, (e) => e.event === 'registered' && e.name === 'Patient', 30_000);
  const browse = peerlink(1, ['browse', '_plwait._tcp', '--json', '--timeout', '60']);
  const added = await waitForJson<Added>(browse, (e) => e.event === 'added', 30_000);
  assert.ok(added.addresses.includes('10.77.0.3'));
  await Promise.all([adv.stop(), browse.stop()]);
});
