// The Network framework profile's peer ids: parsed from 36 UUID characters in either case (Apple
// writes upper-case) or 16 bytes, and compared as 128-bit numbers by the seed's de-dup rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerID } from '../../../src/session/peer-id.js';
import { nwfDropDirection, parseNwfPeerId } from '../../../src/session/nwf-session.js';

test('a peer id message: upper- or lower-case UUID text, or 16 bytes; anything else is not an id', () => {
  const id = PeerID.generate('x');
  assert.ok(parseNwfPeerId(Buffer.from(id.id.toUpperCase()), 'x')?.equals(id));
  assert.ok(parseNwfPeerId(Buffer.from(id.id), 'x')?.equals(id));
  assert.ok(parseNwfPeerId(id.toBytes(), 'x')?.equals(id));
  assert.equal(parseNwfPeerId(Buffer.from(`{${id.id.slice(1)}`), 'x'), undefined);
  assert.equal(parseNwfPeerId(Buffer.from('hello'), 'x'), undefined);
  assert.equal(parseNwfPeerId(Buffer.alloc(17), 'x'), undefined);
});

test("the seed's rule on 128-bit values: local > remote drops the outgoing connection, else the incoming — not string order", () => {
  // As text 'a…' > 'B…' (ASCII 97 > 66), but as numbers 0xaa… < 0xbb…
  const local = PeerID.fromString('aaaaaaaa-0000-4000-8000-000000000000', 'local');
  const remote = PeerID.fromString('BBBBBBBB-0000-4000-8000-000000000000'.toLowerCase(), 'remote');
  assert.ok('aaaaaaaa' > 'BBBBBBBB');
  assert.equal(nwfDropDirection(local, remote), 'incoming');
  assert.equal(nwfDropDirection(remote, local), 'outgoing');
  // The two sides drop the two ends of the same connection.
  const low = PeerID.fromString('00000000-0000-4000-8000-000000000001', 'low');
  const high = PeerID.fromString('ffffffff-0000-4000-8000-000000000000', 'high');
  assert.equal(nwfDropDirection(high, low), 'outgoing');
  assert.equal(nwfDropDirection(low, high), 'incoming');
});
