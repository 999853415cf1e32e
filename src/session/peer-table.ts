/**
 * The session's peers and their control connections: the first message of a connection
 * that arrives at the listener (HELLO or STREAM_BIND), the HELLO/WELCOME handshake,
 * de-duplication (dedup.ts) and the replacement of a connection — a connection claiming a
 * connected peer's id is held while the connection in use is checked, and replaces it only if
 * that check fails — the messages of an active control connection, and the peer state
 * reported to the app once per change. Records are bounded (peer-records.ts).
 * PeerSession owns one; dials that reach `ready` come from the Dialer through the session.
 * Its parts: incoming.ts (connections before their first message), handshake.ts (our HELLO
 * and the handshake deadline), held-claims.ts (claims on a connected peer's place).
 */
import type { EventEmitter } from 'node:events';
import { releaseFreeMemory, type Connection } from '../net/index.js';
import { KeepalivePace } from './keepalive-pace.js';
import { MemoryTrim } from './memory-trim.js';
import { PeerlinkError, type PeerlinkErrorCode } from '../errors.js';
import { PeerID, peerKey } from './peer-id.js';
import { PeerRecord, type PeerState } from './peer-record.js';
import { ControlChannel, type ChannelDirection } from './control-channel.js';
import { decide, isDecider, rolesCompatible, GenerationCounter } from './dedup.js';
import { PeerRecords } from './peer-records.js';
import type { BudgetLedger } from './budgets.js';
import { ByeReason, type HelloMessage, type SessionMessage } from './protocol/messages.js';
import type { ResolvedSessionOptions } from './options.js';
import type { DialTarget } from './dial-target.js';
import { REPORTED_CODES, type Dialer } from './dialer.js';
import type { StreamManager } from './streams.js';
import { emitApp, type PeerErrorInfo, type PeerSessionEvents } from './events.js';
import { log, peerStateChannel } from './diagnostics.js';
import { TRUST_CODES, TrustGate, type VerificationRequest } from './trust/gate.js';
import { isTrustCode } from './trust/messages.js';
import { InvitationDesk, inviteFailure, INVITE_GRACE } from './invitation-desk.js';
import { attachViability, type ViabilitySettings } from './viability.js';
import { IncomingConnections } from './incoming.js';
import { Handshake } from './handshake.js';
import { HeldClaims } from './held-claims.js';
import { remoteOf, traceDecision } from './channel-report.js';

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
  /** The session's budget ledger (unidentified connections, peer records, claims). */
  readonly budgets: BudgetLedger;
  /** A peer record expired or was evicted: anything cached for it must go. */
  recordRemoved(rec: PeerRecord): void;
  /** An incoming connection became a peer's connection: it stops counting as unidentified. */
  identified(conn: Connection): void;
  /** HELLO capability bits of optional features beyond streams/resources (datagrams). */
  extraCapabilities(): number;
  /** A control message in the extension range on a peer's active connection. */
  extension(rec: PeerRecord, ch: ControlChannel, code: number, body: Buffer): void;
  /** The state reported for a peer changed (after its `peer` event). */
  stateChanged?(rec: PeerRecord, state: PeerState): void;
}

export class PeerTable {
  readonly #host: PeerTableHost;
  readonly #events: EventEmitter<PeerSessionEvents>;
  readonly #generations = new GenerationCounter();
  /** Peer records by peer key; a record outlives its connections, until it expires (peer-records.ts). */
  readonly #peers: PeerRecords;
  readonly #sweep: NodeJS.Timeout;
  readonly #channels = new Set<ControlChannel>();
  /** Keepalive interval and timeout for the number of peers (keepalive-pace.ts). */
  readonly #pace: KeepalivePace;
  /** Free heap pages back to the kernel after a burst of connections (memory-trim.ts). */
  readonly #trim: MemoryTrim | undefined;
  /** Connections claiming a connected peer's place, held while the one in use is checked. */
  readonly #held: HeldClaims;
  /** Our HELLO, and the handshake deadline. */
  readonly #handshake: Handshake;
  /** Incoming connections before their first message. */
  readonly #incoming: IncomingConnections;
  /** PKI: ids bound to keys, and first-contact verification (trust/gate.ts). */
  readonly #trust: TrustGate | undefined;
  /** The dial target of each outgoing channel (trust refusals are reported under its name). */
  readonly #dialTargets = new WeakMap<ControlChannel, DialTarget>();
  /** Incoming invitations waiting for the app (autoConnect: false). */
  readonly #desk: InvitationDesk;
  readonly #viability: ViabilitySettings;

