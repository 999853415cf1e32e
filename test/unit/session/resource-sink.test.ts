import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isPeerlinkError } from '../../../src/errors.js';
import { ResourceStore } from '../../../src/session/resource-store.js';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pl-sink-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Yields `data` in pieces of `piece` bytes, like a network stream would. */
function chunked(data: Buffer, piece: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += piece) parts.push(data.subarray(i, i + piece));
  return Readable.from(parts);
}

test('sink writes, verifies and places the file under its name', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  const data = randomBytes(1_000_003);
  const sink = await store.open('data.bin', data.length, sha(data));
  await pipeline(chunked(data, 10_000), sink);
  const placed = await sink.commit(sha(data));
  assert.equal(placed.name, 'data.bin');
  assert.equal(placed.path, join(dir, 'data.bin'));
  assert.equal(placed.sha256, sha(data));
  assert.deepEqual(await readFile(placed.path), data);
  assert.deepEqual(await readdir(dir), ['data.bin'], 'no temp file left');
});

test('a zero-byte resource', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  const sink = await store.open('empty.txt', 0);
  sink.end();
  const placed = await sink.commit(sha(Buffer.alloc(0)));
  assert.equal((await readFile(placed.path)).length, 0);
});

test('a name clash gets a numbered suffix and never overwrites', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'notes.txt'), 'original');
  await writeFile(join(dir, 'notes (1).txt'), 'first copy');
  const store = new ResourceStore({ directory: dir });
  const data = Buffer.from('new notes');
  const sink = await store.open('notes.txt', data.length);
  await pipeline(Readable.from([data]), sink);
  const placed = await sink.commit(sha(data));
  assert.equal(placed.name, 'notes (2).txt');
  assert.equal(await readFile(join(dir, 'notes.txt'), 'utf8'), 'original');
  assert.equal(await readFile(join(dir, 'notes (1).txt'), 'utf8'), 'first copy');
  assert.equal(await readFile(join(dir, 'notes (2).txt'), 'utf8'), 'new notes');
});

test('a symlink in the way is not followed', async (t) => {
  const dir = await tempDir(t);
  const outside = await tempDir(t);
  await symlink(join(outside, 'target.txt'), join(dir, 'link.txt'));
  const store = new ResourceStore({ directory: dir });
  const data = Buffer.from('payload');
  const sink = await store.open('link.txt', data.length);
  await pipeline(Readable.from([data]), sink);
  const placed = await sink.commit(null);
  assert.equal(placed.name, 'link (1).txt');
  assert.deepEqual(await readdir(outside), [], 'nothing written through the link');
});

test('concurrent transfers of one name each get their own file', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  const results = await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const data = Buffer.from(`copy ${i}`);
      const sink = await store.open('same.txt', data.length);
      await pipeline(Readable.from([data]), sink);
      return (await sink.commit(null)).name;
    }),
  );
  assert.equal(new Set(results).size, 8);
  assert.equal((await readdir(dir)).length, 8);
});

