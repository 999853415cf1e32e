/**
 * NwfSession: the Network framework interop profile — a session mode that an app written with
 * Apple's Network framework the way "Moving from Multipeer Connectivity to Network Framework"
 * describes can join, without our HELLO protocol (docs/session.md "Network framework profile"):
 *
 * - reliable messages are WebSocket (RFC 6455) binary messages, path `/` (NWProtocolWebSocket's
 *   default), one app message per WebSocket message;
 * - security is TLS-PSK with the key as the PSK: TLS 1.2 `TLS_PSK_WITH_AES_128_GCM_SHA256`
 *   (RFC 5487 §2; what the seed's snippet configures) or TLS 1.3 PSK (RFC 8446 §4.2.11) — the
 *   seed's snippet builds the key from the identity bytes, a slip not copied here;
 * - the peer id is a UUID, advertised as TXT key `peerID` (Apple's `uuidString`, upper-case) and
 *   sent as the first WebSocket message in each direction ("have each peer send its peer
 *   identifier to the other peer"): 36 UUID characters (either case) or 16 raw bytes;
 * - duplicate connections are settled by the seed's symmetric rule: if local id > remote id
 *   drop the outgoing connection, else the incoming one — ids compared as 128-bit numbers,
 *   never as text. Two connections of one direction: the newer wins (a reconnect).
 *
 * What it cannot do (no HELLO): tell a restarted peer from a duplicate (no per-run nonce), a
 * session-level keepalive (TCP keepalive only), streams, resources, invitations, datagrams,
 * display names (a peer is shown by its instance name or id).
 */
import { EventEmitter } from 'node:events';
import { Connection, Endpoint, Listener, Parameters, parsePsk, type TcpOptions } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import { PeerID } from './peer-id.js';
import { Discovery, type FoundService } from './discovery.js';
import { BudgetLedger, resolveBudgets, type BudgetName, type SessionBudgets } from './budgets.js';
import { UnidentifiedConnections } from './unidentified.js';
import { toPeerlinkError } from './control-channel.js';
import { REPORTED_CODES } from './dialer.js';
import type { PeerErrorInfo } from './events.js';
import type { SessionSecurity } from './options.js';
import type { PeerState } from './peer-record.js';
import type { Mdns } from '../dnssd/index.js';

export interface NwfSessionOptions {
  /** Bare service name: `example` is advertised and browsed as `_example._tcp`. */
  serviceType: string;
  /** Our id; default a new random one. Its display name is our instance name unless `instanceName` is given. */
  peerId?: PeerID;
  displayName?: string;
  instanceName?: string;
  /** Default `{mode: 'none'}` (plain WebSocket); `{mode: 'psk', key, identity?}` for TLS-PSK. */
  security?: SessionSecurity;
  /** Dial every peer found. Default true. */
  autoConnect?: boolean;
  advertise?: boolean;
  browse?: boolean;
  interfaces?: string[];
  port?: number;
  mdns?: Mdns;
  /** Largest message sent or received, bytes. Default 4 MiB. */
  maxMessageSize?: number;
  /** Time a dial (TCP + TLS + WebSocket + the id) may take, ms. Default 10 000. */
  connectionTimeout?: number;
  /** How we send our id: `'string'` (36 upper-case UUID characters, Apple's uuidString; default) or `'bytes'` (16 bytes). */
  idFormat?: 'string' | 'bytes';
  /** The budgets that apply: firstFrameBytes, unidentifiedConnections, unidentifiedPerAddress, unidentifiedTimeout, maxPeerRecords. */
  budgets?: Partial<SessionBudgets>;
}

export interface NwfFoundPeer {
  instanceName: string;
  /** From TXT `peerID` (lower-case), when advertised. */
  peerId?: string;
  txt: Record<string, string | true>;
}

export interface NwfSessionEvents {
  peer: [peer: PeerID, state: PeerState];
  message: [data: Buffer, peer: PeerID];
  found: [info: NwfFoundPeer];
  lost: [info: NwfFoundPeer];
  peerError: [error: PeerlinkError, info: PeerErrorInfo];
  ready: [];
  close: [];
}