  constructor(host: PeerTableHost) {
    this.#host = host;
    const pki = host.options.pki;
    if (pki) {
      this.#trust = new TrustGate({
        identity: pki.identity,
        policy: host.options.security.mode === 'pki' ? host.options.security : {},
        known: pki.known,
        budgets: host.budgets,
        requestVerification: (req: VerificationRequest) => {
          if (host.events.listenerCount('verify') === 0) return false;
          emitApp(host.events, 'verify', req);
          return true;
        },
        reportError: (err, rec, ch) => this.#reportError(err, { peer: rec.peer, endpoint: this.#dialTargets.get(ch)?.describe() ?? remoteOf(ch.connection) }),
        trusted: (rec, ch, how, fingerprint) => {
          if (rec.active !== ch || ch.closed) return;
          this.#trace(ch, rec, 'trusted', how);
          emitApp(host.events, 'trust', rec.peer, { how, fingerprint });
          this.#host.dialer.connected(rec);
          this.#update(rec);
        },
        now: () => performance.now(),
      });
    }
    this.#events = host.events;
    const events = host.events;
    this.#viability = {
      grace: host.options.viabilityGrace,
      holdBytes: host.options.viabilityHoldBytes,
      emit: (peer, viable) => emitApp(events, 'viability', peer, viable),
    };
    this.#incoming = new IncomingConnections({
      budgets: host.budgets,
      closing: () => host.closing(),
      hello: (conn, hello) => this.attach(conn, 'incoming', undefined, hello),
      bind: (conn, bind) => host.streams.onBind(conn, bind),
      reportError: (err, info) => this.#reportError(err, info),
    });
    this.#handshake = new Handshake(host, (key) => this.#peers.get(key)?.lastGeneration ?? 0, (ch) => this.#desk.has(ch));
    this.#held = new HeldClaims({
      budgets: host.budgets,
      maxMessageSize: host.options.maxMessageSize,
      closing: () => host.closing(),
      trace: (ch, rec, decision, reason) => this.#trace(ch, rec, decision, reason),
      decides: (rec) => isDecider(host.options.architecture, host.peerId.toBytes(), rec.peer.toBytes(), host.options.role),
      replace: (rec, ch, target, dead) => this.#accept(rec, ch, target, 'replace', dead),
      reconsider: (rec, ch, target) => this.#identified(rec, ch, target),
      update: (rec) => this.#update(rec),
    });
    this.#desk = new InvitationDesk({
      options: host.options,
      budgets: host.budgets,
      events: host.events,
      closing: () => host.closing(),
      protocolError: (ch, text) => this.#protocolError(ch, text),
      join: (ch, hello, key) => {
        this.#handshake.deadline(ch, host.options.connectionTimeout, false);
        this.#identify(ch, hello, key, undefined);
        const rec = this.#peers.get(key);
        if (rec) rec.accepted = true;
      },
    });
    const o = host.options;
    this.#pace = new KeepalivePace({ interval: o.keepaliveInterval, timeout: o.keepaliveTimeout, rate: o.keepaliveRate }, () => this.activeChannels);
    this.#trim = o.trimMemory ? new MemoryTrim(releaseFreeMemory) : undefined;
    this.#peers = new PeerRecords({ ledger: host.budgets, removed: (rec) => host.recordRemoved(rec) });
    // Expiry also happens when a record is added; this catches a session that stopped meeting new peers.
    this.#sweep = setInterval(() => this.#peers.sweep(), Math.min(host.budgets.limits.absentPeerExpiry, 60_000));
    this.#sweep.unref();
  }

  /** Peer records by peer key (a record may expire once its peer is absent: see recordRemoved). */
  get records(): ReadonlyMap<string, PeerRecord> {
    return this.#peers.map;
  }

  /** Peer records kept (session.stats.peers). */
  get recordCount(): number {
    return this.#peers.size;
  }

  /** Admits a raw incoming TCP connection (the listener's `admit`; incoming.ts). */
  admit(remoteAddress: string): (() => void) | undefined {
    return this.#incoming.admit(remoteAddress);
  }

  /** An incoming connection from one of `addresses` is in its TLS handshake or before its HELLO (dialer.ts). */
  handshakingFrom(addresses: readonly string[]): boolean {
    return addresses.some((a) => this.#incoming.unidentifiedFrom(a) > 0 || (a.includes('%') && this.#incoming.unidentifiedFrom(a.replace(/%.*$/, '')) > 0));
  }

  /** Incoming invitations waiting for the app's answer. */
  get pendingInvitations(): number {
    return this.#desk.size;
  }

  /** Heap trims done after bursts of connections (memory-trim.ts). */
  get memoryTrims(): number {
    return this.#trim?.trims ?? 0;
  }

  /**
   * Control connections that are a connected peer's connection now (the keepalive pace counts
   * them): not handshakes, and with `pki` not connections whose key is still being verified.
   */
  get activeChannels(): number {
    let n = 0;
    for (const c of this.#channels) if (c.phase === 'active' && c.record?.active === c && c.record.state === 'connected') n++;
    return n;
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
    clearInterval(this.#sweep);
    this.#trim?.close();
    this.#incoming.cancelAll();
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

  /** A connection accepted by the listener: its first message says what it is (incoming.ts). */
  onIncoming(conn: Connection): void {
    this.#incoming.onIncoming(conn);
  }

  // ---- control channels -----------------------------------------------------------------

  /** Runs the session handshake on a ready connection (`first`: the HELLO an incoming one already sent). */
  attach(conn: Connection, direction: ChannelDirection, target: DialTarget | undefined, first?: HelloMessage): ControlChannel {
    const o = this.#host.options;
    const ch = new ControlChannel(conn, direction, { maxDataSize: o.maxMessageSize, keepaliveInterval: o.keepaliveInterval, keepaliveTimeout: o.keepaliveTimeout, pace: this.#pace });
    this.#channels.add(ch);
    this.#trim?.note();
    ch.once('closed', () => this.#trim?.note());
    if (target) this.#dialTargets.set(ch, target);
    ch.on('message', (m) => this.#onMessage(ch, m, target));
    // DATA's hot path: no message object, no switch, no rest-argument emit per message.
    const events = this.#events;
    ch.onData = (payload) => {
      const rec = ch.record;
      if (rec?.active !== ch || rec.verifying !== undefined) {
        // A held claim already WELCOMEd by the other side: kept until the claim is settled.
        const held = this.#held.get(ch);
        if (held !== undefined && held.welcome !== 0) this.#held.enqueue(ch, held, payload.length, () => ch.onData?.(payload));
        return; // otherwise it raced the replacement of this connection: dropped
      }
      try {
        events.emit('message', payload, rec.peer, 'reliable');
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    };
    ch.on('closed', (err, bye) => this.#onClosed(ch, err, bye, target));
    // Ours first on a connection we dialled; on an incoming one, once its HELLO is accepted
    // (a claimant held for a liveness check learns nothing and cannot be WELCOMEd meanwhile).
    if (!first) this.#handshake.greet(ch, target);
    const inviting = !first ? target?.invitation : undefined;
    this.#handshake.deadline(ch, inviting ? inviting.timeoutMs + INVITE_GRACE + o.connectionTimeout : o.connectionTimeout, inviting !== undefined);
    ch.start(first);
    return ch;
  }

  /** A dial's HELLO (and INVITE), given to its Connection before it starts (handshake.ts). */
  earlyHello(conn: Connection, target: DialTarget): void {
    this.#handshake.early(conn, target);
  }

  #onMessage(ch: ControlChannel, m: SessionMessage, target: DialTarget | undefined): void {
    if (this.#desk.has(ch)) return this.#desk.onMessage(ch, m);
    const held = this.#held.get(ch);
    if (held !== undefined && held.welcome !== 0 && m.type !== 'hello' && m.type !== 'welcome') {
      this.#held.enqueue(ch, held, m.type === 'data' ? m.payload.length : 64, () => this.#onMessage(ch, m, target));
      return;
    }
    switch (m.type) {
      case 'hello':
        return this.#onHello(ch, m, target);
      case 'welcome':
        return this.#onWelcome(ch, m.generation, target);
      case 'data': {
        const rec = this.#activeRecord(ch, 'DATA');
        if (rec) emitApp(this.#events, 'message', m.payload, rec.peer, 'reliable');
        return;
      }
      case 'dataBatch': {
        const rec = this.#activeRecord(ch, 'DATA_BATCH');
        if (rec) for (const p of m.payloads) emitApp(this.#events, 'message', p, rec.peer, 'reliable');
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
      case 'extension': {
        if (this.#trust && isTrustCode(m.code)) {
          this.#trust.onMessage(ch, m);
          return;
        }
        // Before the handshake, racing a replacement, or from a peer still being verified (PKI):
        // ignored, like unknown types.
        const rec = ch.record;
        if (ch.phase === 'active' && rec?.active === ch && rec.verifying === undefined) this.#host.extension(rec, ch, m.code, m.body);
        return;
      }
      default:
        return this.#protocolError(ch, `${m.type} is not valid on a control connection`);
    }
  }

  /** The record whose active connection `ch` is; a protocol error otherwise. */
  #activeRecord(ch: ControlChannel, what: string): PeerRecord | undefined {
    const rec = ch.record;
    // A peer being verified (PKI first contact) is not trusted yet: what it sends is dropped.
    if (ch.phase === 'active' && rec?.active === ch) return rec.verifying === undefined ? rec : undefined;
    // A message racing the replacement of this connection is dropped, not an error.
    if (ch.phase === 'active' || ch.closed) return undefined;
    this.#protocolError(ch, `${what} before the handshake finished`);
    return undefined;
  }

  #protocolError(ch: ControlChannel, text: string): void {
    const err = new PeerlinkError('ERR_PROTOCOL', `peer broke the session protocol: ${text}`);
    const rec = ch.record;
    this.#reportError(err, { ...(rec ? { peer: rec.peer } : {}), endpoint: remoteOf(ch.connection) });
    ch.close(ByeReason.PROTOCOL_ERROR, text);
  }

  #onHello(ch: ControlChannel, hello: HelloMessage, target: DialTarget | undefined): void {
    const o = this.#host.options;
    const localId = this.#host.peerId;
    if (ch.phase !== 'hello') return this.#protocolError(ch, 'a second HELLO');
    // PKI: the id must be the key's, before anything else is believed (a forged id, or ours).
    const forged = this.#trust?.checkHello(ch, hello);
    if (forged) {
      this.#reportError(forged, { endpoint: remoteOf(ch.connection) });
      ch.close(ByeReason.NOT_TRUSTED, forged.code);
      return;
    }
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
    // autoConnect: false — an incoming connection is let in only by the app (an invitation),
    // unless its peer was let in earlier in this run (a reconnect, a duplicate).
    if (ch.direction === 'incoming' && !o.autoConnect && this.#peers.get(key)?.accepted !== true) return this.#desk.hold(ch, hello, key);
    this.#identify(ch, hello, key, target);
  }

  /** Records `ch` as a connection of the peer its HELLO names, and runs de-duplication. */
  #identify(ch: ControlChannel, hello: HelloMessage, key: string, target: DialTarget | undefined): void {
    let rec = this.#peers.get(key);
    if (!rec) {
      rec = new PeerRecord(key, PeerID.fromBytes(hello.peerId, hello.displayName));
      this.#peers.add(rec);
    }
    ch.hello = hello;
    ch.record = rec;
    ch.phase = 'identified';
    rec.pending.add(ch);
    this.#identified(rec, ch, target);
  }

  /**
   * A connection said it is `rec`'s peer. Nothing in its HELLO is believed (no rename, no
   * nonce, no instance name) until it is accepted: at once when the peer has no live
   * connection, after a failed liveness check of the live one when it claims that one's place,
   * never when it is a duplicate of it. Run again for held claims once their check settled.
   */
  #identified(rec: PeerRecord, ch: ControlChannel, target: DialTarget | undefined): void {
    if (ch.closed || this.#host.closing()) return;
    const o = this.#host.options;
    const hello = ch.hello as HelloMessage;
    const live = rec.active && !rec.active.closed && rec.active !== ch ? rec.active : undefined;
    if (isDecider(o.architecture, this.#host.peerId.toBytes(), hello.peerId, o.role)) {
      const decision = decide(
        live?.hello ? { remoteNonce: live.hello.nonce, generation: live.generation, silentFor: live.silentFor } : undefined,
        hello,
        (live?.keepaliveInterval ?? o.keepaliveInterval) * 1.5 + 500,
      );
      if (decision === 'duplicate') {
        // Our own dial reached the run we are connected to: the target is that peer.
        if (target) this.#host.dialer.learned(rec.key, '', target);
        this.#trace(ch, rec, 'duplicate');
        ch.close(ByeReason.DUPLICATE, 'already connected');
        return;
      }
      if (decision === 'check') return this.#held.hold(rec, ch, target);
      this.#held.delete(ch);
      this.#accept(rec, ch, target, 'accept');
      return;
    }
    // The other side decides, but a WELCOME from whoever claims a connected peer's id proves
    // nothing: while the connection in use looks alive, it is checked first.
    if (live) return this.#held.hold(rec, ch, target);
    const held = this.#held.get(ch);
    this.#held.delete(ch);
    this.#admit(rec, ch, target);
    ch.flush();
    if (held !== undefined && held.welcome !== 0) {
      this.#welcomed(rec, ch, held.welcome, target);
      for (const replay of held.queue) {
        if (ch.closed) break;
        replay();
      }
      return;
    }
    this.#update(rec); // connecting, until the other side WELCOMEs one connection
  }

  /** The claim of `ch` is accepted: its HELLO now speaks for the peer. */
  #admit(rec: PeerRecord, ch: ControlChannel, target: DialTarget | undefined): void {
    const hello = ch.hello as HelloMessage;
    if (rec.peer.displayName !== hello.displayName) rec.peer = rec.peer.withDisplayName(hello.displayName);
    if (hello.instanceName) rec.instanceName = hello.instanceName;
    this.#host.dialer.learned(rec.key, hello.instanceName, target);
    // A new run knows nothing of the generations of the previous one's connections.
    if (rec.remoteNonce && !rec.remoteNonce.equals(hello.nonce)) rec.lastGeneration = 0;
    rec.remoteNonce = hello.nonce;
    this.#peers.seen(rec);
    this.#handshake.send(ch, target);
  }

  /** Deciding side: `ch` becomes the peer's connection (WELCOME). */
  #accept(rec: PeerRecord, ch: ControlChannel, target: DialTarget | undefined, decision: 'accept' | 'replace', dead?: ControlChannel): void {
    this.#admit(rec, ch, target);
    ch.generation = this.#generations.take();
    this.#trace(ch, rec, decision);
    this.#activate(rec, ch, target, dead);
    ch.send({ type: 'welcome', generation: ch.generation }).catch(() => undefined);
    // HELLO and WELCOME leave as one write, before the state change's listeners run.
    ch.flush();
    this.#update(rec);
  }

  #onWelcome(ch: ControlChannel, generation: number, target: DialTarget | undefined): void {
    const o = this.#host.options;
    if (ch.phase !== 'identified' || !ch.hello || isDecider(o.architecture, this.#host.peerId.toBytes(), ch.hello.peerId, o.role)) {
      return this.#protocolError(ch, 'unexpected WELCOME');
    }
    const rec = ch.record;
    if (!rec) return;
    const held = this.#held.get(ch);
    if (held !== undefined) {
      if (held.welcome !== 0) return this.#protocolError(ch, 'a second WELCOME');
      held.welcome = generation; // acted on if the claim is accepted
      return;
    }
    this.#welcomed(rec, ch, generation, target);
  }

  #welcomed(rec: PeerRecord, ch: ControlChannel, generation: number, target: DialTarget | undefined): void {
    ch.generation = generation;
    this.#trace(ch, rec, 'welcomed');
    this.#activate(rec, ch, target);
    this.#update(rec);
  }

  /** The de-duplication trail (channel-report.ts). */
  #trace(ch: ControlChannel, rec: PeerRecord, decision: string, reason?: string): void {
    traceDecision(this.#host.peerId, ch, rec, decision, reason);
  }

  /**
   * Makes `ch` the peer's connection; the one it replaces is closed without a state change
   * (at once, without BYE, when it is `dead`: it failed its liveness check).
   */
  #activate(rec: PeerRecord, ch: ControlChannel, target: DialTarget | undefined, dead?: ControlChannel): void {
    const old = rec.active;
    ch.phase = 'active';
    rec.pending.delete(ch);
    rec.active = ch;
    rec.leftAt = 0;
    rec.accepted = true;
    attachViability(rec, ch, this.#viability);
    this.#host.identified(ch.connection);
    this.#desk.joined(ch, rec.peer);
    if (old && old !== ch) {
      if (old === dead) old.destroy(new PeerlinkError('ERR_KEEPALIVE_TIMEOUT', 'the peer did not answer a liveness check'));
      else old.close(ByeReason.REPLACED, 'replaced by a newer connection');
    }
    if (target) target.attempts = 0;
    // PKI: connected once both sides trust each other (the gate calls trusted()).
    if (this.#trust) this.#trust.begin(rec, ch);
    else this.#host.dialer.connected(rec);
  }

  /** PKI first contacts comparing a code now. */
  get verifying(): number {
    return this.#trust?.verifying ?? 0;
  }

  #onClosed(ch: ControlChannel, err: PeerlinkError | undefined, bye: { reason: number; text: string } | undefined, target: DialTarget | undefined): void {
    this.#channels.delete(ch);
    this.#held.delete(ch);
    this.#desk.closed(ch, err);
    if (target?.invitation && ch.direction === 'outgoing' && !ch.record?.accepted) this.#host.dialer.inviteEnded(target, inviteFailure(err, bye));
    const rec = ch.record;
    if (err && REPORTED_CODES.has(err.code)) this.#reportError(err, { ...(rec ? { peer: rec.peer } : {}), endpoint: remoteOf(ch.connection) });
    else if (bye && (bye.reason === ByeReason.ROLE || bye.reason === ByeReason.VERSION || bye.reason === ByeReason.PROTOCOL_ERROR) && err) {
      this.#reportError(new PeerlinkError('ERR_PROTOCOL', err.message), { ...(rec ? { peer: rec.peer } : {}), endpoint: remoteOf(ch.connection) });
    }
    if (rec) {
      this.#trace(ch, rec, 'closed', bye ? `bye ${bye.reason}${bye.text ? ` ${bye.text}` : ''}` : err?.code);
      rec.pending.delete(ch);
      rec.claims.delete(ch);
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
      // Its absence starts now (expiry counts from here).
      if (rec.absent) this.#peers.seen(rec);
    }
    if (target) this.#host.dialer.channelClosed(target, bye?.reason === ByeReason.SELF, bye?.reason === ByeReason.NOT_TRUSTED ? untrustedError(bye.text) : undefined);
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
    this.#host.stateChanged?.(rec, state);
  }

  #reportError(err: PeerlinkError, info: PeerErrorInfo): void {
    emitApp(this.#events, 'peerError', err, info);
  }
}

/** The error a BYE "not trusted" stands for (its text is the code, from either side). */
function untrustedError(text: string): PeerlinkError {
  const code = TRUST_CODES.has(text as PeerlinkErrorCode) || text === 'ERR_CERT_UNTRUSTED' || text === 'ERR_CERT_REQUIRED' ? (text as PeerlinkErrorCode) : 'ERR_VERIFY_REJECTED';
  return new PeerlinkError(code, `the peer's key was not trusted, or ours was not (${text || 'not trusted'})`);
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
