/**
 * Mdns: the Bonjour engine. One object owns the mDNS sockets for a set of interfaces, a
 * responder (advertisements) and a querier with its cache (browsers, resolves), so any
 * number of advertisements and browsers in a process share one set of sockets.
 */
import { EventEmitter } from 'node:events';
import { PeerlinkError } from '../errors.js';
import { selectInterfaces, type NetworkInterface } from '../path/interfaces.js';
import { PathMonitor, type InterfaceChange } from '../path/monitor.js';
import { Advertisement } from './advertisement.js';
import { ServiceBrowser } from './browser.js';
import { RecordCache } from './cache.js';
import { systemClock, type Clock } from './clock.js';
import { nameKey } from './codec/name.js';
import { CLASS_IN, RRType, type Question } from './codec/types.js';
import { DEFAULT_DOMAIN, defaultHostLabel, instanceFqdn, normalizeSubtype, parseHostName, parseServiceType, serviceTypeFqdn, subtypeFqdn, validateInstanceName } from './names.js';
import { Querier } from './querier.js';
import { Registration, Responder } from './responder.js';
import { buildInstance, lookupParts, type ServiceInstance } from './service-instance.js';
import { MdnsTransport, type PacketNetwork, type ReceivedPacket } from './transport.js';
import { resolveLimits, SourceBuckets, TokenBucket, type MdnsLimits } from './rate-limit.js';
import { encodeTxt, type TxtInput } from './txt.js';

export interface MdnsOptions {
  /** Interface names; default: every up, multicast-capable, non-loopback interface. `lo` only when named. */
  interfaces?: string[];
  /** Host name to publish (`name` or `name.local`); default: this machine's host name. */
  host?: string;
  /**
   * Follow address changes and link up/down of the selected interfaces (default true):
   * re-announce on new addresses, drop what was learnt on an interface that went down.
   */
  watchInterfaces?: boolean;
  /**
   * What strangers on the link can make the engine send or keep (defaults in
   * DEFAULT_MDNS_LIMITS, docs/dnssd.md "Limits"): one-off queries and re-announcements per
   * second, instances resolved at once per browser, the largest TTL believed.
   */
  limits?: Partial<MdnsLimits>;
  /** @internal tests: a fake network and clock. */
  network?: PacketNetwork;
  clock?: Clock;
}

export interface AdvertiseOptions {
  name: string;
  /** `_example._tcp` */
  type: string;
  port: number;
  txt?: TxtInput;
  subtypes?: string[];
  domain?: string;
}

export interface BrowseOptions {
  type: string;
  domain?: string;
  /** Browse only instances registered with this subtype (`_printer`). */
  subtype?: string;
}

export interface ResolveOptions {
  /** Milliseconds to wait for answers (default 3000). */
  timeout?: number;
  /** Aborting rejects with ERR_CANCELLED. */
  signal?: AbortSignal;
}

export interface MdnsEvents {
  /** The host name was taken by someone else and changed (`vm.local` -> `vm-2.local`). */
  hostRenamed: [change: { from: string; name: string }];
  /** Non-fatal problems (a socket that could not be opened, a send error). */
  warning: [err: Error];
}

export class Mdns extends EventEmitter<MdnsEvents> {
  readonly clock: Clock;
  /** True when the caller named the interfaces: then no other interface is ever adopted. */
  private readonly explicitInterfaces: boolean;
  private readonly net: PacketNetwork;
  private readonly transport: MdnsTransport | undefined;
  private readonly responder: Responder;
  private readonly cache: RecordCache;
  private readonly querier: Querier;
  private readonly browsers = new Set<ServiceBrowser>();
  private readonly ready: Promise<Responder>;
  private closed = false;
  private monitor: PathMonitor | undefined;
  readonly limits: MdnsLimits;
  private readonly queryBucket: TokenBucket;
  private readonly announceBucket: TokenBucket;
  private readonly sourceBuckets: SourceBuckets;
  private readonly onPacket = (p: ReceivedPacket): void => {
    this.responder.handle(p);
    this.querier.handle(p);
  };

