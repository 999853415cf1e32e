/**
 * Strictly bounded DNS message parser. Every length read from the wire is checked before
 * use; compression pointers must point before the start of the label run that contains
 * them (so offsets strictly decrease and a loop is impossible) and are hop-limited; names
 * stop at 255 bytes; record counts are capped by what the packet could possibly hold.
 * Any violation is a PeerlinkError('ERR_MALFORMED_PACKET'); nothing else escapes.
 */
import { PeerlinkError } from '../../errors.js';
import { CLASS_TOP_BIT, RRType, type DnsPacket, type Question, type ResourceRecord } from './types.js';
import { MAX_LABEL_BYTES, MAX_NAME_BYTES, escapeLabel } from './name.js';
import { keyedFromWire } from './records.js';

/** mDNS packets are at most 9000 bytes (RFC 6762 §17); anything larger is refused. */
export const MAX_PACKET_BYTES = 9000;
/** A cap on questions + records per packet, far above real traffic. */
export const MAX_RECORDS = 512;
const MAX_POINTER_HOPS = 32;
/** Smallest possible question (root name + type + class) and record (plus ttl + rdlength). */
const MIN_QUESTION = 5;
const MIN_RECORD = 11;

function malformed(why: string): PeerlinkError {
  return new PeerlinkError('ERR_MALFORMED_PACKET', `malformed DNS packet: ${why}`);
}

class Reader {
  constructor(readonly buf: Buffer) {}

  u8(off: number): number {
    if (off + 1 > this.buf.length) throw malformed('truncated');
    return this.buf[off] as number;
  }
  u16(off: number): number {
    if (off + 2 > this.buf.length) throw malformed('truncated');
    return this.buf.readUInt16BE(off);
  }
  u32(off: number): number {
    if (off + 4 > this.buf.length) throw malformed('truncated');
    return this.buf.readUInt32BE(off);
  }

  /** Reads a name at `off`; returns it and the offset after it (after the first pointer, if any). */
  name(off: number, limit = this.buf.length): [string, number] {
    const labels: string[] = [];
    let wireLen = 1;
    let pos = off;
    let runStart = off;
    let end = -1;
    let hops = 0;
    for (;;) {
      if (pos >= limit) throw malformed('name runs past its data');
      const len = this.u8(pos);
      if (len === 0) {
        if (end < 0) end = pos + 1;
        break;
      }
      const kind = len & 0xc0;
      if (kind === 0xc0) {
        const target = this.u16(pos) & 0x3fff;
        if (end < 0) end = pos + 2;
        if (++hops > MAX_POINTER_HOPS) throw malformed('too many compression pointers');
        // strictly backward from the start of the current run: offsets always decrease
        if (target >= runStart) throw malformed('compression pointer does not point backward');
        pos = target;
        runStart = target;
        // after a pointer the name may lie anywhere earlier in the packet
        limit = this.buf.length;
        continue;
      }
      if (kind !== 0) throw malformed('unsupported label type');
      if (len > MAX_LABEL_BYTES) throw malformed('label longer than 63 bytes');
      wireLen += len + 1;
      if (wireLen > MAX_NAME_BYTES) throw malformed('name longer than 255 bytes');
      if (pos + 1 + len > limit) throw malformed('label runs past its data');
      labels.push(escapeLabel(decodeLabel(this.buf, pos + 1, pos + 1 + len)));
      pos += 1 + len;
    }
    return [labels.join('.'), end];
  }

  /**
   * The uncompressed wire form of a name `name()` already read at `off`, as hex: each label's
   * length byte and bytes as they stand in the packet (contiguous), pointers followed, then the
   * root. Equal to what PacketWriter writes for the decoded name (labels are strict UTF-8).
   */
  nameHex(off: number): string {
    let hex = '';
    let pos = off;
    for (let hops = 0; hops <= MAX_POINTER_HOPS; ) {
      const len = this.u8(pos);
      if (len === 0) return `${hex}00`;
      if ((len & 0xc0) === 0xc0) {
        pos = this.u16(pos) & 0x3fff;
        hops++;
        continue;
      }
      hex += this.buf.toString('hex', pos, pos + 1 + len);
      pos += 1 + len;
    }
    throw malformed('too many compression pointers');
  }
}

