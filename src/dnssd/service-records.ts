/**
 * The records a host and its services publish (RFC 6763 §4-§9, RFC 6762 §10 TTLs):
 * shared PTRs for the type, subtypes and `_services._dns-sd._udp` enumeration; unique
 * (cache-flush) SRV, TXT and the host's A/AAAA records on each interface.
 */
import type { NetworkInterface } from '../path/interfaces.js';
import { nameKey } from './codec/name.js';
import { CLASS_IN, rrTypeNumber, type ResourceRecord } from './codec/types.js';
import { SERVICES_ENUMERATION, instanceFqdn, serviceTypeFqdn, subtypeFqdn, type ServiceType } from './names.js';

export const HOST_TTL = 120;
export const SRV_TTL = 120;
export const PTR_TTL = 4500;
export const TXT_TTL = 4500;

export interface ServiceDescription {
  instance: string;
  type: ServiceType;
  domain: string;
  port: number;
  txt: Buffer[];
  subtypes: string[];
}

export function hostRecords(hostFqdn: string, iface: NetworkInterface, ttl = HOST_TTL): ResourceRecord[] {
  const out: ResourceRecord[] = [];
  for (const a of iface.addresses) {
    const address = a.address.split('%')[0] as string;
    out.push(a.family === 'IPv4'
      ? { name: hostFqdn, type: 'A', address, ttl, rrclass: CLASS_IN, cacheFlush: true }
      : { name: hostFqdn, type: 'AAAA', address, ttl, rrclass: CLASS_IN, cacheFlush: true });
  }
  return out;
}

/** SRV and TXT: the records whose name (the instance) must be unique. */
export function uniqueServiceRecords(s: ServiceDescription, hostFqdn: string, ttlScale = 1): ResourceRecord[] {
  const name = instanceFqdn(s.instance, s.type, s.domain);
  return [
    { name, type: 'SRV', priority: 0, weight: 0, port: s.port, target: hostFqdn, ttl: SRV_TTL * ttlScale, rrclass: CLASS_IN, cacheFlush: true },
    { name, type: 'TXT', strings: s.txt, ttl: TXT_TTL * ttlScale, rrclass: CLASS_IN, cacheFlush: true },
  ];
}

/** The shared PTRs: type -> instance, each subtype -> instance, enumeration -> type. */
export function sharedServiceRecords(s: ServiceDescription, ttlScale = 1): ResourceRecord[] {
  const target = instanceFqdn(s.instance, s.type, s.domain);
  const typeName = serviceTypeFqdn(s.type, s.domain);
  const ttl = PTR_TTL * ttlScale;
  const out: ResourceRecord[] = [{ name: typeName, type: 'PTR', target, ttl, rrclass: CLASS_IN, cacheFlush: false }];
  for (const sub of s.subtypes) out.push({ name: subtypeFqdn(sub, s.type, s.domain), type: 'PTR', target, ttl, rrclass: CLASS_IN, cacheFlush: false });
  out.push(enumerationRecord(s, ttl));
  return out;
}

export function enumerationRecord(s: ServiceDescription, ttl = PTR_TTL): ResourceRecord {
  const enumName = s.domain === 'local' ? SERVICES_ENUMERATION : `_services._dns-sd._udp.${s.domain}`;
  return { name: enumName, type: 'PTR', target: serviceTypeFqdn(s.type, s.domain), ttl, rrclass: CLASS_IN, cacheFlush: false };
}

/**
 * The NSEC record asserting which types exist at a unique name we own (RFC 6762 §6.1):
 * it answers questions for types we do not have (e.g. AAAA on an IPv4-only host).
 */
export function nsecFor(name: string, records: readonly ResourceRecord[]): ResourceRecord | undefined {
  const mine = records.filter((r) => nameKey(r.name) === nameKey(name) && r.type !== 'NSEC');
  if (mine.length === 0) return undefined;
  const types = [...new Set(mine.map(rrTypeNumber))].sort((a, b) => a - b);
  const ttl = Math.min(...mine.map((r) => r.ttl));
  return { name, type: 'NSEC', next: name, types, ttl, rrclass: CLASS_IN, cacheFlush: true };
}

/** Records plus the NSEC for each distinct name among them. */
export function withNsec(records: readonly ResourceRecord[]): ResourceRecord[] {
  const names = new Map<string, string>();
  for (const r of records) names.set(nameKey(r.name), r.name);
  const out = [...records];
  for (const name of names.values()) {
    const n = nsecFor(name, records);
    if (n) out.push(n);
  }
  return out;
}
