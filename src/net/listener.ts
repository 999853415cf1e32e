/**
 * Listener: Network framework's NWListener. Accepts connections for Parameters on a port
 * (0 = any), optionally advertises a Bonjour service, and hands out ready Connections. A
 * client whose handshake fails (wrong PSK, untrusted certificate) never becomes a
 * `connection`: it is reported through `rejected` instead.
 *
 * Every TCP stack starts from one net.Server; TLS and HTTP/WebSocket servers are never
 * listening themselves, we feed them accepted sockets ('connection' events), so interface
 * checks, limits and socket options apply the same way to every stack.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { WebSocketServer, WebSocket } from 'ws';
import { loadWs } from './ws-module.js';
import { PeerlinkError } from '../errors.js';
import type { Channel } from './channel.js';
import { Connection } from './connection.js';
import { adoptChannel } from './connection-types.js';
import { Endpoint } from './endpoint.js';
import { applyTcpOptions, DEFAULT_CONNECTION_TIMEOUT, type Established } from './establish.js';
import { FramedChannel } from './framed-channel.js';
import { planInterfaces } from './interface-policy.js';
import { toPeerlinkError, type TlsMode } from './net-errors.js';
import type { Parameters } from './parameters.js';
import { SocketChannel } from './socket-channel.js';
import { bindToDevice } from './sockopt.js';
import { resetByPeer } from './tcp-info.js';
import type { ListenerState } from './state.js';
import { serverTlsOptions, verifyPkiPeer } from './tls-config.js';
import { tlsModule } from './tls-module.js';
import { parsePsk } from './psk.js';
import { UdpFlowTable } from './udp-flows.js';
import { WsChannel } from './ws-channel.js';
import { advertiseService, type Advertisement } from './service-advertise.js';
import { listenerRejectChannel, listenerStateChannel, log } from './diagnostics.js';
import { HandshakeDeadline } from './handshake-deadline.js';
import type { Mdns, WideAreaOptions } from '../dnssd/index.js';

export interface ListenerServiceOptions {
  /** Instance name; may be renamed on conflict (see `serviceRegistration`). */
  name: string;
  /** Service type, e.g. `_example._tcp`. */
  type: string;
  domain?: string;
  txt?: Record<string, string | Uint8Array | true>;
  /** Interfaces to advertise on (names). Default: the dnssd default (up, multicast, non-loopback). */
  interfaces?: string[];
  /** An existing Bonjour engine to advertise with (shared sockets); `interfaces` is then ignored. */
  mdns?: Mdns;
  /**
   * Also register in these unicast DNS domains with TSIG-signed updates (docs/wide-area.md).
   * Each domain reports its own `serviceRegistration` (domain set; `failed` with
   * ERR_DNS_UPDATE_REFUSED when the server says no); mDNS goes on regardless.
   */
  wideArea?: WideAreaOptions;
}

export interface ListenerOptions {
  /** Port to listen on; 0 (default) picks one. */
  port?: number;
  /** Address to bind. Default: `requiredLocalEndpoint`'s host, else all addresses (`::`, dual stack). */
  host?: string;
  service?: ListenerServiceOptions;
  /** Most connections accepted; further ones are refused. Default unlimited. */
  newConnectionLimit?: number;
  /**
   * Largest message a new connection may send until its owner raises the limit with
   * `connection.setMaxMessageSize()` (framer and ws): a larger one fails the connection
   * (ERR_MESSAGE_TOO_LARGE) before it is buffered. Default: the Parameters' maxMessageSize.
   * For protocols whose first message is small (a HELLO), so that a stranger cannot make us
   * hold a frame of maxMessageSize per connection.
   */
  initialMaxMessageSize?: number;
  /**
   * Admission of each raw TCP connection, before TLS or the WebSocket upgrade: called with the
   * remote address; returns a release function, or undefined to refuse the connection at once
   * (RST, not reported as `rejected`: the caller counts its own refusals). The listener calls
   * the release when the connection closes, or when its owner calls `identified(connection)`.
   * For budgets on connections that have not said who they are (a session's "before HELLO").
   */
  admit?: (remoteAddress: string) => (() => void) | undefined;
}

