/**
 * SiblingRecords (src/dnssd/sibling-records.ts): which of our records another responder on this
 * host publishes too, so that we leave them out of our goodbyes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../../src/dnssd/clock.js';
import { recordKey } from '../../../src/dnssd/codec/records.js';
import { CLASS_IN, type ResourceRecord } from '../../../src/dnssd/codec/index.js';
import { SIBLING_FRESH_MS, SiblingRecords } from '../../../src/dnssd/sibling-records.js';

const hostA = (ttl = 120): ResourceRecord => ({ name: 'vm.local', type: 'A', address: '10.0.0.1', ttl, rrclass: CLASS_IN, cacheFlush: true });
const enumPtr = (ttl = 4500): ResourceRecord => ({ name: '_services._dns-sd._udp.local', type: 'PTR', target: '_x._tcp.local', ttl, rrclass: CLASS_IN, cacheFlush: false });
const srv = (name: string, ttl = 120): ResourceRecord => ({ name: `${name}._x._tcp.local`, type: 'SRV', priority: 0, weight: 0, port: 1, target: 'vm.local', ttl, rrclass: CLASS_IN, cacheFlush: true });

function rig() {
  const clock = new FakeClock();
  const s = new SiblingRecords(clock);
  const ourRecords = [hostA(), enumPtr(), srv('Mine')];
  const mine = (): ReadonlySet<string> => new Set(ourRecords.map(recordKey));
  const sent = new Set(ourRecords.map(recordKey));
  const echo = (r: ResourceRecord): boolean => sent.has(recordKey(r));
  return { clock, s, mine, echo, sent };
}

test("a sibling's packet marks the records it can share (host address, enumeration PTR), never our SRV", () => {
  const { clock, s, mine, echo } = rig();
  s.observe('eth0', [srv('Theirs'), srv('Mine'), hostA(), enumPtr()], mine, echo);
  assert.equal(s.shared('eth0', hostA(0)), true);
  assert.equal(s.shared('eth0', enumPtr(0)), true);
  assert.equal(s.shared('eth0', srv('Mine', 0)), false, 'a forged packet cannot spare our SRV its goodbye');
  assert.equal(s.shared('eth1', hostA(0)), false, 'per interface');
  clock.advance(SIBLING_FRESH_MS);
  assert.equal(s.shared('eth0', hostA(0)), false, 'not heard for 120 s: ours alone');
});

test('our own packets, read back, mark nothing; our own goodbyes, read back, clear nothing', () => {
  const { s, mine, echo, sent } = rig();
  s.observe('eth0', [hostA(), enumPtr(), srv('Mine')], mine, echo);
  assert.equal(s.shared('eth0', hostA(0)), false);
  s.observe('eth0', [srv('Theirs'), hostA()], mine, echo);
  assert.equal(s.shared('eth0', hostA(0)), true);
  // we unregistered "Old" while running: its goodbye comes back to us
  sent.add(recordKey(srv('Old')));
  s.observe('eth0', [srv('Old', 0)], mine, echo);
  assert.equal(s.shared('eth0', hostA(0)), true);
});

test("a sibling's goodbye for a shared record ends that share; one for its own record ends them all", () => {
  const { s, mine, echo } = rig();
  s.observe('eth0', [srv('Theirs'), hostA(), enumPtr()], mine, echo);
  s.observe('eth0', [enumPtr(0)], mine, echo);
  assert.equal(s.shared('eth0', enumPtr(0)), false);
  assert.equal(s.shared('eth0', hostA(0)), true);
  s.observe('eth0', [srv('Theirs', 0)], mine, echo);
  assert.equal(s.shared('eth0', hostA(0)), false, 'a sibling is stopping: we say our own goodbyes again');
});
