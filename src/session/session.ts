/**
 * PeerSession: Multipeer Connectivity's MCSession (+ advertiser + browser), built on the
 * net/ primitives the way Apple's "Moving from Multipeer Connectivity to Network Framework"
 * describes: a listener advertised over Bonjour, a browser, one control connection per
 * peer pair (HELLO, de-duplication, keepalive), reliable messages over it, and a new
 * connection per stream. Wire protocol and rules: docs/session.md.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Endpoint, Listener, type Connection, type Parameters } from '../net/index.js';
import { RESOLVED } from '../net/channel.js';
import { Discovery } from './discovery.js';
import { PeerlinkError, isPeerlinkError } from '../errors.js';
import { PeerID, peerKey } from './peer-id.js';
import { PeerRecord, type PeerState } from './peer-record.js';
import { ControlChannel, toPeerlinkError, type ChannelDirection } from './control-channel.js';
import { decide, isDecider, rolesCompatible, GenerationCounter } from './dedup.js';
import { decodeMessage, encodeMessageBuffer } from './protocol/codec.js';
import { ByeReason, Capability, PROTOCOL_VERSION, StreamKind, type HelloMessage, type SessionMessage } from './protocol/messages.js';
import { resolveOptions, buildParameters, type PeerSessionOptions, type ResolvedSessionOptions } from './options.js';
import { buildTxt, type DiscoveredPeer } from './discovery-info.js';
import type { DialTarget } from './dial-target.js';
import { Dialer, REPORTED_CODES } from './dialer.js';
import { StreamManager } from './streams.js';
import type { MessageStream } from './message-stream.js';
import type { PeerErrorInfo, PeerSessionEvents } from './events.js';
import { connectionChannel, log, peerStateChannel } from './diagnostics.js';
import { ResourceManager, type ResourceTransfer, type SendResourceOptions } from './resource-transfer.js';

export interface SendOptions {
  /** One peer or several; default every connected peer. */
  to?: PeerID | readonly PeerID[];
}

export interface OpenStreamOptions {
  /** 'app' (default) surfaces as a `stream` event; 'resource' is for the session's resource transfers. */
  kind?: 'app' | 'resource';
  /** Bytes given to the receiving side with the stream (≤ 4096). */
  meta?: Uint8Array;
}

export interface ConnectOptions {
  signal?: AbortSignal;
}

export interface PeerInfo {
  peer: PeerID;
  state: PeerState;
  /** The peer's discoveryInfo (TXT app keys), when it was found by browsing. */
  discoveryInfo: Record<string, string>;
  instanceName: string;
  /** Smoothed keepalive round-trip time. */
  rttMs?: number;
  /** Remote address of the control connection. */
  address?: string;
}

/** Handler for a non-app stream kind (resources). */
export type StreamKindHandler = (stream: Duplex, name: string, meta: Buffer, peer: PeerID) => void;

/** Stream kinds by name → their STREAM_OFFER code. */
const STREAM_KIND_CODES = { app: StreamKind.APP, resource: StreamKind.RESOURCE } as const;

export class PeerSession extends EventEmitter<PeerSessionEvents> {
  readonly options: ResolvedSessionOptions;
  /** Our identity. */
  readonly peerId: PeerID;
  readonly #parameters: Parameters;
  readonly #nonce = randomBytes(16);
  readonly #generations = new GenerationCounter();
  /** Peer records by peer key; never deleted (a record outlives its connections). */
  readonly #peers = new Map<string, PeerRecord>();
  /** send()'s one-entry lookup cache: the PeerID of the last single-peer send and its record. */
  #lastTo: PeerID | undefined;
  #lastRec: PeerRecord | undefined;
  readonly #channels = new Set<ControlChannel>();
  readonly #unattached = new Set<Connection>();
  readonly #streamHandlers = new Map<number, StreamKindHandler>();
  readonly #streams: StreamManager;
  readonly #dialer: Dialer;
  readonly #resources: ResourceManager<PeerID>;
  #listener: Listener | undefined;
  #discovery: Discovery | undefined;
  #registeredName: string | undefined;
  #state: 'idle' | 'starting' | 'running' | 'closing' | 'closed' = 'idle';
  /** The last transport send promise that was not already resolved, and its error-mapped form (see #sendTo). */
  #lastSendRaw: Promise<void> | undefined;
  #lastSendMapped: Promise<void> | undefined;

