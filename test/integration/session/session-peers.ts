/**
 * Test fixture: runs one or more PeerSessions in this process (inside a test namespace),
 * reports events as JSON lines on stdout and obeys JSON commands on stdin.
 *
 *   node session-peers.js '<config json>'
 *
 * Output lines: {"ev":"ready",...} {"ev":"peer",...} {"ev":"peerError",...} {"ev":"status",...}
 * {"ev":"recv",...} {"ev":"sent",...} {"ev":"stream-done",...} {"ev":"stream-recv",...} {"ev":"mem",...}.
 * Memory is sampled every 50 ms so stream tests can assert a bound on peak RSS and on the
 * peak heap retained (see peakHeap); `mem` reports what is retained after a full GC.
 */
import { out, readCommands } from '../../harness/fixture-io.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PeerSession } from '../../../src/session/index.js';
import { PeerID } from '../../../src/session/peer-id.js';
import { Mdns } from '../../../src/dnssd/index.js';
import type { PeerSessionOptions } from '../../../src/session/options.js';

export interface FixtureConfig {
  service: string;
  /** Display names, one session each. */
  names: string[];
  /** Persist ids here (`<dir>/<name>.json`), so a restarted process keeps its peer ids. */
  idDir?: string;
  psk?: string;
  interfaces?: string[];
  keepaliveInterval?: number;
  keepaliveTimeout?: number;
  includePeerIdInTxt?: boolean;
  transport?: 'framer' | 'ws';
  /** One dnssd engine for all sessions of the process. */
  sharedMdns?: boolean;
  discoveryInfo?: Record<string, string>;
  architecture?: 'star' | 'client-server';
  role?: 'server' | 'client';
}

type Command =
  | { cmd: 'status' }
  | { cmd: 'send'; count: number; size?: number }
  | { cmd: 'recv' }
  | { cmd: 'stream'; from: string; to: string; bytes: number }
  | { cmd: 'flood'; from: string; to: string; count: number; size: number }
  | { cmd: 'mem' }
  | { cmd: 'close' };

// A full GC on demand (for `mem`), without a command-line flag.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const cfg = JSON.parse(process.argv[2] ?? '{}') as FixtureConfig;

let peakRss = 0;
/**
 * Peak heap + array buffers *retained*: while a stream runs, every 5th sample follows a
 * full GC. Without it the peak measures how lazily this V8 collects garbage (chunks read
 * and dropped): on Node 24 and 26 that alone reached +80 MiB at 340 MB/s, on 20 and 22 +30.
 */
let peakHeap = 0;
let streamsRunning = 0;
let tick = 0;
const sampler = setInterval(() => {
  if (streamsRunning > 0 && ++tick % 5 === 0) {
    collectGarbage();
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed + m.arrayBuffers);
  }
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);
sampler.unref();
function resetPeaks(): { rss: number; heap: number } {
  collectGarbage();
  const m = process.memoryUsage();
  peakRss = m.rss;
  peakHeap = m.heapUsed + m.arrayBuffers;
  return { rss: m.rss, heap: m.heapUsed + m.arrayBuffers };
}

const mdns = cfg.sharedMdns ? new Mdns(cfg.interfaces ? { interfaces: cfg.interfaces } : {}) : undefined;
const sessions = new Map<string, PeerSession>();
/** receiver name → sender id → {count, ordered, last} */
const received = new Map<string, Map<string, { count: number; ordered: boolean; last: number }>>();
/** Sequence numbers per sending session. */
let seq = 0;
let floods = 0;

async function main(): Promise<void> {
  for (const name of cfg.names) {
    const peerId = cfg.idDir ? await PeerID.loadOrCreate(`${cfg.idDir}/${name}.json`, name) : PeerID.generate(name);
    const opts: PeerSessionOptions = {
      serviceType: cfg.service,
      peerId,
      ...(cfg.psk ? { security: { mode: 'psk', key: cfg.psk } } : {}),
      ...(cfg.interfaces ? { interfaces: cfg.interfaces } : {}),
      ...(cfg.keepaliveInterval ? { keepaliveInterval: cfg.keepaliveInterval } : {}),
      ...(cfg.keepaliveTimeout ? { keepaliveTimeout: cfg.keepaliveTimeout } : {}),
      ...(cfg.includePeerIdInTxt ? { includePeerIdInTxt: true } : {}),
      ...(cfg.transport ? { transport: cfg.transport } : {}),
      ...(mdns ? { mdns } : {}),
      ...(cfg.architecture ? { architecture: cfg.architecture } : {}),
      ...(cfg.discoveryInfo ? { discoveryInfo: cfg.discoveryInfo } : {}),
      ...(cfg.role ? { role: cfg.role } : {}),
    };
    const s = new PeerSession(opts);
    sessions.set(name, s);
    const rx = new Map<string, { count: number; ordered: boolean; last: number }>();
    received.set(name, rx);
    s.on('peer', (p, state) => out({ ev: 'peer', name, id: s.peerId.id, peer: p.id, peerName: p.displayName, state }));
    s.on('found', (info) => out({ ev: 'found', name, instance: info.instanceName, discoveryInfo: info.discoveryInfo, compatible: info.compatible, peerId: info.peerId ?? null }));
    s.on('peerError', (err, info) => out({ ev: 'peerError', name, code: err.code, message: err.message, endpoint: info.endpoint ?? null }));
    s.on('message', (data, p) => {
      // Message body: 8-byte sequence number (per sender) + padding.
      const n = data.length >= 8 ? Number(data.readBigUInt64BE(0)) : -1;
      const r = rx.get(p.id) ?? { count: 0, ordered: true, last: -1 };
      if (n <= r.last) r.ordered = false;
      r.last = n;
      r.count++;
      rx.set(p.id, r);
    });
    s.on('stream', (stream, streamName, p) => {
      const base = resetPeaks();
      streamsRunning++;
      let bytes = 0;
      stream.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      stream.once('close', () => streamsRunning--);
      stream.on('end', () => {
        out({ ev: 'stream-recv', name, from: p.id, streamName, bytes, baseRss: base.rss, peakRss, baseHeap: base.heap, peakHeap });
        stream.end();
      });
      stream.on('error', (err) => out({ ev: 'stream-error', name, message: err.message }));
    });
  }
  await Promise.all([...sessions.values()].map((s) => s.start()));
  for (const [name, s] of sessions) out({ ev: 'ready', name, id: s.peerId.id, port: s.listenPort });
}

