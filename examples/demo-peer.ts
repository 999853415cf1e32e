/**
 * One peer of `npm run demo`, run as a child process by demo.ts. It joins the demo's
 * session on the loopback interface only, reports what happens to the narrator over
 * the IPC channel, and carries out the narrator's commands (say, stream, send a file).
 */
import { createHash, randomBytes } from 'node:crypto';
import { PeerSession, type PeerID } from '../src/session/index.js';
import { isPeerlinkError } from '../src/errors.js';
import type { DemoCommand, DemoEvent } from './demo-protocol.js';

const [displayName, serviceType, downloadDir] = process.argv.slice(2) as [string, string, string];
const key = process.env.PEERLINK_DEMO_PSK ?? '';

function report(e: DemoEvent): void {
  process.send?.(e);
}

const session = new PeerSession({
  serviceType,
  displayName,
  // NETWORK SAFETY: loopback only — the demo never multicasts on a real interface.
  interfaces: ['lo'],
  security: { mode: 'psk', key },
  autoConnect: true,
  resources: { directory: downloadDir },
});

function byName(name: string): PeerID {
  const p = session.connectedPeers.find((x) => x.displayName === name);
  if (!p) throw new Error(`${name} is not connected to ${displayName}`);
  return p;
}

session.on('peer', (peer, state) => report({ ev: 'peer', peer: peer.displayName, state }));
session.on('found', (info) => report({ ev: 'found', peer: info.instanceName }));
session.on('message', (data, peer) => report({ ev: 'message', from: peer.displayName, text: data.toString('utf8') }));
session.on('peerError', (err) => report({ ev: 'error', code: err.code, message: err.message }));
session.on('stream', (stream, name, peer) => {
  const hash = createHash('sha256');
  let bytes = 0;
  stream.on('data', (c: Buffer) => {
    bytes += c.length;
    hash.update(c);
  });
  stream.on('end', () => {
    report({ ev: 'stream', from: peer.displayName, name, bytes, sha256: hash.digest('hex') });
    stream.end();
  });
  stream.on('error', (err) => report({ ev: 'error', code: 'ERR_STREAM', message: err.message }));
});
session.on('resource', (incoming) => {
  report({ ev: 'resource-start', from: incoming.peer.displayName, name: incoming.name, size: incoming.size });
  incoming.done.then(
    (r) => report({ ev: 'resource-done', from: incoming.peer.displayName, name: r.name, path: r.path, sha256: r.sha256, size: r.size }),
    (err: unknown) => report({ ev: 'error', code: isPeerlinkError(err) ? err.code : 'ERR_INTERNAL', message: (err as Error).message }),
  );
});

async function streamTo(to: string, bytes: number): Promise<void> {
  const stream = await session.openStream('demo-stream', byName(to));
  const hash = createHash('sha256');
  const chunk = randomBytes(64 * 1024);
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    hash.update(chunk);
    if (!stream.write(chunk)) await new Promise((r) => stream.once('drain', r));
  }
  stream.end();
  stream.resume();
  report({ ev: 'stream-sent', to, bytes, sha256: hash.digest('hex') });
}

async function handle(cmd: DemoCommand): Promise<void> {
  try {
    switch (cmd.cmd) {
      case 'say':
        await session.send(Buffer.from(cmd.text, 'utf8'));
        break;
      case 'stream':
        await streamTo(cmd.to, cmd.bytes);
        break;
      case 'file': {
        const t = session.sendResource(cmd.path, cmd.name, byName(cmd.to));
        t.on('progress', (p) => report({ ev: 'progress', bytes: p.bytes, total: p.total, rate: p.rate }));
        const r = await t.done;
        report({ ev: 'file-sent', to: cmd.to, sha256: r.sha256, size: r.size });
        break;
      }
      case 'close':
        await session.close();
        report({ ev: 'closed' });
        process.disconnect?.();
        break;
    }
  } catch (err) {
    report({ ev: 'error', code: isPeerlinkError(err) ? err.code : 'ERR_INTERNAL', message: (err as Error).message });
  }
}

process.on('message', (m) => void handle(m as DemoCommand));
// If the narrator dies, do not linger.
process.on('disconnect', () => {
  void session.close().finally(() => process.exit(0));
});

session.start().then(
  () => report({ ev: 'ready', port: session.listenPort }),
  (err: unknown) => {
    report({ ev: 'error', code: isPeerlinkError(err) ? err.code : 'ERR_INTERNAL', message: (err as Error).message });
    process.exit(1);
  },
);
