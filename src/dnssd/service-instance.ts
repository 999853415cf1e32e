/**
 * A resolved service instance as browsers report it, and how one is assembled from the
 * cache: SRV + TXT for the instance, A/AAAA for the SRV target, all on one interface.
 */
import type { CachedRecord, RecordCache } from './cache.js';
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
  /** Address records cached under the SRV target that another host sent (left out of `addresses`). */
  foreign: number;
}

/**
 * What the cache holds for an instance on an interface.
 *
 * The addresses are those of the host that announced the SRV record, not every A/AAAA record
 * cached under the SRV target's name: during a host-name contest (RFC 6762 §9: 100 hosts named
 * `vm`, a lost probe or defence under load) several hosts answer for one name at once, each
 * with its own cache-flush set, and a loser's set stays cached after it renames (§10.2 flushes
 * only what was received more than a second before the winner's). Dialling such an address
 * reaches another peer's host at this instance's port. So an address record counts when its
 * sender is the SRV's sender — the same source address, or linked to it: a host's records name
 * its own addresses, and its packets come from one of them (both families). A record cached
 * without a source (unknown) does not filter.
 */
export function lookupParts(cache: RecordCache, fqdn: string, iface: string): ResolveParts {
  // filter on the decoded kind: a record of type SRV whose data did not parse is 'UNKNOWN'
  const newestEntry = (kind: 'SRV' | 'TXT', type: number): CachedRecord | undefined =>
    cache.get(fqdn, type, iface).filter((e) => e.record.type === kind).sort((a, b) => b.seq - a.seq)[0];
  const srvEntry = newestEntry('SRV', RRType.SRV);
  const srv = srvEntry?.record as SrvRecord | undefined;
  const txt = newestEntry('TXT', RRType.TXT)?.record as TxtRecord | undefined;
  const addresses: string[] = [];
  let foreign = 0;
  if (srv && srvEntry) {
    const v4: string[] = [];
    const v6: string[] = [];
    const entries = [...cache.get(srv.target, RRType.A, iface), ...cache.get(srv.target, RRType.AAAA, iface)];
    const kept = sameSender(entries, srvEntry);
    foreign = entries.length - kept.length;
    for (const e of kept) {
      if (e.record.type === 'A') v4.push(e.record.address);
      else if (e.record.type === 'AAAA') {
        const a = e.record.address;
        v6.push(/^fe[89ab]/i.test(a) ? `${a}%${iface}` : a);
      }
    }
    addresses.push(...[...new Set(v4)].sort(), ...[...new Set(v6)].sort());
  }
  const out: ResolveParts = { addresses, foreign };
  if (srv) out.srv = srv;
  if (txt) out.txt = txt;
  return out;
}

/** The bare form of an address or packet source (no zone, no IPv4-mapped prefix), lower case. */
function bareAddress(a: string): string {
  const h = a.toLowerCase().replace(/%.*$/, '');
  return h.startsWith('::ffff:') && h.includes('.') ? h.slice(7) : h;
}

/**
 * The address records sent by the host that sent `srv`: a record whose address or one of whose
 * sources is one of that host's addresses adds its address and sources to them (a few rounds: a
 * host's records arrive from its IPv4 and its IPv6 address — Avahi sends AAAA over IPv4 but no A
 * over IPv6, so its A record is tied to the SRV heard over IPv6 only through an AAAA record it
 * also sent over IPv4). An unknown source ('') keeps every record.
 */
function sameSender(entries: readonly CachedRecord[], srv: CachedRecord): CachedRecord[] {
  if (srv.source === '' || entries.some((e) => e.source === '')) return [...entries];
  const host = new Set(srv.sources.map(bareAddress));
  const kept = new Set<CachedRecord>();
  for (let grew = true; grew; ) {
    grew = false;
    for (const e of entries) {
      if (kept.has(e) || e.record.type !== 'A' && e.record.type !== 'AAAA') continue;
      const tied = [bareAddress(e.record.address), ...e.sources.map(bareAddress)];
      if (!tied.some((a) => host.has(a))) continue;
      kept.add(e);
      for (const a of tied) host.add(a);
      grew = true;
    }
  }
  return entries.filter((e) => kept.has(e));
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
