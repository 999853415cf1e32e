/**
 * The cost of resuming (`npm run bench:session -- --scenarios resume [--resume-mib 512]`): a
 * sendResource of a file (sparse, so it costs no disk to make) is interrupted at about half by
 * closing the receiving session; a new receiving session with the same peer id, port and
 * download directory starts, the paused transfer continues by itself. Measured: the time from
 * the sender seeing the peer connected again to the first resumed byte (the offer, the
 * receiver reading its partial file and the sender hashing the same prefix), and the bytes sent
 * again that the receiver already had (at most one block), against what starting over would
 * have sent again (everything the receiver had). Both sessions in this process, TLS-PSK over
 * 127.0.0.1.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PeerSession } from '../../src/session/index.js';
import { PeerID } from '../../src/session/peer-id.js';
import { Endpoint } from '../../src/net/index.js';
import { ResourceStore, type IncomingResource } from '../../src/session/resource-transfer.js';

export interface ResumeSample {
  /** ms from the sender's `peer` connected event to its `resumed` (the first resumed byte follows at once). */
  reconnectToFirstByteMs: number;
  /** Bytes the receiver held and was sent again. */
  resentBytes: number;
  /** Bytes the receiver held when it stopped (what starting over would send again). */
  heldBytes: number;
  /** Where the body resumed. */
  offset: number;
}

export async function resumeOnce(sizeBytes: number, key: string): Promise<ResumeSample> {
  const work = await mkdtemp(join(tmpdir(), 'peerlink-bench-resume-'));
  const file = join(work, 'src.bin');
  const fh = await open(file, 'w');
  await fh.truncate(sizeBytes);
  await fh.close();
  const dir = join(work, 'inbox');
  const id = PeerID.fromBytes(randomBytes(16), 'bench-r');
  const common = { serviceType: 'plbenchresume', advertise: false, browse: false, interfaces: ['lo'], security: { mode: 'psk' as const, key } };
  const receiver = (port: number): PeerSession => new PeerSession({ ...common, peerId: id, port, resources: { directory: dir } });
  let b = receiver(0);
  b.on('resource', () => undefined);
  await b.start();
  const port = b.listenPort;
  const a = new PeerSession({ ...common, displayName: 'bench-s' });
  await a.start();
  try {
    const peer = await a.connect(Endpoint.hostPort('127.0.0.1', port));
    const t = a.sendResource(file, 'resume.bin', peer);
    const firstIncoming = await new Promise<IncomingResource<PeerID>>((r) => b.once('resource', r));
    await new Promise<void>((resolve) => {
      const poll = (): void => {
        if (firstIncoming.progress.bytes >= sizeBytes / 2) resolve();
        else setImmediate(poll);
      };
      poll();
    });
    const paused = new Promise((r) => t.once('paused', r));
    await b.close();
    await paused;
    const held = (await new ResourceStore({ directory: dir }).listPartial())[0]?.bytes ?? 0;
    const wireAtPause = t.bytesOnWire;
    let reconnectedAt = 0;
    a.on('peer', (p, state) => {
      if (p.id === id.id && state === 'connected' && reconnectedAt === 0) reconnectedAt = performance.now();
    });
    const resumed = new Promise<{ offset: number; at: number }>((r) => t.once('resumed', ({ offset }) => r({ offset, at: performance.now() })));
    b = receiver(port);
    b.on('resource', () => undefined);
    await b.start();
    const { offset, at } = await resumed;
    await t.done;
    const sentAfter = t.bytesOnWire - wireAtPause;
    return { reconnectToFirstByteMs: at - reconnectedAt, resentBytes: Math.max(0, sentAfter - (sizeBytes - held)), heldBytes: held, offset };
  } finally {
    await a.close();
    await b.close();
    await rm(work, { recursive: true, force: true });
  }
}
