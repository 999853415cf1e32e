/**
 * dialsInFlight: at most that many dials of browse results are in their handshake at once; the
 * others wait their turn, oldest first, and one whose peer got connected meanwhile is not made.
 * The Dialer itself in fake time, with a host whose `prepare` holds each dial's handshake open
 * until the test ends it (no socket is opened: the Connection is never started).
 *
 * Before: 100 peers starting together each dialled all 99 others at once (within dialsPerSecond);
 * ~5000 TLS handshakes shared two cores, none finished within connectionTimeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FoundService } from '../../../src/session/discovery.js';
import { resolveBudgets } from '../../../src/session/budgets.js';
import type { PeerRecord } from '../../../src/session/peer-record.js';
import { rig } from './dialer-rig.js';
import { dialsSecond } from '../../../src/session/dialer.js';
import { PeerID } from '../../../src/session/peer-id.js';

const found = (i: number): FoundService => ({ name: `vm-${String(i).padStart(2, '0')}`, port: 7000, addresses: [`10.0.0.${i}`], txt: { v: '1', sec: 'psk', arch: 'star' }, interfaces: ['eth0'] });
const me = PeerID.generate('me');
/** Whether we (the rig's "vm-zz") let peer `i` dial first: our own dial of it comes 1 s after its find. */
const second = (i: number): boolean => dialsSecond({ id: me, instanceName: 'vm-zz' }, { peerKey: undefined, instanceName: found(i).name });
/** The peers found in the first tests: all of them ones we dial 1 s after the find (the pair rule), so every dial starts at once. */
const later = Array.from({ length: 99 }, (_, i) => i + 1).filter(second);
const peer = (k: number): FoundService => found(later[k - 1] as number);

test('30 peers found at once: 6 handshakes at a time, the next one starts as one ends, every peer not yet connected dialled once', async () => {
  const r = rig();
  try {
    r.advance(5000); // our announcement is old: each dial comes 1 s after its find (`later`)
    for (let i = 1; i <= 30; i++) r.dialer.onFound(peer(i));
    r.advance(1500);
    await r.flush();
    assert.equal(r.held.length, 6, `${r.held.length} handshakes started at once`);
    assert.ok((r.ledger.counts.dialsInFlight ?? 0) >= 24, `waits counted: ${JSON.stringify(r.ledger.counts)}`);
    // the peer of a waiting target dials us and wins: its turn is skipped (which 6 went first
    // depends on the first dials' random jitter)
    const waiting = Array.from({ length: 30 }, (_, i) => peer(i + 1).name).find((n) => !r.held.some((h) => h.key === `svc:${n}`)) as string;
    r.dialer.learned('key-waiting', waiting, undefined);
    r.connected.add('key-waiting');
    for (let done = 0; done < 30 && r.held.length > done; done++) {
      r.held[done]!.end();
      await r.flush();
      r.advance(10);
      await r.flush();
      const open = r.held.length - (done + 1);
      assert.ok(open <= 6, `${open} in flight after ${done + 1} ended`);
    }
    const keys = r.held.map((h) => h.key);
    assert.equal(new Set(keys).size, keys.length, 'no target dialled twice within the first round');
    assert.equal(keys.length, 29, `every target but the connected one dialled once: ${keys.length}`);
    assert.ok(!keys.includes(`svc:${waiting}`), 'the peer that connected to us is not dialled');
  } finally {
    r.close();
  }
});

test('a waiting target held back meanwhile (its peer said BYE) is not dialled when a place frees; a connected one leaves the queue', async () => {
  const r = rig();
  try {
    r.advance(5000);
    for (let i = 1; i <= 10; i++) r.dialer.onFound(peer(i));
    r.advance(1500);
    await r.flush();
    assert.equal(r.held.length, 6);
    const waiting = Array.from({ length: 10 }, (_, i) => peer(i + 1).name).filter((n) => !r.held.some((h) => h.key === `svc:${n}`));
    const [left, won] = waiting as [string, string];
    r.dialer.learned('key-left', left, undefined);
    r.dialer.peerLeft({ key: 'key-left' } as unknown as PeerRecord);
    r.dialer.learned('key-won', won, undefined);
    r.connected.add('key-won');
    r.dialer.connected({ key: 'key-won', peer: { id: 'key-won' }, active: undefined } as unknown as PeerRecord);
    for (const h of [...r.held]) h.end();
    await r.flush();
    r.advance(100);
    await r.flush();
    const keys = r.held.map((h) => h.key);
    assert.ok(!keys.includes(`svc:${left}`), `${left} said BYE: not redialled at once`);
    assert.ok(!keys.includes(`svc:${won}`), `${won} is connected`);
    assert.equal(keys.length, 6 + waiting.length - 2, 'the other waiting targets were dialled');
  } finally {
    r.close();
  }
});

