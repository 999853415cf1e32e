/**
 * Discovery for a session on src/dnssd: our advertisement, and a browser whose
 * per-interface results are merged into one entry per instance name (a peer seen on eth0
 * and wlan0 is one peer with more addresses, not two peers).
 *
 * Discovery hygiene: an address named in an mDNS answer is kept only when it is on the link
 * the answer arrived on (one of that interface's subnets, or IPv6 link-local scoped to it).
 * Anyone on the link can answer, naming any address: without this, a stranger could point
 * every browsing session at a host elsewhere. The rule is for mDNS only; connect() endpoints
 * are never filtered.
 *
 * The dnssd engine may be shared between sessions of one process (`mdns` option): one set
 * of port-5353 sockets instead of one per session. A shared engine is not closed here.
 */
import { EventEmitter } from 'node:events';
import { Mdns, onLink, UnicastAdvertisement, UnicastBrowser, browseDomainsOf, type Advertisement, type ResolvedWideArea, type ServiceBrowser, type ServiceInstance } from '../dnssd/index.js';
import { discoveryChannel, log } from './diagnostics.js';

export interface FoundService {
  name: string;
  port: number;
  /** IPv4 first, then IPv6 (link-local with %interface), over every interface it was seen on. */
  addresses: string[];
  txt: Record<string, string | true>;
  interfaces: string[];
}

export interface DiscoveryEvents {
  /** First sighting, or a change of TXT / port / addresses. */
  found: [service: FoundService];
  lost: [service: FoundService];
  /** Our advertisement's final name (after any conflict rename). */
  registered: [name: string];
  /** Our registration in a unicast DNS domain (wide area), with its final name there. */
  registeredUnicast: [info: { domain: string; name: string }];
  /** A wide-area registration or browse failed after start (refresh refused, server gone). */
  unicastError: [err: Error];
}

export interface DiscoveryOptions {
  type: string;
  interfaces: string[] | undefined;
  mdns: Mdns | undefined;
  wideArea?: ResolvedWideArea | undefined;
  /** Host name to publish (privacy mode: random); default this machine's. */
  host?: string;
}

/** The pseudo-interface under which instances found in a unicast domain are kept apart. */
const UNICAST_PREFIX = 'dns:';

export class Discovery extends EventEmitter<DiscoveryEvents> {
  readonly #opts: DiscoveryOptions;
  #mdns: Mdns | undefined;
  #ownsMdns = false;
  #ad: Advertisement | undefined;
  #browser: ServiceBrowser | undefined;
  /** name → interface → instance */
  readonly #seen = new Map<string, Map<string, ServiceInstance>>();
  readonly #unicastAds: UnicastAdvertisement[] = [];
  readonly #unicastBrowsers: UnicastBrowser[] = [];
  #closed = false;
  /** Addresses dropped because they were not on the link their answer came from. */
  offLinkAddresses = 0;

  constructor(opts: DiscoveryOptions) {
    super();
    this.#opts = opts;
  }

  #engine(): Mdns {
    if (!this.#mdns) {
      if (this.#opts.mdns) this.#mdns = this.#opts.mdns;
      else {
        this.#mdns = new Mdns({ ...(this.#opts.interfaces ? { interfaces: this.#opts.interfaces } : {}), ...(this.#opts.host !== undefined ? { host: this.#opts.host } : {}) });
        this.#ownsMdns = true;
      }
    }
    return this.#mdns;
  }

  advertise(name: string, port: number, txt: Record<string, string>): void {
    const ad = this.#engine().advertise({ name, type: this.#opts.type, port, txt });
    this.#ad = ad;
    ad.on('registered', (n: string) => this.emit('registered', n));
  }