  /**
   * Throws ERR_UNKNOWN_INTERFACE for a name that is not an interface here, and
   * ERR_NO_USABLE_INTERFACE when named interfaces leave nothing to use. With the default
   * selection and no usable interface yet, the engine waits for one (warning event).
   */
  constructor(options: MdnsOptions = {}) {
    super();
    this.clock = options.clock ?? systemClock;
    this.explicitInterfaces = (options.interfaces?.length ?? 0) > 0;
    this.limits = resolveLimits(options.limits);
    this.queryBucket = new TokenBucket(this.clock, this.limits.queriesPerSecond, this.limits.queryBurst);
    this.announceBucket = new TokenBucket(this.clock, this.limits.reannouncementsPerSecond, this.limits.reannouncementsPerSecond);
    this.sourceBuckets = new SourceBuckets(this.clock, this.limits.queriesPerSourcePerSecond, 4 * this.limits.queriesPerSourcePerSecond);
    if (options.network) {
      this.net = options.network;
    } else {
      const selected = selectInterfaces(options.interfaces);
      if (selected.length === 0) {
        if (this.explicitInterfaces || options.watchInterfaces === false) {
          throw new PeerlinkError('ERR_NO_USABLE_INTERFACE', 'no up, multicast-capable interface to use for mDNS (name one with --interface / interfaces)');
        }
        // like Network framework's `waiting`: advertisements and browsers start once an
        // interface comes up (a machine whose network is not up yet)
        setImmediate(() => this.emit('warning', new PeerlinkError('ERR_NO_USABLE_INTERFACE', 'no usable interface yet: waiting for one to come up')));
      }
      this.transport = new MdnsTransport(selected);
      this.transport.on('warning', (err: Error) => this.emit('warning', err));
      this.net = this.transport;
    }
    const hostLabel = options.host !== undefined ? parseHostName(options.host) : defaultHostLabel();
    this.responder = new Responder(this.net, this.clock, hostLabel, this.announceBucket);
    this.responder.events.on('hostRenamed', (c: { from: string; name: string }) => this.emit('hostRenamed', c));
    this.responder.events.on('warning', (err: Error) => this.emit('warning', err));
    this.cache = new RecordCache(this.clock, undefined, this.limits.maxTtl, this.limits.minRefreshTtl);
    this.querier = new Querier(this.net, this.clock, this.cache, this.queryBucket, this.sourceBuckets);
    this.net.on('packet', this.onPacket);
    this.ready = (this.transport ? this.transport.start() : Promise.resolve()).then(() => this.responder);
    if (this.transport && options.watchInterfaces !== false) this.watch();
  }

  private watch(): void {
    // netlink notifications (one shared worker per process) when available, else polling
    try {
      const monitor = new PathMonitor({ detection: 'auto', pollIntervalMs: 2000 });
      monitor.on('change', (c) => {
        try {
          this.onInterfaceChange(c);
        } catch (err) {
          this.emit('warning', err as Error);
        }
      });
      monitor
        .start()
        .then(() => this.reconcile(monitor.allInterfaces))
        .catch((err: unknown) => this.emit('warning', err as Error));
      this.monitor = monitor;
    } catch (err) {
      this.emit('warning', err as Error);
    }
  }

  /**
   * The monitor's first reading may be newer than the one the sockets were opened with (an
   * interface that was just coming up): apply the difference, since it reports only later changes.
   */
  private reconcile(current: readonly NetworkInterface[]): void {
    if (this.closed) return;
    const key = (i: NetworkInterface): string => `${String(i.flags.up)}|${i.addresses.map((a) => a.address).sort().join(',')}`;
    for (const now of current) {
      const mine = this.interfaces.find((i) => i.name === now.name);
      if (mine && key(mine) === key(now)) continue;
      const removed = mine ? mine.addresses.filter((a) => !now.addresses.some((b) => b.address === a.address)) : [];
      this.onInterfaceChange({ kind: mine ? 'addresses' : 'added', interface: now, removedAddresses: removed });
    }
  }

  private onInterfaceChange(c: InterfaceChange): void {
    if (this.closed) return;
    const iface = this.interfaces.find((i) => i.name === c.interface.name);
    if (!iface) {
      this.adopt(c);
      return;
    }
    if (c.kind === 'removed' && !this.explicitInterfaces) {
      this.cache.clearInterface(iface.name);
      this.transport?.removeInterface(iface.name);
      return;
    }
    const wasUp = iface.flags.up;
    iface.flags = { ...c.interface.flags };
    iface.addresses = c.interface.addresses.map((a) => ({ ...a }));
    const isUp = c.kind !== 'removed' && iface.flags.up && iface.addresses.length > 0;
    if (!isUp) {
      // what was learnt there is gone with the link; browsers report removals
      this.cache.clearInterface(iface.name);
      return;
    }
    void this.transport?.refreshInterface(iface).then(() => {
      if (this.closed) return;
      if (!wasUp || c.kind === 'up' || c.kind === 'added') {
        // the link (re)appeared: probe, then announce; and ask again from the start
        this.responder.reprobe();
        this.querier.restart();
      } else {
        this.responder.interfaceChanged(iface, c.removedAddresses ?? []);
      }
    });
  }

