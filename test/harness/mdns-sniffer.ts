/**
 * A tiny mDNS sniffer (no tcpdump/tshark here): joins 224.0.0.251 and ff02::fb on one
 * interface and prints one summary line per packet:
 *   <ms> <src>:<port> Q|R id=<id> q=[name/type(/QU)] rr=[an|ns|ar:name/type/ttl(/cf)]
 * Usage: node mdns-sniffer.js <ipv4-of-interface> <interface-name> [hex]
 * With `hex`, each line ends with ` hex=<the whole packet>` (to search packets for bytes).
 * Run it where no responder lives (the lab's switch namespace, on br0): a socket sharing
 * port 5353 with responders on a host could take unicast packets meant for them.
 */
import { createSocket } from 'node:dgram';

const TYPES: Record<number, string> = { 1: 'A', 12: 'PTR', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 47: 'NSEC', 255: 'ANY' };

/** A name at `start` (compression pointers followed, at most 32 hops): [name, offset after it]. Also used by test/adversarial/mdns-attacker.ts. */
export function readName(buf: Buffer, start: number): [string, number] {
  const labels: string[] = [];
  let off = start;
  let end = -1;
  for (let jumps = 0; off < buf.length && jumps < 32; ) {
    const len = buf[off] ?? 0;
    if (len === 0) {
      off++;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = off + 2;
      off = ((len & 0x3f) << 8) | (buf[off + 1] ?? 0);
      jumps++;
      continue;
    }
    labels.push(buf.subarray(off + 1, off + 1 + len).toString());
    off += 1 + len;
  }
  return [labels.join('.'), end >= 0 ? end : off];
}

export function summarize(m: Buffer): string {
  const id = m.readUInt16BE(0);
  const flags = m.readUInt16BE(2);
  const counts = [m.readUInt16BE(4), m.readUInt16BE(6), m.readUInt16BE(8), m.readUInt16BE(10)] as const;
  let off = 12;
  const qs: string[] = [];
  for (let i = 0; i < counts[0]; i++) {
    const [n, o] = readName(m, off);
    const t = m.readUInt16BE(o);
    const c = m.readUInt16BE(o + 2);
    qs.push(`${n}/${TYPES[t] ?? t}${c & 0x8000 ? '/QU' : ''}`);
    off = o + 4;
  }
  const rrs: string[] = [];
  const total = counts[1] + counts[2] + counts[3];
  for (let i = 0; i < total; i++) {
    const [n, o] = readName(m, off);
    const t = m.readUInt16BE(o);
    const c = m.readUInt16BE(o + 2);
    const ttl = m.readUInt32BE(o + 4);
    const len = m.readUInt16BE(o + 8);
    const sec = i < counts[1] ? 'an' : i < counts[1] + counts[2] ? 'ns' : 'ar';
    rrs.push(`${sec}:${n}/${TYPES[t] ?? t}/${ttl}${c & 0x8000 ? '/cf' : ''}`);
    off = o + 10 + len;
  }
  return `${flags & 0x8000 ? 'R' : 'Q'} id=${id}${flags & 0x0200 ? ' TC' : ''} q=[${qs.join(' ')}] rr=[${rrs.join(' ')}]`;
}

function main(): void {
  const [v4, ifname, hex] = process.argv.slice(2);
  const t0 = Date.now();
  const onMessage = (m: Buffer, r: { address: string; port: number }): void => {
    let s: string;
    try {
      s = summarize(m);
    } catch (err) {
      s = `malformed (${(err as Error).message})`;
    }
    process.stdout.write(`${Date.now() - t0} ${r.address}:${r.port} ${s}${hex === 'hex' ? ` hex=${m.toString('hex')}` : ''}\n`);
  };
  // 'ready' is printed only once every group membership is in place, so a test that waits
  // for it cannot miss the first packets it is about to cause.
  let pending = ifname ? 2 : 1;
  const joined = (): void => {
    if (--pending === 0) process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
  };
  const s4 = createSocket({ type: 'udp4', reuseAddr: true });
  s4.on('message', onMessage);
  s4.bind(5353, () => {
    s4.addMembership('224.0.0.251', v4);
    joined();
  });
  if (ifname) {
    const s6 = createSocket({ type: 'udp6', reuseAddr: true });
    s6.on('message', onMessage);
    s6.on('error', () => joined());
    s6.bind(5353, () => {
      try {
        s6.addMembership('ff02::fb', `::%${ifname}`);
      } catch {
        // no IPv6 here: IPv4 only
      }
      joined();
    });
  }
}

if (process.argv[1]?.endsWith('mdns-sniffer.js')) main();
