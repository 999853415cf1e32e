/**
 * Samples the link to every connected peer: one timer per session (not per peer — at 100
 * peers that is 1 timer, not 100), running only while a peer is tracked, unref'd so it never
 * keeps a process alive. Each round reads TCP_INFO of the peer's connections (a getsockopt
 * per connection, a few µs) and feeds its LinkEstimator; PING round trips and datagram
 * counts arrive between rounds. Changes of rating go to `changed` (the session's
 * `linkQuality` event). Timers are injected so the whole loop runs in fake time in tests.
 */
import type { TcpInfo } from '../net/index.js';
import { DEFAULT_LINK_THRESHOLDS, LinkEstimator, type LinkQuality, type LinkQualityReport, type LinkQualityThresholds } from './link-quality.js';

export interface LinkTimers {
  now(): number;
  /** A repeating timer that does not keep the process alive. */
  every(fn: () => void, ms: number): { cancel(): void };
}

export const SYSTEM_LINK_TIMERS: LinkTimers = {
  now: () => performance.now(),
  every(fn, ms) {
    const t = setInterval(fn, ms);
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

/** Where a tracked peer's measurements come from. */
export interface LinkSource {
  /** The connections carrying the peer's traffic, the control connection first; `key` is stable per connection. */
  connections(): Iterable<{ key: object; info: TcpInfo | undefined }>;
  /** How long the oldest PING still unanswered has waited, ms (0: none). */
  pingOverdueMs(): number;
  /** The control connection's path is usable (net Connection.isViable, from PathMonitor). Default true. */
  viable?(): boolean;
  /**
   * The peer's datagram flow counters since it opened (received, and lost by sequence gaps),
   * read each round; the monitor takes the differences. Undefined without a flow.
   */
  datagrams?(): { received: number; lost: number } | undefined;
}

export interface LinkMonitorOptions {
  /** Sampling period, ms. Default 1000. */
  interval?: number;
  thresholds?: LinkQualityThresholds;
  timers?: LinkTimers;
  /** The rating of a peer changed (to 'unknown' when it is no longer tracked). */
  changed: (key: string, quality: LinkQuality, report: LinkQualityReport) => void;
}

interface Tracked {
  estimator: LinkEstimator;
  source: LinkSource;
  /** The datagram counters at the last round. */
  datagrams: { received: number; lost: number } | undefined;
}

export const DEFAULT_LINK_INTERVAL = 1000;

export class LinkQualityMonitor {
  readonly #peers = new Map<string, Tracked>();
  readonly #interval: number;
  readonly #thresholds: LinkQualityThresholds;
  readonly #timers: LinkTimers;
  readonly #changed: LinkMonitorOptions['changed'];
  #timer: { cancel(): void } | undefined;
  #closed = false;

  constructor(opts: LinkMonitorOptions) {
    this.#interval = opts.interval ?? DEFAULT_LINK_INTERVAL;
    this.#thresholds = opts.thresholds ?? DEFAULT_LINK_THRESHOLDS;
    this.#timers = opts.timers ?? SYSTEM_LINK_TIMERS;
    this.#changed = opts.changed;
  }

  /** The sampling timer is running (only while a peer is tracked). */
  get sampling(): boolean {
    return this.#timer !== undefined;
  }

  get size(): number {
    return this.#peers.size;
  }

  /** Starts measuring a connected peer (again: its source is replaced, its estimate kept). */
  track(key: string, source: LinkSource): void {
    if (this.#closed) return;
    const t = this.#peers.get(key);
    if (t) t.source = source;
    else this.#peers.set(key, { estimator: new LinkEstimator(this.#thresholds), source, datagrams: undefined });
    this.#timer ??= this.#timers.every(() => this.sampleAll(), this.#interval);
  }

  /** The peer is no longer connected: its estimate goes ('unknown' reported if it was rated). */
  untrack(key: string): void {
    const t = this.#peers.get(key);
    if (!t) return;
    this.#peers.delete(key);
    if (this.#peers.size === 0) this.#stop();
    const change = t.estimator.reset();
    if (change !== undefined) this.#changed(key, change, t.estimator.report());
  }

  observeRtt(key: string, sampleMs: number): void {
    this.#peers.get(key)?.estimator.observeRtt(sampleMs, this.#timers.now());
  }

  /**
   * Best-effort messages from a peer since the last call: received, and lost (sequence gaps).
   * Call it per received batch or periodically; counts for unknown peers are ignored.
   */
  observeDatagrams(key: string, received: number, lost: number): void {
    this.#peers.get(key)?.estimator.observeDatagrams(received, lost, this.#timers.now());
  }

  report(key: string): LinkQualityReport | undefined {
    return this.#peers.get(key)?.estimator.report();
  }

  /** One sampling round over every tracked peer (the timer's; public for tests). */
  sampleAll(): void {
    const now = this.#timers.now();
    for (const [key, t] of this.#peers) {
      let change: LinkQuality | undefined;
      try {
        this.#datagramRound(t, now);
        change = t.estimator.sample(now, [...t.source.connections()], t.source.pingOverdueMs(), t.source.viable?.() ?? true);
      } catch {
        continue; // a connection closing under us: its next round is clean
      }
      if (change !== undefined) this.#changed(key, change, t.estimator.report());
    }
  }

  #datagramRound(t: Tracked, now: number): void {
    const d = t.source.datagrams?.();
    const prev = t.datagrams;
    t.datagrams = d === undefined ? undefined : { received: d.received, lost: d.lost };
    // Counters that went down belong to a new flow (a new connection): it is the new baseline.
    if (d === undefined || prev === undefined || d.received < prev.received) return;
    // `lost` shrinks when a late datagram fills a gap; that one is in `received` already.
    t.estimator.observeDatagrams(d.received - prev.received, Math.max(0, d.lost - prev.lost), now);
  }

  close(): void {
    this.#closed = true;
    this.#stop();
    this.#peers.clear();
  }

  #stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}
