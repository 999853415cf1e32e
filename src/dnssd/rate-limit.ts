/**
 * Limits on what strangers on the link can make the engine send, on top of RFC 6762's
 * per-record rules (§5.2 continuous-query intervals, §6 at most one multicast of a record per
 * second per interface): a token bucket for our one-off queries (resolution, refresh) and one
 * for re-announcements of records someone said goodbye to, a cap on instances being resolved
 * at once per browser, and a cap on the TTL we believe. Probes (§8.1) and goodbyes (§10.1)
 * are exempt: they are ours to send and bounded by our own registrations.
 */
import { fillLimits } from './fill-limits.js';
import type { Clock } from './clock.js';

export interface MdnsLimits {
  /** One-off queries (resolution, cache refresh) per second, engine-wide; each goes out once per address family. Default 10. */
  queriesPerSecond: number;
  /** …and the burst allowed above that rate. Default 20. */
  queryBurst: number;
  /** Re-announcements (records another host said goodbye to) per second, engine-wide. Default 5. */
  reannouncementsPerSecond: number;
  /** Instances one browser resolves at a time; the rest wait their turn. Default 16. */
  maxResolving: number;
  /** Largest TTL believed, seconds: longer ones are cut to this (RFC 6762 §10 recommends 75 min). Default 4500. */
  maxTtl: number;
  /**
   * One-off queries (cache refresh, resolution) per second that what one source address announced
   * can cause (burst 4× this), on top of the engine-wide bucket: a stranger's many records cannot
   * take the tokens an honest peer's refresh needs. Default 2.
   */
  queriesPerSourcePerSecond: number;
  /** Records with a shorter TTL, seconds, get no refresh queries: they live as long as their owner re-announces them. Default 10. */
  minRefreshTtl: number;
}

export const DEFAULT_MDNS_LIMITS: Readonly<MdnsLimits> = Object.freeze({
  queriesPerSecond: 10,
  queryBurst: 20,
  reannouncementsPerSecond: 5,
  maxResolving: 16,
  maxTtl: 4500,
  queriesPerSourcePerSecond: 2,
  minRefreshTtl: 10,
});

/** Sources whose query buckets are remembered; past this, the longest-known one is forgotten (the engine bucket still bounds the total). */
const MAX_SOURCES = 256;

/** Fills in and checks the limits an app gave (ERR_INVALID_ARGUMENT for a non-positive one). */
export function resolveLimits(given: Partial<MdnsLimits> | undefined): MdnsLimits {
  return fillLimits(DEFAULT_MDNS_LIMITS, given, 'mDNS limit');
}

/** A token bucket: `rate` tokens per second, at most `burst` saved up. */
export class TokenBucket {
  #tokens: number;
  #at: number;
  /** Tokens refused so far. */
  refused = 0;

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    readonly rate: number,
    readonly burst: number,
  ) {
    this.#tokens = burst;
    this.#at = clock.now();
  }

  #refill(): void {
    const now = this.clock.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.rate) / 1000);
    this.#at = now;
  }

  /** Takes a token if there is one. */
  take(): boolean {
    this.#refill();
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    this.refused++;
    return false;
  }

  /** Whether no token is missing (nothing taken lately). */
  full(): boolean {
    this.#refill();
    return this.#tokens >= this.burst;
  }

  /** Milliseconds until a token will be there (0: now). */
  wait(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) * 1000) / this.rate);
  }
}

/**
 * One token bucket per source address (one-off queries its records cause), bounded in number:
 * a full bucket is an idle source and is dropped first; past MAX_SOURCES the oldest goes.
 */
export class SourceBuckets {
  readonly #buckets = new Map<string, TokenBucket>();
  /** Tokens refused so far, over every source. */
  refused = 0;

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    readonly rate: number,
    readonly burst: number,
  ) {}

  take(source: string): boolean {
    let b = this.#buckets.get(source);
    if (!b) {
      if (this.#buckets.size >= MAX_SOURCES) this.#prune();
      b = new TokenBucket(this.clock, this.rate, this.burst);
      this.#buckets.set(source, b);
    }
    if (b.take()) return true;
    this.refused++;
    return false;
  }

  #prune(): void {
    for (const [s, b] of this.#buckets) if (b.full()) this.#buckets.delete(s);
    if (this.#buckets.size < MAX_SOURCES) return;
    const oldest = this.#buckets.keys().next().value;
    if (oldest !== undefined) this.#buckets.delete(oldest);
  }
}
