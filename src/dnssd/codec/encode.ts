/**
 * DNS message writer with name compression. `PacketWriter` can try to add a record and
 * roll back when the packet would exceed its size limit, which is how responses and
 * known-answer lists are split over several packets (RFC 6762 §7.2, §17).
 */
import { isIPv4 } from 'node:net';
import { PeerlinkError } from '../../errors.js';
import { expandIPv6 } from '../../path/interfaces.js';
import { CLASS_TOP_BIT, rrTypeNumber, type DnsPacket, type Question, type ResourceRecord } from './types.js';
import { escapeLabel, labelsToBuffers, splitName } from './name.js';

/** Default size limit for packets we send: fits an Ethernet MTU over IPv6 (RFC 6762 §17). */
export const DEFAULT_MAX_SEND_BYTES = 1440;

export class PacketWriter {
  private buf: Buffer;
  private len = 12;
  /** Suffix (presentation form, exact case) -> offset, for compression. */
  private readonly names = new Map<string, number>();
  /** Suffixes added to `names`, in order: a rolled-back record takes its own out again. */
  private readonly added: string[] = [];
  private counts = [0, 0, 0, 0];
  /** One writer reused by `PacketWriter.rdata` (synchronous, never re-entered). */
  private static scratch: PacketWriter | undefined;

  constructor(
    readonly maxBytes = 9000,
    private readonly compression = true,
  ) {
    this.buf = Buffer.alloc(Math.min(maxBytes, 9000) + 512);
  }

  header(id: number, response: boolean, authoritative = response, truncated = false): void {
    this.buf.writeUInt16BE(id & 0xffff, 0);
    let flags = 0;
    if (response) flags |= 0x8000;
    if (authoritative) flags |= 0x0400;
    if (truncated) flags |= 0x0200;
    this.buf.writeUInt16BE(flags, 2);
  }

  setTruncated(on: boolean): void {
    const f = this.buf.readUInt16BE(2);
    this.buf.writeUInt16BE(on ? f | 0x0200 : f & ~0x0200, 2);
  }

  get size(): number {
    return this.len;
  }

  get recordCount(): number {
    return this.counts.reduce((a, b) => a + b, 0);
  }

