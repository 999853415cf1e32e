// Interrupted folders resume file by file (issue 15), over real PeerSessions (TLS-PSK on
// loopback, joined with connect(): nothing multicast). The receiver is closed while a large
// file in the middle of the folder is in flight, and started again (same peer id, port and
// directory): the paused sender offers the folder again, the files already verified are not
// sent, the large file continues from its verified prefix, the rest follow; the folder arrives
// byte for byte. Also: folder refusals before consent reach the receiver's `resourceRefused` event
// (a folder to a receiver without folders: test/adversarial/resource-folders.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PeerSession, type PeerID as PeerIDType } from '../../../src/session/index.js';
import { PeerID } from '../../../src/session/peer-id.js';
import { Endpoint } from '../../../src/net/index.js';
import { isPeerlinkError, type PeerlinkError } from '../../../src/errors.js';
import { until } from '../../harness/proc.js';

type Ctx = { after: (fn: () => unknown) => void };
const KEY = randomBytes(32).toString('hex');
const MiB = 1024 * 1024;
const common = { serviceType: 'plfoldres', interfaces: ['lo'], advertise: false, browse: false, security: { mode: 'psk' as const, key: KEY } };

async function tempDir(t: Ctx, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Size on disk of the large file in the receiver's staging directory (0 until it exists). */
async function stagedBytes(dir: string, rel: string): Promise<number> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith('.peerlink-folder-partial-')) continue;
    const st = await lstat(join(dir, name, rel)).catch(() => undefined);
    if (st) return st.size;
  }
  return 0;
}

test('a folder interrupted mid-file (receiver closed and restarted) resumes: verified files are not sent again, the file in flight continues from its verified prefix, the rest follow', { timeout: 240_000 }, async (t) => {
  const src = join(await tempDir(t, 'pl-foldres-src-'), 'tree');
  const contents = new Map<string, Buffer>();
  await mkdir(join(src, 'a'), { recursive: true });
  await mkdir(join(src, 'z'), { recursive: true });
  let before = 0;
  for (let i = 0; i < 120; i++) {
    const data = randomBytes(1024 + ((i * 7919) % (48 * 1024)));
    contents.set(`a/f${String(i).padStart(3, '0')}.bin`, data);
    before += data.length;
  }
  // Large (written as it arrives): the file in flight when the receiver goes away.
  contents.set('m-big.bin', randomBytes(64 * MiB));
  for (let i = 0; i < 120; i++) contents.set(`z/g${String(i).padStart(3, '0')}.bin`, randomBytes(512 + ((i * 104729) % (32 * 1024))));
  for (const [rel, data] of contents) await writeFile(join(src, ...rel.split('/')), data);
  const total = [...contents.values()].reduce((n, b) => n + b.length, 0);

  const dir = join(await tempDir(t, 'pl-foldres-dl-'), 'inbox');
  const bId = PeerID.fromBytes(randomBytes(16), 'B');
  const receiver = (port: number): PeerSession => new PeerSession({ ...common, peerId: bId, port, resources: { directory: dir, accept: () => true } });
  const a = new PeerSession({ ...common, displayName: 'A' });
  let b = receiver(0);
  t.after(async () => {
    await a.close();
    await b.close();
  });
  await Promise.all([a.start(), b.start()]);
  const port = b.listenPort;
  const bPeer = await a.connect(Endpoint.hostPort('127.0.0.1', port));

  const transfer = a.sendResource(src, 'tree', bPeer);
  let pausedWire = -1;
  let pausedCode = '';
  transfer.on('paused', (err) => {
    pausedWire = transfer.bytesOnWire;
    pausedCode = err.code;
  });
  const resumed: number[] = [];
  transfer.on('resumed', ({ offset }) => resumed.push(offset));
  const failed = transfer.done.then(
    () => undefined,
    (err: unknown) => err as PeerlinkError,
  );

  // Closed while the large file is in flight: at least two of its 4 MiB blocks are on disk.
  await until(async () => (await stagedBytes(dir, 'm-big.bin')) >= 9 * MiB || (await Promise.race([failed, Promise.resolve('pending')])) !== 'pending', 120_000, 'the large file in flight', 10);
  await b.close();
  await until(() => pausedWire >= 0 || transfer.state === 'failed', 60_000, 'the sender pauses');
  assert.equal(transfer.state, 'paused', `the sender pauses rather than failing (${transfer.error?.code ?? ''} ${transfer.error?.message ?? ''})`);
  assert.equal(pausedCode, 'ERR_RESOURCE_ABORTED');
  const prefixOnDisk = await stagedBytes(dir, 'm-big.bin');
  assert.ok(prefixOnDisk >= 9 * MiB && prefixOnDisk < 64 * MiB, `the large file was in flight (${prefixOnDisk} bytes of it held)`);

  b = receiver(port);
  const incoming = new Promise<{ readonly resumedFrom: number; done: Promise<unknown> }>((resolve) => b.once('resource', (r) => resolve(r)));
  await b.start();
  await a.connect(Endpoint.hostPort('127.0.0.1', port));
  const sent = await transfer.done;
  const got = await incoming;
  await got.done;

  // Everything before the large file, and at least its first 8 MiB (whole blocks), were kept.
  const kept = resumed[resumed.length - 1]!;
  assert.ok(kept >= before + 8 * MiB, `resumed from ${kept} bytes (files before the large one: ${before})`);
  assert.ok(kept < before + 64 * MiB, 'the large file itself was not held whole');
  assert.equal(got.resumedFrom, kept, 'the receiver resumed where the sender did');
  assert.ok(transfer.bytesOnWire - pausedWire <= total - kept, `after the resume ${transfer.bytesOnWire - pausedWire} bytes were sent; at most ${total - kept} were owed`);
  assert.equal(sent.savedName, 'tree');
  for (const [rel, data] of contents) assert.ok((await readFile(join(dir, 'tree', ...rel.split('/')))).equals(data), rel);
  assert.deepEqual((await readdir(join(dir, 'tree'))).sort(), ['a', 'm-big.bin', 'z'], 'no journal or other leftovers in the folder');
  assert.deepEqual(await readdir(dir), ['tree'], 'no staging directory left');
});