type Direction = 'incoming' | 'outgoing';

interface Link {
  conn: Connection;
  direction: Direction;
  peer: PeerID | undefined;
  target: Target | undefined;
}

interface Target {
  name: string;
  endpoint: Endpoint | undefined;
  addresses: string[];
  port: number;
  peerKey: string | undefined;
  present: boolean;
  busy: boolean;
  self: boolean;
  attempts: number;
  timer: NodeJS.Timeout | undefined;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A peer id message: 16 raw bytes, or a UUID written in 36 characters (Apple writes upper-case). */
export function parseNwfPeerId(msg: Buffer, displayName: string): PeerID | undefined {
  if (msg.length === 16) return PeerID.fromBytes(msg, displayName);
  if (msg.length === 36) {
    const s = msg.toString('latin1');
    if (UUID_TEXT.test(s)) return PeerID.fromString(s.toLowerCase(), displayName);
  }
  return undefined;
}

/** The seed's rule, on ids as 128-bit big-endian numbers: which direction of a duplicate pair is dropped. */
export function nwfDropDirection(local: PeerID, remote: PeerID): Direction {
  return Buffer.compare(local.toBytes(), remote.toBytes()) > 0 ? 'outgoing' : 'incoming';
}

export class NwfSession extends EventEmitter<NwfSessionEvents> {
  readonly peerId: PeerID;
  readonly #o: Required<Pick<NwfSessionOptions, 'serviceType' | 'autoConnect' | 'advertise' | 'browse' | 'maxMessageSize' | 'connectionTimeout' | 'idFormat'>> & NwfSessionOptions;
  readonly #budgets: BudgetLedger;
  readonly #unidentified: UnidentifiedConnections;
  readonly #parameters: Parameters;
  readonly #links = new Set<Link>();
  readonly #active = new Map<string, Link>();
  readonly #targets = new Map<string, Target>();
  #listener: Listener | undefined;
  #discovery: Discovery | undefined;
  #state: 'idle' | 'running' | 'closed' = 'idle';

