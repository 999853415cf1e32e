/**
 * The session's outgoing side: which peers to dial (browse results, connect() endpoints),
 * when (back-off per target, hints from TXT and earlier HELLOs), and what a failed dial
 * means (a wrong key is reported and retried slowly; an unreachable peer quietly).
 * A dial that reaches `ready` is handed to the session, which runs the handshake.
 *
 * Budgets (docs/security.md "Discovery"): addresses learned from mDNS are dialled under a
 * back-off per destination address:port, however many instances name it (a stranger's
 * answers must not turn us into a reflector); every dial takes a token of the session-wide
 * `dialsPerSecond` bucket (over it, the dial waits its turn); absent targets expire after
 * `absentPeerExpiry`, and at most `maxPeerRecords` targets are kept (least recently seen
 * evicted first).
 */
import { Connection, Endpoint, type Parameters } from '../net/index.js';
import { PeerlinkError, type PeerlinkErrorCode } from '../errors.js';
import { PeerID } from './peer-id.js';
import type { PeerRecord } from './peer-record.js';
import type { ResolvedSessionOptions } from './options.js';
import { readTxt, type DiscoveredPeer } from './discovery-info.js';
import type { FoundService } from './discovery.js';
import { DialTarget } from './dial-target.js';
import { toPeerlinkError } from './control-channel.js';
import type { PeerErrorInfo } from './events.js';
import type { BudgetLedger } from './budgets.js';
import { DestinationBackoff, DialRate, bareHost } from './dial-budget.js';
import { HandshakePlaces, type PlaceClaim } from './dial-places.js';

/** Codes that mean "this peer will not work with our settings" and deserve a peerError. */
export const REPORTED_CODES = new Set<PeerlinkErrorCode>([
  'ERR_PSK_MISMATCH', 'ERR_PSK_IDENTITY_REJECTED', 'ERR_TLS_HANDSHAKE', 'ERR_CERT_UNTRUSTED', 'ERR_CERT_REQUIRED',
  'ERR_PROTOCOL', 'ERR_MALFORMED_FRAME', 'ERR_MESSAGE_TOO_LARGE',
]);
const SECURITY_CODES = new Set<PeerlinkErrorCode>(['ERR_PSK_MISMATCH', 'ERR_PSK_IDENTITY_REJECTED', 'ERR_TLS_HANDSHAKE', 'ERR_CERT_UNTRUSTED', 'ERR_CERT_REQUIRED']);
/** After a security failure a target is retried this much later (the key will not fix itself soon). */
const SECURITY_RETRY_DELAY = 30_000;
/**
 * A browse target waiting for a handshake place: where it would go (bare address), whether it
 * waits behind the others (Dialer.#dialsSecond, fixed when it was queued), and since when.
 */
interface QueuedDial {
  address: string;
  destination: string | undefined;
  later: boolean;
  since: number;
}

/**
 * A queued dial the pair rule leaves to the other side waits behind our own first dials for at
 * most this long, then takes its turn among them by age: a stranger advertising new instances
 * at new addresses (half of them, to any of us, "first" dials) could otherwise keep an honest
 * peer that never dials us (an advertise-only one, an older version) waiting for ever.
 */
const LATER_DIAL_HOLD = 30_000;

/**
 * The side of a pair that dials second waits this long before dialling a peer it found, so
 * the other side's dial usually wins the race and only one connection is made.
 */
const DECIDER_DIAL_DELAY = 1000;
/**
 * ... and, just after our own service was announced, until this long after the announcement:
 * the other side cannot dial us before it has resolved us, which takes it a moment after our
 * announcement (0.8 s median, 1.4 s p90 with 32 peers starting on two busy cores), plus its
 * dial-rate wait. Without it the side that found the other first dialled first, whichever it was.
 */
const RESOLVE_MARGIN = 3000;
/**
 * A browse target that cannot be reached is reconfirmed (RFC 6762 §10.4) at most this often:
 * a peer killed without goodbyes is then flushed from discovery within seconds and no longer
 * dialled, instead of being dialled until its SRV expires (2 min) while its PTR lives 75 min.
 */
const RECONFIRM_INTERVAL = 15_000;
/**
 * Failures that say nobody is there (a refused port, an unreachable host): only these trigger a
 * reconfirmation. A timeout or reset also happens to a live peer on a starved host (48 peers on
 * two busy cores), whose answers may then be late enough to get it flushed.
 */
const RECONFIRM_CODES = new Set<PeerlinkErrorCode>(['ERR_CONNECTION_REFUSED', 'ERR_PEER_UNREACHABLE']);
/**
 * Times in a row (DECIDER_DIAL_DELAY apart) a dial waits while the peer's own dial is in its
 * handshake here: a TLS handshake took 3–5 s with 32–48 peers starting on two busy cores.
 * Bounded, so a peer whose dial never completes (or a stranger at its address) is still dialled.
 */
