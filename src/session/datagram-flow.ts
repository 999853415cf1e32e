/**
 * One best-effort flow with one peer: a UDP socket bound to the control connection's local
 * address and connected to the peer's (so the kernel drops datagrams from any other source),
 * the set-up probe, sealing / opening (datagram-seal.ts), the replay window and the receive
 * budget. DatagramManager (datagrams.ts) negotiates flows over the control channel.
 *
 * Set-up (docs/session.md "Datagrams"): once both ports are known, both sides send PROBE
 * datagrams every PROBE_INTERVAL_MS carrying two bits — HEARD (I got one of yours) and
 * CONFIRMED (I know mine reach you). A side is confirmed, and the flow open, when it receives
 * a probe with HEARD; it answers every probe without CONFIRMED. Three probes suffice without
 * loss; a flow that is not confirmed within `openTimeout` (UDP blocked either way) fails, and
 * unreliable sends to the peer reject with ERR_DATAGRAM_UNAVAILABLE — never a silent switch to
 * the reliable channel.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import { PeerlinkError } from '../errors.js';
import type { BudgetLedger } from './budgets.js';
import { ReplayWindow } from './replay-window.js';
import { DatagramKind, MAX_SEQ, ProbeFlags, open, parseHeader, seal, type FlowKeys } from './datagram-seal.js';

export const PROBE_INTERVAL_MS = 200;
/** Bytes waiting in the socket's send queue above which a send is dropped (best-effort: never buffered). */
const SEND_QUEUE_HIGH_WATER = 256 * 1024;

export type DatagramFlowState = 'requested' | 'probing' | 'open' | 'failed' | 'closed';

/** Per-peer datagram counters (session.datagramStats(peer)); cumulative for the flow. */
export interface DatagramFlowStats {
  state: DatagramFlowState;
  /** Datagrams are sealed (AEAD): the session's control channel is TLS. */
  secured: boolean;
  /** Largest payload an unreliable send to this peer may carry. */
  maximumDatagramSize: number;
  /** App datagrams handed to the socket. */
  sent: number;
  /** App datagrams dropped on our side: the socket's send queue was full, or the flow was still opening with 256 waiting. */
  sendDropped: number;
  /** App datagrams received, authenticated and delivered. */
  received: number;
  /** Sequence numbers skipped and not (yet) filled by a late arrival, since the flow opened: datagrams lost on the way (probes included). */
  lost: number;
  /** Delivered after a higher sequence number (reordered on the way). */
  reordered: number;
  /** Dropped as a duplicate of one already received, or older than the replay window. */
  replayed: number;
  /** Dropped as malformed, with a wrong flow tag, or failing authentication (forged or tampered). */
  rejected: number;
  /** Dropped over the datagramsPerSecond / datagramBytesPerSecond budget (before any cryptography). */
  overBudget: number;
  /** Highest sequence number received. */
  highestSeq: number;
}

/** Session-wide totals (session.stats.datagrams), over every flow so far. */
export interface DatagramTotals {
  flows: number;
  sent: number;
  sendDropped: number;
  received: number;
  lost: number;
  replayed: number;
  rejected: number;
  overBudget: number;
}

export function emptyTotals(): DatagramTotals {
  return { flows: 0, sent: 0, sendDropped: 0, received: 0, lost: 0, replayed: 0, rejected: 0, overBudget: 0 };
}

export interface DatagramFlowHost {
  budgets: BudgetLedger;
  /** The peer's key and control-connection address, for budget reports. */
  peerKey: string;
  address: string;
  totals: DatagramTotals;
  deliver(payload: Buffer): void;
  /** The flow failed (set-up timeout, socket error): the manager tells the peer. */
  failed(flow: DatagramFlow): void;
  now(): number;
  openTimeout: number;
  /** The flow entered `state` (observability). */
  stateChanged(flow: DatagramFlow, reason?: string): void;
}