test('over the dial rate the queue waits as a whole: no token reserved per waiting target (connect() would wait behind that debt)', async () => {
  const r = rig(resolveBudgets({ dialsPerSecond: 2, dialsInFlight: 1 }));
  try {
    r.advance(5000);
    for (let i = 1; i <= 10; i++) r.dialer.onFound(peer(i));
    r.advance(1500);
    await r.flush();
    const deferredBefore = r.ledger.counts.dialsPerSecond ?? 0;
    // each dial ends at once: the queue drains at the rate, one dial in flight
    for (let s = 0; s < 200 && new Set(r.held.map((h) => h.key)).size < 10; s++) {
      for (const h of r.held) h.end();
      await r.flush();
      r.advance(100);
      await r.flush();
    }
    assert.equal(new Set(r.held.map((h) => h.key)).size, 10, 'every target dialled');
    const deferred = (r.ledger.counts.dialsPerSecond ?? 0) - deferredBefore;
    assert.ok(deferred <= 2, `${deferred} dials deferred by the rate after they left the queue (each a reserved token)`);
  } finally {
    r.close();
  }
});

test('dials we make first go before the ones the pair rule leaves to the other side, whatever order the peers were found in', async () => {
  const r = rig();
  const seconds = Array.from({ length: 60 }, (_, i) => i + 1).filter(second).slice(0, 14);
  const firsts = Array.from({ length: 60 }, (_, i) => i + 1).filter((i) => !second(i)).slice(0, 15);
  assert.equal(seconds.length + firsts.length, 29);
  try {
    r.advance(5000);
    for (const i of seconds) r.dialer.onFound(found(i));
    r.advance(1500);
    await r.flush();
    assert.equal(r.held.length, 6, '6 second dials take the free places');
    // the peers we dial first are found after: 8 second dials are queued ahead of them
    for (const i of firsts) r.dialer.onFound(found(i));
    r.advance(500);
    await r.flush();
    assert.equal(r.held.length, 6);
    const n = (key: string): number => Number(key.slice(-2));
    for (let done = 0; done < 15; done++) {
      r.held[done]!.end();
      await r.flush();
      r.advance(10);
      await r.flush();
    }
    // the 15 dials after the first 6 are our 15 first dials, then the 8 other second dials
    const next = r.held.slice(6, 21).map((h) => n(h.key));
    assert.deepEqual(next.filter((x) => seconds.includes(x)), [], `second dials taken before our own first dials: ${next.join(' ')}`);
    for (let done = 15; done < 21; done++) r.held[done]!.end();
    await r.flush();
    r.advance(10);
    await r.flush();
    for (let round = 0; round < 4; round++) {
      for (const h of r.held) h.end();
      await r.flush();
      r.advance(10);
      await r.flush();
    }
    assert.equal(new Set(r.held.map((h) => h.key)).size, 29, 'every peer dialled in the end (the other side may never dial)');
  } finally {
    r.close();
  }
});

test('a dial left to the other side is not held behind our own first dials for ever: a stranger advertising new instances at new addresses gets it dialled within 30 s of its wait', async () => {
  const r = rig();
  const flood = (i: number): FoundService => ({ name: `st-${i}`, port: 7000, addresses: [`10.9.${i >> 8}.${i & 255}`], txt: { v: '1', sec: 'psk', arch: 'star' }, interfaces: ['eth0'] });
  const firstClass = Array.from({ length: 4000 }, (_, i) => i + 1).filter((i) => !dialsSecond({ id: me, instanceName: 'vm-zz' }, { peerKey: undefined, instanceName: flood(i).name }));
  try {
    r.advance(5000);
    // 6 first-class strangers take the places, then an honest peer we dial second waits
    for (const i of firstClass.slice(0, 6)) r.dialer.onFound(flood(i));
    r.advance(200);
    await r.flush();
    assert.equal(r.held.length, 6);
    const honest = peer(1);
    r.dialer.onFound(honest);
    r.advance(1500);
    await r.flush();
    const queuedAt = Date.now();
    // every 500 ms a place frees and a new stranger (a first dial) is found: the first-dial queue never empties
    let next = 6;
    let ended = 0;
    let dialledAt: number | undefined;
    for (let step = 0; step < 120 && dialledAt === undefined; step++) {
      r.dialer.onFound(flood(firstClass[next++] as number));
      r.dialer.onFound(flood(firstClass[next++] as number));
      r.advance(250);
      await r.flush();
      // the two oldest handshakes end (the strangers' tarpits time out, say): two places free
      for (let k = 0; k < 2 && ended < r.held.length; k++) r.held[ended++]!.end();
      await r.flush();
      r.advance(250);
      await r.flush();
      if (r.held.some((h) => h.key === `svc:${honest.name}`)) dialledAt = Date.now();
    }
    assert.ok(dialledAt !== undefined, 'the honest peer was never dialled');
    const waited = dialledAt - queuedAt;
    assert.ok(waited >= 25_000 && waited <= 35_000, `dialled after ${waited} ms in the queue (first dials go first, for 30 s)`);
  } finally {
    r.close();
  }
});
