/**
 * Handshake places against tarpits (dial-places.ts): a stranger's instances that accept TCP and
 * stall the handshake hold at most dialsInFlightPerAddress places per address, and at most
 * dialsInFlightSuspect together once each has timed out; honest peers take the other places.
 * The Dialer in fake time (dialer-rig.ts). The raw-socket attack is test/adversarial/dial-tarpit.
 *
 * Before: 12 instances at one address took all 6 places for connectionTimeout, and again after
 * each back-off; a peer found after them waited in the queue behind them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FoundService } from '../../../src/session/discovery.js';
import { PeerlinkError } from '../../../src/errors.js';
import { DEFAULT_BUDGETS } from '../../../src/session/budgets.js';
import { rig } from './dialer-rig.js';

const svc = (name: string, address: string, port: number): FoundService => ({ name, port, addresses: [address], txt: { v: '1', sec: 'psk', arch: 'star' }, interfaces: ['eth0'] });
const timeout = (): PeerlinkError => new PeerlinkError('ERR_CONNECTION_TIMEOUT', 'stalled (the test)');

/**
 * Every dial of the rig stalls for connectionTimeout (10 s), then times out (a tarpit). Each
 * call of the returned step lets 100 ms pass; it returns how many dials are in flight.
 */
function stalling(r: ReturnType<typeof rig>): () => Promise<number> {
  const startedAt = r.held.map(() => Date.now());
  const open = new Set(r.held.map((_, i) => i));
  return async () => {
    for (const i of [...open]) {
      if (Date.now() - (startedAt[i] as number) < 10_000) continue;
      r.held[i]!.end(timeout());
      open.delete(i);
    }
    await r.flush();
    r.advance(100);
    await r.flush();
    for (let i = startedAt.length; i < r.held.length; i++) {
      startedAt.push(Date.now());
      open.add(i);
    }
    return open.size;
  };
}

test('12 instances at one address hold dialsInFlightPerAddress places; peers at other addresses take the rest at once', async () => {
  const r = rig();
  try {
    r.advance(5000);
    for (let i = 0; i < 12; i++) r.dialer.onFound(svc(`pit-${String(i).padStart(2, '0')}`, '10.0.0.66', 7100 + i));
    r.advance(1500);
    await r.flush();
    assert.equal(r.held.length, DEFAULT_BUDGETS.dialsInFlightPerAddress, `${r.held.length} dials to one address at once`);
    assert.ok((r.ledger.counts.dialsInFlightPerAddress ?? 0) >= 10, JSON.stringify(r.ledger.counts));
    // honest peers found after them: the 4 other places at once, not after a tarpit's timeout
    for (let i = 1; i <= 4; i++) r.dialer.onFound(svc(`vm-${i}`, `10.0.0.${i}`, 7000));
    r.advance(1500);
    await r.flush();
    const honest = r.held.filter((h) => h.key.startsWith('svc:vm-')).length;
    assert.equal(honest, 4, `${honest} honest dials started`);
    // a stalled dial ends: the next waiting instance at that address takes its place, no more
    r.held[0]!.end(timeout());
    await r.flush();
    r.advance(10);
    await r.flush();
    const pits = r.held.filter((h) => h.key.startsWith('svc:pit-')).length;
    assert.equal(pits, DEFAULT_BUDGETS.dialsInFlightPerAddress + 1, `${pits} tarpit dials in all`);
  } finally {
    r.close();
  }
});

test('tarpits at 8 addresses: once each timed out they hold dialsInFlightSuspect places together, and a new peer is dialled at once', async () => {
  const r = rig();
  try {
    r.advance(5000);
    for (let i = 0; i < 8; i++) r.dialer.onFound(svc(`pit-${i}`, `10.0.1.${i + 10}`, 7200));
    r.advance(1500);
    await r.flush();
    // new destinations: not suspect yet, they take every place
    assert.equal(r.held.length, DEFAULT_BUDGETS.dialsInFlight);
    // each dial stalls for connectionTimeout (10 s) and times out; it is dialled again after its
    // back-off. Two minutes of that: how many stalled dials are in flight at once?
    const step = stalling(r);
    let settledMost = 0;
    for (let s = 0; s < 1200; s++) {
      const inFlight = await step();
      assert.ok(inFlight <= DEFAULT_BUDGETS.dialsInFlight);
      // from 25 s on, every tarpit has timed out at least once (8 of them, 6 places, 10 s each)
      if (s >= 250) settledMost = Math.max(settledMost, inFlight);
    }
    const dialsOf = new Set(r.held.map((h) => h.key));
    assert.equal(dialsOf.size, 8, 'every tarpit was dialled');
    assert.ok(settledMost <= DEFAULT_BUDGETS.dialsInFlightSuspect, `${settledMost} suspect dials in flight at once`);
    assert.ok((r.ledger.counts.dialsInFlightSuspect ?? 0) > 0, JSON.stringify(r.ledger.counts));
    // an honest peer found now goes at once
    const n = r.held.length;
    r.dialer.onFound(svc('vm-1', '10.0.0.1', 7000));
    r.advance(1500);
    await r.flush();
    assert.ok(r.held.slice(n).some((h) => h.key === 'svc:vm-1'), 'the honest peer was dialled within 1.5 s');
  } finally {
    r.close();
  }
});

test("instances on SYN-dropping ports at an honest peer's address: once they timed out, the peer's real port is dialled at once", async () => {
  const r = rig();
  try {
    r.advance(5000);
    for (let i = 0; i < 6; i++) r.dialer.onFound(svc(`fake-${i}`, '10.0.0.7', 7100 + i));
    r.advance(1500);
    await r.flush();
    // every dial stalls for connectionTimeout (10 s), then times out; run until each was dialled
    const step = stalling(r);
    for (let s = 0; s < 400 && new Set(r.held.map((h) => h.key)).size < 6; s++) await step();
    for (let s = 0; s < 110; s++) await step(); // the last of them times out too
    assert.equal(new Set(r.held.map((h) => h.key)).size, 6, 'every fake instance was dialled');
    const n = r.held.length;
    r.dialer.onFound(svc('vm-real', '10.0.0.7', 7000));
    for (let s = 0; s < 15; s++) await step();
    assert.ok(r.held.slice(n).some((h) => h.key === 'svc:vm-real'), `the real port waited behind the fakes: ${r.held.slice(n).map((h) => h.key).join(', ')}`);
  } finally {
    r.close();
  }
});

test('peers on loopback (several on one host) are not held to dialsInFlightPerAddress', async () => {
  const r = rig();
  try {
    r.advance(5000);
    for (let i = 1; i <= 10; i++) r.dialer.onFound(svc(`vm-${String(i).padStart(2, '0')}`, '127.0.0.1', 7000 + i));
    r.advance(1500);
    await r.flush();
    assert.equal(r.held.length, DEFAULT_BUDGETS.dialsInFlight, `${r.held.length} dials to 127.0.0.1 at once`);
  } finally {
    r.close();
  }
});
