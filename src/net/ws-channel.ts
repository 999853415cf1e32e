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
import { localOf, remoteOf, RESOLVED, SinkRelay, type Channel, type ChannelSink, type SocketAddress } from './channel.js';
import { KeepaliveTimer } from './keepalive.js';
import { toPeerlinkError, type TlsMode } from './net-errors.js';
import type { ResolvedKeepalive } from './parameters.js';

const WS_HIGH_WATER = 256 * 1024;
/** Pings coalesced while a pong is being written, beyond which the channel stops reading. */
const REPLY_BACKLOG = 8;

/**
 * ws checks each frame's announced length against its receiver's `_maxPayload` as the length
 * is read (ws/lib/receiver.js haveLength), so changing it limits the next frame without
 * buffering it. ws has no public setter; when a future ws lacks the field, WsChannel falls
 * back to refusing over-limit messages once received (memory then bounded by the
 * construction-time maxPayload only). test/unit/net/receive-limit.test.ts pins this.
 */
export function setWsReceiveLimit(ws: WebSocket, n: number): boolean {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (receiver === undefined || typeof receiver._maxPayload !== 'number') return false;
  receiver._maxPayload = n;
  return true;
}

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
  /**
   * Holds what arrives before Connection attaches (see SinkRelay): a client's first message and
   * even the peer's close can come in the same read as the 101 response.
   */
  private readonly sink = new SinkRelay();
  private error: PeerlinkError | undefined;
  private isClosed = false;
  private corked = false;
  private readonly keepalive: KeepaliveTimer | undefined;
  private limit = Number.POSITIVE_INFINITY;
  /**
   * Pongs are replies we owe: only the latest ping is answered while a pong is still being
   * written (RFC 6455 §5.5.3 allows answering only the most recent ping), and after
   * REPLY_BACKLOG more pings the channel stops reading until that pong is written. Needs
   * ws's `autoPong: false` (listener.ts, establish.ts).
   */
  private owedPong: Buffer | undefined;
  private owedPings = 0;
  private pongInFlight = false;
  private replyHold = false;
  private queuePaused = false;

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
      if (data.length > this.limit) {
        this.error ??= new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `peer sent a ${data.length}-byte message; the limit is ${this.limit} bytes`);
        ws.close(1009);
        return;
      }
      this.sink.message(data);
    });
    ws.on('ping', (data: Buffer) => {
      this.keepalive?.received();
      this.owePong(data);
    });
    ws.on('pong', (data: Buffer) => {
      this.keepalive?.received();
      const rtt = this.keepalive?.rttFrom(data);
      if (rtt !== undefined) this.sink.rtt(rtt);
    });
    ws.on('error', (err: Error & { code?: string }) => {
      this.error ??= wsError(err, tlsMode);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.keepalive?.stop();
      this.error ??= closeError(code, reason);
      this.isClosed = true;
      if (!this.error) this.sink.end();
      this.sink.closed(this.error);
    });
    if (keepalive) {
      this.keepalive = new KeepaliveTimer(
        keepalive,
        (payload) => {
          this.sink.keepaliveSent();
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
    this.sink.attach(sink);
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

  /** The largest message accepted from the next frame on (see Channel.setMaxMessageSize). */
  setMaxMessageSize(n: number): void {
    this.limit = n;
    setWsReceiveLimit(this.ws, n);
  }

  private owePong(data: Buffer): void {
    this.owedPong = Buffer.from(data);
    this.owedPings++;
    if (!this.pongInFlight) {
      this.sendOwedPong();
      return;
    }
    if (this.owedPings > REPLY_BACKLOG && !this.replyHold) {
      this.replyHold = true;
      this.ws.pause();
    }
  }

  private sendOwedPong(): void {
    const ws = this.ws;
    const payload = this.owedPong;
    if (payload === undefined || ws.readyState !== ws.OPEN) return;
    this.owedPong = undefined;
    this.owedPings = 0;
    this.pongInFlight = true;
    ws.pong(payload, undefined, () => {
      this.pongInFlight = false;
      if (this.replyHold) {
        this.replyHold = false;
        if (!this.queuePaused) ws.resume();
      }
      this.sendOwedPong();
    });
  }

  pause(): void {
    this.queuePaused = true;
    this.ws.pause();
  }

  resume(): void {
    this.queuePaused = false;
    if (!this.replyHold) this.ws.resume();
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
