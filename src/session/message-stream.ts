/**
 * A byte-stream Duplex over a message connection (framer or WebSocket), used for session
 * streams after their STREAM_BIND / STREAM_BOUND exchange.
 *
 * Each non-empty message carries stream bytes; an empty message marks the end of the
 * sender's side (half-close), so the same code works over WebSocket, which has no
 * half-close of its own. Backpressure is the connection's in both directions: a write
 * completes when `send()` resolves (the transport accepted it), and a message is only
 * pulled off the connection when the readable side asks for more (`_read`), so a slow
 * reader stops the socket and, through TCP, the writer. Messages are received in pieces
 * (Connection.receivePartialMessages): each piece is a view of a transport read, so a
 * stream frame is never reassembled or copied on the way to the reader.
 */
import { Duplex } from 'node:stream';
import type { Connection } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import { toPeerlinkError } from './control-channel.js';

/**
 * Largest chunk put in one message; bigger writes are split (the receiver's limit is larger).
 * Moderate frames keep the receiver's transient allocations (one buffer per frame) small.
 */
export const STREAM_CHUNK_MAX = 256 * 1024;
/** Writes queued together that are smaller than this in total are merged into one message. */
const MERGE_LIMIT = 64 * 1024;

const END = Buffer.alloc(0);

export class MessageStream extends Duplex {
  readonly connection: Connection;
  private reading = false;
  private remoteEnded = false;
  private localEnded = false;

  constructor(connection: Connection, opts: { highWaterMark?: number } = {}) {
    super({ allowHalfOpen: true, readableHighWaterMark: opts.highWaterMark ?? 256 * 1024, writableHighWaterMark: opts.highWaterMark ?? 256 * 1024 });
    this.connection = connection;
    connection.receivePartialMessages();
  }

  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        let m = this.connection.tryReceiveMessagePart();
        if (m === undefined) m = await this.connection.receiveMessagePart();
        if (this.destroyed) return;
        if (m === null) {
          // The transport ended without our end marker: the peer went away mid-stream.
          this.destroy(new PeerlinkError('ERR_CONNECTION_RESET', 'the stream connection closed before the peer finished sending'));
          return;
        }
        // Only an empty message (the end marker) gives an empty piece.
        if (m.data.length === 0) {
          this.remoteEnded = true;
          this.push(null);
          this.maybeClose();
          return;
        }
        if (!this.push(m.data)) {
          this.reading = false;
          return;
        }
      }
    } catch (err) {
      if (!this.destroyed) this.destroy(toPeerlinkError(err, 'ERR_CONNECTION_RESET'));
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sendChunks(chunk).then(() => cb(), (err: unknown) => cb(toPeerlinkError(err, 'ERR_CONNECTION_RESET')));
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    // Small writes are copied into one message; big ones are grouped, uncopied, into messages
    // of up to STREAM_CHUNK_MAX (one frame header per group instead of one per write).
    const total = chunks.reduce((n, c) => n + c.chunk.length, 0);
    const run = total <= MERGE_LIMIT ? this.sendChunks(Buffer.concat(chunks.map((c) => c.chunk), total)) : this.sendGroups(chunks);
    run.then(() => cb(), (err: unknown) => cb(toPeerlinkError(err, 'ERR_CONNECTION_RESET')));
  }

  private async sendGroups(chunks: Array<{ chunk: Buffer }>): Promise<void> {
    let group: Buffer[] = [];
    let size = 0;
    for (const { chunk } of chunks) {
      if (chunk.length === 0) continue;
      if (chunk.length > STREAM_CHUNK_MAX) {
        if (group.length > 0) await this.connection.send(group);
        group = [];
        size = 0;
        await this.sendChunks(chunk);
        continue;
      }
      if (size + chunk.length > STREAM_CHUNK_MAX) {
        await this.connection.send(group);
        group = [];
        size = 0;
      }
      group.push(chunk);
      size += chunk.length;
    }
    if (group.length > 0) await this.connection.send(group);
  }

  private async sendChunks(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return; // an empty message would mean "end"
    for (let off = 0; off < chunk.length; off += STREAM_CHUNK_MAX) {
      await this.connection.send(off === 0 && chunk.length <= STREAM_CHUNK_MAX ? chunk : chunk.subarray(off, off + STREAM_CHUNK_MAX));
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.connection.send(END).then(
      () => {
        this.localEnded = true;
        this.maybeClose();
        cb();
      },
      (err: unknown) => cb(toPeerlinkError(err, 'ERR_CONNECTION_RESET')),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.localEnded && this.remoteEnded && !err) this.connection.cancel();
    else this.connection.forceCancel();
    cb(err);
  }

  private maybeClose(): void {
    // Both directions finished: close the connection gracefully (Duplex autoDestroy follows).
    if (this.localEnded && this.remoteEnded) this.connection.cancel();
  }
}