// ignoreBOM: a label that starts with U+FEFF keeps it, so decode -> encode stays exact
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Labels must be UTF-8 (RFC 6762 §16). Refusing anything else keeps decode -> encode exact:
 * a lenient decoder would turn each bad byte into U+FFFD (3 bytes) and a 63-byte label
 * could come back too long to write.
 */
function decodeLabel(buf: Buffer, start: number, end: number): string {
  // most labels are ASCII: those need no UTF-8 decoder (nor a subarray to hand it)
  let ascii = true;
  for (let i = start; i < end; i++) {
    if ((buf[i] as number) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return buf.toString('latin1', start, end);
  try {
    return utf8.decode(buf.subarray(start, end));
  } catch {
    throw malformed('label is not UTF-8');
  }
}

function ipv6String(buf: Buffer, off: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(off + i * 2).toString(16));
  // compress the longest run of zero groups (RFC 5952)
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

function readRecord(r: Reader, off: number): [ResourceRecord, number] {
  const [name, p] = r.name(off);
  const rrtype = r.u16(p);
  const klass = r.u16(p + 2);
  const ttl = r.u32(p + 4);
  const rdlength = r.u16(p + 8);
  const start = p + 10;
  const end = start + rdlength;
  if (end > r.buf.length) throw malformed('rdlength exceeds packet');
  const rrclass = klass & ~CLASS_TOP_BIT;
  const cacheFlush = (klass & CLASS_TOP_BIT) !== 0;
  try {
    return [readRdata(r, name, ttl, rrclass, cacheFlush, rrtype, start, end), end];
  } catch (err) {
    // The record's frame (rdlength) is sound, so the rest of the packet is trustworthy: keep
    // a record whose data we cannot parse as raw bytes rather than dropping the packet.
    // Real senders need this: python-zeroconf 0.47 writes NSEC bitmap headers as 16-bit words.
    if (!(err instanceof PeerlinkError)) throw err;
    return [{ name, ttl, rrclass, cacheFlush, type: 'UNKNOWN', rrtype, data: Buffer.from(r.buf.subarray(start, end)) }, end];
  }
}

/** Record objects are built as literals (one shape per type, fields in this order), not spread from a base. */
function readRdata(r: Reader, name: string, ttl: number, rrclass: number, cacheFlush: boolean, rrtype: number, start: number, end: number): ResourceRecord {
  const rdlength = end - start;
  const exact = (consumed: number): void => {
    if (consumed !== end) throw malformed(`record data length mismatch for type ${rrtype}`);
  };
  switch (rrtype) {
    case RRType.A:
      if (rdlength !== 4) throw malformed('A record data is not 4 bytes');
      return keyedFromWire({ name, ttl, rrclass, cacheFlush, type: 'A', address: `${r.buf[start]}.${r.buf[start + 1]}.${r.buf[start + 2]}.${r.buf[start + 3]}` }, rrtype, r.buf.toString('hex', start, end));
    case RRType.AAAA:
      if (rdlength !== 16) throw malformed('AAAA record data is not 16 bytes');
      return keyedFromWire({ name, ttl, rrclass, cacheFlush, type: 'AAAA', address: ipv6String(r.buf, start) }, rrtype, r.buf.toString('hex', start, end));
    case RRType.PTR: {
      const [target, q] = r.name(start, end);
      exact(q);
      return keyedFromWire({ name, ttl, rrclass, cacheFlush, type: 'PTR', target }, rrtype, r.nameHex(start));
    }
    case RRType.SRV: {
      if (rdlength < 7) throw malformed('SRV record too short');
      const [target, q] = r.name(start + 6, end);
      exact(q);
      return keyedFromWire({ name, ttl, rrclass, cacheFlush, type: 'SRV', priority: r.u16(start), weight: r.u16(start + 2), port: r.u16(start + 4), target }, rrtype, r.buf.toString('hex', start, start + 6) + r.nameHex(start + 6));
    }
    case RRType.TXT: {
      const strings: Buffer[] = [];
      let q = start;
      while (q < end) {
        const len = r.u8(q);
        if (q + 1 + len > end) throw malformed('TXT string runs past its record');
        strings.push(Buffer.from(r.buf.subarray(q + 1, q + 1 + len)));
        q += 1 + len;
      }
      // rdlength 0 is not a valid TXT record; read it as the empty one (a single empty string)
      if (strings.length === 0) strings.push(Buffer.alloc(0));
      return keyedFromWire({ name, ttl, rrclass, cacheFlush, type: 'TXT', strings }, rrtype, rdlength === 0 ? '00' : r.buf.toString('hex', start, end));
    }
    case RRType.NSEC: {
      const [next, q0] = r.name(start, end);
      const types: number[] = [];
      let q = q0;
      while (q < end) {
        const win = r.u8(q);
        const len = r.u8(q + 1);
        if (len < 1 || len > 32 || q + 2 + len > end) throw malformed('bad NSEC type bitmap');
        for (let i = 0; i < len; i++) {
          const byte = r.u8(q + 2 + i);
          for (let bit = 0; bit < 8; bit++) if (byte & (0x80 >> bit)) types.push(win * 256 + i * 8 + bit);
        }
        q += 2 + len;
      }
      exact(q);
      return { name, ttl, rrclass, cacheFlush, type: 'NSEC', next, types };
    }
    case RRType.SOA: {
      const [mname, q0] = r.name(start, end);
      const [rname, q1] = r.name(q0, end);
      exact(q1 + 20);
      return { name, ttl, rrclass, cacheFlush, type: 'SOA', mname, rname, serial: r.u32(q1), refresh: r.u32(q1 + 4), retry: r.u32(q1 + 8), expire: r.u32(q1 + 12), minimum: r.u32(q1 + 16) };
    }
    default:
      return { name, ttl, rrclass, cacheFlush, type: 'UNKNOWN', rrtype, data: Buffer.from(r.buf.subarray(start, end)) };
  }
}

/**
 * Decodes one DNS message; throws only PeerlinkError('ERR_MALFORMED_PACKET'). `maxBytes`
 * is raised only for unicast DNS over TCP (RFC 1035 §4.2.2: up to 65535 bytes).
 */
export function decodePacket(buf: Buffer, maxBytes = MAX_PACKET_BYTES): DnsPacket {
  try {
    return decodeUnchecked(buf, maxBytes);
  } catch (err) {
    if (err instanceof PeerlinkError) throw err;
    // defence in depth: a bug above must not become a crash of the socket handler
    throw malformed(String((err as Error)?.message ?? err));
  }
}

function decodeUnchecked(buf: Buffer, maxBytes: number): DnsPacket {
  if (buf.length < 12) throw malformed('shorter than a DNS header');
  if (buf.length > maxBytes) throw malformed(`larger than ${maxBytes} bytes`);
  const r = new Reader(buf);
  const flags = r.u16(2);
  const qd = r.u16(4);
  const an = r.u16(6);
  const ns = r.u16(8);
  const ar = r.u16(10);
  const room = buf.length - 12;
  if (qd + an + ns + ar > MAX_RECORDS) throw malformed('too many records');
  // counts that claim more entries than the bytes could hold are refused before any work
  if (qd * MIN_QUESTION + (an + ns + ar) * MIN_RECORD > room) throw malformed('record counts exceed packet size');
  let off = 12;
  const questions: Question[] = [];
  for (let i = 0; i < qd; i++) {
    const [name, p] = r.name(off);
    const qtype = r.u16(p);
    const klass = r.u16(p + 2);
    questions.push({ name, qtype, qclass: klass & ~CLASS_TOP_BIT, unicastResponse: (klass & CLASS_TOP_BIT) !== 0 });
    off = p + 4;
  }
  const section = (n: number): ResourceRecord[] => {
    const out: ResourceRecord[] = [];
    for (let i = 0; i < n; i++) {
      const [rec, next] = readRecord(r, off);
      out.push(rec);
      off = next;
    }
    return out;
  };
  const answers = section(an);
  const authorities = section(ns);
  const additionals = section(ar);
  return {
    id: r.u16(0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    rcode: flags & 0xf,
    questions,
    answers,
    authorities,
    additionals,
  };
}