export interface ServiceRegistration {
  name: string;
  type: string;
  domain: string;
  /** 'registered' once announced (again after a conflict rename); 'removed' after cancel; 'failed' if it could not be advertised. */
  change: 'registered' | 'removed' | 'failed';
  error?: PeerlinkError;
}

export interface ListenerEvents {
  state: [state: ListenerState, error: PeerlinkError | undefined];
  connection: [connection: Connection];
  /** A client that did not become a connection (handshake failed, limit reached). */
  rejected: [error: PeerlinkError, remote: string];
  serviceRegistration: [registration: ServiceRegistration];
}

/** A fatal protocol_version alert in a TLS 1.2 record: what a plaintext client is told. */
const PROTOCOL_VERSION_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]);

/** OpenSSL's view of a first flight that is no TLS record at all. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_HTTPS_PROXY_REQUEST', 'ERR_SSL_UNKNOWN_PROTOCOL', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

/**
 * A clearer reason than OpenSSL's for a handshake that a client ended or never began: a
 * plaintext client (ERR_TLS_REQUIRED), or — with certificates — one that closed after seeing
 * ours, which is what a client that does not trust it does. With a PSK, a client that resets
 * or closes mid-handshake says nothing about the key: a wrong key is found here, by OpenSSL
 * (the TLS 1.3 binder, or the TLS 1.2 client Finished, fails to verify) before the client can
 * judge ours — so such an end is a client that gave up (its dial timed out) or went away.
 */
function handshakeRefusal(err: Error & { code?: string }, raw: Socket | undefined, mode: TlsMode): PeerlinkError | undefined {
  const want = mode === 'psk' ? 'TLS-PSK (a key)' : 'TLS';
  if (err.code !== undefined && NOT_TLS.has(err.code)) return new PeerlinkError('ERR_TLS_REQUIRED', `the client does not speak TLS (a plain TCP or WebSocket client?); this listener requires ${want}`, { cause: err });
  if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') return undefined;
  if ((raw?.bytesRead ?? 1) === 0) return new PeerlinkError('ERR_TLS_REQUIRED', `the client closed the connection without starting a TLS handshake (a plain client?); this listener requires ${want}`, { cause: err });
  if (mode === 'pki')
    return new PeerlinkError('ERR_CERT_UNTRUSTED', "the client ended the TLS handshake after receiving this listener's certificate: most likely it does not trust it (give the client --pin with this listener's pin, or --ca)", { cause: err });
  if (mode === 'psk') return new PeerlinkError('ERR_CONNECTION_RESET', 'the client ended the connection during the TLS-PSK handshake (it gave up or went away; a wrong key would have failed the handshake here)', { cause: err });
  return undefined;
}

function remoteText(s: Socket): string {
  const a = s.remoteAddress ?? '?';
  return a.includes(':') ? `[${a}]:${s.remotePort ?? '?'}` : `${a}:${s.remotePort ?? '?'}`;
}

export class Listener extends EventEmitter<ListenerEvents> {
  readonly parameters: Parameters;
  readonly options: ListenerOptions;
  private _state: ListenerState = 'setup';
  private _error: PeerlinkError | undefined;
  private _port = 0;
  private _host = '';
  private server: NetServer | undefined;
  private tlsServer: TlsServer | undefined;
  private httpServer: HttpServer | undefined;
  private wss: WebSocketServer | undefined;
  private udp: UdpFlowTable | undefined;
  private advertisement: Advertisement | undefined;
  private accepted = 0;
  private readonly rejectedIdentity = new WeakSet<TLSSocket>();
  /** Raw sockets closed for sending nothing within connectionTimeout (onTcp): tlsClientError reports them as that timeout. */
  private readonly silentTimedOut = new WeakSet<Socket>();
  private readonly remoteOfRaw = new WeakMap<Socket, string>();
  private readonly handshakeStart = new WeakMap<Duplex, number>();
  /** Releases from `options.admit`, by raw socket until handed out, then by Connection. */
  private readonly admittedRaw = new WeakMap<Socket, () => void>();
  private readonly admitted = new WeakMap<Connection, () => void>();
  private readonly pending: Connection[] = [];
  private readonly waiters: Array<(c: Connection | null) => void> = [];
  private iterating = false;

