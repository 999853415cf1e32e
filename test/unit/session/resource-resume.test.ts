// Resuming: the prefix proof (resource-prefix.ts), the partial-file store (resource-partial.ts,
// resource-store.ts), and both ends of a resumed transfer over real TCP on 127.0.0.1 (the
// ResourceManager given a socket as its stream, as in resource-transfer.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { open, readdir, readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { socketPair, tempDir, type Ctx } from '../../harness/loopback.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { ResourceManager } from '../../../src/session/resource-manager.js';
import { resourceChannel } from '../../../src/session/resource-progress.js';
import type { IncomingResource, ResourceOffer } from '../../../src/session/resource-receive.js';
import { ResourceStore, MAX_PARTIALS } from '../../../src/session/resource-store.js';
import { blockSizeFor, isBlockSize, matchPrefix, scanPrefix, MAX_RESUME_BLOCKS, RESUME_BLOCK_MIN, MiB } from '../../../src/session/resource-prefix.js';
import { PARTIAL_MAX_AGE_MS, partialDataName, partialKey } from '../../../src/session/resource-partial.js';
import { encodeFrame, parseFrame, ResourceStreamReader } from '../../../src/session/resource-wire.js';
import { senderTo } from './resource-pair.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const chunks = (b: Buffer, n = 100_000): Readable => Readable.from(Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, (i + 1) * n)));

async function scanOf(t: Ctx, data: Buffer): Promise<Awaited<ReturnType<typeof scanPrefix>>> {
  const dir = await tempDir(t, 'pl-prefix-');
  await writeFile(join(dir, 'p'), data);
  const fh = await open(join(dir, 'p'), 'r');
  try {
    return await scanPrefix(fh, data.length);
  } finally {
    await fh.close();
  }
}

// ---- the prefix proof ------------------------------------------------------------------------

test('prefix: the same bytes match to the end of the prefix, and the hash is of exactly those bytes', async (t) => {
  const file = randomBytes(11 * MiB + 5);
  const have = 9 * MiB + 3;
  const scan = await scanOf(t, file.subarray(0, have));
  assert.equal(scan.block, RESUME_BLOCK_MIN);
  assert.equal(scan.digests.length, 3);
  const m = await matchPrefix(chunks(file), scan.block, scan.digests, have);
  assert.equal(m.offset, have);
  assert.equal(m.hash.digest('hex'), sha(file.subarray(0, have)));
  // The receiver's hash state at that offset is the same digest: both sides agree on the prefix.
  assert.equal(scan.states.get(have)!.copy().digest('hex'), sha(file.subarray(0, have)));
  assert.deepEqual([...scan.states.keys()], [0, 4 * MiB, 8 * MiB, have]);
});

test('prefix: an altered byte in the third block resumes at that block; a different file at 0; a shorter source where it ends', async (t) => {
  const file = randomBytes(10 * MiB);
  const partial = Buffer.from(file.subarray(0, 10 * MiB));
  partial[8 * MiB + 12345] ^= 0xff;
  const scan = await scanOf(t, partial);
  const m = await matchPrefix(chunks(file), scan.block, scan.digests, partial.length);
  assert.equal(m.offset, 8 * MiB);
  assert.equal(m.hash.digest('hex'), sha(file.subarray(0, 8 * MiB)), 'the altered block is not in the hash');
  const other = randomBytes(10 * MiB);
  assert.equal((await matchPrefix(chunks(other), scan.block, scan.digests, partial.length)).offset, 0, 'another file of the same size is not spliced');
  assert.equal((await matchPrefix(chunks(file.subarray(0, 6 * MiB)), scan.block, scan.digests, partial.length)).offset, 4 * MiB);
});

test('prefix: block sizes grow so that no accept carries more than 128 digests, and only powers of two from 4 MiB are valid', () => {
  assert.equal(blockSizeFor(0), RESUME_BLOCK_MIN);
  assert.equal(blockSizeFor(512 * MiB), 4 * MiB);
  assert.equal(blockSizeFor(512 * MiB + 1), 8 * MiB);
  for (const have of [1, 10 * MiB, 2 ** 33 + 7, 2 ** 40, Number.MAX_SAFE_INTEGER]) assert.ok(Math.ceil(have / blockSizeFor(have)) <= MAX_RESUME_BLOCKS, String(have));
  for (const b of [4 * MiB, 8 * MiB, 2 ** 46]) assert.ok(isBlockSize(b));
  for (const b of [0, 1, MiB, 3 * MiB, 5 * MiB, 2 ** 47, -4 * MiB, 4.5 * MiB, NaN, '4194304']) assert.ok(!isBlockSize(b), String(b));
});

