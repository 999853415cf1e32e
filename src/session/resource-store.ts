/**
 * The download directory of a session: where incoming resources are written, how
 * much they may take, and how a verified file is put in place without ever replacing
 * an existing one.
 *
 * Space is counted incrementally, never by rescanning the directory: `quota` (optional)
 * bounds what this session writes — the files it has saved plus the announced sizes of
 * transfers in progress (reserved up front, so two concurrent transfers cannot both
 * squeeze under the limit). Independently of any quota, a free-space floor on the file
 * system (`freeSpaceFloor`, default max(5 % of the file system, 1 GiB)) is never crossed:
 * a transfer whose reservation would leave less free is refused before a byte is
 * written. Running out of space while writing fails with the same code.
 *
 * Incoming files are written to partial files keyed by name and size (resource-partial.ts),
 * kept when a transfer is interrupted so the same file sent again resumes. Their bytes on disk
 * count against the quota while they wait, as do those of partial folders (the staging
 * directories of interrupted resumable folders: resource-folder-partial.ts). Temporary files of earlier versions were
 * `.peerlink-<pid>-<random>.part`: when the store first prepares a directory the app named, it
 * removes those a dead process left there (a killed receiver): those of this pattern whose pid
 * is not running on this host, and those of the pid-less pattern untouched for
 * LEGACY_LEFTOVER_AGE_MS.
 */
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerlinkError } from '../errors.js';
import { numberedName, validateResourceName } from './resource-name.js';
import { ResourceSink, mapWriteError } from './resource-sink.js';
import { resourceChannel } from './resource-progress.js';
import { scanPrefix, type PrefixScan } from './resource-prefix.js';
import { FOLDER_PARTIAL_PATTERN, JOURNAL_NAME } from './resource-folder-resume.js';
import { scanFolderPartials, writeFolderRecord, stagingBytes } from './resource-folder-partial.js';
import {
  PARTIAL_MAX_AGE_MS,
  partialDataName,
  partialKey,
  readRecord,
  removePartial,
  scanPartials,
  writeRecord,
  type PartialResource,
} from './resource-partial.js';
import { fsPromises } from '../lazy-builtins.js';

/** How an incoming transfer opens its partial file. */
export interface OpenPartialOptions {
  /** The sender can resume: a partial of this name and size is read and its block digests computed. */
  resume?: boolean;
  /** Called if a newer transfer of the same name and size from the same owner takes the partial file over. */
  onSuperseded?: () => void;
  /**
   * Who sends it (the peer's key). A second transfer of the same name and size from the same
   * owner takes the partial file over (the sender came back after a lost link while the old
   * transfer still waits for bytes); from anyone else it gets a file of its own, not resumable.
   */
  owner?: string;
}
/** Free space a transfer must leave on the file system: the larger of the two. */
export interface FreeSpaceFloor {
  /** Fraction of the file system's size, 0–1. Default 0.05. */
  fraction?: number;
  /** Bytes. Default 1 GiB. */
  bytes?: number;
}

export const DEFAULT_FREE_SPACE_FLOOR: Readonly<Required<FreeSpaceFloor>> = Object.freeze({ fraction: 0.05, bytes: 1024 ** 3 });

export interface ResourceStoreOptions {
  /** Download directory; created if missing. Default: a fresh private directory under os.tmpdir(). */
  directory?: string;
  /** Most bytes this session may write there (saved files + transfers in progress). Default: no limit. */
  quota?: number;
  /** Free space always left on the file system; `{fraction: 0, bytes: 0}` turns it off. Default DEFAULT_FREE_SPACE_FLOOR. */
  freeSpaceFloor?: FreeSpaceFloor;
}

/** A folder's reservation (ResourceStore.reserve). */
export interface FolderReservation {
  directory: string;
  /** Records the (interrupted, resumable) folder's staging directory as a partial folder. */
  keep: () => Promise<void>;
  release: (saved: number) => void;
}

/** A temporary file of a dead process that the store removed. */
export interface RemovedLeftover {
  name: string;
  size: number;
}

