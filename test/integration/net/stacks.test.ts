import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Connection, Endpoint, Listener, Parameters, generateIdentity } from '../../../src/net/index.js';
import { delay, dial, echoListener, nextState, PSK, readAll } from './helpers.js';

test('tcp byte stream: echo, half-close, report', async () => {
  const l = await echoListener(Parameters.tcp());
  const c = await dial(l.port, Parameters.tcp());
  const payload = randomBytes(300_000);
  await c.send(payload, { final: true });
  const back = await readAll(c);
  assert.ok(back.equals(payload));
  assert.equal(await nextState(c, 'cancelled', 'failed'), 'cancelled');
  const r = c.report();
  assert.equal(r.counters.bytesIn, payload.length);
  assert.equal(r.path?.interface?.name, 'lo');
  assert.equal(r.path?.remoteEndpoint.port, l.port);
  await l.cancel();
});

test('tcp + framer over IPv6 loopback; one message from several chunks', async () => {
  const p = Parameters.tcp({ framer: true });
  const l = await echoListener(p, '::1');
  const c = await dial(l.port, p, '::1');
  const msgs = Array.from({ length: 500 }, (_, i) => randomBytes(i * 13));
  for (const m of msgs) await c.send(m);
  await c.send([Buffer.from('one '), Buffer.from('message')]);
  for (const m of msgs) assert.ok((await c.receiveMessage())?.equals(m));
  assert.equal(String(await c.receiveMessage()), 'one message');
  assert.equal(c.currentPath?.localEndpoint.host, '::1');
  c.cancel();
  assert.equal(await c.receiveMessage(), null);
  await l.cancel();
});

test('byte stream as a Duplex (stream())', async () => {
  const l = await echoListener(Parameters.tcp());
  const c = await dial(l.port, Parameters.tcp());
  const d = c.stream();
  const data = randomBytes(1_000_000);
  d.end(data);
  const parts: Buffer[] = [];
  for await (const chunk of d) parts.push(chunk as Buffer);
  assert.ok(Buffer.concat(parts).equals(data));
  await l.cancel();
});

test('tls-psk over TLS 1.3 and TLS 1.2 (PSK-AES128-GCM-SHA256)', async () => {
  for (const [max, ciphers] of [
    ['TLSv1.3', /TLS_AES_128_GCM_SHA256|TLS_CHACHA20_POLY1305_SHA256/],
    ['TLSv1.2', /PSK/],
  ] as const) {
    const p = Parameters.tls({ psk: { key: PSK }, maxVersion: max }, { framer: true });
    const l = await echoListener(p);
    const c = await dial(l.port, p);
    await c.send('hi');
    assert.equal(String(await c.receiveMessage()), 'hi');
    const r = c.report();
    assert.equal(r.tls?.version, max);
    assert.match(r.tls?.cipher ?? '', ciphers);
    assert.equal(r.tls?.pskIdentity, 'peerlink');
    const k1 = c.exportKeyingMaterial(32, 'EXPORTER-peerlink-test');
    assert.equal(k1.length, 32);
    c.cancel();
    await l.cancel();
  }
});

test('tls-psk: listener with an identity accepts only that identity', async () => {
  const sp = Parameters.tls({ psk: { key: PSK, identity: 'team-a' } }, { framer: true });
  const l = await echoListener(sp);
  const rejected: string[] = [];
  l.on('rejected', (e) => rejected.push(e.code));
  const good = await dial(l.port, Parameters.tls({ psk: { key: PSK, identity: 'team-a' } }, { framer: true }));
  good.cancel();
  const bad = new Connection(Endpoint.hostPort('127.0.0.1', l.port), Parameters.tls({ psk: { key: PSK, identity: 'team-b' } }, { framer: true })).start();
  assert.equal(await nextState(bad, 'failed', 'ready'), 'failed');
  assert.equal(bad.error?.code, 'ERR_PSK_MISMATCH');
  await delay(50);
  assert.deepEqual(rejected, ['ERR_PSK_IDENTITY_REJECTED']);
  await l.cancel();
});

