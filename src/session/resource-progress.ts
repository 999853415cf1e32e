/**
 * What outgoing and incoming transfers have in common: a name, a peer, progress
 * events ({bytes, total, rate}) at a bounded rate, and a `done` promise.
 *
 * `done` never causes an unhandled rejection: an app that ignores a failed transfer
 * must not crash (a remote peer can make any transfer fail), so the promise is marked
 * handled; awaiting it still throws.
 */
import { EventEmitter } from 'node:events';
import { channel } from 'node:diagnostics_channel';
import type { PeerlinkError } from '../errors.js';

export interface ResourceProgress {
  /** Bytes transferred so far. */
  bytes: number;
  /** Announced size in bytes. */
  total: number;
  /** Recent rate in bytes per second (over the last couple of seconds). */
  rate: number;
}

/**
 * `pending` (opening the source and the stream, reading the offer) → `awaitingAcceptance`
 * (the offer is with the receiver's app, which may ask a person) → `transferring` →
 * `verifying` → `completed` | `failed`. Every change is a `state` event.
 */
export type TransferState = 'pending' | 'awaitingAcceptance' | 'transferring' | 'paused' | 'verifying' | 'completed' | 'failed';

/** A folder's file, done: its path in the folder, its size, and how many of the folder's files are done. */
export interface FolderFileProgress {
  path: string;
  size: number;
  done: number;
  files: number;
}

export interface ResourceTransferEvents {
  progress: [ResourceProgress];
  /** (Folders) one file is done: sent and confirmed, or received and verified. */
  file: [FolderFileProgress];
  /** (Sender) the peer was lost mid-transfer: the transfer waits for it (state `paused`), up to `resumeTimeout`. */
  paused: [PeerlinkError];
  /** The body continues from `offset` (a prefix the receiver held and the sender proved; 0 if none). */
  resumed: [{ offset: number }];
  /** The transfer's state changed (also to `completed` / `failed`, just before `done` settles). */
  state: [TransferState];
}

/** diagnostics_channel for transfers: {event: 'start' | 'done' | 'failed' | 'paused' | 'resumed', direction, name, size, error?, offset?}. */
export const resourceChannel = channel('peerlink:session:resource');

/** Progress events are emitted at most this often (plus the first and the last). */
const PROGRESS_INTERVAL_MS = 100;
/** The rate is averaged over this window. */
const RATE_WINDOW_MS = 2000;

export abstract class TransferBase<P, R> extends EventEmitter<ResourceTransferEvents> {
  readonly peer: P;
  abstract readonly direction: 'send' | 'receive';
  /** Resolves with the result when the receiver has confirmed the verified file. */
  readonly done: Promise<R>;
  #resolve!: (r: R) => void;
  #reject!: (e: PeerlinkError) => void;
  #bytes = 0;
  #wire = 0;
  #resumedFrom = 0;
  #total = 0;
  #state: TransferState = 'pending';
  #error: PeerlinkError | undefined;
  #lastEmit = 0;
  #trailing: NodeJS.Timeout | undefined;
  readonly #samples: Array<[number, number]> = [];
  readonly startedAt = Date.now();

  constructor(peer: P) {
    super();
    this.peer = peer;
    this.done = new Promise<R>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.done.catch(() => undefined);
  }

  abstract get name(): string;

  get state(): TransferState {
    return this.#state;
  }

  /** The error a failed transfer ended with. */
  get error(): PeerlinkError | undefined {
    return this.#error;
  }