const HANDSHAKE_WAITS = 8;
/**
 * Longest a first dial waits for our own service to be announced (see onFound): a registration
 * that never completes must not keep us from dialling.
 */
const ANNOUNCEMENT_WAIT = 10_000;
/** A peer that said BYE (closing) is redialled only after this long, unless it is rediscovered first. */
const LEFT_PEER_REDIAL_DELAY = 10_000;

export interface DialerHost {
  readonly options: ResolvedSessionOptions;
  readonly peerId: PeerID;
  readonly parameters: Parameters;
  /** The session's budgets (limits and refusal counts). */
  readonly budgets: BudgetLedger;
  /** True while the session may dial. */
  running(): boolean;
  record(key: string): PeerRecord | undefined;
  /** Our advertised name (after any rename), when known. */
  registeredName(): string | undefined;
  /** A dial is about to start: our first messages (HELLO) go to the Connection now (sendEarly). */
  prepare?(conn: Connection, target: DialTarget): void;
  /** A dial reached `ready`: run the session handshake on it. */
  attach(conn: Connection, target: DialTarget): void;
  reportError(err: PeerlinkError, info: PeerErrorInfo): void;
  found(info: DiscoveredPeer): void;
  lost(info: DiscoveredPeer): void;
  /** A browse result could not be reached: ask discovery whether it is still there (RFC 6762 §10.4). */
  reconfirm?(instanceName: string): void;
  /** An incoming connection from one of these addresses is in its TLS handshake or before its HELLO. */
  handshakingFrom?(addresses: readonly string[]): boolean;
}

interface Waiter {
  resolve: (p: PeerID) => void;
  reject: (e: PeerlinkError) => void;
}

export class Dialer {
  readonly #host: DialerHost;
  readonly #targets = new Map<string, DialTarget>();
  /** Instance name → peer key, learned from HELLOs: stops dials to peers we already have. */
  readonly #instanceKeys = new Map<string, string>();
  readonly #conns = new Map<DialTarget, Connection>();
  readonly #waiters = new Map<DialTarget, Waiter[]>();
  readonly #rate: DialRate;
  readonly #destinations: DestinationBackoff;
  #sweep: NodeJS.Timeout | undefined;
  /** Dials in their handshake (dial-places.ts), and browse targets waiting for a place (in the order they came; #nextQueued takes first dials before later ones) with where they would go (bare address). */
  readonly #places: HandshakePlaces;
  readonly #queued = new Map<DialTarget, QueuedDial>();
  /** The queue waits for the dial rate (see #nextQueued). */
  #queueTimer: NodeJS.Timeout | undefined;
  /** When our own advertisement was last announced under its final name (ms since epoch). */
  #announcedAt: number | undefined;

  constructor(host: DialerHost) {
    this.#host = host;
    const limits = host.budgets.limits;
    this.#rate = new DialRate(limits.dialsPerSecond);
    this.#destinations = new DestinationBackoff(limits, Date.now, host.options.reconnectMaxDelay);
    this.#places = new HandshakePlaces(limits);
  }

  /** Adds a target (or marks it seen): the most recently seen are kept longest. */
  #touch(t: DialTarget): void {
    this.#targets.delete(t.key);
    this.#targets.set(t.key, t);
    if (this.#targets.size > this.#host.budgets.limits.maxPeerRecords) this.#evict();
    this.#sweep ??= setInterval(() => this.#expire(), Math.min(60_000, Math.max(500, this.#host.budgets.limits.absentPeerExpiry / 2))).unref();
  }

