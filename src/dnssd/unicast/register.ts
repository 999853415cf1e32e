/**
 * Registration of one service in a unicast DNS zone (RFC 6763 on an ordinary zone) with
 * RFC 2136 updates signed with TSIG: PTR `_type._tcp.DOMAIN` → instance, SRV and TXT at
 * the instance, A/AAAA at a host name of this run's own (`pl-<16 hex>.DOMAIN`).
 *
 * - A new name is added with the prerequisite "name not in use" (RFC 2136 §2.4.5). When it
 *   is in use, the TXT there decides: our own leftover (same token, see lease.ts) or an
 *   expired lease is replaced, with the prerequisite that the TXT is still what we read
 *   (§2.4.2, so two replacers cannot both win); anyone else's live registration makes us
 *   rename (`Name (2)`), as mDNS does.
 * - Refresh every `lease / 2`: the TXT moves its `pl-expires` forward and the addresses are
 *   rewritten, again only if the TXT is still ours. A failed prerequisite means we were
 *   displaced (an expired lease taken over while we were away): register again.
 * - Stop deletes the records, if the TXT is still ours.
 */
import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';
import { PeerlinkError } from '../../errors.js';
import { nameKey } from '../codec/name.js';
import { CLASS_IN, RRType, type ResourceRecord, type TxtRecord } from '../codec/types.js';
import { formatServiceType, instanceFqdn, nextInstanceName, parseServiceType, serviceTypeFqdn, validateInstanceName } from '../names.js';
import { encodeTxt, type TxtInput } from '../txt.js';
import type { DnsServer } from './client.js';
import type { UnicastContext } from './context.js';
import { leaseOf, leaseStrings, newRunId, registrationToken } from './lease.js';
import { log, wideAreaChannel } from '../diagnostics.js';

function publish(event: string, domain: string, name: string, extra: Record<string, unknown> = {}): void {
  log('wide area: %s "%s" in %s', event, name, domain);
  if (wideAreaChannel.hasSubscribers) wideAreaChannel.publish({ event, domain, name, ...extra });
}
import { Rcode, addRecord, deleteName, deleteRRset, deleteRecord, nameNotInUse, rcodeName, rrsetEquals } from './update.js';

export interface UnicastAdvertiseOptions {
  name: string;
  /** `_example._tcp` */
  type: string;
  port: number;
  txt?: TxtInput;
  /** The unicast domain (`example.com`): a zone, or a name inside one. */
  domain: string;
  /** Addresses to publish (default: this host's addresses that are not loopback or link-local). */
  addresses?: string[];
  /** Lease in seconds (default 600): how long a killed process's records stay visible. */
  lease?: number;
  /** TTL of the records (default min(60, lease / 2)). */
  ttl?: number;
  /** Registration token (default: derived from this host and the name; see lease.ts). */
  token?: string;
}

export interface UnicastAdvertisementEvents {
  registered: [name: string];
  renamed: [change: { from: string; name: string }];
  error: [err: Error];
}

const MAX_TAKEOVER_RACES = 4;
export const DEFAULT_LEASE_S = 600;

/** This host's addresses a peer elsewhere could reach: not loopback, not link-local. */
export function defaultAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv4' && !a.address.startsWith('169.254.')) out.push(a.address);
      if (a.family === 'IPv6' && !/^fe[89ab]/i.test(a.address) && a.scopeid === 0) out.push(a.address);
    }
  }
  return [...new Set(out)];
}

export class UnicastAdvertisement extends EventEmitter<UnicastAdvertisementEvents> {
  readonly type: string;
  readonly domain: string;
  readonly port: number;
  #name: string;
  readonly #requested: string;
  readonly #ctx: UnicastContext;
  readonly #opts: UnicastAdvertiseOptions;
  readonly #token: string;
  readonly #run = newRunId();
  readonly #lease: number;
  readonly #ttl: number;
  #txt: Buffer[];
  #zone: string | undefined;
  #primary: DnsServer | undefined;
  /** The TXT RRset we last wrote (the prerequisite of refresh and stop). */
  #written: TxtRecord | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #registered = false;
  #busy: Promise<void> = Promise.resolve();

