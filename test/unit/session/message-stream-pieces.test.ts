// A `pieces` MessageStream (resource streams) bounds what it buffers in bytes, not only in
// pieces: over WebSocket a piece is a whole message (up to maxMessageSize, 4 MiB by default), and
// 16 buffered pieces would let a peer pin 64 MiB per stream while the receiver waits on its disk.
// The source here is a stand-in for the connection's message parts (the stream only pulls from
// it); what is measured is how many parts the stream pulls while nobody reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Connection } from '../../../src/net/index.js';
import { MessageStream } from '../../../src/session/message-stream.js';

function partsSource(count: number, size: number): { conn: Connection; pulled: () => number } {
  let pulled = 0;
  const next = (): { data: Buffer } | undefined => (pulled < count ? (pulled++, { data: Buffer.alloc(size, 1) }) : undefined);
  const conn = {
    receivePartialMessages: () => undefined,
    tryReceiveMessagePart: next,
    receiveMessagePart: () => new Promise<never>(() => undefined),
    close: () => undefined,
    destroy: () => undefined,
  } as unknown as Connection;
  return { conn, pulled: () => pulled };
}

test('a pieces stream stops pulling at 256 KiB buffered, whatever the size of a piece', async () => {
  const MiB = 1024 * 1024;
  const { conn, pulled } = partsSource(64, MiB);
  const s = new MessageStream(conn, { pieces: true });
  s.on('error', () => undefined);
  s.read(0); // starts the pull, as a reader waiting on 'readable' does
  await sleep(50);
  assert.ok(pulled() <= 1, `${pulled()} MiB pulled with nobody reading (bound: 256 KiB plus the last piece)`);
  // Reading goes on: each piece taken lets the next one in, and the bytes arrive in order.
  let got = 0;
  for (let i = 0; i < 8; i++) {
    const c = s.read() as Buffer | null;
    if (c === null) await sleep(5);
    else got += c.length;
  }
  assert.ok(got >= 2 * MiB, `only ${got} bytes read`);
  assert.ok(pulled() * MiB - got <= MiB, 'never more than one piece buffered beyond what was read');
  s.destroy();
});

test('small pieces still fill to the byte mark, not one at a time', async () => {
  const { conn, pulled } = partsSource(1000, 1024);
  const s = new MessageStream(conn, { pieces: true });
  s.on('error', () => undefined);
  s.read(0);
  await sleep(50);
  // 16 pieces (the piece mark) of 1 KiB each: far under the byte mark.
  assert.ok(pulled() >= 16 && pulled() <= 17, `${pulled()} pieces pulled`);
  s.destroy();
});