/** Per-second receive budget of one flow: a fixed one-second window (cheap; a burst of up to twice the rate across a window edge is allowed). */
export class RateMeter {
  #windowStart = 0;
  #count = 0;
  #bytes = 0;
  constructor(
    private readonly perSecond: number,
    private readonly bytesPerSecond: number,
  ) {}
  /** The budget refused: 'datagramsPerSecond' or 'datagramBytesPerSecond'; undefined when within it. */
  take(now: number, bytes: number): 'datagramsPerSecond' | 'datagramBytesPerSecond' | undefined {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#count = 0;
      this.#bytes = 0;
    }
    if (this.#count >= this.perSecond) return 'datagramsPerSecond';
    if (this.#bytes + bytes > this.bytesPerSecond) return 'datagramBytesPerSecond';
    this.#count++;
    this.#bytes += bytes;
    return undefined;
  }
}

function unmapped(a: string): string {
  return a.startsWith('::ffff:') && isIPv4(a.slice(7)) ? a.slice(7) : a;
}

export class DatagramFlow {
  state: DatagramFlowState = 'requested';
  /** Who asked for the flow (a simultaneous request may turn a requester into the responder). */
  role: 'requester' | 'responder';
  token: Buffer;
  readonly maximumDatagramSize: number;
  readonly secured: boolean;
  /** Why the flow failed, once it has. */
  failure: PeerlinkError | undefined;
  failedAt = 0;
  /** Sends waiting for the set-up. */
  waiting = 0;
  readonly ready: Promise<void>;
  readonly #host: DatagramFlowHost;
  readonly #socket: Socket;
  readonly #bound: Promise<number>;
  readonly #window = new ReplayWindow(1024);
  readonly #meter: RateMeter;
  #settle: { resolve: () => void; reject: (e: PeerlinkError) => void } | undefined;
  #keys: FlowKeys | undefined;
  #tag: Buffer;
  #seq = 0;
  #heard = false;
  #confirmed = false;
  /** The socket is connected to the peer: the kernel drops datagrams from anywhere else. */
  #connected = false;
  #probeTimer: NodeJS.Timeout | undefined;
  #openTimer: NodeJS.Timeout | undefined;
  readonly #stats = { sent: 0, sendDropped: 0, received: 0, replayed: 0, rejected: 0, overBudget: 0 };
  /** Lost as last reported to the totals (the window's count goes down as late datagrams arrive). */
  #lostReported = 0;

