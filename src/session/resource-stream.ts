/**
 * Small stream helpers shared by the two ends of a resource stream.
 */
import type { Duplex, Writable } from 'node:stream';
import { PeerlinkError, isPeerlinkError } from '../errors.js';

/** How long a finished stream may linger for the peer's end before it is destroyed. */
const LINGER_MS = 5000;

/** Resolves on 'drain'; rejects with ERR_RESOURCE_ABORTED if the stream closes or fails first. */
export function waitDrain(w: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (w.destroyed || w.writableEnded) {
      reject(aborted(w.errored));
      return;
    }
    const cleanup = (): void => {
      w.off('drain', onDrain);
      w.off('close', onClose);
      w.off('error', onError);
    };
    const onDrain = (): void => {
      cleanup();
      resolve();
    };
    const onClose = (): void => {
      cleanup();
      reject(aborted(w.errored));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(aborted(err));
    };
    w.on('drain', onDrain);
    w.on('close', onClose);
    w.on('error', onError);
  });
}

function aborted(cause: Error | null | undefined): PeerlinkError {
  if (isPeerlinkError(cause)) return cause;
  return new PeerlinkError('ERR_RESOURCE_ABORTED', 'the peer went away during the transfer', cause ? { cause } : undefined);
}

/**
 * Ends our side and drains the peer's, so the underlying connection closes by itself;
 * destroys it if the peer does not end within a few seconds.
 */
export function closeGracefully(stream: Duplex): void {
  stream.resume();
  stream.end();
  const t = setTimeout(() => stream.destroy(), LINGER_MS);
  t.unref();
  stream.once('close', () => clearTimeout(t));
}

/** Codes with which a stream breaks when its peer or connection goes away. */
const STREAM_LOST: ReadonlySet<string> = new Set([
  'ERR_CONNECTION_RESET',
  'ERR_CLOSED',
  'ERR_PEER_NOT_CONNECTED',
  'ERR_KEEPALIVE_TIMEOUT',
  'ERR_CONNECTION_TIMEOUT',
  'ERR_PEER_UNREACHABLE',
]);

/**
 * Any failure of a transfer as a PeerlinkError with a resource code. `started`: the
 * resource stream was open — before that, "peer not connected" is the better answer.
 */
export function asTransferError(err: unknown, cancelled: boolean, started = true): PeerlinkError {
  if (cancelled) return new PeerlinkError('ERR_CANCELLED', 'the transfer was cancelled', { cause: err });
  if (isPeerlinkError(err)) {
    // A stream that broke is, to the app, a transfer the peer abandoned — whichever
    // layer noticed first (the stream itself, or the session dropping the peer).
    if (started && STREAM_LOST.has(err.code)) return new PeerlinkError('ERR_RESOURCE_ABORTED', `the transfer stopped: ${err.message}`, { cause: err });
    return err;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ECONNRESET' || e?.code === 'EPIPE' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || e?.code === 'ERR_STREAM_DESTROYED' || e?.code === 'ABORT_ERR')
    return new PeerlinkError('ERR_RESOURCE_ABORTED', 'the peer went away during the transfer', { cause: err });
  return new PeerlinkError('ERR_INTERNAL', `resource transfer failed: ${e?.message ?? String(err)}`, { cause: err });
}

/**
 * Watches a peer for silence: `expire` is called once `ms` pass without progress (time spent
 * `pause()`d — waiting for our own disk — does not count). Progress is `minBytes` received
 * since the last progress, so a sender trickling a byte now and then to hold its reservation
 * is as silent as one sending nothing (docs/security.md "Resources"). One timer, re-armed
 * lazily, so touching it per chunk costs nothing.
 */
export class IdleWatch {
  #last = Date.now();
  #bytes = 0;
  #paused = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly expire: () => void,
    private readonly minBytes = 1,
  ) {
    this.#arm(ms);
  }

  /** `bytes` arrived (default: one piece, counted as progress). */
  touch(bytes = this.minBytes): void {
    this.#bytes += bytes;
    if (this.#bytes < this.minBytes) return;
    this.#bytes = 0;
    this.#last = Date.now();
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    this.#last = Date.now();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#check(), ms);
    this.#timer.unref();
  }

  #check(): void {
    const idle = Date.now() - this.#last;
    if (this.#paused) this.#arm(this.ms);
    else if (idle >= this.ms) {
      this.#timer = undefined;
      this.expire();
    } else this.#arm(this.ms - idle);
  }
}