  private ensure(n: number): void {
    if (this.len + n > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
  }

  private u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v & 0xff;
  }
  private u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.len);
    this.len += 2;
  }
  private u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.len);
    this.len += 4;
  }
  private bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }

  private name(name: string, compress = true): void {
    const labels = labelsToBuffers(name);
    if (!this.compression) {
      for (const l of labels) {
        this.u8(l.length);
        this.bytes(l);
      }
      this.u8(0);
      return;
    }
    // suffixes in presentation form, longest first, built from the end: one pass, not one join per label
    const raw = splitName(name);
    const suffixes: string[] = new Array<string>(raw.length);
    let tail = '';
    for (let i = raw.length - 1; i >= 0; i--) {
      const esc = escapeLabel(raw[i] as string);
      tail = i === raw.length - 1 ? esc : `${esc}.${tail}`;
      suffixes[i] = tail;
    }
    for (let i = 0; i < labels.length; i++) {
      // exact case: compressing against a suffix that differs in case would change how a
      // name reads (instance names are shown to people), although DNS would call it equal
      const suffix = suffixes[i] as string;
      // an uncompressed name (SRV target, NSEC next) still offers its suffixes to later names
      const at = compress ? this.names.get(suffix) : undefined;
      if (at !== undefined) {
        this.u16(0xc000 | at);
        return;
      }
      if (this.len < 0x3fff) {
        this.names.set(suffix, this.len);
        this.added.push(suffix);
      }
      const l = labels[i] as Buffer;
      this.u8(l.length);
      this.bytes(l);
    }
    this.u8(0);
  }

  private rdata(r: ResourceRecord): void {
    switch (r.type) {
      case 'A': {
        if (!isIPv4(r.address)) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `not an IPv4 address: ${r.address}`);
        for (const p of r.address.split('.')) this.u8(Number(p));
        return;
      }
      case 'AAAA':
        for (const g of expandIPv6(r.address)) this.u16(g);
        return;
      case 'PTR':
        this.name(r.target);
        return;
      case 'SRV':
        this.u16(r.priority);
        this.u16(r.weight);
        this.u16(r.port);
        // RFC 2782 forbids compressing the SRV target; mDNS allows it (RFC 6762 §18.14),
        // but some old resolvers choke: do not compress.
        this.name(r.target, false);
        return;
      case 'TXT': {
        const strings = r.strings.length === 0 ? [Buffer.alloc(0)] : r.strings;
        for (const s of strings) {
          if (s.length > 255) throw new PeerlinkError('ERR_INVALID_TXT', 'TXT string longer than 255 bytes');
          this.u8(s.length);
          this.bytes(s);
        }
        return;
      }
      case 'NSEC': {
        // RFC 4034 §4.1.1; mDNS writes the next name uncompressed (RFC 6762 §18.14)
        this.name(r.next, false);
        const windows = new Map<number, number[]>();
        for (const t of r.types) {
          const w = t >> 8;
          const bits = windows.get(w) ?? [];
          bits.push(t & 0xff);
          windows.set(w, bits);
        }
        for (const w of [...windows.keys()].sort((a, b) => a - b)) {
          const bits = windows.get(w) as number[];
          const len = (Math.max(...bits) >> 3) + 1;
          const map = Buffer.alloc(len);
          for (const b of bits) map[b >> 3] = (map[b >> 3] as number) | (0x80 >> (b & 7));
          this.u8(w);
          this.u8(len);
          this.bytes(map);
        }
        return;
      }
      case 'SOA':
        this.name(r.mname);
        this.name(r.rname);
        for (const v of [r.serial, r.refresh, r.retry, r.expire, r.minimum]) this.u32(v);
        return;
      case 'UNKNOWN':
        this.bytes(r.data);
        return;
    }
  }

  private writeRecord(r: ResourceRecord): void {
    this.name(r.name);
    this.u16(rrTypeNumber(r));
    this.u16((r.rrclass & ~CLASS_TOP_BIT) | (r.cacheFlush ? CLASS_TOP_BIT : 0));
    this.u32(r.ttl);
    const lenAt = this.len;
    this.u16(0);
    this.rdata(r);
    this.buf.writeUInt16BE(this.len - lenAt - 2, lenAt);
  }

  /** The uncompressed RDATA of a record, as used for comparisons (RFC 6762 §8.2). */
  static rdata(r: ResourceRecord): Buffer {
    // called for every record compared or keyed (records.ts): a fresh 9.5 KB writer each time
    // was most of the mDNS engine's CPU with 50 peers on a link
    const w = (PacketWriter.scratch ??= new PacketWriter(512, false));
    w.len = 0;
    w.rdata(r);
    return Buffer.from(w.buf.subarray(0, w.len));
  }

  /** Appends to a section (0 questions, 1 answers, 2 authorities, 3 additionals) unless it would exceed maxBytes; returns whether it was added. */
  private tryAdd(section: number, write: () => void): boolean {
    const mark = this.len;
    const namesMark = this.added.length;
    write();
    if (this.len > this.maxBytes) {
      this.len = mark;
      for (const suffix of this.added.splice(namesMark)) this.names.delete(suffix);
      return false;
    }
    this.counts[section] = (this.counts[section] ?? 0) + 1;
    return true;
  }

  addQuestion(q: Question): boolean {
    return this.tryAdd(0, () => {
      this.name(q.name);
      this.u16(q.qtype);
      this.u16((q.qclass & ~CLASS_TOP_BIT) | (q.unicastResponse ? CLASS_TOP_BIT : 0));
    });
  }

  /** Sections must be filled in order: questions, answers, authorities, additionals. */
  addRecord(section: 1 | 2 | 3, r: ResourceRecord): boolean {
    return this.tryAdd(section, () => this.writeRecord(r));
  }

  finish(): Buffer {
    for (let i = 0; i < 4; i++) this.buf.writeUInt16BE(this.counts[i] as number, 4 + i * 2);
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

/** Encodes a whole packet; throws ERR_MESSAGE_TOO_LARGE when it exceeds `maxBytes`. */
export function encodePacket(p: DnsPacket, maxBytes = 9000): Buffer {
  const w = new PacketWriter(maxBytes);
  w.header(p.id, p.response, p.authoritative, p.truncated);
  const tooLarge = (): never => {
    throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `DNS packet exceeds ${maxBytes} bytes`);
  };
  for (const q of p.questions) if (!w.addQuestion(q)) tooLarge();
  for (const r of p.answers) if (!w.addRecord(1, r)) tooLarge();
  for (const r of p.authorities) if (!w.addRecord(2, r)) tooLarge();
  for (const r of p.additionals) if (!w.addRecord(3, r)) tooLarge();
  const buf = w.finish();
  // restore the opcode and rcode, which the writer's header() does not take
  buf.writeUInt16BE(buf.readUInt16BE(2) | ((p.opcode & 0xf) << 11) | (p.rcode & 0xf), 2);
  return buf;
}
