import { test } from 'node:test';
import assert from 'node:assert/strict';
import { belongsTo } from '../../../src/dnssd/transport.js';
import type { NetworkInterface } from '../../../src/path/interfaces.js';
import { fakeInterface } from './fake-link.js';

function iface(name: string, index: number, v4: string, prefix: number, v6?: string): NetworkInterface {
  const base = fakeInterface(1);
  return {
    ...base,
    name,
    index,
    addresses: [
      { family: 'IPv4', address: v4, prefixLength: prefix, netmask: '', scope: 'global' },
      ...(v6 ? [{ family: 'IPv6' as const, address: v6, prefixLength: 64, netmask: '', scope: 'link' as const, scopeId: index }] : []),
    ],
  };
}

test('packets are attributed to the interface whose subnet holds the source (RFC 6762 §11)', () => {
  const eth0 = iface('eth0', 2, '10.0.0.1', 24, 'fe80::1');
  const eth1 = iface('eth1', 3, '10.0.1.1', 24, 'fe80::2');
  const wide = iface('wide', 4, '10.0.0.0', 16);
  const all = [eth0, eth1];
  assert.equal(belongsTo(eth0, '10.0.0.7', undefined, all), true);
  assert.equal(belongsTo(eth1, '10.0.0.7', undefined, all), false);
  assert.equal(belongsTo(eth0, '192.168.1.1', undefined, all), false, 'off-link source dropped');
  assert.equal(belongsTo(eth0, '10.0.0.1', undefined, all), true, 'our own address');
  // the more specific subnet wins
  assert.equal(belongsTo(wide, '10.0.0.7', undefined, [eth0, wide]), false);
  assert.equal(belongsTo(wide, '10.0.5.7', undefined, [eth0, wide]), true);
  // IPv6 link-local: the zone Node reports decides
  assert.equal(belongsTo(eth0, 'fe80::99', 'eth0', all), true);
  assert.equal(belongsTo(eth1, 'fe80::99', 'eth0', all), false);
  assert.equal(belongsTo(eth1, 'fe80::99', '3', all), true, 'numeric zone');
});
