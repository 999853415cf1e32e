/**
 * Best-effort messages between two sessions on 127.0.0.1 (no discovery, connect() by address):
 * datagrams arrive intact or not at all, both ways, secured (TLS-PSK: sealed) and not; the
 * size limit and its code; a peer without datagrams gives ERR_DATAGRAM_UNAVAILABLE; both
 * sides opening at once; the flow ends with the peer and a new one opens on reconnect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { PeerSession } from '../../../src/session/index.js';
import type { PeerID } from '../../../src/session/peer-id.js';
import { Endpoint } from '../../../src/net/index.js';
import { isPeerlinkError } from '../../../src/errors.js';
import type { PeerSessionOptions } from '../../../src/session/options.js';

const KEY = randomBytes(32).toString('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** UDP sockets this process holds (its socket fds that /proc/net/udp{,6} lists). */
function udpSockets(): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  let n = 0;
  for (const f of ['/proc/self/net/udp', '/proc/self/net/udp6']) {
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) if (inodes.has(line.trim().split(/\s+/)[9] ?? '')) n++;
  }
  return n;
}

async function pair(extraA: Partial<PeerSessionOptions> = {}, extraB: Partial<PeerSessionOptions> = extraA): Promise<{ a: PeerSession; b: PeerSession; pa: PeerID; pb: PeerID }> {
  const mk = (name: string, extra: Partial<PeerSessionOptions>): PeerSession => new PeerSession({ serviceType: 'dgram', displayName: name, advertise: false, browse: false, interfaces: ['lo'], ...extra });
  const a = mk('A', extraA);
  const b = mk('B', extraB);
  await a.start();
  await b.start();
  const pb = await a.connect(Endpoint.hostPort('127.0.0.1', b.listenPort));
  for (let i = 0; i < 200 && b.connectedPeers.length === 0; i++) await sleep(20);
  const pa = b.connectedPeers[0] as PeerID;
  assert.ok(pa, 'B sees A connected');
  return { a, b, pa, pb };
}

/** A datagram that proves its own integrity: u32 index + 60 bytes of SHA-256 chain over it. */
function numbered(i: number, size = 64): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(i, 0);
  let h = createHash('sha256').update(b.subarray(0, 4)).digest();
  for (let off = 4; off < size; off += 32) {
    h.copy(b, off, 0, Math.min(32, size - off));
    h = createHash('sha256').update(h).digest();
  }
  return b;
}

function intact(d: Buffer, size = 64): boolean {
  return d.length === size && numbered(d.readUInt32BE(0), size).equals(d);
}

