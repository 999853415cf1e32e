/**
 * Dial budgets (docs/security.md "Discovery"): what a stranger who can put answers on the
 * link can make the session dial.
 *
 * - Per destination (address:port learned from mDNS, however many instances name it): a
 *   dial counts as a failure until the peer behind it is connected; after the n-th failure
 *   the next try waits `dialBackoffInitial × 2^(n-1)`, and from `dialFailuresBeforeSlow`
 *   failures on, `dialBackoffSlow`. One dial in flight per destination.
 * - A dial that timed out (no connection within connectionTimeout) in the first
 *   TIMEOUT_GRACE after a destination's first dial is not such a failure: a live peer on a
 *   starved host times out too (48 peers on two cores). Those dials wait
 *   `dialBackoffInitial × 2^(k-1)` after the k-th timeout ended, at most TIMEOUT_BACKOFF_MAX;
 *   after the grace period the timeouts count as failures (a SYN-dropping stranger's address is
 *   then on the slow schedule, after ~8 dials instead of 4).
 * - Whole session: a token bucket of `dialsPerSecond` (burst of the same size). A dial over
 *   it waits its turn (a reservation), it is not dropped; the queue is bounded because each
 *   dial target has at most one dial planned and targets are capped (maxPeerRecords).
 *
 * Time is injected (`now`) so the rules are tested in fake time.
 */
import type { PeerlinkErrorCode } from '../errors.js';
import type { SessionBudgets } from './budgets.js';

/** How long after a destination's first dial its timeouts are not failures (see above). */
export const TIMEOUT_GRACE = 120_000;
/** The longest wait after a timeout during TIMEOUT_GRACE (a dial that timed out already took connectionTimeout). */
export const TIMEOUT_BACKOFF_MAX = 8000;

/** An address as one host: lower case, without an IPv6 zone or an IPv4-mapped prefix. */
export function bareHost(a: string): string {
  const h = a.toLowerCase().replace(/%.*$/, '');
  return h.startsWith('::ffff:') && h.includes('.') ? h.slice(7) : h;
}

/** A token bucket whose reservations queue behind each other. */
export class DialRate {
  #tokens: number;
  #at: number;

  constructor(
    readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.#tokens = perSecond;
    this.#at = now();
  }

  /** Milliseconds until a dial could be made without waiting (0: a token is there), reserving nothing. */
  peek(): number {
    const tokens = Math.min(this.perSecond, this.#tokens + ((this.now() - this.#at) * this.perSecond) / 1000);
    return tokens >= 1 ? 0 : Math.ceil(((1 - tokens) * 1000) / this.perSecond);
  }

  /** Reserves the next dial: milliseconds to wait before making it (0: now). */
  reserve(): number {
    const now = this.now();
    this.#tokens = Math.min(this.perSecond, this.#tokens + ((now - this.#at) * this.perSecond) / 1000);
    this.#at = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.perSecond);
  }
}

interface Destination {
  failures: number;
  /** Dials that timed out during TIMEOUT_GRACE (not in `failures`). */
  timeouts: number;
  /** The first dial (ms). */
  firstAt: number;
  /** A peer was connected through it once: a real peer, not a stranger's target (see delayAfter). */
  proven: boolean;
  /** No dial before this time (ms). */
  nextAt: number;
  inFlight: boolean;
  /** Its last dial timed out (see suspect()). */
  timedOut: boolean;
}

type BackoffLimits = Pick<SessionBudgets, 'dialBackoffInitial' | 'dialFailuresBeforeSlow' | 'dialBackoffSlow' | 'maxPeerRecords'>;

/** Per-destination back-off for addresses learned from mDNS. Bounded: least recently dialled forgotten first. */
export class DestinationBackoff {
  readonly #dests = new Map<string, Destination>();

  /**
   * @param provenMaxDelay the longest wait at a destination that once led to a connected peer
   *   (the session's reconnect maxDelay): a peer back after a link flap or a restart on the same
   *   port is dialled again within seconds, never once a minute.
   */
  constructor(
    private readonly limits: BackoffLimits,
    private readonly now: () => number = Date.now,
    private readonly provenMaxDelay = 5000,
  ) {}

  static key(address: string, port: number): string {
    return `${address}|${port}`;
  }

