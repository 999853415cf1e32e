import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect, isDeepStrictEqual } from 'node:util';
import { bufferView } from '../../../src/net/buffer-view.js';

test('bufferView: a Buffer in every way an app can see, sharing the bytes it views', () => {
  const frame = Buffer.from('xxhello worldyy', 'latin1').subarray(1); // a frame that does not start at offset 0
  const v = bufferView(frame.buffer, frame.byteOffset + 1, 11);
  assert.ok(Buffer.isBuffer(v));
  assert.ok(v instanceof Buffer);
  assert.ok(v instanceof Uint8Array);
  assert.equal(v.constructor, Buffer);
  assert.equal(v.length, 11);
  assert.equal(v.toString('utf8'), 'hello world');
  assert.ok(v.equals(Buffer.from('hello world')));
  assert.equal(Buffer.compare(v, Buffer.from('hello world')), 0);
  assert.equal(v.readUInt16BE(0), 0x6865);
  assert.match(inspect(v), /^<Buffer 68 65 6c 6c 6f/);
  // An ordinary Buffer: same prototype, so strict deep equality with a Buffer of the same bytes holds
  // (what an app's tests of received messages use).
  assert.equal(Object.getPrototypeOf(v), Buffer.prototype);
  assert.deepStrictEqual(v, Buffer.from('hello world'));
  assert.ok(isDeepStrictEqual(v, Buffer.from('hello world')));
  assert.deepEqual(JSON.parse(JSON.stringify(v)), { type: 'Buffer', data: [...Buffer.from('hello world')] });
  // Buffer methods that build new Buffers return ordinary ones.
  const s = v.subarray(6);
  assert.equal(Object.getPrototypeOf(s), Buffer.prototype);
  assert.equal(s.toString(), 'world');
  assert.equal(Buffer.concat([v, s]).toString(), 'hello worldworld');
  // A view: writes show through both ways.
  frame[1] = 0x48;
  assert.equal(v.toString(), 'Hello world');
  v[10] = 0x44;
  assert.equal(frame.toString('latin1', 1, 12), 'Hello worlD');
});

test('bufferView: bounds outside the ArrayBuffer throw instead of reading past it', () => {
  const b = Buffer.alloc(16);
  assert.throws(() => bufferView(b.buffer, b.byteOffset + 10, b.buffer.byteLength), RangeError);
  assert.throws(() => bufferView(b.buffer, -1, 1), RangeError);
  assert.equal(bufferView(b.buffer, b.byteOffset + 16, 0).length, 0);
});
