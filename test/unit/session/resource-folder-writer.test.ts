// The folder writer thread (resource-folder-writer.ts): directories and files land in order,
// with their bytes, modes and mtimes; a writer fed faster than it writes keeps at most
// BACKLOG_BYTES (plus the one file just queued) in memory; nothing is created over an existing
// file or through a symlink; a failure is reported, and later work is not done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tempDir } from '../../harness/loopback.js';
import { BACKLOG_BYTES, BACKLOG_OPS, FolderWriter } from '../../../src/session/resource-folder-writer.js';

const MiB = 1024 * 1024;
const MTIME = Date.UTC(2024, 0, 2, 3, 4, 5);

test('the folder writer creates directories and files in order, with their bytes, mode and mtime', async (t) => {
  const dir = await tempDir(t, 'pl-fwriter-');
  const w = new FolderWriter(false);
  try {
    const bodies: Buffer[] = [];
    w.dir(join(dir, 'a'));
    w.dir(join(dir, 'a', 'b'));
    let done = 0;
    for (let i = 0; i < 300; i++) {
      const body = randomBytes(i * 37);
      bodies.push(body);
      // Pieces as a stream delivers them: the writer joins them.
      w.file(join(dir, 'a', 'b', `f${i}`), [body.subarray(0, 10), body.subarray(10)].filter((p) => p.length > 0), body.length, 0o640, MTIME, i % 2 === 0, () => assert.equal(done++, i));
    }
    await w.drain();
    assert.equal(done, 300);
    for (let i = 0; i < 300; i++) {
      const p = join(dir, 'a', 'b', `f${i}`);
      assert.deepEqual(await readFile(p), bodies[i]);
      const st = await lstat(p);
      // With `chmod` the listed mode exactly; without it, what the umask left of it.
      if (i % 2 === 0) assert.equal(st.mode & 0o7777, 0o640);
      else assert.equal(st.mode & 0o7777 & ~0o640, 0);
      assert.equal(Math.trunc(st.mtimeMs), MTIME);
    }
  } finally {
    await w.close();
  }
});

test('a writer fed faster than it writes holds at most BACKLOG_BYTES (plus one file) of queued bytes', async (t) => {
  const dir = await tempDir(t, 'pl-fwriter-');
  const w = new FolderWriter(false);
  try {
    const body = Buffer.alloc(MiB, 0x61);
    let most = 0;
    // Fed from memory without waiting on anything but room(): without the bound every file would
    // be queued before the writer thread answered once (4 × BACKLOG_BYTES).
    for (let i = 0; i < (4 * BACKLOG_BYTES) / MiB; i++) {
      w.file(join(dir, `f${i}`), [body], body.length, 0o600, MTIME, false, () => undefined);
      most = Math.max(most, w.backlog);
      await w.room();
    }
    await w.drain();
    assert.ok(most <= BACKLOG_BYTES + MiB, `${most} bytes were queued at once (bound ${BACKLOG_BYTES} + one file)`);
    assert.equal(w.backlog, 0);
    assert.equal((await lstat(join(dir, `f${(4 * BACKLOG_BYTES) / MiB - 1}`))).size, MiB);
  } finally {
    await w.close();
  }
});

test('a writer fed empty files and directories holds at most BACKLOG_OPS operations', async (t) => {
  const dir = await tempDir(t, 'pl-fwriter-');
  const w = new FolderWriter(false);
  try {
    let most = 0;
    // Empty files add no bytes: without the operation bound room() never waited and a whole
    // manifest (up to 10⁵ entries) was queued, so a drain waited for all of it.
    for (let i = 0; i < 4 * BACKLOG_OPS; i++) {
      if (i % 100 === 0) w.dir(join(dir, `d${i}`));
      else w.file(join(dir, `d${i - (i % 100)}`, `e${i}`), [], 0, 0o600, MTIME, false, () => undefined);
      most = Math.max(most, w.pendingOps);
      await w.room();
    }
    await w.drain();
    assert.ok(most <= BACKLOG_OPS, `${most} operations were queued at once (bound ${BACKLOG_OPS})`);
    assert.equal(w.pendingOps, 0);
    const last = 4 * BACKLOG_OPS - 1;
    assert.equal((await lstat(join(dir, `d${last - (last % 100)}`, `e${last}`))).size, 0);
  } finally {
    await w.close();
  }
});

test('the folder writer never writes over an existing file or through a symlink; after a failure nothing more is done', async (t) => {
  const dir = await tempDir(t, 'pl-fwriter-');
  const outside = await tempDir(t, 'pl-fwriter-out-');
  await writeFile(join(dir, 'exists'), 'mine');
  await symlink(join(outside, 'target'), join(dir, 'link'));
  for (const name of ['exists', 'link']) {
    const w = new FolderWriter(false);
    try {
      let written = 0;
      w.file(join(dir, name), [Buffer.from('evil')], 4, 0o644, MTIME, false, () => written++);
      w.file(join(dir, `after-${name}`), [Buffer.from('x')], 1, 0o644, MTIME, false, () => written++);
      await assert.rejects(w.drain(), (err: NodeJS.ErrnoException) => err.code === 'EEXIST');
      assert.equal(written, 0);
      assert.equal(await lstat(join(dir, `after-${name}`)).catch(() => undefined), undefined, 'nothing after the failure');
    } finally {
      await w.close();
    }
  }
  assert.equal(await readFile(join(dir, 'exists'), 'utf8'), 'mine');
  assert.equal(await lstat(join(outside, 'target')).catch(() => undefined), undefined);
});

test('a directory that exists is an error, but for a resumed folder (its own directories)', async (t) => {
  const dir = await tempDir(t, 'pl-fwriter-');
  const fresh = new FolderWriter(false);
  try {
    fresh.dir(join(dir, 'd'));
    fresh.dir(join(dir, 'd'));
    await assert.rejects(fresh.drain(), (err: NodeJS.ErrnoException) => err.code === 'EEXIST');
  } finally {
    await fresh.close();
  }
  const resumed = new FolderWriter(true);
  try {
    resumed.dir(join(dir, 'd'));
    resumed.file(join(dir, 'd', 'f'), [Buffer.from('ok')], 2, 0o644, MTIME, false, () => undefined);
    await resumed.drain();
    assert.equal(await readFile(join(dir, 'd', 'f'), 'utf8'), 'ok');
  } finally {
    await resumed.close();
  }
});
