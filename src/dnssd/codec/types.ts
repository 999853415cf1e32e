/**
 * DNS message model used by the mDNS engine. Names are in DNS presentation form without
 * the trailing dot: labels joined by '.', with a '.' or '\' inside a label escaped as '\.'
 * and '\\' (instance names such as "Mr. Smith's printer" contain dots).
 */

export const RRType = {
  A: 1,
  PTR: 12,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  NSEC: 47,
  SOA: 6,
  ANY: 255,
} as const;

export const CLASS_IN = 1;
/** Top bit of the class field: cache-flush in records, unicast-response (QU) in questions. */
export const CLASS_TOP_BIT = 0x8000;

export interface Question {
  name: string;
  /** Numeric RR type; RRType.ANY matches all. */
  qtype: number;
  qclass: number;
  /** mDNS QU bit (RFC 6762 §5.4). */
  unicastResponse: boolean;
}

interface RecordBase {
  name: string;
  ttl: number;
  rrclass: number;
  /** mDNS cache-flush bit (RFC 6762 §10.2). */
  cacheFlush: boolean;
}

export interface ARecord extends RecordBase {
  type: 'A';
  address: string;
}
export interface AAAARecord extends RecordBase {
  type: 'AAAA';
  /** Without zone; the interface a record belongs to is known from where it was received. */
  address: string;
}
export interface PtrRecord extends RecordBase {
  type: 'PTR';
  target: string;
}
export interface SrvRecord extends RecordBase {
  type: 'SRV';
  priority: number;
  weight: number;
  port: number;
  target: string;
}
export interface TxtRecord extends RecordBase {
  type: 'TXT';
  /** The character-strings, each <= 255 bytes. */
  strings: Buffer[];
}
export interface NsecRecord extends RecordBase {
  type: 'NSEC';
  next: string;
  /** Numeric RR types present at the name. */
  types: number[];
}
/** Unicast DNS only (zone discovery, RFC 1035 §3.3.13); mDNS never uses it. */
export interface SoaRecord extends RecordBase {
  type: 'SOA';
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}
/** Any other type, kept as raw bytes (names inside it are not decompressed). */
export interface UnknownRecord extends RecordBase {
  type: 'UNKNOWN';
  rrtype: number;
  data: Buffer;
}

export type ResourceRecord = ARecord | AAAARecord | PtrRecord | SrvRecord | TxtRecord | NsecRecord | SoaRecord | UnknownRecord;

export interface DnsPacket {
  id: number;
  /** QR bit: true for responses. */
  response: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  rcode: number;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
}

export function rrTypeNumber(r: ResourceRecord): number {
  switch (r.type) {
    case 'A':
      return RRType.A;
    case 'AAAA':
      return RRType.AAAA;
    case 'PTR':
      return RRType.PTR;
    case 'SRV':
      return RRType.SRV;
    case 'TXT':
      return RRType.TXT;
    case 'NSEC':
      return RRType.NSEC;
    case 'SOA':
      return RRType.SOA;
    case 'UNKNOWN':
      return r.rrtype;
  }
}

export function emptyPacket(response: boolean): DnsPacket {
  return { id: 0, response, opcode: 0, authoritative: response, truncated: false, rcode: 0, questions: [], answers: [], authorities: [], additionals: [] };
}
