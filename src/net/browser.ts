/**
 * Browser: Network framework's NWBrowser for Bonjour. Results carry service endpoints a
 * Connection can use directly (resolution reuses the browser's interfaces and, while fresh,
 * the addresses it already learnt). dnssd reports an instance per interface; a result here is
 * one per service, with the interfaces it was seen on, like NWBrowser's.
 */
import { EventEmitter } from 'node:events';
import { Mdns, UnicastBrowser, browseDomainsOf, resolveWideArea, type ServiceBrowser, type ServiceInstance, type UnicastContext, type WideAreaOptions } from '../dnssd/index.js';
import { Endpoint, type ServiceEndpoint } from './endpoint.js';
import { serviceHints } from './service-hints.js';

export interface BrowseResult {
  endpoint: ServiceEndpoint;
  /** TXT record as key → value (true for a key without '='). */
  txt: Record<string, string | true>;
  /** Interfaces the service was seen on. */
  interfaces: string[];
}

export interface BrowserOptions {
  /** Service type, e.g. `_example._tcp`. */
  type: string;
  domain?: string;
  /** Interfaces to browse on (names). Default: the dnssd default (up, multicast, non-loopback). */
  interfaces?: string[];
  /** An existing Bonjour engine (shared sockets); `interfaces` is then ignored. */
  mdns?: Mdns;
  /**
   * Also browse these unicast DNS domains (docs/wide-area.md); their results have the
   * domain in the endpoint and no interfaces. mDNS (`local`) is browsed as well.
   */
  wideArea?: WideAreaOptions;
}

export type BrowseChange =
  | { change: 'added'; result: BrowseResult }
  | { change: 'removed'; result: BrowseResult }
  | { change: 'changed'; result: BrowseResult; previous: BrowseResult };

export interface BrowserEvents {
  added: [result: BrowseResult];
  removed: [result: BrowseResult];
  changed: [result: BrowseResult, previous: BrowseResult];
}

interface Entry {
  result: BrowseResult;
  /** Per interface: the latest instance seen there. */
  seen: Map<string, ServiceInstance>;
}

function txtOf(s: ServiceInstance): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (const [k, v] of Object.entries(s.txt)) out[k] = v === null ? true : v;
  return out;
}

