/**
 * The IPv4 and IPv6 copies of one response are decoded once (family-twins.ts); anything else —
 * the same bytes on the same family, a copy too late, a query — is read as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FamilyTwins, isResponse, MAX_RECENT_BYTES, TWIN_MS } from '../../../src/dnssd/family-twins.js';
import { encodePacket } from '../../../src/dnssd/codec/encode.js';
import { CLASS_IN, emptyPacket, RRType } from '../../../src/dnssd/codec/types.js';

const response = (port: number): Buffer =>
  encodePacket({ ...emptyPacket(true), answers: [{ name: 'a._x._tcp.local', type: 'SRV', rrclass: CLASS_IN, cacheFlush: true, ttl: 120, priority: 0, weight: 0, port, target: 'h.local' }] });

test('a response read on both families is decoded once; a repeat on one family, a late copy, another interface are not twins', () => {
  let t = 0;
  const twins = new FamilyTwins(() => t);
  const a = response(1);
  assert.equal(twins.twin('eth0', 'IPv4', a), false);
  assert.equal(twins.twin('eth0', 'IPv6', Buffer.from(a)), true, 'the IPv6 copy is the twin');
  // the pair is used up: the next copies (a second announcement) are heard again
  assert.equal(twins.twin('eth0', 'IPv6', Buffer.from(a)), false);
  assert.equal(twins.twin('eth0', 'IPv6', Buffer.from(a)), false, 'same family: not a twin');
  // another interface's copy is its own
  assert.equal(twins.twin('eth1', 'IPv4', Buffer.from(a)), false);
  // different bytes
  assert.equal(twins.twin('eth0', 'IPv4', response(2)), false);
  // too late
  const b = response(3);
  assert.equal(twins.twin('eth0', 'IPv4', b), false);
  t += TWIN_MS + 1;
  assert.equal(twins.twin('eth0', 'IPv6', Buffer.from(b)), false);
  assert.equal(twins.dropped, 1);
});

test('bounded: a flood of distinct responses holds at most 128 per interface, and the twin of one pushed out is read again', () => {
  const twins = new FamilyTwins(() => 0);
  const first = response(0);
  twins.twin('eth0', 'IPv4', first);
  for (let i = 1; i <= 200; i++) twins.twin('eth0', 'IPv4', response(i));
  assert.equal(twins.twin('eth0', 'IPv6', Buffer.from(first)), false, 'pushed out');
  assert.equal(twins.twin('eth0', 'IPv6', response(200)), true, 'a recent one still pairs');
});

test('only responses are twinned (QR bit): a query over IPv6 is always read', () => {
  const q = encodePacket({ ...emptyPacket(false), questions: [{ name: '_x._tcp.local', qtype: RRType.PTR, qclass: CLASS_IN, unicastResponse: false }] });
  assert.equal(isResponse(q), false);
  assert.equal(isResponse(response(1)), true);
  assert.equal(isResponse(Buffer.alloc(2)), false);
});

test('a stranger\'s flood of large distinct responses holds at most 256 KiB per interface, nothing over 9000 bytes, nothing past 500 ms', () => {
  let t = 0;
  const twins = new FamilyTwins(() => t);
  const big = (i: number, size: number): Buffer => {
    const b = Buffer.alloc(size, i & 0xff);
    b[2] = 0x84; // QR + AA: a response
    b.writeUInt32BE(i, 4);
    return b;
  };
  let most = 0;
  for (let i = 0; i < 2000; i++) {
    twins.twin('eth0', 'IPv4', big(i, 8999));
    most = Math.max(most, twins.heldBytes('eth0'));
  }
  assert.ok(most <= MAX_RECENT_BYTES, `held ${most} bytes`);
  twins.twin('eth0', 'IPv4', big(1, 60_000));
  assert.ok(twins.heldBytes('eth0') <= MAX_RECENT_BYTES);
  assert.equal(twins.twin('eth0', 'IPv6', big(1, 60_000)), false, 'an oversized response is never remembered');
  t += TWIN_MS + 1;
  twins.twin('eth0', 'IPv4', big(5000, 100));
  assert.equal(twins.heldBytes('eth0'), 100, 'older than 500 ms: let go');
});
