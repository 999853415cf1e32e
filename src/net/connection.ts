/**
 * Connection: Network framework's NWConnection for Node.
 *
 * States: setup → preparing → ready; waiting(error) (retried with back-off, or at once on
 * restart()); failed(error); cancelled. A send() promise resolves when the transport has
 * accepted the data — that is the flow control; receive()/receiveMessage()/messages() pull.
 */
import { EventEmitter } from 'node:events';
import type { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { PeerlinkError } from '../errors.js';
import type { Endpoint } from './endpoint.js';
import type { Parameters } from './parameters.js';
import type { ConnectionState } from './state.js';
import type { ConnectionPath } from './path.js';
import type { ConnectionCounters, ConnectionReport } from './report.js';

export interface ConnectionEvents {
  /** Every state change; `error` is set for waiting and failed. */
  state: [state: ConnectionState, error: PeerlinkError | undefined];
  /** The path under the connection went away (false) or came back (true). */
  viability: [viable: boolean];
  /** The connection's path changed (e.g. became known at ready). */
  path: [path: ConnectionPath];
}

export interface SendOptions {
  /**
   * Last send: byte streams half-close (FIN / TLS close_notify) after the data; framed
   * connections half-close after the message; WebSocket starts the closing handshake.
   */
  final?: boolean;
}

export interface WhenReadyOptions {
  signal?: AbortSignal;
  /** 'reject' rejects on the first `waiting` (with its error); 'retry' (default) keeps waiting. */
  waiting?: 'reject' | 'retry';
}

export class Connection extends EventEmitter<ConnectionEvents> {
  readonly endpoint: Endpoint;
  readonly parameters: Parameters;

  constructor(endpoint: Endpoint, parameters: Parameters) {
    super();
    this.endpoint = endpoint;
    this.parameters = parameters;
  }

  /** Creates, starts and waits for a connection to become ready. */
  static async connect(endpoint: Endpoint, parameters: Parameters, options: WhenReadyOptions = {}): Promise<Connection> {
    const c = new Connection(endpoint, parameters);
    c.start();
    try {
      await c.whenReady(options);
    } catch (err) {
      c.forceCancel();
      throw err;
    }
    return c;
  }

  get state(): ConnectionState {
    return 'setup';
  }

  /** The error behind `waiting` or `failed`. */
  get error(): PeerlinkError | undefined {
    return undefined;
  }

  /** 'client' for connections we dialled, 'server' for those a Listener accepted. */
  get role(): 'client' | 'server' {
    return 'client';
  }

  get isViable(): boolean {
    return true;
  }

  get currentPath(): ConnectionPath | undefined {
    return undefined;
  }

  /** Largest datagram send() accepts on a UDP connection (path MTU − IP/UDP headers − overhead). */
  get maximumDatagramSize(): number {
    return 0;
  }

  /** The TLS socket of a TLS connection (ws over TLS included), once ready. */
  get tlsSocket(): TLSSocket | undefined {
    return undefined;
  }

  /** The peer's certificate chain, leaf first (PKI). */
  get peerCertificates(): X509Certificate[] {
    return [];
  }

  /** RFC 5705 keying material from the TLS session (both ends get the same bytes). */
  exportKeyingMaterial(length: number, label: string, context?: Buffer): Buffer {
    const s = this.tlsSocket;
    if (!s) throw new PeerlinkError('ERR_INVALID_STATE', 'exportKeyingMaterial needs a ready TLS connection');
    // RFC 5705 distinguishes "no context" from an empty one, so pass it only when given.
    return context === undefined ? s.exportKeyingMaterial(length, label, undefined as unknown as Buffer) : s.exportKeyingMaterial(length, label, context);
  }

  get counters(): Readonly<ConnectionCounters> {
    throw new PeerlinkError('ERR_INTERNAL', 'not implemented yet');
  }

  /** Starts connecting (setup → preparing). Idempotent; accepted connections are already started. */
  start(): this {
    return this;
  }

  /** Resolves when ready; rejects with the error on failed / cancelled (and waiting, if asked). */
  whenReady(_options: WhenReadyOptions = {}): Promise<void> {
    return Promise.reject(new PeerlinkError('ERR_INTERNAL', 'not implemented yet'));
  }

  /** In `waiting`: retry now instead of after the back-off. */
  restart(): void {}

  /** Graceful close: pending sends are flushed, then FIN / close_notify / WebSocket close. */
  cancel(): void {}

  /** Immediate close: pending data is dropped, the socket destroyed. */
  forceCancel(): void {}

  /**
   * Sends bytes (byte stream) or one message (framer, ws, udp). Resolves when the transport
   * has accepted the data; rejects if the connection fails first.
   */
  send(_data: Uint8Array | string, _options: SendOptions = {}): Promise<void> {
    return Promise.reject(new PeerlinkError('ERR_INTERNAL', 'not implemented yet'));
  }

  /**
   * Byte streams: resolves with between `minimumIncompleteLength` and `maximumLength` bytes,
   * fewer only at the end of the stream; null when the peer has finished and nothing is left.
   */
  receive(_minimumIncompleteLength = 1, _maximumLength = 65536): Promise<Buffer | null> {
    return Promise.reject(new PeerlinkError('ERR_INTERNAL', 'not implemented yet'));
  }

  /** Message protocols: the next message, or null when the peer has finished. */
  receiveMessage(): Promise<Buffer | null> {
    return Promise.reject(new PeerlinkError('ERR_INTERNAL', 'not implemented yet'));
  }

  /** Message protocols: every message until the peer finishes; throws if the connection fails. */
  async *messages(): AsyncGenerator<Buffer, void, undefined> {
    for (;;) {
      const m = await this.receiveMessage();
      if (m === null) return;
      yield m;
    }
  }

  /**
   * Byte streams (tcp / tls without framer): a Node Duplex over the connection with the
   * socket's own backpressure both ways. After this, use the Duplex instead of
   * send()/receive(); the connection's state, cancel() and report() keep working.
   */
  stream(): Duplex {
    throw new PeerlinkError('ERR_INTERNAL', 'not implemented yet');
  }

  report(): ConnectionReport {
    throw new PeerlinkError('ERR_INTERNAL', 'not implemented yet');
  }
}
