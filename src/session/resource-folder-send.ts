/**
 * The sending end of a folder's files: each file of the manifest, in order, opened without
 * following a symlink, read for exactly its listed size and hashed as it is sent, then its
 * trailer (SHA-256). Small files are gathered into writes of at least BATCH bytes, so 10 000
 * files of a few KiB are a few hundred stream writes, not 10 000.
 *
 * A file that changed since the walk (size or mtime differ, before or after it was read, or
 * it ended early) is still sent for its listed size — the stream's framing depends on it,
 * padded with zeros if it shrank — but its trailer says `changed`, and the receiver drops it
 * and reports it: never a silently corrupted copy.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { PeerlinkError } from '../errors.js';
import type { FolderEntry, FolderManifest } from './resource-folder-manifest.js';
import { encodeFrame } from './resource-wire.js';
import { waitDrain } from './resource-stream.js';
import { fsPromises } from '../lazy-builtins.js';

/** Writes to the stream are gathered up to this many bytes. */
const BATCH = 256 * 1024;
/** Largest single read of a file. */
const READ = 1024 * 1024;

export interface FolderSendHooks {
  advance(bytes: number): void;
  file(entry: FolderEntry, done: number): void;
  /** True once the receiver has answered early (a failure): stop sending. */
  stopped(): boolean;
  signal: AbortSignal;
}

/** Files up to this size are read whole, ahead of sending. */
const SMALL = 1024 * 1024;
/** The send loop yields to the event loop at least this often (ms) while it reads small files synchronously. */
const YIELD_MS = 10;

interface SmallRead {
  bytes: Buffer;
  changed: boolean;
}

// O_NONBLOCK: a file replaced by a fifo since the walk must not block the open (no effect on regular files).
const READ_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/**
 * A small file, whole, with synchronous calls (open, read, fstat, close: tens of microseconds on
 * the page cache, where four hops through the thread pool cost four wake-ups of this thread);
 * `changed` if it is not what the walk saw (its listed length is kept: zero-padded or cut).
 */
function readSmallSync(root: string, entry: FolderEntry): SmallRead {
  const bytes = Buffer.allocUnsafe(entry.size);
  let fd: number;
  try {
    fd = openSync(join(root, ...entry.path.split('/')), READ_FLAGS);
  } catch {
    return { bytes: bytes.fill(0), changed: true }; // gone or replaced (by a symlink) since the walk
  }
  try {
    // One fstat, after the read: a file changed since the walk (or during the read) has another
    // size or mtime then; one that is no longer a regular file fails the read or the check.
    let n = 0;
    while (n < bytes.length) {
      const bytesRead = readSync(fd, bytes, n, bytes.length - n, n);
      if (bytesRead === 0) return { bytes: bytes.fill(0), changed: true };
      n += bytesRead;
    }
    const after = fstatSync(fd);
    return { bytes, changed: !after.isFile() || after.size !== entry.size || Math.trunc(after.mtimeMs) !== entry.mtimeMs };
  } catch {
    return { bytes: bytes.fill(0), changed: true };
  } finally {
    try {
      closeSync(fd);
    } catch {
      // nothing to do: it was read
    }
  }
}

/** A large file (or the rest of a resumed one, from `start`, `prefix` holding the bytes before it), streamed in reads of READ bytes. */
async function sendLarge(root: string, entry: FolderEntry, push: (b: Buffer) => Promise<void>, hooks: FolderSendHooks, start = 0, prefix?: Hash): Promise<{ sha256: string; changed: boolean }> {
  const hash = prefix ?? createHash('sha256');
  let isChanged = false;
  let fh: FileHandle | undefined;
  try {
    fh = await fsPromises().open(join(root, ...entry.path.split('/')), READ_FLAGS);
  } catch {
    isChanged = true;
  }
  try {
    if (fh) {
      const before = await fh.stat();
      if (!before.isFile() || before.size !== entry.size || Math.trunc(before.mtimeMs) !== entry.mtimeMs) isChanged = true;
    }
    let left = entry.size - start;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(left, READ));
      let n = 0;
      if (fh && !isChanged) {
        while (n < buf.length) {
          const { bytesRead } = await fh.read(buf, n, buf.length - n, entry.size - left + n);
          if (bytesRead === 0) break;
          n += bytesRead;
        }
      }
      if (n < buf.length) {
        isChanged = true;
        buf.fill(0, n);
      }
      hash.update(buf);
      left -= buf.length;
      await push(buf);
      hooks.advance(buf.length);
    }
    if (fh && !isChanged) {
      const after = await fh.stat();
      if (after.size !== entry.size || Math.trunc(after.mtimeMs) !== entry.mtimeMs) isChanged = true;
    }
  } finally {
    await fh?.close().catch(() => undefined);
  }
  return { sha256: hash.digest('hex'), changed: isChanged };
}

/** A resumed folder: files the receiver holds (by index among files), and the file in flight's continuation. */
export interface FolderSendResume {
  skip: ReadonlySet<number>;
  file?: { index: number; offset: number; hash: Hash };
}

/** Sends every file's bytes and trailer (but those `resume` skips); returns the paths reported as changed during the send. */
export async function sendFolderFiles(stream: Duplex, root: string, manifest: FolderManifest, hooks: FolderSendHooks, resume?: FolderSendResume): Promise<string[]> {
  const changed: string[] = [];
  let parts: Buffer[] = [];
  let partBytes = 0;
  const push = async (b: Buffer): Promise<void> => {
    parts.push(b);
    partBytes += b.length;
    if (partBytes >= BATCH) await flush();
  };
  const flush = async (): Promise<void> => {
    if (parts.length === 0) return;
    const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts, partBytes);
    parts = [];
    partBytes = 0;
    if (!stream.write(out)) await waitDrain(stream);
  };
  let done = 0;
  const files = manifest.entries.filter((e) => e.kind === 'file');
  let lastYield = Date.now();
  for (let i = 0; i < files.length; i++) {
    const entry = files[i]!;
    if (hooks.signal.aborted || hooks.stopped()) break;
    if (resume?.skip.has(i)) {
      done++;
      continue;
    }
    const small = entry.size <= SMALL && resume?.file?.index !== i ? readSmallSync(root, entry) : undefined;
    let sha256: string;
    let isChanged: boolean;
    if (small) {
      const r = small;
      isChanged = r.changed;
      sha256 = createHash('sha256').update(r.bytes).digest('hex');
      if (r.bytes.length > 0) await push(r.bytes);
      hooks.advance(r.bytes.length);
    } else if (resume?.file?.index === i) {
      ({ sha256, changed: isChanged } = await sendLarge(root, entry, push, hooks, resume.file.offset, resume.file.hash));
    } else {
      ({ sha256, changed: isChanged } = await sendLarge(root, entry, push, hooks));
    }
    if (isChanged) changed.push(entry.path);
    await push(encodeFrame(isChanged ? { type: 'end', sha256, changed: 1 } : { type: 'end', sha256 }));
    hooks.file(entry, ++done);
    // Timers and other sockets run at least every YIELD_MS, however fast the reads go.
    if (Date.now() - lastYield >= YIELD_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastYield = Date.now();
    }
  }
  await flush();
  if (hooks.signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
  return changed;
}
