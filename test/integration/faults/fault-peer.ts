/**
 * Test fixture for fault-lab tests: one PeerSession in this process (inside a lab host),
 * events as JSON lines on stdout, commands as JSON lines on stdin.
 *
 *   node fault-peer.js '<config json>'
 *
 * Events: ready, peer {peer,state}, viability {peer,viable}, peerError {code},
 * sent {count,maxSendMs,failed}, recv {from: {id: {count, ordered, first, last}}},
 * resource-sent {sha256,bytes}, resource-recv {sha256,bytes}, resource-error {message}, closed.
 *
 * Messages carry an 8-byte sequence number (this process's, from 0): a receiver that got
 * `count` messages strictly increasing from `first` to `last = first + count - 1` got each
 * exactly once, in order, with none missing.
 */
import { out, readCommands } from '../../harness/fixture-io.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { PeerSession } from '../../../src/session/index.js';
import type { PeerSessionOptions } from '../../../src/session/options.js';

export interface FaultPeerConfig {
  name: string;
  service: string;
  psk?: string;
  interfaces?: string[];
  viabilityGrace?: number;
  resourceDir?: string;
  transport?: 'framer' | 'ws';
  /** budgets.transferIdleTimeout (ms) of this peer. */
  transferIdleTimeout?: number;
  /** keepaliveTimeout (ms) of this peer. */
  keepaliveTimeout?: number;
}

type Command =
  | { cmd: 'send'; count: number; size?: number; intervalMs?: number }
  | { cmd: 'recv' }
  | { cmd: 'resource'; path: string; name: string }
  | { cmd: 'close' };

const cfg = JSON.parse(process.argv[2] ?? '{}') as FaultPeerConfig;

const opts: PeerSessionOptions = {
  serviceType: cfg.service,
  displayName: cfg.name,
  ...(cfg.psk ? { security: { mode: 'psk', key: cfg.psk } } : {}),
  ...(cfg.interfaces ? { interfaces: cfg.interfaces } : {}),
  ...(cfg.viabilityGrace ? { viabilityGrace: cfg.viabilityGrace } : {}),
  ...(cfg.resourceDir ? { resources: { directory: cfg.resourceDir } } : {}),
  ...(cfg.transport ? { transport: cfg.transport } : {}),
  ...(cfg.transferIdleTimeout ? { budgets: { transferIdleTimeout: cfg.transferIdleTimeout } } : {}),
  ...(cfg.keepaliveTimeout ? { keepaliveTimeout: cfg.keepaliveTimeout } : {}),
};
const s = new PeerSession(opts);
const rx = new Map<string, { count: number; ordered: boolean; first: number; last: number }>();
let seq = 0;

function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let bytes = 0;
    createReadStream(path)
      .on('data', (c: Buffer | string) => {
        const b = typeof c === 'string' ? Buffer.from(c) : c;
        bytes += b.length;
        h.update(b);
      })
      .on('end', () => resolve({ sha256: h.digest('hex'), bytes }))
      .on('error', reject);
  });
}

s.on('peer', (p, state) => out({ ev: 'peer', peer: p.id, peerName: p.displayName, state }));
s.on('viability', (p, viable) => out({ ev: 'viability', peer: p.id, viable }));
s.on('peerError', (err) => out({ ev: 'peerError', code: err.code, message: err.message }));
s.on('message', (data, p) => {
  const n = data.length >= 8 ? Number(data.readBigUInt64BE(0)) : -1;
  const r = rx.get(p.id) ?? { count: 0, ordered: true, first: n, last: -1 };
  if (n <= r.last) r.ordered = false;
  r.last = n;
  r.count++;
  rx.set(p.id, r);
});
s.on('resource', (incoming) => {
  incoming.done.then(
    async (r) => out({ ev: 'resource-recv', ...(await sha256File(r.path)), reported: r.sha256 }),
    (err: unknown) => out({ ev: 'resource-error', message: err instanceof Error ? err.message : String(err) }),
  );
});

async function onCommand(c: Command): Promise<void> {
  switch (c.cmd) {
    case 'send': {
      // Each send awaited, as an app respecting backpressure does; maxSendMs shows sends held.
      const peers = s.connectedPeers;
      const size = Math.max(8, c.size ?? 64);
      let maxSendMs = 0;
      let failed = 0;
      for (let i = 0; i < c.count; i++) {
        const b = Buffer.alloc(size);
        b.writeBigUInt64BE(BigInt(seq++), 0);
        const t0 = Date.now();
        try {
          await s.send(b, { to: peers });
        } catch (err) {
          failed++;
          out({ ev: 'send-error', code: (err as { code?: string }).code ?? String(err) });
        }
        maxSendMs = Math.max(maxSendMs, Date.now() - t0);
        if (c.intervalMs) await new Promise((r) => setTimeout(r, c.intervalMs));
      }
      out({ ev: 'sent', count: c.count, to: peers.length, maxSendMs, failed });
      return;
    }
    case 'recv':
      out({ ev: 'recv', from: Object.fromEntries(rx) });
      return;
    case 'resource': {
      const to = s.connectedPeers[0];
      if (!to) {
        out({ ev: 'resource-error', message: 'no peer' });
        return;
      }
      try {
        const r = await s.sendResource(c.path, c.name, to).done;
        out({ ev: 'resource-sent', ...(await sha256File(c.path)), reported: r.sha256 });
      } catch (err) {
        out({ ev: 'resource-error', message: err instanceof Error ? err.message : String(err) });
      }
      return;
    }
    case 'close':
      await s.close();
      out({ ev: 'closed' });
      process.exit(0);
  }
}

readCommands<Command>(onCommand);
process.on('SIGTERM', () => {
  void s.close().finally(() => process.exit(0));
});
s.start().then(
  () => out({ ev: 'ready', id: s.peerId.id }),
  (err: unknown) => {
    out({ ev: 'fatal', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  },
);
