/**
 * The types a Connection's users and its Listener see: its events, send() and whenReady()
 * options, and the internal hand-over of an accepted channel.
 */
import type { PeerlinkError } from '../errors.js';
import type { Established } from './establish.js';
import type { ConnectionPath } from './path.js';
import type { ConnectionState } from './state.js';

export interface ConnectionEvents {
  /** Every state change; `error` is set for waiting and failed. */
  state: [state: ConnectionState, error: PeerlinkError | undefined];
  /** The path under the connection went away (false) or came back (true). */
  viability: [viable: boolean];
  /**
   * The connection's path: once at ready, then whenever its interface goes away or comes back
   * (`status` 'unsatisfied' / 'satisfied', with `viability`) or its MTU changes.
   */
  path: [path: ConnectionPath];
}

export interface SendOptions {
  /**
   * Last send: byte streams half-close (FIN / TLS close_notify) after the data; framed
   * connections half-close after the message; WebSocket starts the closing handshake.
   */
  final?: boolean;
  /**
   * Message protocols, with one Buffer: its first `headroom` bytes are not part of the
   * message but scratch space the transport may overwrite with its frame header, so the
   * frame goes out as one write without copying the message (skb-style headroom). Reserve
   * `messageHeadroom` bytes to benefit; with less, or on transports without a header to
   * write there (WebSocket, UDP, custom framers), the message is simply the rest of the buffer.
   */
  headroom?: number;
}

export interface WhenReadyOptions {
  signal?: AbortSignal;
  /** 'reject' rejects on the first `waiting` (with its error); 'retry' (default) keeps waiting. */
  waiting?: 'reject' | 'retry';
}

/** What a send accepts: bytes, a string (UTF-8), or several chunks that form ONE message. */
export type SendData = Uint8Array | string | readonly Uint8Array[];

/** Internal: lets a Listener hand an accepted channel to a Connection. */
export const adoptChannel = Symbol('adoptChannel');

export interface AdoptInfo {
  established: Established;
  /** Handshake timing on the server side. */
  handshake?: number;
}
