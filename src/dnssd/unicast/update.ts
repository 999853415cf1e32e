/**
 * RFC 2136 UPDATE messages: the zone section (one SOA question), prerequisites (in the
 * answer section) and updates (in the authority section), with the class/TTL/RDATA
 * conventions of RFC 2136 §2.4 and §2.5 spelled out as helpers.
 */
import { encodePacket } from '../codec/encode.js';
import { CLASS_IN, RRType, type ResourceRecord } from '../codec/types.js';

export const OPCODE_QUERY = 0;
export const OPCODE_UPDATE = 5;
export const RRTYPE_SOA = 6;
export const RRTYPE_OPT = 41;
export const CLASS_NONE = 254;
export const CLASS_ANY = 255;

/** DNS RCODEs (RFC 1035 §4.1.1, RFC 2136 §2.2). */
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, YXDOMAIN: 6, YXRRSET: 7, NXRRSET: 8, NOTAUTH: 9, NOTZONE: 10 } as const;

export function rcodeName(rcode: number): string {
  const e = Object.entries(Rcode).find(([, v]) => v === rcode);
  return e ? e[0] : `RCODE${rcode}`;
}

function empty(name: string, rrtype: number, rrclass: number): ResourceRecord {
  return { name, ttl: 0, rrclass, cacheFlush: false, type: 'UNKNOWN', rrtype, data: Buffer.alloc(0) };
}

/** RFC 2136 §2.4.5: no RR of any type owns `name`. */
export function nameNotInUse(name: string): ResourceRecord {
  return empty(name, RRType.ANY, CLASS_NONE);
}
/** RFC 2136 §2.4.4: at least one RR owns `name`. */
export function nameInUse(name: string): ResourceRecord {
  return empty(name, RRType.ANY, CLASS_ANY);
}
/** RFC 2136 §2.4.1: an RRset of `rrtype` exists at `name` (value independent). */
export function rrsetExists(name: string, rrtype: number): ResourceRecord {
  return empty(name, rrtype, CLASS_ANY);
}
/**
 * RFC 2136 §2.4.2: the RRset exists with exactly these records (value dependent). The whole
 * RRset must be given; TTLs are ignored and sent as 0.
 */
export function rrsetEquals(records: readonly ResourceRecord[]): ResourceRecord[] {
  return records.map((r) => ({ ...r, ttl: 0, rrclass: CLASS_IN, cacheFlush: false }));
}

/** RFC 2136 §2.5.2: delete an RRset. */
export function deleteRRset(name: string, rrtype: number): ResourceRecord {
  return empty(name, rrtype, CLASS_ANY);
}
/** RFC 2136 §2.5.3: delete every RRset at a name. */
export function deleteName(name: string): ResourceRecord {
  return empty(name, RRType.ANY, CLASS_ANY);
}
/** RFC 2136 §2.5.4: delete one RR. */
export function deleteRecord(r: ResourceRecord): ResourceRecord {
  return { ...r, ttl: 0, rrclass: CLASS_NONE, cacheFlush: false };
}
/** RFC 2136 §2.5.1: add an RR (class IN). */
export function addRecord(r: ResourceRecord): ResourceRecord {
  return { ...r, rrclass: CLASS_IN, cacheFlush: false };
}

export interface UpdateMessage {
  id: number;
  zone: string;
  prerequisites: ResourceRecord[];
  updates: ResourceRecord[];
}

/** Encodes an unsigned UPDATE (sign it with signMessage). Up to 65535 bytes: sent over TCP when large. */
export function encodeUpdate(u: UpdateMessage): Buffer {
  return encodePacket(
    {
      id: u.id,
      response: false,
      opcode: OPCODE_UPDATE,
      authoritative: false,
      truncated: false,
      rcode: 0,
      questions: [{ name: u.zone, qtype: RRTYPE_SOA, qclass: CLASS_IN, unicastResponse: false }],
      answers: u.prerequisites,
      authorities: u.updates,
      additionals: [],
    },
    65535,
  );
}

/** EDNS(0) OPT pseudo-record (RFC 6891 §6.1.2): the class field carries our UDP payload size. */
export function optRecord(udpPayload: number): ResourceRecord {
  return { name: '', ttl: 0, rrclass: udpPayload, cacheFlush: false, type: 'UNKNOWN', rrtype: RRTYPE_OPT, data: Buffer.alloc(0) };
}

/** A standard query with EDNS(0) (recursion desired, for the system resolver). */
export function encodeQuery(id: number, name: string, qtype: number, udpPayload: number): Buffer {
  const buf = encodePacket(
    {
      id,
      response: false,
      opcode: OPCODE_QUERY,
      authoritative: false,
      truncated: false,
      rcode: 0,
      questions: [{ name, qtype, qclass: CLASS_IN, unicastResponse: false }],
      answers: [],
      authorities: [],
      additionals: [optRecord(udpPayload)],
    },
    65535,
  );
  // RD: a recursive resolver answers for zones it is not authoritative for
  buf.writeUInt16BE(buf.readUInt16BE(2) | 0x0100, 2);
  return buf;
}
