/**
 * Listener: Network framework's NWListener. Accepts connections for Parameters on a port
 * (0 = any), optionally advertises a Bonjour service, and hands out ready Connections. A
 * client whose handshake fails (wrong PSK, untrusted certificate) never becomes a
 * `connection`: it is reported through `rejected` instead.
 */
import { EventEmitter } from 'node:events';
import { PeerlinkError } from '../errors.js';
import type { Connection } from './connection.js';
import type { Parameters } from './parameters.js';
import type { ListenerState } from './state.js';

export interface ListenerServiceOptions {
  /** Instance name; may be renamed on conflict (see `serviceRegistration`). */
  name: string;
  /** Service type, e.g. `_example._tcp`. */
  type: string;
  domain?: string;
  txt?: Record<string, string | Uint8Array | true>;
  /** Interfaces to advertise on (names). Default: the dnssd default. */
  interfaces?: string[];
}

export interface ListenerOptions {
  /** Port to listen on; 0 (default) picks one. */
  port?: number;
  /** Address to bind. Default: `requiredLocalEndpoint`'s host, else all addresses (`::`, dual stack). */
  host?: string;
  service?: ListenerServiceOptions;
  /** Most connections accepted; further ones are refused. Default unlimited. */
  newConnectionLimit?: number;
}

export interface ServiceRegistration {
  name: string;
  type: string;
  domain: string;
  /** 'registered' once announced; 'removed' after cancel. */
  change: 'registered' | 'removed';
}

export interface ListenerEvents {
  state: [state: ListenerState, error: PeerlinkError | undefined];
  connection: [connection: Connection];
  /** A client that did not become a connection (handshake failed, limit reached). */
  rejected: [error: PeerlinkError, remote: string];
  serviceRegistration: [registration: ServiceRegistration];
}

export class Listener extends EventEmitter<ListenerEvents> {
  readonly parameters: Parameters;
  readonly options: ListenerOptions;

  constructor(parameters: Parameters, options: ListenerOptions = {}) {
    super();
    this.parameters = parameters;
    this.options = options;
  }

  get state(): ListenerState {
    return 'setup';
  }

  /** The port bound (valid once ready). */
  get port(): number {
    return 0;
  }

  /** Starts listening; resolves when ready (rejects on failed). */
  start(): Promise<void> {
    return Promise.reject(new PeerlinkError('ERR_INTERNAL', 'not implemented yet'));
  }

  /** Async iterator over accepted connections, until the listener is cancelled. */
  connections(): AsyncIterableIterator<Connection> {
    throw new PeerlinkError('ERR_INTERNAL', 'not implemented yet');
  }

  /** Stops accepting and withdraws the service (goodbye). Existing connections are not touched. */
  async cancel(): Promise<void> {}
}