  constructor(ctx: UnicastContext, opts: UnicastAdvertiseOptions) {
    super();
    validateInstanceName(opts.name);
    this.type = formatServiceType(parseServiceType(opts.type));
    this.domain = opts.domain.replace(/\.$/, '');
    this.port = opts.port;
    this.#name = opts.name;
    this.#requested = opts.name;
    this.#ctx = ctx;
    this.#opts = opts;
    this.#lease = Math.max(2, Math.floor(opts.lease ?? DEFAULT_LEASE_S));
    this.#ttl = Math.max(1, Math.floor(opts.ttl ?? Math.min(60, this.#lease / 2)));
    this.#txt = encodeTxt(opts.txt);
    this.#token = opts.token ?? registrationToken(this.type, this.domain, opts.name);
  }

  /** The instance name in use (final after any rename). */
  get name(): string {
    return this.#name;
  }

  get registered(): boolean {
    return this.#registered;
  }

  get fqdn(): string {
    return instanceFqdn(this.#name, parseServiceType(this.type), this.domain);
  }

  /** The SRV target, owned by this run of this registration (a twin's stop must not remove ours). */
  get host(): string {
    return `pl-${this.#token.slice(0, 8)}${this.#run}.${this.domain}`;
  }

  /** Registers; resolves with the final name. Refusals (wrong key, no policy) reject with ERR_DNS_UPDATE_REFUSED. */
  start(): Promise<string> {
    return this.#serial(async () => {
      await this.#register();
      this.#schedule();
    }).then(() => this.#name);
  }

  /** Replaces the TXT record (written at once). */
  update(txt: TxtInput): Promise<void> {
    this.#txt = encodeTxt(txt);
    return this.#serial(() => this.#refresh());
  }

  /** Removes the records (if they are still ours) and stops refreshing. */
  stop(): Promise<void> {
    if (this.#stopped) return this.#busy;
    this.#stopped = true;
    clearTimeout(this.#timer);
    return this.#serial(async () => {
      if (!this.#written || !this.#zone || !this.#primary) return;
      const ptr = this.#ptr();
      await this.#ctx.client.update(this.#primary, { zone: this.#zone, prerequisites: rrsetEquals([this.#written]), updates: [deleteRecord(ptr), deleteName(this.fqdn), deleteName(this.host)] }, this.#ctx.key);
      this.#written = undefined;
      this.#registered = false;
      publish('removed', this.domain, this.#name);
    });
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const next = this.#busy.then(fn);
    this.#busy = next.catch(() => undefined);
    return next;
  }

  #schedule(): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#serial(() => this.#refresh()).then(
        () => this.#schedule(),
        (err: unknown) => {
          if (this.listenerCount('error') > 0) this.emit('error', err as Error);
          this.#schedule();
        },
      );
    }, (this.#lease / 2) * 1000);
    this.#timer.unref();
  }

