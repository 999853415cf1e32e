/**
 * The peer record store in fake time (an injected clock): absent records expire after
 * absentPeerExpiry, the least recently seen absent record is evicted over maxPeerRecords
 * (counted in the ledger), and a record whose peer is here is never removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { BudgetLedger, resolveBudgets } from '../../../src/session/budgets.js';
import { PeerRecords } from '../../../src/session/peer-records.js';
import { PeerRecord } from '../../../src/session/peer-record.js';
import { PeerID } from '../../../src/session/peer-id.js';

function setup(budgets: { absentPeerExpiry?: number; maxPeerRecords?: number }) {
  let now = 1_000_000;
  const removed: string[] = [];
  const ledger = new BudgetLedger(resolveBudgets(budgets), {});
  const store = new PeerRecords({ ledger, removed: (r) => removed.push(r.key), now: () => now });
  const make = (): PeerRecord => {
    const id = randomUUID();
    return new PeerRecord(id, PeerID.fromString(id, 'p'));
  };
  return { store, ledger, removed, make, advance: (ms: number) => (now += ms) };
}

test('absent records expire after absentPeerExpiry, counted from when they were last seen', () => {
  const { store, removed, make, advance } = setup({ absentPeerExpiry: 10_000 });
  const a = make();
  const b = make();
  store.add(a);
  advance(6000);
  store.add(b);
  advance(5000);
  store.sweep();
  assert.deepEqual(removed, [a.key]);
  store.seen(b); // seen again: its absence starts over
  advance(9000);
  store.sweep();
  assert.equal(store.get(b.key), b);
  advance(1001);
  store.sweep();
  assert.deepEqual(removed, [a.key, b.key]);
  assert.equal(store.size, 0);
});

test('a record with a stream, a handshake or a claim open never expires', () => {
  const { store, make, advance } = setup({ absentPeerExpiry: 1000 });
  const r = make();
  store.add(r);
  const s = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
  r.streams.add(s);
  advance(5000);
  store.sweep();
  assert.equal(store.get(r.key), r);
  r.streams.delete(s);
  store.sweep();
  assert.equal(store.get(r.key), undefined);
});

test('over maxPeerRecords the least recently seen absent record is evicted and counted; present peers stay', () => {
  const { store, ledger, removed, make, advance } = setup({ maxPeerRecords: 3 });
  const busy = make();
  const s = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
  busy.streams.add(s); // its peer is here (an open stream)
  store.add(busy);
  const [x, y, z] = [make(), make(), make()];
  for (const r of [x, y]) {
    advance(1);
    store.add(r);
  }
  advance(1);
  store.seen(x); // x is now more recent than y
  store.add(z);
  assert.deepEqual(removed, [y.key]);
  assert.equal(ledger.counts.maxPeerRecords, 1);
  assert.equal(store.get(busy.key), busy);
  assert.equal(store.size, 3);
});
