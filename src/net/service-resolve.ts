/**
 * Service endpoints → host, port and addresses, through src/dnssd (multicast queries only;
 * never relies on unicast replies, which RFC 6762 §15 says reach only one process per host).
 */
import { isIP } from 'node:net';
import { Mdns, UnicastContext, resolveUnicastInstance } from '../dnssd/index.js';
import { escapeLabel } from '../dnssd/codec/index.js';
import { PeerlinkError } from '../errors.js';
import type { ServiceEndpoint } from './endpoint.js';
import type { ResolvedAddress } from './dial.js';
import type { Parameters } from './parameters.js';
import { HINT_FRESH_MS, serviceHints } from './service-hints.js';

export interface ResolvedService {
  host: string;
  port: number;
  addresses: ResolvedAddress[];
}

/** `fe80::1%eth0` / `10.0.0.1` → ResolvedAddress. */
export function toResolvedAddress(a: string): ResolvedAddress | undefined {
  const pct = a.indexOf('%');
  const bare = pct >= 0 ? a.slice(0, pct) : a;
  const fam = isIP(bare);
  if (fam === 0) return undefined;
  return pct >= 0 ? { address: bare, family: 6, zone: a.slice(pct + 1) } : { address: bare, family: fam as 4 | 6 };
}

/** Interfaces to resolve on: the endpoint's, else the browser's, else the dnssd default. */
function interfacesFor(endpoint: ServiceEndpoint, p: Parameters): string[] | undefined {
  if (endpoint.interface !== undefined) return [endpoint.interface];
  const hint = serviceHints.get(endpoint);
  if (hint) return hint.interfaces;
  if (p.requiredInterface !== undefined) return [p.requiredInterface];
  return undefined;
}

export async function resolveService(endpoint: ServiceEndpoint, p: Parameters, signal: AbortSignal): Promise<ResolvedService> {
  const hint = serviceHints.get(endpoint);
  if (hint && hint.addresses && hint.port !== undefined && Date.now() - hint.at < HINT_FRESH_MS) {
    const addresses = hint.addresses.map(toResolvedAddress).filter((a): a is ResolvedAddress => a !== undefined);
    if (addresses.length > 0) return { host: hint.host ?? addresses[0]?.address ?? '', port: hint.port, addresses };
  }
  const domain = endpoint.domain.replace(/\.$/, '');
  if (hint?.unicast || domain.toLowerCase() !== 'local') return resolveUnicast(endpoint, domain, hint?.unicast ?? new UnicastContext());
  const ifaces = interfacesFor(endpoint, p);
  const mdns = new Mdns({ ...(ifaces ? { interfaces: ifaces } : {}), watchInterfaces: false });
  try {
    const found = await mdns.resolve({ name: endpoint.name, type: endpoint.type, domain: endpoint.domain.replace(/\.$/, '') }, { timeout: 3000, signal });
    const first = found[0];
    if (!first) throw new PeerlinkError('ERR_RESOLVE_FAILED', `no answer for ${endpoint.name}.${endpoint.type}.${endpoint.domain}`);
    const addresses = found.flatMap((f) => f.addresses).map(toResolvedAddress).filter((a): a is ResolvedAddress => a !== undefined);
    if (addresses.length === 0) throw new PeerlinkError('ERR_RESOLVE_FAILED', `${endpoint.name} resolved to ${first.host} but it has no addresses`);
    return { host: first.host, port: first.port, addresses };
  } finally {
    await mdns.close();
  }
}

/** A service in a unicast DNS domain (wide area): SRV, TXT, addresses through DNS. */
async function resolveUnicast(endpoint: ServiceEndpoint, domain: string, ctx: UnicastContext): Promise<ResolvedService> {
  const fqdn = `${escapeLabel(endpoint.name)}.${endpoint.type.replace(/\.$/, '')}.${domain}`;
  const r = await resolveUnicastInstance(ctx, fqdn, domain);
  const inst = r?.instance;
  if (!inst) throw new PeerlinkError('ERR_RESOLVE_FAILED', `no current registration of ${endpoint.name} in ${domain}`);
  const addresses = inst.addresses.map(toResolvedAddress).filter((a): a is ResolvedAddress => a !== undefined);
  if (addresses.length === 0) throw new PeerlinkError('ERR_RESOLVE_FAILED', `${endpoint.name} resolved to ${inst.host} but it has no addresses`);
  return { host: inst.host, port: inst.port, addresses };
}
