/**
 * Wide-area DNS-SD flags (docs/wide-area.md), shared by advertise, browse, chat, send and
 * receive: `--domain NAME` (repeatable, added to mDNS's `local`), `--dns-server ADDR[:PORT]`,
 * `--tsig-file FILE` (BIND key file; or PEERLINK_TSIG=[ALG:]NAME:BASE64), `--lease SECONDS`.
 * The key is read from a file or the environment only, never from argv.
 */
import { parseKeySpec, readKeyFile, type TsigKey, type WideAreaOptions } from '../dnssd/index.js';
import { isIP } from 'node:net';
import { UsageError } from './args.js';

export const wideAreaFlags = {
  domain: { type: 'string', multiple: true },
  'dns-server': { type: 'string' },
  'tsig-file': { type: 'string' },
  lease: { type: 'string' },
  'publish-address': { type: 'string', multiple: true },
  'discover-domains': { type: 'boolean' },
} as const;

export const WIDE_AREA_FLAGS_HELP = `  --domain NAME        also use the unicast DNS-SD domain NAME (repeatable), beside
                       mDNS's local: register there with signed updates, browse it
  --dns-server ADDR[:PORT]  DNS server to ask and update (default: /etc/resolv.conf's;
                       updates go to the zone's primary from its SOA)
  --tsig-file FILE     TSIG key for updates, BIND key-file format (tsig-keygen's);
                       or PEERLINK_TSIG=[ALGORITHM:]NAME:BASE64
  --lease SECONDS      how long our records outlive a killed process (default 600)
  --publish-address ADDR  the address to register in the domain (repeatable; default:
                       this host's addresses that are not loopback or link-local)
  --discover-domains   also browse the browse domains listed (b._dns-sd._udp,
                       lb._dns-sd._udp) under /etc/resolv.conf's search domains`;

export interface WideAreaFlagValues {
  domain?: string[];
  'dns-server'?: string;
  'tsig-file'?: string;
  lease?: string;
  'publish-address'?: string[];
  'discover-domains'?: boolean;
}

/** Undefined without --domain or --discover-domains; the flags that need one are refused without it. */
export function wideAreaFromFlags(values: WideAreaFlagValues, env: NodeJS.ProcessEnv): WideAreaOptions | undefined {
  const domains = values.domain ?? [];
  if (domains.length === 0 && !values['discover-domains']) {
    for (const f of ['dns-server', 'tsig-file', 'lease', 'publish-address'] as const) if (values[f] !== undefined) throw new UsageError(`--${f} needs --domain NAME`);
    return undefined;
  }
  let tsig: TsigKey | undefined;
  if (values['tsig-file'] !== undefined) tsig = readKeyFile(values['tsig-file']);
  else if (env.PEERLINK_TSIG) tsig = parseKeySpec(env.PEERLINK_TSIG);
  const out: WideAreaOptions = { domains, ...(values['discover-domains'] ? { discoverDomains: true } : {}) };
  if (tsig) out.tsig = tsig;
  if (values['dns-server'] !== undefined) out.dnsServer = values['dns-server'];
  if (values.lease !== undefined) {
    const n = Number(values.lease);
    if (!Number.isInteger(n) || n < 2) throw new UsageError(`--lease expects whole seconds >= 2, got "${values.lease}"`);
    out.lease = n;
  }
  const addrs = values['publish-address'];
  if (addrs) {
    for (const a of addrs) if (isIP(a) === 0) throw new UsageError(`--publish-address expects an IPv4 or IPv6 address, got "${a}"`);
    out.addresses = addrs;
  }
  return out;
}
