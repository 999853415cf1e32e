/**
 * Browsing a unicast DNS-SD domain (RFC 6763 on an ordinary zone): PTR for the service
 * type, then SRV + TXT per instance and A/AAAA per SRV target, asked again at the records'
 * TTL (neither BIND nor Knot does DNS Push, RFC 8765), with `added` / `changed` /
 * `removed` events like the mDNS browser's. A registration whose lease has run out
 * (lease.ts) is reported as removed; a browser holding the zone key also deletes it.
 *
 * Bounded (the context's UnicastLimits): at most `maxInstances` instances per domain are
 * followed, resolved at most `resolveConcurrency` at a time, a round at most every
 * `minBrowseInterval` seconds whatever the TTLs; a failed query keeps what was known (a server restart does
 * not make every peer vanish) and is reported as `error`.
 */
import { EventEmitter } from 'node:events';
import { nameKey } from '../codec/name.js';
import { RRType, type ResourceRecord, type SrvRecord, type TxtRecord } from '../codec/types.js';
import { formatServiceType, parseServiceType, serviceTypeFqdn, splitInstanceFqdn } from '../names.js';
import { sameInstance, type ServiceInstance } from '../service-instance.js';
import { decodeTxt, txtToStrings } from '../txt.js';
import type { BrowserEvents } from '../browser.js';
import type { UnicastContext } from './context.js';
import { leaseOf, withoutLease } from './lease.js';
import { DEFAULT_UNICAST_LIMITS } from './limits.js';
import { wideAreaChannel } from '../diagnostics.js';
import { Rcode, deleteName, deleteRecord, rrsetEquals } from './update.js';

export interface UnicastBrowseOptions {
  type: string;
  domain: string;
  /** Bounds on the re-query interval, in seconds (default the context's `minBrowseInterval` (1) and 30); within them, the smallest TTL seen. */
  minInterval?: number;
  maxInterval?: number;
  /** Remove expired registrations when we hold the zone key (default true). */
  removeExpired?: boolean;
}

/** Default of UnicastLimits.maxInstances (kept for callers of the constant). */
export const MAX_INSTANCES = DEFAULT_UNICAST_LIMITS.maxInstances;
const MAX_CLEANUPS_PER_ROUND = 4;

/** The interface name of instances found through unicast DNS (they belong to no link). */
export const UNICAST_INTERFACE = '';

export class UnicastBrowser extends EventEmitter<BrowserEvents> {
  readonly domain: string;
  readonly type: string;
  readonly #ctx: UnicastContext;
  readonly #opts: UnicastBrowseOptions;
  readonly #known = new Map<string, ServiceInstance>();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #started = false;
  #zone: { zone: string; primary: { address: string; port: number } } | undefined;
  /** Resolves after each completed round (tests, and callers that want a first answer). */
  #roundWaiters: Array<() => void> = [];
  rounds = 0;

  constructor(ctx: UnicastContext, opts: UnicastBrowseOptions) {
    super();
    this.#ctx = ctx;
    this.#opts = opts;
    this.domain = opts.domain.replace(/\.$/, '');
    this.type = formatServiceType(parseServiceType(opts.type));
  }

  get services(): ServiceInstance[] {
    return [...this.#known.values()];
  }

  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    void this.#round();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const w of this.#roundWaiters.splice(0)) w();
  }

