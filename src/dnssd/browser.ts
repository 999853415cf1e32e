/**
 * ServiceBrowser: continuous PTR queries for a service type (or subtype), and resolution
 * of every instance found to SRV + TXT + addresses on each interface. Reports `added`
 * once an instance is resolved, `changed` when its host, port, addresses or TXT change,
 * and `removed` when its PTR goes (goodbye or expiry). Also an async iterator of the same.
 *
 * Resolution costs queries, and anyone on the link can list instances: at most
 * `maxResolving` instances are being resolved at a time (the rest wait their turn, in the
 * order they were heard), each with at most RESOLVE_ATTEMPTS queries, and the querier's
 * buckets bound the rate: engine-wide, and per address that announced the instance.
 */
import { EventEmitter } from 'node:events';
import type { CachedRecord, RecordCache } from './cache.js';
import type { Clock, TimerHandle } from './clock.js';
import { nameKey } from './codec/name.js';
import { CLASS_IN, RRType, rrTypeNumber, type Question } from './codec/types.js';
import { familyOf, type Querier } from './querier.js';
import { browseChannel } from './diagnostics.js';
import { buildInstance, lookupParts, sameInstance, type ServiceInstance } from './service-instance.js';
import { DEFAULT_MDNS_LIMITS } from './rate-limit.js';

export type BrowseEventType = 'added' | 'removed' | 'changed';

export interface BrowseEvent {
  event: BrowseEventType;
  service: ServiceInstance;
}

export interface BrowserEvents {
  added: [ServiceInstance];
  removed: [ServiceInstance];
  changed: [ServiceInstance];
  error: [Error];
}

export interface BrowserContext {
  cache: RecordCache;
  querier: Querier;
  clock: Clock;
  /** Instances resolved at a time (default DEFAULT_MDNS_LIMITS.maxResolving). */
  maxResolving?: number;
}

/** Resolution queries: now, then 1, 2, 4, 8 s later. */
const RESOLVE_ATTEMPTS = 5;
/**
 * After a round of RESOLVE_ATTEMPTS went unanswered, the instance (its PTR still live) is
 * tried again, a new round, after 15 s, then 30 s, 60 s … up to an hour, ±20 % (as
 * mDNSResponder keeps a resolve going). On a lossy link (Wi-Fi; a busy host whose socket
 * buffer overflows) a round can fail whole: a peer seen once must not stay unresolved until
 * its PTR, 75 minutes long, is heard again. A round waits its turn like any other resolution
 * (maxResolving), so instances that never resolve take no slot between rounds.
 */
export const REVISIT_MS = 15_000;
export const MAX_REVISIT_MS = 3_600_000;
/** Without a TXT record after this long, report the instance with an empty one. */
const TXT_GRACE_MS = 1500;
const MAX_QUEUED_EVENTS = 10_000;
/** Instances followed per browser; past this, new names are ignored (a flood cannot grow memory). */
const MAX_TRACKED = 2048;

interface Tracked {
  fqdn: string;
  iface: string;
  /** nameKey of the SRV target last seen, to find instances affected by an address record. */
  host: string | undefined;
  emitted: ServiceInstance | undefined;
  /** Who announced its PTR last: resolution queries are charged to that address's share. */
  source: string;
  /** Its PTR came over IPv4 at least once: the first resolution query goes over IPv4 (see scheduleResolve). */
  overIPv4: boolean;
  startedAt: number;
  attempt: number;
  /** Rounds of attempts that went unanswered since it last resolved (the revisit back-off). */
  rounds: number;
  retry: TimerHandle | undefined;
  /** The next round, once a round went unanswered. */
  revisit: TimerHandle | undefined;
}