function sameTxt(a: Record<string, string | true>, b: Record<string, string | true>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

export class Browser extends EventEmitter<BrowserEvents> {
  readonly options: BrowserOptions;
  private mdns: Mdns | undefined;
  private browser: ServiceBrowser | undefined;
  private readonly unicast: UnicastBrowser[] = [];
  private unicastCtx: UnicastContext | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly queue: BrowseChange[] = [];
  private readonly waiters: Array<(c: BrowseChange | null) => void> = [];
  private iterating = false;
  private stopped = false;

  constructor(options: BrowserOptions) {
    super();
    this.options = options;
  }

  /** Current results. */
  get results(): BrowseResult[] {
    return [...this.entries.values()].map((e) => e.result);
  }

  /** Starts browsing; resolves once the sockets are open. */
  async start(): Promise<void> {
    if (this.mdns) return;
    const mdns = this.options.mdns ?? new Mdns(this.options.interfaces ? { interfaces: this.options.interfaces } : {});
    this.mdns = mdns;
    const browser = mdns.browse({ type: this.options.type, ...(this.options.domain ? { domain: this.options.domain.replace(/\.$/, '') } : {}) });
    this.browser = browser;
    browser.on('added', (s) => this.seen(s));
    browser.on('changed', (s) => this.seen(s));
    browser.on('removed', (s) => this.gone(s));
    browser.on('error', () => undefined);
    const wa = resolveWideArea(this.options.wideArea);
    if (wa) {
      this.unicastCtx = wa.ctx;
      void browseDomainsOf(wa).then((domains) => {
        if (this.stopped) return;
        for (const domain of domains) {
          const u = new UnicastBrowser(wa.ctx, { type: this.options.type, domain, ...(wa.maxBrowseInterval !== undefined ? { maxInterval: wa.maxBrowseInterval } : {}) });
          this.unicast.push(u);
          u.on('added', (s) => this.seen(s));
          u.on('changed', (s) => this.seen(s));
          u.on('removed', (s) => this.gone(s));
          u.on('error', () => undefined);
          u.start();
        }
      });
      // unicast domains work without any multicast interface: do not wait for one
      return;
    }
    await mdns.whenReady();
  }

  /** Changes as an async iterator (until cancel()). */
  changes(): AsyncIterableIterator<BrowseChange> {
    this.iterating = true;
    const it: AsyncIterableIterator<BrowseChange> = {
      next: () => {
        const c = this.queue.shift();
        if (c) return Promise.resolve({ done: false, value: c });
        if (this.stopped) return Promise.resolve({ done: true, value: undefined });
        return new Promise((resolve) => this.waiters.push((x) => resolve(x ? { done: false, value: x } : { done: true, value: undefined })));
      },
      return: () => Promise.resolve({ done: true, value: undefined }),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  async cancel(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.browser?.stop();
    for (const u of this.unicast) u.stop();
    for (const w of this.waiters.splice(0)) w(null);
    if (this.mdns && !this.options.mdns) await this.mdns.close();
  }

  private key(s: ServiceInstance): string {
    return `${s.name.toLowerCase()}\u0000${s.type.toLowerCase()}\u0000${s.domain.toLowerCase()}`;
  }

  private browseInterfaces(): string[] {
    return this.mdns ? this.mdns.interfaces.map((i) => i.name) : (this.options.interfaces ?? []);
  }

  private makeResult(s: ServiceInstance, interfaces: string[]): BrowseResult {
    if (s.interface === '' && this.unicastCtx) {
      // found through unicast DNS: no interface; a stale hint is resolved again through DNS
      const endpoint = Endpoint.service(s.name, s.type, s.domain);
      const txt = txtOf(s);
      serviceHints.set(endpoint, { interfaces: [], host: s.host, port: s.port, addresses: s.addresses, txt, at: Date.now(), unicast: this.unicastCtx });
      return { endpoint, txt, interfaces: [] };
    }
    const browseIfaces = this.browseInterfaces();
    const iface = interfaces.length === 1 ? interfaces[0] : undefined;
    const endpoint = Endpoint.service(s.name, s.type, s.domain, browseIfaces.length === 1 ? iface : undefined);
    const txt = txtOf(s);
    serviceHints.set(endpoint, { interfaces: iface !== undefined ? [iface] : browseIfaces, host: s.host, port: s.port, addresses: s.addresses, txt, at: Date.now() });
    return { endpoint, txt, interfaces };
  }

  private seen(s: ServiceInstance): void {
    const k = this.key(s);
    const e = this.entries.get(k);
    if (!e) {
      const entry: Entry = { seen: new Map([[s.interface, s]]), result: this.makeResult(s, [s.interface]) };
      this.entries.set(k, entry);
      this.publish({ change: 'added', result: entry.result });
      return;
    }
    e.seen.set(s.interface, s);
    const previous = e.result;
    const next = this.makeResult(s, [...e.seen.keys()].sort());
    if (sameTxt(previous.txt, next.txt) && previous.interfaces.join() === next.interfaces.join()) {
      // Same service, refreshed addresses: keep the endpoint object, update its hint.
      const hint = serviceHints.get(next.endpoint);
      if (hint) serviceHints.set(previous.endpoint, hint);
      return;
    }
    e.result = next;
    this.publish({ change: 'changed', result: next, previous });
  }

  private gone(s: ServiceInstance): void {
    const k = this.key(s);
    const e = this.entries.get(k);
    if (!e) return;
    e.seen.delete(s.interface);
    if (e.seen.size === 0) {
      this.entries.delete(k);
      this.publish({ change: 'removed', result: e.result });
      return;
    }
    const previous = e.result;
    const rest = [...e.seen.values()][0] as ServiceInstance;
    e.result = this.makeResult(rest, [...e.seen.keys()].sort());
    this.publish({ change: 'changed', result: e.result, previous });
  }

  private publish(c: BrowseChange): void {
    if (c.change === 'changed') this.emit('changed', c.result, c.previous);
    else this.emit(c.change, c.result);
    if (!this.iterating) return;
    const w = this.waiters.shift();
    if (w) w(c);
    else this.queue.push(c);
  }
}
