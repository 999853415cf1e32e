/**
 * Adversarial-test fixture, run inside a lab namespace (`lab.spawnNode(h, script, [localIPv4])`):
 * a dumb mDNS sender and TCP accept-counter driven by stdin lines, so that the DNS bytes are
 * built by the test itself (mdns-packets.ts), never by our codec. Not a test itself.
 *
 *   send <hex>                 multicast the bytes to 224.0.0.251:5353 from port 5353
 *   listen <addr> <port> <tag> accept TCP connections there, close each at once, count them
 *   tarpit <addr> <port> <tag> [group]
 *                              accept TCP connections there and hold each open without a byte
 *                              (a stalled TLS handshake); count them, those open now and the most
 *                              open at once, per tag, per group and over all tarpits (tag "*")
 *   sync <id>                  {"ev":"sync","id"} once every earlier send went out
 *   answer <name> <hex>        from now on, multicast the bytes whenever a query asks a question
 *                              whose name is <name> (case-insensitive): an honest responder
 *                              whose answers the test built; {"ev":"answered","name"} each time
 *   counts                     {"ev":"counts","counts":{tag: accepted},"open":{tag: n},"maxOpen":{tag: n, "*": n}}
 *   resetmax                   sets every tag's maxOpen to its open count now
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { readName } from '../harness/mdns-sniffer.js';

const local = process.argv[2] ?? '10.77.0.2';
const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\n');
};
const counts: Record<string, number> = {};
const open: Record<string, number> = {};
const maxOpen: Record<string, number> = {};
/** Question name (lower case) → the answer to multicast. */
const answers = new Map<string, Buffer>();

/** The question names of a query (none for a response or a packet too short). */
function questionNames(m: Buffer): string[] {
  if (m.length < 12 || (m.readUInt16BE(2) & 0x8000) !== 0) return [];
  const names: string[] = [];
  let off = 12;
  for (let i = 0; i < m.readUInt16BE(4) && off < m.length; i++) {
    const [n, next] = readName(m, off);
    names.push(n.toLowerCase());
    off = next + 4;
  }
  return names;
}
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
  const [cmd, a, b, c, d] = line.trim().split(' ');
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
  } else if (cmd === 'tarpit' && a && b && c) {
    const tag = c;
    counts[tag] = 0;
    const groups = [tag, '*', ...(d ? [d] : [])];
    const server = createServer((s) => {
      counts[tag] = (counts[tag] ?? 0) + 1;
      // A connection counts as open from 1 s after it was accepted (a tarpit holds each for
      // seconds): when the dialler closes a stalled one and dials the next at once, this process,
      // starved on a loaded machine, may accept the new one before it reads the old one's FIN,
      // which would count two for a moment where the dialler had one.
      let counted = false;
      let ended = false;
      const settle = setTimeout(() => {
        if (ended) return;
        counted = true;
        for (const k of groups) {
          open[k] = (open[k] ?? 0) + 1;
          maxOpen[k] = Math.max(maxOpen[k] ?? 0, open[k] ?? 0);
        }
      }, 1000);
      const gone = (): void => {
        if (ended) return;
        ended = true;
        clearTimeout(settle);
        if (counted) for (const k of groups) open[k] = (open[k] ?? 1) - 1;
      };
      // read (and drop) the ClientHello: a paused socket never sees the dialler's FIN
      s.resume();
      s.on('error', () => undefined);
      s.on('end', gone);
      s.on('close', gone);
    });
    server.on('error', (err) => out({ ev: 'error', tag, message: err.message }));
    server.listen(Number(b), a, () => out({ ev: 'listening', tag }));
  } else if (cmd === 'resetmax') {
    for (const tag of Object.keys(open)) maxOpen[tag] = open[tag] ?? 0;
    out({ ev: 'resetmax' });
  } else if (cmd === 'answer' && a && b) {
    if (answers.size === 0) {
      sock.addMembership('224.0.0.251', local);
      sock.on('message', (m) => {
        for (const n of questionNames(m)) {
          const reply = answers.get(n);
          if (!reply) continue;
          sock.send(reply, 5353, '224.0.0.251');
          out({ ev: 'answered', name: n });
          break;
        }
      });
    }
    answers.set(a.toLowerCase(), Buffer.from(b, 'hex'));
  } else if (cmd === 'sync' && a) {
    syncs.push(a);
    flushSyncs();
  } else if (cmd === 'counts') {
    out({ ev: 'counts', counts, open, maxOpen });
  }
});
