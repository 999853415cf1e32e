// Hashing a resource's body off the main thread (resource-hash.ts): the digest is the one
// node:crypto gives for the same bytes, however they are cut; and a transfer large enough to
// use it still verifies end to end, and still notices a source that shrinks while it is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPeerlinkError } from '../../../src/errors.js';
import { OFF_THREAD_MIN, OffThreadHash, createBodyHash } from '../../../src/session/resource-hash.js';
import { ResourceManager } from '../../../src/session/resource-manager.js';
import type { IncomingResource } from '../../../src/session/resource-receive.js';
import { tempDir, type Ctx } from '../../harness/loopback.js';
import { senderTo } from './resource-pair.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('the off-thread digest equals node:crypto for the same bytes in irregular pieces', () => {
  // Several times the ring (4 × 512 KiB), in pieces that straddle slot boundaries.
  const data = randomBytes(9 * 1024 * 1024 + 13);
  const h = new OffThreadHash();
  let off = 0;
  let i = 0;
  const sizes = [1, 65_536, 3 * 1024 * 1024 + 7, 0, 1024 * 1024, 17, 2 * 1024 * 1024 - 1];
  while (off < data.length) {
    const n = Math.min(sizes[i++ % sizes.length]!, data.length - off);
    h.update(data.subarray(off, off + n));
    off += n;
  }
  assert.equal(h.digest('hex'), sha(data));
});

test('an empty body, and a body of exactly one slot', () => {
  assert.equal(new OffThreadHash().digest('hex'), sha(Buffer.alloc(0)));
  const slot = randomBytes(1024 * 1024);
  assert.equal(new OffThreadHash().update(slot).digest('hex'), sha(slot));
});

test('a disposed hash ends its worker and cannot be finished', () => {
  const h = new OffThreadHash();
  h.update(randomBytes(5 * 1024 * 1024));
  h.dispose();
  h.dispose();
  assert.throws(() => h.digest('hex'), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_STATE'));
});

// The e2e tests below use the worker whatever the core count (by default it needs more than 2).
process.env.PEERLINK_HASH_THREAD = '1';

test('small bodies are hashed in line, large ones off the main thread', () => {
  const small = createBodyHash(OFF_THREAD_MIN - 1);
  assert.ok(!(small instanceof OffThreadHash));
  assert.equal(small.update(Buffer.from('abc')) && small.digest('hex'), sha(Buffer.from('abc')));
  const large = createBodyHash(OFF_THREAD_MIN);
  assert.ok(large instanceof OffThreadHash);
  large.dispose();
});

function pair(t: Ctx, dir: string): { sender: ResourceManager<string>; incoming: Promise<IncomingResource<string>> } {
  let resolveIncoming!: (r: IncomingResource<string>) => void;
  const incoming = new Promise<IncomingResource<string>>((r) => (resolveIncoming = r));
  const receiver = new ResourceManager<string>({ directory: dir, open: () => assert.fail('receiver never opens'), announce: resolveIncoming, listening: () => true });
  const { sender } = senderTo(t, receiver);
  return { sender, incoming };
}

test('a file large enough to be hashed off the main thread arrives verified on both ends', async (t) => {
  const src = await tempDir(t, 'pl-hash-src-');
  const dir = await tempDir(t, 'pl-hash-dl-');
  const data = randomBytes(OFF_THREAD_MIN + 3 * 1024 * 1024 + 101);
  await writeFile(join(src, 'large.bin'), data);
  const p = pair(t, dir);
  const transfer = p.sender.send(join(src, 'large.bin'), 'large.bin', 'r');
  const incoming = await p.incoming;
  const [sent, received] = await Promise.all([transfer.done, incoming.done]);
  assert.equal(sent.sha256, sha(data));
  assert.equal(received.sha256, sha(data));
  assert.ok((await readFile(received.path)).equals(data));
});

test('a source that shrinks while it is sent fails with ERR_RESOURCE_SOURCE, and nothing is saved', async (t) => {
  const src = await tempDir(t, 'pl-hash-src-');
  const dir = await tempDir(t, 'pl-hash-dl-');
  // Sparse and far larger than what is read ahead and in flight when it is cut.
  await writeFile(join(src, 'shrinks.bin'), '');
  await truncate(join(src, 'shrinks.bin'), 512 * 1024 * 1024);
  const p = pair(t, dir);
  const transfer = p.sender.send(join(src, 'shrinks.bin'), 'shrinks.bin', 'r');
  const incoming = await p.incoming;
  while (incoming.progress.bytes < 1024 * 1024) await once(incoming, 'progress');
  await truncate(join(src, 'shrinks.bin'), 2 * 1024 * 1024);
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_SOURCE'));
  await assert.rejects(incoming.done);
  assert.ok(!(await readdir(dir)).includes('shrinks.bin'));
});
