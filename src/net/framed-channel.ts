/**
 * A message channel over a byte stream, through a Framer: batched writes, decoding from a
 * chunk list, limits checked before allocation (a limit that can change at run time),
 * keepalive pings answered and sent.
 *
 * Pongs are replies we owe, not data the app asked to send, so nothing else limits them: a
 * peer that pings without reading would have us queue one per ping. They are coalesced
 * instead: while the transport is above its high-water mark only the latest ping is owed
 * (answered on 'drain'), and after REPLY_BACKLOG more pings the channel stops reading until
 * the transport drains (docs/security.md "Replies we owe"). App data is not affected.
 */
import type { Socket } from 'node:net';
import { PeerlinkError } from '../errors.js';
import { BatchWriter } from './batch-writer.js';
import { RESOLVED } from './channel.js';
import { LengthPrefixDecoder, lengthPrefixFramer, MAX_FRAMED_MESSAGE, type Framer, type FrameDecoder, type FrameSink, type PartSink } from './framer.js';
import { KeepaliveTimer } from './keepalive.js';
import type { TlsMode } from './net-errors.js';
import type { ResolvedKeepalive } from './parameters.js';
import { SocketChannel } from './socket-channel.js';

/** Pings coalesced while a pong waits for 'drain', beyond which the channel stops reading. */
export const REPLY_BACKLOG = 8;
/** A custom decoder without setMaxMessageSize may hold this much beyond a lowered limit (its header). */
const HEADER_SLACK = 64;

export class FramedChannel extends SocketChannel {
  override readonly kind = 'message' as const;
  private readonly decoder: FrameDecoder & { drain?: (sink: FrameSink) => void };
  /** The default framer's allocation-free paths (no Frame objects, no header buffers). */
  private readonly fast: boolean;
  private readonly frameSink: FrameSink | undefined;
  /** Set by deliverPartialMessages() (default framer only): messages go up in pieces. */
  private partSink: PartSink | undefined;
  private readonly writer: BatchWriter;
  private readonly keepalive: KeepaliveTimer | undefined;
  /** The receive limit; only consulted for custom decoders without setMaxMessageSize. */
  private limit: number;
  /** The payload of the latest ping not answered yet (a copy: a view would pin its chunk). */
  private owedPong: Buffer | undefined;
  /** Pings received since the last pong went out. */
  private owedPings = 0;
  private pongScheduled = false;
  /** A pong is owed and the transport is above its high-water mark: it goes on 'drain'. */
  private pongWaitsDrain = false;
  /** Reading stopped because pongs are backed up (REPLY_BACKLOG). */
  private replyHold = false;
  /** Reading stopped by the receive queue (the Connection's backpressure). */
  private queuePaused = false;
  private readonly sendOwedPongBound = (): void => this.sendOwedPong();

  constructor(io: Socket, socket: Socket, tlsMode: TlsMode, private readonly framer: Framer, maxMessageSize: number, keepalive: ResolvedKeepalive | undefined) {
    super(io, socket, tlsMode);
    this.limit = maxMessageSize;
    this.decoder = framer.createDecoder(maxMessageSize);
    io.on('drain', () => this.drained());
    // On TLS the writer turns writev off (TLSWrap would copy multi-buffer writes); plain TCP
    // keeps it: the kernel gathers without a copy.
    this.writer = new BatchWriter(io, tlsMode !== undefined);
    this.fast = framer === lengthPrefixFramer;
    this.frameSink =
      this.decoder instanceof LengthPrefixDecoder
        ? {
            message: (d) => this.sink.message(d),
            control: (kind, d) => this.onControl(kind, d),
          }
        : undefined;
    if (keepalive) {
      this.keepalive = new KeepaliveTimer(
        keepalive,
        (payload) => {
          this.sink.keepaliveSent();
          this.writer.write(framer.encode({ kind: 'ping', data: payload }));
        },
        (silent) => this.fail(new PeerlinkError('ERR_KEEPALIVE_TIMEOUT', `no data or keepalive reply from the peer for ${Math.round(silent)} ms; it is frozen or unreachable`)),
      );
      this.keepalive.start();
      io.once('close', () => this.keepalive?.stop());
    }
  }

  protected override onData(chunk: Buffer): void {
    this.keepalive?.received();
    this.decode(chunk);
  }