  /** The interfaces in use (with the default selection, interfaces that come up later join). */
  get interfaces(): readonly NetworkInterface[] {
    return this.net.interfaces;
  }

  /** The host name published for this engine's services (`vm.local`; may change on conflict). */
  get hostname(): string {
    return this.responder.hostFqdn;
  }

  /** Counters from the sockets: packets received, malformed, dropped off-link, sent. */
  get stats(): MdnsTransport['stats'] | undefined {
    return this.transport?.stats;
  }

  /** What the limits held back so far: one-off queries not sent (engine-wide, and over a source's share), re-announcements deferred. */
  get limited(): { queries: number; reannouncements: number; sourceQueries: number } {
    return { queries: this.queryBucket.refused, reannouncements: this.announceBucket.refused, sourceQueries: this.sourceBuckets.refused };
  }

  /** Resolves once the sockets are open. */
  async whenReady(): Promise<void> {
    await this.ready;
  }

  /**
   * With the default selection, an interface that appears or comes up later and is up,
   * multicast-capable and not loopback is used from then on: sockets, announcements of the
   * host and every service on it, and queries (RFC 6762 §8.3).
   */
  private adopt(c: InterfaceChange): void {
    const n = c.interface;
    if (this.explicitInterfaces || c.kind === 'removed' || !this.transport) return;
    if (!n.flags.up || !n.flags.multicast || n.flags.loopback || n.addresses.length === 0) return;
    const iface: NetworkInterface = { ...n, flags: { ...n.flags }, addresses: n.addresses.map((a) => ({ ...a })) };
    void this.transport.addInterface(iface).then(() => {
      if (this.closed) return;
      this.responder.reprobe();
      this.querier.restart();
    });
  }

