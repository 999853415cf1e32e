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
 *
 * Ending, the way a Node user expects of a socket whose peer leaves: a peer that leaves the
 * session gracefully (our session or theirs closes) ends the stream — the reader gets every
 * byte and 'end', then the stream closes without an 'error' (writes still queued towards a
 * peer that left are dropped: `finished()` / `pipeline()` report a premature close). Only a
 * stream cut off before the peer's end marker arrived (the peer was lost, or vanished
 * mid-stream) is destroyed with an error. docs/session.md "Streams" shows the handling.
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

/**
 * Pieces buffered by a `pieces` stream before it stops pulling from the connection. A piece is
 * at most one transport read (TLS: 16 KiB of plaintext), so this bounds the buffer as the
 * byte mode's 256 KiB mark does.
 */
const PIECES_HIGH_WATER_MARK = 16;
/**
 * Bytes a `pieces` stream buffers before it stops pulling. Over WebSocket a piece is a whole
 * message (up to maxMessageSize, 4 MiB by default), so the piece count alone would let a peer
 * pin 16 of them per stream; this keeps the byte mode's bound: 256 KiB plus the last piece.
 */
const PIECES_HIGH_WATER_BYTES = 256 * 1024;

const END = Buffer.alloc(0);
/** How long a stream connection closed after our end marker waits for the peer to close its side, ms. */
const LINGER_MS = 2000;

export class MessageStream extends Duplex {
  readonly connection: Connection;
  private reading = false;
  private remoteEnded = false;
  private localEnded = false;
  /** The peer left the session with BYE closing: what it sent is all there will be. */
  private peerLeft = false;
  /** closeQuietly() was called (it waits for the reader to take everything). */
  private closingQuietly = false;
  private readonly pieces: boolean;
  /** `pieces` mode: bytes pushed and not yet read (the Readable counts objects there). */
  private piecesBytes = 0;
  /** `pieces` mode: _read was called over the byte mark and pulled nothing (read() resumes it). */
  private piecesStalled = false;

  /**
   * `pieces`: the readable side yields the received pieces one by one (`read()` returns one
   * Buffer, at most PIECES_HIGH_WATER_MARK of them buffered) instead of joining everything
   * buffered into a new Buffer on each `read()`, as a byte-mode Readable does. For readers that
   * take chunks of any size (a resource body): the join was a copy of every byte received and
   * its garbage (measured: ~0.13 ms per MiB in `fromList`, plus its share of GC).
   */
  constructor(connection: Connection, opts: { highWaterMark?: number; pieces?: boolean } = {}) {
    super({
      allowHalfOpen: true,
      readableObjectMode: opts.pieces === true,
      readableHighWaterMark: opts.pieces === true ? PIECES_HIGH_WATER_MARK : (opts.highWaterMark ?? 256 * 1024),
      writableHighWaterMark: opts.highWaterMark ?? 256 * 1024,
    });
    this.connection = connection;
    this.pieces = opts.pieces === true;
    connection.receivePartialMessages();
  }

  override read(size?: number): Buffer | null {
    const chunk = super.read(size) as Buffer | null;
    if (this.pieces && chunk !== null) {
      this.piecesBytes -= chunk.length;
      // The Readable still counts the stalled _read as in progress and will not call it again:
      // the pull resumes here, and its first push ends that read.
      if (this.piecesStalled && this.piecesBytes < PIECES_HIGH_WATER_BYTES) {
        this.piecesStalled = false;
        this._read();
      }
    }
    return chunk;
  }

