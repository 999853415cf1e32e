/**
 * A dialled Connection's way to `ready`: one establish() attempt at a time under the
 * connection timeout, and in `waiting` the retry after a back-off that doubles up to
 * `retry.maxDelay` (reset at ready). The Connection keeps the state machine; this part only
 * asks it to move.
 */
import { PeerlinkError } from '../errors.js';
import { Endpoint } from './endpoint.js';
import { DEFAULT_CONNECTION_TIMEOUT, establish, type Established } from './establish.js';
import { HandshakeDeadline } from './handshake-deadline.js';
import { isRecoverable, toPeerlinkError } from './net-errors.js';
import type { Parameters } from './parameters.js';
import type { ConnectionState } from './state.js';

/** The Connection's side: its state, and what an attempt's outcome does to it. */
export interface AttemptHost {
  state(): ConnectionState;
  /** waiting → preparing, before a retry. */
  preparing(): void;
  /** Messages given to sendEarly(), not yet sent. */
  early(): Buffer[] | undefined;
  /** Counts a connection attempt (Happy Eyeballs racers included). */
  attempted(): void;
  established(e: Established): void;
  waiting(err: PeerlinkError): void;
  failed(err: PeerlinkError): void;
}

export class ConnectionAttempts {
  private attempt: AbortController | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly parameters: Parameters,
    private readonly host: AttemptHost,
  ) {
    this.retryDelay = parameters.retry.initialDelay;
  }

  async run(): Promise<void> {
    const ac = new AbortController();
    this.attempt = ac;
    const limit = this.parameters.tcp.connectionTimeout ?? DEFAULT_CONNECTION_TIMEOUT;
    // A handshake the server has answered (its first TLS flight arrived) gets connectionTimeout
    // once more: on a starved host (100 peers on two cores, event loops seconds late) half the
    // dials timed out at 10 s, and were made again from the start. A server that never sends a
    // byte (a tarpit) still fails at connectionTimeout (plus any time our own event loop stood
    // still: handshake-deadline.ts); one that sends a byte and stalls gets 2×.
    let answered: (() => boolean) | undefined;
    let extended = false;
    const deadline = new HandshakeDeadline(
      limit,
      () => {
        if (extended || !answered?.()) return 0;
        extended = true;
        return limit;
      },
      () => {
        // where it stood, for the reader: no TCP connection, a server that sent nothing, or one that answered
        const stood = answered === undefined ? 'no TCP connection' : extended ? 'the server answered, the handshake did not finish' : 'TCP connected, nothing from the server';
        ac.abort(new PeerlinkError('ERR_CONNECTION_TIMEOUT', `no connection to ${Endpoint.format(this.endpoint)} within ${deadline.elapsed} ms (${stood})`));
      },
    );
    try {
      const early = this.host.early();
      const e = await establish(this.endpoint, this.parameters, {
        signal: ac.signal,
        onAttempt: () => this.host.attempted(),
        onConnected: (test) => {
          answered = test;
        },
        ...(early ? { early } : {}),
      });
      if (this.attempt !== ac || this.host.state() !== 'preparing') {
        e.channel.destroy();
        return;
      }
      this.host.established(e);
    } catch (err) {
      if (this.attempt !== ac || this.host.state() !== 'preparing') return;
      const pe = toPeerlinkError(err, { what: `connecting to ${Endpoint.format(this.endpoint)}` });
      if (isRecoverable(pe)) {
        this.host.waiting(pe);
        this.scheduleRetry();
      } else {
        this.host.failed(pe);
      }
    } finally {
      deadline.cancel();
      if (this.attempt === ac) this.attempt = undefined;
    }
  }

  /** At ready: the next `waiting` starts the back-off over. */
  resetDelay(): void {
    this.retryDelay = this.parameters.retry.initialDelay;
  }

  /** restart(): the retry happens now, not when the back-off ends. */
  cancelRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Cancelled: no retry, and the attempt under way is aborted. */
  stop(): void {
    this.cancelRetry();
    if (this.attempt) this.attempt.abort(new PeerlinkError('ERR_CANCELLED', 'the connection was cancelled'));
    this.attempt = undefined;
  }

  private scheduleRetry(): void {
    if (!this.parameters.retry.automatic) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.parameters.retry.maxDelay);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.host.state() === 'waiting') {
        this.host.preparing();
        void this.run();
      }
    }, delay);
  }
}
