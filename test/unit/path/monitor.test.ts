import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computePath, diffInterfaces, PathMonitor } from '../../../src/path/monitor.js';
import { interfacesSatisfying, constraintViolation, isExpensiveInterface } from '../../../src/path/constraints.js';
import type { InterfaceType, NetworkInterface } from '../../../src/path/interfaces.js';

function iface(name: string, index: number, type: InterfaceType, opts: { up?: boolean; running?: boolean; addrs?: string[] } = {}): NetworkInterface {
  const loopback = type === 'loopback';
  return {
    name,
    index,
    type,
    mtu: 1500,
    flags: { up: opts.up ?? true, running: opts.running ?? true, broadcast: !loopback, multicast: !loopback, loopback, pointToPoint: false },
    addresses: (opts.addrs ?? [`10.0.${index}.1`]).map((address) => ({ family: address.includes(':') ? ('IPv6' as const) : ('IPv4' as const), address, netmask: '255.255.255.0', prefixLength: 24, scope: 'global' as const })),
  };
}

const lo = iface('lo', 1, 'loopback', { addrs: ['127.0.0.1'] });
const eth = iface('eth0', 2, 'wiredEthernet');
const wlan = iface('wlan0', 3, 'wifi');
const wwan = iface('wwan0', 4, 'cellular');

test('constraints: required / prohibited interfaces and types, expensive, constrained', () => {
  const all = [lo, eth, wlan, wwan];
  assert.deepEqual(interfacesSatisfying({ requiredInterface: 'wlan0' }, all).map((i) => i.name), ['wlan0']);
  assert.deepEqual(interfacesSatisfying({ requiredInterfaceType: 'wifi' }, all).map((i) => i.name), ['wlan0']);
  assert.deepEqual(interfacesSatisfying({ prohibitedInterfaces: ['eth0'] }, all).map((i) => i.name), ['lo', 'wlan0', 'wwan0']);
  assert.deepEqual(interfacesSatisfying({ prohibitedInterfaceTypes: ['wifi', 'loopback'] }, all).map((i) => i.name), ['eth0', 'wwan0']);
  assert.deepEqual(interfacesSatisfying({ prohibitExpensivePaths: true }, all).map((i) => i.name), ['lo', 'eth0', 'wlan0']);
  assert.deepEqual(interfacesSatisfying({ prohibitExpensivePaths: true }, all, { expensive: ['wlan0'] }).map((i) => i.name), ['lo', 'eth0']);
  assert.deepEqual(interfacesSatisfying({ prohibitConstrainedPaths: true }, all, { constrained: (i) => i.name === 'eth0' }).map((i) => i.name), ['lo', 'wlan0', 'wwan0']);
  assert.equal(constraintViolation({ requiredInterface: 'eth9' }, eth), 'not the required interface eth9');
  assert.ok(isExpensiveInterface(wwan));
  assert.ok(!isExpensiveInterface(wlan));
});

test('computePath: status, preference order, loopback only when asked, costs', () => {
  const p = computePath([lo, wwan, wlan, eth]);
  assert.equal(p.status, 'satisfied');
  assert.deepEqual(p.availableInterfaces.map((i) => i.name), ['eth0', 'wlan0', 'wwan0']);
  assert.ok(p.usesInterfaceType('wifi'));
  assert.ok(!p.usesInterfaceType('loopback'));
  assert.equal(p.isExpensive, false);
  assert.ok(p.supportsIPv4 && !p.supportsIPv6);

  const cell = computePath([lo, wwan]);
  assert.equal(cell.isExpensive, true);
  assert.equal(computePath([lo, wwan], { prohibitExpensivePaths: true }).status, 'unsatisfied');
  assert.equal(computePath([lo, eth], {}, { constrained: ['eth0'] }).isConstrained, true);

  assert.equal(computePath([lo]).status, 'unsatisfied');
  assert.deepEqual(computePath([lo], { requiredInterface: 'lo' }).availableInterfaces.map((i) => i.name), ['lo']);
  assert.deepEqual(computePath([lo, eth], { requiredInterfaceType: 'loopback' }).availableInterfaces.map((i) => i.name), ['lo']);

  const noCarrier = iface('eth0', 2, 'wiredEthernet', { running: false });
  assert.equal(computePath([lo, noCarrier]).status, 'requiresConnection');
  const down = iface('eth0', 2, 'wiredEthernet', { up: false, running: false });
  const d = computePath([lo, down]);
  assert.equal(d.status, 'unsatisfied');
  assert.ok(d.unsatisfiedReason);
});

