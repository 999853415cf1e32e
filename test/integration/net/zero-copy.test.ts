/**
 * The copy-avoiding paths of Connection over real loopback sockets. Partial message delivery
 * (receivePartialMessages): a framed TLS connection hands large messages up in pieces,
 * WebSocket keeps them whole, whole-message reads are refused once pieces are on. Send with
 * headroom: the frame header goes into the sender's buffer, or the headroom is dropped where
 * the transport has no header to put there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import { Listener, Parameters, type Connection, type MessagePart } from '../../../src/net/index.js';
import { lengthPrefixFramer, type Framer } from '../../../src/net/framer.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { dial, PSK } from './helpers.js';

/** Reads pieces until `count` messages are complete; returns the messages and the piece counts. */
async function readParts(c: Connection, count: number): Promise<Array<{ data: Buffer; pieces: number }>> {
  const out: Array<{ data: Buffer; pieces: number }> = [];
  let pieces: Buffer[] = [];
  while (out.length < count) {
    const p: MessagePart | null = c.tryReceiveMessagePart() ?? (await c.receiveMessagePart());
    assert.ok(p, 'the connection ended early');
    pieces.push(p.data);
    if (p.complete) {
      out.push({ data: Buffer.concat(pieces), pieces: pieces.length });
      pieces = [];
    }
  }
  return out;
}

async function acceptOne(params: Parameters): Promise<{ l: Listener; accepted: Promise<Connection> }> {
  const l = new Listener(params, { host: '127.0.0.1' });
  const accepted = new Promise<Connection>((resolve) => l.once('connection', resolve));
  await l.start();
  return { l, accepted };
}

