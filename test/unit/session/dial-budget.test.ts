/**
 * Dial budgets in fake time: the session-wide dial bucket (excess waits its turn) and the
 * per-destination back-off for addresses learned from mDNS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DestinationBackoff, DialRate, TIMEOUT_BACKOFF_MAX, TIMEOUT_GRACE } from '../../../src/session/dial-budget.js';
import { DEFAULT_BUDGETS } from '../../../src/session/budgets.js';

test('DialRate: a burst of dialsPerSecond, then reservations queue 1/rate apart', () => {
  let now = 0;
  const r = new DialRate(20, () => now);
  for (let i = 0; i < 20; i++) assert.equal(r.reserve(), 0);
  assert.equal(r.reserve(), 50);
  assert.equal(r.reserve(), 100);
  assert.equal(r.reserve(), 150);
  now = 1000;
  // 20 tokens came back, 3 were already promised
  let free = 0;
  while (r.reserve() === 0) free++;
  assert.equal(free, 17);
});

test('DestinationBackoff: 1 s, 2 s, then once a minute; one dial in flight; success starts over', () => {
  let now = 0;
  const d = new DestinationBackoff(DEFAULT_BUDGETS, () => now);
  const k = DestinationBackoff.key('10.0.0.9', 7000);
  const dials: number[] = [];
  for (now = 0; now <= 200_000; now += 100) {
    if (d.wait(k) !== 0) continue;
    dials.push(now);
    d.started(k);
    d.finished(k);
  }
  assert.deepEqual(dials, [0, 1000, 3000, 63_000, 123_000, 183_000]);
  assert.equal(d.failures(k), 6);
  d.succeeded(k);
  assert.equal(d.wait(k), 0);
  d.started(k);
  assert.ok(d.wait(k) >= DEFAULT_BUDGETS.dialBackoffInitial, 'in flight');
  now += 5000;
  assert.equal(d.wait(k), DEFAULT_BUDGETS.dialBackoffInitial, 'still in flight: no second dial');
  d.finished(k);
  assert.equal(d.wait(k), 0);
});

test('DestinationBackoff: a destination that once led to a connected peer is retried within provenMaxDelay, never once a minute', () => {
  let now = 0;
  const d = new DestinationBackoff(DEFAULT_BUDGETS, () => now, 5000);
  const peer = DestinationBackoff.key('10.0.0.7', 7000);
  const stranger = DestinationBackoff.key('10.0.0.8', 7000);
  d.started(peer);
  d.succeeded(peer);
  d.finished(peer);
  // the peer's link flaps: its dials fail from now on, like the stranger's that never answer
  const dials = new Map<string, number[]>([[peer, []], [stranger, []]]);
  for (now = 10_000; now <= 130_000; now += 100) {
    for (const k of [peer, stranger]) {
      if (d.wait(k) !== 0) continue;
      dials.get(k)?.push(now - 10_000);
      d.started(k);
      d.finished(k);
    }
  }
  assert.deepEqual(dials.get(peer)?.slice(0, 5), [0, 1000, 3000, 8000, 13_000]);
  assert.deepEqual(dials.get(stranger), [0, 1000, 3000, 63_000]);
});

test('DestinationBackoff: bounded by maxPeerRecords, least recently dialled forgotten first', () => {
  let now = 0;
  const d = new DestinationBackoff({ ...DEFAULT_BUDGETS, maxPeerRecords: 3 }, () => now);
  for (let i = 0; i < 5; i++) d.started(DestinationBackoff.key(`10.0.0.${i}`, 1));
  assert.equal(d.size, 3);
  assert.equal(d.failures(DestinationBackoff.key('10.0.0.0', 1)), 0);
  assert.equal(d.failures(DestinationBackoff.key('10.0.0.4', 1)), 1);
  now++;
});

test('DestinationBackoff.keysAt: the browse addresses that are the host a connected peer came from (the peer dialled us: our failed duplicate dials there no longer lead to the slow schedule after a flap)', () => {
  const addrs = ['10.0.0.7', 'fe80::1%eth0', '10.0.0.70'];
  assert.deepEqual(DestinationBackoff.keysAt(addrs, 7000, '10.0.0.7'), ['10.0.0.7|7000']);
  assert.deepEqual(DestinationBackoff.keysAt(addrs, 7000, '::ffff:10.0.0.7'), ['10.0.0.7|7000']);
  assert.deepEqual(DestinationBackoff.keysAt(addrs, 7000, 'FE80::1'), ['fe80::1%eth0|7000']);
  assert.deepEqual(DestinationBackoff.keysAt(addrs, 7000, '10.0.0.8'), []);
  assert.deepEqual(DestinationBackoff.keysAt(addrs, 0, '10.0.0.7'), []);
  // Three failed dials (ours, while the peer's own dial connected the pair), then the pair is
  // connected through the peer's connection and flaps: the redial is within provenMaxDelay.
  let now = 0;
  const d = new DestinationBackoff(DEFAULT_BUDGETS, () => now, 5000);
  const [k] = DestinationBackoff.keysAt(addrs, 7000, '10.0.0.7') as [string];
  for (let i = 0; i < 3; i++) {
    now += 70_000;
    d.started(k);
    d.finished(k);
  }
  assert.equal(d.wait(k), DEFAULT_BUDGETS.dialBackoffSlow, 'unproven: the slow schedule');
  d.succeeded(k);
  now += 1;
  d.started(k);
  d.finished(k);
  assert.ok(d.wait(k) <= 5000, `after the flap: ${d.wait(k)} ms`);
});

test('DestinationBackoff: a timed-out dial in a destination\'s first 2 min waits 1, 2, 4, 8 s and never the slow schedule; then timeouts count', () => {
  let now = 0;
  const d = new DestinationBackoff(DEFAULT_BUDGETS, () => now);
  const k = DestinationBackoff.key('10.0.0.9', 7000);
  const dials: number[] = [];
  // each dial takes the connection timeout (10 s) and times out
  for (now = 0; now <= 300_000; now += 100) {
    if (d.wait(k) !== 0) continue;
    dials.push(now);
    d.started(k);
    now += 10_000;
    d.finished(k, 'ERR_CONNECTION_TIMEOUT');
  }
  const gaps = dials.slice(1).map((t, i) => t - (dials[i] as number) - 10_000);
  assert.deepEqual(gaps.slice(0, 5), [1000, 2000, 4000, TIMEOUT_BACKOFF_MAX, TIMEOUT_BACKOFF_MAX], `waits after each timeout: ${gaps.join(', ')}`);
  const inGrace = dials.filter((t) => t < TIMEOUT_GRACE).length;
  assert.ok(inGrace <= 8, `${inGrace} dials in the grace period (a SYN-dropping stranger's bound)`);
  // after it, the timeouts count: once a minute
  const late = dials.filter((t) => t >= TIMEOUT_GRACE + 20_000);
  for (let i = 1; i < late.length; i++) assert.ok((late[i] as number) - (late[i - 1] as number) >= DEFAULT_BUDGETS.dialBackoffSlow, `slow after the grace period: ${late.join(', ')}`);
  assert.ok(d.failures(k) >= DEFAULT_BUDGETS.dialFailuresBeforeSlow);
});

test('DestinationBackoff: refusals still go to the slow schedule after three, even in the first minutes', () => {
  let now = 0;
  const d = new DestinationBackoff(DEFAULT_BUDGETS, () => now);
  const k = DestinationBackoff.key('10.0.0.9', 7000);
  const dials: number[] = [];
  for (now = 0; now <= 100_000; now += 100) {
    if (d.wait(k) !== 0) continue;
    dials.push(now);
    d.started(k);
    d.finished(k, 'ERR_CONNECTION_REFUSED');
  }
  assert.deepEqual(dials, [0, 1000, 3000, 63_000]);
});
