/**
 * Test fixture: one PeerSession (no discovery) in this process — run inside a lab namespace —
 * driven by JSON lines on stdin, reporting on stdout.
 *
 *   node datagram-peer.js '<PeerSessionOptions json>'
 *
 * Commands: {"cmd":"connect","host","port"} → {"ev":"connected","peer"};
 * {"cmd":"sendu","text"} (unreliable, to the first connected peer) → {"ev":"sendu","ok","code","ms"};
 * {"cmd":"send","text"} (reliable) → {"ev":"send","ok"}; {"cmd":"stats"} → {"ev":"stats","flow","totals"};
 * {"cmd":"close"}. Events: {"ev":"ready","port","id"}, {"ev":"message","text","mode"}.
 */
import { createInterface } from 'node:readline';
import { PeerSession } from '../../../src/session/index.js';
import { Endpoint } from '../../../src/net/index.js';
import type { PeerSessionOptions } from '../../../src/session/options.js';

const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\n');
};

const opts = JSON.parse(process.argv[2] ?? '{}') as PeerSessionOptions;
const session = new PeerSession({ advertise: false, browse: false, ...opts });
session.on('message', (d, p, mode) => out({ ev: 'message', peer: p.id, text: d.toString('utf8').slice(0, 200), mode }));
session.on('peer', (p, state) => out({ ev: 'peer', peer: p.id, state }));

type Command = { cmd: 'connect'; host: string; port: number } | { cmd: 'sendu' | 'send'; text: string } | { cmd: 'stats' } | { cmd: 'close' };

createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line) as Command;
  const peer = session.connectedPeers[0];
  switch (c.cmd) {
    case 'connect':
      session.connect(Endpoint.hostPort(c.host, c.port)).then(
        (p) => out({ ev: 'connected', peer: p.id }),
        (err: { code?: string }) => out({ ev: 'connect-failed', code: err.code ?? null }),
      );
      break;
    case 'sendu':
    case 'send': {
      const t0 = Date.now();
      if (!peer) return out({ ev: c.cmd, ok: false, code: 'no peer' });
      session.send(c.text, { to: peer, mode: c.cmd === 'sendu' ? 'unreliable' : 'reliable' }).then(
        () => out({ ev: c.cmd, ok: true, ms: Date.now() - t0 }),
        (err: { code?: string; message?: string }) => out({ ev: c.cmd, ok: false, code: err.code ?? null, message: err.message ?? '', ms: Date.now() - t0 }),
      );
      break;
    }
    case 'stats':
      out({ ev: 'stats', flow: peer ? (session.datagramStats(peer) ?? null) : null, totals: session.stats.datagrams });
      break;
    case 'close':
      void session.close().then(() => process.exit(0));
      break;
  }
});
process.on('SIGTERM', () => void session.close().finally(() => process.exit(0)));

session.start().then(
  () => out({ ev: 'ready', port: session.listenPort, id: session.peerId.id }),
  (err: unknown) => {
    out({ ev: 'fatal', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