  constructor(parameters: Parameters, options: ListenerOptions = {}) {
    super();
    this.parameters = parameters;
    this.options = options;
  }

  get state(): ListenerState {
    return this._state;
  }

  get error(): PeerlinkError | undefined {
    return this._error;
  }

  /** The port bound (valid once ready). */
  get port(): number {
    return this._port;
  }

  /** The address bound (valid once ready). */
  get host(): string {
    return this._host;
  }

  /** Starts listening; resolves when ready (rejects on failed). */
  async start(): Promise<void> {
    if (this._state !== 'setup') throw new PeerlinkError('ERR_INVALID_STATE', `listener already started (state ${this._state})`);
    const p = this.parameters;
    const port = this.options.port ?? p.requiredLocalEndpoint?.port ?? 0;
    const host = this.options.host ?? p.requiredLocalEndpoint?.host;
    try {
      // Fails early (ERR_NO_USABLE_INTERFACE) when no interface satisfies the constraints.
      planInterfaces(p.constraints);
      if (p.transport === 'udp') await this.startUdp(port, host);
      else await this.startTcp(port, host);
      if (p.requiredInterface !== undefined) {
        const sock = this.udp?.socket ?? (this.server as unknown as Socket | undefined);
        if (sock) bindToDevice(sock, p.requiredInterface);
      }
    } catch (err) {
      const pe = toPeerlinkError(err, { what: 'listener' });
      this.setState('failed', pe);
      throw pe;
    }
    this.setState('ready', undefined);
    if (this.options.service) {
      try {
        this.advertisement = await advertiseService(this.options.service, this._port, (reg) => this.emit('serviceRegistration', reg));
      } catch (err) {
        // The listener works without Bonjour; the failure is reported, not thrown.
        const svc = this.options.service;
        this.emit('serviceRegistration', { name: svc.name, type: svc.type, domain: svc.domain ?? 'local.', change: 'failed', error: toPeerlinkError(err, { what: 'advertising the service' }) });
      }
    }
  }

