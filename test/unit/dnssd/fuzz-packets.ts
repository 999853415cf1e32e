/**
 * Hostile mDNS packets for fuzzing: random bytes, and valid packets mutated the ways a
 * parser gets hurt — truncation, bit flips, compression pointers that loop or point
 * forward, huge record counts, rdlength fields that lie.
 */
import { encodePacket, emptyPacket, CLASS_IN, RRType, type DnsPacket, type ResourceRecord } from '../../../src/dnssd/codec/index.js';

/** Small deterministic PRNG so a failing case can be reproduced from its seed. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

function seeds(names: readonly string[]): Buffer[] {
  const rr = { ttl: 120, rrclass: CLASS_IN, cacheFlush: true };
  const out: DnsPacket[] = [];
  for (const inst of names) {
    const records: ResourceRecord[] = [
      { ...rr, name: '_fuzz._tcp.local', type: 'PTR', target: `${inst}._fuzz._tcp.local`, cacheFlush: false, ttl: 4500 },
      { ...rr, name: `${inst}._fuzz._tcp.local`, type: 'SRV', priority: 0, weight: 0, port: 1234, target: 'fuzzhost.local' },
      { ...rr, name: `${inst}._fuzz._tcp.local`, type: 'TXT', strings: [Buffer.from('a=1'), Buffer.from('b')] },
      { ...rr, name: 'fuzzhost.local', type: 'A', address: '10.77.0.200' },
      { ...rr, name: 'fuzzhost.local', type: 'AAAA', address: 'fe80::200' },
      { ...rr, name: 'fuzzhost.local', type: 'NSEC', next: 'fuzzhost.local', types: [1, 28] },
    ];
    out.push({ ...emptyPacket(true), answers: records.slice(0, 3), additionals: records.slice(3) });
    out.push({ ...emptyPacket(false), questions: [{ name: '_fuzz._tcp.local', qtype: RRType.PTR, qclass: CLASS_IN, unicastResponse: true }], answers: records.slice(0, 1) });
    out.push({ ...emptyPacket(false), questions: [{ name: `${inst}._fuzz._tcp.local`, qtype: RRType.ANY, qclass: CLASS_IN, unicastResponse: false }], authorities: records.slice(1, 3) });
    out.push({ ...emptyPacket(false), truncated: true, questions: [{ name: '_services._dns-sd._udp.local', qtype: RRType.PTR, qclass: CLASS_IN, unicastResponse: false }] });
  }
  return out.map((p) => encodePacket(p));
}

export type FuzzKind = 'random' | 'truncate' | 'flip' | 'loop' | 'counts' | 'rdlength' | 'splice';

/** Returns a generator of `n` hostile packets (and their kind). */
export function* fuzzPackets(n: number, seed = 1, names: readonly string[] = ['Fuzz', 'Victim']): Generator<[Buffer, FuzzKind]> {
  const rnd = prng(seed);
  const int = (k: number): number => Math.floor(rnd() * k);
  const base = seeds(names);
  const kinds: FuzzKind[] = ['random', 'truncate', 'flip', 'loop', 'counts', 'rdlength', 'splice'];
  for (let i = 0; i < n; i++) {
    const kind = kinds[i % kinds.length] as FuzzKind;
    const src = base[int(base.length)] as Buffer;
    let b: Buffer;
    switch (kind) {
      case 'random': {
        b = Buffer.alloc(int(700));
        for (let j = 0; j < b.length; j++) b[j] = int(256);
        break;
      }
      case 'truncate':
        b = Buffer.from(src.subarray(0, int(src.length)));
        break;
      case 'flip': {
        b = Buffer.from(src);
        for (let j = 0, m = 1 + int(8); j < m; j++) {
          const at = int(b.length);
          b[at] = (b[at] as number) ^ (1 << int(8));
        }
        break;
      }
      case 'loop': {
        b = Buffer.from(src);
        // a compression pointer to itself, to a later offset, or into a loop
        const at = 12 + int(Math.max(1, b.length - 14));
        const target = [at, at + 2 + int(20), 12, int(b.length)][int(4)] as number;
        b.writeUInt16BE(0xc000 | (target & 0x3fff), at);
        break;
      }
      case 'counts': {
        b = Buffer.from(src);
        b.writeUInt16BE(int(0x10000), 4 + 2 * int(4));
        if (rnd() < 0.5) b.writeUInt16BE(0xffff, 4 + 2 * int(4));
        break;
      }
      case 'rdlength': {
        b = Buffer.from(src);
        // overwrite 16-bit words with lengths that lie, at random offsets past the header
        for (let j = 0, m = 1 + int(3); j < m; j++) {
          const at = 12 + int(Math.max(1, b.length - 13));
          b.writeUInt16BE([0, 1, 0xffff, int(0x10000), int(64)][int(5)] as number, at);
        }
        break;
      }
      case 'splice': {
        const other = base[int(base.length)] as Buffer;
        const cut = int(src.length);
        b = Buffer.concat([src.subarray(0, cut), other.subarray(int(other.length))]);
        break;
      }
    }
    yield [b, kind];
  }
}
