/**
 * What a server sends right behind its handshake reaches the client: a WebSocket server that
 * writes its 101 response, a message and its close in one write (as a listener whose stdin was
 * already at EOF does: `cat -l --ws` with "short reply") — the client's channel exists from
 * 'open' on and holds those frames until the Connection attaches (SinkRelay). Before, the
 * message was decoded while nobody listened and lost; the connection still ended cleanly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { Connection, Endpoint, Parameters } from '../../../src/net/index.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** An unmasked server frame (RFC 6455 §5.2), payload under 126 bytes. */
function frame(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]);
}

test('ws client: a message and the close that came in the same read as the 101 response are delivered, then the end', { timeout: 20_000 }, async () => {
  const server = createServer((s: Socket) => {
    let req = '';
    s.on('data', (b: Buffer) => {
      req += b.toString('latin1');
      if (!req.includes('\r\n\r\n')) return;
      const key = /sec-websocket-key:\s*(\S+)/i.exec(req)?.[1] ?? '';
      const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
      const close = Buffer.from([0x03, 0xe8]); // 1000
      s.write(
        Buffer.concat([
          Buffer.from(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`, 'latin1'),
          frame(0x2, Buffer.from('short reply')),
          frame(0x8, close),
        ]),
      );
      s.removeAllListeners('data');
      // Answer the client's close by ending the TCP connection (the server's part, §7.1.1).
      s.on('data', () => s.end());
      s.on('error', () => undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    for (let i = 0; i < 20; i++) {
      const c = new Connection(Endpoint.hostPort('127.0.0.1', port), Parameters.ws({ retry: { automatic: false } }));
      c.start();
      const got = await c.receiveMessage();
      assert.equal(got === null ? null : String(got), 'short reply', `round ${i}`);
      assert.equal(await c.receiveMessage(), null);
      c.forceCancel();
    }
  } finally {
    server.close();
  }
});