  constructor(options: PeerSessionOptions) {
    super();
    this.options = resolveOptions(options);
    this.peerId = this.options.peerId;
    this.#parameters = buildParameters(this.options);
    this.#streams = new StreamManager({
      localId: this.peerId,
      parameters: this.#parameters,
      listenPort: () => this.listenPort,
      connectionTimeout: this.options.connectionTimeout,
      record: (key) => this.#peers.get(key),
      acceptsKind: (kind) => kind === StreamKind.APP || this.#streamHandlers.has(kind),
      deliver: (kind, stream, name, meta, rec) => this.#deliverStream(kind, stream, name, meta, rec),
    });
    this.#dialer = new Dialer({
      options: this.options,
      peerId: this.peerId,
      parameters: this.#parameters,
      running: () => this.#state === 'running' || this.#state === 'starting',
      record: (key) => this.#peers.get(key),
      registeredName: () => this.#registeredName,
      attach: (conn, target) => {
        if (this.#state === 'running') this.#attach(conn, 'outgoing', target);
        else conn.forceCancel();
      },
      reportError: (err, info) => this.#reportError(err, info),
      found: (info) => this.#emitApp('found', info),
      lost: (info) => this.#emitApp('lost', info),
    });
    this.#resources = new ResourceManager<PeerID>({
      ...this.options.resources,
      open: (name, peer) => this.openStream(name, peer, { kind: 'resource' }),
      announce: (incoming) => this.#emitApp('resource', incoming),
    });
    this.setStreamHandler('resource', (stream, _name, _meta, peer) => {
      this.#resources.receive(stream, peer);
    });
  }

  /** The listener's port (0 when not listening or not started). */
  get listenPort(): number {
    return this.#listener?.port ?? 0;
  }

  /** The instance name we are advertised under (after any conflict rename). */
  get instanceName(): string | undefined {
    return this.#registeredName;
  }

  /** Peers with a working control connection. */
  get connectedPeers(): PeerID[] {
    return [...this.#peers.values()].filter((r) => r.state === 'connected').map((r) => r.peer);
  }

  /**
   * Counters for tests and diagnostics. `controlConnections` counts every open control
   * connection (active or in handshake): once things settle it equals the number of
   * connected peers — anything more is a duplicate connection.
   */
  get stats(): { controlConnections: number; activeConnections: number; handshakes: number; streams: number; targets: number } {
    let active = 0;
    let streams = 0;
    for (const r of this.#peers.values()) {
      if (r.active && !r.active.closed) active++;
      streams += r.streams.size;
    }
    const open = [...this.#channels].filter((c) => !c.closed).length;
    return { controlConnections: open, activeConnections: active, handshakes: open - active, streams, targets: this.#dialer.size };
  }

  /** Current browse results. */
  get discoveredPeers(): DiscoveredPeer[] {
    return this.#dialer.discovered;
  }

  /** Starts listening, advertising and browsing (each as the options say). */
  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new PeerlinkError('ERR_INVALID_STATE', 'start() may be called once');
    this.#state = 'starting';
    const o = this.options;
    try {
      if (o.listen) {
        const listener = new Listener(this.#parameters, { port: o.port });
        this.#listener = listener;
        listener.on('connection', (c) => this.#onIncoming(c));
        listener.on('rejected', (err, remote) => this.#reportError(err, { endpoint: remote }));
        await listener.start();
      }
      if (o.advertise || o.browse) {
        const discovery = new Discovery({ type: o.bonjourType, interfaces: o.interfaces, mdns: o.mdns });
        this.#discovery = discovery;
        discovery.on('registered', (name) => {
          this.#registeredName = name;
          this.#dialer.registered(name);
        });
        discovery.on('found', (f) => this.#dialer.onFound(f));
        discovery.on('lost', (f) => this.#dialer.onLost(f));
        if (o.advertise) discovery.advertise(o.instanceName, this.listenPort, buildTxt(o));
        if (o.browse) discovery.browse();
      }
    } catch (err) {
      await this.close();
      throw toPeerlinkError(err, 'ERR_INTERNAL');
    }
    if (this.#state !== 'starting') return;
    this.#state = 'running';
    this.emit('ready');
  }

  /**
   * Connects to a peer known by address (MC's connectPeer). Resolves with the peer once
   * connected; the session keeps reconnecting to the endpoint until cancelConnect() or close().
   * Rejects on a security failure (wrong key), cancelConnect(), close() or the signal.
   */
  connect(endpoint: Endpoint, options: ConnectOptions = {}): Promise<PeerID> {
    if (this.#state !== 'running' && this.#state !== 'starting') {
      return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', 'connect() needs a started session'));
    }
    return this.#dialer.connect(endpoint, options.signal);
  }

  /** Stops connecting to a peer (MC's cancelConnectPeer): pending dials and handshakes end; a working connection stays. */
  cancelConnect(peer: PeerID): void {
    this.#dialer.cancel(peer);
    const rec = this.#peers.get(peer.id);
    if (rec) for (const ch of [...rec.pending]) ch.close(ByeReason.CLOSING, 'connection cancelled');
  }

  /**
   * Sends one reliable message to the given peers (default: all connected), in order per
   * peer. Resolves when every target's transport accepted it: a slow peer delays only the
   * promise of sends that include it.
   */
  send(data: Uint8Array | string, options: SendOptions = {}): Promise<void> {
    const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (payload.length > this.options.maxMessageSize) {
      return Promise.reject(new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `message of ${payload.length} bytes exceeds maxMessageSize ${this.options.maxMessageSize}; use openStream() for bulk data`));
    }
    const to = options.to;
    // One peer: the common case, kept free of arrays and extra promises (100-byte messages at millions per second).
    if (to instanceof PeerID) {
      // Records are never removed, so the last one looked up stays valid for the same PeerID.
      let rec = to === this.#lastTo ? this.#lastRec : undefined;
      if (rec === undefined) {
        rec = this.#peers.get(to.id);
        this.#lastTo = to;
        this.#lastRec = rec;
      }
      if (!rec?.active || rec.active.closed) return Promise.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${to.displayName} is not connected`));
      return this.#sendTo(rec, payload);
    }
    let recs: PeerRecord[];
    if (to === undefined) recs = [...this.#peers.values()].filter((r) => r.state === 'connected');
    else {
      recs = [];
      for (const p of to) {
        const r = this.#peers.get(p.id);
        if (!r || r.state !== 'connected') return Promise.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${p.displayName} is not connected`));
        recs.push(r);
      }
    }
    return Promise.all(recs.map((r) => this.#sendTo(r, payload))).then(() => undefined);
  }

  #sendTo(rec: PeerRecord, payload: Buffer): Promise<void> {
    const ch = rec.active as ControlChannel;
    const limit = ch.hello?.maxMessageSize ?? 0;
    if (payload.length > limit) {
      return Promise.reject(new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `${rec.peer.displayName} accepts messages up to ${limit} bytes; this one is ${payload.length}`));
    }
    const p = ch.sendData(payload);
    // Accepted at once (the usual case): hand back the transport's shared resolved promise
    // instead of chaining a new one per message. Above the high-water mark the transport
    // shares one drain promise between sends, so the mapped one is shared too.
    if (p === RESOLVED) return p;
    if (p !== this.#lastSendRaw) {
      this.#lastSendRaw = p;
      this.#lastSendMapped = p.catch(notConnected);
    }
    return this.#lastSendMapped as Promise<void>;
  }

  /** Opens a byte stream to a connected peer (MC's startStream); the peer gets a `stream` event. */
  async openStream(name: string, peer: PeerID, options: OpenStreamOptions = {}): Promise<Duplex> {
    const rec = this.#peers.get(peer.id);
    if (!rec || rec.state !== 'connected') throw new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${peer.displayName} is not connected`);
    const kind = STREAM_KIND_CODES[options.kind ?? 'app'];
    const meta = options.meta ? Buffer.from(options.meta) : Buffer.alloc(0);
    return this.#streams.open(rec, name, kind, meta);
  }

  /** Registers the handler for a non-app stream kind (used by resource transfers). */
  setStreamHandler(kind: 'resource', handler: StreamKindHandler | undefined): void {
    const code = STREAM_KIND_CODES[kind];
    if (handler) this.#streamHandlers.set(code, handler);
    else this.#streamHandlers.delete(code);
  }

  /**
   * MC's sendResource(at:withName:toPeer:): a file path, file: URL or http(s) URL, sent over
   * a resource stream; the transfer reports `progress` and settles `done`.
   */
  sendResource(source: string | URL, name: string, peer: PeerID, options?: SendResourceOptions): ResourceTransfer<PeerID> {
    return this.#resources.send(source, name, peer, options);
  }

  /** Where received resources are saved. */
  resourceDirectory(): Promise<string> {
    return this.#resources.store.directory();
  }

  /** What the session knows about a peer. */
  peerInfo(peer: PeerID): PeerInfo | undefined {
    const rec = this.#peers.get(peer.id);
    if (!rec) return undefined;
    const info: PeerInfo = { peer: rec.peer, state: rec.state, discoveryInfo: this.#dialer.discoveryInfoOf(rec.key), instanceName: rec.instanceName };
    if (rec.active?.rttMs !== undefined) info.rttMs = rec.active.rttMs;
    const remote = rec.active?.connection.currentPath?.remoteEndpoint;
    if (remote) info.address = Endpoint.format(remote);
    return info;
  }

  /** Leaves: BYE to every peer, service withdrawn, listener and browser stopped, streams destroyed. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    this.#state = 'closing';
    // Transfers first, so they end as cancelled/aborted rather than as broken connections.
    await this.#resources.close().catch(() => undefined);
    this.#dialer.close();
    for (const c of this.#unattached) c.forceCancel();
    const closing: Array<Promise<void>> = [];
    for (const ch of [...this.#channels]) {
      closing.push(waitClosed(ch.connection));
      ch.close(ByeReason.CLOSING, 'session closed');
    }
    this.#streams.close();
    for (const rec of this.#peers.values()) this.#update(rec);
    await Promise.allSettled([this.#discovery?.close(), this.#listener?.cancel()]);
    await Promise.race([Promise.allSettled(closing), delay(1000)]);
    this.#state = 'closed';
    this.emit('close');
  }

  // ---- incoming connections -------------------------------------------------------------

  #onIncoming(conn: Connection): void {
    if (this.#state === 'closing' || this.#state === 'closed') {
      conn.forceCancel();
      return;
    }
    this.#unattached.add(conn);
    const timer = setTimeout(() => conn.forceCancel(), this.options.connectionTimeout);
    timer.unref();
    conn.receiveMessage().then(
      (frame) => {
        clearTimeout(timer);
        this.#unattached.delete(conn);
        if (frame === null || this.#state === 'closing' || this.#state === 'closed') return conn.forceCancel();
        let msg: SessionMessage;
        try {
          msg = decodeMessage(frame, { maxDataSize: 0 });
        } catch (err) {
          this.#reportError(toPeerlinkError(err, 'ERR_PROTOCOL'), { endpoint: remoteOf(conn) });
          return conn.forceCancel();
        }
        if (msg.type === 'hello') this.#attach(conn, 'incoming', undefined, msg);
        else if (msg.type === 'streamBind') this.#streams.onBind(conn, msg);
        else {
          this.#reportError(new PeerlinkError('ERR_PROTOCOL', `a new connection must start with HELLO or STREAM_BIND, not ${msg.type}`), { endpoint: remoteOf(conn) });
          conn.send(encodeMessageBuffer({ type: 'bye', reason: ByeReason.PROTOCOL_ERROR, text: 'expected HELLO' })).catch(() => undefined);
          conn.cancel();
        }
      },
      () => {
        clearTimeout(timer);
        this.#unattached.delete(conn);
        conn.forceCancel();
      },
    );
  }

  // ---- control channels -----------------------------------------------------------------

  #hello(lastGeneration: number): HelloMessage {
    const o = this.options;
    return {
      type: 'hello',
      version: PROTOCOL_VERSION,
      role: o.role,
      peerId: this.peerId.toBytes(),
      nonce: this.#nonce,
      capabilities: Capability.STREAMS | Capability.DATA_BATCH | (this.#streamHandlers.has(StreamKind.RESOURCE) ? Capability.RESOURCES : 0),
      maxMessageSize: o.maxMessageSize,
      listenPort: this.listenPort,
      lastGeneration,
      displayName: this.peerId.displayName,
      instanceName: o.advertise ? (this.#registeredName ?? o.instanceName) : '',
    };
  }

  #attach(conn: Connection, direction: ChannelDirection, target: DialTarget | undefined, first?: HelloMessage): ControlChannel {
    const o = this.options;
    const ch = new ControlChannel(conn, direction, { maxDataSize: o.maxMessageSize, keepaliveInterval: o.keepaliveInterval, keepaliveTimeout: o.keepaliveTimeout });
    this.#channels.add(ch);
    ch.on('message', (m) => this.#onMessage(ch, m, target));
    // DATA's hot path: no message object, no switch, no rest-argument emit per message.
    ch.onData = (payload) => {
      const rec = ch.record;
      if (rec?.active !== ch) return; // raced the replacement of this connection: dropped
      try {
        this.emit('message', payload, rec.peer);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    };
    ch.on('closed', (err, bye) => this.#onClosed(ch, err, bye, target));
    const knownKey = first ? peerKey(first.peerId) : target?.peerKey;
    const lastGeneration = knownKey ? (this.#peers.get(knownKey)?.lastGeneration ?? 0) : 0;
    ch.send(this.#hello(lastGeneration)).catch(() => undefined);
    const timer = setTimeout(() => {
      if (ch.phase !== 'active' && !ch.closed) ch.destroy(new PeerlinkError('ERR_CONNECTION_TIMEOUT', 'the peer did not complete the session handshake in time'));
    }, o.connectionTimeout);
    timer.unref();
    ch.start(first);
    return ch;
  }

  #onMessage(ch: ControlChannel, m: SessionMessage, target: DialTarget | undefined): void {
    switch (m.type) {
      case 'hello':
        return this.#onHello(ch, m, target);
      case 'welcome':
        return this.#onWelcome(ch, m.generation, target);
      case 'data': {
        const rec = this.#activeRecord(ch, 'DATA');
        if (rec) this.#emitApp('message', m.payload, rec.peer);
        return;
      }
      case 'dataBatch': {
        const rec = this.#activeRecord(ch, 'DATA_BATCH');
        if (rec) for (const p of m.payloads) this.#emitApp('message', p, rec.peer);
        return;
      }
      case 'streamOffer': {
        const rec = this.#activeRecord(ch, 'STREAM_OFFER');
        if (rec) this.#streams.onOffer(rec, m);
        return;
      }
      case 'streamReject': {
        const rec = this.#activeRecord(ch, 'STREAM_REJECT');
        if (rec) this.#streams.onReject(rec, m.token);
        return;
      }
      case 'extension':
        return; // no extension registered for control messages yet: ignored, like unknown types
      default:
        return this.#protocolError(ch, `${m.type} is not valid on a control connection`);
    }
  }

  /** The record whose active connection `ch` is; a protocol error otherwise. */
  #activeRecord(ch: ControlChannel, what: string): PeerRecord | undefined {
    const rec = ch.record;
    if (ch.phase === 'active' && rec?.active === ch) return rec;
    // A message racing the replacement of this connection is dropped, not an error.
    if (ch.phase === 'active' || ch.closed) return undefined;
    this.#protocolError(ch, `${what} before the handshake finished`);
    return undefined;
  }

  #protocolError(ch: ControlChannel, text: string): void {
    const err = new PeerlinkError('ERR_PROTOCOL', `peer broke the session protocol: ${text}`);
    const rec = ch.hello ? this.#peers.get(peerKey(ch.hello.peerId)) : undefined;
    this.#reportError(err, { ...(rec ? { peer: rec.peer } : {}), endpoint: remoteOf(ch.connection) });
    ch.close(ByeReason.PROTOCOL_ERROR, text);
  }

  #onHello(ch: ControlChannel, hello: HelloMessage, target: DialTarget | undefined): void {
    const o = this.options;
    if (ch.phase !== 'hello') return this.#protocolError(ch, 'a second HELLO');
    if (Buffer.compare(hello.peerId, this.peerId.toBytes()) === 0) {
      if (target) target.self = true;
      ch.close(ByeReason.SELF, 'connected to itself');
      return;
    }
    if (!rolesCompatible(o.architecture, o.role, hello.role)) {
      this.#reportError(new PeerlinkError('ERR_PROTOCOL', `peer ${hello.displayName} is a "${hello.role}" and we are a "${o.role}" (${o.architecture})`), { endpoint: remoteOf(ch.connection) });
      ch.close(ByeReason.ROLE, `incompatible roles ${o.role}/${hello.role}`);
      return;
    }
    const key = peerKey(hello.peerId);
    let rec = this.#peers.get(key);
    if (!rec) {
      rec = new PeerRecord(key, PeerID.fromBytes(hello.peerId, hello.displayName));
      this.#peers.set(key, rec);
    } else if (rec.peer.displayName !== hello.displayName) rec.peer = rec.peer.withDisplayName(hello.displayName);
    if (hello.instanceName) rec.instanceName = hello.instanceName;
    this.#dialer.learned(key, hello.instanceName, target);
    // A new nonce means the peer restarted: connections from its previous run are dead.
    if (rec.remoteNonce && !rec.remoteNonce.equals(hello.nonce)) {
      rec.lastGeneration = 0;
      for (const old of [...(rec.active ? [rec.active] : []), ...rec.pending]) {
        if (old.hello && !old.hello.nonce.equals(hello.nonce)) old.destroy(new PeerlinkError('ERR_CONNECTION_RESET', 'the peer restarted'));
      }
    }
    rec.remoteNonce = hello.nonce;
    ch.hello = hello;
    ch.record = rec;
    ch.phase = 'identified';
    rec.pending.add(ch);
    if (!isDecider(o.architecture, this.peerId.toBytes(), hello.peerId, o.role)) {
      this.#update(rec); // connecting, until the other side WELCOMEs one connection
      return;
    }
    const active = rec.active && !rec.active.closed ? rec.active : undefined;
    const decision = decide(
      o.architecture,
      active && active.hello ? { remoteNonce: active.hello.nonce, generation: active.generation, silentFor: active.silentFor } : undefined,
      hello,
      o.keepaliveInterval * 1.5 + 500,
    );
    if (decision === 'duplicate') {
      this.#trace(ch, rec, 'duplicate');
      ch.close(ByeReason.DUPLICATE, 'already connected');
      return;
    }
    ch.generation = this.#generations.take();
    this.#trace(ch, rec, decision);
    this.#activate(rec, ch, target);
    ch.send({ type: 'welcome', generation: ch.generation }).catch(() => undefined);
    this.#update(rec);
  }

  #onWelcome(ch: ControlChannel, generation: number, target: DialTarget | undefined): void {
    const o = this.options;
    if (ch.phase !== 'identified' || !ch.hello || isDecider(o.architecture, this.peerId.toBytes(), ch.hello.peerId, o.role)) {
      return this.#protocolError(ch, 'unexpected WELCOME');
    }
    const rec = this.#peers.get(peerKey(ch.hello.peerId));
    if (!rec) return;
    ch.generation = generation;
    this.#trace(ch, rec, 'welcomed');
    this.#activate(rec, ch, target);
    this.#update(rec);
  }

  /** The de-duplication trail, for diagnostics_channel subscribers and NODE_DEBUG=peerlink:session. */
  #trace(ch: ControlChannel, rec: PeerRecord, decision: string, reason?: string): void {
    if (connectionChannel.hasSubscribers) {
      connectionChannel.publish({ session: this.peerId.id, peer: rec.key, decision, generation: ch.generation, direction: ch.direction, ...(reason ? { reason } : {}) });
    }
    log('%s: %s connection #%d %s %s (generation %d)%s', this.peerId.displayName, ch.direction, ch.id, decision, rec.peer.displayName, ch.generation, reason ? `: ${reason}` : '');
  }

  /** Makes `ch` the peer's connection; the one it replaces is closed without a state change. */
  #activate(rec: PeerRecord, ch: ControlChannel, target: DialTarget | undefined): void {
    const old = rec.active;
    ch.phase = 'active';
    rec.pending.delete(ch);
    rec.active = ch;
    rec.leftAt = 0;
    if (old && old !== ch) old.close(ByeReason.REPLACED, 'replaced by a newer connection');
    if (target) target.attempts = 0;
    this.#dialer.connected(rec);
  }

  #onClosed(ch: ControlChannel, err: PeerlinkError | undefined, bye: { reason: number; text: string } | undefined, target: DialTarget | undefined): void {
    this.#channels.delete(ch);
    const rec = ch.hello ? this.#peers.get(peerKey(ch.hello.peerId)) : undefined;
    if (err && REPORTED_CODES.has(err.code)) this.#reportError(err, { ...(rec ? { peer: rec.peer } : {}), endpoint: remoteOf(ch.connection) });
    else if (bye && (bye.reason === ByeReason.ROLE || bye.reason === ByeReason.VERSION || bye.reason === ByeReason.PROTOCOL_ERROR) && err) {
      this.#reportError(new PeerlinkError('ERR_PROTOCOL', err.message), { ...(rec ? { peer: rec.peer } : {}), endpoint: remoteOf(ch.connection) });
    }
    if (rec) {
      this.#trace(ch, rec, 'closed', bye ? `bye ${bye.reason}${bye.text ? ` ${bye.text}` : ''}` : err?.code);
      rec.pending.delete(ch);
      if (rec.active === ch) {
        rec.active = undefined;
        rec.lastGeneration = ch.generation;
        if (bye?.reason === ByeReason.CLOSING && err) {
          // The peer left on purpose: do not redial it until it is rediscovered (or a while passed).
          rec.leftAt = Date.now();
          this.#dialer.peerLeft(rec);
        }
      }
      this.#update(rec);
    }
    if (target) this.#dialer.channelClosed(target, bye?.reason === ByeReason.SELF);
  }

  /** Reports a state change once, and reacts to losing a peer. */
  #update(rec: PeerRecord): void {
    const closing = this.#state === 'closing' || this.#state === 'closed';
    const state = closing && rec.state !== 'connected' ? 'notConnected' : rec.state;
    if (state === rec.reported) return;
    rec.reported = state;
    if (state === 'notConnected') {
      this.#streams.dropPeer(rec);
      if (!closing) this.#dialer.lostPeer(rec);
    }
    if (peerStateChannel.hasSubscribers) peerStateChannel.publish({ session: this.peerId.id, peer: rec.key, displayName: rec.peer.displayName, state });
    log('%s: peer %s %s', this.peerId.displayName, rec.peer.displayName, state);
    this.#emitApp('peer', rec.peer, state);
  }

  // ---- streams and events ---------------------------------------------------------------

  #deliverStream(kind: number, stream: MessageStream, name: string, meta: Buffer, rec: PeerRecord): void {
    if (kind === StreamKind.APP) {
      if (this.listenerCount('stream') === 0) {
        stream.destroy(new PeerlinkError('ERR_CANCELLED', 'no stream handler'));
        return;
      }
      this.#emitApp('stream', stream, name, rec.peer);
      return;
    }
    const handler = this.#streamHandlers.get(kind);
    if (!handler) return void stream.destroy();
    try {
      handler(stream, name, meta, rec.peer);
    } catch (err) {
      stream.destroy(toPeerlinkError(err, 'ERR_INTERNAL'));
    }
  }

  #reportError(err: PeerlinkError, info: PeerErrorInfo): void {
    this.#emitApp('peerError', err, info);
  }

  /** Emits to app listeners; an exception thrown by one surfaces as uncaught, not inside our I/O loops. */
  #emitApp<K extends keyof PeerSessionEvents>(event: K, ...args: PeerSessionEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: PeerSessionEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }
}

function notConnected(err: unknown): never {
  if (isPeerlinkError(err, 'ERR_PEER_NOT_CONNECTED')) throw err;
  throw new PeerlinkError('ERR_PEER_NOT_CONNECTED', 'the peer disconnected before the message was sent', { cause: err });
}

function remoteOf(conn: Connection): string | undefined {
  const r = conn.currentPath?.remoteEndpoint;
  return r ? Endpoint.format(r) : undefined;
}

function waitClosed(conn: Connection): Promise<void> {
  if (conn.state === 'cancelled' || conn.state === 'failed') return Promise.resolve();
  return new Promise((resolve) => {
    const on = (s: string): void => {
      if (s === 'cancelled' || s === 'failed') {
        conn.off('state', on);
        resolve();
      }
    };
    conn.on('state', on);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
