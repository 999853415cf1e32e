/**
 * A resolved service instance as browsers report it, and how one is assembled from the
 * cache: SRV + TXT for the instance, A/AAAA for the SRV target, all on one interface.
 */
import type { RecordCache } from './cache.js';
import { RRType, type SrvRecord, type TxtRecord } from './codec/types.js';
import { splitInstanceFqdn } from './names.js';
import { decodeTxt, txtToStrings } from './txt.js';

export interface ServiceInstance {
  /** The bare instance name: `Living Room`. */
  name: string;
  /** `_example._tcp` */
  type: string;
  /** `local` */
  domain: string;
  /** The instance's full DNS name (presentation form, '.' inside the name escaped). */
  fqdn: string;
  /** The SRV target: `vm.local`. */
  host: string;
  port: number;
  /** IPv4 first, then IPv6; IPv6 link-local addresses carry `%<interface>`. */
  addresses: string[];
  /** TXT keys as received; values as UTF-8 text, `null` for a key without '=', base64 for binary (listed in `binaryTxt`). */
  txt: Record<string, string | null>;
  binaryTxt: string[];
  /** The raw TXT strings. */
  txtRecord: Buffer[];
  /** The interface the instance was found on. */
  interface: string;
}

export interface ResolveParts {
  srv?: SrvRecord;
  txt?: TxtRecord;
  addresses: string[];
}

/** What the cache holds for an instance on an interface. */
export function lookupParts(cache: RecordCache, fqdn: string, iface: string): ResolveParts {
  // filter on the decoded kind: a record of type SRV whose data did not parse is 'UNKNOWN'
  const newest = <K extends 'SRV' | 'TXT'>(kind: K, type: number): Extract<SrvRecord | TxtRecord, { type: K }> | undefined => {
    const list = cache.get(fqdn, type, iface).filter((e) => e.record.type === kind);
    return list.sort((a, b) => b.seq - a.seq)[0]?.record as Extract<SrvRecord | TxtRecord, { type: K }> | undefined;
  };
  const srv = newest('SRV', RRType.SRV);
  const txt = newest('TXT', RRType.TXT);
  const addresses: string[] = [];
  if (srv) {
    const v4: string[] = [];
    const v6: string[] = [];
    for (const e of cache.get(srv.target, RRType.A, iface)) if (e.record.type === 'A') v4.push(e.record.address);
    for (const e of cache.get(srv.target, RRType.AAAA, iface)) {
      if (e.record.type !== 'AAAA') continue;
      const a = e.record.address;
      v6.push(/^fe[89ab]/i.test(a) ? `${a}%${iface}` : a);
    }
    addresses.push(...[...new Set(v4)].sort(), ...[...new Set(v6)].sort());
  }
  const out: ResolveParts = { addresses };
  if (srv) out.srv = srv;
  if (txt) out.txt = txt;
  return out;
}

export function buildInstance(fqdn: string, iface: string, parts: ResolveParts): ServiceInstance | undefined {
  const split = splitInstanceFqdn(fqdn);
  if (!split || !parts.srv) return undefined;
  const strings = parts.txt?.strings ?? [];
  const { txt, binary } = txtToStrings(decodeTxt(strings));
  return {
    name: split.instance,
    type: split.type,
    domain: split.domain,
    fqdn,
    host: parts.srv.target,
    port: parts.srv.port,
    addresses: parts.addresses,
    txt,
    binaryTxt: binary,
    txtRecord: strings,
    interface: iface,
  };
}

export function sameInstance(a: ServiceInstance, b: ServiceInstance): boolean {
  return (
    a.host === b.host &&
    a.port === b.port &&
    a.addresses.join(',') === b.addresses.join(',') &&
    a.txtRecord.length === b.txtRecord.length &&
    a.txtRecord.every((s, i) => s.equals(b.txtRecord[i] as Buffer))
  );
}