  /**
   * Registers in every wide-area domain; resolves once each has been accepted, rejects with
   * the first refusal (ERR_DNS_UPDATE_REFUSED, ...), having withdrawn the others.
   */
  async advertiseUnicast(name: string, port: number, txt: Record<string, string>): Promise<void> {
    const wa = this.#opts.wideArea;
    if (!wa) return;
    const ads = wa.domains.map(
      (domain) =>
        new UnicastAdvertisement(wa.ctx, { name, type: this.#opts.type, port, txt, domain, ...(wa.lease !== undefined ? { lease: wa.lease } : {}), ...(wa.addresses ? { addresses: wa.addresses } : {}) }),
    );
    this.#unicastAds.push(...ads);
    for (const ad of ads) {
      ad.on('error', (err) => this.emit('unicastError', err));
      ad.on('registered', (n) => this.emit('registeredUnicast', { domain: ad.domain, name: n }));
    }
    await Promise.all(ads.map((ad) => ad.start()));
  }

  browseUnicast(): void {
    const wa = this.#opts.wideArea;
    if (!wa) return;
    void browseDomainsOf(wa).then((domains) => {
      if (this.#closed) return;
      for (const domain of domains) this.#browseDomain(wa, domain);
    });
  }

  #browseDomain(wa: ResolvedWideArea, domain: string): void {
    const b = new UnicastBrowser(wa.ctx, { type: this.#opts.type, domain, ...(wa.maxBrowseInterval !== undefined ? { maxInterval: wa.maxBrowseInterval } : {}) });
    this.#unicastBrowsers.push(b);
    const tag = (s: ServiceInstance): ServiceInstance => ({ ...s, interface: `${UNICAST_PREFIX}${domain}` });
    // our own registration, found again in the zone, is not a peer
    const ours = (s: ServiceInstance): boolean => this.#unicastAds.some((ad) => ad.domain.toLowerCase() === domain.toLowerCase() && ad.name.toLowerCase() === s.name.toLowerCase());
    b.on('added', (s) => {
      if (!ours(s)) this.#onInstance(tag(s));
    });
    b.on('changed', (s) => {
      if (!ours(s)) this.#onInstance(tag(s));
    });
    b.on('removed', (s) => this.#onRemoved(tag(s)));
    b.on('error', (err) => this.emit('unicastError', err));
    b.start();
  }

  browse(): void {
    const b = this.#engine().browse({ type: this.#opts.type });
    this.#browser = b;
    b.on('added', (s: ServiceInstance) => this.#onInstance(s));
    b.on('changed', (s: ServiceInstance) => this.#onInstance(s));
    b.on('removed', (s: ServiceInstance) => this.#onRemoved(s));
  }

  /**
   * A found instance could not be reached (a refused dial): have the engine check the addresses
   * it was resolved to (RFC 6762 §10.4) — the stale part is usually an address (another host's,
   * left by a host-name contest), not the instance; a dead peer's addresses go too.
   */
  reconfirm(instanceName: string): void {
    this.#mdns?.reconfirmAddresses({ name: instanceName, type: this.#opts.type });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#browser?.stop();
    this.#browser = undefined;
    for (const b of this.#unicastBrowsers.splice(0)) b.stop();
    await Promise.allSettled(this.#unicastAds.splice(0).map((ad) => ad.stop()));
    const ad = this.#ad;
    this.#ad = undefined;
    await ad?.stop().catch(() => undefined);
    if (this.#ownsMdns) await this.#mdns?.close().catch(() => undefined);
    this.#mdns = undefined;
  }

  /** The instance with only the addresses on the link it was heard on. */
  #onLinkOnly(s: ServiceInstance): ServiceInstance {
    const iface = this.#mdns?.interfaces.find((i) => i.name === s.interface);
    const kept = iface ? s.addresses.filter((a) => onLink(a, iface)) : [];
    if (kept.length === s.addresses.length) return s;
    for (const a of s.addresses) {
      if (kept.includes(a)) continue;
      this.offLinkAddresses++;
      log('ignoring %s for "%s": not on %s, where it was announced', a, s.name, s.interface);
      if (discoveryChannel.hasSubscribers) discoveryChannel.publish({ reason: 'off-link-address', instance: s.name, interface: s.interface, address: a });
    }
    return { ...s, addresses: kept };
  }

  #onInstance(found: ServiceInstance): void {
    // addresses from the user's own DNS zone are not tied to a link
    const s = found.interface.startsWith(UNICAST_PREFIX) ? found : this.#onLinkOnly(found);
    let byIf = this.#seen.get(s.name);
    if (!byIf) {
      byIf = new Map();
      this.#seen.set(s.name, byIf);
    }
    byIf.set(s.interface, s);
    this.emit('found', merge(s.name, byIf));
  }

  #onRemoved(s: ServiceInstance): void {
    const byIf = this.#seen.get(s.name);
    if (!byIf) return;
    const last = byIf.get(s.interface) ?? s;
    byIf.delete(s.interface);
    if (byIf.size > 0) {
      this.emit('found', merge(s.name, byIf));
      return;
    }
    this.#seen.delete(s.name);
    this.emit('lost', merge(s.name, new Map([[s.interface, last]])));
  }
}

function merge(name: string, byIf: Map<string, ServiceInstance>): FoundService {
  const v4: string[] = [];
  const v6: string[] = [];
  let port = 0;
  let txt: Record<string, string | true> = {};
  for (const inst of byIf.values()) {
    port = inst.port;
    txt = Object.fromEntries(Object.entries(inst.txt).map(([k, v]) => [k, v === null ? true : v]));
    for (const a of inst.addresses) {
      const list = a.includes(':') ? v6 : v4;
      if (!list.includes(a)) list.push(a);
    }
  }
  return { name, port, addresses: [...v4, ...v6], txt, interfaces: [...byIf.keys()].filter((i) => !i.startsWith(UNICAST_PREFIX)) };
}
