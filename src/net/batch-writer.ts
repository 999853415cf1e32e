/**
 * Merges small frames into ~64 KiB buffers so that many sends in one tick become one socket
 * write (one write per 100-byte message caps TCP at ~0.6 M msgs/s here; merged, ~3 M).
 * Large payloads are not copied: on TCP the pending buffer and the payload go out as one
 * writev; on TLS as separate writes, because Node's TLS socket copies every multi-buffer
 * write into one allocation before encrypting it (a 64 KiB copy per stream frame), while a
 * single buffer is encrypted in place. Pending bytes are flushed on the next tick, or at
 * once when the buffer is full, so the batch never grows beyond one buffer.
 *
 * The buffer starts small (4 KiB) and is 64 KiB from the first one that fills up within a tick;
 * each tick that wrote little halves it again, and drops a larger leftover. An idle connection
 * (keepalives only) so holds 4 KiB instead of 64 KiB: 6 MiB less in a process with 100 peers
 * (docs/memory.md).
 */
import type { Socket } from 'node:net';

const BATCH_SIZE = 64 * 1024;
const BATCH_MIN = 4 * 1024;
/** Payload chunks at least this big are written by reference instead of copied. */
const COPY_LIMIT = 16 * 1024;

export class BatchWriter {
  private buf: Buffer | undefined;
  private used = 0;
  private scheduled = false;
  /** Size of the next buffer allocated (BATCH_MIN..BATCH_SIZE). */
  private size = BATCH_MIN;
  /** Bytes taken since the last tick flush. */
  private tickBytes = 0;
  private readonly flushBound = (): void => {
    this.scheduled = false;
    this.flush();
    if (this.tickBytes * 4 < this.size) {
      // A light tick: the next buffer is smaller, and a leftover larger than it is let go.
      if (this.size > BATCH_MIN) this.size >>= 1;
      if (this.buf && this.buf.length > this.size) this.buf = undefined;
    }
    this.tickBytes = 0;
  };

  /**
   * `tls`: the socket encrypts, so it gets no writev at all: chunks queued together (corked,
   * or while a write is in flight) are then written one by one, each encrypted in place.
   */
  constructor(
    private readonly io: Socket,
    tls = false,
  ) {
    if (tls) (io as unknown as { _writev: unknown })._writev = null;
  }

  /** Queues the chunks of one frame. */
  write(chunks: readonly Buffer[]): void {
    for (const c of chunks) {
      if (c.length >= COPY_LIMIT) {
        const pending = this.take();
        this.io.cork();
        if (pending) this.io.write(pending);
        this.io.write(c);
        this.io.uncork();
        continue;
      }
      c.copy(this.reserve(c.length), this.used);
      this.used += c.length;
    }
    if (this.used > 0) this.schedule();
  }

  /** One frame already encoded in a single buffer (header included): by reference when large. */
  writeFrame(frame: Buffer): void {
    if (frame.length >= COPY_LIMIT) {
      this.write([frame]);
      return;
    }
    frame.copy(this.reserve(frame.length), this.used);
    this.used += frame.length;
    this.schedule();
  }

  /**
   * One length-prefixed message (the default framer's wire form) without building a header
   * buffer or a chunk list: the hot path for small messages.
   */
  writeLengthPrefixed(data: Buffer): void {
    const n = data.length;
    if (n >= COPY_LIMIT) {
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(n, 0);
      this.write([header, data]);
      return;
    }
    const buf = this.reserve(4 + n);
    buf.writeUInt32BE(n, this.used);
    if (n > 0) data.copy(buf, this.used + 4);
    this.used += 4 + n;
    this.schedule();
  }

  /** One length-prefixed message made of several chunks (not joined); `n` = their total length. */
  writeLengthPrefixedChunks(chunks: readonly Buffer[], n = sumLengths(chunks)): void {
    if (n >= COPY_LIMIT) {
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(n, 0);
      this.write([header, ...chunks]);
      return;
    }
    const buf = this.reserve(4 + n);
    buf.writeUInt32BE(n, this.used);
    let off = this.used + 4;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i] as Buffer;
      // A one-byte chunk (a type byte ahead of a payload) is common: skip the native copy call.
      if (c.length === 1) buf[off++] = c[0] as number;
      else off += c.copy(buf, off);
    }
    this.used = off;
    this.schedule();
  }

  /** Writes whatever is pending now. */
  flush(): void {
    const pending = this.take();
    if (pending && !this.io.destroyed && !this.io.writableEnded) this.io.write(pending);
  }

  /** The batch buffer with room for n more bytes at `used` (the full one is flushed first). */
  private reserve(n: number): Buffer {
    if (!this.buf || this.used + n > this.buf.length) {
      // Full within a tick (not merely a leftover too short): the next buffer is bigger.
      if (this.used > 0) this.size = BATCH_SIZE;
      this.flush();
      this.buf = Buffer.allocUnsafe(Math.max(this.size, n));
    }
    return this.buf;
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(this.flushBound);
    }
  }

  private take(): Buffer | undefined {
    if (!this.buf || this.used === 0) return undefined;
    const out = this.buf.subarray(0, this.used);
    this.tickBytes += this.used;
    // The socket keeps a reference until written, so the rest of the buffer is not reused.
    this.buf = this.used < this.buf.length - 1024 ? this.buf.subarray(this.used) : undefined;
    this.used = 0;
    return out;
  }
}

function sumLengths(chunks: readonly Buffer[]): number {
  let n = 0;
  for (let i = 0; i < chunks.length; i++) n += (chunks[i] as Buffer).length;
  return n;
}