  constructor(host: DatagramFlowHost, opts: { role: 'requester' | 'responder'; token: Buffer; localAddress: string; maximumDatagramSize: number; secured: boolean }) {
    this.#host = host;
    this.role = opts.role;
    this.token = opts.token;
    this.#tag = opts.token.subarray(0, 8);
    this.maximumDatagramSize = opts.maximumDatagramSize;
    this.secured = opts.secured;
    this.#meter = new RateMeter(host.budgets.limits.datagramsPerSecond, host.budgets.limits.datagramBytesPerSecond);
    this.ready = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // Waiters attach later (or never): an unobserved failure is not an unhandled rejection.
    this.ready.catch(() => undefined);
    host.totals.flows++;
    const local = unmapped(opts.localAddress);
    this.#socket = createSocket({ type: isIPv4(local) ? 'udp4' : 'udp6' });
    // ICMP errors (port unreachable) surface as socket errors on a connected UDP socket: not fatal for best effort.
    this.#socket.on('error', () => undefined);
    this.#socket.on('message', (d) => this.#receive(d));
    this.#bound = new Promise<number>((resolve, reject) => {
      const onError = (e: Error): void => reject(new PeerlinkError('ERR_DATAGRAM_UNAVAILABLE', `cannot bind a UDP socket on ${local}: ${e.message}`, { cause: e }));
      this.#socket.once('error', onError);
      this.#socket.bind(0, local, () => {
        this.#socket.removeListener('error', onError);
        resolve(this.#socket.address().port);
      });
    });
    this.#bound.catch((e: PeerlinkError) => this.fail(e));
  }

  /** The local UDP port, once bound. */
  bound(): Promise<number> {
    return this.#bound;
  }

  /**
   * Both ports known: connect the socket to the peer, take the keys, and probe until the
   * flow is confirmed or `openTimeout` passes.
   */
  start(remoteAddress: string, remotePort: number, keys: FlowKeys | undefined): void {
    if (this.state !== 'requested') return;
    this.state = 'probing';
    this.#host.stateChanged(this);
    this.#keys = keys;
    this.#tag = this.token.subarray(0, 8);
    const remote = unmapped(remoteAddress);
    const onError = (e: Error): void => this.fail(new PeerlinkError('ERR_DATAGRAM_UNAVAILABLE', `cannot connect the datagram socket to ${remote} port ${remotePort}: ${e.message}`, { cause: e }));
    this.#socket.once('error', onError);
    try {
      this.#socket.connect(remotePort, remote, () => {
        this.#socket.removeListener('error', onError);
        if (this.state !== 'probing') return;
        this.#connected = true;
        this.#probe();
        this.#probeTimer = setInterval(() => this.#probe(), PROBE_INTERVAL_MS);
        this.#probeTimer.unref();
      });
    } catch (err) {
      onError(err as Error);
      return;
    }
    this.#openTimer = setTimeout(() => {
      if (this.state === 'probing') this.fail(new PeerlinkError('ERR_DATAGRAM_UNAVAILABLE', `no datagram got through to the peer within ${this.#host.openTimeout} ms: UDP is blocked on the path (or the peer is not reading)`));
    }, this.#host.openTimeout);
    this.#openTimer.unref();
  }

  /** Sends one app datagram on an open flow (the caller checked state and size). */
  send(payload: Buffer): void {
    if (this.state !== 'open' || this.#seq >= MAX_SEQ) return;
    if (this.#socket.getSendQueueSize() > SEND_QUEUE_HIGH_WATER) {
      this.countSendDropped();
      return;
    }
    this.#socket.send(seal(DatagramKind.DATA, this.#tag, ++this.#seq, payload, this.#keys?.send));
    this.#stats.sent++;
    this.#host.totals.sent++;
  }

  countSendDropped(): void {
    this.#stats.sendDropped++;
    this.#host.totals.sendDropped++;
  }

  #probe(): void {
    if (this.state !== 'probing' && this.state !== 'open') return;
    const flags = (this.#heard ? ProbeFlags.HEARD : 0) | (this.#confirmed ? ProbeFlags.CONFIRMED : 0);
    this.#socket.send(seal(DatagramKind.PROBE, this.#tag, ++this.#seq, Buffer.of(flags), this.#keys?.send));
  }

  #receive(d: Buffer): void {
    // Until connect() completed any source could reach the socket (and before start() there are no keys).
    if (!this.#connected || (this.state !== 'probing' && this.state !== 'open')) return;
    const host = this.#host;
    const refused = this.#meter.take(host.now(), d.length);
    if (refused !== undefined) {
      this.#stats.overBudget++;
      host.totals.overBudget++;
      host.budgets.exceeded({ budget: refused, peer: host.peerKey, address: host.address, detail: 'datagram dropped' });
      return;
    }
    const h = parseHeader(d, this.#tag, this.secured);
    if (h === undefined) return this.#reject();
    if (this.#window.check(h.seq) !== 'ok') {
      this.#stats.replayed++;
      host.totals.replayed++;
      return;
    }
    const payload = open(d, h.seq, this.#keys?.receive);
    if (payload === undefined) return this.#reject();
    // Only now (authenticated, RFC 4303 §3.4.3) does the datagram move the window.
    this.#window.accept(h.seq);
    const lost = this.#window.lost;
    host.totals.lost += lost - this.#lostReported;
    this.#lostReported = lost;
    this.#heard = true;
    if (h.kind === DatagramKind.PROBE) {
      const flags = payload.length === 1 ? (payload[0] as number) : 0;
      if ((flags & ProbeFlags.HEARD) !== 0 && !this.#confirmed) this.#confirm();
      if ((flags & ProbeFlags.CONFIRMED) === 0) this.#probe();
      return;
    }
    this.#stats.received++;
    host.totals.received++;
    host.deliver(payload);
  }

  #reject(): void {
    this.#stats.rejected++;
    this.#host.totals.rejected++;
  }

  #confirm(): void {
    this.#confirmed = true;
    if (this.state !== 'probing') return;
    // Gaps so far are probes sent before our socket was connected (and set-up loss): not the
    // path's loss, which is what `lost` is for (link quality). Counted from here on.
    this.#host.totals.lost -= this.#lostReported;
    this.#lostReported = 0;
    this.#window.lost = 0;
    this.state = 'open';
    this.#host.stateChanged(this);
    this.#stopTimers();
    this.#settle?.resolve();
  }

  #stopTimers(): void {
    if (this.#probeTimer) clearInterval(this.#probeTimer);
    if (this.#openTimer) clearTimeout(this.#openTimer);
    this.#probeTimer = this.#openTimer = undefined;
  }

  /** The flow cannot be used: sends reject with `err` until the manager retries. */
  fail(err: PeerlinkError): void {
    if (this.state === 'failed' || this.state === 'closed') return;
    this.state = 'failed';
    this.failure = err;
    this.failedAt = this.#host.now();
    this.#host.stateChanged(this, err.message);
    this.#release();
    this.#settle?.reject(err);
    this.#host.failed(this);
  }

  /** The flow ends with its control connection (or the session). */
  close(): void {
    if (this.state === 'closed') return;
    const wasFailed = this.state === 'failed';
    this.state = 'closed';
    this.#host.stateChanged(this);
    if (!wasFailed) {
      this.#release();
      this.#settle?.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', 'the peer disconnected before the datagram flow was set up'));
    }
  }

  #release(): void {
    this.#stopTimers();
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
  }

  get stats(): DatagramFlowStats {
    return {
      state: this.state,
      secured: this.secured,
      maximumDatagramSize: this.maximumDatagramSize,
      ...this.#stats,
      lost: this.#window.lost,
      reordered: this.#window.reordered,
      highestSeq: this.#window.highest,
    };
  }
}
