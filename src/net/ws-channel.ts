/**
 * A message channel over a WebSocket (the `ws` package, with bufferutil for masking).
 * `ws.send()` never blocks, so backpressure comes from `bufferedAmount` and the send
 * callback: below the high-water mark a send is accepted at once, above it the promise
 * waits for that message's callback. Sends within one tick are corked into one write.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type WebSocket from 'ws';
import { PeerlinkError } from '../errors.js';
import { localOf, remoteOf, RESOLVED, type Channel, type ChannelSink, type SocketAddress } from './channel.js';
import { KeepaliveTimer } from './keepalive.js';
import { toPeerlinkError, type TlsMode } from './net-errors.js';
import type { ResolvedKeepalive } from './parameters.js';

const WS_HIGH_WATER = 256 * 1024;

function closeError(code: number, reason: Buffer): PeerlinkError | undefined {
  const why = reason.length ? `: ${reason.toString('utf8')}` : '';
  switch (code) {
    case 1000:
    case 1001:
    case 1005:
      return undefined;
    case 1009:
      return new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `the peer closed the WebSocket because a message was too large (1009${why})`);
    case 1006:
      return new PeerlinkError('ERR_CONNECTION_RESET', 'the WebSocket connection was lost without a closing handshake (1006)');
    default:
      return new PeerlinkError('ERR_PROTOCOL', `the peer closed the WebSocket with code ${code}${why}`);
  }
}

function wsError(err: Error & { code?: string }, tlsMode: TlsMode): PeerlinkError {
  if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `the peer sent a WebSocket message over the limit (${err.message})`, { cause: err });
  if (err.code?.startsWith('WS_ERR_')) return new PeerlinkError('ERR_PROTOCOL', `WebSocket protocol error: ${err.message}`, { cause: err });
  return toPeerlinkError(err, { tls: tlsMode, during: 'transfer' });
}

export class WsChannel implements Channel {
  readonly kind = 'message' as const;
  private sink: ChannelSink | undefined;
  private error: PeerlinkError | undefined;
  private isClosed = false;
  private corked = false;
  private readonly keepalive: KeepaliveTimer | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly socket: Socket,
    private readonly tls: TLSSocket | undefined,
    private readonly tlsMode: TlsMode,
    keepalive: ResolvedKeepalive | undefined,
  ) {
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, _isBinary: boolean) => {
      this.keepalive?.received();
      this.sink?.message(data);
    });
    ws.on('ping', () => this.keepalive?.received());
    ws.on('pong', (data: Buffer) => {
      this.keepalive?.received();
      const rtt = this.keepalive?.rttFrom(data);
      if (rtt !== undefined) this.sink?.rtt(rtt);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      this.error ??= wsError(err, tlsMode);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.keepalive?.stop();
      this.error ??= closeError(code, reason);
      this.isClosed = true;
      if (!this.error) this.sink?.end();
      this.sink?.closed(this.error);
    });
    if (keepalive) {
      this.keepalive = new KeepaliveTimer(
        keepalive,
        (payload) => {
          this.sink?.keepaliveSent();
          if (ws.readyState === ws.OPEN) ws.ping(payload);
        },
        (silent) => {
          this.error ??= new PeerlinkError('ERR_KEEPALIVE_TIMEOUT', `no data or pong from the peer for ${Math.round(silent)} ms; it is frozen or unreachable`);
          ws.terminate();
        },
      );
      this.keepalive.start();
    }
  }

  get tlsSocket(): TLSSocket | undefined {
    return this.tls;
  }

  get local(): SocketAddress | undefined {
    return localOf(this.socket);
  }

  get remote(): SocketAddress | undefined {
    return remoteOf(this.socket);
  }

  attach(sink: ChannelSink): void {
    this.sink = sink;
  }

  send(chunks: Buffer | readonly Buffer[], final: boolean): Promise<void> {
    const ws = this.ws;
    if (this.isClosed || ws.readyState !== ws.OPEN) return Promise.reject(this.error ?? new PeerlinkError('ERR_CLOSED', 'cannot send: the WebSocket is closing or closed'));
    const data = Buffer.isBuffer(chunks) ? chunks : Buffer.concat(chunks as Buffer[]);
    const io = (this.tls ?? this.socket) as Socket;
    if (!this.corked) {
      // ws writes each frame on its own; corking until the next tick merges a tick's frames.
      this.corked = true;
      io.cork();
      process.nextTick(() => {
        this.corked = false;
        io.uncork();
      });
    }
    let result: Promise<void> = RESOLVED;
    if (final && data.length === 0) {
      // An empty final send only closes (WebSocket has no half-close to carry it otherwise).
      ws.close(1000);
      return result;
    }
    if (ws.bufferedAmount > WS_HIGH_WATER) {
      result = new Promise<void>((resolve, reject) => {
        ws.send(data, { binary: true }, (err) => (err ? reject(this.error ?? wsError(err, this.tlsMode)) : resolve()));
      });
    } else ws.send(data, { binary: true });
    if (final) ws.close(1000);
    return result;
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  end(): void {
    this.keepalive?.stop();
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(1000);
    const t = setTimeout(() => this.ws.terminate(), 5000);
    t.unref();
    this.ws.once('close', () => clearTimeout(t));
  }

  destroy(err?: PeerlinkError): void {
    this.keepalive?.stop();
    if (err) this.error ??= err;
    this.ws.terminate();
  }
}
