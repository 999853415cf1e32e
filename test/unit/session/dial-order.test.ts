/**
 * Which side of a star pair dials first when both find each other at once: before, only a
 * peer whose id was known (TXT id, off by default, or an earlier HELLO) held back, so two
 * strangers both dialled at once and de-duplication dropped one connection of every pair.
 * Now, without ids, the instance names decide: exactly one side of every pair waits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerID } from '../../../src/session/peer-id.js';
import { dialsSecond, firstDialDelay } from '../../../src/session/dialer.js';

test('without ids, exactly one side of each pair dials second (by instance name); with ids, the larger id', () => {
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
      assert.equal(aById, Buffer.compare(a.id.toBytes(), b.id.toBytes()) > 0, 'with ids: the larger id (the deciding side) waits');
    }
  }
  // names compare as UTF-8 bytes, the same on both sides whatever the locale
  assert.equal(dialsSecond({ id: PeerID.generate('x'), instanceName: 'Zoë' }, { peerKey: undefined, instanceName: 'Zoe' }), true);
  // an unusable id falls back to the names
  assert.equal(dialsSecond({ id: PeerID.generate('x'), instanceName: 'b' }, { peerKey: 'not-an-id', instanceName: 'a' }), true);
});

test('a session that does not advertise (peerlink send) dials a peer it finds at once; an advertised one keeps the pair rule', () => {
  const a = PeerID.generate('a');
  // 'b' > 'a': with instance names alone, "b" is the side that dials second.
  const theirs = { peerKey: undefined, instanceName: 'a' };
  const half = (): number => 0.5;
  assert.equal(firstDialDelay({ id: a, instanceName: 'b', advertise: false, architecture: 'star' }, theirs, half), 0, 'nobody can find it, so nobody dials it: waiting wins no race');
  assert.equal(firstDialDelay({ id: a, instanceName: 'b', advertise: true, architecture: 'star' }, theirs, half), 1050, 'the deciding side of an advertised pair waits');
  assert.equal(firstDialDelay({ id: a, instanceName: '0', advertise: true, architecture: 'star' }, theirs, half), 50, 'the other side dials after the jitter only');
  assert.equal(firstDialDelay({ id: a, instanceName: 'b', advertise: true, architecture: 'client-server' }, theirs, half), 50);
});

test('the side that dials second waits until 3 s after our announcement (the other cannot dial us before it resolved us)', () => {
  const a = PeerID.generate('a');
  const theirs = { peerKey: undefined, instanceName: 'a' };
  const half = (): number => 0.5;
  const ours = { id: a, instanceName: 'b', advertise: true, architecture: 'star' };
  assert.equal(firstDialDelay(ours, theirs, half, { now: 10_500, announcedAt: 10_000 }), 2550, 'announced 0.5 s ago: until 3 s after it');
  assert.equal(firstDialDelay(ours, theirs, half, { now: 12_500, announcedAt: 10_000 }), 1050, 'announced 2.5 s ago: the 1 s head start is longer');
  assert.equal(firstDialDelay(ours, theirs, half, { now: 90_000, announcedAt: 10_000 }), 1050);
  assert.equal(firstDialDelay(ours, theirs, half, { now: 10_500, announcedAt: undefined }), 1050, 'not announced (the Dialer holds first dials until it is): the 1 s head start');
  assert.equal(firstDialDelay({ ...ours, instanceName: '0' }, theirs, half, { now: 10_500, announcedAt: 10_000 }), 50, 'the side that dials first: the jitter only');
});
