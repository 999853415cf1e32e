/**
 * The session's presence on the network: its listener (incoming connections, handed to the
 * peer table) and its Bonjour discovery (our advertisement under its final name, and the
 * browse results, handed to the dialer). PeerSession starts it in start() and stops it in
 * close().
 */
import type { EventEmitter } from 'node:events';
import { Listener, type Connection, type Parameters } from '../net/index.js';
import { PeerlinkError, isPeerlinkError } from '../errors.js';
import { Discovery, type FoundService } from './discovery.js';
import { buildTxt } from './discovery-info.js';
import type { ResolvedSessionOptions } from './options.js';
import { emitApp, type PeerErrorInfo, type PeerSessionEvents } from './events.js';

export interface SessionNetworkHost {
  readonly options: ResolvedSessionOptions;
  readonly parameters: Parameters;
  /** The session: `advertised`, `wideAreaError` and `advertisedWideArea` are emitted on it. */
  readonly events: EventEmitter<PeerSessionEvents>;
  /** The listener's admit, at TCP accept (peer-table.ts). */
  admit(address: string): (() => void) | undefined;
  /** A connection the listener accepted (peer-table.ts). */
  incoming(conn: Connection): void;
  /** Our advertisement's name, first or after a conflict rename (the dialer's to know). */
  registered(name: string): void;
  found(service: FoundService): void;
  lost(service: FoundService): void;
  /** True once start() resolved. */
  running(): boolean;
  reportError(err: PeerlinkError, info: PeerErrorInfo): void;
}

export class SessionNetwork {
  readonly #host: SessionNetworkHost;
  #listener: Listener | undefined;
  #discovery: Discovery | undefined;
  #registeredName: string | undefined;

  constructor(host: SessionNetworkHost) {
    this.#host = host;
  }

  /** The listener's port (0 when not listening or not started). */
  get listenPort(): number {
    return this.#listener?.port ?? 0;
  }

  /** The instance name we are advertised under (after any conflict rename). */
  get registeredName(): string | undefined {
    return this.#registeredName;
  }

  /** Listens, advertises and browses (each as the options say). */
  async start(): Promise<void> {
    const o = this.#host.options;
    const events = this.#host.events;
    if (o.listen) {
      // A new connection's first message is HELLO (< 1 KiB) or STREAM_BIND (34 bytes): it may
      // not send more until it has identified itself (peer-table.ts raises the limit then).
      const listener = new Listener(this.#host.parameters, {
        port: o.port,
        initialMaxMessageSize: o.budgets.firstFrameBytes,
        // unidentified budgets from TCP accept on, so TLS / WebSocket handshakes count too
        admit: (address) => this.#host.admit(address),
      });
      this.#listener = listener;
      listener.on('connection', (c) => this.#host.incoming(c));
      listener.on('rejected', (err, remote) => this.#host.reportError(err, { endpoint: remote }));
      await listener.start();
    }
    if (o.advertise || o.browse) {
      const discovery = new Discovery({ type: o.bonjourType, interfaces: o.interfaces, mdns: o.mdns, wideArea: o.wideArea, ...(o.hostName !== undefined ? { host: o.hostName } : {}) });
      this.#discovery = discovery;
      discovery.on('registered', (name) => {
        if (name === this.#registeredName) return;
        this.#registeredName = name;
        this.#host.registered(name);
        // Before start() resolves this waits for 'ready' (the documented order); after, at once.
        if (this.#host.running()) emitApp(events, 'advertised', name);
      });
      discovery.on('found', (f) => this.#host.found(f));
      discovery.on('lost', (f) => this.#host.lost(f));
      discovery.on('unicastError', (err) => emitApp(events, 'wideAreaError', isPeerlinkError(err) ? err : new PeerlinkError('ERR_DNS_SERVER_FAILURE', err.message, { cause: err })));
      discovery.on('registeredUnicast', (info) => emitApp(events, 'advertisedWideArea', info));
      if (o.advertise) discovery.advertise(o.instanceName, this.listenPort, buildTxt(o));
      if (o.browse) discovery.browse();
      // wide area: a refused registration fails start() (never a silent mDNS-only session)
      if (o.advertise) await discovery.advertiseUnicast(o.instanceName, this.listenPort, buildTxt(o));
      if (o.browse) discovery.browseUnicast();
    }
  }

  /** Asks discovery to check that a peer's advertisement is still there (RFC 6762 §10.4). */
  reconfirm(instanceName: string): void {
    this.#discovery?.reconfirm(instanceName);
  }

  /** An incoming connection became a peer's connection or a bound stream: no longer unidentified. */
  identified(conn: Connection): void {
    this.#listener?.identified(conn);
  }

  /** Withdraws our service, stops browsing and listening: their promises (undefined: never started). */
  close(): Array<Promise<void> | undefined> {
    return [this.#discovery?.close(), this.#listener?.cancel()];
  }
}