  override _read(): void {
    if (this.pieces && this.piecesBytes >= PIECES_HIGH_WATER_BYTES) {
      this.piecesStalled = true;
      return;
    }
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
          if (this.peerLeft) this.closeQuietly();
          return;
        }
        if (this.pieces) this.piecesBytes += m.data.length;
        if (!this.push(m.data) || (this.pieces && this.piecesBytes >= PIECES_HIGH_WATER_BYTES)) {
          this.reading = false;
          return;
        }
      }
    } catch (err) {
      if (!this.destroyed) this.destroy(toPeerlinkError(err, 'ERR_CONNECTION_RESET'));
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sendChunks(chunk).then(() => cb(), (err: unknown) => this.writeFailed(err, cb));
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    // Small writes are copied into one message; big ones are grouped, uncopied, into messages
    // of up to STREAM_CHUNK_MAX (one frame header per group instead of one per write).
    const total = chunks.reduce((n, c) => n + c.chunk.length, 0);
    const run = total <= MERGE_LIMIT ? this.sendChunks(Buffer.concat(chunks.map((c) => c.chunk), total)) : this.sendGroups(chunks);
    run.then(() => cb(), (err: unknown) => this.writeFailed(err, cb));
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
      (err: unknown) => this.writeFailed(err, cb),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.localEnded && !err) {
      // Our end marker is out: close gracefully so it is delivered (a reset could drop it),
      // and hard if the peer does not close its side soon.
      this.connection.cancel();
      if (!this.remoteEnded) setTimeout(() => this.connection.forceCancel(), LINGER_MS).unref();
    } else this.connection.forceCancel();
    cb(err);
  }

  /**
   * The peer left its session: gracefully (BYE closing) or lost. Called by the session's
   * StreamManager. A graceful leave ends the stream once the peer's end marker has been read
   * (its session ends every stream before it closes); a lost peer is an error unless both
   * sides had already finished.
   */
  peerGone(graceful: boolean, err: PeerlinkError): void {
    if (this.destroyed) return;
    if (graceful) {
      this.peerLeft = true;
      // Not ended yet: the END (→ closeQuietly) or the transport closing without one (an
      // incomplete stream: an error, in pump) settles it.
      if (this.remoteEnded) this.closeQuietly();
      return;
    }
    // Lost after its data was complete, with nothing of ours under way: nothing was lost.
    if (this.remoteEnded && (this.localEnded || (this.writableLength === 0 && !this.writableEnded))) this.closeQuietly();
    else this.destroy(err);
  }

  /**
   * Our session is closing: queued writes go out, then our end marker (as if the app had
   * called end()), then the stream closes without an error. Waits at most `graceMs` for a
   * slow reader on the other side; after that the stream is closed anyway (the peer, whose
   * data is then incomplete, gets an error).
   */
  closeForSession(graceMs: number): Promise<void> {
    if (this.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off('finish', done);
        this.off('close', done);
        this.off('error', done);
        if (!this.destroyed) this.destroy();
        resolve();
      };
      const timer = setTimeout(done, graceMs);
      timer.unref();
      this.once('finish', done);
      this.once('close', done);
      // An error here has its own listener so that closing never makes it an uncaught one.
      this.once('error', done);
      if (this.writableFinished) done();
      else if (!this.writableEnded) this.end();
    });
  }

  /**
   * A send failed. After the peer's end marker (or its graceful leave) that is the peer closing
   * the stream, not a failure: the stream closes quietly once the reader has everything, and
   * the failed write's callback gets the error (Writable does not emit it on a destroyed stream).
   */
  private writeFailed(err: unknown, cb: (err?: Error | null) => void): void {
    const e = toPeerlinkError(err, 'ERR_CONNECTION_RESET');
    if (!this.remoteEnded && !this.peerLeft) return cb(e);
    this.closeQuietly();
    if (this.destroyed) cb(e);
    else this.once('close', () => cb(e));
  }

  /** Closes without an error once the reader has taken everything the peer sent. */
  private closeQuietly(): void {
    if (this.destroyed || this.closingQuietly) return;
    this.closingQuietly = true;
    // destroy() drops what the reader has not consumed: wait for 'end', unless nobody reads.
    if (this.readableEnded || this.readableFlowing === null) this.destroy();
    else this.once('end', () => this.destroy());
  }

  private maybeClose(): void {
    // Both directions finished: close the connection gracefully (Duplex autoDestroy follows).
    if (this.localEnded && this.remoteEnded) this.connection.cancel();
  }
}