/** Temporary files of earlier versions: hidden, and named so that no valid resource name can equal one (names may not start with "."). */
const TEMP_PATTERN = /^\.peerlink-(?:(\d{1,10})-)?[0-9a-f]{24}\.part$/;
/** Pid-less temp files (earlier versions) are removed once untouched this long: their writer, if alive, writes far more often. */
const LEGACY_LEFTOVER_AGE_MS = 10 * 60_000;
/** A folder's staging directory (resource-folder-receive.ts): `.peerlink-folder-<pid>-<random>`. */
const FOLDER_STAGING_PATTERN = /^\.peerlink-folder-(\d{1,10})-[A-Za-z0-9]{6}$/;
/** Most partial files kept waiting for a resume; beyond it the oldest is removed. */
export const MAX_PARTIALS = 256;
/** Most partial folders kept waiting for a resume; beyond it the oldest is removed (as partial files are). */
export const MAX_PARTIAL_FOLDERS = 32;
/** How many numbered alternatives are tried before giving up on a name. */
const MAX_SUFFIX = 9999;

/** Bytes to keep free on a file system of `totalBytes`. */
export function freeSpaceFloorBytes(floor: Required<FreeSpaceFloor>, totalBytes: number): number {
  return Math.max(Math.ceil(floor.fraction * totalBytes), floor.bytes);
}