  constructor(options: NwfSessionOptions) {
    super();
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,13}[A-Za-z0-9])?$/.test(options.serviceType)) {
      throw new PeerlinkError('ERR_INVALID_SERVICE_TYPE', `serviceType "${String(options.serviceType)}" must be a bare service name (1–15 letters, digits or '-')`);
    }
    this.#o = { autoConnect: true, advertise: true, browse: true, maxMessageSize: 4 * 1024 * 1024, connectionTimeout: 10_000, idFormat: 'string', ...options };
    this.peerId = options.peerId ?? PeerID.generate(options.displayName ?? `peer-${Math.random().toString(16).slice(2, 6)}`);
    this.#budgets = new BudgetLedger(resolveBudgets(options.budgets), this);
    this.#unidentified = new UnidentifiedConnections(this.#budgets);
    const security = options.security ?? { mode: 'none' };
    const tls = security.mode === 'psk' ? { psk: { key: parsePsk(security.key), ...(security.identity !== undefined ? { identity: security.identity } : {}) } } : undefined;
    // No session keepalive (a Network framework peer would not answer it): TCP's, so a vanished peer is noticed.
    const tcp: TcpOptions = { noDelay: true, connectionTimeout: this.#o.connectionTimeout, enableKeepalive: true, keepaliveIdle: 5000, connectionDropTime: 15_000 };
    this.#parameters = Parameters.ws({ ...(tls ? { tls } : {}), path: '/', maxMessageSize: this.#o.maxMessageSize, keepalive: false, tcp, retry: { automatic: false } });
  }

  /** Emits to app listeners; an exception thrown by one surfaces as uncaught, not inside our I/O loops. */
  #app<K extends keyof NwfSessionEvents>(event: K, ...args: NwfSessionEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: NwfSessionEvents[K]) => boolean)(event, ...args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  get listenPort(): number {
    return this.#listener?.port ?? 0;
  }

  get connectedPeers(): PeerID[] {
    return [...this.#active.values()].map((l) => l.peer as PeerID);
  }

  get stats(): { connections: number; peers: number; budgets: Readonly<Partial<Record<BudgetName, number>>> } {
    return { connections: this.#links.size, peers: this.#active.size, budgets: this.#budgets.counts };
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') throw new PeerlinkError('ERR_INVALID_STATE', 'start() may be called once');
    this.#state = 'running';
    const o = this.#o;
    const limits = this.#budgets.limits;
    try {
      const listener = new Listener(this.#parameters, { port: o.port ?? 0, initialMaxMessageSize: limits.firstFrameBytes, admit: (a) => this.#unidentified.admit(a) });
      this.#listener = listener;
      listener.on('connection', (c) => {
        // No HELLO follows: a connection that completed the TLS-PSK handshake is a key holder's,
        // so the first-frame limit is lifted now (docs/security.md "Network framework profile").
        if (o.security?.mode === 'psk') {
          c.setMaxMessageSize(o.maxMessageSize);
          listener.identified(c);
        }
        this.#run({ conn: c, direction: 'incoming', peer: undefined, target: undefined });
      });
      listener.on('rejected', (err, remote) => this.#app('peerError', err, { endpoint: remote }));
      await listener.start();
      if (o.advertise || o.browse) {
        const d = new Discovery({ type: `_${o.serviceType}._tcp`, interfaces: o.interfaces, mdns: o.mdns });
        this.#discovery = d;
        d.on('found', (f) => this.#found(f));
        d.on('lost', (f) => this.#lost(f));
        // Apple's uuidString: upper-case.
        if (o.advertise) d.advertise(o.instanceName ?? this.peerId.displayName, listener.port, { peerID: this.peerId.id.toUpperCase() });
        if (o.browse) d.browse();
      }
    } catch (err) {
      await this.close();
      throw toPeerlinkError(err, 'ERR_INTERNAL');
    }
    this.emit('ready');
  }

  /** Dials a peer by address; resolves with it once its id arrived and the connection is kept. */
  async connect(endpoint: Endpoint): Promise<PeerID> {
    if (this.#state !== 'running') throw new PeerlinkError('ERR_INVALID_STATE', 'connect() needs a started session');
    const conn = new Connection(endpoint, this.#parameters);
    conn.start();
    try {
      await conn.whenReady({ waiting: 'reject', signal: AbortSignal.timeout(this.#o.connectionTimeout) });
    } catch (err) {
      conn.forceCancel();
      throw toPeerlinkError(err, 'ERR_CONNECTION_RESET');
    }
    const link: Link = { conn, direction: 'outgoing', peer: undefined, target: undefined };
    const peer = await this.#run(link);
    if (!peer) throw new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${Endpoint.format(endpoint)} closed before it sent its peer id`);
    return peer;
  }

  /** One message to the given peers (default all); resolves with how many it went to. */
  async send(data: Uint8Array | string, options: { to?: PeerID | readonly PeerID[] } = {}): Promise<number> {
    if (this.#state !== 'running') throw new PeerlinkError(this.#state === 'idle' ? 'ERR_INVALID_STATE' : 'ERR_CLOSED', 'send() needs a running session');
    const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (payload.length > this.#o.maxMessageSize) throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `message of ${payload.length} bytes exceeds maxMessageSize ${this.#o.maxMessageSize}`);
    const to = options.to === undefined ? this.connectedPeers : options.to instanceof PeerID ? [options.to] : options.to;
    const links = to.map((p) => {
      const l = this.#active.get(p.id);
      if (!l) throw new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${p.displayName} is not connected`);
      return l;
    });
    await Promise.all(links.map((l) => l.conn.send(payload)));
    return links.length;
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const t of this.#targets.values()) clearTimeout(t.timer);
    for (const l of [...this.#links]) l.conn.cancel();
    await Promise.allSettled([this.#discovery?.close(), this.#listener?.cancel()]);
    for (const l of [...this.#active.values()]) {
      this.#active.delete((l.peer as PeerID).id);
      this.#app('peer', l.peer as PeerID, 'notConnected');
    }
    this.emit('close');
  }

  // ---- connections ----------------------------------------------------------------------

  /** Sends our id, waits for the peer's, de-duplicates, then delivers messages until it closes. */
  async #run(link: Link): Promise<PeerID | undefined> {
    const { conn } = link;
    this.#links.add(link);
    const ourId = this.#o.idFormat === 'bytes' ? this.peerId.toBytes() : Buffer.from(this.peerId.id.toUpperCase(), 'latin1');
    conn.send(ourId).catch(() => undefined);
    const limits = this.#budgets.limits;
    const deadline = setTimeout(() => conn.forceCancel(), link.direction === 'incoming' ? limits.unidentifiedTimeout : this.#o.connectionTimeout);
    deadline.unref();
    let first: Buffer | null;
    try {
      first = await conn.receiveMessage();
    } catch (err) {
      first = null;
      const e = toPeerlinkError(err, 'ERR_CONNECTION_RESET');
      if (REPORTED_CODES.has(e.code)) this.#app('peerError', e, { endpoint: remoteOf(conn) });
    } finally {
      clearTimeout(deadline);
    }
    const name = link.target?.name ?? '';
    const peer = first ? parseNwfPeerId(first, name || 'peer') : undefined;
    if (!peer) {
      if (first) this.#app('peerError', new PeerlinkError('ERR_PROTOCOL', 'the first message was not a peer id (36 UUID characters or 16 bytes)'), { endpoint: remoteOf(conn) });
      this.#closed(link);
      conn.forceCancel();
      return undefined;
    }
    this.#listener?.identified(conn);
    conn.setMaxMessageSize(this.#o.maxMessageSize);
    if (peer.equals(this.peerId)) {
      if (link.target) link.target.self = true;
      this.#closed(link);
      conn.cancel();
      return undefined;
    }
    if (!this.#active.has(peer.id) && this.#active.size >= limits.maxPeerRecords) {
      this.#budgets.exceeded({ budget: 'maxPeerRecords', peer: peer.id, ...(remoteOf(conn) ? { address: remoteOf(conn) } : {}), detail: 'connection refused: too many peers' });
      this.#closed(link);
      conn.forceCancel();
      return undefined;
    }
    link.peer = name ? peer : peer.withDisplayName(this.#nameOf(peer.id) ?? peer.id.slice(0, 8));
    if (link.target) link.target.peerKey = peer.id;
    const kept = this.#dedup(link);
    if (kept !== link) {
      this.#closed(link);
      conn.cancel();
      return kept.peer;
    }
    void this.#read(link);
    return link.peer;
  }

  /** The seed's rule (docs/session.md "Network framework profile"): returns the link kept. */
  #dedup(link: Link): Link {
    const peer = link.peer as PeerID;
    const existing = this.#active.get(peer.id);
    let keep = link;
    if (existing && existing !== link) {
      let drop: Link;
      if (existing.direction === link.direction) drop = existing; // a reconnect: the newer wins
      else drop = nwfDropDirection(this.peerId, peer) === link.direction ? link : existing;
      keep = drop === link ? existing : link;
      if (drop === existing) {
        this.#active.set(peer.id, link);
        existing.conn.cancel();
      }
      return keep;
    }
    this.#active.set(peer.id, link);
    this.#app('peer', peer, 'connected');
    return keep;
  }

  async #read(link: Link): Promise<void> {
    const { conn } = link;
    const peer = link.peer as PeerID;
    for (;;) {
      let msg: Buffer | null;
      try {
        msg = await conn.receiveMessage();
      } catch (err) {
        const e = toPeerlinkError(err, 'ERR_CONNECTION_RESET');
        if (REPORTED_CODES.has(e.code)) this.#app('peerError', e, { peer, endpoint: remoteOf(conn) });
        break;
      }
      if (msg === null) break;
      if (this.#active.get(peer.id) === link) this.#app('message', msg, peer);
    }
    conn.forceCancel();
    this.#closed(link);
  }

  #closed(link: Link): void {
    if (!this.#links.delete(link)) return;
    const t = link.target;
    if (t) {
      t.busy = false;
      this.#schedule(t);
    }
    const peer = link.peer;
    if (peer && this.#active.get(peer.id) === link) {
      this.#active.delete(peer.id);
      this.#app('peer', peer, 'notConnected');
      for (const target of this.#targets.values()) if (target.peerKey === peer.id) this.#schedule(target);
    }
  }

  #nameOf(key: string): string | undefined {
    for (const t of this.#targets.values()) if (t.peerKey === key) return t.name;
    return undefined;
  }

  // ---- discovery and dialling -----------------------------------------------------------

  #found(f: FoundService): void {
    if (this.#state !== 'running') return;
    const rawId = f.txt.peerID ?? f.txt.peerid;
    const id = typeof rawId === 'string' && UUID_TEXT.test(rawId) ? rawId.toLowerCase() : undefined;
    let t = this.#targets.get(f.name);
    if (!t) {
      if (this.#targets.size >= this.#budgets.limits.maxPeerRecords) {
        this.#budgets.exceeded({ budget: 'maxPeerRecords', detail: `browse result ${f.name} ignored` });
        return;
      }
      t = { name: f.name, endpoint: undefined, addresses: [], port: 0, peerKey: undefined, present: true, busy: false, self: false, attempts: 0, timer: undefined };
      this.#targets.set(f.name, t);
    }
    t.addresses = f.addresses;
    t.port = f.port;
    t.present = true;
    if (id) t.peerKey = id;
    if (id === this.peerId.id) t.self = true;
    if (t.self) return;
    this.#app('found', { instanceName: f.name, ...(id ? { peerId: id } : {}), txt: f.txt });
    this.#schedule(t, Math.floor(Math.random() * 100));
  }

  #lost(f: FoundService): void {
    const t = this.#targets.get(f.name);
    if (!t || t.self) return;
    t.present = false;
    clearTimeout(t.timer);
    t.timer = undefined;
    if (!t.busy && !(t.peerKey && this.#active.has(t.peerKey))) this.#targets.delete(f.name);
    this.#app('lost', { instanceName: f.name, ...(t.peerKey ? { peerId: t.peerKey } : {}), txt: f.txt });
  }

  #schedule(t: Target, delay?: number): void {
    if (this.#state !== 'running' || !this.#o.autoConnect || !t.present || t.self || t.busy || t.timer) return;
    if (t.peerKey && this.#active.has(t.peerKey)) return;
    const wait = delay ?? Math.min(5000, 200 * 2 ** Math.min(t.attempts, 5));
    t.timer = setTimeout(() => {
      t.timer = undefined;
      void this.#dial(t);
    }, wait);
    t.timer.unref();
  }

  async #dial(t: Target): Promise<void> {
    if (this.#state !== 'running' || t.busy || !t.present || (t.peerKey && this.#active.has(t.peerKey))) return;
    const addr = t.addresses[t.attempts % Math.max(1, t.addresses.length)];
    if (addr === undefined || t.port === 0) return;
    t.busy = true;
    t.attempts++;
    const conn = new Connection(Endpoint.hostPort(addr, t.port), this.#parameters);
    conn.start();
    try {
      await conn.whenReady({ waiting: 'reject', signal: AbortSignal.timeout(this.#o.connectionTimeout) });
    } catch (err) {
      conn.forceCancel();
      t.busy = false;
      const e = toPeerlinkError(err, 'ERR_CONNECTION_RESET');
      if (REPORTED_CODES.has(e.code)) this.#app('peerError', e, { endpoint: `${addr} port ${t.port}` });
      this.#schedule(t);
      return;
    }
    if (this.#state !== 'running') {
      conn.forceCancel();
      return;
    }
    const peer = await this.#run({ conn, direction: 'outgoing', peer: undefined, target: t });
    if (peer) t.attempts = 0;
  }
}

function remoteOf(conn: Connection): string | undefined {
  const r = conn.currentPath?.remoteEndpoint;
  return r ? Endpoint.format(r) : undefined;
}