  #now(): number {
    return this.#ctx.client.now();
  }

  #ptr(): ResourceRecord {
    return { name: serviceTypeFqdn(parseServiceType(this.type), this.domain), type: 'PTR', target: this.fqdn, ttl: this.#ttl, rrclass: CLASS_IN, cacheFlush: false };
  }

  #records(): { txt: TxtRecord; all: ResourceRecord[] } {
    const base = { ttl: this.#ttl, rrclass: CLASS_IN, cacheFlush: false };
    const txt: TxtRecord = { ...base, name: this.fqdn, type: 'TXT', strings: [...this.#txt.filter((s) => s.length > 0), ...leaseStrings(this.#now() + this.#lease, this.#token, this.#run)] };
    const srv: ResourceRecord = { ...base, name: this.fqdn, type: 'SRV', priority: 0, weight: 0, port: this.port, target: this.host };
    const addrs: ResourceRecord[] = (this.#opts.addresses ?? defaultAddresses()).map((a) => (a.includes(':') ? { ...base, name: this.host, type: 'AAAA', address: a.replace(/%.*$/, '') } : { ...base, name: this.host, type: 'A', address: a }));
    if (addrs.length === 0) throw new PeerlinkError('ERR_NO_USABLE_INTERFACE', `no address to register for ${this.host}: this host has no address other than loopback and link-local; give the addresses to publish`);
    return { txt, all: [this.#ptr(), srv, txt, ...addrs] };
  }

  async #locate(): Promise<void> {
    if (this.#zone && this.#primary) return;
    const info = await this.#ctx.zoneOf(this.domain);
    this.#zone = info.zone;
    this.#primary = await this.#ctx.primaryFor(info);
  }

  async #register(): Promise<void> {
    await this.#locate();
    const zone = this.#zone as string;
    const primary = this.#primary as DnsServer;
    const client = this.#ctx.client;
    for (let renames = 0, races = 0; renames <= this.#ctx.limits.maxRenames && races <= MAX_TAKEOVER_RACES; ) {
      if (this.#stopped) return;
      const { txt, all } = this.#records();
      const rc = await client.update(primary, { zone, prerequisites: [nameNotInUse(this.fqdn)], updates: [deleteName(this.host), ...all.map(addRecord)] }, this.#ctx.key);
      if (rc === Rcode.NOERROR) return this.#done(txt);
      if (rc !== Rcode.YXDOMAIN) throw new PeerlinkError('ERR_DNS_SERVER_FAILURE', `registering ${this.fqdn}: unexpected ${rcodeName(rc)}`);
      // the name is taken: ours from before, expired, or someone else's
      const theirs = await this.#readTxt(primary);
      const lease = leaseOf(theirs);
      const ours = lease.token === this.#token;
      const expired = lease.expires !== undefined && lease.expires < this.#now();
      if (theirs && (ours || expired)) {
        const oldHost = await this.#readSrvTarget(primary);
        const cleanup = oldHost && oldHost !== nameKey(this.host) && /^pl-[0-9a-f]{16}\./.test(oldHost) ? [deleteName(oldHost)] : [];
        const rc2 = await client.update(primary, { zone, prerequisites: rrsetEquals([theirs]), updates: [deleteRecord(this.#ptr()), deleteName(this.fqdn), ...cleanup, deleteName(this.host), ...all.map(addRecord)] }, this.#ctx.key);
        if (rc2 === Rcode.NOERROR) {
          publish('replaced', this.domain, this.#name, { ours, expired });
          return this.#done(txt);
        }
        races++;
        continue;
      }
      const from = this.#name;
      this.#name = nextInstanceName(this.#name);
      renames++;
      publish('renamed', this.domain, this.#name, { from });
      this.emit('renamed', { from, name: this.#name });
    }
    throw new PeerlinkError('ERR_DNS_SERVER_FAILURE', `could not register "${this.#requested}" in ${this.domain}: every name tried is taken`);
  }

  #done(txt: TxtRecord): void {
    this.#written = txt;
    const first = !this.#registered;
    this.#registered = true;
    publish('registered', this.domain, this.#name);
    if (first) this.emit('registered', this.#name);
  }

  async #readTxt(primary: DnsServer): Promise<TxtRecord | undefined> {
    const p = await this.#ctx.client.query(primary, this.fqdn, RRType.TXT);
    // the whole RRset is the prerequisite; one TXT per instance is what DNS-SD writes
    const list = p.answers.filter((r): r is TxtRecord => r.type === 'TXT' && nameKey(r.name) === nameKey(this.fqdn));
    return list.length === 1 ? list[0] : undefined;
  }

  async #readSrvTarget(primary: DnsServer): Promise<string | undefined> {
    const p = await this.#ctx.client.query(primary, this.fqdn, RRType.SRV);
    const srv = p.answers.find((r) => r.type === 'SRV' && nameKey(r.name) === nameKey(this.fqdn));
    return srv && srv.type === 'SRV' ? nameKey(srv.target) : undefined;
  }

  async #refresh(): Promise<void> {
    if (this.#stopped || !this.#zone || !this.#primary) return;
    // a failed re-registration (server away) is retried at each refresh
    if (!this.#written) return this.#register();
    const { txt, all } = this.#records();
    const addrs = all.filter((r) => r.type === 'A' || r.type === 'AAAA');
    const rc = await this.#ctx.client.update(
      this.#primary,
      {
        zone: this.#zone,
        prerequisites: rrsetEquals([this.#written]),
        updates: [deleteRRset(this.fqdn, RRType.TXT), addRecord(txt), addRecord(this.#ptr()), deleteRRset(this.host, RRType.A), deleteRRset(this.host, RRType.AAAA), ...addrs.map(addRecord)],
      },
      this.#ctx.key,
    );
    if (rc === Rcode.NOERROR) {
      this.#written = txt;
      publish('refreshed', this.domain, this.#name);
      return;
    }
    publish('displaced', this.domain, this.#name);
    // displaced: by a twin of ours (same token, another run) → take another name; else register again
    this.#written = undefined;
    const theirs = leaseOf(await this.#readTxt(this.#primary));
    if (theirs.token === this.#token && theirs.run !== this.#run) {
      const from = this.#name;
      this.#name = nextInstanceName(this.#name);
      this.emit('renamed', { from, name: this.#name });
    }
    await this.#register();
  }
}