export class ServiceBrowser extends EventEmitter<BrowserEvents> {
  private readonly tracked = new Map<string, Tracked>();
  private readonly dirty = new Set<string>();
  /** Instances being resolved (sending queries), and those waiting for a turn, oldest first. */
  private readonly resolving = new Set<string>();
  private readonly waitingResolve = new Set<string>();
  /** Instances waiting for a later round (see REVISIT_MS): served after every first-time one. */
  private readonly waitingRevisit = new Set<string>();
  private flushTimer: TimerHandle | undefined;
  private stopQuery: (() => void) | undefined;
  private removeInterest: (() => void) | undefined;
  private readonly queue: BrowseEvent[] = [];
  private readonly waiters: ((r: IteratorResult<BrowseEvent>) => void)[] = [];
  private stopped = false;
  private readonly onAdded = (e: CachedRecord): void => this.onCache(e);
  private readonly onRemoved = (e: CachedRecord): void => this.onCache(e);
  // a record received again may have become the newest of its set (e.g. an older TXT that
  // arrived within the same second as its replacement): only SRV and TXT pick "the newest"
  private readonly onUpdated = (e: CachedRecord): void => {
    if (e.record.type === 'SRV' || e.record.type === 'TXT') this.onCache(e);
  };

  constructor(
    private readonly ctx: BrowserContext,
    /** The PTR name browsed: `_http._tcp.local` or `_printer._sub._http._tcp.local`. */
    readonly ptrName: string,
  ) {
    super();
  }

  /** Called by the engine once its sockets are open. */
  start(): void {
    if (this.stopped || this.stopQuery) return;
    const { cache, querier } = this.ctx;
    cache.on('added', this.onAdded);
    cache.on('updated', this.onUpdated);
    cache.on('removed', this.onRemoved);
    this.removeInterest = querier.addInterest((name, type, iface) => this.wants(name, type, iface));
    this.stopQuery = querier.startContinuous(this.ptrName, RRType.PTR);
    // instances another browser already has in the cache
    for (const e of cache.get(this.ptrName, RRType.PTR)) this.onCache(e);
  }

  /** Instances currently resolved. */
  get services(): ServiceInstance[] {
    return [...this.tracked.values()].flatMap((t) => (t.emitted ? [t.emitted] : []));
  }

  private wants(name: string, type: number, iface: string): boolean {
    const n = nameKey(name);
    if (type === RRType.PTR) return n === nameKey(this.ptrName);
    if (type === RRType.SRV || type === RRType.TXT) return this.tracked.has(`${iface}|${n}`);
    if (type === RRType.A || type === RRType.AAAA) {
      for (const t of this.tracked.values()) if (t.iface === iface && t.host === n) return true;
    }
    return false;
  }

  private onCache(e: CachedRecord): void {
    if (this.stopped) return;
    const r = e.record;
    const n = nameKey(r.name);
    if (r.type === 'PTR' && n === nameKey(this.ptrName)) {
      const t = this.tracked.get(`${e.iface}|${nameKey(r.target)}`);
      if (t) {
        // heard again: a new round now, not at the revisit
        t.revisit?.cancel();
        t.revisit = undefined;
        t.attempt = 0;
        t.source = e.source;
        if (familyOf(e.source) === 'IPv4') t.overIPv4 = true;
      }
      this.markDirty(`${e.iface}|${nameKey(r.target)}`, r.target, e.iface, e.source);
      return;
    }
    const type = rrTypeNumber(r);
    if (type === RRType.SRV || type === RRType.TXT) {
      if (this.tracked.has(`${e.iface}|${n}`)) this.markDirty(`${e.iface}|${n}`);
      return;
    }
    if (type === RRType.A || type === RRType.AAAA) {
      for (const [k, t] of this.tracked) if (t.iface === e.iface && t.host === n) this.markDirty(k);
    }
  }

  private markDirty(key: string, fqdn?: string, iface?: string, source = ''): void {
    if (!this.tracked.has(key)) {
      if (fqdn === undefined || iface === undefined || this.tracked.size >= MAX_TRACKED) return;
      this.tracked.set(key, { fqdn, iface, host: undefined, emitted: undefined, source, overIPv4: familyOf(source) === 'IPv4', startedAt: this.ctx.clock.now(), attempt: 0, rounds: 0, retry: undefined, revisit: undefined });
    }
    this.dirty.add(key);
    // a response's records arrive one by one: look at the instance once the packet is in
    this.flushTimer ??= this.ctx.clock.setTimeout(() => {
      this.flushTimer = undefined;
      for (const k of [...this.dirty]) {
        this.dirty.delete(k);
        this.recompute(k);
      }
    }, 0);
  }

