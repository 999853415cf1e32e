// Resources over real PeerSessions (TLS-PSK, loopback, no mDNS: peers are joined with
// connect(), so nothing is multicast and the tests can run in the root namespace).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PeerSession, type PeerID } from '../../../src/session/index.js';
import { Endpoint } from '../../../src/net/index.js';
import { isPeerlinkError } from '../../../src/errors.js';
import type { IncomingResource } from '../../../src/session/resource-transfer.js';
import { encodeFrame, ResourceStreamReader } from '../../../src/session/resource-wire.js';

type Ctx = { after: (fn: () => unknown) => void };
const KEY = randomBytes(32).toString('hex');
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function tempDir(t: Ctx, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Pair {
  a: PeerSession;
  b: PeerSession;
  bPeer: PeerID;
  dir: string;
  nextResource: () => Promise<IncomingResource<PeerID>>;
}

async function pair(t: Ctx, quota?: number): Promise<Pair> {
  // The download directory sits alone in a sandbox, so an escape would show up next to it.
  const dir = join(await tempDir(t, 'pl-res-dl-'), 'inbox');
  const common = { serviceType: 'plrestest', interfaces: ['lo'], advertise: false, browse: false, security: { mode: 'psk' as const, key: KEY } };
  const a = new PeerSession({ ...common, displayName: 'A' });
  const b = new PeerSession({ ...common, displayName: 'B', resources: quota === undefined ? { directory: dir } : { directory: dir, quota } });
  t.after(async () => {
    await a.close();
    await b.close();
  });
  await Promise.all([a.start(), b.start()]);
  await b.resourceDirectory(); // created on first use: make it exist so tests can list it
  const bPeer = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  const queue: Array<IncomingResource<PeerID>> = [];
  const waiting: Array<(r: IncomingResource<PeerID>) => void> = [];
  b.on('resource', (r) => {
    const w = waiting.shift();
    if (w) w(r);
    else queue.push(r);
  });
  const nextResource = (): Promise<IncomingResource<PeerID>> => {
    const r = queue.shift();
    return r ? Promise.resolve(r) : new Promise((res) => waiting.push(res));
  };
  return { a, b, bPeer, dir, nextResource };
}

test('a resource crosses a PSK session with the right SHA-256', { timeout: 120_000 }, async (t) => {
  const src = await tempDir(t, 'pl-res-src-');
  const data = randomBytes(24 * 1024 * 1024 + 3);
  await writeFile(join(src, 'big.bin'), data);
  const p = await pair(t);
  assert.equal(await p.b.resourceDirectory(), p.dir);
  const transfer = p.a.sendResource(join(src, 'big.bin'), 'big.bin', p.bPeer);
  let lastSendProgress = 0;
  transfer.on('progress', (pr) => (lastSendProgress = pr.bytes));
  const incoming = await p.nextResource();
  assert.equal(incoming.name, 'big.bin');
  assert.equal(incoming.peer.displayName, 'A');
  const [sent, received] = await Promise.all([transfer.done, incoming.done]);
  assert.equal(sent.sha256, sha(data));
  assert.equal(received.sha256, sha(data));
  assert.equal(lastSendProgress, data.length);
  assert.equal(sha(await readFile(join(p.dir, 'big.bin'))), sha(data));
  assert.deepEqual(await readdir(p.dir), ['big.bin']);
});

test('hostile names are refused end to end and nothing is written', { timeout: 120_000 }, async (t) => {
  const p = await pair(t);
  for (const name of ['../../escape.txt', '/tmp/abs.txt', 'NUL', 'bad\u0007name', '..', 'x'.repeat(300), 'a/b']) {
    // The library refuses to send it…
    await assert.rejects(p.a.sendResource('/etc/hostname', name, p.bPeer).done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_NAME'));
    // …and a peer that skips the check is refused by the receiver, which says why.
    const stream = await p.a.openStream('', p.bPeer, { kind: 'resource' });
    stream.write(encodeFrame({ type: 'resource', v: 1, name, size: 4, sha256: null }));
    const answer = await new ResourceStreamReader(stream).frame();
    assert.equal(answer.type, 'reject', name);
    assert.equal((answer as { code: string }).code, 'ERR_RESOURCE_NAME');
    stream.destroy();
    const incoming = await p.nextResource();
    await assert.rejects(incoming.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_NAME'));
  }
  assert.deepEqual(await readdir(p.dir), []);
  assert.deepEqual(await readdir(join(p.dir, '..')), ['inbox']);
});

test('quota refusal reaches the sender with ERR_RESOURCE_QUOTA', { timeout: 120_000 }, async (t) => {
  const src = await tempDir(t, 'pl-res-src-');
  await writeFile(join(src, 'f.bin'), Buffer.alloc(2 * 1024 * 1024));
  const p = await pair(t, 1024 * 1024);
  const transfer = p.a.sendResource(join(src, 'f.bin'), 'f.bin', p.bPeer);
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_QUOTA'));
  assert.deepEqual(await readdir(p.dir), []);
});

test('an HTTP URL is sent as a resource', { timeout: 120_000 }, async (t) => {
  const data = randomBytes(2 * 1024 * 1024);
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': data.length });
    res.end(data);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const p = await pair(t);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/dl/file.bin`;
  const transfer = p.a.sendResource(url, 'from-http.bin', p.bPeer);
  const incoming = await p.nextResource();
  const [sent, received] = await Promise.all([transfer.done, incoming.done]);
  assert.equal(sent.sha256, sha(data));
  assert.equal(received.path, join(p.dir, 'from-http.bin'));
});

test('the receiving session closing mid-transfer: ERR_RESOURCE_ABORTED there (partial kept), the sender pauses and a cancel ends it', { timeout: 120_000 }, async (t) => {
  const src = await tempDir(t, 'pl-res-src-');
  await writeFile(join(src, 'big.bin'), Buffer.alloc(200 * 1024 * 1024));
  const p = await pair(t);
  const transfer = p.a.sendResource(join(src, 'big.bin'), 'big.bin', p.bPeer);
  const paused = once(transfer, 'paused');
  const incoming = await p.nextResource();
  while (incoming.progress.bytes < 1024 * 1024) await once(incoming, 'progress');
  await p.b.close();
  await assert.rejects(incoming.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_ABORTED'));
  const [why] = (await paused) as [Error];
  assert.ok(isPeerlinkError(why, 'ERR_RESOURCE_ABORTED'), String(why));
  assert.equal(transfer.state, 'paused');
  transfer.cancel();
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_CANCELLED'));
  assert.ok((await readdir(p.dir)).every((f) => f.startsWith('.peerlink-partial-')), 'only the partial file kept for resuming');
});

test('a transfer with resumeTimeout 0 fails at once when its peer goes (no pause)', { timeout: 120_000 }, async (t) => {
  const src = await tempDir(t, 'pl-res-src-');
  await writeFile(join(src, 'big.bin'), Buffer.alloc(200 * 1024 * 1024));
  const p = await pair(t);
  const transfer = p.a.sendResource(join(src, 'big.bin'), 'big.bin', p.bPeer, { resumeTimeout: 0 });
  const incoming = await p.nextResource();
  while (incoming.progress.bytes < 1024 * 1024) await once(incoming, 'progress');
  await p.b.close();
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_ABORTED') || isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED'));
});

test('a paused transfer whose peer does not come back within resumeTimeout fails with ERR_RESOURCE_PEER_LOST', { timeout: 120_000 }, async (t) => {
  const src = await tempDir(t, 'pl-res-src-');
  await writeFile(join(src, 'big.bin'), Buffer.alloc(200 * 1024 * 1024));
  const p = await pair(t);
  const transfer = p.a.sendResource(join(src, 'big.bin'), 'big.bin', p.bPeer, { resumeTimeout: 1500 });
  const incoming = await p.nextResource();
  while (incoming.progress.bytes < 1024 * 1024) await once(incoming, 'progress');
  await p.b.close();
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_PEER_LOST'));
});
