import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lengthPrefixFramer, type Frame, type LengthPrefixDecoder } from '../../../src/net/framer.js';
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

/** Feeds `wire` cut at `cuts` through drain() (whole messages) or drainParts() (pieces). */
function drainWithSplits(wire: Buffer, cuts: number[], mode: 'whole' | 'parts', max = 1 << 20) {
  const d = lengthPrefixFramer.createDecoder(max) as LengthPrefixDecoder;
  const messages: Buffer[] = [];
  const controls: string[] = [];
  let pieces: Buffer[] = [];
  let pieceCount = 0;
  const control = (kind: 'ping' | 'pong', data: Buffer): void => {
    controls.push(`${kind}:${data.toString()}`);
  };
  const whole = { message: (m: Buffer) => messages.push(m), control };
  const parts = {
    part: (data: Buffer, complete: boolean) => {
      pieceCount++;
      if (data.length === 0) assert.ok(complete && pieces.length === 0, 'an empty piece is only ever a whole empty message');
      pieces.push(data);
      if (complete) {
        messages.push(Buffer.concat(pieces));
        pieces = [];
      }
    },
    control,
  };
  let prev = 0;
  for (const c of [...cuts, wire.length]) {
    d.push(wire.subarray(prev, c));
    prev = c;
    if (mode === 'whole') d.drain(whole);
    else d.drainParts(parts);
  }
  assert.equal(pieces.length, 0, 'no message left half delivered');
  return { messages, controls, pieceCount, buffered: d.buffered };
}

test('drain / drainParts: messages, empty messages and control frames split anywhere arrive intact', () => {
  const msgs = Array.from({ length: 120 }, (_, i) => randomBytes(i % 5 === 0 ? 0 : (i * 97) % 5000));
  const frames: Buffer[] = [];
  const wantControls: string[] = [];
  msgs.forEach((m, i) => {
    frames.push(...lengthPrefixFramer.encode({ kind: 'message', data: m }));
    if (i % 9 === 0) {
      frames.push(...lengthPrefixFramer.encode({ kind: i % 2 ? 'pong' : 'ping', data: Buffer.from(`t${i}`) }));
      wantControls.push(`${i % 2 ? 'pong' : 'ping'}:t${i}`);
    }
  });
  const wire = Buffer.concat(frames);
  for (let round = 0; round < 40; round++) {
    const cuts = Array.from({ length: 1 + Math.floor(Math.random() * 400) }, () => Math.floor(Math.random() * wire.length)).sort((a, b) => a - b);
    for (const mode of ['whole', 'parts'] as const) {
      const got = drainWithSplits(wire, cuts, mode);
      assert.equal(got.messages.length, msgs.length, mode);
      got.messages.forEach((m, i) => assert.ok(m.equals(msgs[i] as Buffer), `${mode}: message ${i}`));
      assert.deepEqual(got.controls, wantControls, mode);
      assert.equal(got.buffered, 0);
    }
  }
  // one byte at a time: every control frame header and payload is split
  for (const mode of ['whole', 'parts'] as const) {
    const got = drainWithSplits(wire, Array.from({ length: wire.length }, (_, i) => i), mode);
    assert.equal(got.messages.length, msgs.length);
    assert.deepEqual(got.controls, wantControls);
  }
});

test('drainParts hands out views of the received chunks, never copies', () => {
  const big = randomBytes(200_000);
  const wire = encodeAll([big]);
  const chunks: Buffer[] = [];
  // Each read in its own allocation, as the socket delivers them.
  for (let off = 0; off < wire.length; off += 16384) {
    const c = Buffer.alloc(Math.min(16384, wire.length - off));
    wire.copy(c, 0, off, off + c.length);
    chunks.push(c);
  }
  const d = lengthPrefixFramer.createDecoder(1 << 20) as LengthPrefixDecoder;
  const pieces: Array<{ data: Buffer; complete: boolean }> = [];
  for (const c of chunks) {
    d.push(c);
    d.drainParts({ part: (data, complete) => pieces.push({ data, complete }), control: () => assert.fail('no control frame was sent') });
  }
  assert.equal(pieces.length, chunks.length, 'one piece per read');
  pieces.forEach((p, i) => {
    assert.equal(p.data.buffer, (chunks[i] as Buffer).buffer, `piece ${i} is a view of its read`);
    assert.equal(p.complete, i === pieces.length - 1);
  });
  assert.ok(Buffer.concat(pieces.map((p) => p.data)).equals(big));
});

test('drainParts checks the length limit at the header, before any piece is delivered', () => {
  const d = lengthPrefixFramer.createDecoder(1024) as LengthPrefixDecoder;
  const wire = encodeAll([Buffer.alloc(2000)]);
  d.push(wire.subarray(0, 100));
  let pieces = 0;
  assert.throws(
    () => d.drainParts({ part: () => pieces++, control: () => undefined }),
    (e: unknown) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'),
  );
  assert.equal(pieces, 0);
});
