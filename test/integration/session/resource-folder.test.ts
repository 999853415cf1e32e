// Folders over real PeerSessions (TLS-PSK on loopback, joined with connect(): nothing multicast):
// one offer, one stream, the tree under the receiver's directory with its relative paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PeerSession, type PeerID } from '../../../src/session/index.js';
import { Endpoint } from '../../../src/net/index.js';
import type { ResourceOffer } from '../../../src/session/resource-transfer.js';

type Ctx = { after: (fn: () => unknown) => void };
const KEY = randomBytes(32).toString('hex');

async function tempDir(t: Ctx, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function pair(t: Ctx): Promise<{ a: PeerSession; b: PeerSession; bPeer: PeerID; dir: string; offers: Array<ResourceOffer<PeerID>> }> {
  const dir = join(await tempDir(t, 'pl-fold-dl-'), 'inbox');
  const offers: Array<ResourceOffer<PeerID>> = [];
  const common = { serviceType: 'plfoldtest', interfaces: ['lo'], advertise: false, browse: false, security: { mode: 'psk' as const, key: KEY } };
  const a = new PeerSession({ ...common, displayName: 'A' });
  const b = new PeerSession({
    ...common,
    displayName: 'B',
    resources: {
      directory: dir,
      accept: (o) => {
        offers.push(o);
        return true;
      },
    },
  });
  t.after(async () => {
    await a.close();
    await b.close();
  });
  await Promise.all([a.start(), b.start()]);
  await b.resourceDirectory();
  const bPeer = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  return { a, b, bPeer, dir, offers };
}

test('a folder arrives whole: nested tree, empty directories, unicode names, 1,000 small files, modes and mtimes (setuid dropped), symlinks and fifos skipped and reported, consent asked once; a second send arrives as "name (1)"', { timeout: 180_000 }, async (t) => {
  const src = join(await tempDir(t, 'pl-fold-src-'), 'album');
  await mkdir(join(src, 'a', 'b', 'c'), { recursive: true });
  await mkdir(join(src, 'empty', 'deeper-empty'), { recursive: true });
  await mkdir(join(src, 'many'));
  const contents = new Map<string, Buffer>();
  const put = async (rel: string, data: Buffer): Promise<void> => {
    await writeFile(join(src, ...rel.split('/')), data);
    contents.set(rel, data);
  };
  await put('a/b/c/deep.bin', randomBytes(3 * 1024 * 1024 + 7));
  await put('Grüße – 日本語 🎉.txt', Buffer.from('unicode\n'));
  await put('zero.bin', Buffer.alloc(0));
  for (let i = 0; i < 1000; i++) await put(`many/f${String(i).padStart(4, '0')}.dat`, randomBytes(1 + ((i * 37) % 4096)));
  await put('run.sh', Buffer.from('#!/bin/sh\necho hi\n'));
  await chmod(join(src, 'run.sh'), 0o4755); // setuid: must be dropped
  await chmod(join(src, 'zero.bin'), 0o640);
  const mtime = new Date('2021-03-04T05:06:07.000Z');
  await utimes(join(src, 'a', 'b', 'c', 'deep.bin'), mtime, mtime);
  await symlink('/etc/passwd', join(src, 'passwd-link'));
  await symlink('a', join(src, 'dir-link'));
  execFileSync('mkfifo', [join(src, 'a', 'pipe')]);

  const p = await pair(t);
  const files: string[] = [];
  const transfer = p.a.sendResource(src, 'album', p.bPeer);
  transfer.on('file', (f) => files.push(f.path));
  const sent = await transfer.done;
  assert.equal(sent.savedName, 'album');
  assert.equal(p.offers.length, 1, 'one offer for the whole folder');
  const offer = p.offers[0]!;
  assert.equal(offer.files.length, contents.size);
  assert.equal(offer.totalBytes, [...contents.values()].reduce((n, b) => n + b.length, 0));
  assert.equal(offer.folder?.name, 'album');
  assert.ok(offer.files.some((f) => f.name === 'album/a/b/c/deep.bin'));
  assert.equal(files.length, contents.size, 'per-file progress on the sender');
  const skipped = sent.folder!.skipped.map((s) => `${s.path}:${s.why}`).sort();
  assert.deepEqual(skipped, ['a/pipe:special', 'dir-link:symlink', 'passwd-link:symlink']);
  assert.deepEqual(sent.folder!.changed, []);

  const out = join(p.dir, 'album');
  for (const [rel, data] of contents) assert.ok((await readFile(join(out, ...rel.split('/')))).equals(data), rel);
  assert.deepEqual(await readdir(join(out, 'empty')), ['deeper-empty'], 'empty directories arrive');
  assert.deepEqual(await readdir(join(out, 'empty', 'deeper-empty')), []);
  assert.equal((await stat(join(out, 'run.sh'))).mode & 0o7777, 0o755, 'setuid dropped, rwx kept');
  assert.equal((await stat(join(out, 'zero.bin'))).mode & 0o7777, 0o640);
  assert.equal((await stat(out)).mode & 0o7777, (await stat(join(out, 'a'))).mode & 0o7777, 'the folder itself is as open as the directories in it, not 0700 like the staging directory');
  assert.equal((await stat(join(out, 'a', 'b', 'c', 'deep.bin'))).mtimeMs, mtime.getTime());
  for (const gone of ['passwd-link', 'dir-link', 'a/pipe']) await assert.rejects(lstat(join(out, ...gone.split('/'))), /ENOENT/);
  assert.deepEqual((await readdir(p.dir)).sort(), ['album'], 'nothing else in the download directory (no staging left)');

  const again = await p.a.sendResource(src, 'album', p.bPeer).done;
  assert.equal(again.savedName, 'album (1)');
  assert.deepEqual((await readdir(p.dir)).sort(), ['album', 'album (1)']);
  assert.ok((await readFile(join(p.dir, 'album (1)', 'a', 'b', 'c', 'deep.bin'))).equals(contents.get('a/b/c/deep.bin')!));
});

test('a folder file that changes during the send is reported on both sides and not kept; the others arrive', { timeout: 120_000 }, async (t) => {
  const src = join(await tempDir(t, 'pl-fold-src-'), 'work');
  await mkdir(src);
  await writeFile(join(src, '1-first.txt'), 'first\n');
  // Larger than what is read ahead (1 MiB): it is opened only after the first file's event.
  await writeFile(join(src, '2-changing.txt'), randomBytes(3 * 1024 * 1024));
  await writeFile(join(src, '3-last.txt'), 'last\n');
  const p = await pair(t);
  const received = new Promise<{ folder?: { changed: string[] } }>((resolve) => p.b.once('resource', (r) => resolve(r.done)));
  const transfer = p.a.sendResource(src, 'work', p.bPeer);
  transfer.on('file', (f) => {
    // Before the sender opens the next file: it changes (new bytes, a new mtime).
    if (f.path === '1-first.txt') {
      writeFileSync(join(src, '2-changing.txt'), randomBytes(3 * 1024 * 1024 + 5));
      utimesSync(join(src, '2-changing.txt'), new Date(2000, 1, 1), new Date(2000, 1, 1));
    }
  });
  const sent = await transfer.done;
  assert.deepEqual(sent.folder!.changed, ['2-changing.txt']);
  assert.deepEqual((await received).folder!.changed, ['2-changing.txt']);
  assert.deepEqual((await readdir(join(p.dir, 'work'))).sort(), ['1-first.txt', '3-last.txt']);
});

test("a dead receiver's folder staging directory is removed when a session next prepares the directory; a live one's is kept", { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t, 'pl-fold-left-');
  // pid 999999999 is above any pid_max: never a running process.
  await mkdir(join(dir, '.peerlink-folder-999999999-abcdef', 'sub'), { recursive: true });
  await writeFile(join(dir, '.peerlink-folder-999999999-abcdef', 'sub', 'x'), 'x');
  await mkdir(join(dir, `.peerlink-folder-${process.pid}-ghijkl`));
  const s = new PeerSession({ serviceType: 'plfoldtest', interfaces: ['lo'], advertise: false, browse: false, resources: { directory: dir } });
  t.after(() => s.close());
  await s.start();
  await s.resourceDirectory();
  assert.deepEqual(await readdir(dir), [`.peerlink-folder-${process.pid}-ghijkl`]);
});
