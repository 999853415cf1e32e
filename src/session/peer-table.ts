/**
 * The session's peers and their control connections: the first message of a connection
 * that arrives at the listener (HELLO or STREAM_BIND), the HELLO/WELCOME handshake,
 * de-duplication (dedup.ts) and the replacement of a connection, the messages of an active
 * control connection, and the peer state reported to the app once per change.
 * PeerSession owns one; dials that reach `ready` come from the Dialer through the session.
 */
import type { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { Endpoint, type Connection } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import { PeerID, peerKey } from './peer-id.js';
import { PeerRecord } from './peer-record.js';
import { ControlChannel, toPeerlinkError, type ChannelDirection } from './control-channel.js';
import { decide, isDecider, rolesCompatible, GenerationCounter } from './dedup.js';
import { decodeMessage, encodeMessageBuffer } from './protocol/codec.js';
import { ByeReason, Capability, PROTOCOL_VERSION, type HelloMessage, type SessionMessage } from './protocol/messages.js';
import type { ResolvedSessionOptions } from './options.js';
import type { DialTarget } from './dial-target.js';
import { REPORTED_CODES, type Dialer } from './dialer.js';
import type { StreamManager } from './streams.js';
import { emitApp, type PeerErrorInfo, type PeerSessionEvents } from './events.js';
import { connectionChannel, log, peerStateChannel } from './diagnostics.js';
import type { BudgetLedger } from './budgets.js';
import { UnidentifiedConnections } from './unidentified.js';

export interface PeerTableHost {
  readonly options: ResolvedSessionOptions;
  readonly peerId: PeerID;
  /** The session: app events are emitted on it (DATA's hot path directly). */
  readonly events: EventEmitter<PeerSessionEvents>;
  readonly dialer: Dialer;
  readonly streams: StreamManager;
  listenPort(): number;
  /** Our advertised name (after any rename), when known. */
  registeredName(): string | undefined;
  /** Whether resource streams are accepted (HELLO's RESOURCES capability). */
  acceptsResources(): boolean;
  /** True once close() began: new connections are refused, lost peers are not redialled. */
  closing(): boolean;
  /** The session's budgets and refusal counts. */
  readonly budgets: BudgetLedger;
}

export class PeerTable {
  readonly #host: PeerTableHost;
  readonly #events: EventEmitter<PeerSessionEvents>;
  readonly #nonce = randomBytes(16);
  readonly #generations = new GenerationCounter();
  /** Peer records by peer key; never deleted (a record outlives its connections). */
  readonly #peers = new Map<string, PeerRecord>();
  readonly #channels = new Set<ControlChannel>();
  /** Incoming connections whose first message has not arrived yet. */
  readonly #unattached = new Set<Connection>();
  /** Their budgets: in total and per source address (docs/security.md "Before HELLO"). */
  readonly #unidentified: UnidentifiedConnections;

  constructor(host: PeerTableHost) {
    this.#host = host;
    this.#events = host.events;
    this.#unidentified = new UnidentifiedConnections(host.budgets);
  }

  /** Peer records by peer key; a record, once made, stays (so it may be cached). */
  get records(): ReadonlyMap<string, PeerRecord> {
    return this.#peers;
  }

  /** Control connections open (active or in handshake). */
  get openChannels(): number {
    let open = 0;
    for (const c of this.#channels) if (!c.closed) open++;
    return open;
  }

  /**
   * Session close, first step: unattached connections cancelled, BYE closing on every control
   * connection. Resolves when they are all closed.
   */
  closeChannels(): Promise<PromiseSettledResult<void>[]> {
    for (const c of this.#unattached) c.forceCancel();
    const closing: Array<Promise<void>> = [];
    for (const ch of [...this.#channels]) {
      closing.push(waitClosed(ch.connection));
      ch.close(ByeReason.CLOSING, 'session closed');
    }
    return Promise.allSettled(closing);
  }

  /** Session close, last step: every peer not connected any more is reported notConnected. */
  reportAll(): void {
    for (const rec of this.#peers.values()) this.#update(rec);
  }

  // ---- incoming connections -------------------------------------------------------------

  /**
   * A connection accepted by the listener: its first message says what it is. Until then it
   * is unidentified: budgeted in number, held to a first frame of `firstFrameBytes` (the
   * listener's initialMaxMessageSize) and closed after `unidentifiedTimeout`.
   */
  onIncoming(conn: Connection): void {
    if (this.#host.closing()) {
      conn.forceCancel();
      return;
    }
    const release = this.#unidentified.admit(conn.currentPath?.remoteEndpoint.host ?? '');
    if (release === undefined) {
      conn.forceCancel();
      return;
    }
    this.#unattached.add(conn);
    const timer = setTimeout(() => conn.forceCancel(), this.#host.budgets.limits.unidentifiedTimeout);
    timer.unref();
    conn.receiveMessage().then(
      (frame) => {
        clearTimeout(timer);
        release();
        this.#unattached.delete(conn);
        if (frame === null || this.#host.closing()) return conn.forceCancel();
        // Identified (or refused below): the session's own limit from the next message on.
        conn.setMaxMessageSize(conn.parameters.maxMessageSize);
        let msg: SessionMessage;
        try {
          msg = decodeMessage(frame, { maxDataSize: 0 });
        } catch (err) {
          this.#reportError(toPeerlinkError(err, 'ERR_PROTOCOL'), { endpoint: remoteOf(conn) });
          return conn.forceCancel();
        }
        if (msg.type === 'hello') this.attach(conn, 'incoming', undefined, msg);
        else if (msg.type === 'streamBind') this.#host.streams.onBind(conn, msg);
        else {
          this.#reportError(new PeerlinkError('ERR_PROTOCOL', `a new connection must start with HELLO or STREAM_BIND, not ${msg.type}`), { endpoint: remoteOf(conn) });
          conn.send(encodeMessageBuffer({ type: 'bye', reason: ByeReason.PROTOCOL_ERROR, text: 'expected HELLO' })).catch(() => undefined);
          conn.cancel();
        }
      },
      () => {
        clearTimeout(timer);
        release();
        this.#unattached.delete(conn);
        conn.forceCancel();
      },
    );
  }

  // ---- control channels -----------------------------------------------------------------

  #hello(lastGeneration: number): HelloMessage {
    const o = this.#host.options;
    return {
      type: 'hello',
      version: PROTOCOL_VERSION,
      role: o.role,
      peerId: this.#host.peerId.toBytes(),
      nonce: this.#nonce,
      capabilities: Capability.STREAMS | Capability.DATA_BATCH | (this.#host.acceptsResources() ? Capability.RESOURCES : 0),
      maxMessageSize: o.maxMessageSize,
      listenPort: this.#host.listenPort(),
      lastGeneration,
      displayName: this.#host.peerId.displayName,
      instanceName: o.advertise ? (this.#host.registeredName() ?? o.instanceName) : '',
    };
  }

  /** Runs the session handshake on a ready connection (`first`: the HELLO an incoming one already sent). */
  attach(conn: Connection, direction: ChannelDirection, target: DialTarget | undefined, first?: HelloMessage): ControlChannel {
    const o = this.#host.options;
    const ch = new ControlChannel(conn, direction, { maxDataSize: o.maxMessageSize, keepaliveInterval: o.keepaliveInterval, keepaliveTimeout: o.keepaliveTimeout });
    this.#channels.add(ch);
    ch.on('message', (m) => this.#onMessage(ch, m, target));
    // DATA's hot path: no message object, no switch, no rest-argument emit per message.
    const events = this.#events;
    ch.onData = (payload) => {
      const rec = ch.record;
      if (rec?.active !== ch) return; // raced the replacement of this connection: dropped
      try {
        events.emit('message', payload, rec.peer);
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
        if (rec) emitApp(this.#events, 'message', m.payload, rec.peer);
        return;
      }
      case 'dataBatch': {
        const rec = this.#activeRecord(ch, 'DATA_BATCH');
        if (rec) for (const p of m.payloads) emitApp(this.#events, 'message', p, rec.peer);
        return;
      }
      case 'streamOffer': {
        const rec = this.#activeRecord(ch, 'STREAM_OFFER');
        if (rec) this.#host.streams.onOffer(rec, m);
        return;
      }
      case 'streamReject': {
        const rec = this.#activeRecord(ch, 'STREAM_REJECT');
        if (rec) this.#host.streams.onReject(rec, m.token);
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
    const o = this.#host.options;
    const localId = this.#host.peerId;
    if (ch.phase !== 'hello') return this.#protocolError(ch, 'a second HELLO');
    if (Buffer.compare(hello.peerId, localId.toBytes()) === 0) {
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
    this.#host.dialer.learned(key, hello.instanceName, target);
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
    if (!isDecider(o.architecture, localId.toBytes(), hello.peerId, o.role)) {
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
    const o = this.#host.options;
    if (ch.phase !== 'identified' || !ch.hello || isDecider(o.architecture, this.#host.peerId.toBytes(), ch.hello.peerId, o.role)) {
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
    const localId = this.#host.peerId;
    if (connectionChannel.hasSubscribers) {
      connectionChannel.publish({ session: localId.id, peer: rec.key, decision, generation: ch.generation, direction: ch.direction, ...(reason ? { reason } : {}) });
    }
    log('%s: %s connection #%d %s %s (generation %d)%s', localId.displayName, ch.direction, ch.id, decision, rec.peer.displayName, ch.generation, reason ? `: ${reason}` : '');
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
    this.#host.dialer.connected(rec);
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
          this.#host.dialer.peerLeft(rec);
        }
      }
      this.#update(rec);
    }
    if (target) this.#host.dialer.channelClosed(target, bye?.reason === ByeReason.SELF);
  }

  /** Reports a state change once, and reacts to losing a peer. */
  #update(rec: PeerRecord): void {
    const closing = this.#host.closing();
    const state = closing && rec.state !== 'connected' ? 'notConnected' : rec.state;
    if (state === rec.reported) return;
    rec.reported = state;
    if (state === 'notConnected') {
      this.#host.streams.dropPeer(rec);
      if (!closing) this.#host.dialer.lostPeer(rec);
    }
    if (peerStateChannel.hasSubscribers) peerStateChannel.publish({ session: this.#host.peerId.id, peer: rec.key, displayName: rec.peer.displayName, state });
    log('%s: peer %s %s', this.#host.peerId.displayName, rec.peer.displayName, state);
    emitApp(this.#events, 'peer', rec.peer, state);
  }

  #reportError(err: PeerlinkError, info: PeerErrorInfo): void {
    emitApp(this.#events, 'peerError', err, info);
  }
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
