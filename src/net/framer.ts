/**
 * Message framing over a byte stream (Network framework's NWProtocolFramer).
 *
 * The default framer prefixes every message with its length as a 32-bit big-endian
 * integer. The high bit of the length word marks a control frame (keepalive ping / pong),
 * so messages are limited to 2^31 - 1 bytes; control frames are only ever sent to a peer
 * that asked for keepalives or pinged first, and every peerlink framer answers pings.
 *
 * Decoding keeps a list of received chunks and only concatenates when a frame is complete
 * (re-concatenating on every chunk is quadratic for large frames), and checks the length
 * against the limit before allocating anything.
 */
import { PeerlinkError } from '../errors.js';
import { bufferView } from './buffer-view.js';

export type Frame =
  | { kind: 'message'; data: Buffer }
  | { kind: 'ping'; data: Buffer }
  | { kind: 'pong'; data: Buffer };

/** A frame to encode; a message may be given as several chunks (one message, not joined). */
export type OutgoingFrame =
  | { kind: 'message'; data: Buffer | readonly Buffer[] }
  | { kind: 'ping'; data: Buffer }
  | { kind: 'pong'; data: Buffer };

/** Decodes frames from the chunks of one byte stream. One decoder per connection. */
export interface FrameDecoder {
  /** Adds received bytes. Throws PeerlinkError (ERR_MESSAGE_TOO_LARGE, ERR_MALFORMED_FRAME). */
  push(chunk: Buffer): void;
  /** The next complete frame, or undefined when more bytes are needed. */
  next(): Frame | undefined;
  /** Bytes held that do not form a complete frame yet. */
  readonly buffered: number;
  /**
   * Changes the largest message accepted from the next frame header on (a frame whose header
   * was already read is finished under the old limit). Optional for custom framers: without
   * it, FramedChannel enforces a lowered limit on what the decoder buffers and delivers.
   */
  setMaxMessageSize?(n: number): void;
}

/** A pluggable framer. */
export interface Framer {
  readonly name: string;
  /** True when the framer can carry ping / pong control frames (needed for keepalives). */
  readonly supportsControlFrames: boolean;
  /** The chunks to write for one frame: header and payload, never copied together. */
  encode(frame: OutgoingFrame): Buffer[];
  createDecoder(maxMessageSize: number): FrameDecoder;
}

const CONTROL_BIT = 0x80000000;
const CONTROL_PING = 1;
const CONTROL_PONG = 2;
/** Largest message the length prefix can describe. */
export const MAX_FRAMED_MESSAGE = 0x7fffffff;
/** Control payloads are tiny (an 8-byte timestamp): anything larger is a protocol error. */
const MAX_CONTROL_PAYLOAD = 64;

/** Callbacks for LengthPrefixDecoder.drain (the allocation-free path used by FramedChannel). */
export interface FrameSink {
  message(data: Buffer): void;
  control(kind: 'ping' | 'pong', data: Buffer): void;
}

/** Callbacks for LengthPrefixDecoder.drainParts (partial message delivery). */
export interface PartSink {
  /** A piece of a message as it arrived (a view, never copied); `complete` on its last piece. */
  part(data: Buffer, complete: boolean): void;
  control(kind: 'ping' | 'pong', data: Buffer): void;
}

const EMPTY = Buffer.alloc(0);

export class LengthPrefixDecoder implements FrameDecoder {
  private chunks: Buffer[] = [];
  /** Read offset into chunks[0]. */
  private off = 0;
  private held = 0;
  private need = -1; // payload length of the frame being assembled, -1 = reading header
  private control = false;
  /**
   * chunks[0]'s ArrayBuffer and byteOffset, read once per chunk: take() builds each frame's
   * view with bufferView(), and `Buffer#buffer` costs about as much as the view itself.
   */
  private frontBuffer: ArrayBufferLike | undefined;
  private frontOffset = 0;

  private maxMessageSize: number;

