/**
 * The stall log shared by the keepalive policy and the mDNS failure watch (src/loop-stalls.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoopStalls, STALL_MIN_MS } from '../../src/loop-stalls.js';

test('a late tick is a stall from its due time; a few ms late is not; windows clip stalls that began before them', () => {
  const s = new LoopStalls();
  s.tick(1000, 1000 + STALL_MIN_MS);
  assert.equal(s.stalledSince(0), 0, 'timer jitter is not a stall');
  s.tick(2000, 3500); // [2000, 3500]
  s.tick(4000, 4400); // [4000, 4400]
  assert.equal(s.stalledSince(0), 1900);
  assert.equal(s.stalledSince(3000), 900, 'the first stall counts from 3000 only');
  assert.equal(s.longestSince(0), 1500);
  assert.equal(s.longestSince(3000), 500);
  assert.equal(s.stalledSince(4400), 0, 'a stall that ended at the window start does not count');
  s.forgetBefore(3500);
  assert.equal(s.stalledSince(0), 400, 'the stall that ended at 3500 is forgotten');
  s.clear();
  assert.equal(s.stalledSince(0), 0);
});

test('bounded: past its maximum the oldest stalls are dropped', () => {
  const s = new LoopStalls(3);
  for (let i = 0; i < 10; i++) s.tick(i * 1000, i * 1000 + 100);
  assert.equal(s.stalledSince(0), 300);
  assert.equal(s.stalledSince(7000), 300, 'the three kept are the last three');
});

test('a freeze observed in two parts (a late sweep, then a late wait after it) is one stall', () => {
  const s = new LoopStalls();
  s.tick(1000, 1600); // the sweep, due at 1000, ran at 1600
  s.tick(1600, 2200); // its verdicts, after the poll phase, at 2200
  assert.equal(s.longestSince(0), 1200);
  assert.equal(s.stalledSince(0), 1200);
  s.tick(3000, 3100); // a later, separate one
  assert.equal(s.longestSince(0), 1200);
  assert.equal(s.stalledSince(0), 1300);
});