test('wire: resume fields are bounded and checked (block, digest count and form, offsets)', () => {
  const frame = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
  const d = 'a'.repeat(64);
  const ok = parseFrame(frame({ type: 'accept', offset: 0, resume: { have: 5 * MiB, block: 4 * MiB, digests: [d, d] } }));
  assert.deepEqual(ok, { type: 'accept', offset: 0, resume: { have: 5 * MiB, block: 4 * MiB, digests: [d, d] } });
  const bad = [
    { have: 5 * MiB, block: 4 * MiB, digests: [d] }, // too few for `have`
    { have: 5 * MiB, block: 4 * MiB, digests: [d, d, d] }, // too many
    { have: 5 * MiB, block: 3 * MiB, digests: [d, d] }, // not a power of two
    { have: -1, block: 4 * MiB, digests: [] },
    { have: 1, block: 4 * MiB, digests: ['A'.repeat(64)] }, // upper-case
    { have: 1, block: 4 * MiB, digests: [5] },
    { have: 129 * 4 * MiB, block: 4 * MiB, digests: Array.from({ length: 129 }, () => d) }, // over 128
    'x',
    null,
  ];
  for (const r of bad) assert.throws(() => parseFrame(frame({ type: 'accept', offset: 0, resume: r })), (e: unknown) => isPeerlinkError(e, 'ERR_PROTOCOL'), JSON.stringify(r)?.slice(0, 80));
  assert.deepEqual(parseFrame(frame({ type: 'resume', offset: 4 * MiB, sha256: d })), { type: 'resume', offset: 4 * MiB, sha256: d });
  for (const r of [{ offset: -1, sha256: d }, { offset: 2 ** 60, sha256: d }, { offset: 0, sha256: 'zz' }, { offset: '0', sha256: d }])
    assert.throws(() => parseFrame(frame({ type: 'resume', ...r })), (e: unknown) => isPeerlinkError(e, 'ERR_PROTOCOL'));
  // A header's resume flag is read only as exactly 1.
  assert.equal((parseFrame(frame({ type: 'resource', v: 1, name: 'a', size: 1, sha256: null, resume: 'yes' })) as { resume?: number }).resume, undefined);
});

// ---- the partial-file store --------------------------------------------------------------------

test('store: an interrupted sink leaves a partial file that a resumable open reads back (digests of what is on disk)', async (t) => {
  const dir = await tempDir(t, 'pl-partial-');
  const data = randomBytes(6 * MiB);
  const store = new ResourceStore({ directory: dir });
  const sink = await store.openPartial('f.bin', data.length, null, { resume: true });
  assert.equal(sink.prefix, undefined, 'nothing to resume yet');
  await sink.startAt(0, createHash('sha256'));
  sink.write(data.subarray(0, 5 * MiB));
  // Until the file has the bytes (writableLength counts a chunk until its write completed);
  // a fixed 100 ms was too short on a loaded machine.
  for (let i = 0; i < 500 && sink.writableLength > 0; i++) await new Promise((r) => setTimeout(r, 20));
  await sink.abort(new Error('lost'), true);
  const [p] = await store.listPartial();
  assert.equal(p?.name, 'f.bin');
  assert.equal(p?.size, data.length);
  assert.ok(p!.bytes >= 4.5 * MiB && p!.bytes <= 5 * MiB, `bytes on disk: ${p!.bytes}`);
  assert.ok(p!.expiresAt.getTime() - p!.updatedAt.getTime() === PARTIAL_MAX_AGE_MS);
  assert.equal(await store.usage(), p!.bytes, 'a waiting partial counts by its bytes on disk');
  const again = await store.openPartial('f.bin', data.length, null, { resume: true });
  assert.equal(again.prefix?.have, p!.bytes);
  assert.equal(again.prefix?.digests[0], sha(data.subarray(0, 4 * MiB)));
  assert.equal(await store.usage(), data.length, 'resumed: the reservation covers it');
  // A sender that cannot resume (no flag) starts the file over.
  await again.abort(new Error('lost'), true);
  const fresh = await store.openPartial('f.bin', data.length, null, { resume: false });
  assert.equal(fresh.prefix, undefined);
  await fresh.abort();
  assert.deepEqual(await readdir(dir), [], 'abort without keep removes file and record');
});