  /** A target that may be forgotten: no dial or connect() depends on it, and the app did not ask for it. */
  #removable(t: DialTarget): boolean {
    return !t.busy && !this.#waiters.has(t) && !(t.manual && t.present);
  }

  #remove(t: DialTarget): void {
    t.cancelTimer();
    this.#queued.delete(t);
    if (this.#targets.get(t.key) === t) this.#targets.delete(t.key);
  }

  /** Over maxPeerRecords: absent targets first, then present ones, least recently seen first. */
  #evict(): void {
    const max = this.#host.budgets.limits.maxPeerRecords;
    for (const absentOnly of [true, false]) {
      for (const t of this.#targets.values()) {
        if (this.#targets.size <= max) return;
        if ((absentOnly && t.present) || !this.#removable(t)) continue;
        this.#remove(t);
        this.#host.budgets.exceeded({ budget: 'maxPeerRecords', detail: `dial target ${t.key} evicted` });
      }
    }
  }

  /** Absent targets expire after absentPeerExpiry. */
  #expire(): void {
    const cutoff = Date.now() - this.#host.budgets.limits.absentPeerExpiry;
    for (const t of [...this.#targets.values()]) if (!t.present && t.absentSince <= cutoff && this.#removable(t)) this.#remove(t);
  }

  /** Reserves a dial from the session-wide dial rate (dialsPerSecond) for a dial made elsewhere (stream dial-backs): ms to wait first. */
  reserveDial(): number {
    return this.#rate.reserve();
  }

  get size(): number {
    return this.#targets.size;
  }

  /** Current browse results (not ourselves). */
  get discovered(): DiscoveredPeer[] {
    return [...this.#targets.values()].filter((t) => t.present && !t.self && t.discovered).map(describe);
  }

  /** The discoveryInfo of a peer, when a browse result is known to be it. */
  discoveryInfoOf(key: string): Record<string, string> {
    for (const t of this.#targets.values()) if (t.peerKey === key && t.discovered) return t.discovered.discoveryInfo;
    return {};
  }

  /** connect(): dial an endpoint until connected (and keep it connected) or cancelled. */
  connect(endpoint: Endpoint, signal: AbortSignal | undefined): Promise<PeerID> {
    const key = `ep:${Endpoint.format(endpoint)}`;
    let t = this.#targets.get(key);
    t ??= new DialTarget(key, endpoint, true);
    this.#touch(t);
    t.present = true;
    t.notBefore = 0;
    const target = t;
    const p = new Promise<PeerID>((resolve, reject) => {
      const list = this.#waiters.get(target) ?? [];
      list.push({ resolve, reject });
      this.#waiters.set(target, list);
      signal?.addEventListener('abort', () => this.#settle(target, new PeerlinkError('ERR_CANCELLED', 'connect() was aborted')), { once: true });
    });
    const rec = target.peerKey ? this.#host.record(target.peerKey) : undefined;
    if (rec?.state === 'connected') this.#settle(target, rec.peer);
    else if (!target.busy && !target.scheduled && this.#host.running()) {
      // Dialled now rather than on the next turn of the event loop: the app asked for it now.
      void this.#dial(target);
    } else this.schedule(target, 0);
    return p;
  }

  /**
   * invite(): one dial carrying an invitation to a browse result (by its instance name) or an
   * endpoint; settles when the peer is connected or the invitation fails (declined, expired).
   * Never redialled: a declined invitation is not repeated behind the app's back.
   */
  invite(to: { instanceName: string } | { endpoint: Endpoint }, invitation: { context: Buffer; timeoutMs: number }, signal: AbortSignal | undefined): Promise<PeerID> {
    let t: DialTarget | undefined;
    if ('endpoint' in to) {
      // Apart from connect()'s `ep:` targets (those are redialled until cancelled; these never are).
      const key = `inv:${Endpoint.format(to.endpoint)}`;
      t = this.#targets.get(key) ?? new DialTarget(key, to.endpoint, false);
      this.#touch(t);
      t.present = true;
    } else {
      t = this.#targets.get(`svc:${to.instanceName}`);
      if (!t || !t.present || t.self) return Promise.reject(new PeerlinkError('ERR_PEER_UNREACHABLE', `no peer "${to.instanceName}" has been found by browsing`));
    }
    const target = t;
    const rec = this.#recordOf(target);
    if (rec?.state === 'connected') return Promise.resolve(rec.peer);
    if (target.invitation || target.busy) return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', `a connection to ${target.describe()} is already being made`));
    target.invitation = invitation;
    const p = new Promise<PeerID>((resolve, reject) => {
      const list = this.#waiters.get(target) ?? [];
      list.push({ resolve, reject });
      this.#waiters.set(target, list);
      signal?.addEventListener('abort', () => {
        this.#conns.get(target)?.forceCancel();
        this.inviteEnded(target, new PeerlinkError('ERR_CANCELLED', 'invite() was aborted'));
      }, { once: true });
    });
    target.cancelTimer();
    void this.#dial(target);
    return p;
  }

  /** An invitation's dial ended without a connection (declined, expired, unreachable): its invite() rejects. */
  inviteEnded(t: DialTarget, err: PeerlinkError): void {
    if (!t.invitation) return;
    t.invitation = undefined;
    if (t.key.startsWith('inv:')) {
      // Nothing depends on it any more: it expires like an absent peer's.
      t.present = false;
      t.absentSince = Date.now();
    }
    this.#settle(t, err);
  }

  /** cancelConnect(): no more dials to this peer until connect() or rediscovery. */
  cancel(peer: PeerID): void {
    for (const t of this.#targets.values()) {
      if (t.peerKey !== peer.id) continue;
      t.cancelTimer();
      if (t.manual) {
        t.present = false;
        t.absentSince = Date.now();
      } else t.notBefore = Number.POSITIVE_INFINITY; // until the peer is rediscovered
      this.#queued.delete(t);
      this.#conns.get(t)?.forceCancel();
      this.#settle(t, new PeerlinkError('ERR_CANCELLED', `connecting to ${peer.displayName} was cancelled`));
    }
  }

  close(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = undefined;
    for (const t of this.#targets.values()) {
      t.cancelTimer();
      this.#settle(t, new PeerlinkError('ERR_CLOSED', 'the session was closed'));
    }
    for (const c of this.#conns.values()) c.forceCancel();
    this.#conns.clear();
    this.#queued.clear();
    if (this.#queueTimer) clearTimeout(this.#queueTimer);
    this.#queueTimer = undefined;
  }

  /** Our own advertisement got its final name. */
  registered(name: string): void {
    this.#announcedAt = Date.now();
    const self = this.#targets.get(`svc:${name}`);
    if (self) self.self = true;
    // First dials held until our name was final (onFound): the pair rule can be applied now.
    for (const t of this.#targets.values()) {
      if (!t.awaitingAnnouncement) continue;
      t.awaitingAnnouncement = false;
      t.cancelTimer();
      if (!t.self && t.discovered) this.schedule(t, this.#firstDialDelay(t));
    }
  }

  #firstDialDelay(t: DialTarget): number {
    const { ours, theirs } = this.#pair(t);
    return firstDialDelay(ours, theirs, Math.random, { now: Date.now(), announcedAt: this.#announcedAt });
  }

  /** The two sides of the pair rule for a target (dialsSecond, firstDialDelay). */
  #pair(t: DialTarget): { ours: { id: PeerID; instanceName: string; advertise: boolean; architecture: string }; theirs: { peerKey: string | undefined; instanceName: string } } {
    const o = this.#host.options;
    return {
      ours: { id: this.#host.peerId, instanceName: this.#host.registeredName() ?? o.instanceName, advertise: o.advertise, architecture: o.architecture },
      theirs: { peerKey: t.discovered?.peerId ?? t.peerKey, instanceName: t.discovered?.instanceName ?? '' },
    };
  }

  /** A HELLO told us which peer an instance name (and a target) belongs to. */
  learned(key: string, instanceName: string, target: DialTarget | undefined): void {
    if (target) target.peerKey = key;
    if (!instanceName) return;
    this.#instanceKeys.delete(instanceName);
    this.#instanceKeys.set(instanceName, key);
    // bounded like the targets: the oldest lesson is forgotten first
    if (this.#instanceKeys.size > this.#host.budgets.limits.maxPeerRecords) this.#instanceKeys.delete(this.#instanceKeys.keys().next().value as string);
    const t = this.#targets.get(`svc:${instanceName}`);
    if (t) t.peerKey = key;
  }

  /** A peer became connected: connect() calls waiting for it resolve. */
  connected(rec: PeerRecord): void {
    // The host its connection came from is where the peer really is, whichever side dialled:
    // those destinations are proven too, so after a flap the redial is never on the slow
    // schedule (our own dials of a pair the peer's dial connected counted as failures).
    const remote = rec.active?.connection.currentPath?.remoteEndpoint;
    const remoteHost = remote?.kind === 'hostPort' ? remote.host : undefined;
    for (const t of this.#targets.values()) {
      if (t.peerKey !== rec.key) continue;
      // the destination led to a peer: its back-off starts over
      if (t.destination !== undefined) this.#destinations.succeeded(t.destination);
      if (remoteHost !== undefined) for (const k of DestinationBackoff.keysAt(t.addresses, t.port, remoteHost)) this.#destinations.succeeded(k);
      t.invitation = undefined;
      // connected through the peer's dial while waiting for a handshake place: no dial is due
      this.#queued.delete(t);
      this.#settle(t, rec.peer);
    }
  }

  /** A peer was lost: dial it again wherever it can be reached. */
  lostPeer(rec: PeerRecord): void {
    for (const t of this.#targets.values()) if (t.peerKey === rec.key) this.schedule(t);
  }

  /** A peer said goodbye: hold off redials of it. */
  peerLeft(rec: PeerRecord): void {
    for (const t of this.#targets.values()) if (t.peerKey === rec.key) t.notBefore = Date.now() + LEFT_PEER_REDIAL_DELAY;
  }

  /** The control connection a target's dial made has closed. */
  channelClosed(t: DialTarget, self: boolean, untrusted?: PeerlinkError): void {
    t.busy = false;
    this.#endDial(t);
    this.#conns.delete(t);
    if (self) t.self = true;
    if (untrusted) {
      // PKI: the key was refused here or there (already reported): like a wrong key, a
      // connect() fails at once and a discovered peer is not asked again for a while.
      if (t.manual) {
        t.present = false;
        t.absentSince = Date.now();
        this.#settle(t, untrusted);
        return;
      }
      t.notBefore = Date.now() + SECURITY_RETRY_DELAY;
    }
    this.schedule(t);
  }

  onFound(f: FoundService): void {
    const host = this.#host;
    if (!host.running()) return;
    const key = `svc:${f.name}`;
    const info = readTxt(f.name, f.txt, f.interfaces, host.options);
    const t = this.#targets.get(key) ?? new DialTarget(key, undefined, false);
    this.#touch(t);
    const wasPresent = t.present && t.discovered !== undefined;
    t.addresses = f.addresses;
    t.port = f.port;
    t.discovered = info;
    t.present = true;
    if (!wasPresent) {
      t.notBefore = 0;
      t.attempts = 0;
    }
    if (info.peerId) t.peerKey = info.peerId;
    else t.peerKey ??= this.#instanceKeys.get(f.name);
    if (info.peerId === host.peerId.id || (host.options.advertise && f.name === host.registeredName())) t.self = true;
    if (t.self) return;
    host.found(describe(t));
    if (wasPresent) return this.schedule(t);
    // Hint only: one side of a pair dials first, so peers that find each other at once make one
    // connection, not two (firstDialDelay). Which side waits is decided by the pair's ids when
    // the peer's is known (TXT, or an earlier HELLO), otherwise by the instance names — both
    // sides know both names, and ids stay out of TXT (dialsSecond). The late dial usually finds the pair
    // connected, or the peer's dial in its handshake here (#dial waits for it).
    // Until our own service is announced its name is not final (clones all start as "vm"), so
    // the rule cannot be applied, and the HELLO of a dial made now would name us by a name the
    // peer never finds (it then cannot tell that its browse result is the peer already
    // connected, and dials it too). Nobody can dial us before then: the first dial waits for it.
    if (host.options.advertise && host.options.architecture === 'star' && this.#announcedAt === undefined) {
      t.awaitingAnnouncement = true;
      return this.schedule(t, ANNOUNCEMENT_WAIT);
    }
    this.schedule(t, this.#firstDialDelay(t));
  }

  onLost(f: FoundService): void {
    const t = this.#targets.get(`svc:${f.name}`);
    if (!t || t.self || !t.present) return;
    t.present = false;
    t.absentSince = Date.now();
    t.cancelTimer();
    this.#host.lost(describe(t));
  }

  /** Plans the next dial of a target, after `delayMs` or its back-off. */
  schedule(t: DialTarget, delayMs?: number): void {
    const o = this.#host.options;
    if (!this.#host.running() || this.#targets.get(t.key) !== t) return;
    if (t.self || !t.present || t.busy || t.scheduled) return;
    if (!t.manual && (!o.autoConnect || !t.discovered?.compatible)) return;
    const rec = this.#recordOf(t);
    if (rec?.state === 'connected') {
      // Connected through another connection (e.g. the peer's own dial won): the target is satisfied.
      this.#settle(t, rec.peer);
      return;
    }
    const wait = Math.max(delayMs ?? t.backoff(o.reconnectInitialDelay, o.reconnectMaxDelay), t.notBefore - Date.now());
    if (!Number.isFinite(wait)) return;
    t.setTimer(() => void this.#dial(t), wait);
  }

  /**
   * The peer behind `t` seems to be dialling us: its connection is in its handshake here — by its
   * HELLO, or from an address no other browse result (nor our own) has: several peers on one host
   * (loopback, or processes sharing an address) make a connection from it anyone's, and 16 of them
   * were always dialling each other.
   */
  #peerDialling(t: DialTarget): boolean {
    if (this.#recordOf(t)?.state === 'connecting') return true;
    // (an invitation is one dial the app asked for now: not held for a connection that may be anyone's)
    if (t.invitation || !t.discovered || !this.#host.handshakingFrom) return false;
    const own = t.addresses.filter((a) => !this.#addressShared(t, a));
    return own.length > 0 && this.#host.handshakingFrom(own);
  }

  #addressShared(t: DialTarget, address: string): boolean {
    for (const o of this.#targets.values()) if (o !== t && o.discovered && o.present && o.addresses.includes(address)) return true;
    return false;
  }

  #recordOf(t: DialTarget): PeerRecord | undefined {
    if (!t.peerKey && t.discovered) t.peerKey = this.#instanceKeys.get(t.discovered.instanceName);
    return t.peerKey ? this.#host.record(t.peerKey) : undefined;
  }

  /**
   * A browse target's next destination: the first of its addresses (from the one after the last
   * tried) whose back-off allows a dial now, or how long until one does.
   */
  #pick(t: DialTarget): { endpoint: Endpoint; key: string } | { wait: number; key: string } | undefined {
    const n = t.addresses.length;
    if (n === 0 || t.port === 0) return undefined;
    let soonest: { wait: number; key: string } | undefined;
    for (let i = 0; i < n; i++) {
      const address = t.addresses[(t.attempts + i) % n] as string;
      const key = DestinationBackoff.key(address, t.port);
      const wait = this.#destinations.wait(key);
      if (wait === 0) return { endpoint: Endpoint.hostPort(address, t.port), key };
      if (!soonest || wait < soonest.wait) soonest = { wait, key };
    }
    return soonest;
  }

  #endDial(t: DialTarget, code?: PeerlinkErrorCode): void {
    if (t.destination !== undefined) this.#destinations.finished(t.destination, code);
    t.destination = undefined;
  }

  async #dial(t: DialTarget, reserved = false): Promise<void> {
    const host = this.#host;
    if (!host.running() || t.busy || t.self || !t.present || this.#targets.get(t.key) !== t || this.#recordOf(t)?.state === 'connected') {
      if (t.invitation) this.inviteEnded(t, new PeerlinkError('ERR_PEER_UNREACHABLE', `${t.describe()} cannot be dialled now`));
      return;
    }
    // The peer's own dial is in its handshake here — its HELLO said so, or a connection from its
    // address has not identified itself yet (TLS): wait for it (a loaded host takes seconds)
    // instead of making the duplicate de-duplication would drop. HANDSHAKE_WAITS times at most.
    if (!t.manual && t.handshakeWaits < HANDSHAKE_WAITS && this.#peerDialling(t)) {
      t.handshakeWaits++;
      t.setTimer(() => void this.#dial(t), DECIDER_DIAL_DELAY);
      return;
    }
    t.handshakeWaits = 0;
    t.awaitingAnnouncement = false;
    let endpoint: Endpoint | undefined;
    let destination: string | undefined;
    if (t.endpoint || t.manual) endpoint = t.nextEndpoint();
    else {
      // learned from mDNS: the destination's back-off, whoever named it
      const pick = this.#pick(t);
      if (!pick) return;
      if ('wait' in pick && t.invitation) return this.inviteEnded(t, new PeerlinkError('ERR_PEER_UNREACHABLE', `${t.describe()} is in dial back-off for ${pick.wait} ms`));
      if ('wait' in pick) {
        const slow = this.#destinations.failures(pick.key) >= host.budgets.limits.dialFailuresBeforeSlow;
        host.budgets.exceeded({ budget: slow ? 'dialBackoffSlow' : 'dialBackoffInitial', address: pick.key.replace('|', ' port '), detail: `dial of ${t.key.slice(4)} deferred ${pick.wait} ms` });
        t.setTimer(() => void this.#dial(t), pick.wait);
        return;
      }
      endpoint = pick.endpoint;
      destination = pick.key;
    }
    if (!endpoint) return;
    // Handshakes at once are bounded (dialsInFlight): 100 peers each dialling 99 at once on two
    // cores made ~5000 TLS handshakes share the CPU, none finished within connectionTimeout, and
    // each timed-out one was dialled again — 82 000 dials and no mesh after 3 minutes. A few at a
    // time finish; the rest wait here (no timer), and a peer that dials us meanwhile makes the
    // wait end in "connected". What the app asked for (connect(), invite()) is not held.
    // Tarpits (a stranger's ports that accept and stall) hold at most dialsInFlightPerAddress
    // places per address, and dialsInFlightSuspect together once each has timed out.
    const where: QueuedDial = { address: endpoint.kind === 'hostPort' ? bareHost(endpoint.host) : '', destination, later: false, since: Date.now() };
    const claim = where.address === '' ? undefined : this.#claim(where);
    const blocker = claim && !t.manual && !t.invitation ? this.#places.blocker(claim) : undefined;
    if (blocker) {
      if (!this.#queued.has(t)) host.budgets.exceeded({ budget: blocker, address: Endpoint.format(endpoint), detail: `dial of ${t.key.slice(4)} waits for a handshake place (${blocker} ${host.budgets.limits[blocker]})` });
      const waiting = this.#queued.get(t);
      // a target already waiting keeps its place, its age and its class
      if (waiting) where.since = waiting.since;
      where.later = waiting?.later ?? this.#dialsSecond(t);
      this.#queued.set(t, where);
      return;
    }
    this.#queued.delete(t);
    if (!reserved) {
      const wait = this.#rate.reserve();
      if (wait > 0) {
        host.budgets.exceeded({ budget: 'dialsPerSecond', address: Endpoint.format(endpoint), detail: `dial deferred ${wait} ms` });
        t.setTimer(() => void this.#dial(t, true), wait);
        return;
      }
    }
    if (destination !== undefined) {
      this.#destinations.started(destination);
      t.destination = destination;
    }
    t.busy = true;
    t.attempts++;
    const conn = new Connection(endpoint, host.parameters);
    this.#conns.set(t, conn);
    let failure: PeerlinkError | undefined;
    const release = this.#places.take(claim);
    try {
      host.prepare?.(conn, t);
      conn.start();
      // No deadline of our own: the Connection's attempt runs under parameters.tcp.connectionTimeout
      // (the same connectionTimeout, options.ts) and ends in waiting or failed when it passes,
      // which rejects this. A second timer and abort signal per dial only cost time.
      await conn.whenReady({ waiting: 'reject' });
    } catch (err) {
      failure = toPeerlinkError(err, 'ERR_CONNECTION_RESET');
    } finally {
      release();
      this.#nextQueued();
    }
    if (failure || !host.running()) {
      conn.forceCancel();
      this.#conns.delete(t);
      t.busy = false;
      this.#endDial(t, failure?.code);
      if (failure && host.running()) this.#failed(t, failure);
      return;
    }
    host.attach(conn, t);
  }

  #claim(where: { address: string; destination: string | undefined }): PlaceClaim {
    const d = where.destination;
    return { address: where.address, suspect: d !== undefined && this.#destinations.suspect(d), proven: d !== undefined && this.#destinations.proven(d) };
  }

  /**
   * Whether a browse result's dial is one the pair rule leaves to the other side (dialsSecond,
   * star): in the queue it waits behind every dial we make first (for up to LATER_DIAL_HOLD),
   * since the peer is meanwhile dialling us from its own queue. Of the 1 000–1 400 pairs of a
   * 100-peer start dialled from both sides, this order alone saved none (it comes into play when
   * a late dial was found before first ones); the balanced pair rule (dialsSecond) halved them.
   */
  #dialsSecond(t: DialTarget): boolean {
    const { ours, theirs } = this.#pair(t);
    if (t.manual || t.invitation || !t.discovered || !ours.advertise || ours.architecture !== 'star') return false;
    return dialsSecond(ours, theirs);
  }

  /**
   * A handshake place is free: the oldest waiting target that still wants a dial takes it — of
   * the dials we make first (and later ones that have waited LATER_DIAL_HOLD), then of the
   * ones the pair rule leaves to the other side (#dialsSecond).
   */
  #nextQueued(): void {
    const now = Date.now();
    this.#nextQueuedOf((w) => !w.later || now - w.since >= LATER_DIAL_HOLD);
    this.#nextQueuedOf((w) => w.later && now - w.since < LATER_DIAL_HOLD);
  }

  #nextQueuedOf(kind: (w: QueuedDial) => boolean): void {
    // #dial takes the place synchronously (before its first await) or not at all (connected
    // meanwhile, in back-off: it returns or sets its timer)
    for (const [t, where] of this.#queued) {
      if (!kind(where)) continue;
      if (this.#places.full || !this.#host.running()) return;
      // its address or the suspect places are taken: later targets may still go (it keeps its turn)
      if (this.#places.blocker(this.#claim(where))) continue;
      // Over the dial rate, the queue waits as a whole: dequeuing would reserve a token per
      // waiting target (a debt connect() and invite() would then wait behind) and lose the order.
      const wait = this.#rate.peek();
      if (wait > 0) {
        this.#queueTimer ??= setTimeout(() => {
          this.#queueTimer = undefined;
          this.#nextQueued();
        }, wait);
        return;
      }
      this.#queued.delete(t);
      if (t.busy || t.scheduled || !t.present || t.self || this.#targets.get(t.key) !== t) continue;
      // held back meanwhile (cancelConnect(), the peer said BYE): back to its own schedule
      if (t.notBefore > Date.now()) {
        this.schedule(t);
        continue;
      }
      void this.#dial(t);
    }
  }

  #failed(t: DialTarget, err: PeerlinkError): void {
    if (t.invitation) {
      if (REPORTED_CODES.has(err.code)) this.#host.reportError(err, { endpoint: t.describe() });
      this.inviteEnded(t, err);
      return;
    }
    const rec = this.#recordOf(t);
    const info: PeerErrorInfo = { endpoint: t.describe(), ...(rec ? { peer: rec.peer } : {}) };
    if (SECURITY_CODES.has(err.code)) {
      this.#host.reportError(err, info);
      if (t.manual) {
        t.present = false;
        t.absentSince = Date.now();
        this.#settle(t, err);
        return;
      }
      t.notBefore = Date.now() + SECURITY_RETRY_DELAY;
    } else if (REPORTED_CODES.has(err.code)) this.#host.reportError(err, info);
    else if (RECONFIRM_CODES.has(err.code) && t.discovered && !t.manual && Date.now() - t.reconfirmedAt >= RECONFIRM_INTERVAL) {
      t.reconfirmedAt = Date.now();
      this.#host.reconfirm?.(t.discovered.instanceName);
    }
    // A refused address says nothing of the instance's other addresses (it may be another
    // host's, stale after a host-name contest): try the next one now, not after the back-off.
    if (RECONFIRM_CODES.has(err.code) && t.discovered && !t.manual && t.addresses.length > 1 && t.attempts % t.addresses.length !== 0) return this.schedule(t, 0);
    this.schedule(t);
  }

  #settle(t: DialTarget, result: PeerID | PeerlinkError): void {
    const list = this.#waiters.get(t);
    if (!list) return;
    this.#waiters.delete(t);
    for (const w of list) {
      if (result instanceof PeerID) w.resolve(result);
      else w.reject(result);
    }
  }
}

/**
 * How long to wait before the first dial of a peer just found: a random 0–99 ms, plus, on the
 * side that lets the other dial first (dialsSecond), DECIDER_DIAL_DELAY — and at least until
 * RESOLVE_MARGIN after our own announcement, since the other side cannot dial us before it has
 * resolved us: processes start seconds apart, and the waiting side often finds the other first
 * (at 32 peers, 40 % of the pairs; a 1 s head start then went to the wrong side).
 * After that it dials anyway (an older peer, or one that cannot reach us, is connected later, not
 * never); #dial still waits while the other side's dial is in its handshake here.
 *
 * A session that does not advertise (`peerlink send`) cannot be found, so no dial from the other
 * side can win the race: it dials at once — waiting would only delay its first connection. (An
 * advertising session whose service is not announced yet holds its first dials until it is:
 * Dialer.onFound.)
 */
export function firstDialDelay(
  ours: { id: PeerID; instanceName: string; advertise: boolean; architecture: string },
  theirs: { peerKey: string | undefined; instanceName: string },
  random: () => number = Math.random,
  timing?: { now: number; announcedAt: number | undefined },
): number {
  if (!ours.advertise) return 0;
  const jitter = Math.floor(random() * 100);
  if (ours.architecture !== 'star' || !dialsSecond(ours, theirs)) return jitter;
  const sinceAnnounced = timing?.announcedAt === undefined ? Number.POSITIVE_INFINITY : timing.now - timing.announcedAt;
  return jitter + Math.max(DECIDER_DIAL_DELAY, RESOLVE_MARGIN - sinceAnnounced);
}

/**
 * True when we should let the other side of a pair dial first (see onFound): by ids when the
 * peer's is known, else by instance names. For any two peers exactly one side answers true
 * (names of one service are unique on a link; ids are unique).
 *
 * Which side that is alternates from pair to pair (pairFlip): "the larger waits" alone gave the
 * session with the smallest name every first dial of its 99 pairs at 100 peers and the largest
 * none, so the few-first-dials sessions reached their second dials while the others were still
 * working through their first ones — 600 of the 1 000 duplicate handshakes of a 100-peer start.
 * Each session now dials about half of its pairs first.
 */
export function dialsSecond(ours: { id: PeerID; instanceName: string }, theirs: { peerKey: string | undefined; instanceName: string }): boolean {
  if (theirs.peerKey) {
    try {
      return larger(ours.id.toBytes(), PeerID.fromString(theirs.peerKey, 'x').toBytes());
    } catch {
      // not an id we can compare: fall back to the names
    }
  }
  return larger(Buffer.from(ours.instanceName), Buffer.from(theirs.instanceName));
}

/** Whether `a` is the side of the pair {a, b} that waits: the larger one, or the smaller when the pair's flip bit is set. */
function larger(a: Uint8Array, b: Uint8Array): boolean {
  const c = Buffer.compare(a, b);
  if (c === 0) return false;
  return c > 0 ? !pairFlip(b, a) : pairFlip(a, b);
}

/**
 * One bit of the unordered pair (`lo` < `hi`), the same on both sides: FNV-1a (32-bit) over lo,
 * a separator byte (0xff: never in UTF-8, and ids are of one length) and hi, folded.
 */
export function pairFlip(lo: Uint8Array, hi: Uint8Array): boolean {
  let h = 0x811c9dc5;
  const eat = (x: number): void => {
    h = Math.imul(h ^ x, 0x01000193) >>> 0;
  };
  for (const x of lo) eat(x);
  eat(0xff);
  for (const x of hi) eat(x);
  return ((h ^ (h >>> 16) ^ (h >>> 8)) & 1) === 1;
}

function describe(t: DialTarget): DiscoveredPeer {
  const d = t.discovered as DiscoveredPeer;
  return t.peerKey ? { ...d, peerId: t.peerKey } : { ...d };
}
