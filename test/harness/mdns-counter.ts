/**
 * Counts mDNS packets and bytes seen on one interface (IPv4 224.0.0.251 and IPv6 ff02::fb),
 * printing one JSON line per second: {"s":<second>,"p4":…,"b4":…,"p6":…,"b6":…,"q":…,"r":…}.
 * Bytes are UDP payload bytes. Only multicast is seen (unicast answers to another host's
 * port 5353 do not reach this socket). Run it in the lab's switch namespace on br0, where no
 * responder lives (see mdns-sniffer.ts).
 *   node mdns-counter.js <ipv4-of-interface> <interface-name>
 */
import { createSocket, type Socket } from 'node:dgram';

function main(): void {
  const [v4, ifname] = process.argv.slice(2);
  const t0 = Date.now();
  let cur = { p4: 0, b4: 0, p6: 0, b6: 0, q: 0, r: 0 };
  const count = (family: 4 | 6) => (m: Buffer): void => {
    if (family === 4) {
      cur.p4++;
      cur.b4 += m.length;
    } else {
      cur.p6++;
      cur.b6 += m.length;
    }
    if (m.length >= 4 && (m.readUInt16BE(2) & 0x8000) !== 0) cur.r++;
    else cur.q++;
  };
  const timer = setInterval(() => {
    process.stdout.write(`${JSON.stringify({ s: Math.round((Date.now() - t0) / 1000), ...cur })}\n`);
    cur = { p4: 0, b4: 0, p6: 0, b6: 0, q: 0, r: 0 };
  }, 1000);
  void timer;
  let pending = 2;
  const joined = (): void => {
    if (--pending === 0) process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`);
  };
  const s4: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  s4.on('message', count(4));
  s4.bind(5353, () => {
    s4.addMembership('224.0.0.251', v4);
    joined();
  });
  const s6: Socket = createSocket({ type: 'udp6', reuseAddr: true });
  s6.on('message', count(6));
  s6.on('error', () => joined());
  s6.bind(5353, () => {
    try {
      s6.addMembership('ff02::fb', `::%${ifname ?? ''}`);
    } catch {
      // no IPv6 here
    }
    joined();
  });
}

if (process.argv[1]?.endsWith('mdns-counter.js')) main();