test('tls-pki: pinned self-signed server, CA trust with host name check, mutual TLS', async () => {
  const server = await generateIdentity({ commonName: 'server' });
  const client = await generateIdentity({ commonName: 'client' });
  // pinning
  const l = await echoListener(Parameters.tls({ pki: { cert: server.cert, key: server.key } }, { framer: true }));
  const c = await dial(l.port, Parameters.tls({ pki: { pins: [server.pin] } }, { framer: true }));
  await c.send('pinned');
  assert.equal(String(await c.receiveMessage()), 'pinned');
  assert.equal(c.report().tls?.peerPin, server.pin);
  assert.equal(c.peerCertificates.length, 1);
  c.cancel();
  // CA trust (the self-signed cert is its own anchor) with the host name checked
  const ok = await dial(l.port, Parameters.tls({ pki: { ca: server.cert } }, { framer: true }), '127.0.0.1');
  ok.cancel();
  const wrongName = new Connection(Endpoint.hostPort('127.0.0.1', l.port), Parameters.tls({ pki: { ca: server.cert, serverName: 'example.com' } }, { framer: true })).start();
  assert.equal(await nextState(wrongName, 'failed', 'ready'), 'failed');
  assert.equal(wrongName.error?.code, 'ERR_CERT_HOSTNAME_MISMATCH');
  // verify hook
  let seen = 0;
  const hooked = await dial(l.port, Parameters.tls({ pki: { verify: (chain) => (seen = chain.length, true) } }, { framer: true }));
  assert.equal(seen, 1);
  hooked.cancel();
  await l.cancel();

  // mutual TLS: the server requires a client certificate pinned to `client`
  const ml = await echoListener(Parameters.tls({ pki: { cert: server.cert, key: server.key, requireClientCertificate: true, pins: [client.pin] } }, { framer: true }));
  const rejected: string[] = [];
  ml.on('rejected', (e) => rejected.push(e.code));
  const mc = await dial(ml.port, Parameters.tls({ pki: { cert: client.cert, key: client.key, pins: [server.pin] } }, { framer: true }));
  await mc.send('mutual');
  assert.equal(String(await mc.receiveMessage()), 'mutual');
  mc.cancel();
  // a client with another identity is refused by the server
  const other = await generateIdentity();
  const oc = new Connection(Endpoint.hostPort('127.0.0.1', ml.port), Parameters.tls({ pki: { cert: other.cert, key: other.key, pins: [server.pin] } }, { framer: true })).start();
  await nextState(oc, 'failed', 'cancelled', 'ready');
  await delay(100);
  assert.ok(rejected.includes('ERR_CERT_PIN_MISMATCH'), `rejected: ${rejected.join(',')}`);
  oc.forceCancel();
  // and one without a certificate too
  const nc = new Connection(Endpoint.hostPort('127.0.0.1', ml.port), Parameters.tls({ pki: { pins: [server.pin] } }, { framer: true })).start();
  await nextState(nc, 'failed', 'cancelled', 'ready');
  await delay(100);
  assert.ok(rejected.includes('ERR_CERT_REQUIRED'), `rejected: ${rejected.join(',')}`);
  nc.forceCancel();
  await ml.cancel();
});

test('ws and wss (psk and pki) echo; listener path filter', async () => {
  const id = await generateIdentity();
  const variants: Array<[Parameters, Parameters]> = [
    [Parameters.ws(), Parameters.ws()],
    [Parameters.ws({ tls: { psk: { key: PSK } } }), Parameters.ws({ tls: { psk: { key: PSK } } })],
    [Parameters.ws({ tls: { pki: { cert: id.cert, key: id.key } } }), Parameters.ws({ tls: { pki: { pins: [id.pin] } } })],
  ];
  for (const [sp, cp] of variants) {
    const l = await echoListener(sp);
    const c = await dial(l.port, cp);
    const big = randomBytes(3_000_000);
    await c.send('text');
    await c.send(big);
    assert.equal(String(await c.receiveMessage()), 'text');
    assert.ok((await c.receiveMessage())?.equals(big));
    await c.send('bye');
    assert.equal(String(await c.receiveMessage()), 'bye');
    // WebSocket has no half-close: final starts the closing handshake.
    await c.send('last', { final: true });
    assert.equal(await c.receiveMessage(), null);
    assert.equal(await nextState(c, 'cancelled', 'failed'), 'cancelled');
    await l.cancel();
  }
  const l = await echoListener(Parameters.ws({ path: '/peerlink' }));
  const ok = await dial(l.port, Parameters.ws({ path: '/peerlink' }));
  ok.cancel();
  const bad = new Connection(Endpoint.hostPort('127.0.0.1', l.port), Parameters.ws({ path: '/other' })).start();
  assert.equal(await nextState(bad, 'failed', 'ready'), 'failed');
  assert.equal(bad.error?.code, 'ERR_PROTOCOL');
  await l.cancel();
});

