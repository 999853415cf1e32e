/**
 * Test fixture: one side of a resumable transfer, in a process of its own so a test can kill
 * it (resume.test.ts). Reports on stdout as JSON lines.
 *
 *   node resume-peer.js '{"role":"receive","dir":D,"port":P,"peerIdHex":H,"key":K}'
 *   node resume-peer.js '{"role":"send","file":F,"name":N,"connect":"HOST:PORT","key":K}'
 *
 * receive: listens (on `port` if given), accepts every resource into `dir`, reports
 *   {ev:'listening', port}, {ev:'receiving', name, size}, {ev:'received', sha256, resumedFrom,
 *   bytesOnWire}, {ev:'failed', code}; runs until killed. A fixed peer id makes a restarted
 *   receiver the same peer to a sender waiting for it.
 * send: connects, sends `file` as `name`, reports {ev:'progress', bytes} (every 100 ms),
 *   {ev:'paused', code}, {ev:'resumed', offset, bytesOnWire}, {ev:'sent', sha256, resumedFrom,
 *   bytesOnWire, resumedAt} ({resumedAt}: ms from the last `resumed` to the first byte after it) or
 *   {ev:'failed', code}, then exits.
 */
import { PeerSession } from '../../../src/session/index.js';
import { PeerID } from '../../../src/session/peer-id.js';
import { Endpoint } from '../../../src/net/index.js';
import { isPeerlinkError } from '../../../src/errors.js';

interface Config {
  role: 'send' | 'receive';
  key: string;
  dir?: string;
  port?: number;
  peerIdHex?: string;
  file?: string;
  name?: string;
  connect?: string;
  interfaces?: string[];
  keepaliveInterval?: number;
  keepaliveTimeout?: number;
  resumeTimeout?: number;
}
const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const out = (o: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify({ t: Date.now(), ...o }) + '\n');
};

const session = new PeerSession({
  serviceType: 'plresume',
  advertise: false,
  browse: false,
  security: { mode: 'psk', key: cfg.key },
  ...(cfg.interfaces ? { interfaces: cfg.interfaces } : {}),
  ...(cfg.port !== undefined ? { port: cfg.port } : {}),
  ...(cfg.keepaliveInterval !== undefined ? { keepaliveInterval: cfg.keepaliveInterval } : {}),
  ...(cfg.keepaliveTimeout !== undefined ? { keepaliveTimeout: cfg.keepaliveTimeout } : {}),
  ...(cfg.peerIdHex ? { peerId: PeerID.fromBytes(Buffer.from(cfg.peerIdHex, 'hex'), cfg.role) } : { displayName: cfg.role }),
  resources: { ...(cfg.dir ? { directory: cfg.dir } : {}), ...(cfg.resumeTimeout !== undefined ? { resumeTimeout: cfg.resumeTimeout } : {}) },
});
session.on('peer', (_peer, state) => out({ ev: 'peer', state }));

if (cfg.role === 'receive') {
  session.on('resource', (r) => {
    out({ ev: 'receiving', name: r.name, size: r.size });
    r.done.then(
      (res) => out({ ev: 'received', sha256: res.sha256, path: res.path, resumedFrom: r.resumedFrom, bytesOnWire: r.bytesOnWire }),
      (err: unknown) => out({ ev: 'failed', code: isPeerlinkError(err) ? err.code : String(err), bytes: r.progress.bytes }),
    );
  });
  await session.start();
  out({ ev: 'listening', port: session.listenPort, partial: (await session.listPartialResources()).map((p) => ({ name: p.name, bytes: p.bytes })) });
} else {
  await session.start();
  const [host, port] = [cfg.connect!.slice(0, cfg.connect!.lastIndexOf(':')), Number(cfg.connect!.slice(cfg.connect!.lastIndexOf(':') + 1))];
  const peer = await session.connect(Endpoint.hostPort(host, port));
  const t = session.sendResource(cfg.file!, cfg.name!, peer);
  let resumedAt: number | undefined;
  let firstAfterResume: number | undefined;
  t.on('progress', (p) => {
    if (resumedAt !== undefined && firstAfterResume === undefined && t.bytesOnWire > 0) firstAfterResume = Date.now() - resumedAt;
    out({ ev: 'progress', bytes: p.bytes, wire: t.bytesOnWire });
  });
  t.on('paused', (err) => out({ ev: 'paused', code: err.code, bytes: t.progress.bytes, wire: t.bytesOnWire }));
  t.on('resumed', ({ offset }) => {
    resumedAt = Date.now();
    firstAfterResume = undefined;
    out({ ev: 'resumed', offset, wire: t.bytesOnWire });
  });
  try {
    const r = await t.done;
    out({ ev: 'sent', sha256: r.sha256, resumedFrom: t.resumedFrom, bytesOnWire: t.bytesOnWire, firstByteAfterResumeMs: firstAfterResume ?? null });
  } catch (err) {
    out({ ev: 'failed', code: isPeerlinkError(err) ? err.code : String(err) });
  }
  await session.close();
  process.exit(0);
}
