/**
 * Adversarial-test fixture, run inside a lab namespace (`lab.spawnNode(h, script, [localIPv4])`):
 * a dumb mDNS sender and TCP accept-counter driven by stdin lines, so that the DNS bytes are
 * built by the test itself (mdns-packets.ts), never by our codec. Not a test itself.
 *
 *   send <hex>                 multicast the bytes to 224.0.0.251:5353 from port 5353
 *   listen <addr> <port> <tag> accept TCP connections there, close each at once, count them
 *   sync <id>                  {"ev":"sync","id"} once every earlier send went out
 *   counts                     {"ev":"counts","counts":{tag: accepted}}
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

const local = process.argv[2] ?? '10.77.0.2';
const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\n');
};
const counts: Record<string, number> = {};
let pending = 0;
let syncs: string[] = [];
const flushSyncs = (): void => {
  if (pending > 0) return;
  for (const id of syncs) out({ ev: 'sync', id });
  syncs = [];
};

const sock = createSocket({ type: 'udp4', reuseAddr: true });
sock.bind(5353, () => {
  sock.setMulticastInterface(local);
  sock.setMulticastTTL(255);
  sock.setMulticastLoopback(false);
  out({ ev: 'ready' });
});

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, a, b, c] = line.trim().split(' ');
  if (cmd === 'send' && a) {
    pending++;
    sock.send(Buffer.from(a, 'hex'), 5353, '224.0.0.251', () => {
      pending--;
      flushSyncs();
    });
  } else if (cmd === 'listen' && a && b && c) {
    const tag = c;
    counts[tag] = 0;
    const server = createServer((s) => {
      counts[tag] = (counts[tag] ?? 0) + 1;
      s.on('error', () => undefined);
      s.destroy();
    });
    server.on('error', (err) => out({ ev: 'error', tag, message: err.message }));
    server.listen(Number(b), a, () => out({ ev: 'listening', tag }));
  } else if (cmd === 'sync' && a) {
    syncs.push(a);
    flushSyncs();
  } else if (cmd === 'counts') {
    out({ ev: 'counts', counts });
  }
});
