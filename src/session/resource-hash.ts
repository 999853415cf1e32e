/**
 * The SHA-256 of a resource's body, computed on a worker thread for large bodies so that the
 * main thread — which also encrypts or decrypts the stream and drives the file I/O — does not
 * spend ~0.6–0.9 s per GiB hashing. Profiles of a 1 GiB transfer over loopback put
 * `Hash#update` at about a third of each side's main-thread time.
 *
 * Bytes are copied into a ring of shared slots (4 × 512 KiB) (a copy costs ~1/10 of hashing them) and the
 * worker hashes the slots in order; the two threads hand slots over with Atomics alone, so a
 * chunk costs no message and no event-loop turn. `update()` blocks only when the worker is a
 * whole ring behind, which is the backpressure that keeps memory flat: the main thread then
 * waits about as long as it would have spent hashing. `digest()` waits for the last slots.
 *
 * The digest is of exactly the bytes given to `update()`, in order: what the sender read,
 * and what the receiver wrote. A resumed transfer continues a `Hash` of its prefix, which
 * cannot move to another thread: it keeps hashing in line (createBodyHash is only for bodies
 * that start at byte 0).
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { PeerlinkError } from '../errors.js';
import type { Worker } from 'node:worker_threads';
import { workerThreads } from '../lazy-builtins.js';

type WaitAsync = (a: Int32Array, index: number, value: number, timeout?: number) => { async: false; value: string } | { async: true; value: Promise<string> };
/** Atomics.waitAsync (ES2024; in every Node line this runs on). */
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** What the two ends of a transfer need of a hash (node:crypto's Hash fits). */
export interface BodyHash {
  update(data: Buffer): unknown;
  digest(encoding: 'hex'): string;
}

/** Bodies at least this large are hashed off the main thread (a worker costs a few ms to start). */
export const OFF_THREAD_MIN = 32 * 1024 * 1024;
const SLOT = 512 * 1024;
const SLOTS = 4;
/** How long a worker may take to start before the transfer fails rather than wait on it. */
const START_DEADLINE_MS = 30_000;

// Control words (Int32) at the start of the shared buffer.
const SIGNAL = 0; // main → worker: bumped on every post and on finish
const POSTED = 1; // slots posted so far
const HASHED = 2; // slots hashed so far (worker → main)
const FINISH = 3; // 1: digest wanted; 2: stop without one
const DONE = 4; // 1: digest written; -1: the worker failed
const ALIVE = 5; // 1 once the worker runs
const WORKER_WAITS = 6; // 1 while the worker sleeps on SIGNAL (main notifies only then)
const MAIN_WAITS = 7; // 1 while the main thread waits on HASHED (the worker notifies only then)
const LENGTHS = 8; // one length per slot from here
const CTL_BYTES = (LENGTHS + SLOTS) * 4;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { sab, slots, slot, ctlBytes } = workerData;
const ctl = new Int32Array(sab, 0, ctlBytes / 4);
const data = Buffer.from(sab, ctlBytes, slots * slot);
const out = Buffer.from(sab, ctlBytes + slots * slot, 32);
try {
  const h = createHash('sha256');
  let hashed = 0;
  Atomics.store(ctl, ${ALIVE}, 1);
  Atomics.notify(ctl, ${ALIVE});
  for (;;) {
    const sig = Atomics.load(ctl, ${SIGNAL});
    const posted = Atomics.load(ctl, ${POSTED});
    while (hashed < posted) {
      const i = hashed % slots;
      h.update(data.subarray(i * slot, i * slot + Atomics.load(ctl, ${LENGTHS} + i)));
      hashed++;
      Atomics.store(ctl, ${HASHED}, hashed);
      if (Atomics.load(ctl, ${MAIN_WAITS}) === 1) Atomics.notify(ctl, ${HASHED});
    }
    const finish = Atomics.load(ctl, ${FINISH});
    if (finish === 2) break;
    if (finish === 1 && hashed === Atomics.load(ctl, ${POSTED})) {
      out.set(h.digest());
      Atomics.store(ctl, ${DONE}, 1);
      Atomics.notify(ctl, ${DONE});
      break;
    }
    Atomics.store(ctl, ${WORKER_WAITS}, 1);
    Atomics.wait(ctl, ${SIGNAL}, sig);
    Atomics.store(ctl, ${WORKER_WAITS}, 0);
  }
} catch {
  Atomics.store(ctl, ${DONE}, -1);
  Atomics.notify(ctl, ${DONE});
  Atomics.notify(ctl, ${HASHED});
}
`;

/**
 * Whether a large body is hashed on a worker thread: with `PEERLINK_HASH_THREAD=1` always, with
 * `=0` never, otherwise when the machine has more than 2 cores. On 2 cores the main thread and the
 * network's other end already fill the machine (both ends on one host, measured: no faster) while
 * the worker costs ~11 MiB of RSS.
 */
function hashThreadWanted(): boolean {
  const env = process.env.PEERLINK_HASH_THREAD;
  if (env === '1') return true;
  if (env === '0') return false;
  return availableParallelism() > 2;
}

/** A hash for a body of `size` bytes that starts at byte 0: off the main thread when large (and the machine has cores to spare). */
export function createBodyHash(size: number): BodyHash & { dispose(): void } {
  if (size < OFF_THREAD_MIN || !hashThreadWanted()) {
    const h = createHash('sha256');
    return Object.assign(h, { dispose: () => undefined });
  }
  return new OffThreadHash();
}

/** Stops a body hash that will not be finished (a failed transfer); a no-op for in-line hashes. */
export function disposeBodyHash(h: BodyHash | undefined): void {
  if (h instanceof OffThreadHash) h.dispose();
}

export class OffThreadHash implements BodyHash {
  readonly #ctl: Int32Array;
  readonly #data: Buffer;
  readonly #out: Buffer;
  readonly #worker: Worker;
  readonly #created = Date.now();
  /** Bytes in the slot being filled (not posted yet). */
  #fill = 0;
  #posted = 0;
  #finished = false;

  constructor() {
    const sab = new SharedArrayBuffer(CTL_BYTES + SLOTS * SLOT + 32);
    this.#ctl = new Int32Array(sab, 0, CTL_BYTES / 4);
    this.#data = Buffer.from(sab, CTL_BYTES, SLOTS * SLOT);
    this.#out = Buffer.from(sab, CTL_BYTES + SLOTS * SLOT, 32);
    this.#worker = new (workerThreads().Worker)(WORKER_SOURCE, {
      eval: true,
      // The app's own flags (--input-type=module, loaders, inspectors) are not for this CommonJS snippet.
      execArgv: [],
      workerData: { sab, slots: SLOTS, slot: SLOT, ctlBytes: CTL_BYTES },
      // A hashing loop needs little heap; the slots are shared memory outside it.
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 },
      stdout: false,
      stderr: false,
    });
    // A worker that fails says so here (when the main thread is not blocked on it): later waits then fail at once.
    const ctl = this.#ctl;
    const gone = (): void => {
      // A worker that ended without a digest: waits fail at once, and a room() waiting is woken.
      Atomics.compareExchange(ctl, DONE, 0, -1);
      Atomics.notify(ctl, HASHED);
    };
    this.#worker.on('error', gone);
    this.#worker.on('exit', gone);
    this.#worker.unref();
  }

  update(data: Buffer): this {
    if (this.#finished) throw new PeerlinkError('ERR_INVALID_STATE', 'hash already finished');
    let off = 0;
    while (off < data.length) {
      if (this.#fill === 0) this.#awaitSlot();
      const slot = this.#posted % SLOTS;
      const n = Math.min(SLOT - this.#fill, data.length - off);
      data.copy(this.#data, slot * SLOT + this.#fill, off, off + n);
      this.#fill += n;
      off += n;
      if (this.#fill === SLOT) this.#post();
    }
    return this;
  }

  digest(encoding: 'hex'): string {
    if (this.#finished) throw new PeerlinkError('ERR_INVALID_STATE', 'hash already finished');
    if (this.#fill > 0) this.#post();
    this.#finished = true;
    Atomics.store(this.#ctl, FINISH, 1);
    this.#signal();
    this.#wait(DONE, 0);
    if (Atomics.load(this.#ctl, DONE) !== 1) throw this.#failed();
    return this.#out.toString(encoding);
  }

  /** Ends the worker without a digest (a transfer that failed). Safe to call more than once. */
  dispose(): void {
    if (Atomics.load(this.#ctl, DONE) !== 0) return;
    this.#finished = true;
    Atomics.store(this.#ctl, FINISH, 2);
    this.#signal();
    Atomics.notify(this.#ctl, HASHED); // a room() waiting on it returns
    void this.#worker.terminate().catch(() => undefined);
  }

  #post(): void {
    Atomics.store(this.#ctl, LENGTHS + (this.#posted % SLOTS), this.#fill);
    this.#posted++;
    this.#fill = 0;
    Atomics.store(this.#ctl, POSTED, this.#posted);
    this.#signal();
  }

  #signal(): void {
    Atomics.add(this.#ctl, SIGNAL, 1);
    // A worker about to sleep sees SIGNAL changed and does not: only a sleeping one needs waking.
    if (Atomics.load(this.#ctl, WORKER_WAITS) === 1) Atomics.notify(this.#ctl, SIGNAL);
  }

  /** Bytes update() can take now without waiting for the worker. */
  #free(): number {
    return (SLOTS - (this.#posted - Atomics.load(this.#ctl, HASHED))) * SLOT - this.#fill;
  }

  /**
   * undefined when `bytes` (at most the ring, 2 MiB) can be given to update() without blocking;
   * otherwise a promise that settles once they can (or once waiting makes no sense: the worker
   * failed or never started, which update() then reports). Callers with a loop of their own await
   * it, so the main thread waits in its event loop rather than in update().
   */
  room(bytes: number): Promise<void> | undefined {
    const want = Math.min(bytes, SLOTS * SLOT - SLOT);
    if (this.#finished || this.#free() >= want) return undefined;
    // Atomics.waitAsync does not keep Node's event loop alive: the worker's handle does, meanwhile.
    this.#worker.ref();
    return (async () => {
      while (!this.#finished && Atomics.load(this.#ctl, DONE) === 0) {
        const hashed = Atomics.load(this.#ctl, HASHED);
        Atomics.store(this.#ctl, MAIN_WAITS, 1);
        if (this.#free() >= want) break;
        if (Atomics.load(this.#ctl, ALIVE) === 0 && Date.now() - this.#created > START_DEADLINE_MS) break;
        const r = waitAsync(this.#ctl, HASHED, hashed, 100);
        if (r.async) await r.value;
      }
      Atomics.store(this.#ctl, MAIN_WAITS, 0);
      this.#worker.unref();
    })();
  }

  /** Blocks until the slot to fill next has been hashed (the worker is less than a ring behind). */
  #awaitSlot(): void {
    for (;;) {
      const hashed = Atomics.load(this.#ctl, HASHED);
      if (this.#posted - hashed < SLOTS) return;
      if (Atomics.load(this.#ctl, DONE) === -1) throw this.#failed();
      this.#wait(HASHED, hashed);
    }
  }

  /** Blocks while ctl[index] is `value`, failing if the worker never started. */
  #wait(index: number, value: number): void {
    while (Atomics.load(this.#ctl, index) === value) {
      if (Atomics.load(this.#ctl, DONE) === -1) return;
      if (Atomics.load(this.#ctl, ALIVE) === 0 && Date.now() - this.#created > START_DEADLINE_MS) {
        void this.#worker.terminate().catch(() => undefined);
        throw this.#failed();
      }
      Atomics.store(this.#ctl, MAIN_WAITS, 1);
      if (Atomics.load(this.#ctl, index) === value) Atomics.wait(this.#ctl, index, value, 100);
    }
    Atomics.store(this.#ctl, MAIN_WAITS, 0);
  }

  #failed(): PeerlinkError {
    this.#finished = true;
    return new PeerlinkError('ERR_INTERNAL', 'the hashing thread failed');
  }
}
