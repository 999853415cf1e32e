/**
 * Sends hostile mDNS packets from inside a test namespace: half multicast to
 * 224.0.0.251:5353 on eth0, half unicast to a victim's 5353 (and some from a non-5353
 * port, i.e. as legacy queries). Usage: node fuzz-sender.js <count> <victim-ipv4> <local-ipv4>
 */
import { createSocket } from 'node:dgram';
import { fuzzPackets } from '../../unit/dnssd/fuzz-packets.js';

const count = Number(process.argv[2] ?? 100000);
const victim = process.argv[3] ?? '10.77.0.1';
const local = process.argv[4] ?? '10.77.0.3';

// from port 5353 (as a responder would send: the packets go through every code path) and,
// one in ten, from an ephemeral port (legacy queries)
const sock = createSocket({ type: 'udp4', reuseAddr: true });
const legacy = createSocket({ type: 'udp4' });
legacy.bind(0);
sock.bind(5353, () => {
  sock.setMulticastInterface(local);
  sock.setMulticastTTL(255);
  legacy.setMulticastInterface(local);
  let sent = 0;
  const gen = fuzzPackets(count, 4242, ['Victim', 'Other']);
  const pump = (): void => {
    // small bursts, so the receivers' socket buffers are not simply overrun
    for (let i = 0; i < 50; i++) {
      const next = gen.next();
      if (next.done) {
        legacy.close();
        sock.close(() => {
          process.stdout.write(`${JSON.stringify({ event: 'done', sent })}\n`);
        });
        return;
      }
      const [buf] = next.value;
      (sent % 10 === 9 ? legacy : sock).send(buf, 5353, sent % 2 === 0 ? '224.0.0.251' : victim);
      sent++;
    }
    setImmediate(pump);
  };
  pump();
});