  constructor(maxMessageSize: number) {
    this.maxMessageSize = Math.min(maxMessageSize, MAX_FRAMED_MESSAGE);
  }

  get buffered(): number {
    return this.held;
  }

  /**
   * A limit that changes at run time: a connection that has not identified itself yet is held
   * to a small first frame, raised once it has (docs/security.md "Before HELLO").
   */
  setMaxMessageSize(n: number): void {
    this.maxMessageSize = Math.min(n, MAX_FRAMED_MESSAGE);
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.chunks.push(chunk) === 1) this.front();
    this.held += chunk.length;
  }

  next(): Frame | undefined {
    if (this.need < 0) {
      if (this.held < 4) return undefined;
      const word = this.peekUInt32();
      this.control = (word & CONTROL_BIT) !== 0;
      const len = word & MAX_FRAMED_MESSAGE;
      if (this.control ? len > MAX_CONTROL_PAYLOAD : len > this.maxMessageSize) {
        throw new PeerlinkError(
          this.control ? 'ERR_MALFORMED_FRAME' : 'ERR_MESSAGE_TOO_LARGE',
          this.control
            ? `control frame of ${len} bytes (at most ${MAX_CONTROL_PAYLOAD})`
            : `peer sent a ${len}-byte message; the limit is ${this.maxMessageSize} bytes (raise maxMessageSize on both sides if this is expected)`,
        );
      }
      this.consume(4);
      this.need = len;
    }
    if (this.held < this.need) return undefined;
    const data = this.take(this.need);
    this.need = -1;
    if (!this.control) return { kind: 'message', data };
    const type = data[0];
    if (type === CONTROL_PING) return { kind: 'ping', data: data.subarray(1) };
    if (type === CONTROL_PONG) return { kind: 'pong', data: data.subarray(1) };
    throw new PeerlinkError('ERR_MALFORMED_FRAME', `unknown control frame type ${String(type)}`);
  }

  /** Delivers every complete frame to `sink` (no Frame objects). Throws like next(). */
  drain(sink: FrameSink): void {
    for (;;) {
      const h = this.step(sink);
      if (h === 'more') return;
      if (h === 'control') continue;
      if (this.held < this.need) return;
      const data = this.take(this.need);
      this.need = -1;
      sink.message(data);
    }
  }

  /**
   * Delivers messages in pieces as their bytes arrive: each piece is a view of one received
   * chunk, so nothing is copied or reassembled (a message is never held whole). A zero-length
   * message is one empty, complete piece. Control frames (tiny) are still delivered whole.
   * Throws like next().
   */
  drainParts(sink: PartSink): void {
    for (;;) {
      const h = this.step(sink);
      if (h === 'more') return;
      if (h === 'control') continue;
      if (this.need === 0) {
        // only right after a header: a piece that ends a message sets need to -1
        this.need = -1;
        sink.part(EMPTY, true);
        continue;
      }
      if (this.held === 0) return;
      const first = this.chunks[0] as Buffer;
      const n = Math.min(this.need, first.length - this.off);
      const data = this.take(n);
      this.need -= n;
      const complete = this.need === 0;
      if (complete) this.need = -1;
      sink.part(data, complete);
    }
  }

  /**
   * Where the decoder stands before reading payload: 'more' (wait for bytes), 'control' (a
   * control frame was delivered: go on), 'data' (inside a data frame, `need` bytes to go).
   */
  private step(sink: Pick<PartSink, 'control'>): 'data' | 'control' | 'more' {
    if (this.control && this.need >= 0) return this.controlFrame(sink) ? 'control' : 'more';
    return this.need < 0 ? this.beginFrame(sink) : 'data';
  }

  /**
   * At a frame boundary: 'data' when a data frame's header within the limit was read (`need`
   * is its length), 'control' when a control frame was delivered whole, 'more' when more bytes
   * are needed. Over-limit and malformed headers throw (through next()).
   */
  private beginFrame(sink: Pick<PartSink, 'control'>): 'data' | 'control' | 'more' {
    if (this.held < 4) return 'more';
    const word = this.peekUInt32();
    if ((word & CONTROL_BIT) !== 0 || (word & MAX_FRAMED_MESSAGE) > this.maxMessageSize) {
      // rare cases: let next() do the checks and build the frame
      return this.controlFrame(sink) ? 'control' : 'more';
    }
    this.consume(4);
    this.control = false;
    this.need = word;
    return 'data';
  }

  /** The control frame (or over-limit header) at the front, through next(); false when incomplete. */
  private controlFrame(sink: Pick<PartSink, 'control'>): boolean {
    // Only called at a control header (or inside a control frame) or an over-limit header,
    // for which next() throws: it never returns a data frame here.
    const f = this.next();
    if (!f) return false;
    if (f.kind !== 'message') sink.control(f.kind, f.data);
    return true;
  }

  private peekUInt32(): number {
    const first = this.chunks[0] as Buffer;
    if (first.length - this.off >= 4) return first.readUInt32BE(this.off);
    const b = Buffer.allocUnsafe(4);
    let got = 0;
    for (let i = 0; got < 4; i++) {
      const c = this.chunks[i] as Buffer;
      const from = i === 0 ? this.off : 0;
      const n = Math.min(c.length - from, 4 - got);
      c.copy(b, got, from, from + n);
      got += n;
    }
    return b.readUInt32BE(0);
  }

  /** Drops chunks[0] (read to its end). */
  private shift(): void {
    this.chunks.shift();
    this.off = 0;
    this.front();
  }

  private front(): void {
    const c = this.chunks[0];
    this.frontBuffer = c?.buffer;
    this.frontOffset = c === undefined ? 0 : c.byteOffset;
  }

  /** Drops n bytes from the front without allocating. */
  private consume(n: number): void {
    this.held -= n;
    while (n > 0) {
      const c = this.chunks[0] as Buffer;
      const left = c.length - this.off;
      if (n < left) {
        this.off += n;
        return;
      }
      n -= left;
      this.shift();
    }
  }

  /**
   * Removes n bytes from the front; a view (no copy) when they lie in one chunk. The front
   * chunk is tracked by offset, so reading a small frame costs one Buffer view, not three.
   */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    this.held -= n;
    const first = this.chunks[0] as Buffer;
    const left = first.length - this.off;
    if (left >= n) {
      const out = bufferView(this.frontBuffer as ArrayBufferLike, this.frontOffset + this.off, n);
      if (left === n) this.shift();
      else this.off += n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length - this.off, n - got);
      c.copy(out, got, this.off, this.off + k);
      got += k;
      if (this.off + k === c.length) this.shift();
      else this.off += k;
    }
    return out;
  }
}

/** The default framer: 4-byte big-endian length, high bit = control frame. */
export const lengthPrefixFramer: Framer = {
  name: 'length-prefix',
  supportsControlFrames: true,
  encode(frame: OutgoingFrame): Buffer[] {
    const header = Buffer.allocUnsafe(4);
    if (frame.kind === 'message') {
      const d = frame.data;
      let len = 0;
      if (Buffer.isBuffer(d)) len = d.length;
      else for (const c of d) len += c.length;
      if (len > MAX_FRAMED_MESSAGE) {
        throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `message of ${len} bytes exceeds the framer's limit of ${MAX_FRAMED_MESSAGE}`);
      }
      header.writeUInt32BE(len, 0);
      if (Buffer.isBuffer(d)) return len > 0 ? [header, d] : [header];
      return [header, ...d];
    }
    header.writeUInt32BE((CONTROL_BIT | (frame.data.length + 1)) >>> 0, 0);
    const type = Buffer.of(frame.kind === 'ping' ? CONTROL_PING : CONTROL_PONG);
    return [header, type, frame.data];
  },
  createDecoder(maxMessageSize: number): FrameDecoder {
    return new LengthPrefixDecoder(Math.min(maxMessageSize, MAX_FRAMED_MESSAGE));
  },
};