  /** Advertises a service. Invalid input throws a PeerlinkError with a stable code. */
  advertise(opts: AdvertiseOptions): Advertisement {
    this.assertOpen();
    validateInstanceName(opts.name);
    const type = parseServiceType(opts.type);
    if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
      throw new PeerlinkError('ERR_INVALID_ARGUMENT', `invalid port ${String(opts.port)} (0-65535)`);
    }
    const subtypes = (opts.subtypes ?? []).map(normalizeSubtype);
    const domain = opts.domain ?? DEFAULT_DOMAIN;
    // fail early on a name that cannot be encoded
    instanceFqdn(opts.name, type, domain);
    const reg = new Registration({ instance: opts.name, type, domain, port: opts.port, txt: encodeTxt(opts.txt), subtypes });
    return new Advertisement(reg, this.ready);
  }

  /** Browses for a service type; instances arrive as `added` / `changed` / `removed`. */
  browse(opts: BrowseOptions): ServiceBrowser {
    this.assertOpen();
    const type = parseServiceType(opts.type);
    const domain = opts.domain ?? DEFAULT_DOMAIN;
    const ptr = opts.subtype !== undefined ? subtypeFqdn(normalizeSubtype(opts.subtype), type, domain) : serviceTypeFqdn(type, domain);
    const browser = new ServiceBrowser({ cache: this.cache, querier: this.querier, clock: this.clock, maxResolving: this.limits.maxResolving }, ptr);
    this.browsers.add(browser);
    const stop = browser.stop.bind(browser);
    browser.stop = () => {
      this.browsers.delete(browser);
      stop();
    };
    this.ready.then(() => browser.start(), () => undefined);
    return browser;
  }

  /**
   * Resolves one instance to its SRV, TXT and addresses on every interface where it answers
   * within `timeout` ms (default 3000). Rejects with ERR_RESOLVE_FAILED when none does.
   */
  async resolve(instance: { name: string; type: string; domain?: string }, opts: ResolveOptions = {}): Promise<ServiceInstance[]> {
    this.assertOpen();
    validateInstanceName(instance.name);
    const type = parseServiceType(instance.type);
    const fqdn = instanceFqdn(instance.name, type, instance.domain ?? DEFAULT_DOMAIN);
    const timeout = opts.timeout ?? 3000;
    await this.ready;
    const wanted = (name: string, t: number): boolean => {
      if (nameKey(name) === nameKey(fqdn)) return true;
      if (t !== RRType.A && t !== RRType.AAAA) return false;
      return this.interfaces.some((i) => {
        const srv = lookupParts(this.cache, fqdn, i.name).srv;
        return srv !== undefined && nameKey(srv.target) === nameKey(name);
      });
    };
    const removeInterest = this.querier.addInterest(wanted);
    const q = (name: string, qtype: number): Question => ({ name, qtype, qclass: CLASS_IN, unicastResponse: false });
    const snapshot = (): ServiceInstance[] =>
      this.interfaces.flatMap((i) => {
        const parts = lookupParts(this.cache, fqdn, i.name);
        const inst = parts.addresses.length > 0 ? buildInstance(fqdn, i.name, parts) : undefined;
        return inst ? [inst] : [];
      });
    try {
      const started = this.clock.now();
      let interval = 250;
      for (;;) {
        if (opts.signal?.aborted) throw new PeerlinkError('ERR_CANCELLED', `resolving "${instance.name}" was cancelled`);
        const found = snapshot();
        if (found.length === this.interfaces.length) return found;
        const elapsed = this.clock.now() - started;
        if (found.length > 0 && elapsed > 500) return found;
        if (elapsed >= timeout) {
          if (found.length > 0) return found;
          throw new PeerlinkError('ERR_RESOLVE_FAILED', `no answer for "${instance.name}" (${formatType(instance.type)}) within ${timeout} ms`);
        }
        for (const i of this.interfaces) {
          const parts = lookupParts(this.cache, fqdn, i.name);
          if (!parts.srv || !parts.txt) this.querier.query([q(fqdn, RRType.SRV), q(fqdn, RRType.TXT)], i.name);
          else if (parts.addresses.length === 0) this.querier.query([q(parts.srv.target, RRType.A), q(parts.srv.target, RRType.AAAA)], i.name);
        }
        await new Promise<void>((resolve) => {
          const timer = this.clock.setTimeout(done, Math.min(interval, Math.max(50, timeout - elapsed)));
          function done(): void {
            timer?.cancel();
            opts.signal?.removeEventListener('abort', done);
            resolve();
          }
          opts.signal?.addEventListener('abort', done, { once: true });
        });
        interval = Math.min(interval * 2, 1000);
        if (this.closed) throw new PeerlinkError('ERR_CLOSED', 'the mDNS engine was closed');
        if (opts.signal?.aborted) throw new PeerlinkError('ERR_CANCELLED', `resolving "${instance.name}" was cancelled`);
      }
    } finally {
      removeInterest();
    }
  }

  /**
   * A peer found here could not be reached (RFC 6762 §10.4): asks for the instance again, and
   * flushes it (SRV, TXT and the PTRs naming it) if nobody answers within ten seconds, so
   * browsers report it removed instead of keeping it until its PTR's 75 minutes run out.
   */
  reconfirm(instance: { name: string; type: string; domain?: string }): void {
    if (this.closed) return;
    const fqdn = instanceFqdn(instance.name, parseServiceType(instance.type), instance.domain ?? DEFAULT_DOMAIN);
    this.querier.reconfirm(fqdn);
  }

  /**
   * A peer found here could not be reached at the addresses resolved for it (a refused dial):
   * asks for the address records (A/AAAA) of its SRV target again and flushes those nobody
   * answers within ten seconds (RFC 6762 §10.4) — an address stale after a host-name contest,
   * or a dead host's — and its SRV in the same packet (a process gone from a host that still
   * answers for its name). Not the TXT. If every address goes, the browser reports the instance
   * removed.
   */
  reconfirmAddresses(instance: { name: string; type: string; domain?: string }): void {
    if (this.closed) return;
    const fqdn = instanceFqdn(instance.name, parseServiceType(instance.type), instance.domain ?? DEFAULT_DOMAIN);
    this.querier.reconfirmAddresses(fqdn);
  }

  /** Records flushed because nobody answered them any more (§10.4, §10.5). */
  get flushedUnanswered(): number {
    return this.querier.failures.flushed;
  }

  /** Failure watches dropped unsettled because our own event loop stood still ≥ 1 s while they waited (failure-watch.ts). */
  get watchesAbandoned(): number {
    return this.querier.failures.abandoned;
  }

  private assertOpen(): void {
    if (this.closed) throw new PeerlinkError('ERR_CLOSED', 'the mDNS engine was closed');
  }

  /** Stops every browser, sends goodbyes for every advertisement and the host, closes the sockets. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ready.catch(() => undefined);
    void this.monitor?.cancel().catch(() => undefined);
    for (const b of [...this.browsers]) b.stop();
    this.responder.close();
    this.querier.close();
    this.cache.close();
    this.net.off('packet', this.onPacket);
    await this.transport?.close();
  }
}

function formatType(t: string): string {
  return t.replace(/\.$/, '');
}