test('udp flows: three clients from three ports become three connections', async () => {
  const l = new Listener(Parameters.udp({ idleTimeout: 0 }), { host: '127.0.0.1' });
  const accepted: Connection[] = [];
  l.on('connection', (c) => {
    accepted.push(c);
    void (async () => {
      for await (const m of c.messages()) await c.send(Buffer.concat([Buffer.from('echo:'), m]));
    })().catch(() => undefined);
  });
  await l.start();
  const clients = await Promise.all([0, 1, 2].map(() => dial(l.port, Parameters.udp())));
  assert.equal(new Set(clients.map((c) => c.currentPath?.localEndpoint.port)).size, 3);
  for (const [i, c] of clients.entries()) {
    assert.equal(c.maximumDatagramSize, 65507);
    await c.send(`from ${i}`);
    await c.send(`again ${i}`);
  }
  for (const [i, c] of clients.entries()) {
    assert.equal(String(await c.receiveMessage()), `echo:from ${i}`);
    assert.equal(String(await c.receiveMessage()), `echo:again ${i}`);
  }
  assert.equal(accepted.length, 3);
  assert.deepEqual(new Set(accepted.map((c) => c.currentPath?.remoteEndpoint.port)), new Set(clients.map((c) => c.currentPath?.localEndpoint.port)));
  await assert.rejects(clients[0]?.send(Buffer.alloc(70_000)) ?? Promise.resolve(), (e: unknown) => (e as { code?: string }).code === 'ERR_DATAGRAM_TOO_LARGE');
  assert.equal(clients[0]?.state, 'ready');
  for (const c of clients) c.cancel();
  await l.cancel();
  for (const c of accepted) c.cancel(); // the last flow closes the listener's socket
});

test('udp listener cancel: accepted flows keep working, no new flows, the port is freed with the last flow', { timeout: 10_000 }, async () => {
  const l = new Listener(Parameters.udp({ idleTimeout: 0 }), { host: '127.0.0.1' });
  const accepted: Connection[] = [];
  l.on('connection', (c) => accepted.push(c));
  await l.start();
  const port = l.port;
  const a = await dial(port, Parameters.udp());
  await a.send('hello');
  for (let i = 0; i < 100 && accepted.length === 0; i++) await delay(10);
  const flow = accepted[0] as Connection;
  assert.equal(String(await flow.receiveMessage()), 'hello');
  await l.cancel();
  assert.equal(l.state, 'cancelled');
  // Network framework: cancelling a listener does not cancel the connections it produced.
  assert.equal(flow.state, 'ready');
  await a.send('still there?');
  assert.equal(String(await flow.receiveMessage()), 'still there?');
  await flow.send('yes');
  assert.equal(String(await a.receiveMessage()), 'yes');
  // A new remote gets no flow (nothing to accept it), and nothing reaches the old flow.
  const b = await dial(port, Parameters.udp());
  await b.send('new peer');
  await delay(100);
  assert.equal(accepted.length, 1);
  assert.equal(flow.tryReceiveMessage(), undefined);
  // The last flow's last datagram still goes out (a final send ends the flow and so closes the
  // socket, but only once the datagram has left it).
  await flow.send('last words', { final: true });
  assert.equal(String(await a.receiveMessage()), 'last words');
  assert.equal(flow.state, 'cancelled');
  // The socket went with the last flow: the port can be bound again.
  await delay(50);
  const again = new Listener(Parameters.udp({ idleTimeout: 0 }), { host: '127.0.0.1', port });
  await again.start();
  assert.equal(again.port, port);
  // Same for a send right before cancel() on the last flow of a cancelled listener.
  const accepted2 = new Promise<Connection>((r) => again.once('connection', r));
  const c = await dial(port, Parameters.udp());
  await c.send('hi');
  const flow2 = await accepted2;
  await again.cancel();
  void flow2.send('bye');
  flow2.cancel();
  assert.equal(String(await c.receiveMessage()), 'bye');
  a.cancel();
  b.cancel();
  c.cancel();
});

test('udp listener: flow cap and idle timeout', async () => {
  const l = new Listener(Parameters.udp({ flowLimit: 2, idleTimeout: 300 }), { host: '127.0.0.1' });
  const accepted: Connection[] = [];
  const rejected: string[] = [];
  l.on('connection', (c) => accepted.push(c));
  l.on('rejected', (e) => rejected.push(e.code));
  await l.start();
  const clients = await Promise.all([0, 1, 2].map(() => dial(l.port, Parameters.udp())));
  for (const c of clients) await c.send('x');
  await delay(100);
  assert.equal(accepted.length, 2);
  assert.equal(rejected.length, 1);
  await Promise.all(accepted.map((c) => nextState(c, 'cancelled')));
  for (const c of clients) c.cancel();
  await l.cancel();
});