for (const security of ['psk', 'none'] as const) {
  const sec: Partial<PeerSessionOptions> = security === 'psk' ? { security: { mode: 'psk', key: KEY } } : {};

  test(`datagrams (${security}): arrive intact or not at all, both ways, mode 'unreliable'; stats count them`, async () => {
    const { a, b, pa, pb } = await pair(sec);
    try {
      const atB = new Map<number, number>();
      let corrupt = 0;
      b.on('message', (d, p, mode) => {
        if (mode !== 'unreliable') return;
        assert.ok(p.equals(a.peerId));
        if (!intact(d)) corrupt++;
        else atB.set(d.readUInt32BE(0), (atB.get(d.readUInt32BE(0)) ?? 0) + 1);
      });
      const atA: string[] = [];
      a.on('message', (d, _p, mode) => {
        if (mode === 'unreliable') atA.push(String(d));
      });
      const reliable: string[] = [];
      b.on('message', (d, _p, mode) => {
        if (mode === 'reliable') reliable.push(String(d));
      });
      // The first send opens the flow (and waits for it); then 2000 more, pausing now and then.
      assert.equal(await a.send(numbered(0), { to: pb, mode: 'unreliable' }), 1);
      const N = 2000;
      for (let i = 1; i < N; i++) {
        await a.send(numbered(i), { to: pb, mode: 'unreliable' });
        if (i % 100 === 0) await sleep(5);
      }
      await a.send('reliable still works', { to: pb });
      // Back the other way on the same flow.
      for (let i = 0; i < 20; i++) await b.send(`back ${i}`, { to: pa, mode: 'unreliable' });
      for (let i = 0; i < 200 && (atB.size < N || atA.length < 20); i++) await sleep(20);
      assert.equal(corrupt, 0, 'no corrupted datagram delivered');
      assert.ok([...atB.values()].every((n) => n === 1), 'no datagram delivered twice');
      // Loopback rarely loses anything at this pace; the contract is "arrive or are dropped".
      assert.ok(atB.size > N / 2, `most datagrams arrived (${atB.size}/${N})`);
      assert.ok(atA.length > 10, `datagrams arrived the other way (${atA.length}/20)`);
      assert.deepEqual(reliable, ['reliable still works']);
      const sa = a.datagramStats(pb);
      const sb = b.datagramStats(pa);
      assert.equal(sa?.state, 'open');
      assert.equal(sa?.secured, security === 'psk');
      assert.equal(sa?.sent, N);
      assert.equal(sb?.received, atB.size);
      assert.equal(sb?.replayed, 0);
      assert.equal(sb?.rejected, 0);
      assert.equal(a.peerInfo(pb)?.datagrams?.state, 'open');
      assert.equal(b.stats.datagrams.received, atB.size);
      assert.equal(b.stats.datagrams.flows, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test(`datagrams (${security}): larger than maximumDatagramSize → ERR_DATAGRAM_TOO_LARGE; the largest fits`, async () => {
    const { a, b, pb } = await pair(sec);
    try {
      const max = a.maximumDatagramSize(pb);
      // loopback MTU 65536: the IPv4 UDP limit 65507 − 17 header bytes (− 16 for the seal)
      assert.equal(max, 65507 - 17 - (security === 'psk' ? 16 : 0));
      let got = 0;
      b.on('message', (d, _p, mode) => {
        if (mode === 'unreliable' && d.length === max) got++;
      });
      await assert.rejects(a.send(Buffer.alloc(max + 1), { to: pb, mode: 'unreliable' }), (e) => isPeerlinkError(e, 'ERR_DATAGRAM_TOO_LARGE'));
      for (let i = 0; i < 5; i++) await a.send(Buffer.alloc(max, i), { to: pb, mode: 'unreliable' });
      await assert.rejects(a.send(Buffer.alloc(max + 1), { to: pb, mode: 'unreliable' }), (e) => isPeerlinkError(e, 'ERR_DATAGRAM_TOO_LARGE'));
      for (let i = 0; i < 100 && got === 0; i++) await sleep(20);
      assert.ok(got > 0, 'a datagram of exactly maximumDatagramSize arrived');
    } finally {
      await a.close();
      await b.close();
    }
  });
}

test('datagrams: a peer without datagram support → ERR_DATAGRAM_UNAVAILABLE at once, never sent reliably', async () => {
  const { a, b, pa, pb } = await pair({ security: { mode: 'psk', key: KEY } }, { security: { mode: 'psk', key: KEY }, datagrams: false });
  try {
    const got: string[] = [];
    b.on('message', (d) => got.push(String(d)));
    await assert.rejects(a.send('x', { to: pb, mode: 'unreliable' }), (e) => isPeerlinkError(e, 'ERR_DATAGRAM_UNAVAILABLE'));
    await assert.rejects(b.send('y', { to: pa, mode: 'unreliable' }), (e) => isPeerlinkError(e, 'ERR_DATAGRAM_UNAVAILABLE'));
    await a.send('reliable', { to: pb });
    for (let i = 0; i < 50 && got.length === 0; i++) await sleep(20);
    assert.deepEqual(got, ['reliable']);
    assert.equal(a.datagramStats(pb), undefined);
  } finally {
    await a.close();
    await b.close();
  }
});

test('datagrams: both sides open at once → one flow, both directions work', async () => {
  const { a, b, pa, pb } = await pair({ security: { mode: 'psk', key: KEY } });
  try {
    const atA: string[] = [];
    const atB: string[] = [];
    a.on('message', (d, _p, m) => m === 'unreliable' && atA.push(String(d)));
    b.on('message', (d, _p, m) => m === 'unreliable' && atB.push(String(d)));
    await Promise.all([a.send('from a', { to: pb, mode: 'unreliable' }), b.send('from b', { to: pa, mode: 'unreliable' })]);
    for (let i = 0; i < 10; i++) await Promise.all([a.send(`a${i}`, { to: pb, mode: 'unreliable' }), b.send(`b${i}`, { to: pa, mode: 'unreliable' })]);
    for (let i = 0; i < 100 && (atA.length < 5 || atB.length < 5); i++) await sleep(20);
    assert.ok(atA.length >= 5 && atB.length >= 5, `a got ${atA.length}, b got ${atB.length}`);
    assert.equal(a.stats.datagrams.flows, 1);
    assert.equal(b.stats.datagrams.flows, 1);
  } finally {
    await a.close();
    await b.close();
  }
});

test('datagrams: the flow (and its UDP sockets) closes with its peer; sends then reject ERR_PEER_NOT_CONNECTED', async () => {
  const { a, b, pb } = await pair({ security: { mode: 'psk', key: KEY } });
  const states: string[] = [];
  const onState = (m: unknown): void => {
    const e = m as { session: string; state: string };
    if (e.session === a.peerId.id) states.push(e.state);
  };
  subscribe('peerlink:session:datagram', onState);
  try {
    const before = udpSockets();
    await a.send('hi', { to: pb, mode: 'unreliable' });
    assert.equal(a.datagramStats(pb)?.state, 'open');
    assert.equal(udpSockets(), before + 2, 'one UDP socket per side of the flow');
    await b.close();
    for (let i = 0; i < 100 && a.connectedPeers.length > 0; i++) await sleep(20);
    assert.equal(a.datagramStats(pb), undefined);
    for (let i = 0; i < 50 && udpSockets() > before; i++) await sleep(20);
    assert.equal(udpSockets(), before, 'both sockets closed');
    assert.deepEqual(states, ['probing', 'open', 'closed'], 'peerlink:session:datagram');
    await assert.rejects(a.send('x', { to: pb, mode: 'unreliable' }), (e) => isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED'));
  } finally {
    unsubscribe('peerlink:session:datagram', onState);
    await a.close();
    await b.close();
  }
});

test('datagrams over the WebSocket transport (TLS-PSK): sealed with the keys of the ws connection\'s TLS session', async () => {
  const { a, b, pb } = await pair({ security: { mode: 'psk', key: KEY }, transport: 'ws' });
  try {
    const got: string[] = [];
    b.on('message', (d, _p, m) => m === 'unreliable' && got.push(String(d)));
    for (let i = 0; i < 20; i++) await a.send(`ws ${i}`, { to: pb, mode: 'unreliable' });
    for (let i = 0; i < 100 && got.length < 10; i++) await sleep(20);
    assert.ok(got.length >= 10, `got ${got.length}`);
    assert.equal(a.datagramStats(pb)?.secured, true);
  } finally {
    await a.close();
    await b.close();
  }
});

test('datagrams: before start() → ERR_INVALID_STATE, after close() → ERR_CLOSED, not-connected peer → ERR_PEER_NOT_CONNECTED', async () => {
  const s = new PeerSession({ serviceType: 'dgram', displayName: 'S', advertise: false, browse: false, interfaces: ['lo'] });
  await assert.rejects(s.send('x', { mode: 'unreliable' }), (e) => isPeerlinkError(e, 'ERR_INVALID_STATE'));
  await s.start();
  assert.equal(await s.send('x', { mode: 'unreliable' }), 0, 'to everyone while nobody is connected');
  const other = new PeerSession({ serviceType: 'dgram', displayName: 'O', advertise: false, browse: false, interfaces: ['lo'] });
  await assert.rejects(s.send('x', { to: other.peerId, mode: 'unreliable' }), (e) => isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED'));
  assert.equal(s.maximumDatagramSize(other.peerId), 0);
  await s.close();
  await assert.rejects(s.send('x', { mode: 'unreliable' }), (e) => isPeerlinkError(e, 'ERR_CLOSED'));
});

test('datagrams over IPv6 (::1): the flow binds and connects IPv6 sockets; the size accounts for the 40-byte header', async () => {
  const mk = (name: string): PeerSession => new PeerSession({ serviceType: 'dgram', displayName: name, advertise: false, browse: false, interfaces: ['lo'], security: { mode: 'psk', key: KEY } });
  const a = mk('A6');
  const b = mk('B6');
  await a.start();
  await b.start();
  try {
    const pb = await a.connect(Endpoint.hostPort('::1', b.listenPort));
    assert.equal(a.maximumDatagramSize(pb), 65536 - 48 - 17 - 16);
    const got: string[] = [];
    b.on('message', (d, _p, m) => m === 'unreliable' && got.push(String(d)));
    for (let i = 0; i < 10; i++) await a.send(`v6 ${i}`, { to: pb, mode: 'unreliable' });
    for (let i = 0; i < 100 && got.length < 5; i++) await sleep(20);
    assert.ok(got.length >= 5, `got ${got.length}`);
  } finally {
    await a.close();
    await b.close();
  }
});