test('a digest mismatch fails with ERR_RESOURCE_VERIFY and removes the temp file', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  const data = randomBytes(200_000);
  const sink = await store.open('x.bin', data.length);
  await pipeline(chunked(data, 7000), sink);
  await assert.rejects(sink.commit('0'.repeat(64)), (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_VERIFY'));
  assert.deepEqual(await readdir(dir), []);
});

test('a header digest mismatch fails too', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  const data = Buffer.from('abc');
  const sink = await store.open('x.bin', data.length, 'f'.repeat(64));
  await pipeline(Readable.from([data]), sink);
  await assert.rejects(sink.commit(sha(data)), (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_VERIFY'));
  assert.deepEqual(await readdir(dir), []);
});

test('fewer bytes than announced fails with ERR_RESOURCE_VERIFY', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  const sink = await store.open('short.bin', 100);
  await pipeline(Readable.from([Buffer.alloc(60)]), sink);
  await assert.rejects(sink.commit(null), (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_VERIFY'));
  assert.deepEqual(await readdir(dir), []);
});

test('more bytes than announced is refused while writing', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  const sink = await store.open('long.bin', 100);
  await assert.rejects(pipeline(Readable.from([Buffer.alloc(60), Buffer.alloc(60)]), sink), (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_VERIFY'));
  await sink.abort();
  assert.deepEqual(await readdir(dir), []);
});

test('quota: counts what this store saved (not the directory), and refuses before writing', async (t) => {
  const dir = await tempDir(t);
  // Files already there are not the session's: they do not count (and are not rescanned).
  await writeFile(join(dir, 'existing.bin'), Buffer.alloc(5000));
  const store = new ResourceStore({ directory: dir, quota: 1000 });
  const first = await store.open('first.bin', 600);
  await pipeline(Readable.from([Buffer.alloc(600)]), first);
  await first.commit(null);
  assert.equal(await store.usage(), 600);
  await assert.rejects(store.open('big.bin', 500), (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_QUOTA'));
  assert.deepEqual((await readdir(dir)).sort(), ['existing.bin', 'first.bin']);
  const sink = await store.open('fits.bin', 400);
  await pipeline(Readable.from([Buffer.alloc(400)]), sink);
  await sink.commit(null);
  assert.equal(await store.usage(), 1000);
});

test('quota: transfers in progress count against it', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir, quota: 1000 });
  const [a, b] = await Promise.allSettled([store.open('a.bin', 600), store.open('b.bin', 600)]);
  assert.equal([a, b].filter((r) => r.status === 'fulfilled').length, 1);
  const refused = [a, b].find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.ok(isPeerlinkError(refused.reason, 'ERR_RESOURCE_QUOTA'));
  const ok = ([a, b].find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Awaited<ReturnType<typeof store.open>>>).value;
  await ok.abort();
  // Released: now it fits.
  const c = await store.open('c.bin', 600);
  await c.abort();
  assert.deepEqual(await readdir(dir), []);
});

test('a size larger than the free disk space is refused', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  await assert.rejects(store.open('huge.bin', Number.MAX_SAFE_INTEGER), (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_QUOTA'));
  assert.deepEqual(await readdir(dir), []);
});

test('hostile names are refused by the store and nothing is written', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  for (const name of ['../escape.txt', '/etc/passwd', 'NUL', 'a\nb', '..', '.hidden', 'x'.repeat(300)]) {
    await assert.rejects(store.open(name, 10), (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_NAME'), name);
  }
  assert.deepEqual(await readdir(dir), []);
});

test('abort removes the partial file; store.close stops open sinks and keeps theirs for resuming', async (t) => {
  const dir = await tempDir(t);
  const store = new ResourceStore({ directory: dir });
  const dropped = await store.open('dropped.bin', 1_000_000);
  dropped.write(Buffer.alloc(100_000));
  await dropped.abort();
  assert.deepEqual(await readdir(dir), [], 'abort() removes the file and its record');
  const sink = await store.open('partial.bin', 1_000_000);
  sink.write(Buffer.alloc(600_000));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await readdir(dir)).length, 2, 'partial file and record exist during the transfer');
  await store.close();
  const again = new ResourceStore({ directory: dir });
  const kept = await again.listPartial();
  assert.deepEqual(kept.map((k) => [k.name, k.size]), [['partial.bin', 1_000_000]]);
  assert.equal(kept[0]!.bytes, 600_000);
  await assert.rejects(store.open('after.bin', 1), (e: unknown) => isPeerlinkError(e, 'ERR_CLOSED'));
});

test('the default directory is a fresh private temp directory', async (t) => {
  const store = new ResourceStore();
  const dir = await store.directory();
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.ok(dir.startsWith(tmpdir()));
  assert.deepEqual(await readdir(dir), []);
});
