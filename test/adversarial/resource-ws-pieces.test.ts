/**
 * A resource stream over the WebSocket transport (`transport: 'ws'`), where each stream message
 * arrives whole, as one piece (docs/session.md "Streams"): a message can be as large as the
 * connection's limit (maxMessageSize, 4 MiB by default), so a `pieces` stream that bounded only
 * its piece count (16) would let a peer pin 16 × 4 MiB per stream. MessageStream bounds its
 * buffer by bytes too (PIECES_HIGH_WATER_BYTES, 256 KiB plus the last piece).
 *
 * The attacker is written from a raw TCP socket: the WebSocket upgrade and RFC 6455 frames
 * (masked, as a client's must be) by hand, session messages inside them by hand. It offers a
 * file and, without waiting for an answer, sends 4 MiB messages; the victim's app never decides
 * on the offer (a person who does not look at the prompt), so nothing reads the stream on.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { cleanup, hello, idBytes, MiB, ping, rawConnect, smallerId, startVictim, streamBind, streamOffer, type Victim } from './harness.js';
import { until } from '../harness/proc.js';
import { resourceFrame } from './resource-attacker.js';

after(cleanup);

const mib = (n: number): string => `${(n / MiB).toFixed(1)} MiB`;

/** A client's binary WebSocket frame (RFC 6455 §5.2): FIN, opcode 2, masked payload. */
function wsFrame(payload: Buffer, opcode = 0x2): Buffer {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, 0x80 | n]) : n < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 0xff]) : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), u64(n)]);
  const mask = randomBytes(4);
  const body = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** A raw WebSocket client: the upgrade by hand, then the server's (unmasked) messages collected; session PINGs answered. */
class RawWs {
  readonly messages: Buffer[] = [];
  #buf = Buffer.alloc(0);
  #upgraded = false;
  constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => this.#push(c));
  }

  static async open(port: number, path: string): Promise<RawWs> {
    const ws = new RawWs(await rawConnect(port));
    ws.socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await until(() => ws.#upgraded || ws.socket.destroyed, 10_000, 'the 101 answer', 10);
    assert.ok(ws.#upgraded, 'upgraded');
    return ws;
  }

  send(message: Buffer): boolean {
    return this.socket.write(wsFrame(message));
  }

  ofType(type: number): Buffer[] {
    return this.messages.filter((m) => m[0] === type);
  }

  #push(c: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, c]);
    if (!this.#upgraded) {
      const end = this.#buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      assert.match(this.#buf.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101/);
      this.#upgraded = true;
      this.#buf = this.#buf.subarray(end + 4);
    }
    for (;;) {
      if (this.#buf.length < 2) return;
      const opcode = this.#buf[0]! & 0x0f;
      let len = this.#buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.#buf.length < 4) return;
        len = this.#buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.#buf.length < 10) return;
        len = Number(this.#buf.readBigUInt64BE(2));
        at = 10;
      }
      if (this.#buf.length < at + len) return;
      const payload = Buffer.from(this.#buf.subarray(at, at + len));
      this.#buf = this.#buf.subarray(at + len);
      if (opcode === 0x2) {
        this.messages.push(payload);
        if (payload[0] === 0x04 && !this.socket.destroyed) this.send(ping(payload.readUInt32BE(1), 0x05));
      } else if (opcode === 0x9 && !this.socket.destroyed) this.socket.write(wsFrame(payload, 0xa));
    }
  }
}

/** HELLO / HELLO / WELCOME over a raw WebSocket (our id is the smaller: the victim decides and welcomes). */
async function rawWsPeer(v: Victim, path: string): Promise<{ ws: RawWs; peerId: Buffer }> {
  const ws = await RawWs.open(v.port, path);
  const peerId = smallerId(v.id);
  ws.send(hello({ peerId }));
  await until(() => ws.ofType(0x02).length > 0 || ws.socket.destroyed, 10_000, 'WELCOME', 10);
  assert.ok(!ws.socket.destroyed, 'the victim welcomed us');
  assert.ok(Buffer.compare(peerId, idBytes(v.id)) < 0);
  return { ws, peerId };
}

test('WebSocket resource stream: 4 MiB messages to a victim that reads nothing on (an undecided offer) pin about one message, not 16 × 4 MiB', { timeout: 120_000 }, async () => {
  const v = await startVictim({ transport: 'ws', holdResources: true });
  const path = '/peerlink/adversary';
  const peer = await rawWsPeer(v, path);
  await v.reset();
  const before = await v.cost();
  const token = randomBytes(16);
  peer.ws.send(streamOffer({ token, kind: 1, name: 'r' }));
  const s = await RawWs.open(v.port, path);
  s.send(streamBind(peer.peerId, token));
  await until(() => s.ofType(0x21).length > 0 || s.socket.destroyed, 10_000, 'STREAM_BOUND', 10);
  assert.ok(!s.socket.destroyed, 'the victim bound the stream');
  const SIZE = 256 * MiB;
  s.send(resourceFrame({ type: 'resource', v: 1, name: 'flood.bin', size: SIZE, sha256: null }));
  // 4 MiB messages while the socket takes them; the victim stops reading once its buffers are full.
  const message = Buffer.alloc(4 * MiB, 0x41);
  const framed = wsFrame(message);
  let sent = 0;
  let stalledSince = Date.now();
  while (sent < SIZE / message.length && Date.now() - stalledSince < 3000) {
    if (s.socket.writableLength < 8 * MiB) {
      s.socket.write(framed);
      sent++;
      stalledSince = Date.now();
    } else await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(!s.socket.destroyed, 'the victim keeps the stream (the offer is pending)');
  await new Promise((r) => setTimeout(r, 1000));
  const held = await v.cost();
  const pinned = held.external - before.external;
  console.log(
    `# ws: ${sent} messages of 4 MiB written (${mib(sent * message.length)}), ${mib(s.socket.writableLength)} still queued at the attacker; ` +
      `victim: retained RSS ${mib(before.rss)} → ${mib(held.rss)} (+${mib(held.rss - before.rss)}), peak ${mib(held.peakRss)} (+${mib(held.peakRss - before.rss)}), ` +
      `external (ArrayBuffers included) +${mib(pinned)}, heap ${mib(before.heapUsed)} → ${mib(held.heapUsed)}; fds ${before.fds} → ${held.fds}`,
  );
  assert.ok(sent < SIZE / message.length, 'the victim stopped reading (backpressure), the attacker could not send everything');
  // Bounded: the stream's last piece (4 MiB), the connection's receive queue (4 MiB high-water
  // mark), the message ws is assembling (≤ 4 MiB): ≈ 12 MiB measured. Sixteen pieces would be 64 MiB.
  assert.ok(pinned < 36 * MiB, `pinned buffers grew by ${mib(pinned)}`);
  assert.ok(held.rss - before.rss < 60 * MiB, `retained RSS grew by ${mib(held.rss - before.rss)}`);
  assert.ok(held.fds - before.fds <= 2, `descriptors ${before.fds} → ${held.fds}`);
});