test('a folder refused before consent (over the folderEntries budget) is told to the receiving app as resourceRefused, with the code the sender gets', { timeout: 60_000 }, async (t) => {
  const src = join(await tempDir(t, 'pl-foldres-ref-'), 'many');
  await mkdir(src);
  for (let i = 0; i < 10; i++) await writeFile(join(src, `f${i}.txt`), `file ${i}\n`);
  const dir = join(await tempDir(t, 'pl-foldres-dl2-'), 'inbox');
  const a = new PeerSession({ ...common, displayName: 'A' });
  const b = new PeerSession({ ...common, displayName: 'B', budgets: { folderEntries: 5 }, resources: { directory: dir, accept: () => true } });
  t.after(async () => {
    await a.close();
    await b.close();
  });
  await Promise.all([a.start(), b.start()]);
  const refused: Array<{ name: string; size: number; code: string; peer: PeerIDType }> = [];
  b.on('resourceRefused', (offer, err) => refused.push({ name: offer.name, size: offer.size, code: err.code, peer: offer.peer }));
  const bPeer = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  const err = await a.sendResource(src, 'many', bPeer).done.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(isPeerlinkError(err) && err.code === 'ERR_RESOURCE_QUOTA', String(err));
  await until(() => refused.length > 0, 10_000, 'resourceRefused');
  assert.equal(refused.length, 1);
  assert.equal(refused[0]!.name, 'many');
  assert.equal(refused[0]!.code, 'ERR_RESOURCE_QUOTA');
  assert.equal(refused[0]!.size, 10 * 7);
  assert.equal(refused[0]!.peer.id, a.peerId.id);
});

test('a partial folder not written for 7 days is removed when a session prepares the directory; a recent one is kept', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t, 'pl-foldres-old-');
  const old = join(dir, '.peerlink-folder-partial-0123456789abcdef01234567');
  const recent = join(dir, '.peerlink-folder-partial-89abcdef0123456789abcdef');
  for (const d of [old, recent]) {
    await mkdir(join(d, 'sub'), { recursive: true });
    await writeFile(join(d, 'sub', 'x'), 'x');
    await writeFile(join(d, '.peerlink-journal'), '');
  }
  const longAgo = new Date(Date.now() - 8 * 24 * 3600_000);
  await utimes(join(old, '.peerlink-journal'), longAgo, longAgo);
  await utimes(old, longAgo, longAgo);
  const s = new PeerSession({ ...common, resources: { directory: dir } });
  t.after(() => s.close());
  await s.start();
  await s.resourceDirectory();
  assert.deepEqual(await readdir(dir), ['.peerlink-folder-partial-89abcdef0123456789abcdef']);
});

test('a folder the sender cancels mid-file is not kept for resuming (a stop or a lost link keeps it)', { timeout: 120_000 }, async (t) => {
  const src = join(await tempDir(t, 'pl-foldres-cancel-'), 'gone');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'a\n');
  await writeFile(join(src, 'big.bin'), randomBytes(64 * MiB));
  const dir = join(await tempDir(t, 'pl-foldres-dl3-'), 'inbox');
  const a = new PeerSession({ ...common, displayName: 'A' });
  const b = new PeerSession({ ...common, displayName: 'B', resources: { directory: dir, accept: () => true } });
  t.after(async () => {
    await a.close();
    await b.close();
  });
  await Promise.all([a.start(), b.start()]);
  const received = new Promise<unknown>((resolve) => b.once('resource', (r) => resolve(r.done.then(() => undefined, (e: unknown) => e))));
  const bPeer = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  const transfer = a.sendResource(src, 'gone', bPeer);
  const sent = transfer.done.then(() => undefined, (e: unknown) => e);
  await until(async () => (await stagedBytes(dir, 'big.bin')) >= 4 * MiB || transfer.state === 'completed', 60_000, 'the large file in flight', 10);
  transfer.cancel();
  const e = await sent;
  assert.ok(isPeerlinkError(e) && e.code === 'ERR_CANCELLED', String(e));
  const r = await received;
  assert.ok(isPeerlinkError(r), String(r));
  await until(async () => (await readdir(dir)).length === 0, 10_000, 'the partial folder removed');
});