test('store: a partial announced with another digest is not offered; partials expire after 7 days; discard removes them', async (t) => {
  const dir = await tempDir(t, 'pl-partial-');
  const store = new ResourceStore({ directory: dir });
  const keep = async (name: string, bytes: number, digest: string | null): Promise<void> => {
    const s = await store.openPartial(name, 8 * MiB, digest, { resume: true });
    await s.startAt(0, createHash('sha256'));
    s.write(randomBytes(bytes));
    await new Promise((r) => setTimeout(r, 50));
    await s.abort(new Error('lost'), true);
  };
  await keep('a.bin', MiB, 'a'.repeat(64));
  const other = await store.openPartial('a.bin', 8 * MiB, 'b'.repeat(64), { resume: true });
  assert.equal(other.prefix, undefined, 'another announced digest: another file');
  await other.abort(new Error('lost'), true);
  await keep('b.bin', MiB, null);
  await keep('c.bin', MiB, null);
  assert.deepEqual((await store.listPartial()).map((p) => p.name).sort(), ['a.bin', 'b.bin', 'c.bin']);
  const old = new Date(Date.now() - PARTIAL_MAX_AGE_MS - 60_000);
  await utimes(join(dir, partialDataName(partialKey('b.bin', 8 * MiB))), old, old);
  assert.deepEqual((await store.listPartial()).map((p) => p.name).sort(), ['a.bin', 'c.bin'], 'expired one removed');
  assert.deepEqual((await store.discardPartial({ name: 'c.bin' })).map((p) => p.name), ['c.bin']);
  assert.deepEqual((await store.listPartial()).map((p) => p.name), ['a.bin']);
  await store.discardPartial();
  assert.deepEqual(await readdir(dir), []);
  // A restarted store (a restarted receiver) finds what an earlier one kept, and counts it.
  await keep('d.bin', MiB, null);
  const restarted = new ResourceStore({ directory: dir, quota: 8 * MiB + MiB / 2 });
  await restarted.directory();
  assert.ok((await restarted.usage()) >= MiB / 2);
  await assert.rejects(restarted.check('e.bin', 8 * MiB), (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_QUOTA'), 'the waiting partial takes quota');
});

// ---- both ends ---------------------------------------------------------------------------------

interface Pair {
  sender: ResourceManager<string>;
  receiver: ResourceManager<string>;
  dir: string;
  nextIncoming: () => Promise<IncomingResource<string>>;
  receiverSocket: () => Socket | undefined;
}

async function pair(t: Ctx, dir?: string): Promise<Pair> {
  dir ??= await tempDir(t, 'pl-resume-dl-');
  const queue: Array<IncomingResource<string>> = [];
  const waiting: Array<(r: IncomingResource<string>) => void> = [];
  const receiver = new ResourceManager<string>({
    directory: dir,
    open: () => assert.fail('receiver never opens'),
    announce: (r) => (waiting.length ? waiting.shift()!(r) : queue.push(r)),
    listening: () => true,
  });
  const { sender, receiverSocket } = senderTo(t, receiver);
  return {
    sender,
    receiver,
    dir,
    nextIncoming: () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r))),
    receiverSocket,
  };
}

/** Returns as soon as the transfer has `bytes` (progress events are throttled to 100 ms: too coarse on loopback). */
async function reached(x: { progress: { bytes: number } }, bytes: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (x.progress.bytes < bytes) {
    if (Date.now() > deadline) throw new Error(`stuck at ${x.progress.bytes} bytes`);
    await new Promise((r) => setImmediate(r));
  }
}

