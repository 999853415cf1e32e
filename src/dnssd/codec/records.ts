/**
 * Record identity and ordering: what makes two records "the same" (name, type, class,
 * rdata) and the lexicographic order used by simultaneous-probe tie-breaking (RFC 6762 §8.2).
 */
import { PacketWriter } from './encode.js';
import { nameKey } from './name.js';
import { rrTypeNumber, type ResourceRecord } from './types.js';

export function rdataOf(r: ResourceRecord): Buffer {
  return PacketWriter.rdata(r);
}

/**
 * Keys already computed, per record object. A received query's known answers are keyed by the
 * querier, the responder and the failure watch, and cached records on every lookup: with N
 * peers on a link that is O(N) records in each of O(N) packets a peer hears. Records are not
 * mutated once built (the cache replaces an entry's record; TTL is not part of the key).
 */
const keys = new WeakMap<ResourceRecord, string>();

/** A key that is equal for records with the same name, type, class and rdata. */
export function recordKey(r: ResourceRecord): string {
  let k = keys.get(r);
  if (k === undefined) {
    k = `${nameKey(r.name)}|${rrTypeNumber(r)}|${r.rrclass}|${rdataOf(r).toString('hex')}`;
    keys.set(r, k);
  }
  return k;
}

/**
 * The decoder keys a record from its uncompressed rdata as it stood on the wire (hex), for
 * the types whose wire form is exactly what PacketWriter writes for the decoded record (A,
 * AAAA, TXT, and PTR / SRV with their names' pointers followed): nearly every record a peer
 * hears is keyed, and re-encoding each one for it was a quarter of the mDNS engine's CPU at
 * 64 peers (bench/scale/README.md, "Session 11"). Same key as recordKey; returns the record.
 */
export function keyedFromWire<T extends ResourceRecord>(r: T, rrtype: number, rdataHex: string): T {
  keys.set(r, `${nameKey(r.name)}|${rrtype}|${r.rrclass}|${rdataHex}`);
  return r;
}

/** Name + type + class: the "RRSet" a record belongs to. */
export function rrsetKey(r: ResourceRecord): string {
  return `${nameKey(r.name)}|${rrTypeNumber(r)}|${r.rrclass}`;
}

export function sameRecord(a: ResourceRecord, b: ResourceRecord): boolean {
  return recordKey(a) === recordKey(b);
}

/** Compares two records by class, then type, then raw rdata bytes (RFC 6762 §8.2). */
export function compareRecords(a: ResourceRecord, b: ResourceRecord): number {
  if (a.rrclass !== b.rrclass) return a.rrclass - b.rrclass;
  const ta = rrTypeNumber(a);
  const tb = rrTypeNumber(b);
  if (ta !== tb) return ta - tb;
  // the keys end in the rdata as hex: two hex digits a byte, so string order is byte order
  const ka = recordKey(a);
  const kb = recordKey(b);
  const ha = ka.slice(ka.lastIndexOf('|') + 1);
  const hb = kb.slice(kb.lastIndexOf('|') + 1);
  return ha < hb ? -1 : ha > hb ? 1 : 0;
}

/**
 * Tie-break between two sets of probe records for one name (RFC 6762 §8.2): sort each,
 * compare pairwise; the first difference decides, and a set that runs out first is
 * lexicographically earlier. Returns <0 when `ours` loses, >0 when it wins, 0 when equal.
 */
export function compareProbeSets(ours: readonly ResourceRecord[], theirs: readonly ResourceRecord[]): number {
  const a = [...ours].sort(compareRecords);
  const b = [...theirs].sort(compareRecords);
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareRecords(a[i] as ResourceRecord, b[i] as ResourceRecord);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}
