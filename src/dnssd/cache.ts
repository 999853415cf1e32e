/**
 * The querier's record cache (RFC 6762 §5.2, §10), one entry per record per interface:
 * expiry at TTL, refresh points at 80/85/90/95 % of the TTL (+0-2 % jitter; the querier asks
 * for a host's records due together in one query and skips points another host asked for), goodbyes
 * (TTL 0) kept for one more second, and the cache-flush one-second rule. Bounded: past
 * `maxRecords` the entries closest to expiry are evicted, and no record is kept longer than
 * `maxTtl` seconds whatever TTL its sender chose (RFC 6762 §10 recommends 75 minutes for
 * the longest-lived records), so a stranger's answer does not keep us busy for years. Records
 * with a TTL under `minRefreshTtl` get no refresh points at all.
 */
import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from './clock.js';
import { nameKey } from './codec/name.js';
import { recordKey, rrsetKey } from './codec/records.js';
import { rrTypeNumber, type ResourceRecord } from './codec/types.js';

export const REFRESH_POINTS = [0.8, 0.85, 0.9, 0.95] as const;
const GOODBYE_GRACE_MS = 1000;

export interface CachedRecord {
  record: ResourceRecord;
  iface: string;
  receivedAt: number;
  /** Arrival order: packets handled in the same millisecond still have an order. */
  seq: number;
  expiresAt: number;
  /** Remaining refresh times (absolute ms), soonest first. */
  refreshAt: number[];
  /** The address it was last received from ('' when not known): eviction is per source. */
  source: string;
  /**
   * The distinct addresses it was received from, latest last, at most {@link MAX_SOURCES}: a host
   * sends the same record over IPv4 and IPv6 (from two source addresses), which is what ties its
   * addresses of both families together (service-instance.ts).
   */
  sources: string[];
}

/** Distinct sources remembered per cached record (bounded: a record is a stranger's to repeat). */
export const MAX_SOURCES = 4;

export interface CacheEvents {
  added: [CachedRecord];
  /** A record already cached was received again (it may now be the newest of its set). */
  updated: [CachedRecord];
  removed: [CachedRecord];
  /** A refresh point was reached: query again if the record is still wanted. */
  refresh: [CachedRecord];
}

export class RecordCache extends EventEmitter<CacheEvents> {
  /** `${iface}|${nameKey}` -> recordKey -> entry: lookups are by name, so index by name. */
  private readonly sets = new Map<string, Map<string, CachedRecord>>();
  private readonly ifaces = new Set<string>();
  private count = 0;
  private seq = 0;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;

  constructor(
    private readonly clock: Clock,
    readonly maxRecords = 4096,
    readonly maxTtl = 4500,
    /** Records with a TTL under this (seconds) get no refresh points (rate-limit.ts `minRefreshTtl`). */
    readonly minRefreshTtl = 0,
  ) {
    super();
  }

  get size(): number {
    return this.count;
  }

  /**
   * Adds the records of one received response. Cache-flush records make older members of
   * their RRSet (received more than a second ago) expire in one second.
   */
  addResponse(records: readonly ResourceRecord[], iface: string, source = ''): void {
    const now = this.clock.now();
    const flushSets = new Map<string, ResourceRecord>();
    for (const r of records) {
      this.put(r, iface, now, source);
      if (r.cacheFlush && r.ttl > 0) flushSets.set(rrsetKey(r), r);
    }
    for (const [rrset, r] of flushSets) {
      const set = this.sets.get(`${iface}|${nameKey(r.name)}`);
      if (!set) continue;
      for (const e of set.values()) {
        if (rrsetKey(e.record) !== rrset) continue;
        if (e.receivedAt < now - 1000 && e.expiresAt > now + GOODBYE_GRACE_MS) {
          e.expiresAt = now + GOODBYE_GRACE_MS;
          e.refreshAt = [];
          this.arm(e.expiresAt);
        }
      }
    }
  }

