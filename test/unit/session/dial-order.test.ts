/**
 * Which side of a star pair dials first when both find each other at once: before, only a
 * peer whose id was known (TXT id, off by default, or an earlier HELLO) held back, so two
 * strangers both dialled at once and de-duplication dropped one connection of every pair.
 * Now, without ids, the instance names decide: exactly one side of every pair waits — the larger
 * or the smaller by a bit of the pair (pairFlip), so each peer dials about half its pairs first.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerID } from '../../../src/session/peer-id.js';
import { dialsSecond, firstDialDelay, pairFlip } from '../../../src/session/dialer.js';

test('without ids, exactly one side of each pair dials second (by instance name); with ids, by id', () => {
  const peers = Array.from({ length: 40 }, (_, i) => ({ id: PeerID.generate(`p${i}`), instanceName: `vm-${(i * 7919) % 1000} (${i})` }));
  for (const a of peers) {
    for (const b of peers) {
      if (a === b) continue;
      const aWaits = dialsSecond(a, { peerKey: undefined, instanceName: b.instanceName });
      const bWaits = dialsSecond(b, { peerKey: undefined, instanceName: a.instanceName });
      assert.notEqual(aWaits, bWaits, `${a.instanceName} / ${b.instanceName}: both ${aWaits ? 'wait' : 'dial at once'}`);
      const aById = dialsSecond(a, { peerKey: b.id.id, instanceName: b.instanceName });
      const bById = dialsSecond(b, { peerKey: a.id.id, instanceName: a.instanceName });
      assert.notEqual(aById, bById);
      const [lo, hi] = Buffer.compare(a.id.toBytes(), b.id.toBytes()) < 0 ? [a, b] : [b, a];
      assert.equal(aById, (a === hi) !== pairFlip(lo.id.toBytes(), hi.id.toBytes()), 'with ids: the larger id waits unless the pair is flipped');
    }
  }
  // names compare as UTF-8 bytes, the same on both sides whatever the locale ('Zoë' > 'Zoe')
  const zoeWaits = !pairFlip(Buffer.from('Zoe'), Buffer.from('Zoë'));
  assert.equal(dialsSecond({ id: PeerID.generate('x'), instanceName: 'Zoë' }, { peerKey: undefined, instanceName: 'Zoe' }), zoeWaits);
  assert.equal(dialsSecond({ id: PeerID.generate('x'), instanceName: 'Zoe' }, { peerKey: undefined, instanceName: 'Zoë' }), !zoeWaits);
  // equal names (never on one link: instance names are unique) make neither side wait; a name
  // that is a prefix of the other is the smaller one
  assert.equal(dialsSecond({ id: PeerID.generate('x'), instanceName: 'vm' }, { peerKey: undefined, instanceName: 'vm' }), false);
  assert.notEqual(dialsSecond({ id: PeerID.generate('x'), instanceName: 'vm' }, { peerKey: undefined, instanceName: 'vm (2)' }), dialsSecond({ id: PeerID.generate('x'), instanceName: 'vm (2)' }, { peerKey: undefined, instanceName: 'vm' }));
  // an unusable id falls back to the names
  const byNames = dialsSecond({ id: PeerID.generate('x'), instanceName: 'b' }, { peerKey: undefined, instanceName: 'a' });
  assert.equal(dialsSecond({ id: PeerID.generate('x'), instanceName: 'b' }, { peerKey: 'not-an-id', instanceName: 'a' }), byNames);
});

test('each of 100 peers dials 25–75 % of its pairs first, names random or in sequence (before: the smallest name dialled all 99, the largest none)', () => {
  for (const names of [(i: number) => `vm-${((i * 40503) % 65536).toString(16).padStart(4, '0')}`, (i: number) => `vm-${String(i).padStart(2, '0')}`]) {
    const peers = Array.from({ length: 100 }, (_, i) => ({ id: PeerID.generate(`p${i}`), instanceName: names(i) }));
    for (const byId of [false, true]) {
      for (const a of peers) {
        const first = peers.filter((b) => b !== a && !dialsSecond(a, { peerKey: byId ? b.id.id : undefined, instanceName: b.instanceName })).length;
        assert.ok(first >= 25 && first <= 74, `${a.instanceName} dials ${first} of 99 first (${byId ? 'by id' : 'by name'})`);
      }
    }
  }
});

/** Two names of which the first dials second (by the pair rule). */
function waitingPair(): { waits: string; dials: string } {
  const a = PeerID.generate('a');
  for (let i = 0; ; i++) {
    if (dialsSecond({ id: a, instanceName: `b${i}` }, { peerKey: undefined, instanceName: 'a' })) return { waits: `b${i}`, dials: 'a' };
    if (i > 64) throw new Error('no pair found');
  }
}

test('a session that does not advertise (peerlink send) dials a peer it finds at once; an advertised one keeps the pair rule', () => {
  const a = PeerID.generate('a');
  const pair = waitingPair();
  const theirs = { peerKey: undefined, instanceName: pair.dials };
  const half = (): number => 0.5;
  assert.equal(firstDialDelay({ id: a, instanceName: pair.waits, advertise: false, architecture: 'star' }, theirs, half), 0, 'nobody can find it, so nobody dials it: waiting wins no race');
  assert.equal(firstDialDelay({ id: a, instanceName: pair.waits, advertise: true, architecture: 'star' }, theirs, half), 1050, 'the waiting side of an advertised pair waits');
  assert.equal(firstDialDelay({ id: a, instanceName: pair.dials, advertise: true, architecture: 'star' }, { peerKey: undefined, instanceName: pair.waits }, half), 50, 'the other side dials after the jitter only');
  assert.equal(firstDialDelay({ id: a, instanceName: pair.waits, advertise: true, architecture: 'client-server' }, theirs, half), 50);
});

test('the side that dials second waits until 3 s after our announcement (the other cannot dial us before it resolved us)', () => {
  const a = PeerID.generate('a');
  const pair = waitingPair();
  const theirs = { peerKey: undefined, instanceName: pair.dials };
  const half = (): number => 0.5;
  const ours = { id: a, instanceName: pair.waits, advertise: true, architecture: 'star' };
  assert.equal(firstDialDelay(ours, theirs, half, { now: 10_500, announcedAt: 10_000 }), 2550, 'announced 0.5 s ago: until 3 s after it');
  assert.equal(firstDialDelay(ours, theirs, half, { now: 12_500, announcedAt: 10_000 }), 1050, 'announced 2.5 s ago: the 1 s head start is longer');
  assert.equal(firstDialDelay(ours, theirs, half, { now: 90_000, announcedAt: 10_000 }), 1050);
  assert.equal(firstDialDelay(ours, theirs, half, { now: 10_500, announcedAt: undefined }), 1050, 'not announced (the Dialer holds first dials until it is): the 1 s head start');
  assert.equal(firstDialDelay({ ...ours, instanceName: pair.dials }, { peerKey: undefined, instanceName: pair.waits }, half, { now: 10_500, announcedAt: 10_000 }), 50, 'the side that dials first: the jitter only');
});
