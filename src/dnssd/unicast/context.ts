/**
 * Where unicast DNS-SD asks: the system's resolvers and search domains (/etc/resolv.conf),
 * or one server given by the user; the zone a domain belongs to and its primary (the SOA
 * MNAME, RFC 2136 §4), where updates go.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { PeerlinkError } from '../../errors.js';
import { nameKey } from '../codec/name.js';
import { RRType, type ResourceRecord } from '../codec/types.js';
import { DnsClient, formatServer, type DnsServer } from './client.js';
import type { TsigKey } from './tsig.js';
import { RRTYPE_SOA } from './update.js';
import { resolveUnicastLimits, type UnicastLimits } from './limits.js';

export interface UnicastOptions {
  /** The DNS server to ask and to update (default: the system's resolvers; updates go to the zone's primary). */
  dnsServer?: DnsServer;
  /** TSIG key for updates (and for removing expired registrations). */
  tsig?: TsigKey;
  /** A client of the caller's (tests); by default one made with `limits`. */
  client?: DnsClient;
  /** What a DNS server can make us spend (defaults DEFAULT_UNICAST_LIMITS). */
  limits?: Partial<UnicastLimits>;
  /** Read instead of /etc/resolv.conf (tests). */
  resolvConf?: string;
}

export interface ResolvConf {
  nameservers: DnsServer[];
  search: string[];
}

const MAX_RESOLV_BYTES = 64 * 1024;

export function parseResolvConf(text: string): ResolvConf {
  const nameservers: DnsServer[] = [];
  let search: string[] = [];
  for (const raw of text.slice(0, MAX_RESOLV_BYTES).split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [word, ...rest] = line.split(/\s+/);
    if (word === 'nameserver' && rest[0] && isIP(rest[0].replace(/%.*$/, '')) !== 0) nameservers.push({ address: rest[0], port: 53 });
    // the last of domain / search wins (resolv.conf(5))
    else if (word === 'search') search = rest.filter(Boolean);
    else if (word === 'domain' && rest[0]) search = [rest[0]];
  }
  return { nameservers: nameservers.slice(0, 3), search: search.map((d) => d.replace(/\.$/, '')).filter((d) => d !== '' && d !== '.').slice(0, 6) };
}

export function readResolvConf(path = '/etc/resolv.conf'): ResolvConf {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return { nameservers: [], search: [] };
  }
}

export interface ZoneInfo {
  zone: string;
  /** Primary master (SOA MNAME). */
  mname: string;
}

export class UnicastContext {
  readonly client: DnsClient;
  readonly limits: UnicastLimits;
  readonly key: TsigKey | undefined;
  readonly #server: DnsServer | undefined;
  readonly #resolvPath: string | undefined;
  #resolv: ResolvConf | undefined;

  constructor(opts: UnicastOptions = {}) {
    this.limits = resolveUnicastLimits(opts.limits);
    const l = this.limits;
    this.client = opts.client ?? new DnsClient({ timeoutMs: l.queryTimeout, attempts: l.queryAttempts, maxUdpAnswer: l.maxUdpAnswer, maxTcpAnswer: l.maxTcpAnswer });
    this.key = opts.tsig;
    this.#server = opts.dnsServer;
    this.#resolvPath = opts.resolvConf;
  }

  get resolv(): ResolvConf {
    this.#resolv ??= readResolvConf(this.#resolvPath);
    return this.#resolv;
  }

  /** Servers to ask, in order. */
  get servers(): DnsServer[] {
    return this.#server ? [this.#server] : this.resolv.nameservers;
  }

  /** One question to the first server that answers. */
  async query(name: string, qtype: number): Promise<ResourceRecord[]> {
    const servers = this.servers;
    if (servers.length === 0) throw new PeerlinkError('ERR_DNS_TIMEOUT', 'no DNS server: give --dns-server (dnsServer) or configure /etc/resolv.conf');
    let lastErr: unknown;
    for (const s of servers) {
      try {
        const p = await this.client.query(s, name, qtype);
        // the answer section with CNAMEs followed by our type; only our name's records and the chain
        return [...p.answers, ...p.authorities];
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr;
  }

  /** The zone that holds `domain`, from its SOA (in the answer at the apex, in the authority section below it). */
  async zoneOf(domain: string): Promise<ZoneInfo> {
    const recs = await this.query(domain, RRTYPE_SOA);
    const soa = recs.find((r) => r.type === 'SOA' && (nameKey(domain) === nameKey(r.name) || nameKey(domain).endsWith(`.${nameKey(r.name)}`)));
    if (!soa || soa.type !== 'SOA') throw new PeerlinkError('ERR_DNS_SERVER_FAILURE', `no zone found for ${domain} (no SOA record in the answer of ${this.servers.map(formatServer).join(', ')})`);
    return { zone: soa.name, mname: soa.mname };
  }

  /** Where updates for `zone` go: the given server, else the SOA MNAME's address, port 53. */
  async primaryFor(info: ZoneInfo): Promise<DnsServer> {
    if (this.#server) return this.#server;
    if (isIP(info.mname) !== 0) return { address: info.mname, port: 53 };
    for (const t of [RRType.A, RRType.AAAA]) {
      const recs = await this.query(info.mname, t).catch(() => []);
      const a = recs.find((r) => (r.type === 'A' || r.type === 'AAAA') && nameKey(r.name) === nameKey(info.mname));
      if (a && (a.type === 'A' || a.type === 'AAAA')) return { address: a.address, port: 53 };
    }
    throw new PeerlinkError('ERR_DNS_SERVER_FAILURE', `cannot find the address of ${info.mname}, the primary of zone ${info.zone}; give --dns-server`);
  }
}