  private recompute(key: string): void {
    const t = this.tracked.get(key);
    if (!t || this.stopped) return;
    const { cache, clock } = this.ctx;
    const stillListed = cache.get(this.ptrName, RRType.PTR, t.iface).some((e) => e.record.type === 'PTR' && nameKey(e.record.target) === nameKey(t.fqdn));
    if (!stillListed) {
      t.retry?.cancel();
      t.revisit?.cancel();
      this.tracked.delete(key);
      this.waitingResolve.delete(key);
      this.waitingRevisit.delete(key);
      this.endResolve(key);
      if (t.emitted) this.publish('removed', t.emitted);
      return;
    }
    const parts = lookupParts(cache, t.fqdn, t.iface);
    t.host = parts.srv ? nameKey(parts.srv.target) : undefined;
    const complete = parts.srv !== undefined && parts.addresses.length > 0 && (parts.txt !== undefined || clock.now() - t.startedAt >= TXT_GRACE_MS);
    if (!complete) {
      // Addresses only another host sent under the target (a host-name contest: its cache-flush
      // set retired ours) do not say the instance left: keep what was reported, resolve again.
      const contested = parts.srv !== undefined && parts.addresses.length === 0 && parts.foreign > 0 && t.emitted?.port === parts.srv.port;
      if (t.emitted && !contested && (!parts.srv || parts.addresses.length === 0)) {
        // its SRV or every address expired although refresh queries went out at 80-95 % of
        // their TTL: the instance left without a goodbye; its PTR (75 min) may outlive it
        const last = t.emitted;
        t.emitted = undefined;
        t.startedAt = clock.now();
        this.publish('removed', last);
      }
      this.scheduleResolve(key, t);
      return;
    }
    t.retry?.cancel();
    t.retry = undefined;
    t.revisit?.cancel();
    t.revisit = undefined;
    t.attempt = 0;
    t.rounds = 0;
    this.endResolve(key);
    const inst = buildInstance(t.fqdn, t.iface, parts);
    if (!inst) return;
    if (!t.emitted) {
      t.emitted = inst;
      this.publish('added', inst);
    } else if (!sameInstance(t.emitted, inst)) {
      t.emitted = inst;
      this.publish('changed', inst);
    }
  }

  /** An instance stops resolving (resolved, given up, gone): the next waiting one starts. */
  private endResolve(key: string): void {
    if (!this.resolving.delete(key)) return;
    const max = this.ctx.maxResolving ?? DEFAULT_MDNS_LIMITS.maxResolving;
    for (const queue of [this.waitingResolve, this.waitingRevisit]) {
      for (const next of queue) {
        if (this.resolving.size >= max) return;
        queue.delete(next);
        if (!this.tracked.has(next)) continue;
        this.resolving.add(next);
        this.markDirty(next);
      }
    }
  }

