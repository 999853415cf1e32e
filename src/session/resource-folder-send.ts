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
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { PeerlinkError } from '../errors.js';
import type { FolderEntry, FolderManifest } from './resource-folder-manifest.js';
import { encodeFrame } from './resource-wire.js';
import { waitDrain } from './resource-stream.js';

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

/** Sends every file's bytes and trailer; returns the paths reported as changed during the send. */
export async function sendFolderFiles(stream: Duplex, root: string, manifest: FolderManifest, hooks: FolderSendHooks): Promise<string[]> {
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
  for (const entry of manifest.entries) {
    if (entry.kind !== 'file') continue;
    if (hooks.signal.aborted || hooks.stopped()) break;
    const hash = createHash('sha256');
    let isChanged = false;
    let fh: FileHandle | undefined;
    try {
      fh = await open(join(root, ...entry.path.split('/')), constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
    } catch {
      isChanged = true; // gone or replaced (by a symlink) since the walk
    }
    try {
      if (fh) {
        const before = await fh.stat();
        if (!before.isFile() || before.size !== entry.size || Math.trunc(before.mtimeMs) !== entry.mtimeMs) isChanged = true;
      }
      let left = entry.size;
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
    if (isChanged) changed.push(entry.path);
    await push(encodeFrame(isChanged ? { type: 'end', sha256: hash.digest('hex'), changed: 1 } : { type: 'end', sha256: hash.digest('hex') }));
    hooks.file(entry, ++done);
  }
  await flush();
  if (hooks.signal.aborted) throw new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled');
  return changed;
}