  private put(given: ResourceRecord, iface: string, now: number, source: string): void {
    const r = given.ttl > this.maxTtl ? { ...given, ttl: this.maxTtl } : given;
    const setKey = `${iface}|${nameKey(r.name)}`;
    const k = recordKey(r);
    let set = this.sets.get(setKey);
    const existing = set?.get(k);
    if (r.ttl === 0) {
      // goodbye: keep it one more second so a quick re-announcement does not flap (§10.1)
      if (existing) {
        existing.expiresAt = Math.min(existing.expiresAt, now + GOODBYE_GRACE_MS);
        existing.refreshAt = [];
        this.arm(existing.expiresAt);
      }
      return;
    }
    const ttlMs = Math.min(r.ttl, 0x7fffffff) * 1000;
    // RFC 6762 §5.2 asks for refreshes at 80-95 % of the TTL: four queries a second for a 1 s
    // record. A TTL that short is no honest responder's choice (§10: 120 s or 75 min); such a
    // record lives as long as its owner announces it again, and costs us no query.
    const refreshAt = r.ttl < this.minRefreshTtl ? [] : REFRESH_POINTS.map((f) => now + ttlMs * (f + this.clock.random() * 0.02));
    if (existing) {
      existing.record = r;
      existing.source = source;
      if (!existing.sources.includes(source)) {
        existing.sources.push(source);
        if (existing.sources.length > MAX_SOURCES) existing.sources.shift();
      }
      existing.receivedAt = now;
      existing.seq = ++this.seq;
      existing.expiresAt = now + ttlMs;
      existing.refreshAt = refreshAt;
      this.arm(refreshAt[0] ?? existing.expiresAt);
      this.emit('updated', existing);
      return;
    }
    if (this.count >= this.maxRecords) this.evict();
    if (!set) {
      set = new Map();
      this.sets.set(setKey, set);
      this.ifaces.add(iface);
    }
    const e: CachedRecord = { record: r, iface, receivedAt: now, seq: ++this.seq, expiresAt: now + ttlMs, refreshAt, source, sources: [source] };
    set.set(k, e);
    this.count++;
    this.arm(refreshAt[0] ?? e.expiresAt);
    this.emit('added', e);
  }

  /** Live records for a name and type (RRType.ANY for all) on an interface (or all). */
  get(name: string, type: number, iface?: string): CachedRecord[] {
    const now = this.clock.now();
    const out: CachedRecord[] = [];
    const lname = nameKey(name);
    for (const i of iface !== undefined ? [iface] : this.ifaces) {
      const set = this.sets.get(`${i}|${lname}`);
      if (!set) continue;
      for (const e of set.values()) {
        if (e.expiresAt <= now) continue;
        if (type !== 255 && rrTypeNumber(e.record) !== type) continue;
        out.push(e);
      }
    }
    return out;
  }

  /**
   * Whether `record` is among `knownAnswers(record.name, its type, iface)`: cached, with more
   * than half its TTL left (§7.1). One lookup, where comparing with the list is O(list).
   */
  isKnownAnswer(record: ResourceRecord, iface: string): boolean {
    const e = this.sets.get(`${iface}|${nameKey(record.name)}`)?.get(recordKey(record));
    if (e === undefined) return false;
    return e.expiresAt - this.clock.now() > (e.record.ttl * 1000) / 2;
  }

  /** Known answers for a question: records with more than half their TTL left (§7.1). */
  knownAnswers(name: string, type: number, iface: string): ResourceRecord[] {
    const now = this.clock.now();
    return this.get(name, type, iface)
      .filter((e) => e.expiresAt - now > (e.record.ttl * 1000) / 2)
      .map((e) => ({ ...e.record, ttl: Math.max(1, Math.floor((e.expiresAt - now) / 1000)) }));
  }

  /**
   * Live records on an interface whose next refresh point is at or before `until` (RFC 6762
   * §5.2): the querier asks for those of one host together. A scan of the interface's records,
   * done once per batch of refresh points reached, not per record.
   */
  refreshDueBy(iface: string, until: number): CachedRecord[] {
    const now = this.clock.now();
    const out: CachedRecord[] = [];
    for (const [sk, set] of this.sets) {
      if (!sk.startsWith(`${iface}|`)) continue;
      for (const e of set.values()) {
        const next = e.refreshAt[0];
        if (next !== undefined && next <= until && e.expiresAt > now) out.push(e);
      }
    }
    return out;
  }

