/**
 * Two NwfSessions on 127.0.0.1 (no discovery): both dial each other at once and the seed's rule
 * leaves one connection per pair, the same one on both sides; messages flow; a wrong key never
 * connects.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { NwfSession } from '../../../src/session/nwf-session.js';
import { Endpoint } from '../../../src/net/index.js';

const KEY = randomBytes(16).toString('hex');
const mk = (name: string, key = KEY): NwfSession => new NwfSession({ serviceType: 'nwf', displayName: name, advertise: false, browse: false, security: { mode: 'psk', key } });

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('simultaneous dials both ways: one connection per pair on each side, messages flow both ways', async () => {
  const a = mk('A');
  const b = mk('B');
  await a.start();
  await b.start();
  try {
    const [pb, pa] = await Promise.all([a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort)), b.connect(Endpoint.hostPort('127.0.0.1', a.listenPort))]);
    assert.ok(pb.equals(b.peerId));
    assert.ok(pa.equals(a.peerId));
    await until(() => a.stats.connections === 1 && b.stats.connections === 1);
    assert.equal(a.connectedPeers.length, 1);
    assert.equal(b.connectedPeers.length, 1);
    const atB = new Promise<string>((r) => b.once('message', (d) => r(String(d))));
    const atA = new Promise<string>((r) => a.once('message', (d) => r(String(d))));
    await a.send('to b', { to: pb });
    await b.send('to a');
    assert.equal(await atB, 'to b');
    assert.equal(await atA, 'to a');
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('a wrong key never connects', async () => {
  const a = mk('A');
  const b = mk('B', randomBytes(16).toString('hex'));
  await a.start();
  await b.start();
  try {
    await assert.rejects(a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort)));
    assert.equal(b.connectedPeers.length, 0);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

/** A client frame (RFC 6455 §5.2, masked as §5.3 requires): FIN, binary. */
function clientFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.of(0x82, 0x80 | n) : n < 65536 ? Buffer.concat([Buffer.of(0x82, 0x80 | 126), Buffer.from([n >> 8, n & 0xff])]) : (() => {
    const h = Buffer.alloc(10);
    h[0] = 0x82;
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(BigInt(n), 2);
    return h;
  })();
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([head, key, body]);
}

test('after the TLS-PSK handshake the first-frame limit is lifted: an id and a 100 KB message in one write are delivered (raw TLS 1.2 PSK client, hand-written WebSocket frames)', async () => {
  const b = mk('B');
  await b.start();
  try {
    const got = new Promise<Buffer>((r) => b.once('message', (d) => r(d)));
    const sock = tlsConnect({ host: '127.0.0.1', port: b.listenPort, maxVersion: 'TLSv1.2', ciphers: 'PSK-AES128-GCM-SHA256', checkServerIdentity: () => undefined, pskCallback: () => ({ psk: Buffer.from(KEY, 'hex'), identity: 'app' }) });
    sock.on('error', () => undefined);
    await new Promise<void>((r) => sock.once('secureConnect', () => r()));
    const wsKey = randomBytes(16).toString('base64');
    sock.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${wsKey}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    let head = '';
    await new Promise<void>((r) => {
      const on = (d: Buffer): void => {
        head += d.toString('latin1');
        if (head.includes('\r\n\r\n')) {
          sock.off('data', on);
          r();
        }
      };
      sock.on('data', on);
    });
    assert.match(head, /^HTTP\/1\.1 101/);
    const big = randomBytes(100_000);
    sock.write(Buffer.concat([clientFrame(Buffer.from(randomUUID().toUpperCase())), clientFrame(big)]));
    const closed = new Promise<never>((_r, reject) => sock.once('close', () => reject(new Error('the session closed the connection instead of delivering the message'))));
    assert.ok((await Promise.race([got, closed])).equals(big));
    sock.destroy();
  } finally {
    await b.close();
  }
});
