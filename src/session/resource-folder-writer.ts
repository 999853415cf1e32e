/**
 * Writes a folder's directories and small files off the main thread, in order, on one worker
 * thread (resource-folder-writer-worker.ts), while the main thread goes on reading (and
 * verifying) the stream.
 *
 * Why: the receiver used to create each small file through the libuv pool, up to 16 at once.
 * Creates in one directory serialise on the directory's lock in the kernel, so the pool's
 * threads only contended for it (10 000 files of 1–64 KiB: 0.9 s of system time on an idle
 * 2-core machine, 6–7 s under load), and each file cost wake-ups of the main thread; each
 * `mkdir` stalled the stream read. One thread creating files synchronously takes ~20 µs a file.
 *
 * Queued work is batched: a batch goes to the worker when it holds BATCH_BYTES or BATCH_OPS,
 * or when the caller flushes (the receiver does so whenever the stream has nothing buffered,
 * so no file waits on the network). Memory is bounded: bytes queued or in the worker's hands
 * never exceed BACKLOG_BYTES by more than one file (≤ 1 MiB; `room()` waits below it), and the
 * worker holds one file descriptor at a time.
 */
import { PeerlinkError } from '../errors.js';
import type { Worker } from 'node:worker_threads';
import { workerThreads } from '../lazy-builtins.js';

/** A batch is sent to the worker once it holds this many bytes… */
const BATCH_BYTES = 1024 * 1024;
/** …or this many operations. */
const BATCH_OPS = 256;
/** Bytes of files queued or being written before `room()` makes the reader wait. */
export const BACKLOG_BYTES = 16 * 1024 * 1024;
/**
 * Operations (directories, files) queued or being written before `room()` makes the reader
 * wait: empty and tiny files add almost no bytes, and a drain (before a large file, or after a
 * failure) must wait for a bounded amount of file-system work, not a whole 10⁵-entry manifest.
 */
export const BACKLOG_OPS = 1024;
/**
 * Transport-buffer bytes the queued pieces keep alive before a batch is sent (and copied): a
 * piece is a view, so a 1-byte file can pin a whole network read (TLS 16 KiB, TCP 64 KiB,
 * a WebSocket message up to 4 MiB).
 */
const PINNED_BYTES = 4 * 1024 * 1024;

export type WriterOp = { kind: 'dir'; path: string } | { kind: 'file'; path: string; length: number; mode: number; mtimeMs: number; chmod: boolean };
export interface WriterBatch {
  seq: number;
  ops: WriterOp[];
  bytes: ArrayBuffer;
}
export interface WriterReply {
  seq: number;
  error?: { code?: string; message: string };
}

interface Sent {
  bytes: number;
  ops: number;
  done: Array<() => void>;
}

export class FolderWriter {
  readonly #worker: Worker;
  #ops: WriterOp[] = [];
  #pieces: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes of the transport buffers the queued pieces are views of (counted per piece). */
  #pinned = 0;
  #sentOps = 0;
  #done: Array<() => void> = [];
  #seq = 0;
  readonly #sent = new Map<number, Sent>();
  #sentBytes = 0;
  #failed: Error | undefined;
  /** Waiters for an answer from the worker (room, drain). */
  #waiters: Array<() => void> = [];
  #closed = false;

  constructor(resume: boolean) {
    // No execArgv: the app's preloads (--import, --require) have no business in this thread.
    this.#worker = new (workerThreads().Worker)(new URL('./resource-folder-writer-worker.js', import.meta.url), { workerData: { resume }, execArgv: [] });
    this.#worker.on('message', (r: WriterReply) => this.#answer(r));
    this.#worker.on('error', (err) => this.#fail(err));
    this.#worker.on('exit', () => this.#fail(new PeerlinkError('ERR_INTERNAL', 'the folder writer thread stopped')));
  }

  /** Bytes queued or in the worker's hands, not yet written. */
  get backlog(): number {
    return this.#pendingBytes + this.#sentBytes;
  }

  /** Operations queued or in the worker's hands, not yet done. */
  get pendingOps(): number {
    return this.#sentOps + this.#ops.length;
  }

  /** Whether `room()` would wait for the worker (the backlog is at BACKLOG_BYTES or BACKLOG_OPS). */
  get full(): boolean {
    return this.#full() && !this.#failed;
  }

  /** Throws the first write failure, if any. */
  check(): void {
    if (this.#failed) throw this.#failed;
  }

  dir(path: string): void {
    this.#ops.push({ kind: 'dir', path });
    if (this.#ops.length >= BATCH_OPS) this.flush();
  }

  /** Queues a verified file; `done` runs once it is written (in queue order). */
  file(path: string, pieces: Buffer[], length: number, mode: number, mtimeMs: number, chmod: boolean, done: () => void): void {
    this.#ops.push({ kind: 'file', path, length, mode, mtimeMs, chmod });
    for (const p of pieces) {
      this.#pieces.push(p);
      this.#pinned += p.buffer.byteLength;
    }
    this.#pendingBytes += length;
    this.#done.push(done);
    if (this.#pendingBytes >= BATCH_BYTES || this.#ops.length >= BATCH_OPS || this.#pinned >= PINNED_BYTES) this.flush();
  }

  /** Sends what is queued to the worker. */
  flush(): void {
    if (this.#ops.length === 0 || this.#failed || this.#closed) return;
    // A fresh buffer of our own (never a view of Buffer's shared pool), moved to the worker without a copy.
    const bytes = new ArrayBuffer(this.#pendingBytes);
    const view = new Uint8Array(bytes);
    let at = 0;
    for (const p of this.#pieces) {
      view.set(p, at);
      at += p.length;
    }
    const seq = ++this.#seq;
    const batch: WriterBatch = { seq, ops: this.#ops, bytes };
    this.#sent.set(seq, { bytes: this.#pendingBytes, ops: this.#ops.length, done: this.#done });
    this.#sentBytes += this.#pendingBytes;
    this.#sentOps += this.#ops.length;
    this.#ops = [];
    this.#pieces = [];
    this.#pendingBytes = 0;
    this.#pinned = 0;
    this.#done = [];
    this.#worker.postMessage(batch, [bytes]);
  }

  /** Resolves once the backlog is under BACKLOG_BYTES and BACKLOG_OPS (flushing what is queued); throws a write failure. */
  async room(): Promise<void> {
    if (!this.#full()) return this.check();
    this.flush();
    while (this.#full() && !this.#failed) await this.#answered();
    this.check();
  }

  #full(): boolean {
    return this.backlog >= BACKLOG_BYTES || this.pendingOps >= BACKLOG_OPS;
  }

  /** Resolves once everything queued is written; throws a write failure. */
  async drain(): Promise<void> {
    this.flush();
    while (this.#sent.size > 0 && !this.#failed) await this.#answered();
    this.check();
  }

  /** Stops the worker (after drain(), or to abandon what is queued: nothing is written after this resolves). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#worker.terminate().catch(() => undefined);
    this.#wake();
  }

  #answered(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  #answer(r: WriterReply): void {
    const sent = this.#sent.get(r.seq);
    if (!sent) return;
    this.#sent.delete(r.seq);
    this.#sentBytes -= sent.bytes;
    this.#sentOps -= sent.ops;
    if (r.error) {
      const err = Object.assign(new Error(r.error.message), r.error.code ? { code: r.error.code } : {});
      this.#fail(err);
    } else if (!this.#failed) for (const f of sent.done) f();
    this.#wake();
  }

  #fail(err: Error): void {
    if (this.#closed) return;
    this.#failed ??= err;
    this.#wake();
  }
}
