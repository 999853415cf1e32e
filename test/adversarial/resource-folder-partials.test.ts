/**
 * Partial folders under the quota and a count limit (docs/security.md "Folders (resume)"),
 * from raw sockets and hand-built frames: a hostile sender that interrupts folder after folder
 * (each under a new name, so none is ever resumed) cannot make the receiver hold more than its
 * quota, nor more than MAX_PARTIAL_FOLDERS staging directories; and the partial folders it left
 * are listed and discarded like partial files (as `receive --list-partial/--discard-partial` do).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { cleanup, rawPeer, startVictim, MiB, type Victim } from './harness.js';
import { until } from '../harness/proc.js';
import { openResourceStream, resourceFrame } from './resource-attacker.js';
import { ResourceStore, MAX_PARTIAL_FOLDERS } from '../../src/session/resource-store.js';

const dirs: string[] = [];
after(async () => {
  await cleanup();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function inbox(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'pl-adv-foldpart-'));
  dirs.push(root);
  const dir = join(root, 'inbox');
  await mkdir(dir);
  return dir;
}

const STREAM = { maxMessage: 60_000 };
const NOW = Date.now();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function stagings(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('.peerlink-folder-partial-'));
}

async function bytesUnder(path: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(path, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await lstat(join(e.parentPath, e.name))).size;
  }
  return n;
}

/**
 * Offers a resumable folder `name` of one file of `body.length` bytes, sends `sent` bytes of it
 * once accepted (all of it: then the file is ended too), waits until `onDisk` bytes of it are on
 * disk (the receiver may hold back the tail of a large file's last block), and breaks the stream. Returns the victim's
 * answer: 'accept' (then the stream was cut) or the error code it refused with.
 */
async function interrupt(v: Victim, peer: Awaited<ReturnType<typeof rawPeer>>, dir: string, name: string, body: Buffer, sent: number, onDisk = sent): Promise<string> {
  const failedBefore = v.events('resource-failed').length;
  // Two files: a small one sent whole (written once verified) or a large one cut short (written as it arrives), and one never sent.
  const manifest = Buffer.from(JSON.stringify({ e: [['f', 'f.bin', body.length, 0o644, NOW], ['f', 'g.bin', 1, 0o644, NOW]], s: [] }), 'utf8');
  const s = await openResourceStream(v, peer, STREAM);
  s.write(resourceFrame({ type: 'folder', v: 1, name, files: 2, dirs: 0, size: body.length + 1, manifest: manifest.length, resume: 1 }));
  s.write(manifest);
  const first = await until(() => s.frames()[0], 15_000, 'the victim answers the offer');
  if (first.type !== 'accept') {
    s.socket.destroy();
    return String(first.code);
  }
  s.write(resourceFrame({ type: 'folder-resume', held: sha(Buffer.alloc(0)), offset: 0, sha256: sha(Buffer.alloc(0)) }));
  if (sent > 0) {
    s.write(body.subarray(0, sent));
    if (sent === body.length) s.write(resourceFrame({ type: 'end', sha256: sha(body) }));
    await until(
      async () => {
        for (const p of await stagings(dir)) if (((await lstat(join(dir, p, 'f.bin')).catch(() => undefined))?.size ?? 0) >= onDisk) return true;
        return false;
      },
      15_000,
      'the bytes on disk',
      20,
    );
  }
  s.socket.destroy();
  await until(() => v.events('resource-failed').length > failedBefore, 15_000, 'the victim notices');
  return 'accept';
}

test('partial folders: a sender interrupting folder after folder holds no more than the quota', { timeout: 180_000 }, async () => {
  const dir = await inbox();
  const QUOTA = 12 * MiB;
  const v = await startVictim({ acceptResources: true, resources: { directory: dir, quota: QUOTA } });
  const peer = await rawPeer(v);
  const body = randomBytes(6 * MiB);
  const answers: string[] = [];
  for (let i = 0; i < 5; i++) answers.push(await interrupt(v, peer, dir, `evil${i}`, body, 5 * MiB, 4 * MiB));
  let held = 0;
  for (const p of await stagings(dir)) held += await bytesUnder(join(dir, p));
  assert.ok(held <= QUOTA, `partial folders hold ${held} bytes, over the ${QUOTA}-byte quota (answers ${answers.join(', ')})`);
  assert.ok(answers.includes('ERR_RESOURCE_QUOTA'), `a folder past the quota is refused: ${answers.join(', ')}`);
});

test('partial folders: at most MAX_PARTIAL_FOLDERS are kept (the oldest go); they are listed and discarded like partial files', { timeout: 300_000 }, async () => {
  const dir = await inbox();
  const v = await startVictim({ acceptResources: true, resources: { directory: dir } });
  const peer = await rawPeer(v);
  const body = Buffer.alloc(64 * 1024, 0x78);
  for (let i = 0; i < MAX_PARTIAL_FOLDERS + 3; i++) assert.equal(await interrupt(v, peer, dir, `f${i}`, body, body.length), 'accept');
  await until(async () => (await stagings(dir)).length <= MAX_PARTIAL_FOLDERS, 15_000, `at most ${MAX_PARTIAL_FOLDERS} partial folders`);

  // As `receive --list-partial` / `--discard-partial` see the directory.
  const store = new ResourceStore({ directory: dir });
  const list = await store.listPartial();
  assert.equal(list.length, MAX_PARTIAL_FOLDERS);
  const names = new Set(list.map((p) => p.name));
  assert.ok(!names.has('f0') && names.has(`f${MAX_PARTIAL_FOLDERS + 2}`), 'the oldest went');
  for (const p of list) {
    assert.equal(p.kind, 'folder');
    assert.equal(p.size, body.length + 1);
    assert.ok(p.bytes >= body.length, `${p.name}: ${p.bytes} bytes held`);
    assert.ok(p.expiresAt > p.updatedAt);
  }
  const one = await store.discardPartial({ name: 'f10' });
  assert.deepEqual(one.map((p) => p.name), ['f10']);
  assert.equal((await stagings(dir)).length, MAX_PARTIAL_FOLDERS - 1);
  const rest = await store.discardPartial();
  assert.equal(rest.length, MAX_PARTIAL_FOLDERS - 1);
  assert.deepEqual(await stagings(dir), []);
});