function byId(id: string): PeerSession | undefined {
  for (const s of sessions.values()) if (s.peerId.id === id) return s;
  return undefined;
}

async function onCommand(c: Command): Promise<void> {
  switch (c.cmd) {
    case 'status':
      for (const [name, s] of sessions) {
        const ids = s.connectedPeers.map((p) => p.id);
        out({ ev: 'status', name, id: s.peerId.id, connected: ids, unique: new Set(ids).size, stats: s.stats });
      }
      return;
    case 'send': {
      const size = Math.max(8, c.size ?? 64);
      const jobs: Array<Promise<void>> = [];
      for (const [name, s] of sessions) {
        jobs.push(
          (async () => {
            const peers = s.connectedPeers;
            for (let i = 0; i < c.count; i++) {
              const b = Buffer.alloc(size);
              b.writeBigUInt64BE(BigInt(seq++), 0);
              await s.send(b, { to: peers });
            }
            out({ ev: 'sent', name, count: c.count, to: peers.length });
          })(),
        );
      }
      await Promise.all(jobs);
      return;
    }
    case 'recv':
      for (const [name, rx] of received) out({ ev: 'recv', name, from: Object.fromEntries(rx) });
      return;
    case 'mem': {
      collectGarbage();
      const m = process.memoryUsage();
      out({ ev: 'mem', heap: m.heapUsed + m.arrayBuffers, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, rss: m.rss });
      return;
    }
    case 'stream': {
      const s = sessions.get(c.from);
      const to = s ? s.connectedPeers.find((p) => p.id === c.to || p.displayName === c.to) : undefined;
      if (!s || !to) {
        out({ ev: 'stream-error', name: c.from, message: `no such peer ${c.to}` });
        return;
      }
      const base = resetPeaks();
      const stream = await s.openStream('bulk', to);
      streamsRunning++;
      stream.once('close', () => streamsRunning--);
      const chunk = Buffer.alloc(64 * 1024, 0x5a);
      let sent = 0;
      const t0 = Date.now();
      while (sent < c.bytes) {
        const n = Math.min(chunk.length, c.bytes - sent);
        if (!stream.write(n === chunk.length ? chunk : chunk.subarray(0, n))) await new Promise((r) => stream.once('drain', r));
        sent += n;
      }
      stream.end();
      stream.resume(); // the receiver ends its side after reading everything
      await new Promise<void>((resolve, reject) => {
        stream.on('close', () => resolve());
        stream.on('error', reject);
      });
      out({ ev: 'stream-done', name: c.from, bytes: sent, ms: Date.now() - t0, baseRss: base.rss, peakRss, baseHeap: base.heap, peakHeap });
      return;
    }
    case 'flood': {
      // Messages to one peer, each send awaited: a slow peer can only hold up this loop.
      const s = sessions.get(c.from);
      const to = s ? s.connectedPeers.find((p) => p.id === c.to || p.displayName === c.to) : undefined;
      if (!s || !to) {
        out({ ev: 'flood-error', name: c.from, to: c.to, message: `no such peer ${c.to}` });
        return;
      }
      // Peaks are reset by the first of concurrent floods only, so each one's report covers its whole run.
      const base = floods++ === 0 ? resetPeaks() : { rss: process.memoryUsage().rss };
      const t0 = Date.now();
      for (let i = 0; i < c.count; i++) {
        const b = Buffer.alloc(Math.max(8, c.size));
        b.writeBigUInt64BE(BigInt(seq++), 0);
        await s.send(b, { to });
      }
      floods--;
      out({ ev: 'flood-done', name: c.from, to: to.displayName, count: c.count, ms: Date.now() - t0, baseRss: base.rss, peakRss });
      return;
    }
    case 'close':
      await Promise.all([...sessions.values()].map((s) => s.close()));
      await mdns?.close();
      out({ ev: 'closed' });
      process.exit(0);
  }
}

void byId;
readCommands<Command>(onCommand);
process.on('SIGTERM', () => {
  void Promise.all([...sessions.values()].map((s) => s.close())).finally(() => process.exit(0));
});
main().catch((err: unknown) => {
  out({ ev: 'fatal', message: err instanceof Error ? err.stack ?? err.message : String(err) });
  process.exit(1);
});