  /** Adds `chunk`, then delivers every complete frame (in partial mode, every piece) the decoder holds. */
  private decode(chunk?: Buffer): void {
    try {
      if (chunk) this.decoder.push(chunk);
      if (this.decoder.setMaxMessageSize === undefined && this.decoder.buffered > this.limit + HEADER_SLACK) {
        throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `peer sent more than ${this.limit} bytes in one message; the limit is ${this.limit} bytes`);
      }
      if (this.partSink) {
        (this.decoder as LengthPrefixDecoder).drainParts(this.partSink);
        return;
      }
      if (this.frameSink) {
        (this.decoder as LengthPrefixDecoder).drain(this.frameSink);
        return;
      }
      for (;;) {
        const f = this.decoder.next();
        if (!f) break;
        if (f.kind === 'message') {
          if (f.data.length > this.limit) throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `peer sent a ${f.data.length}-byte message; the limit is ${this.limit} bytes`);
          this.sink.message(f.data);
        } else this.onControl(f.kind, f.data);
      }
    } catch (err) {
      // Bad input from the network fails this connection, never the process.
      this.fail(err instanceof PeerlinkError ? err : new PeerlinkError('ERR_MALFORMED_FRAME', String(err)));
    }
  }

  /** The largest message accepted from the next frame on (see Channel.setMaxMessageSize). */
  setMaxMessageSize(n: number): void {
    this.limit = n;
    this.decoder.setMaxMessageSize?.(n);
  }

  /** Pieces as they arrive instead of reassembled messages; a custom framer keeps whole messages. */
  deliverPartialMessages(): void {
    if (!(this.decoder instanceof LengthPrefixDecoder) || this.partSink) return;
    this.partSink = {
      part: (d, complete) => this.sink.part(d, complete),
      control: (kind, d) => this.onControl(kind, d),
    };
    // What the decoder already holds of a message goes up now, not with the next read.
    this.decode();
  }

  /** The default framer's 4-byte length prefix can be written into a sender's headroom. */
  get headroom(): number | undefined {
    return this.fast ? 4 : undefined;
  }

  sendWithHeadroom(data: Buffer, headroom: number, final: boolean): Promise<void> {
    const io = this.io;
    if (io.destroyed || io.writableEnded) return Promise.reject(new PeerlinkError('ERR_CLOSED', 'cannot send: this side of the connection is closed'));
    const n = data.length - headroom;
    if (!this.fast) return this.send(data.subarray(headroom), final);
    if (n > MAX_FRAMED_MESSAGE) return Promise.reject(new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `message of ${n} bytes exceeds the framer's limit of ${MAX_FRAMED_MESSAGE}`));
    data.writeUInt32BE(n, headroom - 4);
    this.writer.writeFrame(data.subarray(headroom - 4));
    return this.afterWrite(final);
  }

  override send(data: Buffer | readonly Buffer[], final: boolean): Promise<void> {
    const io = this.io;
    if (io.destroyed || io.writableEnded) return Promise.reject(new PeerlinkError('ERR_CLOSED', 'cannot send: this side of the connection is closed'));
    // An empty final send only half-closes: no empty message goes out.
    if (final && (Buffer.isBuffer(data) ? data.length === 0 : data.every((c) => c.length === 0))) return this.afterWrite(true);
    if (this.fast) {
      if (Buffer.isBuffer(data)) this.writer.writeLengthPrefixed(data);
      else {
        let n = 0;
        for (let i = 0; i < data.length; i++) n += (data[i] as Buffer).length;
        if (n > MAX_FRAMED_MESSAGE) return Promise.reject(new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `message of ${n} bytes exceeds the framer's limit of ${MAX_FRAMED_MESSAGE}`));
        this.writer.writeLengthPrefixedChunks(data, n);
      }
      return this.afterWrite(final);
    }
    let frame: Buffer[];
    try {
      frame = this.framer.encode({ kind: 'message', data });
    } catch (err) {
      return Promise.reject(err);
    }
    this.writer.write(frame);
    return this.afterWrite(final);
  }

  private onControl(kind: 'ping' | 'pong', data: Buffer): void {
    if (kind === 'pong') {
      const rtt = this.keepalive?.rttFrom(data);
      if (rtt !== undefined) this.sink.rtt(rtt);
      return;
    }
    // Only the latest ping is answered: the pong goes out at the end of this tick (every ping
    // of one read is answered once), or on 'drain' while the transport is above its mark.
    this.owedPong = Buffer.from(data);
    this.owedPings++;
    if (this.pongWaitsDrain) {
      if (this.owedPings > REPLY_BACKLOG && !this.replyHold) {
        this.replyHold = true;
        this.io.pause();
      }
      return;
    }
    if (!this.pongScheduled) {
      this.pongScheduled = true;
      process.nextTick(this.sendOwedPongBound);
    }
  }

  private sendOwedPong(): void {
    this.pongScheduled = false;
    const payload = this.owedPong;
    const io = this.io;
    if (payload === undefined || io.destroyed || io.writableEnded) return;
    if (io.writableNeedDrain) {
      this.pongWaitsDrain = true;
      return;
    }
    this.owedPong = undefined;
    this.owedPings = 0;
    this.writer.write(this.framer.encode({ kind: 'pong', data: payload }));
  }

  private drained(): void {
    if (!this.pongWaitsDrain) return;
    this.pongWaitsDrain = false;
    if (this.replyHold) {
      this.replyHold = false;
      if (!this.queuePaused) this.io.resume();
    }
    this.sendOwedPong();
  }

  override pause(): void {
    this.queuePaused = true;
    this.io.pause();
  }

  override resume(): void {
    this.queuePaused = false;
    if (!this.replyHold) this.io.resume();
  }

  flush(): void {
    this.writer.flush();
  }

  private afterWrite(final: boolean): Promise<void> {
    if (final) {
      this.writer.flush();
      this.io.end();
    }
    return this.io.writableNeedDrain ? this.waitDrain() : RESOLVED;
  }

  override end(): void {
    this.keepalive?.stop();
    this.writer.flush();
    super.end();
  }

  override destroy(err?: PeerlinkError): void {
    this.keepalive?.stop();
    super.destroy(err);
  }
}
