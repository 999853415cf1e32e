/**
 * PeerSession on 127.0.0.1 without discovery (advertise/browse off, connect() by address:
 * nothing is multicast, no namespace needed): the API contract, option validation, and
 * hostile input from a peer that speaks the framing but not the protocol.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { PeerSession } from '../../../src/session/index.js';
import { PeerID } from '../../../src/session/peer-id.js';
import { Connection, Endpoint, Parameters } from '../../../src/net/index.js';
import { isPeerlinkError, type PeerlinkError } from '../../../src/errors.js';
import { encodeMessageBuffer } from '../../../src/session/protocol/codec.js';
import { MessageType } from '../../../src/session/protocol/messages.js';
import type { PeerSessionOptions } from '../../../src/session/options.js';

const KEY = randomBytes(32).toString('hex');

async function pair(extra: Partial<PeerSessionOptions> = {}): Promise<{ a: PeerSession; b: PeerSession; pa: PeerID; pb: PeerID }> {
  const mk = (name: string): PeerSession => new PeerSession({ serviceType: 'loop', displayName: name, advertise: false, browse: false, security: { mode: 'psk', key: KEY }, ...extra });
  const a = mk('A');
  const b = mk('B');
  await a.start();
  await b.start();
  const pb = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  // b sees a as connected once a's WELCOME round trip finished.
  for (let i = 0; i < 100 && b.connectedPeers.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  const pa = b.connectedPeers[0] as PeerID;
  return { a, b, pa, pb };
}

test('connect by address, messages both ways, peerInfo, stats, close → notConnected on both sides', async () => {
  const { a, b, pa, pb } = await pair();
  try {
    assert.ok(pb.equals(b.peerId));
    assert.ok(pa.equals(a.peerId));
    const got: string[] = [];
    b.on('message', (d, p) => {
      assert.ok(p.equals(a.peerId));
      got.push(String(d));
    });
    for (let i = 0; i < 100; i++) void a.send(`m${i}`, { to: pb });
    await a.send('last', { to: [pb] });
    await a.send(new Uint8Array([1, 2, 3]));
    for (let i = 0; i < 100 && got.length < 102; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, 102);
    assert.deepEqual(got.slice(0, 3), ['m0', 'm1', 'm2']);
    assert.equal(got[100], 'last');
    const info = a.peerInfo(pb);
    assert.equal(info?.state, 'connected');
    assert.equal(a.stats.controlConnections, 1);
    assert.equal(a.stats.activeConnections, 1);
    // Connecting again to a connected peer resolves at once with the same peer.
    const again = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
    assert.ok(again.equals(pb));
    const states: string[] = [];
    b.on('peer', (_p, s) => states.push(s));
    await a.close();
    for (let i = 0; i < 100 && states.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(states, ['notConnected']);
  } finally {
    await a.close();
    await b.close();
  }
});

test('messages of every size sent in one tick (batched and alone) arrive intact, in order, as Buffers that stay valid', async () => {
  const { a, b, pb } = await pair();
  try {
    // Sizes around the batch's payload limit (8 KiB) and the empty message, with random
    // content, enough of them to fill several 64 KiB batches spread over many TLS reads.
    const sizes = [0, 1, 3, 4, 100, 1000, 8191, 8192, 8193, 20_000];
    const sent: Buffer[] = [];
    for (let i = 0; i < 3000; i++) sent.push(randomBytes(sizes[i % sizes.length] as number));
    const got: Buffer[] = [];
    b.on('message', (d) => got.push(d));
    let last: Promise<number> = Promise.resolve(0);
    for (const m of sent) last = a.send(m, { to: pb });
    await last;
    for (let i = 0; i < 300 && got.length < sent.length; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got.length, sent.length);
    // Checked only after everything arrived: a view whose bytes were reused would show it here.
    for (let i = 0; i < sent.length; i++) {
      const d = got[i] as Buffer;
      assert.ok(Buffer.isBuffer(d) && d instanceof Buffer, `message ${i} is a Buffer`);
      assert.ok(d.equals(sent[i] as Buffer), `message ${i} (${(sent[i] as Buffer).length} bytes) intact`);
    }
    assert.equal(Buffer.concat(got).length, Buffer.concat(sent).length);
  } finally {
    await a.close();
    await b.close();
  }
});

test('send: unknown peer → ERR_PEER_NOT_CONNECTED, too large → ERR_MESSAGE_TOO_LARGE (both limits)', async () => {
  const { a, b, pb } = await pair({ maxMessageSize: 1000 });
  try {
    await assert.rejects(a.send('x', { to: PeerID.generate('stranger') }), (e: unknown) => isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED'));
    await assert.rejects(a.send(Buffer.alloc(1001), { to: pb }), (e: unknown) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'));
    await a.send(Buffer.alloc(1000), { to: pb });
  } finally {
    await a.close();
    await b.close();
  }
  // The peer's smaller limit (from its HELLO) is respected too.
  const big = new PeerSession({ serviceType: 'loop', displayName: 'big', advertise: false, browse: false, maxMessageSize: 1 << 20 });
  const small = new PeerSession({ serviceType: 'loop', displayName: 'small', advertise: false, browse: false, maxMessageSize: 100 });
  await big.start();
  await small.start();
  try {
    const p = await big.connect(Endpoint.hostPort('127.0.0.1', small.listenPort));
    await assert.rejects(big.send(Buffer.alloc(101), { to: p }), (e: unknown) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'));
    // The same again after a send that primed send()'s per-peer fast path: still checked.
    await big.send(Buffer.alloc(100), { to: p });
    await assert.rejects(big.send(Buffer.alloc(101), { to: p }), (e: unknown) => isPeerlinkError(e, 'ERR_MESSAGE_TOO_LARGE'));
    // And once the peer is gone, the cached peer is not connected any more.
    const gone = new Promise<void>((resolve) => big.on('peer', (peer, state) => peer.equals(p) && state === 'notConnected' && resolve()));
    await small.close();
    await gone;
    await assert.rejects(big.send(Buffer.alloc(10), { to: p }), (e: unknown) => isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED'));
  } finally {
    await big.close();
    await small.close();
  }
});

test('streams: both directions, half-close, name delivered; openStream to a stranger fails', async () => {
  const { a, b, pb } = await pair();
  try {
    b.on('stream', (s: Duplex, name) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => s.end(`${name}:${Buffer.concat(chunks).length}`));
    });
    const s = await a.openStream('photos', pb);
    let reply = '';
    s.on('data', (c: Buffer) => (reply += String(c)));
    const closed = new Promise((r) => s.on('close', r));
    s.write(Buffer.alloc(3_000_000, 1));
    s.end(Buffer.alloc(5, 2));
    await closed;
    assert.equal(reply, 'photos:3000005');
    await assert.rejects(a.openStream('x', PeerID.generate('stranger')), (e: unknown) => isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED'));
  } finally {
    await a.close();
    await b.close();
  }
});

test('wrong PSK: connect() rejects with ERR_PSK_MISMATCH, peerError on both sides, never connected', async () => {
  const a = new PeerSession({ serviceType: 'loop', displayName: 'A', advertise: false, browse: false, security: { mode: 'psk', key: KEY } });
  const b = new PeerSession({ serviceType: 'loop', displayName: 'B', advertise: false, browse: false, security: { mode: 'psk', key: randomBytes(32).toString('hex') } });
  await a.start();
  await b.start();
  const errs: PeerlinkError[] = [];
  a.on('peerError', (e) => errs.push(e));
  b.on('peerError', (e) => errs.push(e));
  let connected = false;
  a.on('peer', (_p, s) => (connected ||= s === 'connected'));
  b.on('peer', (_p, s) => (connected ||= s === 'connected'));
  try {
    await assert.rejects(a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort)), (e: unknown) => isPeerlinkError(e, 'ERR_PSK_MISMATCH'));
    for (let i = 0; i < 100 && errs.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(errs.length >= 2 && errs.every((e) => e.code === 'ERR_PSK_MISMATCH'), errs.map((e) => e.code).join());
    assert.equal(connected, false);
    assert.deepEqual(a.connectedPeers, []);
  } finally {
    await a.close();
    await b.close();
  }
});

test('option validation', () => {
  const bad: Array<[Partial<PeerSessionOptions>, string]> = [
    [{ serviceType: '_chat._tcp' }, 'ERR_INVALID_SERVICE_TYPE'],
    [{ serviceType: 'x'.repeat(16) }, 'ERR_INVALID_SERVICE_TYPE'],
    [{ serviceType: 'chat', displayName: '' }, 'ERR_INVALID_ARGUMENT'],
    [{ serviceType: 'chat', security: { mode: 'psk', key: 'abcd' } }, 'ERR_INVALID_ARGUMENT'],
    [{ serviceType: 'chat', architecture: 'client-server' }, 'ERR_INVALID_ARGUMENT'],
    [{ serviceType: 'chat', role: 'server' }, 'ERR_INVALID_ARGUMENT'],
    [{ serviceType: 'chat', discoveryInfo: { id: 'x' } }, 'ERR_INVALID_TXT'],
    [{ serviceType: 'chat', keepaliveInterval: 5000, keepaliveTimeout: 4000 }, 'ERR_INVALID_ARGUMENT'],
  ];
  for (const [o, code] of bad) {
    assert.throws(() => new PeerSession(o as PeerSessionOptions), (e: unknown) => isPeerlinkError(e, code as PeerlinkError['code']), JSON.stringify(o));
  }
});

test('start() fails cleanly: unknown interface → ERR_UNKNOWN_INTERFACE; start twice → ERR_INVALID_STATE', async () => {
  const s = new PeerSession({ serviceType: 'loop', displayName: 'x', interfaces: ['no-such-if0'] });
  await assert.rejects(s.start(), (e: unknown) => isPeerlinkError(e, 'ERR_UNKNOWN_INTERFACE'));
  await assert.rejects(s.start(), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_STATE'));
  await assert.rejects(s.connect(Endpoint.hostPort('127.0.0.1', 1)), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_STATE'));
});

test('hostile peer: garbage, a malformed HELLO, DATA before HELLO, oversized DATA — reported, never a crash', async () => {
  const s = new PeerSession({ serviceType: 'loop', displayName: 'victim', advertise: false, browse: false, maxMessageSize: 1000 });
  await s.start();
  const errors: PeerlinkError[] = [];
  s.on('peerError', (e) => errors.push(e));
  const params = Parameters.tcp({ framer: true });
  const ep = Endpoint.hostPort('127.0.0.1', s.listenPort);
  async function attempt(frames: Buffer[]): Promise<void> {
    const c = await Connection.connect(ep, params);
    for (const f of frames) await c.send(f).catch(() => undefined);
    // The session answers (HELLO, BYE) and closes; read until the end.
    for (;;) {
      const m = await c.receiveMessage().catch(() => null);
      if (m === null) break;
    }
    c.cancel();
  }
  try {
    await attempt([Buffer.from('GET / HTTP/1.1')]);
    const hello = encodeMessageBuffer({
      type: 'hello', version: 1, role: 'peer', peerId: randomBytes(16), nonce: randomBytes(16), capabilities: 0,
      maxMessageSize: 1000, listenPort: 0, lastGeneration: 0, displayName: 'evil', instanceName: '',
    });
    const truncated = hello.subarray(0, 30);
    await attempt([truncated]);
    await attempt([Buffer.of(MessageType.DATA, 1, 2, 3)]);
    // A valid HELLO, then DATA bigger than our limit: the evil peer is dropped.
    await attempt([hello, Buffer.concat([Buffer.of(MessageType.DATA), Buffer.alloc(2000)])]);
    assert.ok(errors.some((e) => e.code === 'ERR_MALFORMED_FRAME'), errors.map((e) => e.code).join());
    assert.ok(errors.some((e) => e.code === 'ERR_PROTOCOL'), errors.map((e) => e.code).join());
    assert.ok(errors.some((e) => e.code === 'ERR_MESSAGE_TOO_LARGE'), errors.map((e) => e.code).join());
    assert.deepEqual(s.connectedPeers, []);
    assert.equal(s.stats.controlConnections, 0);
  } finally {
    await s.close();
  }
});

test('hostile peer: a DATA_BATCH with a length past its end or over the limit is refused, never delivered in part', async () => {
  const s = new PeerSession({ serviceType: 'loop', displayName: 'victim', advertise: false, browse: false, maxMessageSize: 1000 });
  await s.start();
  const errors: PeerlinkError[] = [];
  const delivered: Buffer[] = [];
  s.on('peerError', (e) => errors.push(e));
  s.on('message', (m) => delivered.push(m));
  const ep = Endpoint.hostPort('127.0.0.1', s.listenPort);
  const hello = encodeMessageBuffer({
    type: 'hello', version: 1, role: 'peer', peerId: randomBytes(16), nonce: randomBytes(16), capabilities: 0,
    maxMessageSize: 1000, listenPort: 0, lastGeneration: 0, displayName: 'evil', instanceName: '',
  });
  const ok = Buffer.concat([Buffer.of(0, 0, 0, 2), Buffer.from('hi')]);
  try {
    for (const bad of [Buffer.of(0, 0, 0, 9, 1, 2), Buffer.concat([Buffer.of(0, 0, 0x10, 0), Buffer.alloc(4096)])]) {
      const before = errors.length;
      const c = await Connection.connect(ep, Parameters.tcp({ framer: true }));
      await c.send(hello);
      // Wait for the session's answer (HELLO, WELCOME) so the batch meets an active connection.
      await c.receiveMessage();
      await c.send(Buffer.concat([Buffer.of(MessageType.DATA_BATCH), ok, bad])).catch(() => undefined);
      for (;;) {
        const m = await c.receiveMessage().catch(() => null);
        if (m === null) break;
      }
      c.cancel();
      assert.ok(errors.length > before, 'the bad batch is reported');
    }
    assert.deepEqual(delivered, [], 'no part of a bad batch reaches the app');
    assert.ok(errors.some((e) => e.code === 'ERR_MALFORMED_FRAME'), errors.map((e) => e.code).join());
    assert.ok(errors.some((e) => e.code === 'ERR_MESSAGE_TOO_LARGE'), errors.map((e) => e.code).join());
    assert.deepEqual(s.connectedPeers, []);
  } finally {
    await s.close();
  }
});

test('keepalive pace: a hub with more peers than keepaliveRate × keepaliveInterval stretches its interval and timeout, and shrinks them back as peers leave, dropping nobody', async () => {
  const mk = (name: string, extra: Partial<PeerSessionOptions> = {}): PeerSession =>
    new PeerSession({ serviceType: 'loop', displayName: name, advertise: false, browse: false, security: { mode: 'psk', key: KEY }, keepaliveInterval: 200, keepaliveTimeout: 600, ...extra });
  // 4 peers at 5 exchanges a second: 800 ms and 2400 ms.
  const hub = mk('Hub', { keepaliveRate: 5 });
  const spokes = [mk('S1'), mk('S2'), mk('S3'), mk('S4')];
  const dropped: string[] = [];
  try {
    await hub.start();
    for (const s of spokes) await s.start();
    for (const s of spokes) await s.connect(Endpoint.hostPort('127.0.0.1', hub.listenPort));
    hub.on('peer', (p, st) => st === 'notConnected' && dropped.push(p.displayName));
    const paceOf = (): string => hub.connectedPeers.map((p) => `${hub.peerInfo(p)?.keepalive?.intervalMs}/${hub.peerInfo(p)?.keepalive?.timeoutMs}`).join(' ');
    for (let i = 0; i < 100 && !(hub.connectedPeers.length === 4 && paceOf() === '800/2400 800/2400 800/2400 800/2400'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(paceOf(), '800/2400 800/2400 800/2400 800/2400', 'the hub stretched its pace for 4 peers');
    // A spoke with one peer keeps the configured pace.
    const s1 = spokes[0] as PeerSession;
    assert.deepEqual(s1.peerInfo(hub.peerId)?.keepalive, { intervalMs: 200, timeoutMs: 600 });
    // Three seconds at the stretched pace: longer than the configured timeout, nobody dropped.
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(dropped, []);
    assert.equal(hub.connectedPeers.length, 4);
    // Three leave: one peer left, the configured pace again within a tick of the stretched one.
    for (const s of spokes.slice(1)) await s.close();
    for (let i = 0; i < 100 && paceOf() !== '200/600'; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(paceOf(), '200/600');
    assert.deepEqual(dropped.sort(), ['S2', 'S3', 'S4']);
  } finally {
    await Promise.allSettled([hub.close(), ...spokes.map((s) => s.close())]);
  }
});

test('keepaliveRate must be a positive number', () => {
  assert.throws(() => new PeerSession({ serviceType: 'loop', security: { mode: 'psk', key: KEY }, keepaliveRate: 0 }), /keepaliveRate/);
});