  /**
   * Drops a record's refresh points up to `until`: it was asked for already (with another
   * record of its host, or by another host, §7.3), so the point would ask again for nothing.
   * If no answer comes, its next point asks.
   */
  skipRefresh(e: CachedRecord, until: number): void {
    while (e.refreshAt.length > 0 && (e.refreshAt[0] as number) <= until) e.refreshAt.shift();
    this.arm(e.refreshAt[0] ?? e.expiresAt);
  }

  /**
   * Flushes a record that failed reconfirmation (RFC 6762 §10.4, §10.5): it expires after the
   * same one-second grace as a goodbye. With `pointers`, PTRs on the interface that point at the
   * record's name go too (an instance whose SRV nobody answers is gone, whatever its PTR's TTL).
   * Returns how many records were flushed.
   */
  flush(record: ResourceRecord, iface: string, pointers = false): number {
    const now = this.clock.now();
    let n = 0;
    const expire = (e: CachedRecord): void => {
      if (e.expiresAt <= now + GOODBYE_GRACE_MS) return;
      e.expiresAt = now + GOODBYE_GRACE_MS;
      e.refreshAt = [];
      this.arm(e.expiresAt);
      n++;
    };
    const e = this.sets.get(`${iface}|${nameKey(record.name)}`)?.get(recordKey(record));
    if (e) expire(e);
    if (pointers) {
      const target = nameKey(record.name);
      for (const [sk, set] of this.sets) {
        if (!sk.startsWith(`${iface}|`)) continue;
        for (const x of set.values()) if (x.record.type === 'PTR' && nameKey(x.record.target) === target) expire(x);
      }
    }
    return n;
  }

  /** Forgets everything on an interface (it went away). */
  clearInterface(iface: string): void {
    for (const [setKey, set] of this.sets) {
      if (!setKey.startsWith(`${iface}|`)) continue;
      this.sets.delete(setKey);
      for (const e of set.values()) {
        this.count--;
        this.emit('removed', e);
      }
    }
  }

  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.sets.clear();
    this.count = 0;
  }

  private evict(): void {
    // Drop a tenth of the cache, soonest to expire first, from the source that holds the most
    // records: one host flooding us with long-lived records (it picks the TTLs) evicts its own,
    // never an honest peer's handful. Rare, so a full scan is fine.
    const perSource = new Map<string, number>();
    for (const set of this.sets.values()) for (const e of set.values()) perSource.set(e.source, (perSource.get(e.source) ?? 0) + 1);
    let biggest = '';
    let most = -1;
    for (const [s, n] of perSource) {
      if (n > most) {
        most = n;
        biggest = s;
      }
    }
    const all: [string, string, CachedRecord][] = [];
    for (const [sk, set] of this.sets) for (const [k, e] of set) if (e.source === biggest) all.push([sk, k, e]);
    all.sort((a, b) => a[2].expiresAt - b[2].expiresAt);
    for (const [sk, k, e] of all.slice(0, Math.max(1, Math.floor(this.maxRecords / 10)))) {
      const set = this.sets.get(sk);
      set?.delete(k);
      if (set && set.size === 0) this.sets.delete(sk);
      this.count--;
      this.emit('removed', e);
    }
  }

  private arm(at: number): void {
    if (at >= this.timerAt) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => this.tick(), at - this.clock.now());
  }

  private tick(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    let next = Infinity;
    const removed: CachedRecord[] = [];
    const refresh: CachedRecord[] = [];
    for (const [sk, set] of this.sets) {
      for (const [k, e] of set) {
        if (e.expiresAt <= now) {
          set.delete(k);
          this.count--;
          removed.push(e);
          continue;
        }
        let due = false;
        while (e.refreshAt.length > 0 && (e.refreshAt[0] as number) <= now) {
          e.refreshAt.shift();
          due = true;
        }
        if (due) refresh.push(e);
        next = Math.min(next, e.expiresAt, e.refreshAt[0] ?? Infinity);
      }
      if (set.size === 0) this.sets.delete(sk);
    }
    if (next < Infinity) this.arm(next);
    for (const e of refresh) this.emit('refresh', e);
    for (const e of removed) this.emit('removed', e);
  }
}
