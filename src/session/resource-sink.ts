/**
 * The receiving end of one resource: a Writable that hashes each chunk and writes it
 * straight to a temporary file in the download directory. Nothing accumulates in
 * memory beyond a few MiB per transfer (a coalescing buffer — small network chunks are
 * gathered into writes of at least MIN_WRITE bytes — and the Writable's own buffer),
 * and the Writable's backpressure reaches the network: a slow disk slows the sender.
 *
 * The file is the transfer's partial file (resource-partial.ts). A resumed sink starts at the
 * offset the sender proved (`startAt`), with the whole-file hash of the bytes before it.
 * After the body, `commit()` checks size and SHA-256 and puts the file in place under
 * its name (never replacing anything); `abort()` removes the partial file, or keeps it for
 * resuming when the transfer was interrupted rather than refused.
 */
import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { OffThreadHash, disposeBodyHash, type BodyHash } from './resource-hash.js';
import type { FileHandle } from 'node:fs/promises';
import type { PrefixScan } from './resource-prefix.js';
import { partialRecordName } from './resource-partial.js';
import { join } from 'node:path';
import { PeerlinkError } from '../errors.js';
import type { ResourceStore } from './resource-store.js';
import { fsPromises } from '../lazy-builtins.js';

/**
 * Network chunks (often 16–64 KiB) are gathered into file writes of at least this many
 * bytes: fewer, larger writes keep the disk busy while the network fills the next one
 * (measured here: ~25 % faster than 64 KiB writes over TLS on loopback).
 */
export const MIN_WRITE = 512 * 1024;
/** Largest single file write (a gather of queued network chunks). */
const WRITE_MAX = 4 * 1024 * 1024;
/** The Writable's mark: write() returns false past it (callers that pipe into the sink wait for 'drain'). */
const SINK_HIGH_WATER_MARK = 2 * 1024 * 1024;
/**
 * A receiver that copies the network into the sink stops reading at SINK_QUEUE_MAX buffered
 * bytes and reads again once a write brings it down to SINK_QUEUE_RESUME (`room()`), so the
 * network and the disk work at the same time. Waiting for 'drain' instead (the buffer empty,
 * the write in flight done) stopped the network for every write: measured on a 1 GiB
 * transfer over loopback, 5.7 of 7.5 s went to that wait.
 */
export const SINK_QUEUE_MAX = 4 * 1024 * 1024;
export const SINK_QUEUE_RESUME = 2 * 1024 * 1024;

export interface ResourceSinkInit {
  store: ResourceStore;
  directory: string;
  /** The partial file's key (resource-partial.ts). */
  key: string;
  /** The partial file's name in `directory`. */
  tempName: string;
  handle: FileHandle;
  name: string;
  size: number;
  expectedSha256: string | null;
  /** What the partial file held when it was opened for a sender that can resume. */
  prefix?: PrefixScan | undefined;
  /** Called when a newer transfer of the same file takes it over. */
  onSuperseded?: (() => void) | undefined;
  /** Who sends it (a peer key), for the store's takeover rule. */
  owner?: string | undefined;
  /** False for a file of its own that is never resumed (removed even when interrupted). */
  resumable?: boolean;
}

export interface PlacedResource {
  /** The name the file was saved under (the sent name, or a numbered variant of it). */
  name: string;
  /** Absolute path of the saved file. */
  path: string;
  size: number;
  sha256: string;
}

export class ResourceSink extends Writable {
  readonly name: string;
  readonly size: number;
  readonly #init: ResourceSinkInit;
  #hash: BodyHash = createHash('sha256');
  #started = false;
  /** Where the body began: 0, or the proved prefix of a resumed transfer. */
  #offset = 0;
  #accepted = 0;
  #written = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #settled = false;
  #closing: Promise<void> | undefined;
  /** Bytes of the file write under way. */
  #inFlight = 0;
  /** The file write under way. */
  #writing: Promise<void> | undefined;
  /** The first failed file write: every later write and the end fail with it. */
  #writeError: PeerlinkError | undefined;
  /** A Writable callback held back while the queue is over SINK_QUEUE_MAX. */
  #blocked: ((err?: Error | null) => void) | undefined;
  /** The body has ended: what is queued is written however little. */
  #ending = false;
  /** _final's callback, once everything queued has been written. */
  #drained: ((err?: Error) => void) | undefined;
  /** Waiters of room(): called after every completed file write. */
  #roomWaiters: Array<() => void> = [];

  constructor(init: ResourceSinkInit) {
    super({ highWaterMark: SINK_HIGH_WATER_MARK });
    this.#init = init;
    this.name = init.name;
    this.size = init.size;
  }

  get owner(): string | undefined {
    return this.#init.owner;
  }

  /** What the partial file held for a sender that can resume (undefined: nothing to resume). */
  get prefix(): PrefixScan | undefined {
    return this.#init.prefix;
  }