  /** Async iterator over accepted connections, until the listener is cancelled. */
  connections(): AsyncIterableIterator<Connection> {
    const it: AsyncIterableIterator<Connection> = {
      next: () => {
        const c = this.pending.shift();
        if (c) return Promise.resolve({ done: false, value: c });
        if (this._state === 'cancelled' || this._state === 'failed') return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => this.waiters.push((x) => resolve(x ? { done: false, value: x } : { done: true, value: undefined })));
      },
      return: () => Promise.resolve({ done: true, value: undefined }),
      [Symbol.asyncIterator]: () => it,
    };
    // Only queue connections for iteration once someone iterates.
    this.iterating = true;
    return it;
  }

  /** Replaces the advertised service's TXT record (Network framework: setting `service` again). */
  updateServiceTxt(txt: Record<string, string | Uint8Array | true>): void {
    if (!this.advertisement) throw new PeerlinkError('ERR_INVALID_STATE', 'this listener advertises no service (yet)');
    this.advertisement.updateTxt(txt);
  }

  /**
   * Stops accepting and withdraws the service (goodbye). Accepted connections stay open: TCP
   * ones are independent sockets, and UDP flows keep the listener's socket until the last of
   * them is closed (datagrams from new remotes are then ignored).
   */
  async cancel(): Promise<void> {
    if (this._state === 'cancelled') return;
    this.setState('cancelled', undefined);
    for (const w of this.waiters.splice(0)) w(null);
    this.udp?.stopAccepting();
    // Stops accepting; accepted TCP connections are not touched (server.close() would wait for them).
    this.server?.close();
    this.wss?.close();
    const ad = this.advertisement;
    this.advertisement = undefined;
    if (ad) {
      try {
        await ad.stop();
        this.emit('serviceRegistration', { ...ad.registration, change: 'removed' });
      } catch {
        // goodbye packets are best-effort
      }
    }
  }

  private setState(s: ListenerState, err: PeerlinkError | undefined): void {
    this._state = s;
    this._error = err;
    if (listenerStateChannel.hasSubscribers) listenerStateChannel.publish({ port: this._port, state: s, ...(err ? { error: { code: err.code, message: err.message } } : {}) });
    log('[L:%d] %s%s', this._port, s, err ? ` (${err.code}: ${err.message})` : '');
    this.emit('state', s, err);
  }

  /**
   * The owner of an accepted connection says it has identified itself (see `admit`): it no
   * longer counts against the admission budget. Idempotent; a no-op for other connections.
   */
  identified(c: Connection): void {
    const release = this.admitted.get(c);
    if (!release) return;
    this.admitted.delete(c);
    release();
  }

  private deliver(c: Connection): void {
    this.accepted++;
    const w = this.waiters.shift();
    if (w) w(c);
    else if (this.iterating) this.pending.push(c);
    this.emit('connection', c);
  }

  private reject(err: PeerlinkError, remote: string): void {
    if (listenerRejectChannel.hasSubscribers) listenerRejectChannel.publish({ port: this._port, remote, error: { code: err.code, message: err.message } });
    log('[L:%d] refused %s: %s (%s)', this._port, remote, err.message, err.code);
    this.emit('rejected', err, remote);
  }

  private atLimit(): boolean {
    const limit = this.options.newConnectionLimit;
    return limit !== undefined && this.accepted >= limit;
  }

  private async startUdp(port: number, host: string | undefined): Promise<void> {
    const settings = this.parameters.udp;
    if (!settings) throw new PeerlinkError('ERR_INTERNAL', 'udp parameters missing');
    const bindHost = host ?? '::';
    const family = bindHost.includes(':') ? 6 : 4;
    const table = new UdpFlowTable(family, settings, {
      flow: (ch, first) => {
        if (this.atLimit()) {
          ch.closeFlow(undefined);
          return;
        }
        const c = new Connection(Endpoint.hostPort(ch.remote.address, ch.remote.port), this.parameters);
        c[adoptChannel]({ established: { channel: ch, pinnedTo: this.parameters.requiredInterface, timings: {}, remote: { kind: 'hostPort', host: ch.remote.address, port: ch.remote.port } } });
        ch.deliver(first);
        this.deliver(c);
      },
      dropped: (remote) => this.reject(new PeerlinkError('ERR_CONNECTION_REFUSED', `UDP flow limit (${settings.flowLimit}) reached; datagram from ${remote} dropped`), remote),
    });
    this.udp = table;
    const a = await table.bind(port, bindHost);
    this._port = a.port;
    this._host = a.address;
  }

  /** The never-listening tls.Server this listener's TCP sockets are handed to. */
  private createTlsServer(timeout: number): TlsServer {
    const tlsOpts = this.parameters.tls;
    if (!tlsOpts) throw new PeerlinkError('ERR_INTERNAL', 'no TLS settings');
    const mode: TlsMode = tlsOpts.psk ? 'psk' : 'pki';
    // Twice connectionTimeout: a client gives a handshake we answered that much (connection-attempts.ts)
    const t = tlsModule().createServer({ ...serverTlsOptions(tlsOpts, 2 * timeout, this.rejectedIdentity), allowHalfOpen: true });
    t.on('secureConnection', (s: TLSSocket) => void this.onSecure(s, mode));
    t.on('tlsClientError', (err: Error, s: TLSSocket) => {
      const raw = (s as unknown as { _parent?: Socket })._parent;
      const notTls = handshakeRefusal(err, raw, mode);
      const pe = raw && this.silentTimedOut.has(raw)
        ? new PeerlinkError('ERR_CONNECTION_TIMEOUT', 'no TLS ClientHello within connectionTimeout')
        : this.rejectedIdentity.has(s)
          ? new PeerlinkError('ERR_PSK_IDENTITY_REJECTED', 'the client sent a PSK identity this listener does not accept')
          : (notTls ?? toPeerlinkError(err, { tls: mode, during: 'handshake' }));
      this.reject(pe, raw ? (this.remoteOfRaw.get(raw) ?? remoteText(s)) : remoteText(s));
      if (pe.code === 'ERR_TLS_REQUIRED' && raw && !raw.destroyed) {
        // A plaintext client gets a TLS alert it can recognise (RFC 8446 §6.2, protocol_version)
        // instead of a bare close that reads like a clean, empty reply.
        raw.end(PROTOCOL_VERSION_ALERT);
        setTimeout(() => raw.destroy(), 1000).unref();
      } else s.destroy();
    });
    return t;
  }

  private async startTcp(port: number, host: string | undefined): Promise<void> {
    const p = this.parameters;
    const timeout = p.tcp.connectionTimeout ?? DEFAULT_CONNECTION_TIMEOUT;
    // PSK: the TLS server (node:tls, OpenSSL's set-up, a secure context: 5–6.5 MiB on Node 24/26)
    // is made for the first connection, not before (docs/memory.md); a bad key still fails
    // listen(). PKI: now, so that a bad certificate or key fails listen() as before.
    if (p.tls?.psk) parsePsk(p.tls.psk.key);
    else if (p.tls) this.tlsServer = this.createTlsServer(timeout);
    if (p.application === 'ws') await this.setUpWs(timeout);
    const server = createNetServer({ allowHalfOpen: true, pauseOnConnect: false });
    server.on('connection', (s) => this.onTcp(s, timeout));
    this.server = server;
    const bind = (h: string): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: h, ipv6Only: false }, () => {
          server.removeListener('error', reject);
          resolve();
        });
      });
    try {
      await bind(host ?? '::');
    } catch (err) {
      // Hosts without IPv6 cannot bind '::'; fall back to IPv4 everywhere.
      if (host !== undefined || (err as NodeJS.ErrnoException).code !== 'EAFNOSUPPORT') throw err;
      await bind('0.0.0.0');
    }
    server.on('error', () => {});
    const a = server.address();
    if (a && typeof a === 'object') {
      this._port = a.port;
      this._host = a.address;
    }
  }

  private onTcp(s: Socket, timeout: number): void {
    s.on('error', () => {});
    if (this._state !== 'ready' || this.atLimit()) {
      const remote = remoteText(s);
      // An RST, so the client learns at once that it was refused.
      s.resetAndDestroy();
      this.reject(new PeerlinkError('ERR_CONNECTION_REFUSED', `connection from ${remote} refused: ${this._state !== 'ready' ? 'listener not ready' : 'newConnectionLimit reached'}`), remote);
      return;
    }
    // A client that gave up while it waited in the accept queue (a starved host's queues held
    // 30+ connections whose dialers had timed out, and a TLS handshake for each of them — for
    // nobody — kept the live ones waiting past their own deadlines): no handshake. Our dialers
    // give up with an RST (establish.ts), which is already here; TCP_INFO costs one syscall.
    // (Not a FIN: a plain TCP client may half-close at once, having said all it has to say.)
    if (resetByPeer(s)) {
      const remote = remoteText(s);
      s.destroy();
      this.reject(new PeerlinkError('ERR_CONNECTION_RESET', `connection from ${remote} reset by the client before it was accepted`), remote);
      return;
    }
    try {
      planInterfaces(this.parameters.constraints).check(s.localAddress ?? '');
    } catch (err) {
      s.destroy();
      this.reject(toPeerlinkError(err), remoteText(s));
      return;
    }
    if (this.options.admit) {
      const release = this.options.admit(s.remoteAddress ?? '');
      if (release === undefined) {
        s.resetAndDestroy();
        return;
      }
      this.admittedRaw.set(s, release);
      s.once('close', release);
    }
    applyTcpOptions(s, this.parameters);
    this.handshakeStart.set(s, performance.now());
    if (this.parameters.tls) {
      try {
        this.tlsServer ??= this.createTlsServer(timeout);
      } catch (err) {
        // The settings do not change: every later socket would fail the same way (and pay for
        // another attempt). The listener fails once, with the cause, and stops accepting.
        s.destroy();
        this.failLazily(err);
        return;
      }
      // The TLSSocket copies allowHalfOpen from this socket. During the handshake a client's
      // EOF must end the attempt at once (tlsClientError) rather than wait out the handshake
      // timeout with nothing said; half-close is turned back on once secure (onSecure).
      s.allowHalfOpen = false;
      // A client that ends the handshake leaves a closed socket that no longer knows its peer.
      this.remoteOfRaw.set(s, remoteText(s));
      // The TLS server gives a handshake twice `timeout` (a client whose handshake we answered
      // waits that long: connection-attempts.ts); one that has not sent a byte by `timeout` is
      // a stalled slot, closed as before.
      // (read after a poll phase, and not counting time this process stood still: handshake-deadline.ts)
      const silent = new HandshakeDeadline(
        timeout,
        () => 0,
        () => {
          if (s.bytesRead > 0 || s.destroyed) return;
          // reported once, by tlsClientError, as this timeout
          this.silentTimedOut.add(s);
          s.destroy();
        },
        true,
      );
      s.once('close', () => silent.cancel());
      this.tlsServer.emit('connection', s);
      return;
    }
    this.afterTransport(s, s, undefined, timeout);
  }

  /**
   * The lazily made TLS server (PSK: made for the first connection, see startTcp) could not be
   * made: a setting that listen() did not check. Reported once — the listener goes to `failed`
   * with ERR_INVALID_ARGUMENT — and the port is closed, so no further client waits on it.
   */
  private failLazily(err: unknown): void {
    if (this._state !== 'ready') return;
    const pe = err instanceof PeerlinkError && err.code === 'ERR_INVALID_ARGUMENT' ? err : new PeerlinkError('ERR_INVALID_ARGUMENT', `invalid TLS settings: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    this.server?.close();
    this.wss?.close();
    this.setState('failed', pe);
    for (const w of this.waiters.splice(0)) w(null);
  }

  private async onSecure(t: TLSSocket, mode: TlsMode): Promise<void> {
    t.allowHalfOpen = true;
    const raw = (t as unknown as { _parent?: Socket })._parent ?? t;
    const pki = this.parameters.tls?.pki;
    if (pki) {
      try {
        await verifyPkiPeer(t, pki, { remote: Endpoint.hostPort(t.remoteAddress ?? '::', t.remotePort ?? 0), role: 'server' });
      } catch (err) {
        this.reject(toPeerlinkError(err, { tls: mode }), remoteText(t));
        t.destroy();
        return;
      }
    }
    this.afterTransport(t, raw, t, this.parameters.tcp.connectionTimeout ?? DEFAULT_CONNECTION_TIMEOUT);
  }

  /** TCP (and TLS) is up: run the application protocol, then hand out the connection. */
  private afterTransport(io: Socket, tcp: Socket, t: TLSSocket | undefined, timeout: number): void {
    const p = this.parameters;
    const mode: TlsMode = p.tls ? (p.tls.psk ? 'psk' : 'pki') : undefined;
    if (p.application === 'ws') {
      const timer = setTimeout(() => {
        this.reject(new PeerlinkError('ERR_CONNECTION_TIMEOUT', 'no WebSocket upgrade request in time'), remoteText(tcp));
        io.destroy();
      }, timeout);
      timer.unref();
      this.wsTransport.set(io, { tcp, tls: t, timer });
      this.httpServer?.emit('connection', io);
      return;
    }
    let channel: Channel;
    if (p.application === 'framer' && p.framer) channel = new FramedChannel(io, tcp, mode, p.framer, p.maxMessageSize, p.keepalive);
    else channel = new SocketChannel(io, tcp, mode);
    this.hand(channel, tcp);
  }

  private hand(channel: Channel, tcp: Socket): void {
    // Before any byte is decoded: the channel's first data event comes after this tick.
    const initial = this.options.initialMaxMessageSize;
    if (initial !== undefined) channel.setMaxMessageSize?.(initial);
    const started = this.handshakeStart.get(tcp);
    const remote = channel.remote ?? { address: tcp.remoteAddress ?? '::', port: tcp.remotePort ?? 0 };
    const established: Established = {
      channel,
      pinnedTo: this.parameters.requiredInterface,
      timings: started !== undefined && (this.parameters.tls || this.parameters.application === 'ws') ? { handshake: performance.now() - started } : {},
      remote: { kind: 'hostPort', host: remote.address, port: remote.port },
    };
    const c = new Connection(Endpoint.hostPort(remote.address, remote.port), this.parameters);
    const release = this.admittedRaw.get(tcp);
    if (release) this.admitted.set(c, release);
    c[adoptChannel]({ established });
    this.deliver(c);
  }

  private readonly wsTransport = new WeakMap<Duplex, { tcp: Socket; tls: TLSSocket | undefined; timer: NodeJS.Timeout }>();

  private async setUpWs(timeout: number): Promise<void> {
    // node:http and ws only for the WebSocket transport (~16 MiB of RSS otherwise)
    const [{ WebSocketServer }, { createServer: createHttpServer }] = await Promise.all([loadWs(), import('node:http')]);
    const p = this.parameters;
    const wantPath = p.ws?.path;
    const protocols = p.ws?.subprotocols ?? [];
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: p.maxMessageSize,
      // WsChannel answers pings itself, coalesced (replies we owe).
      autoPong: false,
      perMessageDeflate: false,
      clientTracking: false,
      skipUTF8Validation: true,
      ...(protocols.length ? { handleProtocols: (offered: Set<string>) => protocols.find((x) => offered.has(x)) ?? false } : {}),
    });
    const http = createHttpServer({ requestTimeout: timeout, headersTimeout: timeout });
    http.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'close' });
      res.end('this is a WebSocket endpoint\n');
    });
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const info = this.wsTransport.get(socket);
      const path = (req.url ?? '/').split('?')[0];
      if (!info || (wantPath !== undefined && path !== wantPath)) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        if (info) this.reject(new PeerlinkError('ERR_PROTOCOL', `WebSocket request for ${path ?? '?'} refused (this listener serves ${wantPath ?? 'any path'})`), remoteText(info.tcp));
        return;
      }
      this.wss?.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        clearTimeout(info.timer);
        const mode: TlsMode = p.tls ? (p.tls.psk ? 'psk' : 'pki') : undefined;
        this.hand(new WsChannel(ws, info.tcp, info.tls, mode, p.keepalive), info.tcp);
      });
    });
    http.on('clientError', (_err, socket: Duplex) => socket.destroy());
    // Bad upgrade requests are answered by ws itself; nothing here may throw out of an event.
    this.wss.on('error', () => undefined);
    this.httpServer = http;
  }
}