  private scheduleResolve(key: string, t: Tracked): void {
    if (t.retry || t.revisit) return;
    if (t.attempt >= RESOLVE_ATTEMPTS) {
      // this round is over: free the slot, and come back for a new round later
      this.endResolve(key);
      const { clock } = this.ctx;
      const wait = Math.min(REVISIT_MS * 2 ** t.rounds, MAX_REVISIT_MS) * (0.8 + 0.4 * clock.random());
      t.rounds++;
      t.revisit = clock.setTimeout(() => {
        t.revisit = undefined;
        t.attempt = 0;
        this.markDirty(key);
      }, wait);
      return;
    }
    if (!this.resolving.has(key)) {
      if (this.resolving.size >= (this.ctx.maxResolving ?? DEFAULT_MDNS_LIMITS.maxResolving)) {
        // never-resolving instances (a stranger's bare PTRs) in their later rounds must not
        // keep an instance heard for the first time waiting
        (t.rounds > 0 ? this.waitingRevisit : this.waitingResolve).add(key);
        return;
      }
      this.waitingResolve.delete(key);
      this.waitingRevisit.delete(key);
      this.resolving.add(key);
    }
    t.retry = this.ctx.clock.setTimeout(() => {
      t.retry = undefined;
      if (this.stopped || this.tracked.get(key) !== t) return;
      const parts = lookupParts(this.ctx.cache, t.fqdn, t.iface);
      const q = (name: string, qtype: number): Question => ({ name, qtype, qclass: CLASS_IN, unicastResponse: false });
      let sent = true;
      // The first attempt asks over the family the instance's PTR came over (IPv4 if it came over
      // IPv4 at all, as refresh does: querier.ts): its responder listens there, answers over the
      // family it was asked on (Avahi and ours do), and its once-a-second limit then sends one
      // answer for every peer asking at once. Asking over
      // both families doubled these questions and their answers — 28 % of the packets of 64
      // peers starting together (bench/scale/README.md). Later attempts (an answer was lost, or
      // the responder answers over one family only) ask over every family.
      const family = t.attempt > 0 ? undefined : t.overIPv4 ? 'IPv4' : familyOf(t.source);
      if (!parts.srv) sent = this.ctx.querier.query([q(t.fqdn, RRType.SRV), q(t.fqdn, RRType.TXT)], t.iface, t.source, family);
      else if (parts.addresses.length === 0) sent = this.ctx.querier.query([q(parts.srv.target, RRType.A), q(parts.srv.target, RRType.AAAA), q(t.fqdn, RRType.SRV)], t.iface, t.source, family);
      else if (!parts.txt) sent = this.ctx.querier.query([q(t.fqdn, RRType.TXT)], t.iface, t.source, family);
      // look again after the back-off (1, 2, 4, 8 s), or when the TXT grace ends
      const wait = Math.min(1000 * 2 ** t.attempt, parts.srv && parts.addresses.length > 0 ? TXT_GRACE_MS : Infinity);
      // An attempt the query bucket refused asked nobody: it does not count toward giving up
      // (many instances heard at once — 48 peers starting — would otherwise be abandoned
      // unresolved until their PTR is heard again). The bucket still bounds the rate.
      if (sent) t.attempt++;
      t.retry = this.ctx.clock.setTimeout(() => {
        t.retry = undefined;
        this.markDirty(key);
      }, wait);
    }, 0);
  }

  private publish(event: BrowseEventType, service: ServiceInstance): void {
    if (browseChannel.hasSubscribers) browseChannel.publish({ event, name: service.name, type: service.type, interface: service.interface });
    if (this.iterating) {
      const waiter = this.waiters.shift();
      if (waiter) waiter({ value: { event, service }, done: false });
      else {
        if (this.queue.length >= MAX_QUEUED_EVENTS) this.queue.shift();
        this.queue.push({ event, service });
      }
    }
    this.emit(event, service);
  }

  private iterating = false;

  /** Changes as an async iterator (`for await (const {event, service} of browser)`); ends on stop(). */
  [Symbol.asyncIterator](): AsyncIterator<BrowseEvent> {
    this.iterating = true;
    return {
      next: () => {
        const queued = this.queue.shift();
        if (queued) return Promise.resolve({ value: queued, done: false });
        if (this.stopped) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
      return: () => {
        this.stop();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopQuery?.();
    this.removeInterest?.();
    this.ctx.cache.off('added', this.onAdded);
    this.ctx.cache.off('updated', this.onUpdated);
    this.ctx.cache.off('removed', this.onRemoved);
    this.flushTimer?.cancel();
    for (const t of this.tracked.values()) {
      t.retry?.cancel();
      t.revisit?.cancel();
    }
    this.tracked.clear();
    this.resolving.clear();
    this.waitingResolve.clear();
    this.waitingRevisit.clear();
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }
}
