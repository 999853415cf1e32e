/**
 * The wide-area options every layer above takes (net Browser / Listener, PeerSession, the
 * CLI): which unicast domains, which server, which key, which limits. `resolveWideArea` turns them into
 * one UnicastContext.
 */
import { PeerlinkError } from '../../errors.js';
import { parseServer, type DnsServer } from './client.js';
import type { UnicastLimits } from './limits.js';
import { UnicastContext } from './context.js';
import type { TsigKey } from './tsig.js';
import { discoverBrowseDomains } from './browse.js';

export interface WideAreaOptions {
  /** Unicast DNS-SD domains to register in and browse, beside mDNS's `local` (e.g. `['example.com']`). */
  domains?: string[];
  /** DNS server to query and to send updates to: `ADDR`, `ADDR:PORT`, `[V6]:PORT` or an object. Default: /etc/resolv.conf's, updates to the zone's primary (SOA MNAME). */
  dnsServer?: string | DnsServer;
  /** TSIG key for updates (readKeyFile / parseKeyFile). Without it, registration in a unicast domain fails with ERR_DNS_UPDATE_REFUSED. */
  tsig?: TsigKey;
  /** Registration lease, seconds (default 600): how long a killed process's records are still reported. */
  lease?: number;
  /** Addresses to register (default: this host's addresses that are not loopback or link-local). */
  addresses?: string[];
  /** Longest time between two browse queries, seconds (default 30; within it, the records' TTL). */
  maxBrowseInterval?: number;
  /**
   * Also browse the domains listed as browse domains (RFC 6763 §11: `b._dns-sd._udp` and
   * `lb._dns-sd._udp` PTRs) under /etc/resolv.conf's search domains and `domains`. Default false.
   */
  discoverDomains?: boolean;
  /**
   * What a DNS server (or whoever answers in its name) can make us spend: answer sizes, time
   * per query, instances followed and resolved, polling rate, renames, browse domains. Defaults
   * in DEFAULT_UNICAST_LIMITS (docs/wide-area.md "Limits").
   */
  limits?: Partial<UnicastLimits>;
}

export interface ResolvedWideArea {
  domains: string[];
  ctx: UnicastContext;
  lease: number | undefined;
  addresses: string[] | undefined;
  maxBrowseInterval: number | undefined;
  discoverDomains: boolean;
}

/** Undefined when no domain is asked for. */
export function resolveWideArea(o: WideAreaOptions | undefined): ResolvedWideArea | undefined {
  const domains = [...new Set((o?.domains ?? []).map((d) => d.trim().replace(/\.$/, '')).filter((d) => d !== ''))];
  if (!o || (domains.length === 0 && !o.discoverDomains)) return undefined;
  for (const d of domains) if (d.toLowerCase() === 'local') throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'the "local" domain is mDNS; give unicast domains only (e.g. example.com)');
  const dnsServer = typeof o.dnsServer === 'string' ? parseServer(o.dnsServer) : o.dnsServer;
  if (o.lease !== undefined && (!Number.isFinite(o.lease) || o.lease < 2)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', 'lease must be at least 2 seconds');
  const ctx = new UnicastContext({ ...(dnsServer ? { dnsServer } : {}), ...(o.tsig ? { tsig: o.tsig } : {}), ...(o.limits ? { limits: o.limits } : {}) });
  return { domains, ctx, lease: o.lease, addresses: o.addresses, maxBrowseInterval: o.maxBrowseInterval, discoverDomains: o.discoverDomains === true };
}

/** The domains to browse: the given ones, plus (discoverDomains) the browse domains listed under them and the search domains. */
export async function browseDomainsOf(wa: ResolvedWideArea): Promise<string[]> {
  const out = [...wa.domains];
  if (!wa.discoverDomains) return out;
  const found = await discoverBrowseDomains(wa.ctx, [...wa.ctx.resolv.search, ...wa.domains]);
  for (const d of found) {
    if (d.domain.toLowerCase() === 'local' || d.domain === '') continue;
    if (!out.some((x) => x.toLowerCase() === d.domain.toLowerCase())) out.push(d.domain);
  }
  return out;
}