  /** Where the body began (the resumed prefix's length, or 0). */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Starts the body at `offset` (0, or a prefix the sender proved), `hash` being the hash of
   * the file's bytes before it: the file is cut there, so nothing past what was proved stays.
   */
  async startAt(offset: number, hash: BodyHash): Promise<void> {
    if (this.#started) throw new PeerlinkError('ERR_INVALID_STATE', 'the sink has started');
    if (!(Number.isSafeInteger(offset) && offset >= 0 && offset <= this.size)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'bad offset');
    await this.#init.handle.truncate(offset);
    this.#started = true;
    this.#offset = offset;
    this.#accepted = offset;
    this.#written = offset;
    this.#hash = hash;
  }

  /** Bytes received so far (hashed and handed to the file), the resumed prefix included. */
  get bytesReceived(): number {
    return this.#accepted;
  }

  /** Bytes handed to the file system so far (what the disk's free space already reflects). */
  get bytesWritten(): number {
    return this.#written;
  }

  get tempPath(): string {
    return join(this.#init.directory, this.#init.tempName);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#take([chunk], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.#take(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  #take(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    if (!this.#started) {
      cb(new PeerlinkError('ERR_INVALID_STATE', 'the sink was written before startAt()'));
      return;
    }
    if (this.#writeError) {
      cb(this.#writeError);
      return;
    }
    if (this.#accepted + bytes > this.size) {
      // Enforces the announced size (and so the reserved quota) while writing.
      cb(new PeerlinkError('ERR_RESOURCE_VERIFY', `the peer sent more than the ${this.size} bytes it announced`));
      return;
    }
    for (const c of chunks) this.#hash.update(c);
    this.#accepted += bytes;
    this.#pending.push(...chunks);
    this.#pendingBytes += bytes;
    this.#pump();
    // The Writable's own buffer stays near empty: the queue is ours, bounded by SINK_QUEUE_MAX.
    if (this.#pendingBytes + this.#inFlight <= SINK_QUEUE_MAX) cb();
    else this.#blocked = cb;
  }

  /**
   * undefined when `bytes` more can be written without the hashing thread holding up the
   * main thread; otherwise a promise that settles once they can (OffThreadHash.room).
   */
  hashRoom(bytes: number): Promise<void> | undefined {
    return this.#hash instanceof OffThreadHash ? this.#hash.room(bytes) : undefined;
  }

  /** Bytes accepted but not yet written to the file (queued, or in the write under way). */
  get queuedBytes(): number {
    return this.#pendingBytes + this.#inFlight + this.writableLength;
  }

  /**
   * Starts the next file write if none is under way: up to WRITE_MAX bytes of what is queued,
   * once MIN_WRITE have gathered (or everything, once the body has ended). One write at a time,
   * at the file's next position, while the network fills the queue behind it.
   */
  #pump(): void {
    if (this.#writing || this.#writeError || this.#settled) return;
    if (this.#pendingBytes === 0 || (this.#pendingBytes < MIN_WRITE && !this.#ending)) {
      this.#idle();
      return;
    }
    let take = 0;
    let n = 0;
    while (n < this.#pending.length && take < WRITE_MAX) take += this.#pending[n++]!.length;
    const bufs = this.#pending.slice(0, n);
    this.#pending = this.#pending.slice(n);
    this.#pendingBytes -= take;
    this.#inFlight = take;
    this.#writing = this.#writeAll(bufs).then(
      () => {
        this.#inFlight = 0;
        this.#writing = undefined;
        this.#pump();
        this.#release();
      },
      (err: unknown) => {
        this.#inFlight = 0;
        this.#writing = undefined;
        this.#writeError = mapWriteError(err);
        this.#release();
        this.#idle();
      },
    );
  }

  async #writeAll(bufs: Buffer[]): Promise<void> {
    while (bufs.length > 0) {
      const { bytesWritten } = await this.#init.handle.writev(bufs, this.#written);
      this.#written += bytesWritten;
      bufs = dropBytes(bufs, bytesWritten);
    }
  }

  /** A write finished (or failed): a blocked writer and room() waiters may go on. */
  #release(): void {
    const blocked = this.#blocked;
    if (blocked && (this.#writeError || this.#pendingBytes + this.#inFlight <= SINK_QUEUE_RESUME)) {
      this.#blocked = undefined;
      blocked(this.#writeError);
    }
    if (this.#roomWaiters.length > 0) {
      const waiters = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Nothing more will be written now: settles _final's wait. */
  #idle(): void {
    if (this.#writing || (this.#pendingBytes > 0 && !this.#writeError)) return;
    const done = this.#drained;
    this.#drained = undefined;
    done?.(this.#writeError);
  }

  /**
   * Resolves once at most `limit` bytes are queued or being written (at once if so now);
   * rejects if the sink fails or is destroyed first. Unlike 'drain', this lets the caller
   * keep the next write queued while one is on its way to the disk.
   */
  room(limit: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const err = this.#writeError ?? this.errored;
        if (err || this.destroyed) {
          reject(err ?? new PeerlinkError('ERR_RESOURCE_ABORTED', 'the transfer was stopped'));
          return true;
        }
        if (this.queuedBytes <= limit) {
          resolve();
          return true;
        }
        return false;
      };
      if (check()) return;
      const waiter = (): void => {
        if (!check()) this.#roomWaiters.push(waiter);
      };
      this.#roomWaiters.push(waiter);
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#ending = true;
    this.#drained = (err) => cb(err ?? null);
    this.#pump();
    this.#idle();
  }

  /**
   * Verifies size and digest against the announced values and `trailerSha256`, then
   * puts the file in place. Call after the body has been written and `end()` called.
   * On a mismatch the temp file is removed and ERR_RESOURCE_VERIFY thrown.
   */
  async commit(trailerSha256: string | null): Promise<PlacedResource> {
    if (this.#settled) throw new PeerlinkError('ERR_INVALID_STATE', 'resource already finished');
    try {
      if (!this.writableFinished) await finishedWriting(this);
      if (this.#accepted !== this.size)
        throw new PeerlinkError('ERR_RESOURCE_VERIFY', `received ${this.#accepted} of ${this.size} announced bytes`);
      const sha256 = this.#hash.digest('hex');
      for (const expected of [this.#init.expectedSha256, trailerSha256]) {
        if (expected !== null && expected !== sha256)
          throw new PeerlinkError('ERR_RESOURCE_VERIFY', `SHA-256 mismatch: the peer announced ${expected.slice(0, 16)}…, the received bytes hash to ${sha256.slice(0, 16)}…`);
      }
      // The file must be complete on disk before it appears under its name.
      await this.#init.handle.datasync();
      await this.#closeHandle();
      const name = await this.#init.store.place(this.#init.directory, this.#init.tempName, this.name);
      this.#settled = true;
      await fsPromises().unlink(join(this.#init.directory, partialRecordName(this.#init.key))).catch(() => undefined);
      this.#init.store.release(this, this.#init.key, this.size);
      return { name, path: join(this.#init.directory, name), size: this.size, sha256 };
    } catch (err) {
      const e = mapWriteError(err);
      await this.abort(e);
      throw e;
    }
  }

  /**
   * Stops the transfer: removes the partial file, or with `keep` leaves it (the bytes written so
   * far) for the same file to resume later. Safe to call more than once.
   */
  async abort(_reason?: Error, keep = false): Promise<void> {
    if (this.#settled) return;
    this.#settled = true;
    // destroy() without an error: the reason is reported by whoever called abort, and
    // an 'error' event nobody listens to would crash the process.
    this.destroy();
    disposeBodyHash(this.#hash);
    this.#release();
    // A write under way lands before the file is cut or closed.
    await this.#writing?.catch(() => undefined);
    if (keep && this.#init.resumable !== false) {
      // What is buffered but not written is lost; what is on disk is proved again on resume.
      // Before startAt the file is as the last transfer left it.
      if (this.#started) await this.#init.handle.truncate(this.#written).catch(() => undefined);
      await this.#closeHandle();
      this.#init.store.release(this, this.#init.key, 0, this.#started ? this.#written : (this.#init.prefix?.have ?? 0));
      return;
    }
    await this.#closeHandle();
    await fsPromises().unlink(this.tempPath).catch(() => undefined);
    await fsPromises().unlink(join(this.#init.directory, partialRecordName(this.#init.key))).catch(() => undefined);
    this.#init.store.release(this, this.#init.key);
  }

  /** A newer transfer of the same file takes the partial file over: this one stops, keeping it. */
  async supersede(): Promise<void> {
    try {
      this.#init.onSuperseded?.();
    } catch {
      // the owner's callback must not stop the takeover
    }
    await this.abort(new PeerlinkError('ERR_RESOURCE_ABORTED', 'the same file is being sent again'), true);
  }

  #closeHandle(): Promise<void> {
    this.#closing ??= this.#init.handle.close().catch(() => undefined);
    return this.#closing;
  }
}

/** `bufs` without their first `n` bytes (the buffers are not copied); also used by resource-folder-receive.ts. */
export function dropBytes(bufs: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
  const rest = bufs.slice(i);
  if (n > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

function finishedWriting(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (w.writableFinished) return resolve();
    if (w.errored) return reject(w.errored);
    const cleanup = (): void => {
      w.off('finish', onFinish);
      w.off('error', onError);
      w.off('close', onClose);
    };
    const onFinish = (): void => {
      cleanup();
      resolve();
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onClose = (): void => {
      cleanup();
      if (w.writableFinished) resolve();
      else reject(w.errored ?? new PeerlinkError('ERR_RESOURCE_ABORTED', 'the transfer was stopped'));
    };
    w.on('finish', onFinish);
    w.on('error', onError);
    w.on('close', onClose);
  });
}

/** File system errors while writing a resource, as peerlink errors. */
export function mapWriteError(err: unknown): PeerlinkError {
  if (err instanceof PeerlinkError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT' || e?.code === 'EFBIG')
    return new PeerlinkError('ERR_RESOURCE_QUOTA', `the download directory is out of space (${e.code})`, { cause: err });
  return new PeerlinkError('ERR_INTERNAL', `writing the resource failed: ${e?.message ?? String(err)}`, { cause: err });
}