  /**
   * The destinations among a browse result's `addresses` (at `port`) that are the host a
   * connected peer's connection came from (`remoteHost`, as the socket reports it): the peer is
   * really there, whichever side dialled. IPv6 zones and IPv4-mapped prefixes are ignored.
   */
  static keysAt(addresses: readonly string[], port: number, remoteHost: string): string[] {
    const host = bareHost(remoteHost);
    return port === 0 ? [] : addresses.filter((a) => bareHost(a) === host).map((a) => DestinationBackoff.key(a, port));
  }

  get size(): number {
    return this.#dests.size;
  }

  /** Milliseconds before `key` may be dialled (0: now); while a dial there is in flight, a retry delay. */
  wait(key: string): number {
    const d = this.#dests.get(key);
    if (!d) return 0;
    const left = Math.max(0, d.nextAt - this.now());
    if (d.inFlight) return Math.max(left, this.limits.dialBackoffInitial);
    return left;
  }

  /** Failures so far at `key` (timeouts in the grace period excepted). */
  failures(key: string): number {
    const d = this.#dests.get(key);
    return d ? this.#counted(d) : 0;
  }

  /** Failures that set the back-off: after TIMEOUT_GRACE, the timeouts too. */
  #counted(d: Destination): number {
    return d.failures + (this.now() - d.firstAt < TIMEOUT_GRACE ? 0 : d.timeouts);
  }

  /** A dial to `key` starts. It counts as a failure until `succeeded(key)`, or `finished` says it timed out. */
  started(key: string): void {
    const d = this.#dests.get(key) ?? { failures: 0, timeouts: 0, firstAt: this.now(), proven: false, nextAt: 0, inFlight: false, timedOut: false };
    this.#dests.delete(key);
    d.failures++;
    d.inFlight = true;
    const n = this.#counted(d);
    d.nextAt = this.now() + (d.proven ? Math.min(this.provenMaxDelay, this.delayAfter(n)) : this.delayAfter(n));
    this.#dests.set(key, d);
    while (this.#dests.size > this.limits.maxPeerRecords) {
      const oldest = this.#dests.keys().next().value as string;
      this.#dests.delete(oldest);
    }
  }

  /**
   * The dial to `key` ended (connection failed with `code`, or its control connection closed).
   * A timeout during TIMEOUT_GRACE is taken back from the failures: the next dial waits
   * dialBackoffInitial × 2^(k-1) (at most TIMEOUT_BACKOFF_MAX) from now after the k-th.
   */
  finished(key: string, code?: PeerlinkErrorCode): void {
    const d = this.#dests.get(key);
    if (!d) return;
    d.inFlight = false;
    d.timedOut = code === 'ERR_CONNECTION_TIMEOUT' && !d.proven;
    if (code !== 'ERR_CONNECTION_TIMEOUT' || d.proven || d.failures === 0 || this.now() - d.firstAt >= TIMEOUT_GRACE) return;
    d.failures--;
    d.timeouts++;
    const l = this.limits;
    d.nextAt = this.now() + Math.min(TIMEOUT_BACKOFF_MAX, l.dialBackoffSlow, l.dialBackoffInitial * 2 ** Math.min(16, d.timeouts - 1));
  }

  /** A peer became connected through `key`: its back-off starts over, and it is proven (never the slow schedule). */
  succeeded(key: string): void {
    const d = this.#dests.get(key);
    if (!d) {
      this.#dests.set(key, { failures: 0, timeouts: 0, firstAt: this.now(), proven: true, nextAt: 0, inFlight: false, timedOut: false });
      return;
    }
    d.failures = 0;
    d.timeouts = 0;
    d.proven = true;
    d.timedOut = false;
    d.nextAt = 0;
  }

  /**
   * Its last dial timed out and no peer was ever connected through it: what a tarpit (accepts
   * TCP, stalls the handshake) looks like. Such dials share dialsInFlightSuspect places.
   */
  suspect(key: string): boolean {
    return this.#dests.get(key)?.timedOut === true;
  }

  /** A peer was connected through it once (see succeeded). */
  proven(key: string): boolean {
    return this.#dests.get(key)?.proven === true;
  }

  /** Wait after the n-th failure: doubling from dialBackoffInitial, then dialBackoffSlow. */
  delayAfter(failures: number): number {
    const l = this.limits;
    if (failures >= l.dialFailuresBeforeSlow) return l.dialBackoffSlow;
    return Math.min(l.dialBackoffSlow, l.dialBackoffInitial * 2 ** Math.max(0, failures - 1));
  }
}
