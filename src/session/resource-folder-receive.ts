/**
 * The receiving end of a folder: its files, back to back on the resource stream, written under
 * a hidden staging directory (`.peerlink-folder-<random>`, mode 0700) in the download
 * directory, then moved into place under the folder's name — or `name (1)`, `name (2)`… — as
 * a whole. Only this code creates anything in the staging directory, and it creates only
 * directories (`mkdir`, which fails on anything existing) and regular files (`O_CREAT |
 * O_EXCL | O_NOFOLLOW`, which refuses an existing file or symlink), each path judged by
 * resource-folder-manifest.ts first: nothing is written outside it, no symlink is followed.
 *
 * Each file is verified (SHA-256 against its trailer) and gets the listed mode (setuid,
 * setgid, sticky dropped) and mtime. A file the sender reports as changed during the send is
 * removed and reported, never kept. Durability is batched: one `syncfs` (`sync -f`) for the
 * whole folder after it is in place, before the sender is told it is done (per-file
 * `fdatasync` where `sync -f` is not available).
 */
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import { PeerlinkError } from '../errors.js';
import type { FolderJournal } from './resource-folder-resume.js';
import type { FolderEntry, FolderManifest } from './resource-folder-manifest.js';
import type { ResourceStreamReader } from './resource-wire.js';
import { dropBytes, mapWriteError, MIN_WRITE } from './resource-sink.js';
import { FolderWriter } from './resource-folder-writer.js';
import { childProcess, fsPromises } from '../lazy-builtins.js';

const MAX_PIECE = 1024 * 1024;
/** Files up to this size are gathered in memory, verified, and written by the writer thread (resource-folder-writer.ts). */
const SMALL = 1024 * 1024;
const MAX_SUFFIX = 9999;
/** Bytes written between two background flushes of the file system while a folder arrives. */
const SYNC_AHEAD_BYTES = 64 * 1024 * 1024;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

export interface FolderReceiveHooks {
  /** Bytes of a file arrived (whole-folder progress). */
  advance(bytes: number): void;
  /** A file was verified and saved. */
  file(entry: FolderEntry, done: number): void;
  /** Throws if the transfer was cancelled meanwhile. */
  check(): void;
  /** The sender's bytes arrived (idle watch): a file's bytes, and its trailer. */
  touch(bytes: number): void;
  /**
   * The read loop waits for our own disk (the writer thread's backlog, or everything queued
   * before a large file) — true — or reads on again — false. The sender is not silent meanwhile
   * (the idle watch pauses): a folder of many empty files on a slow disk is not a stalled one.
   */
  waitingOnDisk?(waiting: boolean): void;
}

/** A fresh private staging directory in `dir`, named with our pid so a later session can tell a dead process's leftover. */
export function makeStaging(dir: string): Promise<string> {
  return fsPromises().mkdtemp(join(dir, `.peerlink-folder-${process.pid}-`)).catch((err: unknown) => {
    throw mapWriteError(err);
  });
}

export function removeStaging(staging: string): Promise<void> {
  // rm never follows a symlink: it removes the link.
  return fsPromises().rm(staging, { recursive: true, force: true }).catch(() => undefined);
}

/** A resumed folder (resource-folder-resume.ts): files already held, the file in flight and where it continues, the journal. */
export interface FolderReceiveResume {
  /** Indices (files only, manifest order) of files held and verified: the sender does not send them. */
  skip: ReadonlySet<number>;
  /** The file in flight: it exists in staging; its bytes before `offset` are kept, `hash` holds them. */
  file?: { index: number; offset: number; hash: Hash };
  journal: FolderJournal;
}

/** Receives every file of `manifest` into `staging`; returns the paths dropped because they changed during the send. */
export async function receiveFolderFiles(reader: ResourceStreamReader, staging: string, manifest: FolderManifest, hooks: FolderReceiveHooks, resume?: FolderReceiveResume): Promise<string[]> {
  const writer = new FolderWriter(resume !== undefined);
  try {
    const changed = await receiveInto(reader, staging, manifest, hooks, writer, resume);
    await writer.drain();
    return changed;
  } catch (err) {
    // Files verified before the failure are still written and journalled (an interrupted folder
    // resumes after them), as they were when each had a task of its own.
    await writer.drain().catch(() => undefined);
    throw mapWriteError(err);
  } finally {
    // Nothing is still writing when the caller removes (or places) the staging directory.
    await writer.close();
  }
}

/** A background `sync -f` is running (one per process, whatever the number of receives). */
let syncAheadRunning = false;

