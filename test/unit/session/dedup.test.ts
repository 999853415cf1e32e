import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDeadline, decide, isDecider, rolesCompatible, GenerationCounter } from '../../../src/session/dedup.js';
import { PeerID } from '../../../src/session/peer-id.js';

const lo = PeerID.fromString('10000000-0000-4000-8000-000000000000', 'lo').toBytes();
const hi = PeerID.fromString('F0000000-0000-4000-8000-000000000000', 'hi').toBytes();
const n1 = Buffer.alloc(16, 1);
const n2 = Buffer.alloc(16, 2);

test('star: exactly one side of a pair decides, the larger id (numeric)', () => {
  assert.equal(isDecider('star', hi, lo, 'peer'), true);
  assert.equal(isDecider('star', lo, hi, 'peer'), false);
  // Apple writes upper-case UUIDs: 'F...' < 'a...' as text, but hi is still numerically larger.
  const a = PeerID.fromString('a0000000-0000-4000-8000-000000000000', 'a').toBytes();
  assert.equal(isDecider('star', hi, a, 'peer'), true);
  assert.equal(isDecider('star', a, hi, 'peer'), false);
});

test('client-server: the server decides; roles must be one of each', () => {
  assert.equal(isDecider('client-server', lo, hi, 'server'), true);
  assert.equal(isDecider('client-server', hi, lo, 'client'), false);
  assert.ok(rolesCompatible('client-server', 'server', 'client'));
  assert.ok(!rolesCompatible('client-server', 'server', 'server'));
  assert.ok(!rolesCompatible('client-server', 'client', 'client'));
  assert.ok(rolesCompatible('star', 'peer', 'peer'));
  assert.ok(!rolesCompatible('star', 'peer', 'server'));
});

test('decide: first connection accepted; a simultaneous dial is a duplicate', () => {
  assert.equal(decide(undefined, { nonce: n1, lastGeneration: 0 }, 3000), 'accept');
  const active = { remoteNonce: n1, generation: 77, silentFor: 10 };
  assert.equal(decide(active, { nonce: n1, lastGeneration: 0 }, 3000), 'duplicate');
  assert.equal(decide(active, { nonce: n1, lastGeneration: 76 }, 3000), 'duplicate', 'an older generation is not this connection');
});

test('decide: restart (new nonce), link flap (lastGeneration names the active one), stale active → a claim, checked before any replacement', () => {
  const active = { remoteNonce: n1, generation: 77, silentFor: 10 };
  assert.equal(decide(active, { nonce: n2, lastGeneration: 0 }, 3000), 'check');
  assert.equal(decide(active, { nonce: n1, lastGeneration: 77 }, 3000), 'check');
  assert.equal(decide({ ...active, silentFor: 5000 }, { nonce: n1, lastGeneration: 0 }, 3000), 'check');
});

test('decide: client-server follows the same rule — a same-nonce connection to a live client is a duplicate, not newest-wins', () => {
  const active = { remoteNonce: n1, generation: 5, silentFor: 0 };
  assert.equal(decide(active, { nonce: n1, lastGeneration: 0 }, 3000), 'duplicate');
  assert.equal(decide(active, { nonce: n2, lastGeneration: 0 }, 3000), 'check');
});

test('check deadline: max(2 s, 4 × smoothed RTT)', () => {
  assert.equal(checkDeadline(undefined), 2000);
  assert.equal(checkDeadline(1), 2000);
  assert.equal(checkDeadline(499), 2000);
  assert.equal(checkDeadline(800), 3200);
});

test('simultaneous dials: both sides end with the same single connection in any completion order', () => {
  // Model: connections X (lo dialled hi) and Y (hi dialled lo) complete their HELLOs in
  // every order at the decider; the follower obeys WELCOME / BYE. Exactly one survives and
  // both sides name the same one.
  for (const order of [['X', 'Y'], ['Y', 'X']]) {
    let decided: { name: string; generation: number } | undefined;
    const gens = new GenerationCounter(1);
    const closed: string[] = [];
    for (const name of order) {
      const d = decide(decided ? { remoteNonce: n1, generation: decided.generation, silentFor: 0 } : undefined, { nonce: n1, lastGeneration: 0 }, 3000);
      if (d === 'duplicate') closed.push(name);
      else decided = { name, generation: gens.take() };
    }
    assert.equal(decided?.name, order[0]);
    assert.deepEqual(closed, [order[1]]);
  }
});

test('generation counter starts at a random point, never 0', () => {
  const a = new GenerationCounter();
  const b = new GenerationCounter();
  assert.notEqual(a.take(), b.take());
  const c = new GenerationCounter(0xffffffff);
  assert.equal(c.take(), 0xffffffff);
  assert.equal(c.take(), 1);
});
