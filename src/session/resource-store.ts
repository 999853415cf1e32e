/**
 * The download directory of a session: where incoming resources are written, how
 * much they may take (the quota), and how a verified file is put in place without
 * ever replacing an existing one.
 *
 * Quota: `quota` bytes is the most the directory may hold — the regular files directly
 * in it plus the announced sizes of transfers in progress (reserved up front, so two
 * concurrent transfers cannot both squeeze under the limit). Independently of any quota,
 * a transfer larger than the file system's free space is refused before a byte is
 * written, and running out of space while writing fails with the same code.
 */
import { mkdir, mkdtemp, open, readdir, stat, statfs, link, rename, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerlinkError } from '../errors.js';
import { numberedName, validateResourceName } from './resource-name.js';
import { ResourceSink, mapWriteError } from './resource-sink.js';

export interface ResourceStoreOptions {
  /** Download directory; created if missing. Default: a fresh private directory under os.tmpdir(). */
  directory?: string;
  /** Most bytes the directory may hold (existing files + transfers in progress). Default: no limit. */
  quota?: number;
}

/** Temporary files are hidden, and named so that no valid resource name can equal one (names may not start with "."). */
const TEMP_PREFIX = '.peerlink-';
const TEMP_SUFFIX = '.part';
/** How many numbered alternatives are tried before giving up on a name. */
const MAX_SUFFIX = 9999;

export class ResourceStore {
  readonly #options: ResourceStoreOptions;
  #directory: Promise<string> | undefined;
  /** Reserved bytes of transfers in progress, by temp file name. */
  readonly #reserved = new Map<string, number>();
  readonly #sinks = new Set<ResourceSink>();
  #closed = false;
  #admission: Promise<void> = Promise.resolve();

  constructor(options: ResourceStoreOptions = {}) {
    if (options.quota !== undefined && !(Number.isSafeInteger(options.quota) && options.quota >= 0))
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `resource quota must be a whole number of bytes, got ${String(options.quota)}`);
    this.#options = { ...options };
  }

  /** The download directory, created on first use. */
  directory(): Promise<string> {
    this.#directory ??= (async () => {
      const dir = this.#options.directory;
      if (dir === undefined) return mkdtemp(join(tmpdir(), 'peerlink-resources-'));
      await mkdir(dir, { recursive: true });
      return dir;
    })();
    return this.#directory;
  }

  get quota(): number | undefined {
    return this.#options.quota;
  }

  /**
   * Validates the name, checks the quota and free space against the announced size,
   * reserves it, and creates the temporary file. The sink is ready for the body.
   */
  async open(name: string, size: number, expectedSha256: string | null = null): Promise<ResourceSink> {
    if (this.#closed) throw new PeerlinkError('ERR_CLOSED', 'the session is closed');
    validateResourceName(name);
    const dir = await this.directory();
    const tempName = `${TEMP_PREFIX}${randomBytes(12).toString('hex')}${TEMP_SUFFIX}`;
    // Check and reserve as one step, so two concurrent transfers cannot both fit
    // under the quota on the strength of the same free bytes.
    const admitted = this.#admission.then(async () => {
      await this.#checkSpace(dir, size);
      this.#reserved.set(tempName, size);
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
    return sink;
  }

  async #checkSpace(dir: string, size: number): Promise<void> {
    const quota = this.#options.quota;
    if (quota !== undefined) {
      const used = (await this.usage()) + [...this.#reserved.values()].reduce((a, b) => a + b, 0);
      if (used + size > quota)
        throw new PeerlinkError(
          'ERR_RESOURCE_QUOTA',
          `a resource of ${size} bytes does not fit the download quota (${quota} bytes, ${Math.max(0, quota - used)} free); free space in ${dir} or raise the quota`,
        );
    }
    const fs = await statfs(dir).catch(() => undefined);
    if (fs && size > fs.bavail * fs.bsize)
      throw new PeerlinkError('ERR_RESOURCE_QUOTA', `a resource of ${size} bytes does not fit the free space of ${dir} (${fs.bavail * fs.bsize} bytes)`);
  }

  /** Bytes held by regular files directly in the directory, not counting this store's own temporary files (they are reserved instead). */
  async usage(): Promise<number> {
    const dir = await this.directory();
    let total = 0;
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isFile() || this.#reserved.has(entry.name)) continue;
      const st = await stat(join(dir, entry.name)).catch(() => undefined);
      if (st) total += st.size;
    }
    return total;
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
    throw new PeerlinkError('ERR_RESOURCE_NAME', `too many files named like "${name}" in ${dir}`);
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

  /** Called by a sink when it is finished, whatever the outcome. */
  release(sink: ResourceSink, tempName: string): void {
    this.#reserved.delete(tempName);
    this.#sinks.delete(sink);
  }

  /** Aborts every transfer still writing (their temp files are removed). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sinks].map((s) => s.abort(new PeerlinkError('ERR_RESOURCE_ABORTED', 'the session closed during the transfer'))));
  }
}
