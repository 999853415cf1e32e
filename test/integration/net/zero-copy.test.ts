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
import { Listener, Parameters, type Connection, type MessagePart } from '../../../src/net/index.js';
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
  while (got < size) {
    const part = await server.receiveMessagePart();
    assert.ok(part);
    got += part.data.length;
    assert.equal(part.complete, got === size);
    maxQueued = Math.max(maxQueued, server.bufferedReceiveBytes);
    if (got % (8 << 20) < part.data.length) await new Promise((r) => setTimeout(r, 20));
  }
  await sent;
  assert.ok(maxQueued < 16 << 20, `queued at most ${maxQueued} bytes of a ${size}-byte message`);
  c.cancel();
  server.cancel();
  await l.cancel();
});

test('WebSocket and custom framers keep whole messages, each one complete piece', async () => {
  const p = Parameters.ws();
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
    await c.send(Buffer.from('plain'));
    await c.send(Buffer.concat([Buffer.alloc(2), Buffer.from('short headroom')]), { headroom: 2 }); // too little: plain send of the rest
    assert.equal(String(await server.receiveMessage()), 'small', what);
    assert.ok((await server.receiveMessage())?.equals(big.subarray(8)), what);
    assert.equal(String(await server.receiveMessage()), 'plain', what);
    assert.equal(String(await server.receiveMessage()), 'short headroom', what);
    assert.equal(c.report().counters.bytesOut, 5 + 100_000 + 5 + 14, `${what}: counters exclude the headroom`);
    await assert.rejects(c.send([Buffer.alloc(8)], { headroom: 4 }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
    await assert.rejects(c.send(Buffer.alloc(2), { headroom: 4 }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
    c.cancel();
    server.cancel();
    await l.cancel();
  }
});
