// A resource body read from a stream that yields its pieces one by one (MessageStream `pieces`):
// large pieces are handed on as they are (no copy of the body), small ones are gathered into
// one copy, so a peer sending tiny messages cannot make the receiver hold a Buffer object (and
// the transport read behind it) per few bytes; bytes and their order are kept either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ResourceStreamReader } from '../../../src/session/resource-wire.js';

function piecesOf(parts: Buffer[]): Readable {
  const r = new Readable({ objectMode: true, highWaterMark: 16, read() {} });
  for (const p of parts) r.push(p);
  r.push(null);
  return r;
}

async function readAll(reader: ResourceStreamReader, max: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (;;) {
    const c = await reader.chunk(max);
    if (c === null) return out;
    out.push(c);
  }
}

test('large pieces are handed on uncopied, one per chunk', async () => {
  const parts = [randomBytes(16_384), randomBytes(16_000), randomBytes(65_536)];
  const got = await readAll(new ResourceStreamReader(piecesOf(parts)), 1024 * 1024);
  assert.equal(got.length, 3);
  for (let i = 0; i < 3; i++) assert.equal(got[i]!.buffer, parts[i]!.buffer, 'the same memory: no copy');
});

test('tiny pieces are gathered into copies, in order, within max', async () => {
  const backing = randomBytes(16_384);
  // 2000 one-to-seven-byte views of one transport read, as tiny stream messages would give.
  const parts: Buffer[] = [];
  let off = 0;
  for (let i = 0; off < backing.length && i < 2000; i++) {
    const n = 1 + (i % 7);
    parts.push(backing.subarray(off, Math.min(off + n, backing.length)));
    off += n;
  }
  const sent = Buffer.concat(parts);
  const got = await readAll(new ResourceStreamReader(piecesOf(parts)), 1024 * 1024);
  assert.deepEqual(Buffer.concat(got), sent);
  // Buffered 16 at a time by the stream: each chunk gathers what is buffered, not one per piece.
  assert.ok(got.length <= Math.ceil(parts.length / 8), `${got.length} chunks for ${parts.length} pieces`);
  for (const c of got) assert.notEqual(c.buffer, backing.buffer, 'a small chunk is a copy, not a view pinning the transport read');
  // max is honoured when gathering.
  const small = await readAll(new ResourceStreamReader(piecesOf(parts.slice())), 10);
  assert.ok(small.every((c) => c.length <= 10));
  assert.deepEqual(Buffer.concat(small), sent);
});
