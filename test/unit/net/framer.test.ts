import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lengthPrefixFramer, type Frame } from '../../../src/net/framer.js';
import { isPeerlinkError } from '../../../src/errors.js';

function encodeAll(msgs: Buffer[]): Buffer {
  return Buffer.concat(msgs.flatMap((m) => lengthPrefixFramer.encode({ kind: 'message', data: m })));
}

function decodeWithSplits(wire: Buffer, cuts: number[], max = 1 << 20): Frame[] {
  const d = lengthPrefixFramer.createDecoder(max);
  const out: Frame[] = [];
  let prev = 0;
  for (const c of [...cuts, wire.length]) {
    d.push(wire.subarray(prev, c));
    prev = c;
    for (let f = d.next(); f; f = d.next()) out.push(f);
  }
  return out;
}

test('messages split and coalesced arbitrarily across reads arrive whole', () => {
  const msgs = Array.from({ length: 200 }, (_, i) => randomBytes(i % 7 === 0 ? 0 : (i * 37) % 3000));
  const wire = encodeAll(msgs);
  for (let round = 0; round < 50; round++) {
    const cuts = Array.from({ length: 1 + Math.floor(Math.random() * 300) }, () => Math.floor(Math.random() * wire.length)).sort((a, b) => a - b);
    const frames = decodeWithSplits(wire, cuts);
    assert.equal(frames.length, msgs.length);
    frames.forEach((f, i) => {
      assert.equal(f.kind, 'message');
      assert.ok(f.data.equals(msgs[i] as Buffer));
    });
  }
  // one byte at a time
  const frames = decodeWithSplits(wire, Array.from({ length: wire.length }, (_, i) => i));
  assert.equal(frames.length, msgs.length);
});

test('a message given as several chunks is one frame', () => {
  const parts = [Buffer.from('ab'), Buffer.from('cde'), Buffer.alloc(0), Buffer.from('f')];
  const wire = Buffer.concat(lengthPrefixFramer.encode({ kind: 'message', data: parts }));
  const frames = decodeWithSplits(wire, []);
  assert.equal(frames.length, 1);
  assert.equal(String(frames[0]?.data), 'abcdef');
});

test('the length is checked against the limit before anything is allocated', () => {
  const d = lengthPrefixFramer.createDecoder(1024);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(0x7fffffff, 0);
  d.push(header);
  assert.throws(() => d.next(), (e: unknown) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'));
  // exactly at the limit is fine
  const ok = lengthPrefixFramer.createDecoder(1024);
  ok.push(Buffer.concat(lengthPrefixFramer.encode({ kind: 'message', data: Buffer.alloc(1024) })));
  assert.equal(ok.next()?.data.length, 1024);
});

test('control frames: ping / pong round trip, malformed control rejected', () => {
  const p = Buffer.from('12345678');
  const wire = Buffer.concat([
    ...lengthPrefixFramer.encode({ kind: 'ping', data: p }),
    ...lengthPrefixFramer.encode({ kind: 'message', data: Buffer.from('x') }),
    ...lengthPrefixFramer.encode({ kind: 'pong', data: p }),
  ]);
  const frames = decodeWithSplits(wire, [3, 9, 14]);
  assert.deepEqual(frames.map((f) => f.kind), ['ping', 'message', 'pong']);
  assert.ok(frames[0]?.data.equals(p));
  const bad = lengthPrefixFramer.createDecoder(1024);
  const h = Buffer.alloc(4);
  h.writeUInt32BE((0x80000000 | 1000) >>> 0, 0);
  bad.push(h);
  assert.throws(() => bad.next(), (e: unknown) => isPeerlinkError(e, 'ERR_MALFORMED_FRAME'));
});

test('large frames are assembled from a chunk list (not re-concatenated per chunk)', () => {
  const big = randomBytes(8 * 1024 * 1024);
  const wire = encodeAll([big]);
  const d = lengthPrefixFramer.createDecoder(16 * 1024 * 1024);
  const t0 = process.hrtime.bigint();
  for (let off = 0; off < wire.length; off += 1024) d.push(wire.subarray(off, off + 1024));
  const f = d.next();
  assert.ok(f && f.data.equals(big));
  // Not a speed assert: just that the decoder held the chunks and nothing more.
  assert.equal(d.buffered, 0);
  void t0;
});
