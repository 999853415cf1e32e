import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listInterfaces, selectInterfaces, inSubnet, interfaceForSource, expandIPv6, ipv6Scope } from '../../../src/path/interfaces.js';
import { isPeerlinkError } from '../../../src/errors.js';

test('listInterfaces finds loopback with its type, flags and addresses', () => {
  const all = listInterfaces();
  const lo = all.find((i) => i.flags.loopback);
  assert.ok(lo, 'a loopback interface exists');
  assert.equal(lo.type, 'loopback');
  assert.ok(lo.flags.up);
  assert.ok(lo.addresses.some((a) => a.address === '127.0.0.1' && a.prefixLength === 8 && a.scope === 'host'));
  assert.ok(lo.index > 0);
});

test('selectInterfaces: default excludes loopback; unknown name is ERR_UNKNOWN_INTERFACE', () => {
  assert.ok(selectInterfaces().every((i) => !i.flags.loopback && i.flags.up && i.flags.multicast));
  const lo = listInterfaces().find((i) => i.flags.loopback)!;
  assert.deepEqual(selectInterfaces([lo.name]).map((i) => i.name), [lo.name]);
  assert.throws(() => selectInterfaces(['no-such-if0']), (e: unknown) => isPeerlinkError(e, 'ERR_UNKNOWN_INTERFACE'));
});

test('subnet matching for IPv4 and IPv6, longest prefix wins', () => {
  const v4 = { family: 'IPv4' as const, address: '10.77.0.1', netmask: '255.255.255.0', prefixLength: 24, scope: 'global' as const };
  assert.ok(inSubnet('10.77.0.200', v4));
  assert.ok(!inSubnet('10.77.1.1', v4));
  assert.ok(inSubnet('::ffff:10.77.0.9', v4));
  const ll = { family: 'IPv6' as const, address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', prefixLength: 64, scope: 'link' as const };
  assert.ok(inSubnet('fe80::abcd:1', ll));
  assert.ok(!inSubnet('fd00::1', ll));
  const mk = (name: string, index: number, addrs: (typeof v4 | typeof ll)[]) => ({ name, index, type: 'other' as const, mtu: 1500, flags: { up: true, running: true, broadcast: true, multicast: true, loopback: false, pointToPoint: false }, addresses: addrs });
  const a = mk('a', 2, [{ ...v4, address: '10.0.0.1', prefixLength: 8 }]);
  const b = mk('b', 3, [v4]);
  assert.equal(interfaceForSource('10.77.0.5', [a, b])?.name, 'b');
  assert.equal(interfaceForSource('10.1.2.3', [a, b])?.name, 'a');
  assert.equal(interfaceForSource('fe80::9%b', [a, b])?.name, 'b');
  assert.equal(interfaceForSource('192.168.1.1', [a, b]), undefined);
  // A link-local source zoned to an interface outside the candidates came in there, even though
  // every link's fe80::/64 holds it (an mDNS socket selected for one link hears packets of groups
  // joined on another: the CI flake where a browser on eth1 was given eth0's addresses).
  const c = mk('c', 4, [ll]);
  assert.equal(interfaceForSource('fe80::9%c', [a, b, c])?.name, 'c');
  assert.equal(interfaceForSource('fe80::9%4', [a, b, c])?.name, 'c');
  assert.equal(interfaceForSource('fe80::9%eth0', [c]), undefined);
  assert.equal(interfaceForSource('fe80::9', [c])?.name, 'c');
});

test('IPv6 expansion and scope', () => {
  assert.deepEqual(expandIPv6('fe80::1'), [0xfe80, 0, 0, 0, 0, 0, 0, 1]);
  assert.deepEqual(expandIPv6('::ffff:1.2.3.4'), [0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
  assert.deepEqual(expandIPv6('1:2:3:4:5:6:7:8'), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(ipv6Scope('::1'), 'host');
  assert.equal(ipv6Scope('fe80::1%eth0'), 'link');
  assert.equal(ipv6Scope('2001:db8::1'), 'global');
});
