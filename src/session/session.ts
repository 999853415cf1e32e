/**
 * PeerSession: Multipeer Connectivity's MCSession (+ advertiser + browser), built on the
 * net/ primitives the way Apple's "Moving from Multipeer Connectivity to Network Framework"
 * describes: a listener advertised over Bonjour, a browser, one control connection per
 * peer pair (HELLO, de-duplication, keepalive), reliable messages over it, and a new
 * connection per stream. Wire protocol and rules: docs/session.md.
 *
 * This file is the public API and its wiring; the parts live beside it: the API's option and
 * info types in session-types.ts, the listener and Bonjour discovery in session-network.ts,
 * send() in send-path.ts, the peers and their control connections (handshake,
 * de-duplication, state changes) in peer-table.ts, dialling in dialer.ts, streams in
 * streams.ts, resources in resource-manager.ts.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { Endpoint, prepareClientTls, type Connection, type Parameters } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import { PeerID } from './peer-id.js';
import type { PeerRecord, PeerState } from './peer-record.js';
import { toPeerlinkError } from './control-channel.js';
import { ByeReason, StreamKind } from './protocol/messages.js';
import { resolveOptions, buildParameters, type PeerSessionOptions, type ResolvedSessionOptions } from './options.js';
import type { DiscoveredPeer } from './discovery-info.js';
import { Dialer } from './dialer.js';
import { StreamManager } from './streams.js';
import { PeerTable } from './peer-table.js';
import { MessageStream } from './message-stream.js';
import { emitApp, type PeerErrorInfo, type PeerSessionEvents } from './events.js';
import { ResourceManager, type ResourceTransfer, type SendResourceOptions, type PartialResource } from './resource-transfer.js';
import { BudgetLedger, type BudgetName } from './budgets.js';
import { DEFAULT_INVITE_TIMEOUT, inviteContext, type InviteOptions } from './invitations.js';
import { DatagramManager } from './datagrams.js';
import type { DatagramFlowStats, DatagramTotals } from './datagram-flow.js';
import type { KnownPeers } from './trust/known-peers.js';
import { fingerprintOfSpki, peerIdBytesOfSpki, spkiOf } from './trust/identity.js';
import { LinkQualityMonitor, type LinkSource } from './link-monitor.js';
import type { LinkQualityReport } from './link-quality.js';
import { linkQualityChannel, log } from './diagnostics.js';
import { FOLDERS_CAPABILITY } from './resource-folder-manifest.js';
import { SendPath } from './send-path.js';
import { SessionNetwork } from './session-network.js';
import { STREAM_KIND_CODES, type ConnectOptions, type OpenStreamOptions, type PeerInfo, type SendOptions, type SessionLifecycle, type StreamKindHandler } from './session-types.js';

export class PeerSession extends EventEmitter<PeerSessionEvents> {
  readonly options: ResolvedSessionOptions;
  /** Our identity. */
  readonly peerId: PeerID;
  readonly #parameters: Parameters;
  /** The peers and their control connections. */
  readonly #table: PeerTable;
  /** The table's records by peer key. */
  readonly #peers: ReadonlyMap<string, PeerRecord>;
  /** send() (send-path.ts). */
  readonly #sender: SendPath;
  readonly #streamHandlers = new Map<number, StreamKindHandler>();
  readonly #streams: StreamManager;
  readonly #dialer: Dialer;
  readonly #resources: ResourceManager<PeerID>;
  /** Refusals per budget (stats.budgets); handed to every part that enforces one. */
  readonly #budgets: BudgetLedger;
  /** Best-effort flows, one per peer (datagrams.ts). */
  readonly #datagrams: DatagramManager;
  /** Link quality of the connected peers (one sampling timer, running only while a peer is connected). */
  readonly #links: LinkQualityMonitor;
  /** Listener and discovery (session-network.ts). */
  readonly #network: SessionNetwork;
  #state: SessionLifecycle = 'idle';

  constructor(options: PeerSessionOptions) {
    super();
    this.options = resolveOptions(options);
    this.peerId = this.options.peerId;
    this.#budgets = new BudgetLedger(this.options.budgets, this);
    this.#parameters = buildParameters(this.options);
    this.#network = new SessionNetwork({
      options: this.options,
      parameters: this.#parameters,
      events: this,
      admit: (address) => this.#table.admit(address),
      incoming: (conn) => this.#table.onIncoming(conn),
      registered: (name) => this.#dialer.registered(name),
      found: (f) => this.#dialer.onFound(f),
      lost: (f) => this.#dialer.onLost(f),
      running: () => this.#state === 'running',
      reportError: (err, info) => this.#reportError(err, info),
    });
    const lq = this.options.linkQuality;
    this.#links = new LinkQualityMonitor({
      interval: lq.interval,
      thresholds: lq.thresholds,
      ...(lq.timers ? { timers: lq.timers } : {}),
      changed: (key, quality, report) => {
        const rec = this.#peers.get(key);
        if (linkQualityChannel.hasSubscribers) linkQualityChannel.publish({ session: this.peerId.id, peer: key, quality, report });
        log('%s: link to %s %s (rtt %s ms, retransmits %s %%)', this.peerId.displayName, rec?.peer.displayName ?? key, quality, report.rttMs?.toFixed(1) ?? '-', (report.retransmitRate * 100).toFixed(1));
        if (rec) emitApp(this, 'linkQuality', rec.peer, quality, report);
      },
    });
    this.#datagrams = new DatagramManager({
      options: this.options.datagrams,
      // Any TLS control channel (PSK today, PKI alike) gives the exporter the keys come from.
      secured: this.options.security.mode !== 'none',
      budgets: this.#budgets,
      localId: this.peerId.toBytes(),
      sessionId: this.peerId.id,
      deliver: (payload, rec) => emitApp(this, 'message', payload, rec.peer, 'unreliable'),
      now: () => Date.now(),
    });
    this.#streams = new StreamManager({
      localId: this.peerId,
      parameters: this.#parameters,
      listenPort: () => this.listenPort,
      connectionTimeout: this.options.connectionTimeout,
      record: (key) => this.#peers.get(key),
      acceptsKind: (kind) => kind === StreamKind.APP || this.#streamHandlers.has(kind),
      deliver: (kind, stream, name, meta, rec) => this.#deliverStream(kind, stream, name, meta, rec),
      budgets: this.#budgets,
      reportError: (err, info) => this.#reportError(err, info),
      closing: () => this.#state === 'closing' || this.#state === 'closed',
      identified: (conn) => this.#identified(conn),
      reserveDial: () => this.#dialer.reserveDial(),
      ...(this.options.pki ? { boundToKey: keyMatches } : {}),
    });
    this.#dialer = new Dialer({
      options: this.options,
      peerId: this.peerId,
      parameters: this.#parameters,
      budgets: this.#budgets,
      running: () => this.#state === 'running' || this.#state === 'starting',
      record: (key) => this.#peers.get(key),
      registeredName: () => this.#network.registeredName,
      prepare: (conn, target) => this.#table.earlyHello(conn, target),
      attach: (conn, target) => {
        if (this.#state === 'running') this.#table.attach(conn, 'outgoing', target);
        else conn.forceCancel();
      },
      reportError: (err, info) => this.#reportError(err, info),
      found: (info) => emitApp(this, 'found', info),
      lost: (info) => emitApp(this, 'lost', info),
      reconfirm: (instanceName) => this.#network.reconfirm(instanceName),
      handshakingFrom: (addresses) => this.#table.handshakingFrom(addresses),
    });
    this.#table = new PeerTable({
      options: this.options,
      peerId: this.peerId,
      events: this,
      dialer: this.#dialer,
      streams: this.#streams,
      listenPort: () => this.listenPort,
      registeredName: () => this.#network.registeredName,
      acceptsResources: () => this.#streamHandlers.has(StreamKind.RESOURCE),
      closing: () => this.#state === 'closing' || this.#state === 'closed',
      identified: (conn) => this.#identified(conn),
      budgets: this.#budgets,
      stateChanged: (rec, state) => {
        if (state === 'connected') this.#links.track(rec.key, this.#linkSource(rec));
        else this.#links.untrack(rec.key);
      },
      // FOLDERS: this receiver understands folder offers (resource-folder-manifest.ts); a sender checks it before offering one.
      extraCapabilities: () => this.#datagrams.capability | (this.#streamHandlers.has(StreamKind.RESOURCE) ? FOLDERS_CAPABILITY : 0),
      extension: (rec, ch, code, body) => {
        try {
          this.#datagrams.onControl(rec, ch, code, body);
        } catch (err) {
          // A malformed DATAGRAM_* message: bad input from the peer, like any malformed frame.
          const e = toPeerlinkError(err, 'ERR_PROTOCOL');
          this.#reportError(e, { peer: rec.peer });
          ch.close(ByeReason.PROTOCOL_ERROR, e.message);
        }
      },
      // Absent peers' records expire (peer-records.ts): send()'s lookup cache must not keep one.
      recordRemoved: (rec) => this.#sender.forget(rec),
    });
    this.#peers = this.#table.records;
    this.#sender = new SendPath({ peers: this.#peers, datagrams: this.#datagrams, maxMessageSize: this.options.maxMessageSize, state: () => this.#state });
    this.#resources = new ResourceManager<PeerID>({
      ...this.options.resources,
      open: (name, peer) => this.openStream(name, peer, { kind: 'resource' }),
      announce: (incoming) => emitApp(this, 'resource', incoming),
      refused: (offer, err) => emitApp(this, 'resourceRefused', offer, err),
      // A `resource` listener is consent; without one (or resources.accept) offers are refused.
      listening: () => this.listenerCount('resource') > 0,
      budgets: this.#budgets,
      peerKey: (peer) => peer.id,
      waitConnected: (peer, signal) => this.#waitConnected(peer, signal),
      takesFolders: (peer) => ((this.#peers.get(peer.id)?.active?.hello?.capabilities ?? FOLDERS_CAPABILITY) & FOLDERS_CAPABILITY) !== 0,
    });
    this.setStreamHandler('resource', (stream, _name, _meta, peer) => {
      this.#resources.receive(stream, peer);
    });
  }

  /** The listener's port (0 when not listening or not started). */
  get listenPort(): number {
    return this.#network.listenPort;
  }

  /** The instance name we are advertised under (after any conflict rename). */
  get instanceName(): string | undefined {
    return this.#network.registeredName;
  }

  /** Peers with a working control connection. */
  get connectedPeers(): PeerID[] {
    return [...this.#peers.values()].filter((r) => r.state === 'connected').map((r) => r.peer);
  }

  /**
   * Counters for tests and diagnostics. `controlConnections` counts every open control
   * connection (active or in handshake): once things settle it equals the number of
   * connected peers — anything more is a duplicate connection. `peers`: peer records kept
   * (connected peers and absent ones not yet expired).
   */
  get stats(): { controlConnections: number; activeConnections: number; handshakes: number; streams: number; targets: number; peers: number; verifying: number; invitations: number; memoryTrims: number; budgets: Readonly<Partial<Record<BudgetName, number>>>; datagrams: Readonly<DatagramTotals> } {
    let active = 0;
    let streams = 0;
    for (const r of this.#peers.values()) {
      if (r.active && !r.active.closed) active++;
      streams += r.streams.size;
    }
    const open = this.#table.openChannels;
    return { controlConnections: open, activeConnections: active, handshakes: open - active, streams, targets: this.#dialer.size, peers: this.#table.recordCount, verifying: this.#table.verifying, invitations: this.#table.pendingInvitations, memoryTrims: this.#table.memoryTrims, budgets: this.#budgets.counts, datagrams: { ...this.#datagrams.totals } };
  }

  /** PKI: the known-peers store (list, forget); undefined for other security modes. */
  get knownPeers(): KnownPeers | undefined {
    return this.options.pki?.known;
  }

  /** PKI: `sha256/BASE64` of our public key (what peers record for us); undefined otherwise. */
  get fingerprint(): string | undefined {
    return this.options.pki?.identity.fingerprint;
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
      // Prepares a named download directory now: temp files a killed receiver left there are removed (resource-store.ts).
      if (o.resources.directory !== undefined) await this.#resources.store.directory().catch(() => undefined);
      // PKI: the self-signed certificate for our key (made, and kept with identityDir, the first time).
      if (o.pki) o.pki.tls.cert = await o.pki.identity.ensureCertificate(this.peerId.displayName);
      // PKI: our dials' secure context now rather than inside the first connect(). PSK: at the
      // first connection — node:tls and OpenSSL's set-up cost 5–6.5 MiB on Node 24/26, which a
      // session no peer has found yet does not need (docs/memory.md); the first dial pays the
      // set-up instead (~1 ms on Node 20, ~20 ms on Node 26).
      if (this.#parameters.tls?.pki) prepareClientTls(this.#parameters.tls);
      await this.#network.start();
    } catch (err) {
      await this.close();
      throw toPeerlinkError(err, 'ERR_INTERNAL');
    }
    if (this.#state !== 'starting') return;
    this.#state = 'running';
    this.emit('ready');
    // Registered while starting (rare: probing takes ~750 ms): announced right after ready.
    const name = this.#network.registeredName;
    if (name !== undefined) emitApp(this, 'advertised', name);
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

  /**
   * Invites a peer (MC's invitePeer(_:to:withContext:timeout:)): one dial to a browse result
   * (a DiscoveredPeer from `found`, or its instance name) or an endpoint, carrying `context`.
   * Resolves with the peer once it accepted and is connected; rejects with
   * ERR_INVITATION_DECLINED, ERR_INVITATION_TIMEOUT (no answer within `timeout`, default 30 s),
   * ERR_CANCELLED (the signal), or the dial's error. Never retried behind the app's back.
   * A peer with `autoConnect: false` raises an `invitation` event; one with autoConnect just connects.
   */
  invite(peer: DiscoveredPeer | string | Endpoint, options: InviteOptions = {}): Promise<PeerID> {
    if (this.#state !== 'running') return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', 'invite() needs a started session'));
    let context: Buffer;
    try {
      context = inviteContext(options.context, this.options.budgets.invitationContextBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    const timeoutMs = options.timeout ?? DEFAULT_INVITE_TIMEOUT;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > 0xffffffff) return Promise.reject(new PeerlinkError('ERR_INVALID_ARGUMENT', `invite timeout must be a positive number of ms, got ${String(options.timeout)}`));
    const to = typeof peer === 'string' ? { instanceName: peer } : 'kind' in peer ? { endpoint: peer } : { instanceName: peer.instanceName };
    return this.#dialer.invite(to, { context, timeoutMs }, options.signal);
  }

  /** Stops connecting to a peer (MC's cancelConnectPeer): pending dials and handshakes end; a working connection stays. */
  cancelConnect(peer: PeerID): void {
    this.#dialer.cancel(peer);
    const rec = this.#peers.get(peer.id);
    if (rec) for (const ch of [...rec.pending]) ch.close(ByeReason.CLOSING, 'connection cancelled');
  }

  /**
   * Sends one reliable message to the given peers (default: all connected), in order per
   * peer. Resolves with the number of peers it went to once every target's transport accepted
   * it: a slow peer delays only the promise of sends that include it. A send to everyone while
   * nobody is connected resolves with 0; a `to` that is not connected rejects
   * (ERR_PEER_NOT_CONNECTED), as does any send before start() (ERR_INVALID_STATE) or after
   * close() (ERR_CLOSED).
   */
  send(data: Uint8Array | string, options: SendOptions = {}): Promise<number> {
    return this.#sender.send(data, options);
  }

  /**
   * Largest message send(…, {mode: 'unreliable'}) takes for this peer: the MTU of the control
   * connection's interface − IP/UDP headers − 17 bytes of datagram header (− 16 more for the
   * seal when secured). 0 when the peer is not connected.
   */
  maximumDatagramSize(peer: PeerID): number {
    const rec = this.#peers.get(peer.id);
    return rec ? this.#datagrams.maximumSize(rec) : 0;
  }

  /**
   * The peer's datagram flow counters (received, lost from sequence gaps, reordered, replayed,
   * rejected, over budget, …), or undefined before its first flow on the current connection.
   */
  datagramStats(peer: PeerID): DatagramFlowStats | undefined {
    const rec = this.#peers.get(peer.id);
    return rec ? this.#datagrams.stats(rec) : undefined;
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

  /** Partial files and folders of interrupted incoming transfers, kept for resuming (docs/resources.md "Resuming", "Folders"). */
  listPartialResources(): Promise<PartialResource[]> {
    return this.#resources.store.listPartial();
  }

  /** Removes partial files and folders of interrupted incoming transfers — all, or those of `name` (and `size`). Returns what was removed. */
  discardPartialResources(filter?: { name?: string; size?: number }): Promise<PartialResource[]> {
    return this.#resources.store.discardPartial(filter);
  }

  /** Resolves once `peer` is connected (at once if it is); rejects when `signal` aborts or the session closes. */
  #waitConnected(peer: PeerID, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const connected = (): boolean => this.#peers.get(peer.id)?.state === 'connected';
      if (connected()) return resolve();
      const done = (err?: Error): void => {
        this.off('peer', onPeer);
        this.off('close', onClose);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const onPeer = (p: PeerID, state: PeerState): void => {
        if (p.id === peer.id && state === 'connected') done();
      };
      const onClose = (): void => done(new PeerlinkError('ERR_CLOSED', 'the session is closed'));
      const onAbort = (): void => done(new PeerlinkError('ERR_CANCELLED', 'stopped waiting'));
      if (signal.aborted) return onAbort();
      this.on('peer', onPeer);
      this.on('close', onClose);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** What the session knows about a peer. */
  peerInfo(peer: PeerID): PeerInfo | undefined {
    const rec = this.#peers.get(peer.id);
    if (!rec) return undefined;
    const info: PeerInfo = { peer: rec.peer, state: rec.state, discoveryInfo: this.#dialer.discoveryInfoOf(rec.key), instanceName: rec.instanceName, viable: rec.viable, linkQuality: this.#links.report(rec.key)?.quality ?? 'unknown' };
    if (rec.active?.rttMs !== undefined) info.rttMs = rec.active.rttMs;
    if (rec.active && !rec.active.closed) info.keepalive = { intervalMs: rec.active.keepaliveInterval, timeoutMs: rec.active.keepaliveTimeout };
    if (this.options.pki && rec.active && !rec.active.closed) {
      info.trust = rec.verifying === undefined ? 'trusted' : 'verifying';
      const leaf = rec.active.connection.peerCertificates[0];
      if (leaf) info.fingerprint = fingerprintOfSpki(spkiOf(leaf));
    }
    const remote = rec.active?.connection.currentPath?.remoteEndpoint;
    if (remote) info.address = Endpoint.format(remote);
    const datagrams = this.#datagrams.stats(rec);
    if (datagrams) info.datagrams = datagrams;
    return info;
  }

  /**
   * The link to a peer as measured by using it (docs/session.md "Link quality"): the rating
   * and the measures behind it. 'unknown' with no measures for a peer that is not connected.
   */
  linkQuality(peer: PeerID): LinkQualityReport {
    return this.#links.report(peer.id) ?? { quality: 'unknown', rttMs: undefined, rttVarMs: undefined, throughputBps: 0, capacityBps: undefined, retransmitRate: 0, lossRate: 0, stalled: false };
  }

  /** Leaves: BYE to every peer, service withdrawn, listener and browser stopped, streams destroyed. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    this.#state = 'closing';
    // Transfers first, so they end as cancelled/aborted rather than as broken connections.
    await this.#resources.close().catch(() => undefined);
    // BYE closing first, so peers know we leave on purpose before our streams end: a stream
    // whose peer left gracefully ends without an error (docs/session.md "Streams"). Before the
    // dialer closes: it force-cancels its connections, which would drop the BYE on the ones we dialled.
    const closed = this.#table.closeChannels();
    this.#datagrams.close();
    this.#dialer.close();
    const streamsClosed = this.#streams.close();
    this.#table.reportAll();
    this.#links.close();
    await Promise.allSettled([...this.#network.close(), streamsClosed]);
    await Promise.race([closed, delay(1000)]);
    this.options.pki?.lock?.release();
    this.#state = 'closed';
    this.emit('close');
  }

  // ---- link quality ----------------------------------------------------------------------

  /** What the link monitor measures for a peer: its control connection (PINGs) and its stream connections. */
  #linkSource(rec: PeerRecord): LinkSource {
    const links = this.#links;
    return {
      *connections() {
        const ch = rec.active;
        if (ch && !ch.closed) {
          // The round trips of the connection in use (a replacement gets the hook on the next round).
          ch.onRtt ??= (ms) => links.observeRtt(rec.key, ms);
          yield { key: ch.connection, info: ch.connection.tcpInfoIfMoved() };
        }
        for (const s of rec.streams) if (s instanceof MessageStream) yield { key: s.connection, info: s.connection.tcpInfoIfMoved() };
      },
      pingOverdueMs: () => (rec.active && !rec.active.closed ? rec.active.pingOverdueMs : 0),
      viable: () => rec.viable,
      datagrams: () => this.#datagrams.stats(rec),
    };
  }

  // ---- streams and events ---------------------------------------------------------------

  #deliverStream(kind: number, stream: MessageStream, name: string, meta: Buffer, rec: PeerRecord): void {
    if (kind === StreamKind.APP) {
      if (this.listenerCount('stream') === 0) {
        stream.destroy(new PeerlinkError('ERR_CANCELLED', 'no stream handler'));
        return;
      }
      emitApp(this, 'stream', stream, name, rec.peer);
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

  /** An incoming connection became a peer's connection or a bound stream: the session's own message limit, and no longer unidentified. */
  #identified(conn: Connection): void {
    conn.setMaxMessageSize(conn.parameters.maxMessageSize);
    this.#network.identified(conn);
  }

  #reportError(err: PeerlinkError, info: PeerErrorInfo): void {
    emitApp(this, 'peerError', err, info);
  }
}

/** PKI: the connection's TLS key is the one the id is derived from. */
function keyMatches(conn: Connection, peerId: Uint8Array): boolean {
  const leaf = conn.peerCertificates[0];
  return leaf !== undefined && peerIdBytesOfSpki(spkiOf(leaf)).equals(peerId);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
