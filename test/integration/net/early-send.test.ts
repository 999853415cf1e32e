/**
 * Connection.sendEarly(): a message that speaks first (a session's HELLO). With TLS-PSK it is
 * handed to the TLS socket before the handshake ends, so it leaves with the client's Finished
 * (one write, no round of event-loop work after `ready`); OpenSSL sends it only once the
 * handshake has completed, so a server without the key never sees it. PKI peers are verified
 * after the handshake: their early message waits for that, and a refused server gets nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import { Connection, Endpoint, Listener, Parameters, generateIdentity } from '../../../src/net/index.js';
import { PSK_CIPHERS } from '../../../src/net/tls-config.js';

const listen = (s: Server): Promise<number> => new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));

/** The TLS records (content type, length) in a chunk that starts at a record boundary. */
function records(chunk: Buffer): number[] {
  const types: number[] = [];
  for (let off = 0; off + 5 <= chunk.length; off += 5 + chunk.readUInt16BE(off + 3)) types.push(chunk[off] as number);
  return types;
}

test('PSK: the early message leaves in the same write as the client Finished, ahead of later sends', { timeout: 20_000 }, async () => {
  const key = randomBytes(32);
  const params = Parameters.tls({ psk: { key } }, { framer: true, retry: { automatic: false } });
  const listener = new Listener(params, { port: 0 });
  await listener.start();
  // A proxy in between keeps the client's bytes as they were read, one chunk per read.
  const chunks: Buffer[] = [];
  const proxy = createServer((c: Socket) => {
    const up = netConnect(listener.port, '127.0.0.1');
    c.on('data', (b: Buffer) => {
      chunks.push(Buffer.from(b));
      up.write(b);
    });
    up.on('data', (b: Buffer) => c.write(b));
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
    c.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  const port = await listen(proxy);
  try {
    const got = new Promise<string[]>((resolve) => {
      listener.once('connection', (s: Connection) => {
        void (async () => {
          const a = await s.receiveMessage();
          const b = await s.receiveMessage();
          resolve([String(a), String(b)]);
        })();
      });
    });
    const c = new Connection(Endpoint.hostPort('127.0.0.1', port), params);
    c.sendEarly(Buffer.from('hello first'));
    c.start();
    await c.send('then this');
    assert.deepEqual(await got, ['hello first', 'then this']);
    assert.equal(c.counters.messagesOut, 2);
    // The client's flights: ClientHello (22), then [CCS (20)] Finished (23) — and, in that same
    // write, the early message (another 23). Without sendEarly it follows in a later write.
    const second = chunks.find((ch) => ch[0] !== 22 && records(ch).includes(23));
    assert.ok(second, 'the client sent its Finished');
    assert.ok(records(second).filter((t) => t === 23).length >= 2, `Finished and the early message in one write (records ${records(second).join(',')})`);
    c.forceCancel();
  } finally {
    proxy.close();
    await listener.cancel();
  }
});

test('PSK: a server with another key never receives the early message', { timeout: 20_000 }, async () => {
  let bytes = 0;
  const server = tls.createServer({ ciphers: PSK_CIPHERS, minVersion: 'TLSv1.2', pskCallback: () => randomBytes(32) }, (s) => {
    s.on('data', (b: Buffer) => (bytes += b.length));
    s.on('error', () => undefined);
  });
  server.on('tlsClientError', () => undefined);
  const port = await listen(server);
  try {
    const c = new Connection(Endpoint.hostPort('127.0.0.1', port), Parameters.tls({ psk: { key: randomBytes(32) } }, { framer: true, retry: { automatic: false } }));
    c.sendEarly(Buffer.from('secret hello'));
    c.start();
    await assert.rejects(c.whenReady({ waiting: 'reject' }), (e: Error & { code?: string }) => e.code === 'ERR_PSK_MISMATCH');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bytes, 0);
    c.forceCancel();
  } finally {
    server.close();
  }
});

test('PKI: a server that fails our pin check never receives the early message', { timeout: 20_000 }, async () => {
  const id = await generateIdentity();
  const other = await generateIdentity();
  let bytes = 0;
  const server = tls.createServer({ cert: id.cert, key: id.key, minVersion: 'TLSv1.3' }, (s) => {
    s.on('data', (b: Buffer) => (bytes += b.length));
    s.on('error', () => undefined);
  });
  server.on('tlsClientError', () => undefined);
  const port = await listen(server);
  try {
    const c = new Connection(Endpoint.hostPort('127.0.0.1', port), Parameters.tls({ pki: { pins: [other.pin] } }, { framer: true, retry: { automatic: false } }));
    c.sendEarly(Buffer.from('hello to the right server only'));
    c.start();
    await assert.rejects(c.whenReady({ waiting: 'reject' }), (e: Error & { code?: string }) => e.code === 'ERR_CERT_PIN_MISMATCH');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bytes, 0);
    c.forceCancel();
  } finally {
    server.close();
  }
});

test('sendEarly() is refused once the connection has started', () => {
  const c = new Connection(Endpoint.hostPort('127.0.0.1', 9), Parameters.tcp({ framer: true, retry: { automatic: false } }));
  c.start();
  assert.throws(() => c.sendEarly(Buffer.from('late')), (e: Error & { code?: string }) => e.code === 'ERR_INVALID_STATE');
  c.forceCancel();
});