/**
 * Starts writeback early: a `sync -f` in the background (never awaited, one at a time in the
 * process — concurrent receives, or a peer that starts and aborts folders, cannot pile them
 * up) every SYNC_AHEAD_BYTES written, so that the one flush that counts — after the folder is in
 * place, before `folder-done` — finds little left to write instead of the whole folder.
 */
class SyncAhead {
  #since = 0;

  constructor(private readonly path: string) {}

  written(bytes: number): void {
    this.#since += bytes;
    if (this.#since < SYNC_AHEAD_BYTES || syncAheadRunning || process.platform !== 'linux') return;
    this.#since = 0;
    syncAheadRunning = true;
    childProcess().execFile('sync', ['-f', this.path], { timeout: 600_000 }, () => (syncAheadRunning = false));
  }
}

async function receiveInto(reader: ResourceStreamReader, staging: string, manifest: FolderManifest, hooks: FolderReceiveHooks, writer: FolderWriter, resume: FolderReceiveResume | undefined): Promise<string[]> {
  const changed: string[] = [];
  let done = 0;
  let fileIndex = -1;
  const journal = resume?.journal;
  // Directories and small files go to the writer thread in manifest order (a directory exists
  // before its files are created there) while the stream is read on; the reader waits only when
  // the writer is BACKLOG_BYTES behind (resource-folder-writer.ts).
  const umask = await probeUmask(staging);
  const ahead = new SyncAhead(staging);
  const onDisk = async (wait: () => Promise<void>): Promise<void> => {
    hooks.waitingOnDisk?.(true);
    try {
      await wait();
    } finally {
      hooks.waitingOnDisk?.(false);
    }
  };
  const room = (): Promise<void> => (writer.full ? onDisk(() => writer.room()) : writer.room());
  for (const entry of manifest.entries) {
    hooks.check();
    writer.check();
    // Whatever is queued goes to the writer before the reader waits on the network.
    if (!reader.buffered()) writer.flush();
    const target = join(staging, ...entry.path.split('/'));
    if (entry.kind === 'dir') {
      writer.dir(target);
      await room();
      continue;
    }
    const index = ++fileIndex;
    if (resume?.skip.has(index)) {
      done++;
      continue;
    }
    const continued = resume?.file?.index === index ? resume.file : undefined;
    if (entry.size <= SMALL && !continued) {
      const pieces: Buffer[] = [];
      const hash = createHash('sha256');
      let remaining = entry.size;
      while (remaining > 0) {
        hooks.check();
        if (!reader.buffered()) writer.flush();
        const piece = await reader.chunk(remaining);
        if (piece === null) throw new PeerlinkError('ERR_RESOURCE_ABORTED', `the peer stopped in the middle of ${entry.path}`);
        remaining -= piece.length;
        hooks.touch(piece.length);
        hash.update(piece);
        pieces.push(piece);
        hooks.advance(piece.length);
      }
      if (!reader.buffered()) writer.flush();
      const trailer = await reader.frame();
      hooks.touch(reader.lastFrameBytes);
      if (trailer.type !== 'end') throw new PeerlinkError('ERR_RESOURCE_VERIFY', `the peer sent more than the ${entry.size} bytes it listed for a file`);
      if (trailer.changed === 1) {
        changed.push(entry.path);
        continue;
      }
      const sha256 = hash.digest('hex');
      if (trailer.sha256 !== sha256) throw new PeerlinkError('ERR_RESOURCE_VERIFY', `SHA-256 mismatch for a file of the folder (${sha256.slice(0, 16)}… received, ${trailer.sha256.slice(0, 16)}… sent)`);
      writer.file(target, pieces, entry.size, entry.mode, entry.mtimeMs, (entry.mode & ~umask) !== entry.mode, () => {
        journal?.done(index, sha256);
        hooks.file(entry, ++done);
        ahead.written(entry.size);
      });
      await room();
      continue;
    }
    // A large file is written here, as it arrives: what is queued (its directory among it) first.
    await onDisk(() => writer.drain());
    let fh: FileHandle | undefined;
    try {
      await journal?.begin(index);
      let position = 0;
      let hash: Hash;
      if (continued && continued.offset > 0) {
        // Our own prefix (proved by the sender's digest of it): cut there, written on after it.
        fh = await fsPromises().open(target, constants.O_WRONLY | (constants.O_NOFOLLOW ?? 0));
        await fh.truncate(continued.offset);
        position = continued.offset;
        hash = continued.hash;
      } else {
        if (continued) await fsPromises().rm(target, { force: true });
        fh = await fsPromises().open(target, CREATE_FLAGS, 0o600);
        hash = createHash('sha256');
      }
      let remaining = entry.size - position;
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async (): Promise<void> => {
        let bufs = pending;
        pending = [];
        pendingBytes = 0;
        while (bufs.length > 0) {
          const { bytesWritten } = await fh!.writev(bufs, position);
          position += bytesWritten;
          ahead.written(bytesWritten);
          bufs = dropBytes(bufs, bytesWritten);
        }
      };
      while (remaining > 0) {
        hooks.check();
        const piece = await reader.chunk(Math.min(remaining, MAX_PIECE));
        if (piece === null) throw new PeerlinkError('ERR_RESOURCE_ABORTED', `the peer stopped in the middle of ${entry.path}`);
        remaining -= piece.length;
        hooks.touch(piece.length);
        hash.update(piece);
        pending.push(piece);
        pendingBytes += piece.length;
        hooks.advance(piece.length);
        if (pendingBytes >= MIN_WRITE) await flush();
      }
      await flush();
      const trailer = await reader.frame();
      hooks.touch(reader.lastFrameBytes);
      if (trailer.type !== 'end') throw new PeerlinkError('ERR_RESOURCE_VERIFY', `the peer sent more than the ${entry.size} bytes it listed for a file`);
      if (trailer.changed === 1) {
        await fh.close();
        fh = undefined;
        await fsPromises().rm(target, { force: true });
        changed.push(entry.path);
        continue;
      }
      const sha256 = hash.digest('hex');
      if (trailer.sha256 !== sha256) throw new PeerlinkError('ERR_RESOURCE_VERIFY', `SHA-256 mismatch for a file of the folder (${sha256.slice(0, 16)}… received, ${trailer.sha256.slice(0, 16)}… sent)`);
      await fh.chmod(entry.mode);
      const t = new Date(entry.mtimeMs);
      await fh.utimes(t, t);
      await fh.close();
      fh = undefined;
      journal?.done(index, sha256);
      hooks.file(entry, ++done);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      throw mapWriteError(err);
    }
  }
  return changed;
}

/**
 * Moves the staging directory into place as `name` or `name (n)`. The name is claimed first
 * with an exclusive mkdir (rename would silently replace an empty directory of that name),
 * then the staging directory renamed over our own empty claim and given the claim's mode.
 */
export async function placeFolder(dir: string, staging: string, name: string): Promise<string> {
  for (let n = 0; n <= MAX_SUFFIX; n++) {
    const candidate = n === 0 ? name : `${name} (${n})`;
    const path = join(dir, candidate);
    let claimMode: number;
    try {
      // 0755 less the umask, like the folder's sub-directories: the staging directory was
      // private (0700) while it filled, the finished folder is as open as any new directory.
      await fsPromises().mkdir(path, { mode: 0o755 });
      claimMode = (await fsPromises().lstat(path)).mode & 0o7777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw mapWriteError(err);
    }
    try {
      await fsPromises().rename(staging, path);
      await fsPromises().chmod(path, claimMode).catch(() => undefined);
      return candidate;
    } catch (err) {
      // Someone put something into our claim meanwhile: leave it to them and try the next name.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        await fsPromises().rmdir(path).catch(() => undefined);
        continue;
      }
      throw mapWriteError(err);
    }
  }
  throw new PeerlinkError('ERR_RESOURCE_NAME', `too many folders named like "${name}" in the download directory`);
}

/** The process's umask, read without process.umask() (deprecated without an argument): a probe file created 0777. */
async function probeUmask(staging: string): Promise<number> {
  const probe = join(staging, '.peerlink-umask');
  const fh = await fsPromises().open(probe, CREATE_FLAGS, 0o777);
  try {
    return ~(await fh.stat()).mode & 0o777;
  } finally {
    await fh.close();
    await fsPromises().rm(probe, { force: true });
  }
}

/** One flush of the file system holding `path` (syncfs via coreutils `sync -f`); per-file fdatasync where that is not available. */
export async function syncFolder(path: string, manifest: FolderManifest): Promise<void> {
  const ok = await new Promise<boolean>((resolve) => {
    if (process.platform !== 'linux') return resolve(false);
    childProcess().execFile('sync', ['-f', path], { timeout: 600_000 }, (err) => resolve(err === null));
  });
  if (ok) return;
  for (const e of manifest.entries) {
    if (e.kind !== 'file') continue;
    const fh = await fsPromises().open(join(path, ...e.path.split('/')), constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0)).catch(() => undefined);
    if (!fh) continue;
    await fh.datasync().finally(() => fh.close());
  }
}
