/**
 * Connection.whenReady(): waiting on the state machine for `ready`, or for the state that
 * means it will not come (failed, cancelled, and waiting when asked).
 */
import type { EventEmitter } from 'node:events';
import { PeerlinkError } from '../errors.js';
import type { ConnectionEvents, WhenReadyOptions } from './connection-types.js';
import type { ConnectionState } from './state.js';

/** What whenReady() watches: a Connection's state, its error and its 'state' events. */
export interface ReadyWatched extends EventEmitter<ConnectionEvents> {
  readonly state: ConnectionState;
  readonly error: PeerlinkError | undefined;
}

/** Resolves when ready; rejects with the error on failed / cancelled (and waiting, if asked). */
export function whenReady(c: ReadyWatched, options: WhenReadyOptions): Promise<void> {
  const check = (): { done: boolean; err?: PeerlinkError } => {
    switch (c.state) {
      case 'ready':
        return { done: true };
      case 'failed':
        return { done: true, err: c.error ?? new PeerlinkError('ERR_INTERNAL', 'connection failed') };
      case 'cancelled':
        return { done: true, err: new PeerlinkError('ERR_CANCELLED', 'the connection was cancelled') };
      case 'waiting':
        if (options.waiting === 'reject') return { done: true, err: c.error ?? new PeerlinkError('ERR_CONNECTION_REFUSED', 'connection is waiting') };
        return { done: false };
      default:
        return { done: false };
    }
  };
  const now = check();
  if (now.done) return now.err ? Promise.reject(now.err) : Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const signal = options.signal;
    const onState = (): void => {
      const r = check();
      if (!r.done) return;
      cleanup();
      if (r.err) reject(r.err);
      else resolve();
    };
    const onAbort = (): void => {
      cleanup();
      const reason: unknown = signal?.reason;
      reject(reason instanceof PeerlinkError ? reason : new PeerlinkError('ERR_CANCELLED', 'stopped waiting for the connection', { cause: reason }));
    };
    const cleanup = (): void => {
      c.off('state', onState);
      signal?.removeEventListener('abort', onAbort);
    };
    if (signal?.aborted) return onAbort();
    c.on('state', onState);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
