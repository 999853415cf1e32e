/**
 * Worker thread behind FolderWriter (resource-folder-writer.ts): creates a folder's
 * directories and small files in the order given, with synchronous calls in a tight loop —
 * one thread, so creates in one directory never contend for its lock, and no wake-up of the
 * main thread or of the libuv pool per file.
 *
 * Each batch from the main thread is {seq, ops, bytes}: `ops` in order, a file's bytes the
 * next `length` bytes of `bytes`. Every path was judged by the main thread (the manifest's
 * rules, under the private staging directory); here a directory is made with mkdir (fails on
 * anything existing, but for a resumed folder's own directories) and a file with
 * O_CREAT | O_EXCL | O_NOFOLLOW (refuses an existing file or symlink). Each batch is answered
 * {seq} or {seq, error}; after an error every later batch is answered with it, untouched.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, constants, fchmodSync, futimesSync, lstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import type { WriterBatch, WriterReply } from './resource-folder-writer.js';

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);
const { resume } = workerData as { resume: boolean };
let failure: WriterReply['error'];

function makeDir(path: string): void {
  try {
    mkdirSync(path, { mode: 0o755 });
  } catch (err) {
    // A resumed folder's directories exist already (ours: the staging directory is private; never a symlink).
    if (resume && (err as NodeJS.ErrnoException).code === 'EEXIST' && lstatSync(path).isDirectory()) return;
    throw err;
  }
}

function writeFile(path: string, data: Uint8Array, mode: number, mtimeMs: number, chmod: boolean): void {
  // The staging directory is private (0700): the final mode at creation exposes nothing.
  const fd = openSync(path, CREATE_FLAGS, mode);
  try {
    let n = 0;
    while (n < data.length) n += writeSync(fd, data, n, data.length - n, n);
    if (chmod) fchmodSync(fd, mode); // the umask took bits
    const t = new Date(mtimeMs);
    futimesSync(fd, t, t);
  } finally {
    closeSync(fd);
  }
}

parentPort!.on('message', (batch: WriterBatch) => {
  if (failure === undefined) {
    try {
      const bytes = new Uint8Array(batch.bytes);
      let at = 0;
      for (const op of batch.ops) {
        if (op.kind === 'dir') makeDir(op.path);
        else {
          writeFile(op.path, bytes.subarray(at, at + op.length), op.mode, op.mtimeMs, op.chmod);
          at += op.length;
        }
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      failure = { message: e?.message ?? String(err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) };
    }
  }
  const reply: WriterReply = failure === undefined ? { seq: batch.seq } : { seq: batch.seq, error: failure };
  parentPort!.postMessage(reply);
});
