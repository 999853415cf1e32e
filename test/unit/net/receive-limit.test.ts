/**
 * A receive limit that changes at run time (Connection.setMaxMessageSize, the Listener's
 * initialMaxMessageSize): refused before the frame is buffered, raised afterwards. And the
 * framer's pongs, coalesced: one answer per read, carrying the latest ping's payload.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import WebSocket from 'ws';
import { lengthPrefixFramer, LengthPrefixDecoder, type PartSink } from '../../../src/net/framer.js';
import { setWsReceiveLimit } from '../../../src/net/ws-channel.js';
import { Connection, Endpoint, Listener, Parameters } from '../../../src/net/index.js';
import { isPeerlinkError } from '../../../src/errors.js';

function header(len: number, control = false): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE((control ? 0x80000000 | len : len) >>> 0);
  return h;
}

test('decoder: a lowered limit refuses a larger header before its body; a raised one accepts it', () => {
  const d = lengthPrefixFramer.createDecoder(1 << 20) as LengthPrefixDecoder;
  d.setMaxMessageSize(16);
  d.push(header(16));
  d.push(Buffer.alloc(16, 1));
  assert.equal(d.next()?.data.length, 16);
  d.push(header(17));
  assert.throws(() => d.next(), (e: unknown) => isPeerlinkError(e) && e.code === 'ERR_MESSAGE_TOO_LARGE');

  const r = lengthPrefixFramer.createDecoder(16) as LengthPrefixDecoder;
  r.setMaxMessageSize(100_000);
  r.push(header(50_000));
  r.push(Buffer.alloc(50_000, 2));
  assert.equal(r.next()?.data.length, 50_000);
});

test('decoder: partial delivery obeys the changed limit too', () => {
  const d = new LengthPrefixDecoder(1 << 20);
  d.setMaxMessageSize(8);
  const parts: number[] = [];
  const sink: PartSink = { part: (data) => parts.push(data.length), control: () => undefined };
  d.push(Buffer.concat([header(8), Buffer.alloc(8)]));
  d.drainParts(sink);
  assert.deepEqual(parts, [8]);
  d.push(header(9));
  assert.throws(() => d.drainParts(sink), (e: unknown) => isPeerlinkError(e) && e.code === 'ERR_MESSAGE_TOO_LARGE');
});

test('decoder: the limit can never exceed what the length word can carry', () => {
  const d = new LengthPrefixDecoder(16);
  d.setMaxMessageSize(Number.MAX_SAFE_INTEGER);
  d.push(header(0x7fffffff));
  assert.equal(d.next(), undefined, 'a 2^31-1 header is within the limit: waits for its body');
});

function rawClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

for (const [name, params] of [
  ['tcp+framer', Parameters.tcp({ framer: true, maxMessageSize: 1 << 20 })],
  ['ws', Parameters.ws({ maxMessageSize: 1 << 20 })],
] as const) {
  test(`${name}: a listener's initialMaxMessageSize holds until setMaxMessageSize raises it`, async () => {
    const l = new Listener(params, { host: '127.0.0.1', initialMaxMessageSize: 64 });
    const accepted: Connection[] = [];
    l.on('connection', (c) => accepted.push(c));
    await l.start();
    try {
      const waitAccepted = async (n: number): Promise<Connection> => {
        for (let i = 0; i < 200 && accepted.length < n; i++) await new Promise((r) => setTimeout(r, 10));
        const c = accepted[n - 1];
        assert.ok(c, 'accepted');
        return c;
      };
      // Over the initial limit: the server side fails with ERR_MESSAGE_TOO_LARGE.
      const a = await Connection.connect(Endpoint.hostPort('127.0.0.1', l.port), params);
      void a.send(Buffer.alloc(65)).catch(() => undefined);
      const sa = await waitAccepted(1);
      await assert.rejects(sa.receiveMessage(), (e: unknown) => isPeerlinkError(e) && e.code === 'ERR_MESSAGE_TOO_LARGE');
      a.forceCancel();
      // Within it, then raised: a large message passes.
      const b = await Connection.connect(Endpoint.hostPort('127.0.0.1', l.port), params);
      await b.send(Buffer.alloc(64, 7));
      const sb = await waitAccepted(2);
      assert.equal((await sb.receiveMessage())?.length, 64);
      sb.setMaxMessageSize(1 << 20);
      await b.send(Buffer.alloc(500_000, 8));
      assert.equal((await sb.receiveMessage())?.length, 500_000);
      // Lowered again: refused again.
      sb.setMaxMessageSize(1000);
      void b.send(Buffer.alloc(1001)).catch(() => undefined);
      await assert.rejects(sb.receiveMessage(), (e: unknown) => isPeerlinkError(e) && e.code === 'ERR_MESSAGE_TOO_LARGE');
      b.forceCancel();
      if (name === 'ws') {
        const ws = (sb as unknown as { channel: { ws: WebSocket } }).channel.ws;
        assert.equal(setWsReceiveLimit(ws, 1000), true, 'ws still has receiver._maxPayload: the limit is enforced before buffering');
      }
    } finally {
      await l.cancel();
    }
  });
}

test('framer: pings answered coalesced — one pong per read, carrying the latest ping', async () => {
  const l = new Listener(Parameters.tcp({ framer: true }), { host: '127.0.0.1' });
  const accepted: Connection[] = [];
  l.on('connection', (c) => accepted.push(c));
  await l.start();
  const s = await rawClient(l.port);
  try {
    const N = 10_000;
    const pings: Buffer[] = [];
    for (let i = 0; i < N; i++) {
      const p = Buffer.alloc(8);
      p.writeUInt32BE(i, 4);
      pings.push(header(9, true), Buffer.of(1), p);
    }
    const pongs: number[] = [];
    let buf = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 13) {
        assert.equal(buf.readUInt32BE(0), (0x80000000 | 9) >>> 0, 'a pong frame');
        assert.equal(buf[4], 2);
        pongs.push(buf.readUInt32BE(9));
        buf = buf.subarray(13);
      }
    });
    s.write(Buffer.concat(pings));
    for (let i = 0; i < 300 && pongs.at(-1) !== N - 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(pongs.at(-1), N - 1, 'the latest ping is answered');
    assert.ok(pongs.length < N / 10, `${pongs.length} pongs for ${N} pings`);
    for (let i = 1; i < pongs.length; i++) assert.ok((pongs[i] as number) > (pongs[i - 1] as number), 'pongs answer ever later pings');
  } finally {
    s.destroy();
    for (const c of accepted) c.forceCancel();
    await l.cancel();
  }
});