function resolveFloor(f: FreeSpaceFloor | undefined): Required<FreeSpaceFloor> {
  const out = { ...DEFAULT_FREE_SPACE_FLOOR, ...(f ?? {}) };
  if (!(Number.isFinite(out.fraction) && out.fraction >= 0 && out.fraction < 1))
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', `freeSpaceFloor.fraction must be from 0 to below 1, got ${String(out.fraction)}`);
  if (!(Number.isSafeInteger(out.bytes) && out.bytes >= 0))
    throw new PeerlinkError('ERR_INVALID_ARGUMENT', `freeSpaceFloor.bytes must be a whole number of bytes, got ${String(out.bytes)}`);
  return out;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface Reservation {
  size: number;
  sink?: ResourceSink;
}

/** Opening a partial file must not follow a symlink planted under its name. */
const PARTIAL_OPEN_FLAGS = constants.O_RDWR | constants.O_CREAT | (constants.O_NOFOLLOW ?? 0);

export class ResourceStore {
  readonly #options: ResourceStoreOptions;
  readonly #floor: Required<FreeSpaceFloor>;
  #directory: Promise<string> | undefined;
  /** Reservations of transfers in progress, by temp file name. */
  readonly #reserved = new Map<string, Reservation>();
  readonly #sinks = new Set<ResourceSink>();
  /** Bytes of the files this store has saved. */
  #written = 0;
  #leftovers: RemovedLeftover[] = [];
  /** Partial files not being written, by key: their bytes on disk count against the quota. */
  readonly #idle = new Map<string, number>();
  /** Partial files being written, by key. */
  readonly #busy = new Map<string, ResourceSink | undefined>();
  /** Partial folders not being written, by staging directory name: their bytes on disk count against the quota. */
  readonly #idleFolders = new Map<string, number>();
  /** Partial folders being written (their reservation covers them), with how many transfers use each name. */
  readonly #busyFolders = new Map<string, number>();
  #closed = false;
  #admission: Promise<void> = Promise.resolve();

  constructor(options: ResourceStoreOptions = {}) {
    if (options.quota !== undefined && !(Number.isSafeInteger(options.quota) && options.quota >= 0))
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `resource quota must be a whole number of bytes, got ${String(options.quota)}`);
    this.#floor = resolveFloor(options.freeSpaceFloor);
    this.#options = { ...options };
  }

  /** The download directory, created (and cleared of dead processes' temp files) on first use. */
  directory(): Promise<string> {
    this.#directory ??= (async () => {
      const dir = this.#options.directory;
      if (dir === undefined) return fsPromises().mkdtemp(join(tmpdir(), 'peerlink-resources-'));
      await fsPromises().mkdir(dir, { recursive: true });
      await this.#removeLeftovers(dir);
      await this.#loadPartials(dir);
      await this.#loadFolders(dir);
      return dir;
    })();
    // A directory that could not be made is tried again next time (it may be mounted later).
    this.#directory.catch(() => (this.#directory = undefined));
    return this.#directory;
  }

  get quota(): number | undefined {
    return this.#options.quota;
  }

  /** The free-space floor in force (defaults filled in). */
  get freeSpaceFloor(): Readonly<Required<FreeSpaceFloor>> {
    return this.#floor;
  }

  /** Temporary files of dead processes removed from the directory when it was first prepared. */
  get removedLeftovers(): ReadonlyArray<RemovedLeftover> {
    return this.#leftovers;
  }

  /**
   * Validates the name, checks the quota and free space against the announced size,
   * reserves it, and opens a fresh file. The sink is ready for the body.
   */
  async open(name: string, size: number, expectedSha256: string | null = null): Promise<ResourceSink> {
    const sink = await this.openPartial(name, size, expectedSha256);
    await sink.startAt(0, createHash('sha256'));
    return sink;
  }

  /**
   * Like open(), but on the partial file of `name` and `size`, which is kept if the transfer is
   * interrupted. With `resume`, what it holds is read once (its block digests and hash states:
   * `sink.prefix`); the caller then starts the sink where the sender proved the prefix
   * (`sink.startAt`). A transfer of the same file still writing is superseded: a sender that
   * comes back after a lost link finds its old transfer waiting for bytes that will never come.
   */
  async openPartial(name: string, size: number, expectedSha256: string | null = null, options: OpenPartialOptions = {}): Promise<ResourceSink> {
    if (this.#closed) throw new PeerlinkError('ERR_CLOSED', 'the session is closed');
    validateResourceName(name);
    const dir = await this.directory();
    let key = partialKey(name, size);
    let resumable = true;
    let held = 0;
    // Choose the file, check and reserve as one step, so two concurrent transfers cannot both
    // fit under the quota on the strength of the same free bytes, nor both take one file.
    const admitted = this.#admission.then(async () => {
      const previous = this.#busy.get(key);
      if (previous && options.owner !== undefined && previous.owner === options.owner) await previous.supersede();
      else if (this.#busy.has(key)) {
        // Someone else's transfer of a file of this name and size: a file of our own, dropped
        // if interrupted (its random key matches no record, so a later scan removes it too).
        key = randomBytes(12).toString('hex');
        resumable = false;
      }
      const onDisk = resumable ? await fsPromises().lstat(join(dir, partialDataName(key))).catch(() => undefined) : undefined;
      held = onDisk?.isFile() ? Math.min(onDisk.size, size) : 0;
      await this.#checkSpace(dir, size, key, held);
      this.#reserved.set(key, { size });
      this.#busy.set(key, undefined);
    });
    this.#admission = admitted.catch(() => undefined);
    await admitted;
    const dataPath = join(dir, partialDataName(key));
    let fh: FileHandle | undefined;
    let prefix: PrefixScan | undefined;
    try {
      fh = await fsPromises().open(dataPath, PARTIAL_OPEN_FLAGS, 0o666);
      const st = await fh.stat();
      let have = Math.min(st.size, size);
      const record = have > 0 && options.resume && resumable ? await readRecord(dir, key) : undefined;
      // Another file under the same name and size is told apart by the digests; a digest the
      // sender announced up front that differs from the one recorded tells it at once.
      if (!record || record.name !== name || record.size !== size || (record.sha256 !== null && expectedSha256 !== null && record.sha256 !== expectedSha256)) have = 0;
      if (have > 0) prefix = await scanPrefix(fh, have);
      if (resumable) await writeRecord(dir, key, { v: 1, name, size, sha256: expectedSha256, createdAt: new Date().toISOString() });
    } catch (err) {
      await fh?.close().catch(() => undefined);
      this.#reserved.delete(key);
      this.#busy.delete(key);
      throw mapWriteError(err);
    }
    this.#idle.delete(key);
    const sink = new ResourceSink({
      store: this,
      directory: dir,
      key,
      tempName: partialDataName(key),
      handle: fh,
      name,
      size,
      expectedSha256,
      prefix,
      onSuperseded: options.onSuperseded,
      owner: options.owner,
      resumable,
    });
    this.#sinks.add(sink);
    this.#busy.set(key, sink);
    const r = this.#reserved.get(key);
    if (r) r.sink = sink;
    return sink;
  }

  /**
   * Reserves `size` bytes for a folder (quota and free space, as one step with other
   * admissions); `release(saved)` ends the reservation, counting `saved` bytes as written.
   * `partial`: the staging directory name of a resumable folder (its waiting bytes are covered
   * by the reservation); `keep()` then records it, interrupted, as a partial folder that counts
   * against the quota and MAX_PARTIAL_FOLDERS until it is resumed, discarded or expires.
   */
  async reserve(size: number, partial?: { staging: string; name: string }): Promise<FolderReservation> {
    if (this.#closed) throw new PeerlinkError('ERR_CLOSED', 'the session is closed');
    const dir = await this.directory();
    const key = `folder-${randomBytes(12).toString('hex')}`;
    const admitted = this.#admission.then(async () => {
      await this.#checkSpace(dir, size, partial?.staging ?? key, 0);
      this.#reserved.set(key, { size });
      if (partial) {
        this.#busyFolders.set(partial.staging, (this.#busyFolders.get(partial.staging) ?? 0) + 1);
        this.#idleFolders.delete(partial.staging);
      }
    });
    this.#admission = admitted.catch(() => undefined);
    await admitted;
    let released = false;
    return {
      directory: dir,
      keep: async () => {
        if (released || !partial) return;
        const path = join(dir, partial.staging);
        await writeFolderRecord(path, { v: 1, name: partial.name, size, createdAt: new Date().toISOString() }).catch(() => undefined);
        const bytes = await stagingBytes(path);
        this.#idleFolders.delete(partial.staging);
        this.#idleFolders.set(partial.staging, bytes);
        // However small, partial folders are directories: past MAX_PARTIAL_FOLDERS the oldest go.
        while (this.#idleFolders.size > MAX_PARTIAL_FOLDERS) {
          const oldest = this.#idleFolders.keys().next().value as string;
          this.#idleFolders.delete(oldest);
          if (this.#busyFolders.has(oldest)) continue;
          await fsPromises().rm(join(dir, oldest), { recursive: true, force: true }).catch(() => undefined);
        }
      },
      release: (saved) => {
        if (released) return;
        released = true;
        const users = partial ? (this.#busyFolders.get(partial.staging) ?? 1) - 1 : 0;
        if (partial && users > 0) this.#busyFolders.set(partial.staging, users);
        else if (partial) this.#busyFolders.delete(partial.staging);
        if (this.#reserved.delete(key)) this.#written += saved;
      },
    };
  }

  /** Bytes held of the partial file of `name` and `size` waiting to be resumed (0 if none, or if it is being written). */
  async partialBytes(name: string, size: number): Promise<number> {
    const key = partialKey(name, size);
    if (this.#busy.has(key)) return 0;
    const known = this.#idle.get(key);
    if (known !== undefined) return known;
    const dir = await this.directory();
    const st = await fsPromises().lstat(join(dir, partialDataName(key))).catch(() => undefined);
    return st?.isFile() && (await readRecord(dir, key)) ? Math.min(st.size, size) : 0;
  }

  /** Partial files and folders of interrupted transfers in the directory, oldest first (expired ones are removed first). */
  async listPartial(): Promise<PartialResource[]> {
    const dir = await this.directory();
    const found = await this.#loadPartials(dir);
    const folders = await this.#loadFolders(dir);
    return [...found.values(), ...folders.values()].sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime());
  }

  /**
   * Removes partial files and folders of interrupted transfers — all, or those `filter` selects
   * (by name, and size if given) — except those being written now. Returns what was removed.
   */
  async discardPartial(filter: { name?: string; size?: number } = {}): Promise<PartialResource[]> {
    const dir = await this.directory();
    const found = await this.#loadPartials(dir);
    const removed: PartialResource[] = [];
    const selected = (p: PartialResource): boolean => (filter.name === undefined || p.name === filter.name) && (filter.size === undefined || p.size === filter.size);
    for (const [key, p] of found) {
      if (!selected(p)) continue;
      await removePartial(dir, key);
      this.#idle.delete(key);
      removed.push(p);
    }
    for (const [staging, p] of await this.#loadFolders(dir)) {
      if (!selected(p)) continue;
      await fsPromises().rm(join(dir, staging), { recursive: true, force: true }).catch(() => undefined);
      this.#idleFolders.delete(staging);
      removed.push(p);
    }
    return removed;
  }

  async #loadFolders(dir: string): Promise<Map<string, PartialResource>> {
    const found = await scanFolderPartials(dir, new Set(this.#busyFolders.keys()));
    for (const key of [...this.#idleFolders.keys()]) if (!found.has(key)) this.#idleFolders.delete(key);
    // Oldest first, so the count limit evicts the oldest.
    for (const [key, p] of [...found].sort((a, b) => a[1].updatedAt.getTime() - b[1].updatedAt.getTime())) if (!this.#idleFolders.has(key)) this.#idleFolders.set(key, p.bytes);
    return found;
  }

  async #loadPartials(dir: string): Promise<Map<string, PartialResource>> {
    const found = await scanPartials(dir, new Set(this.#busy.keys()));
    for (const key of [...this.#idle.keys()]) if (!found.has(key)) this.#idle.delete(key);
    for (const [key, p] of found) this.#idle.set(key, p.bytes);
    return found;
  }

  /** Whether `size` bytes would be admitted now (name, quota, free space), without reserving: throws like open(). */
  async check(name: string, size: number): Promise<void> {
    if (this.#closed) throw new PeerlinkError('ERR_CLOSED', 'the session is closed');
    validateResourceName(name);
    await this.#checkSpace(await this.directory(), size, partialKey(name, size), 0);
  }

  /**
   * `key`: the partial this transfer writes to (its waiting bytes are covered by the new
   * reservation); `held`: bytes of it already on disk (not taken from the free space again).
   * Messages go to the sender as they are: they never name the directory.
   */
  async #checkSpace(dir: string, size: number, key: string, held: number): Promise<void> {
    const quota = this.#options.quota;
    let reserved = 0;
    let unwritten = 0;
    for (const r of this.#reserved.values()) {
      reserved += r.size;
      unwritten += r.size - (r.sink?.bytesWritten ?? 0);
    }
    let waiting = 0;
    for (const [k, bytes] of this.#idle) if (k !== key) waiting += bytes;
    for (const [k, bytes] of this.#idleFolders) if (k !== key) waiting += bytes;
    if (quota !== undefined) {
      const used = this.#written + reserved + waiting;
      if (used + size > quota)
        throw new PeerlinkError('ERR_RESOURCE_QUOTA', `a resource of ${size} bytes does not fit the receiver's download quota (${Math.max(0, quota - used)} of ${quota} bytes left)`);
    }
    const fs = await fsPromises().statfs(dir).catch(() => undefined);
    if (!fs) return;
    const free = fs.bavail * fs.bsize - unwritten;
    const floor = freeSpaceFloorBytes(this.#floor, fs.blocks * fs.bsize);
    if (free - (size - held) < floor)
      throw new PeerlinkError('ERR_RESOURCE_QUOTA', `a resource of ${size} bytes does not fit the receiver's free disk space (${Math.max(0, free - floor)} bytes usable; it keeps ${floor} bytes free)`);
  }

  /** Bytes counted against the quota: files this store saved, transfers in progress, and partial files and folders waiting to be resumed (their bytes on disk). */
  async usage(): Promise<number> {
    let reserved = 0;
    for (const r of this.#reserved.values()) reserved += r.size;
    let waiting = 0;
    for (const bytes of this.#idle.values()) waiting += bytes;
    for (const bytes of this.#idleFolders.values()) waiting += bytes;
    return this.#written + reserved + waiting;
  }

  async #removeLeftovers(dir: string): Promise<void> {
    const now = Date.now();
    for (const name of await fsPromises().readdir(dir)) {
      if (FOLDER_PARTIAL_PATTERN.test(name)) {
        // An interrupted folder kept for resuming (resource-folder-resume.ts): removed once its
        // journal (or the directory) has not been written for PARTIAL_MAX_AGE_MS, as partial files are.
        const st = await fsPromises().lstat(join(dir, name)).catch(() => undefined);
        if (!st?.isDirectory()) continue;
        const journal = await fsPromises().lstat(join(dir, name, JOURNAL_NAME)).catch(() => undefined);
        if (now - Math.max(st.mtimeMs, journal?.mtimeMs ?? 0) < PARTIAL_MAX_AGE_MS) continue;
        await fsPromises().rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
        this.#leftovers.push({ name, size: 0 });
        resourceChannel.publish({ event: 'leftover', direction: 'receive', name, size: 0 });
        continue;
      }
      const staging = FOLDER_STAGING_PATTERN.exec(name);
      if (staging) {
        // A folder whose receiving process died: its staging directory (never a symlink: lstat).
        const pid = Number(staging[1]);
        if (pid === process.pid || processAlive(pid)) continue;
        const st = await fsPromises().lstat(join(dir, name)).catch(() => undefined);
        if (!st?.isDirectory()) continue;
        await fsPromises().rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
        this.#leftovers.push({ name, size: 0 });
        resourceChannel.publish({ event: 'leftover', direction: 'receive', name, size: 0 });
        continue;
      }
      const m = TEMP_PATTERN.exec(name);
      if (!m) continue;
      const pid = m[1] === undefined ? undefined : Number(m[1]);
      if (pid === process.pid || (pid !== undefined && processAlive(pid))) continue;
      const path = join(dir, name);
      const st = await fsPromises().lstat(path).catch(() => undefined);
      if (!st?.isFile()) continue;
      if (pid === undefined && now - st.mtimeMs < LEGACY_LEFTOVER_AGE_MS) continue;
      try {
        await fsPromises().unlink(path);
      } catch {
        continue;
      }
      this.#leftovers.push({ name, size: st.size });
      resourceChannel.publish({ event: 'leftover', direction: 'receive', name, size: st.size });
    }
  }

  /**
   * Puts a verified temp file in place as `name`, or `name (1)`, `name (2)`… if taken.
   * A hard link fails if the target exists, so nothing is ever replaced, even by a
   * file created a moment earlier by someone else. Returns the final file name.
   */
  async place(dir: string, tempName: string, name: string): Promise<string> {
    const temp = join(dir, tempName);
    for (let n = 0; n <= MAX_SUFFIX; n++) {
      const candidate = numberedName(name, n);
      try {
        await fsPromises().link(temp, join(dir, candidate));
        await fsPromises().unlink(temp).catch(() => undefined);
        return candidate;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') continue;
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS' || code === 'EMLINK') {
          // No hard links here (some FUSE / FAT file systems): claim the name with an
          // exclusive create, then rename over our own placeholder.
          if (await this.#placeWithoutLink(temp, dir, candidate)) return candidate;
          continue;
        }
        throw mapWriteError(err);
      }
    }
    throw new PeerlinkError('ERR_RESOURCE_NAME', `too many files named like "${name}" in the download directory`);
  }

  async #placeWithoutLink(temp: string, dir: string, candidate: string): Promise<boolean> {
    try {
      const fh = await fsPromises().open(join(dir, candidate), 'wx');
      await fh.close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw mapWriteError(err);
    }
    await fsPromises().rename(temp, join(dir, candidate));
    return true;
  }

  /**
   * Called by a sink when it is finished, whatever the outcome; `saved`: bytes of the file it
   * placed; `partial`: bytes of the partial file it left for resuming.
   */
  release(sink: ResourceSink, key: string, saved = 0, partial?: number): void {
    if (this.#reserved.delete(key)) this.#written += saved;
    if (this.#busy.get(key) === sink) this.#busy.delete(key);
    if (partial !== undefined) {
      // Re-inserted, so the map's order is oldest first.
      this.#idle.delete(key);
      this.#idle.set(key, partial);
      // However small, partial files are files: past MAX_PARTIALS the oldest go.
      while (this.#idle.size > MAX_PARTIALS) {
        const oldest = this.#idle.keys().next().value as string;
        this.#idle.delete(oldest);
        void this.#directory?.then((dir) => removePartial(dir, oldest)).catch(() => undefined);
      }
    }
    this.#sinks.delete(sink);
  }

  /** Stops every transfer still writing; their partial files are kept for resuming. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sinks].map((s) => s.abort(new PeerlinkError('ERR_RESOURCE_ABORTED', 'the session closed during the transfer'), true)));
  }
}
