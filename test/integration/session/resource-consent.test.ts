// Consent over real PeerSessions (loopback, no mDNS): a session without a `resource` listener
// or `resources.accept` refuses files (as `peerlink chat` does); `resources.accept` decides per
// offer; the sender learns the saved name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerSession, type PeerID, type PeerSessionOptions, type ResourceOffer } from '../../../src/session/index.js';
import { Endpoint } from '../../../src/net/index.js';
import { isPeerlinkError } from '../../../src/errors.js';
import type { TransferState } from '../../../src/session/resource-transfer.js';

type Ctx = { after: (fn: () => unknown) => void };

async function tempDir(t: Ctx, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function pair(t: Ctx, resources: PeerSessionOptions['resources']): Promise<{ a: PeerSession; b: PeerSession; bPeer: PeerID; dir: string; src: string }> {
  const dir = join(await tempDir(t, 'pl-consent-dl-'), 'inbox');
  const src = await tempDir(t, 'pl-consent-src-');
  const common = { serviceType: 'plconsent', interfaces: ['lo'], advertise: false, browse: false };
  const a = new PeerSession({ ...common, displayName: 'A' });
  const b = new PeerSession({ ...common, displayName: 'B', resources: { directory: dir, ...resources } });
  t.after(async () => {
    await a.close();
    await b.close();
  });
  await Promise.all([a.start(), b.start()]);
  const bPeer = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  return { a, b, bPeer, dir, src };
}

test('a session with no resource listener and no accept callback refuses files before a byte is written', { timeout: 60_000 }, async (t) => {
  const p = await pair(t, {});
  await writeFile(join(p.src, 'f.bin'), Buffer.alloc(100_000));
  const transfer = p.a.sendResource(join(p.src, 'f.bin'), 'f.bin', p.bPeer);
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_REFUSED'));
  assert.equal(transfer.progress.bytes, 0);
  assert.deepEqual(await readdir(p.dir), []);
});

test('resources.accept decides; the sender waits in awaitingAcceptance and learns the saved name', { timeout: 60_000 }, async (t) => {
  const offers: ResourceOffer[] = [];
  const p = await pair(t, {
    accept: async (offer) => {
      offers.push(offer);
      await new Promise((r) => setTimeout(r, 200));
      return offer.files[0]?.name !== 'no.txt';
    },
  });
  await writeFile(join(p.src, 'photo.jpg'), 'one');
  await writeFile(join(p.dir, 'photo.jpg'), 'already here');
  const transfer = p.a.sendResource(join(p.src, 'photo.jpg'), 'photo.jpg', p.bPeer);
  const states: TransferState[] = [];
  transfer.on('state', (s) => states.push(s));
  const sent = await transfer.done;
  assert.equal(sent.savedName, 'photo (1).jpg');
  assert.ok(states.includes('awaitingAcceptance'), states.join());
  assert.equal(offers[0]?.peer.displayName, 'A');
  assert.deepEqual(offers[0]?.files, [{ name: 'photo.jpg', size: 3 }]);
  await assert.rejects(p.a.sendResource(join(p.src, 'photo.jpg'), 'no.txt', p.bPeer).done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_REFUSED'));
  assert.deepEqual((await readdir(p.dir)).sort(), ['photo (1).jpg', 'photo.jpg']);
});
