/**
 * When the session gives freed heap pages back (src/session/memory-trim.ts), in fake time: once
 * after a burst of connection events has been quiet for the quiet period, never for a few
 * connections, never while the burst goes on, and not after close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryTrim } from '../../../src/session/memory-trim.js';
import { FakeTimers } from './fake-timers.js';

test('a burst of connections, then quiet: one trim after the quiet period; a few connections: none', () => {
  const timers = new FakeTimers();
  let calls = 0;
  const trim = new MemoryTrim(() => (calls++, true), { minEvents: 16, quietMs: 10_000 }, timers);
  for (let i = 0; i < 15; i++) trim.note();
  timers.advance(60_000);
  assert.equal(calls, 0, '15 events are not a burst');
  assert.equal(timers.pending, 0, 'no timer for them');
  trim.note(); // the 16th
  timers.advance(9_999);
  assert.equal(calls, 0);
  timers.advance(1);
  assert.equal(calls, 1);
  assert.equal(trim.trims, 1);
  // counting starts again
  for (let i = 0; i < 10; i++) trim.note();
  timers.advance(60_000);
  assert.equal(calls, 1);
});

test('while the burst goes on, the trim waits; close cancels it; a trim that is unavailable is not counted', () => {
  const timers = new FakeTimers();
  let calls = 0;
  const trim = new MemoryTrim(() => (calls++, false), { minEvents: 4, quietMs: 1000 }, timers);
  for (let i = 0; i < 40; i++) {
    trim.note();
    timers.advance(500);
  }
  assert.equal(calls, 0, 'an event every 500 ms keeps postponing it');
  assert.equal(timers.pending, 1, 'one timer, re-armed');
  timers.advance(1000);
  assert.equal(calls, 1);
  assert.equal(trim.trims, 0, 'releaseFreeMemory said it is not available here');
  for (let i = 0; i < 4; i++) trim.note();
  trim.close();
  timers.advance(5000);
  assert.equal(calls, 1);
  assert.equal(timers.pending, 0);
  // connections closing after the session's close (their 'closed' events) do not re-arm it
  for (let i = 0; i < 40; i++) trim.note();
  assert.equal(timers.pending, 0);
  timers.advance(60_000);
  assert.equal(calls, 1);
});
