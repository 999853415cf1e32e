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
 * Temporary files are `.peerlink-<pid>-<random>.part`. When the store first prepares a
 * directory the app named, it removes the temporary files a dead process left there
 * (a killed receiver): those of this pattern whose pid is not running on this host, and
 * those of the pid-less pattern of earlier versions untouched for LEGACY_LEFTOVER_AGE_MS.
 */
import { lstat, mkdir, mkdtemp, open, readdir, statfs, link, rename, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerlinkError } from '../errors.js';
import { numberedName, validateResourceName } from './resource-name.js';
import { ResourceSink, mapWriteError } from './resource-sink.js';
import { resourceChannel } from './resource-progress.js';

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

/** A temporary file of a dead process that the store removed. */
export interface RemovedLeftover {
  name: string;
  size: number;
}

/** Temporary files are hidden, and named so that no valid resource name can equal one (names may not start with "."). */
const TEMP_PREFIX = '.peerlink-';
const TEMP_SUFFIX = '.part';
const TEMP_PATTERN = /^\.peerlink-(?:(\d{1,10})-)?[0-9a-f]{24}\.part$/;
/** Pid-less temp files (earlier versions) are removed once untouched this long: their writer, if alive, writes far more often. */
const LEGACY_LEFTOVER_AGE_MS = 10 * 60_000;
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
      if (dir === undefined) return mkdtemp(join(tmpdir(), 'peerlink-resources-'));
      await mkdir(dir, { recursive: true });
      await this.#removeLeftovers(dir);
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
   * reserves it, and creates the temporary file. The sink is ready for the body.
   */
  async open(name: string, size: number, expectedSha256: string | null = null): Promise<ResourceSink> {
    if (this.#closed) throw new PeerlinkError('ERR_CLOSED', 'the session is closed');
    validateResourceName(name);
    const dir = await this.directory();
    const tempName = `${TEMP_PREFIX}${process.pid}-${randomBytes(12).toString('hex')}${TEMP_SUFFIX}`;
    // Check and reserve as one step, so two concurrent transfers cannot both fit
    // under the quota on the strength of the same free bytes.
    const admitted = this.#admission.then(async () => {
      await this.#checkSpace(dir, size);
      this.#reserved.set(tempName, { size });
    });
    this.#admission = admitted.catch(() => undefined);
    await admitted;
    let fh: FileHandle;
    try {
      fh = await open(join(dir, tempName), 'wx', 0o666);
    } catch (err) {
      this.#reserved.delete(tempName);
      throw mapWriteError(err);
    }
    const sink = new ResourceSink({
      store: this,
      directory: dir,
      tempName,
      handle: fh,
      name,
      size,
      expectedSha256,
    });
    this.#sinks.add(sink);
    const r = this.#reserved.get(tempName);
    if (r) r.sink = sink;
    return sink;
  }

  /** Whether `size` bytes would be admitted now (name, quota, free space), without reserving: throws like open(). */
  async check(name: string, size: number): Promise<void> {
    if (this.#closed) throw new PeerlinkError('ERR_CLOSED', 'the session is closed');
    validateResourceName(name);
    await this.#checkSpace(await this.directory(), size);
  }

  // Messages go to the sender as they are: they never name the directory.
  async #checkSpace(dir: string, size: number): Promise<void> {
    const quota = this.#options.quota;
    let reserved = 0;
    let unwritten = 0;
    for (const r of this.#reserved.values()) {
      reserved += r.size;
      unwritten += r.size - (r.sink?.bytesWritten ?? 0);
    }
    if (quota !== undefined) {
      const used = this.#written + reserved;
      if (used + size > quota)
        throw new PeerlinkError('ERR_RESOURCE_QUOTA', `a resource of ${size} bytes does not fit the receiver's download quota (${Math.max(0, quota - used)} of ${quota} bytes left)`);
    }
    const fs = await statfs(dir).catch(() => undefined);
    if (!fs) return;
    const free = fs.bavail * fs.bsize - unwritten;
    const floor = freeSpaceFloorBytes(this.#floor, fs.blocks * fs.bsize);
    if (free - size < floor)
      throw new PeerlinkError('ERR_RESOURCE_QUOTA', `a resource of ${size} bytes does not fit the receiver's free disk space (${Math.max(0, free - floor)} bytes usable; it keeps ${floor} bytes free)`);
  }

  /** Bytes counted against the quota: files this store saved plus transfers in progress. */
  async usage(): Promise<number> {
    let reserved = 0;
    for (const r of this.#reserved.values()) reserved += r.size;
    return this.#written + reserved;
  }

  async #removeLeftovers(dir: string): Promise<void> {
    const now = Date.now();
    for (const name of await readdir(dir)) {
      const m = TEMP_PATTERN.exec(name);
      if (!m) continue;
      const pid = m[1] === undefined ? undefined : Number(m[1]);
      if (pid === process.pid || (pid !== undefined && processAlive(pid))) continue;
      const path = join(dir, name);
      const st = await lstat(path).catch(() => undefined);
      if (!st?.isFile()) continue;
      if (pid === undefined && now - st.mtimeMs < LEGACY_LEFTOVER_AGE_MS) continue;
      try {
        await unlink(path);
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
        await link(temp, join(dir, candidate));
        await unlink(temp).catch(() => undefined);
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
      const fh = await open(join(dir, candidate), 'wx');
      await fh.close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw mapWriteError(err);
    }
    await rename(temp, join(dir, candidate));
    return true;
  }

  /** Called by a sink when it is finished, whatever the outcome; `kept`: bytes of the file it saved. */
  release(sink: ResourceSink, tempName: string, kept = 0): void {
    if (this.#reserved.delete(tempName)) this.#written += kept;
    this.#sinks.delete(sink);
  }

  /** Aborts every transfer still writing (their temp files are removed). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sinks].map((s) => s.abort(new PeerlinkError('ERR_RESOURCE_ABORTED', 'the session closed during the transfer'))));
  }
}
