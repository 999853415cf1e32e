import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { BatchWriter } from '../../../src/net/batch-writer.js';
import { lengthPrefixFramer } from '../../../src/net/framer.js';

/** A socket stand-in that records the writes it gets (writev counts as one). */
function recorder(): { socket: Socket; writes: Buffer[][]; bytes: () => Buffer } {
  const writes: Buffer[][] = [];
  const w = new Writable({
    highWaterMark: 1 << 30,
    writev(chunks, cb) {
      writes.push(chunks.map((c) => c.chunk as Buffer));
      cb();
    },
    write(chunk: Buffer, _enc, cb) {
      writes.push([chunk]);
      cb();
    },
  });
  return { socket: w as unknown as Socket, writes, bytes: () => Buffer.concat(writes.flat()) };
}

test('many small frames in one tick become a few writes of merged buffers', async () => {
  const r = recorder();
  const bw = new BatchWriter(r.socket);
  const msg = Buffer.alloc(100, 9);
  for (let i = 0; i < 2000; i++) bw.writeLengthPrefixed(msg);
  await new Promise((resolve) => process.nextTick(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  // 2000 × 104 bytes = 208 000 bytes: four 64 KiB buffers, not 2000 writes
  assert.ok(r.writes.length <= 5, `${r.writes.length} writes`);
  const wire = r.bytes();
  assert.equal(wire.length, 2000 * 104);
  const d = lengthPrefixFramer.createDecoder(1 << 20);
  d.push(wire);
  let n = 0;
  for (let f = d.next(); f; f = d.next()) {
    assert.ok(f.data.equals(msg));
    n++;
  }
  assert.equal(n, 2000);
});

test('large payloads are written by reference next to their header', async () => {
  const r = recorder();
  const bw = new BatchWriter(r.socket);
  const big = Buffer.alloc(200_000, 1);
  bw.writeLengthPrefixed(Buffer.from('small'));
  bw.writeLengthPrefixed(big);
  bw.writeLengthPrefixedChunks([Buffer.from('a'), Buffer.from('bc')]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(r.writes.flat().some((b) => b === big), 'the big payload was not copied');
  const d = lengthPrefixFramer.createDecoder(1 << 20);
  d.push(r.bytes());
  assert.equal(String(d.next()?.data), 'small');
  assert.equal(d.next()?.data.length, 200_000);
  assert.equal(String(d.next()?.data), 'abc');
});

test('on TLS, a large payload is its own write (never a writev the TLS socket would copy)', async () => {
  const r = recorder();
  const bw = new BatchWriter(r.socket, true);
  const big = Buffer.alloc(100_000, 2);
  bw.writeLengthPrefixed(Buffer.from('small'));
  bw.writeLengthPrefixedChunks([big, big]);
  bw.writeLengthPrefixed(Buffer.from('after'));
  await new Promise((resolve) => setImmediate(resolve));
  for (const w of r.writes) if (w.some((b) => b === big)) assert.equal(w.length, 1, 'the payload went out alone');
  assert.equal(r.writes.flat().filter((b) => b === big).length, 2, 'both payload chunks by reference');
  const d = lengthPrefixFramer.createDecoder(1 << 20);
  d.push(r.bytes());
  assert.equal(String(d.next()?.data), 'small');
  assert.ok(d.next()?.data.equals(Buffer.concat([big, big])));
  assert.equal(String(d.next()?.data), 'after');
});

test('an idle writer keeps a small buffer, not a 64 KiB one (memory per connection)', async () => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const sink = (): Socket => new Writable({ write: (_c, _e, cb) => cb() }) as unknown as Socket;
  gc();
  const before = process.memoryUsage().arrayBuffers;
  const writers: BatchWriter[] = [];
  for (let i = 0; i < 500; i++) {
    const bw = new BatchWriter(sink());
    bw.writeLengthPrefixed(Buffer.alloc(20)); // a keepalive-sized frame
    writers.push(bw);
  }
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  const perWriter = (process.memoryUsage().arrayBuffers - before) / writers.length;
  // 4 KiB each (a 64 KiB leftover each before); generous for allocator rounding.
  assert.ok(perWriter < 16 * 1024, `${Math.round(perWriter)} bytes of buffers per idle writer`);
  // and a busy one still merges into 64 KiB buffers after the first fills
  const r = recorder();
  const busy = new BatchWriter(r.socket);
  for (let i = 0; i < 2000; i++) busy.writeLengthPrefixed(Buffer.alloc(100));
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(r.writes.length <= 5, `${r.writes.length} writes`);
});
