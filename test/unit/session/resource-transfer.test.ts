// Both ends of a resource over a real TCP connection on 127.0.0.1 (real backpressure),
// without a session: the ResourceManager is given the socket as its stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { generateIdentity } from '../../../src/net/identity.js';
import { readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { socketPair, tempDir as makeTempDir, type Ctx } from '../../harness/loopback.js';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import diagnostics from 'node:diagnostics_channel';
import type { AddressInfo } from 'node:net';
import { isPeerlinkError } from '../../../src/errors.js';
import { ResourceManager } from '../../../src/session/resource-manager.js';
import type { IncomingResource } from '../../../src/session/resource-receive.js';
import { encodeFrame, ResourceStreamReader } from '../../../src/session/resource-wire.js';
import { senderTo } from './resource-pair.js';

const tempDir = (t: Ctx, prefix = 'pl-xfer-'): Promise<string> => makeTempDir(t, prefix);


const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Pair {
  sender: ResourceManager<string>;
  receiver: ResourceManager<string>;
  dir: string;
  incoming: Promise<IncomingResource<string>>;
  /** The receiver-side socket of the last stream, for fault injection. */
  receiverSocket: () => Socket | undefined;
}

async function pair(t: Ctx, opts: { quota?: number } = {}): Promise<Pair> {
  const dir = await tempDir(t, 'pl-xfer-dl-');
  let resolveIncoming!: (r: IncomingResource<string>) => void;
  const incoming = new Promise<IncomingResource<string>>((r) => (resolveIncoming = r));
  // A listener (announce) is the receiving app's consent.
  const receiver = new ResourceManager<string>({ directory: dir, quota: opts.quota, open: () => assert.fail('receiver never opens'), announce: resolveIncoming, listening: () => true });
  const { sender, receiverSocket } = senderTo(t, receiver);
  return { sender, receiver, dir, incoming, receiverSocket };
}

test('a file arrives with the right SHA-256 and progress on both sides', async (t) => {
  const src = await tempDir(t);
  const data = randomBytes(5 * 1024 * 1024 + 17);
  await writeFile(join(src, 'payload.bin'), data);
  const p = await pair(t);
  const transfer = p.sender.send(join(src, 'payload.bin'), 'payload.bin', 'receiver-peer');
  const sendProgress: number[] = [];
  transfer.on('progress', (pr) => sendProgress.push(pr.bytes));
  const incoming = await p.incoming;
  assert.equal(incoming.name, 'payload.bin');
  assert.equal(incoming.size, data.length);
  assert.equal(incoming.peer, 'sender-peer');
  const recvProgress: number[] = [];
  incoming.on('progress', (pr) => recvProgress.push(pr.bytes));
  const [sent, received] = await Promise.all([transfer.done, incoming.done]);
  assert.equal(sent.sha256, sha(data));
  assert.equal(received.sha256, sha(data));
  assert.equal(received.path, join(p.dir, 'payload.bin'));
  assert.deepEqual(await readFile(received.path), data);
  assert.equal(sendProgress.at(-1), data.length);
  assert.equal(recvProgress.at(-1), data.length);
  assert.equal(transfer.state, 'completed');
  assert.deepEqual(await readdir(p.dir), ['payload.bin']);
});

test('a second file of the same name gets a numbered suffix', async (t) => {
  const src = await tempDir(t);
  await writeFile(join(src, 'a.txt'), 'one');
  await writeFile(join(src, 'b.txt'), 'two');
  const p = await pair(t);
  await p.sender.send(join(src, 'a.txt'), 'same.txt', 'r').done;
  await p.sender.send(join(src, 'b.txt'), 'same.txt', 'r').done;
  assert.deepEqual((await readdir(p.dir)).sort(), ['same (1).txt', 'same.txt']);
  assert.equal(await readFile(join(p.dir, 'same (1).txt'), 'utf8'), 'two');
});

test('an empty file crosses too', async (t) => {
  const src = await tempDir(t);
  await writeFile(join(src, 'empty.txt'), '');
  const p = await pair(t);
  const [sent, received] = await Promise.all([p.sender.send(join(src, 'empty.txt'), 'empty.txt', 'r').done, (await p.incoming).done]);
  assert.equal(sent.size, 0);
  assert.equal(received.sha256, sha(Buffer.alloc(0)));
  assert.equal((await readFile(received.path)).length, 0);
});

test('a known digest in the header is checked; a wrong one fails on both sides', async (t) => {
  const src = await tempDir(t);
  await writeFile(join(src, 'f.txt'), 'content');
  const p = await pair(t);
  const t1 = p.sender.send(join(src, 'f.txt'), 'f.txt', 'r', { sha256: sha(Buffer.from('content')) });
  await t1.done;
  const t2 = p.sender.send(join(src, 'f.txt'), 'g.txt', 'r', { sha256: 'a'.repeat(64) });
  await assert.rejects(t2.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_VERIFY'));
  // The receiver reported the mismatch, so its temp file is already gone.
  assert.deepEqual(await readdir(p.dir), ['f.txt']);
});

test('transfers are published on the peerlink:session:resource diagnostics channel', async (t) => {
  const seen: string[] = [];
  const onMessage = (m: unknown): void => {
    const e = m as { event: string; direction: string; name: string };
    if (e.name === 'traced.txt') seen.push(`${e.direction}:${e.event}`);
  };
  diagnostics.subscribe('peerlink:session:resource', onMessage);
  t.after(() => diagnostics.unsubscribe('peerlink:session:resource', onMessage));
  const src = await tempDir(t);
  await writeFile(join(src, 'traced.txt'), 'trace me');
  const p = await pair(t);
  await Promise.all([p.sender.send(join(src, 'traced.txt'), 'traced.txt', 'r').done, (await p.incoming).done]);
  assert.deepEqual(seen.sort(), ['receive:done', 'receive:start', 'send:done', 'send:start']);
});

test('the sender refuses a hostile name before opening anything', async (t) => {
  const src = await tempDir(t);
  await writeFile(join(src, 'f'), 'x');
  let opened = false;
  const m = new ResourceManager<string>({ open: () => ((opened = true), assert.fail('no')), announce: () => undefined });
  t.after(() => m.close());
  await assert.rejects(m.send(join(src, 'f'), '../../etc/passwd', 'p').done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_NAME'));
  assert.equal(opened, false);
});


async function offer(p: Pair, t: Ctx, header: Record<string, unknown>): Promise<{ socket: Socket; reader: ResourceStreamReader }> {
  const [a, b] = await socketPair(t);
  p.receiver.receive(b, 'evil-peer');
  const json = Buffer.from(JSON.stringify({ type: 'resource', v: 1, sha256: null, ...header }));
  const frame = Buffer.alloc(4 + json.length);
  frame.writeUInt32BE(json.length, 0);
  json.copy(frame, 4);
  a.write(frame);
  return { socket: a, reader: new ResourceStreamReader(a) };
}

for (const name of ['../escape.txt', '/etc/passwd', '..', 'CON', 'a\u0000b', 'x'.repeat(256), '', 'sub/dir.txt', '..\\win.ini']) {
  test(`the receiver refuses hostile name ${JSON.stringify(name.slice(0, 20))}, tells the sender, writes nothing`, async (t) => {
    const p = await pair(t);
    const { reader } = await offer(p, t, { name, size: 10 });
    const answer = await reader.frame();
    assert.equal(answer.type, 'reject');
    assert.equal((answer as { code: string }).code, 'ERR_RESOURCE_NAME');
    const incoming = await p.incoming;
    await assert.rejects(incoming.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_NAME'));
    assert.deepEqual(await readdir(p.dir), []);
    const parent = await readdir(join(p.dir, '..'));
    assert.ok(!parent.includes('escape.txt'));
  });
}

test('a digest mismatch fails on both sides with ERR_RESOURCE_VERIFY and leaves nothing', async (t) => {
  const p = await pair(t);
  const { socket, reader } = await offer(p, t, { name: 'tampered.bin', size: 5 });
  assert.equal((await reader.frame()).type, 'accept');
  socket.write(Buffer.from('hello'));
  socket.write(encodeFrame({ type: 'end', sha256: '0'.repeat(64) }));
  const result = await reader.frame();
  assert.equal(result.type, 'error');
  assert.equal((result as { code: string }).code, 'ERR_RESOURCE_VERIFY');
  await assert.rejects((await p.incoming).done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_VERIFY'));
  assert.deepEqual(await readdir(p.dir), []);
});

test('quota: the sender learns ERR_RESOURCE_QUOTA and nothing is written', async (t) => {
  const src = await tempDir(t);
  await writeFile(join(src, 'big.bin'), Buffer.alloc(200_000));
  const p = await pair(t, { quota: 100_000 });
  const transfer = p.sender.send(join(src, 'big.bin'), 'big.bin', 'r');
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_QUOTA'));
  await assert.rejects((await p.incoming).done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_QUOTA'));
  assert.deepEqual(await readdir(p.dir), []);
});

test('a sender vanishing mid-transfer: ERR_RESOURCE_ABORTED and the partial file kept for resuming', async (t) => {
  const p = await pair(t);
  const { socket, reader } = await offer(p, t, { name: 'partial.bin', size: 10_000_000 });
  assert.equal((await reader.frame()).type, 'accept');
  socket.write(Buffer.alloc(1_000_000));
  const incoming = await p.incoming;
  while (incoming.progress.bytes < 1_000_000) await once(incoming, 'progress');
  assert.equal((await readdir(p.dir)).length, 2, 'partial file and its record while receiving');
  // Vanishing is a reset (a clean end of the stream before the body is a sender that gave up: its partial is dropped).
  socket.resetAndDestroy();
  await assert.rejects(incoming.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_ABORTED'));
  const kept = await p.receiver.store.listPartial();
  assert.deepEqual(kept.map((k) => [k.name, k.size]), [['partial.bin', 10_000_000]]);
  assert.ok(kept[0]!.bytes <= 1_000_000);
});

/** A 30 MiB file on its way from the pair's sender, once the receiver has taken its first MiB. */
async function bigTransferUnderway(t: Ctx) {
  const src = await tempDir(t);
  // Large enough (sparse: no disk) that the whole file cannot cross loopback between the 1 MiB
  // progress event and the test's next step — with 30 MiB it sometimes did, and the cancel came too late.
  await writeFile(join(src, 'big.bin'), '');
  await truncate(join(src, 'big.bin'), 256 * 1024 * 1024);
  const p = await pair(t);
  const transfer = p.sender.send(join(src, 'big.bin'), 'big.bin', 'r');
  const incoming = await p.incoming;
  while (incoming.progress.bytes < 1024 * 1024) await once(incoming, 'progress');
  return { p, transfer, incoming };
}

test('a receiver vanishing mid-transfer: the sender (which cannot wait for it here) fails with ERR_RESOURCE_ABORTED', async (t) => {
  const { p, transfer, incoming } = await bigTransferUnderway(t);
  p.receiverSocket()?.destroy();
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_ABORTED'));
  await assert.rejects(incoming.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_ABORTED'));
  assert.deepEqual((await p.receiver.store.listPartial()).map((k) => k.name), ['big.bin'], 'the partial file is kept for resuming');
});

test('cancel on the sender: ERR_CANCELLED there, ERR_RESOURCE_ABORTED on the receiver', async (t) => {
  const { p, transfer, incoming } = await bigTransferUnderway(t);
  transfer.cancel();
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_CANCELLED'));
  await assert.rejects(incoming.done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_ABORTED'));
  assert.deepEqual(await readdir(p.dir), []);
});

test('cancel on the receiver: the sender is told', async (t) => {
  const { p, transfer, incoming } = await bigTransferUnderway(t);
  incoming.cancel();
  await assert.rejects(incoming.done, (e: unknown) => isPeerlinkError(e, 'ERR_CANCELLED'));
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e, 'ERR_CANCELLED') || isPeerlinkError(e, 'ERR_RESOURCE_ABORTED'));
  assert.deepEqual(await readdir(p.dir), []);
});

test('a missing source file fails with ERR_RESOURCE_SOURCE', async (t) => {
  const p = await pair(t);
  await assert.rejects(p.sender.send('/nonexistent/peerlink-test-file', 'f.txt', 'r').done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_SOURCE'));
});

async function httpServer(t: Ctx, handler: Parameters<typeof createHttpServer>[1]): Promise<string> {
  const server = createHttpServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('an HTTP source is streamed to the peer', async (t) => {
  const data = randomBytes(3 * 1024 * 1024 + 5);
  const base = await httpServer(t, (req, res) => {
    if (req.url === '/redirect') {
      res.writeHead(302, { location: '/files/remote.bin' }).end();
      return;
    }
    res.writeHead(200, { 'content-length': data.length, 'content-type': 'application/octet-stream' });
    res.end(data);
  });
  const p = await pair(t);
  const transfer = p.sender.send(`${base}/redirect`, 'remote.bin', 'r');
  const [sent, received] = await Promise.all([transfer.done, (await p.incoming).done]);
  assert.equal(sent.sha256, sha(data));
  assert.equal(received.sha256, sha(data));
  assert.deepEqual(await readFile(join(p.dir, 'remote.bin')), data);
});

test('an HTTPS source: refused when its certificate is untrusted, sent when its CA is given', async (t) => {
  const id = await generateIdentity({ altNames: ['127.0.0.1'] });
  const data = randomBytes(300_000);
  const server = createHttpsServer({ cert: id.cert, key: id.key }, (_req, res) => {
    res.writeHead(200, { 'content-length': data.length });
    res.end(data);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/secure.bin`;
  const p = await pair(t);
  await assert.rejects(p.sender.send(url, 'secure.bin', 'r').done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_SOURCE'));
  const transfer = p.sender.send(url, 'secure.bin', 'r', { ca: id.cert });
  const [sent] = await Promise.all([transfer.done, (await p.incoming).done]);
  assert.equal(sent.sha256, sha(data));
  assert.deepEqual(await readFile(join(p.dir, 'secure.bin')), data);
});

test('an HTTP source without Content-Length is refused', async (t) => {
  const base = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'transfer-encoding': 'chunked' });
    res.end('some bytes');
  });
  const p = await pair(t);
  await assert.rejects(p.sender.send(`${base}/x`, 'x.bin', 'r').done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_SOURCE') && /Content-Length/.test(e.message));
});

test('an HTTP error status is refused', async (t) => {
  const base = await httpServer(t, (_req, res) => {
    res.writeHead(404).end();
  });
  const p = await pair(t);
  await assert.rejects(p.sender.send(`${base}/missing`, 'x.bin', 'r').done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_SOURCE') && /404/.test(e.message));
});

test('an HTTP body cut short fails the transfer and leaves nothing', async (t) => {
  const base = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': 1_000_000 });
    res.write(Buffer.alloc(100_000));
    setTimeout(() => res.destroy(), 50);
  });
  const p = await pair(t);
  const transfer = p.sender.send(`${base}/x`, 'cut.bin', 'r');
  await assert.rejects(transfer.done, (e: unknown) => isPeerlinkError(e));
  await assert.rejects((await p.incoming).done, (e: unknown) => isPeerlinkError(e, 'ERR_RESOURCE_ABORTED'));
  assert.deepEqual(await readdir(p.dir), []);
});