  /** Resolves once the next query round has completed. */
  nextRound(): Promise<void> {
    return new Promise((resolve) => this.#roundWaiters.push(resolve));
  }

  async #round(): Promise<void> {
    let interval = this.#opts.maxInterval ?? 30;
    try {
      interval = await this.#poll();
    } catch (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err as Error);
    }
    this.rounds++;
    for (const w of this.#roundWaiters.splice(0)) w();
    if (this.#stopped) return;
    const min = this.#opts.minInterval ?? this.#ctx.limits.minBrowseInterval;
    const max = this.#opts.maxInterval ?? 30;
    this.#timer = setTimeout(() => void this.#round(), Math.min(max, Math.max(min, interval)) * 1000);
    this.#timer.unref();
  }

  /** One round; returns the smallest TTL seen (seconds). */
  async #poll(): Promise<number> {
    const ptrName = serviceTypeFqdn(parseServiceType(this.type), this.domain);
    const ptrs = (await this.#ctx.query(ptrName, RRType.PTR)).filter((r) => r.type === 'PTR' && nameKey(r.name) === nameKey(ptrName));
    let minTtl = this.#opts.maxInterval ?? 30;
    const targets: string[] = [];
    for (const r of ptrs) {
      if (r.type !== 'PTR') continue;
      minTtl = Math.min(minTtl, r.ttl);
      const split = splitInstanceFqdn(r.target);
      // an instance of this type in this domain, nothing else (a PTR may point anywhere)
      if (!split || nameKey(split.type) !== nameKey(this.type) || nameKey(split.domain) !== nameKey(this.domain)) continue;
      if (!targets.some((t) => nameKey(t) === nameKey(r.target))) targets.push(r.target);
      if (targets.length >= this.#ctx.limits.maxInstances) break;
    }
    const found = new Map<string, ServiceInstance>();
    const expired: Array<{ fqdn: string; txt: TxtRecord; srv: SrvRecord | undefined }> = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < targets.length && !this.#stopped) {
        const fqdn = targets[next++] as string;
        let r: ResolvedInstance | undefined;
        try {
          r = await this.#resolve(fqdn);
        } catch {
          // a failed query is not a removal: keep what we knew until the next round
          const old = this.#known.get(nameKey(fqdn));
          if (old) found.set(nameKey(fqdn), old);
          continue;
        }
        if (!r) continue;
        minTtl = Math.min(minTtl, r.ttl);
        if (r.expired) expired.push({ fqdn, txt: r.expired, srv: r.srv });
        else if (r.instance) found.set(nameKey(fqdn), r.instance);
      }
    };
    await Promise.all(Array.from({ length: this.#ctx.limits.resolveConcurrency }, worker));
    if (this.#stopped) return minTtl;
    this.#publish(found);
    if (this.#ctx.key && this.#opts.removeExpired !== false) await this.#removeExpired(ptrName, expired.slice(0, MAX_CLEANUPS_PER_ROUND));
    return minTtl;
  }

  #resolve(fqdn: string): Promise<ResolvedInstance | undefined> {
    return resolveUnicastInstance(this.#ctx, fqdn, this.domain);
  }

  #publish(found: Map<string, ServiceInstance>): void {
    for (const [k, old] of this.#known) {
      if (found.has(k)) continue;
      this.#known.delete(k);
      this.emit('removed', old);
    }
    for (const [k, s] of found) {
      const old = this.#known.get(k);
      this.#known.set(k, s);
      if (!old) this.emit('added', s);
      else if (!sameInstance(old, s)) this.emit('changed', s);
    }
  }

  async #removeExpired(ptrName: string, list: Array<{ fqdn: string; txt: TxtRecord; srv: SrvRecord | undefined }>): Promise<void> {
    if (list.length === 0) return;
    try {
      if (!this.#zone) {
        const info = await this.#ctx.zoneOf(this.domain);
        this.#zone = { zone: info.zone, primary: await this.#ctx.primaryFor(info) };
      }
      const { zone, primary } = this.#zone;
      for (const e of list) {
        const host = e.srv && /^pl-[0-9a-f]{16}\./.test(nameKey(e.srv.target)) ? [deleteName(e.srv.target)] : [];
        const ptr: ResourceRecord = { name: ptrName, type: 'PTR', target: e.fqdn, ttl: 0, rrclass: 1, cacheFlush: false };
        // only if the TXT is still the expired one: a registration renewed meanwhile stays
        const rc = await this.#ctx.client.update(primary, { zone, prerequisites: rrsetEquals([e.txt]), updates: [deleteRecord(ptr), deleteName(e.fqdn), ...host] }, this.#ctx.key);
        if (rc === Rcode.NOERROR && wideAreaChannel.hasSubscribers) wideAreaChannel.publish({ event: 'expired-removed', domain: this.domain, name: e.fqdn });
        if (rc !== Rcode.NOERROR && rc !== Rcode.NXRRSET) break;
      }
    } catch (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err as Error);
    }
  }
}

export interface BrowseDomain {
  domain: string;
  /** `b` (browse) or `lb` (legacy browse / default), RFC 6763 §11. */
  kind: 'b' | 'lb';
  /** The domain it was listed under. */
  from: string;
}

/** Browse domains listed under `b._dns-sd._udp.D` and `lb._dns-sd._udp.D` for each D (RFC 6763 §11). */
export async function discoverBrowseDomains(ctx: UnicastContext, domains: readonly string[]): Promise<BrowseDomain[]> {
  const out: BrowseDomain[] = [];
  for (const d of [...new Set(domains.map((x) => x.replace(/\.$/, '')))].slice(0, 16)) {
    for (const kind of ['b', 'lb'] as const) {
      const recs = await ctx.query(`${kind}._dns-sd._udp.${d}`, RRType.PTR).catch(() => []);
      for (const r of recs) {
        if (r.type !== 'PTR') continue;
        const domain = r.target.replace(/\.$/, '');
        if (!out.some((o) => nameKey(o.domain) === nameKey(domain) && o.kind === kind)) out.push({ domain, kind, from: d });
        if (out.length >= ctx.limits.maxBrowseDomains) return out;
      }
    }
  }
  return out;
}

export interface ResolvedInstance {
instance?: ServiceInstance;
/** The TXT of a registration whose lease is over. */
expired?: TxtRecord;
srv?: SrvRecord;
ttl: number;
}

/** SRV + TXT + addresses of one instance in a unicast domain; an expired lease is reported as such. */
export async function resolveUnicastInstance(ctx: UnicastContext, fqdn: string, domain: string): Promise<ResolvedInstance | undefined> {
  const [srvs, txts] = await Promise.all([ctx.query(fqdn, RRType.SRV), ctx.query(fqdn, RRType.TXT)]);
  const srv = srvs.find((r): r is SrvRecord => r.type === 'SRV' && nameKey(r.name) === nameKey(fqdn));
  const txtList = txts.filter((r): r is TxtRecord => r.type === 'TXT' && nameKey(r.name) === nameKey(fqdn));
  const txt = txtList[0];
  const lease = leaseOf(txt);
  let ttl = Math.min(srv?.ttl ?? Infinity, txt?.ttl ?? Infinity);
  if (lease.expires !== undefined && lease.expires < ctx.client.now()) {
    const out: ResolvedInstance = { ttl };
    if (txtList.length === 1 && txt) out.expired = txt;
    if (srv) out.srv = srv;
    return out;
  }
  if (!srv) return undefined;
  if (lease.expires !== undefined) ttl = Math.min(ttl, Math.max(1, lease.expires - ctx.client.now()));
  const addrs: ResourceRecord[] = [];
  for (const t of [RRType.A, RRType.AAAA]) addrs.push(...(await ctx.query(srv.target, t).catch(() => [])).filter((r) => (r.type === 'A' || r.type === 'AAAA') && nameKey(r.name) === nameKey(srv.target)));
  const v4 = [...new Set(addrs.flatMap((r) => (r.type === 'A' ? [r.address] : [])))].sort();
  const v6 = [...new Set(addrs.flatMap((r) => (r.type === 'AAAA' ? [r.address] : [])))].sort();
  const strings = withoutLease(txt?.strings ?? []);
  const { txt: map, binary } = txtToStrings(decodeTxt(strings));
  const split = splitInstanceFqdn(fqdn);
  if (!split) return undefined;
  const instance: ServiceInstance = {
    name: split.instance,
    type: split.type,
    domain: domain,
    fqdn,
    host: srv.target,
    port: srv.port,
    addresses: [...v4, ...v6],
    txt: map,
    binaryTxt: binary,
    txtRecord: strings,
    interface: UNICAST_INTERFACE,
  };
  return { instance, srv, ttl };
}