  get progress(): ResourceProgress {
    return { bytes: this.#bytes, total: this.#total, rate: this.#rate(Date.now()) };
  }

  /** Body bytes that crossed the network in this transfer object, every attempt included (a resumed prefix is not counted). */
  get bytesOnWire(): number {
    return this.#wire;
  }

  /** Where the body last started: the length of the prefix a resume kept, or 0. */
  get resumedFrom(): number {
    return this.#resumedFrom;
  }

  /** The body (re)starts at `offset`: progress jumps there without counting it as sent. */
  protected startBody(offset: number): void {
    this.#bytes = offset;
    this.#resumedFrom = offset;
    this.#samples.length = 0;
    this.#emitProgress(Date.now());
  }

  protected setTotal(total: number): void {
    this.#total = total;
  }

  protected setState(state: TransferState): void {
    if (this.#state === state || this.#state === 'completed' || this.#state === 'failed') return;
    this.#state = state;
    this.safeEmit('state', state);
  }

  /** Emits to the app; a listener's exception must not break the transfer's own loop. */
  protected safeEmit<K extends keyof ResourceTransferEvents>(event: K, ...args: ResourceTransferEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: ResourceTransferEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      // An app listener's exception must not break the transfer's own loop.
      process.nextTick(() => {
        throw err;
      });
    }
  }

  protected advance(bytes: number, force = false): void {
    this.#bytes += bytes;
    this.#wire += bytes;
    const now = Date.now();
    // One sample per emit interval keeps the window short however small the chunks.
    const lastSample = this.#samples[this.#samples.length - 1];
    if (!lastSample || now - lastSample[0] >= PROGRESS_INTERVAL_MS) this.#samples.push([now, this.#bytes - bytes]);
    while (this.#samples.length > 2 && now - this.#samples[0]![0] > RATE_WINDOW_MS) this.#samples.shift();
    if (force || now - this.#lastEmit >= PROGRESS_INTERVAL_MS || this.#bytes === this.#total) {
      this.#emitProgress(now);
    } else if (!this.#trailing) {
      // A throttled update is still delivered, a little later, so the last event of a
      // stalled transfer shows where it stalled.
      this.#trailing = setTimeout(() => this.#emitProgress(Date.now()), PROGRESS_INTERVAL_MS - (now - this.#lastEmit));
      this.#trailing.unref();
    }
  }

  #emitProgress(now: number): void {
    if (this.#trailing) clearTimeout(this.#trailing);
    this.#trailing = undefined;
    this.#lastEmit = now;
    this.emit('progress', this.progress);
  }

  #rate(now: number): number {
    const first = this.#samples[0];
    if (!first) return 0;
    const span = now - first[0];
    // Under 50 ms the estimate is noise (a first chunk divided by ~0 s).
    if (span < 50) return 0;
    return Math.round(((this.#bytes - first[1]) * 1000) / span);
  }

  protected succeed(result: R): void {
    if (this.#state === 'completed' || this.#state === 'failed') return;
    this.setState('completed');
    if (this.#trailing) clearTimeout(this.#trailing);
    resourceChannel.publish({ event: 'done', direction: this.direction, name: this.name, size: this.#total });
    this.#resolve(result);
  }

  protected fail(err: PeerlinkError): void {
    if (this.#state === 'completed' || this.#state === 'failed') return;
    this.#error = err;
    this.setState('failed');
    if (this.#trailing) clearTimeout(this.#trailing);
    resourceChannel.publish({ event: 'failed', direction: this.direction, name: this.name, size: this.#total, error: err });
    this.#reject(err);
  }

  /** The transfer paused (its peer was lost) or resumed at `offset`: an event for the app, and one on the diagnostics channel. */
  protected pausedOrResumed(what: { paused: PeerlinkError } | { resumed: number }): void {
    if ('paused' in what) {
      resourceChannel.publish({ event: 'paused', direction: this.direction, name: this.name, size: this.#total, error: what.paused });
      this.safeEmit('paused', what.paused);
    } else {
      resourceChannel.publish({ event: 'resumed', direction: this.direction, name: this.name, size: this.#total, offset: what.resumed });
      this.safeEmit('resumed', { offset: what.resumed });
    }
  }

  protected published(): void {
    resourceChannel.publish({ event: 'start', direction: this.direction, name: this.name, size: this.#total });
  }
}