/** Sends `path` and cuts the connection (a reset, as a lost peer) once the receiver has `atLeast` bytes. */
async function interrupted(p: Pair, path: string, name: string, atLeast: number): Promise<void> {
  const transfer = p.sender.send(path, name, 'r');
  const incoming = await p.nextIncoming();
  await reached(incoming, atLeast);
  p.receiverSocket()!.resetAndDestroy();
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_ABORTED'));
  await assert.rejects(incoming.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_ABORTED'));
}

test('a transfer cut at about half resumes when sent again: only the rest crosses, and the SHA-256 is right', async (t) => {
  const src = await tempDir(t, 'pl-resume-src-');
  const data = randomBytes(40 * MiB + 100);
  await writeFile(join(src, 'f.bin'), data);
  const p = await pair(t);
  await interrupted(p, join(src, 'f.bin'), 'f.bin', 20 * MiB);
  const [partial] = await p.receiver.store.listPartial();
  assert.ok(partial && partial.bytes >= 8 * MiB, `kept ${partial?.bytes}`);
  const published: Array<{ event: string; direction: string; offset?: number }> = [];
  const onMessage = (m: unknown): void => void published.push(m as { event: string; direction: string; offset?: number });
  resourceChannel.subscribe(onMessage);
  t.after(() => resourceChannel.unsubscribe(onMessage));
  const again = p.sender.send(join(src, 'f.bin'), 'f.bin', 'r');
  const resumed: number[] = [];
  again.on('resumed', ({ offset }) => resumed.push(offset));
  const incoming = await p.nextIncoming();
  const [sent, received] = await Promise.all([again.done, incoming.done]);
  assert.equal(sent.sha256, sha(data));
  assert.equal(received.sha256, sha(data));
  assert.deepEqual(await readFile(join(p.dir, 'f.bin')), data);
  // Resumed at the last whole block the receiver held: everything before it stayed put.
  const expected = Math.floor(partial!.bytes / (4 * MiB)) * 4 * MiB;
  assert.ok(again.resumedFrom >= expected && again.resumedFrom <= partial!.bytes, `resumed from ${again.resumedFrom}`);
  assert.deepEqual(resumed, [again.resumedFrom]);
  assert.equal(incoming.resumedFrom, again.resumedFrom);
  assert.equal(again.bytesOnWire, data.length - again.resumedFrom, 'only the rest was sent');
  assert.equal(incoming.bytesOnWire, data.length - again.resumedFrom);
  assert.equal(again.progress.bytes, data.length);
  assert.deepEqual(await readdir(p.dir), ['f.bin'], 'partial file and record gone once placed');
  assert.deepEqual(
    published
      .filter((m) => m.event === 'resumed')
      .map((m) => `${m.direction} ${m.offset}`)
      .sort(),
    [`receive ${again.resumedFrom}`, `send ${again.resumedFrom}`],
    'resumes are published on the diagnostics channel',
  );
});

test('altered bytes in the partial file are detected and re-sent; the digest matches', async (t) => {
  const src = await tempDir(t, 'pl-resume-src-');
  const data = randomBytes(40 * MiB);
  await writeFile(join(src, 'f.bin'), data);
  const p = await pair(t);
  await interrupted(p, join(src, 'f.bin'), 'f.bin', 13 * MiB);
  const partialPath = join(p.dir, partialDataName(partialKey('f.bin', data.length)));
  assert.ok((await stat(partialPath)).size > 9 * MiB);
  // Flip a byte in the second block (4–8 MiB).
  const fh = await open(partialPath, 'r+');
  await fh.write(Buffer.from([data[5 * MiB]! ^ 0xff]), 0, 1, 5 * MiB);
  await fh.close();
  const again = p.sender.send(join(src, 'f.bin'), 'f.bin', 'r');
  const incoming = await p.nextIncoming();
  const [sent, received] = await Promise.all([again.done, incoming.done]);
  assert.equal(again.resumedFrom, 4 * MiB, 'continued from the block that differed');
  assert.equal(sent.sha256, sha(data));
  assert.equal(received.sha256, sha(data));
  assert.deepEqual(await readFile(join(p.dir, 'f.bin')), data);
});

test('a different file with the same name and size is not spliced onto the old prefix', async (t) => {
  const src = await tempDir(t, 'pl-resume-src-');
  const first = randomBytes(40 * MiB);
  const second = randomBytes(40 * MiB);
  await writeFile(join(src, 'one.bin'), first);
  await writeFile(join(src, 'two.bin'), second);
  const p = await pair(t);
  await interrupted(p, join(src, 'one.bin'), 'same.bin', 9 * MiB);
  assert.equal((await p.receiver.store.listPartial()).length, 1);
  const again = p.sender.send(join(src, 'two.bin'), 'same.bin', 'r');
  const incoming = await p.nextIncoming();
  const [sent] = await Promise.all([again.done, incoming.done]);
  assert.equal(again.resumedFrom, 0);
  assert.equal(again.bytesOnWire, second.length);
  assert.equal(sent.sha256, sha(second));
  assert.deepEqual(await readFile(join(p.dir, 'same.bin')), second);
});

test('cancel on the sender mid-body removes the partial file; a receiver restarted on the directory resumes', async (t) => {
  const src = await tempDir(t, 'pl-resume-src-');
  // Large (sparse: no disk on this side) so the rest cannot cross loopback before the cancel / close.
  await writeFile(join(src, 'big.bin'), '');
  await truncate(join(src, 'big.bin'), 160 * MiB);
  const p = await pair(t);
  const transfer = p.sender.send(join(src, 'big.bin'), 'f.bin', 'r');
  const incoming = await p.nextIncoming();
  await reached(incoming, 5 * MiB);
  transfer.cancel();
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_CANCELLED'));
  await assert.rejects(incoming.done);
  assert.deepEqual(await p.receiver.store.listPartial(), [], 'a cancel drops it');

  // Now a receiver that closes mid-transfer (stopped, not cancelled), and a new one on its directory.
  const t2 = p.sender.send(join(src, 'big.bin'), 'f.bin', 'r');
  const in2 = await p.nextIncoming();
  await reached(in2, 9 * MiB);
  await p.receiver.close();
  const r2 = await t2.done.then((v) => v, (e: unknown) => e);
  assert.ok(isPeerlinkError(r2), `the transfer was stopped (${JSON.stringify(r2)}, state ${in2.state}, ${in2.progress.bytes})`);
  const q = await pair(t, p.dir);
  assert.equal((await q.receiver.store.listPartial()).length, 1);
  const t3 = q.sender.send(join(src, 'big.bin'), 'f.bin', 'r');
  const in3 = await q.nextIncoming();
  const [sent, received] = await Promise.all([t3.done, in3.done]);
  assert.ok(t3.resumedFrom >= 4 * MiB, `resumed from ${t3.resumedFrom}`);
  const zeros = sha(Buffer.alloc(160 * MiB));
  assert.equal(sent.sha256, zeros);
  assert.equal(received.sha256, zeros);
});

test('an http source resumes with Range (206) when the server supports it, and by skipping when it does not (200)', async (t) => {
  const data = randomBytes(40 * MiB);
  for (const ranges of [true, false]) {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.range ?? '');
      const m = ranges ? /^bytes=(\d+)-$/.exec(req.headers.range ?? '') : null;
      if (m) {
        const start = Number(m[1]);
        res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
        res.end(data.subarray(start));
      } else {
        res.writeHead(200, { 'content-length': data.length });
        res.end(data);
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.after(() => server.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/f.bin`;
    const p = await pair(t);
    await interrupted(p, url, 'f.bin', 20 * MiB);
    const again = p.sender.send(url, 'f.bin', 'r');
    const incoming = await p.nextIncoming();
    const [sent] = await Promise.all([again.done, incoming.done]);
    assert.equal(sent.sha256, sha(data));
    assert.ok(again.resumedFrom >= 16 * MiB, `resumed from ${again.resumedFrom}`);
    assert.equal(again.bytesOnWire, data.length - again.resumedFrom, 'only the rest crossed to the receiver');
    assert.deepEqual(await readFile(join(p.dir, 'f.bin')), data);
    // The prefix is checked against a fresh GET; the rest is asked for with a Range.
    assert.equal(seen.at(-1), `bytes=${again.resumedFrom}-`, seen.join(' | '));
  }
});

test('store: at most MAX_PARTIALS partial files are kept; the oldest goes first', async (t) => {
  const dir = await tempDir(t, 'pl-partial-max-');
  const store = new ResourceStore({ directory: dir });
  for (let i = 0; i < MAX_PARTIALS + 3; i++) {
    const s = await store.openPartial(`f${i}.bin`, 100, null, { resume: true });
    await s.startAt(0, createHash('sha256'));
    s.end(Buffer.alloc(10));
    await new Promise((r) => s.once('finish', r));
    await s.abort(new Error('lost'), true);
  }
  await new Promise((r) => setTimeout(r, 200));
  const names = (await store.listPartial()).map((p) => p.name);
  assert.equal(names.length, MAX_PARTIALS);
  for (const gone of ['f0.bin', 'f1.bin', 'f2.bin']) assert.ok(!names.includes(gone), gone);
  assert.ok(names.includes(`f${MAX_PARTIALS + 2}.bin`));
});

test('compatibility: a receiver that predates resuming (accept without `resume`) gets the whole file, and one with a partial file gets it from an old sender too', async (t) => {
  const src = await tempDir(t, 'pl-resume-src-');
  const data = randomBytes(3 * MiB + 7);
  await writeFile(join(src, 'f.bin'), data);
  // An old receiver, by hand: reads the offer, accepts at 0 (no resume field), takes the body and the trailer.
  let offered: Record<string, unknown> | undefined;
  const sender = new ResourceManager<string>({
    open: async () => {
      const [a, b] = await socketPair(t);
      const reader = new ResourceStreamReader(b);
      void (async () => {
        offered = (await reader.frame()) as unknown as Record<string, unknown>;
        b.write(encodeFrame({ type: 'accept', offset: 0 }));
        const body = await reader.exactly(data.length);
        const end = await reader.frame();
        assert.equal(end.type, 'end');
        b.write(encodeFrame({ type: 'done', size: body.length, sha256: sha(body) }));
      })();
      return a;
    },
    announce: () => assert.fail('sender never receives'),
  });
  t.after(() => sender.close());
  const transfer = sender.send(join(src, 'f.bin'), 'f.bin', 'old');
  const sent = await transfer.done;
  assert.equal(offered?.resume, 1, 'the offer says the sender can resume; the old receiver ignores it');
  assert.equal(sent.sha256, sha(data));
  assert.equal(transfer.resumedFrom, 0);
  assert.equal(transfer.bytesOnWire, data.length);

  // An old sender (no `resume` in its offer) to a receiver holding a partial file of that name and size.
  const p = await pair(t);
  const big = randomBytes(40 * MiB);
  await writeFile(join(src, 'big.bin'), big);
  await interrupted(p, join(src, 'big.bin'), 'big.bin', 20 * MiB);
  const [x, y] = await socketPair(t);
  p.receiver.receive(y, 'old-sender');
  const reader = new ResourceStreamReader(x);
  x.write(encodeFrame({ type: 'resource', v: 1, name: 'big.bin', size: big.length, sha256: null }));
  const accept = await reader.frame();
  assert.deepEqual(accept, { type: 'accept', offset: 0 }, 'no resume offer to a sender that cannot resume');
  x.write(big);
  x.write(encodeFrame({ type: 'end', sha256: sha(big) }));
  const done = await reader.frame();
  assert.equal(done.type, 'done');
  assert.deepEqual(await readFile(join(p.dir, 'big.bin')), big);
});

test('the offer a person is asked about says how much of the file is already here', async (t) => {
  const src = await tempDir(t, 'pl-resume-src-');
  const data = randomBytes(40 * MiB);
  await writeFile(join(src, 'f.bin'), data);
  const dir = await tempDir(t, 'pl-resume-dl-');
  const offers: Array<ResourceOffer<string>> = [];
  const incoming: Array<IncomingResource<string>> = [];
  const receiver = new ResourceManager<string>({
    directory: dir,
    open: () => assert.fail('receiver never opens'),
    announce: (r) => incoming.push(r),
    listening: () => true,
    accept: (offer) => {
      offers.push(offer);
      return true;
    },
  });
  const { sender, receiverSocket } = senderTo(t, receiver);
  const first = sender.send(join(src, 'f.bin'), 'f.bin', 'r');
  const deadline = Date.now() + 30_000;
  while ((incoming[0]?.progress.bytes ?? 0) < 20 * MiB && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  receiverSocket()!.resetAndDestroy();
  await assert.rejects(first.done);
  await assert.rejects(incoming[0]!.done);
  const again = sender.send(join(src, 'f.bin'), 'f.bin', 'r');
  await again.done;
  assert.equal(offers[0]?.files[0]?.held, undefined, 'nothing held at first');
  const held = offers[1]?.files[0]?.held ?? 0;
  assert.ok(held >= 16 * MiB && held < data.length, `held ${held}`);
  assert.ok(again.resumedFrom > 0 && again.resumedFrom <= held);
});
