/**
 * A message channel over a byte stream, through a Framer: batched writes, decoding from a
 * chunk list, limits checked before allocation, keepalive pings answered and sent.
 */
import type { Socket } from 'node:net';
import { PeerlinkError } from '../errors.js';
import { BatchWriter } from './batch-writer.js';
import { RESOLVED } from './channel.js';
import type { Framer, FrameDecoder } from './framer.js';
import { KeepaliveTimer } from './keepalive.js';
import type { TlsMode } from './net-errors.js';
import type { ResolvedKeepalive } from './parameters.js';
import { SocketChannel } from './socket-channel.js';

export class FramedChannel extends SocketChannel {
  override readonly kind = 'message' as const;
  private readonly decoder: FrameDecoder;
  private readonly writer: BatchWriter;
  private readonly keepalive: KeepaliveTimer | undefined;

  constructor(io: Socket, socket: Socket, tlsMode: TlsMode, private readonly framer: Framer, maxMessageSize: number, keepalive: ResolvedKeepalive | undefined) {
    super(io, socket, tlsMode);
    this.decoder = framer.createDecoder(maxMessageSize);
    this.writer = new BatchWriter(io);
    if (keepalive) {
      this.keepalive = new KeepaliveTimer(
        keepalive,
        (payload) => {
          this.sink?.keepaliveSent();
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
    try {
      this.decoder.push(chunk);
      for (;;) {
        const f = this.decoder.next();
        if (!f) break;
        if (f.kind === 'message') this.sink?.message(f.data);
        else if (f.kind === 'ping') this.writer.write(this.framer.encode({ kind: 'pong', data: f.data }));
        else {
          const rtt = this.keepalive?.rttFrom(f.data);
          if (rtt !== undefined) this.sink?.rtt(rtt);
        }
      }
    } catch (err) {
      // Bad input from the network fails this connection, never the process.
      this.fail(err instanceof PeerlinkError ? err : new PeerlinkError('ERR_MALFORMED_FRAME', String(err)));
    }
  }

  override send(chunks: readonly Buffer[], final: boolean): Promise<void> {
    const io = this.io;
    if (io.destroyed || io.writableEnded) return Promise.reject(new PeerlinkError('ERR_CLOSED', 'cannot send: this side of the connection is closed'));
    let frame: Buffer[];
    try {
      frame = this.framer.encode({ kind: 'message', data: chunks.length === 1 ? (chunks[0] as Buffer) : chunks });
    } catch (err) {
      return Promise.reject(err);
    }
    this.writer.write(frame);
    return this.afterWrite(final);
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
