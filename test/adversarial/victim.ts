/**
 * Adversarial-test fixture: one PeerSession in its own process — the victim — reporting what
 * an attack costs it. Started by `startVictim()` (harness.ts); not a test itself.
 *
 *   node victim.js '<PeerSessionOptions json>'
 *
 * stdout, JSON lines: {"ev":"ready","port","id"} once started; {"ev":"peer"|"message"|
 * "peerError"|"resource"|"stream"|"found"|"lost",...} as they happen (found/lost: `instance`); {"ev":"cost",...} in answer to the stdin
 * line `cost` (memory after a full GC, peak RSS since the last `reset`, open fds, threads, outgoing TCP
 * connections, files in the resource directory, session.stats, process.cpuUsage() as `cpu`). Other stdin lines:
 * `reset` (peaks), `send <peerId> <text>`, `close`. With `mdnsStats: true` in the options the victim
 * makes the session's mDNS engine itself and `cost` also carries its counters (`mdns`: sent, …).
 * With `holdResources: true` every resource offer is left undecided (the stream is not read on).
 */
import { createInterface } from 'node:readline';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PeerSession } from '../../src/session/index.js';
import { PeerID } from '../../src/session/peer-id.js';
import type { PeerSessionOptions } from '../../src/session/options.js';
import { Mdns } from '../../src/dnssd/index.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\n');
};

const given = JSON.parse(process.argv[2] ?? '{}') as PeerSessionOptions & { peerIdHex?: string; acceptResources?: boolean; mdnsStats?: boolean; holdInvitations?: boolean; holdResources?: boolean };
const opts: PeerSessionOptions = { ...given };
// holdResources: every resource offer waits for a decision that never comes (a person who never
// answers the prompt), so the victim reads nothing of the stream after the offer's header.
if (given.holdResources) opts.resources = { ...(given.resources ?? {}), accept: () => new Promise<boolean>(() => undefined) };
delete (opts as { holdResources?: boolean }).holdResources;
// mdnsStats: the victim owns the mDNS engine (passed as `mdns`), so cost() can report its packet counters
const engine = given.mdnsStats ? new Mdns(given.interfaces ? { interfaces: given.interfaces } : {}) : undefined;
if (engine) opts.mdns = engine;
delete (opts as { mdnsStats?: boolean }).mdnsStats;
if (given.peerIdHex) opts.peerId = PeerID.fromBytes(Buffer.from(given.peerIdHex, 'hex'), given.displayName ?? 'victim');
if (given.peerIdHex) delete opts.displayName;
delete (opts as { peerIdHex?: string }).peerIdHex;
delete (opts as { acceptResources?: boolean }).acceptResources;
delete (opts as { holdInvitations?: boolean }).holdInvitations;
const session = new PeerSession(opts);

let peakRss = process.memoryUsage().rss;
setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 20).unref();

/** Local ports this process listens on, from /proc/self/net/tcp{,6}: to tell outgoing connections from accepted ones. */
function tcpConnections(): { outgoing: number; incoming: number } {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const l = readlinkSync(`/proc/self/fd/${fd}`);
      const m = /^socket:\[(\d+)\]$/.exec(l);
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  const listening = new Set<string>();
  const established: Array<{ local: string }> = [];
  for (const f of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || !inodes.has(cols[9] ?? '')) continue;
      const localPort = (cols[1] ?? '').split(':')[1] ?? '';
      if (cols[3] === '0A') listening.add(localPort);
      else established.push({ local: localPort });
    }
  }
  let outgoing = 0;
  let incoming = 0;
  for (const c of established) {
    if (listening.has(c.local)) incoming++;
    else outgoing++;
  }
  return { outgoing, incoming };
}

function filesIn(dir: string | undefined): string[] {
  if (!dir) return [];
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

session.on('peer', (p, state) => out({ ev: 'peer', peer: p.id, name: p.displayName, state }));
session.on('message', (data, p, mode) => out({ ev: 'message', peer: p.id, text: data.toString('utf8').slice(0, 200), bytes: data.length, mode }));
session.on('peerError', (err, info) => out({ ev: 'peerError', code: err.code, message: err.message, endpoint: info.endpoint ?? null }));
session.on('found', (info) => out({ ev: 'found', instance: info.instanceName }));
session.on('lost', (info) => out({ ev: 'lost', instance: info.instanceName }));
session.on('stream', (stream, name, p) => {
  out({ ev: 'stream', peer: p.id, name });
  stream.on('error', () => undefined);
  stream.resume();
});
if (given.holdInvitations) {
  // Invitations are left unanswered (a person who never looks at the prompt).
  session.on('invitation', (i) => out({ ev: 'invitation', peer: i.peer.id, address: i.address ?? null, context: i.context.length, invited: i.invited }));
}
if (given.acceptResources) {
  session.on('resource', (incoming) => {
    out({ ev: 'resource', name: incoming.name });
    incoming.done.then(
      (r) => out({ ev: 'resource-done', path: r.path }),
      (err: { code?: string }) => out({ ev: 'resource-failed', code: err.code ?? 'unknown' }),
    );
  });
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [cmd, ...rest] = line.trim().split(' ');
  if (cmd === 'cost') {
    collectGarbage();
    const m = process.memoryUsage();
    const fds = readdirSync('/proc/self/fd').length;
    const threads = readdirSync('/proc/self/task').length;
    out({ ev: 'cost', cpu: process.cpuUsage(), rss: m.rss, peakRss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, fds, threads, ...tcpConnections(), files: filesIn(given.resources?.directory), stats: session.stats, keepaliveMs: session.connectedPeers.map((p) => session.peerInfo(p)?.keepalive ?? null), ...(engine ? { mdns: engine.stats, mdnsLimited: engine.limited } : {}) });
  } else if (cmd === 'reset') {
    peakRss = process.memoryUsage().rss;
    out({ ev: 'reset', rss: peakRss });
  } else if (cmd === 'send') {
    const [id, ...text] = rest;
    const peer = session.connectedPeers.find((p) => p.id === id);
    if (!peer) return out({ ev: 'send-failed', peer: id ?? null });
    session.send(text.join(' '), { to: peer }).then(
      () => out({ ev: 'sent', peer: id }),
      (err: { code?: string }) => out({ ev: 'send-failed', peer: id, code: err.code ?? null }),
    );
  } else if (cmd === 'send-resource') {
    // send-resource <peer id> <JSON {path, name, acceptTimeout?}>: the victim as a sender (e.g. of a folder).
    const [id, ...json] = rest;
    const peer = session.connectedPeers.find((p) => p.id === id);
    if (!peer) return out({ ev: 'resource-send-failed', peer: id ?? null, code: 'no-peer' });
    const o = JSON.parse(json.join(' ')) as { path: string; name: string; acceptTimeout?: number };
    const began = Date.now();
    session.sendResource(o.path, o.name, peer, o.acceptTimeout === undefined ? {} : { acceptTimeout: o.acceptTimeout }).done.then(
      (r) => out({ ev: 'resource-sent', peer: id, savedName: r.savedName, ms: Date.now() - began }),
      (err: { code?: string }) => out({ ev: 'resource-send-failed', peer: id, code: err.code ?? null, ms: Date.now() - began }),
    );
  } else if (cmd === 'close') {
    void session.close().then(() => engine?.close()).then(() => process.exit(0));
  }
});
process.on('SIGTERM', () => void session.close().then(() => engine?.close()).finally(() => process.exit(0)));

session.start().then(
  () => out({ ev: 'ready', port: session.listenPort, id: session.peerId.id }),
  (err: unknown) => {
    out({ ev: 'fatal', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
