/**
 * An NwfSession (the Network framework profile) in its own process, for tests in namespaces:
 * argv[2] is JSON `{serviceType, psk?, name?, reply?, interfaces?}`; prints JSON lines
 * (`ready`, `peer`, `message`, `peerError`); stdin `send TEXT` sends TEXT to every peer.
 * With `reply`, every message received is answered with that text.
 */
import { createInterface } from 'node:readline';
import { NwfSession } from '../../../src/session/nwf-session.js';

const cfg = JSON.parse(process.argv[2] ?? '{}') as { serviceType: string; psk?: string; name?: string; reply?: string; interfaces?: string[]; idFormat?: 'string' | 'bytes' };
const out = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);
const s = new NwfSession({
  serviceType: cfg.serviceType,
  displayName: cfg.name ?? 'peerlink-nwf',
  interfaces: cfg.interfaces ?? ['lo'],
  ...(cfg.psk ? { security: { mode: 'psk' as const, key: cfg.psk } } : {}),
  ...(cfg.idFormat ? { idFormat: cfg.idFormat } : {}),
});
s.on('peer', (p, state) => out({ ev: 'peer', id: p.id, name: p.displayName, state }));
s.on('message', (data, p) => {
  out({ ev: 'message', id: p.id, text: data.toString('utf8') });
  if (cfg.reply) s.send(cfg.reply, { to: p }).catch((err: Error) => out({ ev: 'sendError', message: err.message }));
});
s.on('peerError', (err, info) => out({ ev: 'peerError', code: err.code, message: err.message, endpoint: info.endpoint ?? null }));
s.on('found', (f) => out({ ev: 'found', name: f.instanceName, peerId: f.peerId ?? null }));
await s.start();
out({ ev: 'ready', port: s.listenPort, id: s.peerId.id });
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.startsWith('send ')) s.send(line.slice(5)).then((n) => out({ ev: 'sent', n }), (err: Error) => out({ ev: 'sendError', message: err.message }));
});
process.on('SIGTERM', () => void s.close().finally(() => process.exit(0)));