test('diffInterfaces: added, removed, up, down, addresses, changed', () => {
  const before = [lo, eth, wlan];
  const ethDown = iface('eth0', 2, 'wiredEthernet', { up: false, running: false, addrs: [] });
  const wlan2 = iface('wlan0', 3, 'wifi', { addrs: ['10.0.3.1', 'fe80::1'] });
  const changes = diffInterfaces(before, [lo, ethDown, wlan2, wwan]);
  const kinds = changes.map((c) => `${c.kind}:${c.interface.name}`).sort();
  assert.deepEqual(kinds, ['added:wwan0', 'addresses:eth0', 'addresses:wlan0', 'down:eth0']);
  const w = changes.find((c) => c.kind === 'addresses' && c.interface.name === 'wlan0');
  assert.deepEqual(w?.addedAddresses?.map((a) => a.address), ['fe80::1']);
  assert.deepEqual(diffInterfaces([lo, eth], [lo]).map((c) => c.kind), ['removed']);
  const mtu = { ...eth, mtu: 9000 };
  assert.deepEqual(diffInterfaces([eth], [mtu]).map((c) => c.kind), ['changed']);
  assert.deepEqual(diffInterfaces([eth], [eth]), []);
});

test('PathMonitor with an injected interface list: refresh emits change and path', async () => {
  let current: NetworkInterface[] = [lo];
  const m = new PathMonitor({ detection: 'poll', pollIntervalMs: 60_000, list: () => current });
  assert.equal(m.status, 'unsatisfied');
  const paths: string[] = [];
  const changes: string[] = [];
  m.on('path', (p) => paths.push(p.status));
  m.on('change', (c) => changes.push(`${c.kind}:${c.interface.name}`));
  await m.start();
  assert.equal(m.detectionMode, 'poll');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(paths, ['unsatisfied']); // the initial path
  current = [lo, eth];
  m.refresh();
  assert.deepEqual(changes, ['added:eth0']);
  assert.deepEqual(paths, ['unsatisfied', 'satisfied']);
  assert.deepEqual(m.availableInterfaces.map((i) => i.name), ['eth0']);
  assert.ok(m.usesInterfaceType('wiredEthernet'));
  m.refresh(); // nothing changed: no events
  assert.equal(paths.length, 2);
  await m.cancel();
  current = [lo];
  m.refresh();
  assert.equal(paths.length, 2, 'no events after cancel');
  await assert.rejects(m.start(), /cancelled/);
});

test('PathMonitor.paths() yields the current path first and ends on abort', async () => {
  const m = new PathMonitor({ detection: 'poll', list: () => [lo, eth] });
  await m.start();
  const ac = new AbortController();
  const seen: string[] = [];
  for await (const p of m.paths(ac.signal)) {
    seen.push(p.status);
    ac.abort();
  }
  assert.deepEqual(seen, ['satisfied']);
  await m.cancel();
});

test('PathMonitor with netlink (or its fallback) starts and cancels without holding the process', async () => {
  const m = new PathMonitor();
  await m.start();
  assert.ok(m.detectionMode === 'netlink' || m.detectionMode === 'poll');
  await m.cancel();
});

test('netlink monitors share one worker: start/cancel in any order, restart after all cancelled', async () => {
  const a = new PathMonitor();
  const b = new PathMonitor();
  await Promise.all([a.start(), b.start()]);
  const mode = a.detectionMode;
  assert.ok(mode === 'netlink' || mode === 'poll');
  assert.equal(b.detectionMode, mode);
  const c = new PathMonitor();
  const starting = c.start();
  await a.cancel();
  await starting;
  await b.cancel();
  assert.equal(c.detectionMode, mode);
  await c.cancel();
  const d = new PathMonitor();
  await d.start();
  assert.equal(d.detectionMode, mode);
  await d.cancel();
});

test('PathMonitor.paths() ends when the monitor is cancelled', async () => {
  const m = new PathMonitor({ detection: 'poll', list: () => [lo, eth] });
  await m.start();
  const seen: string[] = [];
  const done = (async () => {
    for await (const p of m.paths()) seen.push(p.status);
  })();
  await new Promise((r) => setImmediate(r));
  await m.cancel();
  await done;
  assert.deepEqual(seen, ['satisfied']);
});
