/**
 * Test fixture for the link-quality fault test: one PeerSession in this process (inside a
 * lab namespace), connected by address (no discovery), reporting JSON lines on stdout and
 * obeying JSON commands on stdin.
 *
 *   node link-quality-peer.js '{"name":"A","psk":"...","port":7000,"keepaliveTimeout":30000}'
 *
 * Output: {"ev":"ready",id,port} {"ev":"peer",peer,state} {"ev":"linkQuality",peer,quality,report}
 * {"ev":"pumping",to} {"ev":"pump-error",message} {"ev":"closed"}.
 * Commands: {"cmd":"connect","host","port"}; {"cmd":"pump"}: a stream to every connected peer,
 * written as fast as it drains, up to ~26 Mbit/s (the receiver reads and discards); {"cmd":"datagrams"}:
 * a 100-byte unreliable message to every connected peer every 10 ms; {"cmd":"report"}: one
 * {"ev":"report",peer,report} per connected peer; {"cmd":"stop"}; {"cmd":"close"}.
 */
import { out, readCommands, startAndReport } from '../../harness/fixture-io.js';
import type { Duplex } from 'node:stream';
import { PeerSession } from '../../../src/session/index.js';
import { Endpoint } from '../../../src/net/index.js';

interface Config {
  name: string;
  psk: string;
  port?: number;
  keepaliveTimeout?: number;
  viabilityGrace?: number;
  interval?: number;
}

type Command = { cmd: 'connect'; host: string; port: number } | { cmd: 'pump' } | { cmd: 'datagrams' } | { cmd: 'report' } | { cmd: 'stop' } | { cmd: 'close' };

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;

const session = new PeerSession({
  serviceType: 'lqlab',
  displayName: cfg.name,
  advertise: false,
  browse: false,
  security: { mode: 'psk', key: cfg.psk },
  ...(cfg.port !== undefined ? { port: cfg.port } : {}),
  ...(cfg.keepaliveTimeout !== undefined ? { keepaliveTimeout: cfg.keepaliveTimeout } : {}),
  ...(cfg.viabilityGrace !== undefined ? { viabilityGrace: cfg.viabilityGrace } : {}),
  ...(cfg.interval !== undefined ? { linkQuality: { interval: cfg.interval } } : {}),
});
session.on('peer', (p, state) => out({ ev: 'peer', peer: p.id, state }));
session.on('linkQuality', (p, quality, report) => out({ ev: 'linkQuality', peer: p.id, quality, report }));
session.on('peerError', (err) => out({ ev: 'peerError', code: err.code, message: err.message }));
session.on('stream', (stream) => {
  stream.on('error', () => undefined);
  stream.resume();
  stream.on('end', () => stream.end());
});

const pumps = new Set<Duplex>();
let datagramTimer: NodeJS.Timeout | undefined;
const chunk = Buffer.alloc(16 * 1024, 0x5a);

async function pump(): Promise<void> {
  for (const peer of session.connectedPeers) {
    const stream = await session.openStream('pump', peer);
    pumps.add(stream);
    stream.on('error', (err) => out({ ev: 'pump-error', message: err.message }));
    stream.resume();
    out({ ev: 'pumping', to: peer.id });
    void (async () => {
      // At most 16 KiB per 5 ms (~26 Mbit/s): far above a throttled link, gentle on a shared machine.
      while (pumps.has(stream) && !stream.destroyed) {
        if (!stream.write(chunk)) await new Promise((r) => stream.once('drain', r).once('close', r));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
  }
}

async function onCommand(c: Command): Promise<void> {
  switch (c.cmd) {
    case 'connect': {
      const p = await session.connect(Endpoint.hostPort(c.host, c.port));
      out({ ev: 'connected', peer: p.id });
      return;
    }
    case 'pump':
      return pump();
    case 'datagrams': {
      const payload = Buffer.alloc(100, 0x44);
      datagramTimer ??= setInterval(() => {
        for (const p of session.connectedPeers) session.send(payload, { to: p, mode: 'unreliable' }).catch((err: unknown) => out({ ev: 'datagram-error', message: err instanceof Error ? err.message : String(err) }));
      }, 10);
      out({ ev: 'datagrams' });
      return;
    }
    case 'report':
      for (const p of session.connectedPeers) out({ ev: 'report', peer: p.id, report: session.linkQuality(p), datagrams: session.peerInfo(p)?.datagrams ?? null });
      return;
    case 'stop':
      for (const s of pumps) s.destroy();
      pumps.clear();
      clearInterval(datagramTimer);
      datagramTimer = undefined;
      return;
    case 'close':
      clearInterval(datagramTimer);
      for (const s of pumps) s.destroy();
      await session.close();
      out({ ev: 'closed' });
      process.exit(0);
  }
}

readCommands<Command>(onCommand);
process.on('SIGTERM', () => {
  void session.close().finally(() => process.exit(0));
});
startAndReport(session);
