/**
 * The baseline: the same stacks written directly on node:net / node:tls / ws, the way a
 * careful Node programmer would (length prefix, merged writes, drain-based backpressure).
 */
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import WebSocket, { WebSocketServer } from 'ws';

export const PSK_HEX = '00112233445566778899aabbccddeeff';
const PSK = Buffer.from(PSK_HEX, 'hex');
const CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:ECDHE-PSK-CHACHA20-POLY1305:PSK-AES128-GCM-SHA256';

export type Stack = 'tcp' | 'tls-psk' | 'ws';

/** A message connection: callback delivery, send() returns a promise only when it must wait. */
export interface RawConn {
  onMessage: (m: Buffer) => void;
  send(m: Buffer): Promise<void> | undefined;
  close(): void;
}

/** Length-prefixed framing over a socket, with merged writes flushed per tick. */
class FramedSocket implements RawConn {
  onMessage: (m: Buffer) => void = () => undefined;
  private chunks: Buffer[] = [];
  private held = 0;
  private need = -1;
  private out: Buffer = Buffer.allocUnsafe(65536);
  private used = 0;
  private scheduled = false;

  constructor(private readonly s: Socket) {
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => this.onData(d));
    s.on('error', () => undefined);
  }

  private onData(d: Buffer): void {
    this.chunks.push(d);
    this.held += d.length;
    for (;;) {
      if (this.need < 0) {
        if (this.held < 4) return;
        this.need = this.take(4).readUInt32BE(0);
      }
      if (this.held < this.need) return;
      const n = this.need;
      this.need = -1;
      this.onMessage(this.take(n));
    }
  }

  private take(n: number): Buffer {
    this.held -= n;
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const b = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length, n - off);
      c.copy(b, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return b;
  }

  send(m: Buffer): Promise<void> | undefined {
    if (m.length >= 16384) {
      this.flush();
      const h = Buffer.allocUnsafe(4);
      h.writeUInt32BE(m.length, 0);
      this.s.cork();
      this.s.write(h);
      this.s.write(m);
      this.s.uncork();
    } else {
      if (this.used + 4 + m.length > this.out.length) this.flush();
      this.out.writeUInt32BE(m.length, this.used);
      m.copy(this.out, this.used + 4);
      this.used += 4 + m.length;
      if (!this.scheduled) {
        this.scheduled = true;
        process.nextTick(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    }
    return this.s.writableNeedDrain ? new Promise<void>((r) => this.s.once('drain', () => r())) : undefined;
  }

  private flush(): void {
    if (this.used === 0) return;
    this.s.write(this.out.subarray(0, this.used));
    this.out = this.out.subarray(this.used);
    if (this.out.length < 1024) this.out = Buffer.allocUnsafe(65536);
    this.used = 0;
  }

  close(): void {
    this.flush();
    this.s.end();
  }
}

class RawWs implements RawConn {
  onMessage: (m: Buffer) => void = () => undefined;
  constructor(private readonly ws: WebSocket) {
    ws.on('message', (d: Buffer) => this.onMessage(d));
    ws.on('error', () => undefined);
  }
  send(m: Buffer): Promise<void> | undefined {
    if (this.ws.bufferedAmount > 256 * 1024) return new Promise<void>((r) => this.ws.send(m, { binary: true }, () => r()));
    this.ws.send(m, { binary: true });
    return undefined;
  }
  close(): void {
    this.ws.close();
  }
}

export function rawListen(stack: Stack, onConn: (c: RawConn) => void): Promise<{ port: number; close: () => void }> {
  return new Promise((resolve) => {
    if (stack === 'ws') {
      const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
      wss.on('connection', (ws) => onConn(new RawWs(ws)));
      wss.on('listening', () => resolve({ port: (wss.address() as { port: number }).port, close: () => wss.close() }));
      return;
    }
    const server =
      stack === 'tcp'
        ? net.createServer((s) => onConn(new FramedSocket(s)))
        : tls.createServer({ ciphers: CIPHERS, pskCallback: () => PSK }, (s) => onConn(new FramedSocket(s)));
    server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as { port: number }).port, close: () => server.close() }));
  });
}

const clientContext = tls.createSecureContext({ ciphers: CIPHERS });

export function rawConnect(stack: Stack, port: number): Promise<RawConn> {
  return new Promise((resolve, reject) => {
    if (stack === 'ws') {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
      ws.once('open', () => resolve(new RawWs(ws)));
      ws.once('error', reject);
      return;
    }
    if (stack === 'tcp') {
      const s = net.connect(port, '127.0.0.1', () => resolve(new FramedSocket(s)));
      s.once('error', reject);
      return;
    }
    const s = tls.connect({ port, host: '127.0.0.1', secureContext: clientContext, ciphers: CIPHERS, checkServerIdentity: () => undefined, pskCallback: () => ({ psk: PSK, identity: 'bench' }) }, () => resolve(new FramedSocket(s)));
    s.once('error', reject);
  });
}