test('framed TLS: a large message arrives in pieces, small and empty ones whole, in order', async () => {
  const p = Parameters.tls({ psk: { key: PSK } }, { framer: true, maxMessageSize: 8 << 20 });
  const { l, accepted } = await acceptOne(p);
  const c = await dial(l.port, p);
  const server = await accepted;
  // Sent before the switch and read whole; the switch keeps what follows intact.
  await c.send('before');
  assert.equal(String(await server.receiveMessage()), 'before');
  server.receivePartialMessages();
  const big = randomBytes(3 << 20);
  const msgs = [Buffer.from('small'), big, Buffer.alloc(0), randomBytes(70_000), Buffer.from('last')];
  for (const m of msgs) await c.send(m);
  const got = await readParts(server, msgs.length);
  got.forEach((g, i) => assert.ok(g.data.equals(msgs[i] as Buffer), `message ${i}`));
  assert.ok((got[1] as { pieces: number }).pieces > 1, 'the 3 MiB message came in pieces');
  assert.equal((got[2] as { pieces: number }).pieces, 1, 'an empty message is one piece');
  assert.equal(server.report().counters.messagesIn, msgs.length + 1);
  await assert.rejects(server.receiveMessage(), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_STATE'));
  assert.throws(() => server.tryReceiveMessage(), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_STATE'));
  c.cancel();
  assert.equal(await server.receiveMessagePart(), null);
  server.cancel();
  await l.cancel();
});

test('partial delivery keeps the receive queue bounded: a large message is never held whole', async () => {
  const p = Parameters.tcp({ framer: true, maxMessageSize: 256 << 20 });
  const { l, accepted } = await acceptOne(p);
  const c = await dial(l.port, p);
  const server = await accepted;
  server.receivePartialMessages();
  const piece = randomBytes(1 << 20);
  const size = 64 << 20;
  // One 64 MiB message, sent as 64 chunks; the reader is slow, so the queue must pause the socket.
  const sent = c.send(Array.from({ length: size / piece.length }, () => piece));
  let got = 0;
  let maxQueued = 0;
  let pieces = 0;
  while (got < size) {
    const part = await server.receiveMessagePart();
    assert.ok(part);
    pieces++;
    assert.ok(part.data.length <= 1 << 20, `a piece of ${part.data.length} bytes: pieces are reads, not the message`);
    got += part.data.length;
    assert.equal(part.complete, got === size);
    maxQueued = Math.max(maxQueued, server.bufferedReceiveBytes);
    if (got % (8 << 20) < part.data.length) await new Promise((r) => setTimeout(r, 20));
  }
  await sent;
  assert.ok(maxQueued < 16 << 20, `queued at most ${maxQueued} bytes of a ${size}-byte message`);
  assert.ok(pieces >= 64, `${pieces} pieces`);
  c.cancel();
  server.cancel();
  await l.cancel();
});

/** A custom framer: the default wire format behind a decoder of its own (no partial delivery). */
const customFramer: Framer = {
  name: 'custom',
  supportsControlFrames: true,
  encode: (f) => lengthPrefixFramer.encode(f),
  createDecoder(max) {
    const d = lengthPrefixFramer.createDecoder(max);
    return { push: (c) => d.push(c), next: () => d.next(), get buffered() { return d.buffered; } };
  },
};

test('WebSocket and custom framers keep whole messages, each one complete piece', async () => {
  for (const p of [Parameters.ws(), Parameters.tcp({ framer: customFramer })]) {
    const { l, accepted } = await acceptOne(p);
    const c = await dial(l.port, p);
    const server = await accepted;
    server.receivePartialMessages();
    const big = randomBytes(1 << 20);
    await c.send(big);
    await c.send('x');
    const got = await readParts(server, 2);
    assert.ok((got[0] as { data: Buffer }).data.equals(big));
    assert.equal((got[0] as { pieces: number }).pieces, 1);
    assert.equal(String((got[1] as { data: Buffer }).data), 'x');
    c.cancel();
    server.cancel();
    await l.cancel();
  }
});

test('switching to pieces: a half-received message comes up at once; a waiting receiveMessage() refuses the switch', async () => {
  const p = Parameters.tcp({ framer: true, maxMessageSize: 4 << 20 });
  const { l, accepted } = await acceptOne(p);
  // A raw TCP client writes a frame header for 1 MiB and only half the payload.
  const raw = tcpConnect(l.port, '127.0.0.1');
  const server = await accepted;
  const waiting = server.receiveMessage();
  assert.throws(() => server.receivePartialMessages(), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_STATE'));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1 << 20, 0);
  const payload = randomBytes(1 << 20);
  raw.write(Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('ok'), header, payload.subarray(0, 500_000)]));
  assert.equal(String(await waiting), 'ok');
  // The half message is held by the decoder; give it time to arrive.
  for (let i = 0; i < 100 && server.report().counters.bytesIn < 2; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  server.receivePartialMessages();
  const first = server.tryReceiveMessagePart();
  assert.ok(first && first.data.length > 0 && !first.complete, 'the bytes already received are a piece right away');
  raw.write(payload.subarray(500_000));
  const rest: Buffer[] = [first.data];
  for (let part = await server.receiveMessagePart(); part; part = part.complete ? null : await server.receiveMessagePart()) rest.push(part.data);
  assert.ok(Buffer.concat(rest).equals(payload));
  raw.destroy();
  server.cancel();
  await l.cancel();
});

test('receivePartialMessages is refused on byte streams', async () => {
  const p = Parameters.tcp();
  const { l, accepted } = await acceptOne(p);
  const c = await dial(l.port, p);
  const server = await accepted;
  assert.throws(() => c.receivePartialMessages(), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_STATE'));
  c.cancel();
  server.cancel();
  await l.cancel();
});

test('send with headroom: framed tcp and tls write the header in place; ws drops the headroom', async () => {
  const variants: Array<[string, Parameters, number]> = [
    ['tcp + framer', Parameters.tcp({ framer: true }), 4],
    ['tls-psk + framer', Parameters.tls({ psk: { key: PSK } }, { framer: true }), 4],
    ['ws', Parameters.ws(), 0],
  ];
  for (const [what, p, expectHeadroom] of variants) {
    const { l, accepted } = await acceptOne(p);
    const c = await dial(l.port, p);
    const server = await accepted;
    assert.equal(c.messageHeadroom, expectHeadroom, what);
    const small = Buffer.concat([Buffer.alloc(4, 0xee), Buffer.from('small')]);
    const big = Buffer.concat([Buffer.alloc(8, 0xee), randomBytes(100_000)]);
    await c.send(small, { headroom: 4 });
    await c.send(big, { headroom: 8 }); // more headroom than needed: the header goes just before the message
    if (expectHeadroom > 0) {
      assert.equal(small.readUInt32BE(0), 5, `${what}: the length prefix went into the headroom`);
      assert.equal(big.readUInt32BE(4), 100_000, `${what}: just before the message`);
    } else assert.ok(small.subarray(0, 4).equals(Buffer.alloc(4, 0xee)), `${what}: headroom untouched`);
    await c.send(Buffer.from('plain'));
    await c.send(Buffer.concat([Buffer.alloc(2), Buffer.from('short headroom')]), { headroom: 2 }); // too little: plain send of the rest
    assert.equal(String(await server.receiveMessage()), 'small', what);
    assert.ok((await server.receiveMessage())?.equals(big.subarray(8)), what);
    assert.equal(String(await server.receiveMessage()), 'plain', what);
    assert.equal(String(await server.receiveMessage()), 'short headroom', what);
    assert.equal(c.report().counters.bytesOut, 5 + 100_000 + 5 + 14, `${what}: counters exclude the headroom`);
    await assert.rejects(c.send([Buffer.alloc(8)], { headroom: 4 }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
    await assert.rejects(c.send(Buffer.alloc(2), { headroom: 4 }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
    for (const bad of [4.5, -1, Number.NaN]) {
      await assert.rejects(c.send(Buffer.alloc(16), { headroom: bad }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'), `headroom ${bad}`);
    }
    c.cancel();
    server.cancel();
    await l.cancel();
  }
});

test('queued large sends over TLS and TCP arrive intact and in order (one write per queued chunk on TLS)', async () => {
  for (const p of [Parameters.tls({ psk: { key: PSK } }, { framer: true }), Parameters.tcp({ framer: true })]) {
    const { l, accepted } = await acceptOne(p);
    const c = await dial(l.port, p);
    const server = await accepted;
    const sent: Buffer[] = [];
    const sends: Array<Promise<void>> = [];
    for (let i = 0; i < 600; i++) {
      const kind = i % 5;
      const m = randomBytes(kind === 0 ? 10 : kind === 1 ? 16_384 : kind === 2 ? 300_000 : kind === 3 ? 16_383 : 70_000);
      sent.push(m);
      // No await: everything queues behind the socket.
      if (kind === 4) sends.push(c.send(Buffer.concat([Buffer.alloc(4), m]), { headroom: 4 }));
      else if (kind === 2) sends.push(c.send([m.subarray(0, 100_000), m.subarray(100_000)]));
      else sends.push(c.send(m));
    }
    for (let i = 0; i < sent.length; i++) assert.ok((await server.receiveMessage())?.equals(sent[i] as Buffer), `message ${i}`);
    await Promise.all(sends);
    c.cancel();
    server.cancel();
    await l.cancel();
  }
});
