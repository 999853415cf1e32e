/**
 * One control connection to a peer: session messages over a framed (or WebSocket)
 * Connection, with the session's own keepalive.
 *
 * The keepalive lives here rather than in the transport so it is the same for every
 * transport and measures what the application cares about: a PING every
 * `keepaliveInterval`, answered with PONG by the peer's session code, so a frozen process
 * (SIGSTOP: its kernel still ACKs TCP) is detected as surely as a cut cable. Anything that
 * arrives counts as a sign of life; `keepaliveTimeout` of silence fails the channel. Only the
 * dialling side pings, and our own stalls do not count as the peer's silence: the rules are in
 * keepalive-policy.ts.
 */
import { EventEmitter } from 'node:events';
import type { Connection } from '../net/index.js';
import { PeerlinkError, isPeerlinkError } from '../errors.js';
import { decodeDataBatch, decodeMessage, encodeMessage } from './protocol/codec.js';
import { ByeReason, Capability, MessageType, type HelloMessage, type SessionMessage } from './protocol/messages.js';
import { RESOLVED } from '../net/channel.js';
import { bufferView } from '../net/buffer-view.js';
import type { PeerRecord } from './peer-record.js';
import { ReplyQueue } from './reply-queue.js';
import { KeepalivePolicy } from './keepalive-policy.js';
import type { KeepalivePace } from './keepalive-pace.js';

export type ChannelDirection = 'outgoing' | 'incoming';
export type ChannelPhase = 'hello' | 'identified' | 'active' | 'closed';

export interface ControlChannelOptions {
  maxDataSize: number;
  keepaliveInterval: number;
  keepaliveTimeout: number;
  /** Stretches interval and timeout with the session's peer count (keepalive-pace.ts); without it they are fixed. */
  pace?: KeepalivePace;
}

/** A pace this much off the armed interval re-arms the tick (a peer or two more is not worth it). */
const REPACE_FRACTION = 0.1;

export interface ControlChannelEvents {
  /** Every decoded message except PING/PONG, which the channel handles itself. */
  message: [message: SessionMessage];
  /** The channel is closed; `error` says why when it was not our own close(). */
  closed: [error: PeerlinkError | undefined, bye: { reason: number; text: string } | undefined];
}

type OutgoingMessage = Exclude<SessionMessage, { type: 'unknown' }>;

const DATA_HEADER = Buffer.of(MessageType.DATA);
/** Passed explicitly so send() does not build its default options object per message. */
const NOT_FINAL = Object.freeze({ final: false });

/**
 * DATA_BATCH: app messages sent in one tick share one framed message, so the per-message
 * cost is a length and a copy instead of a trip through the transport's send path (which
 * held the session to about half of raw TLS's rate for 100-byte messages). Bounded: a batch
 * goes out when it reaches BATCH_BYTES, and payloads above BATCH_PAYLOAD_MAX go alone.
 */
const BATCH_BYTES = 64 * 1024;
/**
 * The first batch buffer of a connection, and its size again after light ticks: a peer that
 * sends a message now and then holds 4 KiB, not 64 KiB (docs/memory.md); one batch that fills
 * up makes the next buffer BATCH_BYTES.
 */
const BATCH_BYTES_MIN = 4 * 1024;
const BATCH_PAYLOAD_MAX = 8 * 1024;
/**
 * Space kept in front of each batch for the transport's frame header (Connection.send with
 * `headroom`): the batch and its length prefix go out as one buffer, one TLS write.
 */
const HEADROOM = 4;
const BATCH_SEND = Object.freeze({ final: false, headroom: HEADROOM });

/**
 * Replies we owe (reply-queue.ts): requests while a reply is pending after which reading
 * stops, and replies (other than the coalesced PONG) owed meanwhile. An honest peer asks
 * once per keepalive interval.
 */
const REPLY_BACKLOG = 8;
const REPLY_QUEUE = 16;

let nextChannelId = 1;

/** A big-endian uint32 at `off` (the caller checked the bounds): cheaper than readUInt32BE per message. */
function u32(b: Buffer, off: number): number {
  return ((b[off] as number) * 0x1000000 + (((b[off + 1] as number) << 16) | ((b[off + 2] as number) << 8) | (b[off + 3] as number)));
}

export class ControlChannel extends EventEmitter<ControlChannelEvents> {
  /** For logs. */
  readonly id = nextChannelId++;
  readonly connection: Connection;
  readonly direction: ChannelDirection;
  phase: ChannelPhase = 'hello';
  #hello: HelloMessage | undefined;
  /** The peer takes DATA_BATCH (from its HELLO). */
  private batching = false;
  /**
   * Largest app message that can go straight to sendData(): the smaller of the peer's and our
   * maxMessageSize once its HELLO arrived, 0 before and once closed (PeerSession.send's fast path).
   */
  sendLimit = 0;
  /** The peer this connection belongs to, once its HELLO was accepted. */
  record: PeerRecord | undefined;
  /** Generation of this connection once WELCOMEd (0 before). */
  generation = 0;
  /** Smoothed round-trip time from PING/PONG, ms. */
  rttMs: number | undefined;
  /** Messages of unknown type received (ignored). */
  unknownMessages = 0;
  /** Each keepalive round trip as it is measured, ms (the link-quality estimate's input). */
  onRtt: ((sampleMs: number) => void) | undefined;
  private readonly keepalive: KeepalivePolicy;
  private readonly opts: ControlChannelOptions;
  private timer: NodeJS.Timeout | undefined;
  private pingSeq = 0;
  private readonly pingsSent = new Map<number, number>();
  /** roundTrip() calls waiting for the PONG of their PING, by seq. */
  private readonly probes = new Map<number, (alive: boolean) => void>();
  private closedBye: { reason: number; text: string } | undefined;
  /**
   * Receives DATA payloads directly, without a decoded message object or an event: at
   * millions of 100-byte messages per second those allocations and the emit were a large
   * share of the receive cost. Unset, DATA goes through the `message` event like the rest.
   */
  onData: ((payload: Buffer) => void) | undefined;
  /** The batch being filled: buf[start, start + HEADROOM) is headroom, then its type byte, up to buf[used]. */
  private batchBuf: Buffer | undefined;
  private batchStart = 0;
  private batchUsed = 0;
  private batchCount = 0;
  private batchSize = BATCH_BYTES_MIN;
  /** A batch filled up since the last tick's flush (the tick was not light). */
  private batchFilled = false;
  private batchScheduled = false;
  /** Set while the transport is above its high-water mark after a batch: sends wait on it. */
  private blocked: Promise<void> | undefined;
  private readonly flushBound = (): void => {
    this.batchScheduled = false;
    const light = !this.batchFilled && (this.batchUsed - this.batchStart) * 4 < this.batchSize;
    this.batchFilled = false;
    this.flushBatch();
    if (light && this.batchSize > BATCH_BYTES_MIN) {
      // A light tick: the next buffer is smaller, and a larger leftover is let go.
      this.batchSize >>= 1;
      if (this.batchBuf !== undefined && this.batchBuf.length - this.batchUsed > this.batchSize) this.batchBuf = undefined;
    }
  };
  /** PONGs and other replies the peer asked for: coalesced, bounded, never ahead of reading. */
  private readonly replies: ReplyQueue<OutgoingMessage>;

  constructor(connection: Connection, direction: ChannelDirection, opts: ControlChannelOptions) {
    super();
    this.connection = connection;
    this.direction = direction;
    this.opts = opts;
    this.keepalive = new KeepalivePolicy({ interval: opts.keepaliveInterval, timeout: opts.keepaliveTimeout, pinger: direction === 'outgoing' }, performance.now());
    this.replies = new ReplyQueue((m) => this.send(m), { backlogLimit: REPLY_BACKLOG, queueLimit: REPLY_QUEUE });
  }

  /**
   * Sends a reply the peer asked for (STREAM_REJECT, ...) through the reply queue: at once
   * while the transport takes it, otherwise owed (at most a few; `coalesce` keeps only the
   * latest of one kind). Use send() for what we chose to send, reply() for what the peer's
   * request makes us send (docs/security.md "Replies we owe").
   */
  reply(msg: OutgoingMessage, coalesce?: string): void {
    if (this.phase === 'closed') return;
    this.replies.reply(msg, coalesce);
  }

  /** The peer's HELLO, once received. */
  get hello(): HelloMessage | undefined {
    return this.#hello;
  }

  set hello(h: HelloMessage | undefined) {
    this.#hello = h;
    this.batching = h !== undefined && (h.capabilities & Capability.DATA_BATCH) !== 0;
    this.sendLimit = h !== undefined && this.phase !== 'closed' ? Math.min(h.maxMessageSize, this.opts.maxDataSize) : 0;
  }

  /** The keepalive PING period now, ms (keepaliveInterval, stretched by the pace). */
  get keepaliveInterval(): number {
    return this.keepalive.interval;
  }

  /** The silence after which the peer is dropped now, ms (keepaliveTimeout, stretched by the pace). */
  get keepaliveTimeout(): number {
    return this.keepalive.timeout;
  }

  /** Milliseconds since anything last arrived. */
  get silentFor(): number {
    return this.keepalive.silentFor(performance.now());
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** How long the oldest keepalive PING still unanswered has waited, ms (0: none). */
  get pingOverdueMs(): number {
    for (const sent of this.pingsSent.values()) return performance.now() - sent;
    return 0;
  }

  /** Starts the keepalive and the read loop. `first` is a message already read by the caller. */
  start(first?: SessionMessage): void {
    const now = performance.now();
    this.keepalive.received(now);
    this.arm(this.opts.pace?.interval() ?? this.opts.keepaliveInterval, now);
    if (first) this.dispatch(first);
    void this.readLoop();
  }

  /** Sends a message; rejects if the channel closes first. */
  send(msg: OutgoingMessage): Promise<void> {
    if (this.phase === 'closed') return Promise.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', 'the connection to this peer is closed'));
    // Whatever is batched was sent first.
    this.flushBatch();
    const parts = encodeMessage(msg);
    // One message from several chunks: the DATA header and the app's payload, never copied together.
    return this.connection.send(parts.length === 1 ? (parts[0] as Buffer) : parts);
  }

  /** What send() batched goes to the transport now (handshake messages the peer is waiting for). */
  flush(): void {
    this.connection.flush();
  }

  /** Sends one app message (DATA) — the hot path, without building a message object. */
  sendData(payload: Buffer): Promise<void> {
    if (this.phase === 'closed') return Promise.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', 'the connection to this peer is closed'));
    const n = payload.length;
    if (n > BATCH_PAYLOAD_MAX || !this.batching) {
      this.flushBatch();
      return this.connection.send(n > 0 ? [DATA_HEADER, payload] : DATA_HEADER, NOT_FINAL);
    }
    let buf = this.batchBuf;
    if (buf === undefined || this.batchCount === 0 || this.batchUsed + 4 + n > buf.length) {
      // A new batch: after the previous one (sent), or in a fresh buffer when that is full.
      if (this.batchCount > 0) {
        this.batchSize = BATCH_BYTES;
        this.batchFilled = true;
      }
      this.flushBatch();
      buf = this.batchBuf;
      if (buf === undefined || this.batchStart + HEADROOM + 1 + 4 + n > buf.length) {
        buf = this.batchBuf = Buffer.allocUnsafe(Math.max(this.batchSize, HEADROOM + 1 + 4 + n));
        this.batchStart = 0;
      }
      buf[this.batchStart + HEADROOM] = MessageType.DATA_BATCH;
      this.batchUsed = this.batchStart + HEADROOM + 1;
    }
    // The length, big-endian, by hand: measurably cheaper per message than writeUInt32BE's checks.
    const at = this.batchUsed;
    buf[at] = n >>> 24;
    buf[at + 1] = n >>> 16;
    buf[at + 2] = n >>> 8;
    buf[at + 3] = n;
    // TypedArray#set: a V8 builtin, cheaper than Buffer#copy's argument handling for small payloads.
    if (n > 0) buf.set(payload, this.batchUsed + 4);
    this.batchUsed += 4 + n;
    this.batchCount++;
    if (!this.batchScheduled) {
      this.batchScheduled = true;
      process.nextTick(this.flushBound);
    }
    // Accepted (it is in the batch); while the transport is above its high-water mark the
    // caller waits for it like for a direct send.
    return this.blocked ?? RESOLVED;
  }

  /** Sends the batch being filled, if any. */
  private flushBatch(): void {
    const buf = this.batchBuf;
    if (buf === undefined || this.batchCount === 0) return;
    const start = this.batchStart;
    const end = this.batchUsed;
    const count = this.batchCount;
    this.batchCount = 0;
    // The transport may keep a reference to what it is given, so the bytes sent are never
    // reused: the next batch starts after them (or in a new buffer).
    if (buf.length - end >= 1024) {
      this.batchStart = end;
      this.batchUsed = end;
    } else this.batchBuf = undefined;
    if (this.phase === 'closed') return;
    let p: Promise<void>;
    if (count === 1) {
      // One message in this tick (request/response traffic): plain DATA, 4 bytes shorter. Its
      // type byte goes over the batch's last length byte; the headroom moves along with it.
      const at = start + HEADROOM + 1 + 3;
      buf[at] = MessageType.DATA;
      p = this.connection.send(buf.subarray(at - HEADROOM, end), BATCH_SEND);
    } else p = this.connection.send(buf.subarray(start, end), BATCH_SEND);
    if (p === RESOLVED) return;
    this.blocked = p;
    const clear = (): void => {
      if (this.blocked === p) this.blocked = undefined;
    };
    // A failed send closes the connection, which reports it; here it only unblocks.
    p.then(clear, clear);
  }

  /**
   * Sends a PING now; resolves true when its PONG arrives, false when the channel closes first
   * or `deadlineMs` passes. The session's liveness check of a connection whose peer id another
   * connection claims (dedup.ts): only a peer that is really there can answer it.
   */
  roundTrip(deadlineMs: number): Promise<boolean> {
    if (this.phase === 'closed') return Promise.resolve(false);
    const seq = (this.pingSeq = (this.pingSeq + 1) >>> 0);
    return new Promise((resolve) => {
      const settle = (alive: boolean): void => {
        clearTimeout(timer);
        this.probes.delete(seq);
        resolve(alive);
      };
      const timer = setTimeout(settle, deadlineMs, false);
      timer.unref();
      this.probes.set(seq, settle);
      this.keepalive.pinged(performance.now());
      this.send({ type: 'ping', seq }).catch(() => settle(false));
    });
  }

  /** Sends BYE (best effort) and closes gracefully; no `closed` error is reported. */
  close(reason: number, text = ''): void {
    if (this.phase === 'closed') return;
    this.closedBye = { reason, text };
    this.send({ type: 'bye', reason, text }).catch(() => undefined);
    this.finish(undefined);
    this.connection.cancel();
  }

  /** Closes at once (no BYE): the peer is presumed gone. */
  destroy(error?: PeerlinkError): void {
    if (this.phase === 'closed') return;
    this.finish(error);
    this.connection.forceCancel();
  }

  private finish(error: PeerlinkError | undefined): void {
    this.phase = 'closed';
    this.sendLimit = 0;
    this.replies.close();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.pingsSent.clear();
    for (const settle of [...this.probes.values()]) settle(false);
    this.emit('closed', error, this.closedBye);
  }

  /** (Re)starts the keepalive tick at `interval`, with the timeout that goes with it. */
  private arm(interval: number, now: number): void {
    if (this.timer) clearInterval(this.timer);
    const timeout = this.opts.pace?.timeoutFor(interval) ?? this.opts.keepaliveTimeout;
    this.keepalive.repace(interval, timeout, now);
    this.timer = setInterval(() => this.tick(), interval);
    this.timer.unref();
  }

  private tick(): void {
    if (this.phase === 'closed') return;
    const timeout = this.keepalive.timeout;
    // A peer that keeps asking for replies but has not taken the pending one for a keepalive
    // window is not reading: it is dropped like a silent one.
    if (this.replies.backedUp && this.replies.pendingFor > timeout) {
      this.closedBye = { reason: ByeReason.TIMEOUT, text: 'replies not read' };
      this.destroy(new PeerlinkError('ERR_KEEPALIVE_TIMEOUT', `the peer has not read our replies for ${Math.round(this.replies.pendingFor)} ms while asking for more (keepalive timeout ${timeout} ms)`));
      return;
    }
    const now = performance.now();
    const k = this.keepalive.tick(now);
    if (k.dead) {
      this.closedBye = { reason: ByeReason.TIMEOUT, text: 'keepalive timeout' };
      const stalled = k.stalledMs > 0 ? `, of which our own event loop was stalled ${Math.round(k.stalledMs)} ms` : '';
      this.destroy(new PeerlinkError('ERR_KEEPALIVE_TIMEOUT', `nothing heard from the peer for ${Math.round(k.silentMs)} ms${stalled} (keepalive timeout ${timeout} ms)`));
      return;
    }
    if (k.ping) this.sendPing(now);
    const paced = this.opts.pace?.interval();
    if (paced !== undefined && Math.abs(paced - this.keepalive.interval) > this.keepalive.interval * REPACE_FRACTION) this.arm(paced, now);
  }

  /** A keepalive PING (its PONG gives a round-trip sample). */
  private sendPing(now: number): void {
    const seq = (this.pingSeq = (this.pingSeq + 1) >>> 0);
    this.pingsSent.set(seq, now);
    // Only the last few pings matter for RTT; a peer that never answers must not grow the map.
    if (this.pingsSent.size > 8) this.pingsSent.delete(this.pingsSent.keys().next().value as number);
    this.send({ type: 'ping', seq }).catch(() => undefined);
  }

  private async readLoop(): Promise<void> {
    // Drain what is already queued synchronously: one promise and microtask per 100-byte
    // message would be a large share of the receive cost.
    const conn = this.connection;
    for (;;) {
      if (this.replies.backedUp) {
        // The peer asks faster than it reads our replies: stop reading until they drain (the
        // transport then stops reading too once the receive queue is full).
        await this.replies.whenAccepted();
        if (this.phase === 'closed') return;
        continue;
      }
      let frame: Buffer | null | undefined;
      let drained = true;
      try {
        frame = conn.tryReceiveMessage();
        if (frame === undefined) {
          drained = false;
          frame = await conn.receiveMessage();
        }
      } catch (err) {
        if (this.phase !== 'closed') this.destroy(toPeerlinkError(err, 'ERR_CONNECTION_RESET'));
        return;
      }
      if (this.phase === 'closed') return;
      if (frame === null) {
        this.destroy(new PeerlinkError('ERR_CONNECTION_RESET', 'the peer closed the connection'));
        return;
      }
      // Once per read, not per message: the messages drained synchronously after it arrived
      // in the same tick, and the keepalive check only needs millisecond precision.
      if (!drained) this.keepalive.received(performance.now());
      const onData = this.onData;
      if (onData !== undefined && frame.length > 0 && frame[0] === MessageType.DATA && this.phase === 'active') {
        if (frame.length - 1 > this.opts.maxDataSize) {
          this.protocolFailure(new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `peer sent a ${frame.length - 1}-byte message; the limit is ${this.opts.maxDataSize} bytes`));
          return;
        }
        onData(frame.subarray(1));
        continue;
      }
      if (onData !== undefined && frame.length > 0 && frame[0] === MessageType.DATA_BATCH && this.phase === 'active') {
        // Walked in place (no payload array): the layout is checked up front by a scan of the
        // lengths, so a malformed batch delivers nothing, as decodeDataBatch would.
        const max = this.opts.maxDataSize;
        let off = 1;
        let ok = frame.length > 1;
        while (ok && off < frame.length) {
          if (frame.length - off < 4) ok = false;
          else {
            const len = u32(frame, off);
            if (len > max || frame.length - off - 4 < len) ok = false;
            else off += 4 + len;
          }
        }
        if (!ok) {
          let e = new PeerlinkError('ERR_MALFORMED_FRAME', 'malformed session message: DATA_BATCH');
          try {
            decodeDataBatch(frame.subarray(1), max); // throws the precise error
          } catch (err) {
            e = toPeerlinkError(err, 'ERR_PROTOCOL');
          }
          this.protocolFailure(e);
          return;
        }
        // One view per message, built from the frame's ArrayBuffer read once (bufferView: less
        // than half the cost of subarray, which was the largest single cost per message here).
        const ab = frame.buffer;
        const base = frame.byteOffset;
        for (off = 1; off < frame.length && (this.phase as ChannelPhase) !== 'closed'; ) {
          const len = u32(frame, off);
          onData(bufferView(ab, base + off + 4, len));
          off += 4 + len;
        }
        continue;
      }
      let msg: SessionMessage;
      try {
        msg = decodeMessage(frame, { maxDataSize: this.opts.maxDataSize });
      } catch (err) {
        this.protocolFailure(toPeerlinkError(err, 'ERR_PROTOCOL'));
        return;
      }
      this.dispatch(msg);
    }
  }

  /** The peer broke the protocol: BYE with the reason, then close. */
  private protocolFailure(e: PeerlinkError): void {
    this.closedBye = { reason: ByeReason.PROTOCOL_ERROR, text: e.message };
    this.send({ type: 'bye', reason: ByeReason.PROTOCOL_ERROR, text: e.message }).catch(() => undefined);
    this.finish(e);
    this.connection.cancel();
  }

  private dispatch(msg: SessionMessage): void {
    switch (msg.type) {
      case 'ping': {
        this.replies.reply({ type: 'pong', seq: msg.seq }, 'pong');
        // The answering side's own round-trip sample now and then, right behind the PONG.
        const now = performance.now();
        if (this.keepalive.piggyback(now)) this.sendPing(now);
        return;
      }
      case 'pong': {
        // A PONG answers its PING and every earlier one: the peer coalesces owed PONGs
        // (reply-queue.ts), so a probe's own PONG may be replaced by a later keepalive's.
        for (const [seq, settle] of this.probes) if (((msg.seq - seq) >>> 0) < 0x80000000) settle(true);
        const sent = this.pingsSent.get(msg.seq);
        // Earlier keepalive PINGs are answered too (coalesced), so none of them is overdue.
        for (const seq of this.pingsSent.keys()) if (((msg.seq - seq) >>> 0) < 0x80000000) this.pingsSent.delete(seq);
        if (sent !== undefined) {
          const sample = performance.now() - sent;
          this.rttMs = this.rttMs === undefined ? sample : this.rttMs * 0.875 + sample * 0.125;
          this.onRtt?.(sample);
        }
        return;
      }
      case 'unknown':
        this.unknownMessages++;
        return;
      case 'bye':
        this.closedBye = { reason: msg.reason, text: msg.text };
        this.finish(new PeerlinkError(msg.reason === ByeReason.CLOSING ? 'ERR_CLOSED' : 'ERR_CONNECTION_RESET', `peer closed the connection: ${byeReasonText(msg.reason)}${msg.text ? ` (${msg.text})` : ''}`));
        this.connection.cancel();
        return;
      default:
        this.emit('message', msg);
    }
  }
}

export function toPeerlinkError(err: unknown, fallback: 'ERR_CONNECTION_RESET' | 'ERR_PROTOCOL' | 'ERR_INTERNAL'): PeerlinkError {
  if (isPeerlinkError(err)) return err;
  return new PeerlinkError(fallback, err instanceof Error ? err.message : String(err), { cause: err });
}

/** BYE reasons as text, built once (every closed connection names its reason). */
const BYE_TEXT = new Map<number, string>(Object.entries(ByeReason).map(([k, v]) => [v, k.toLowerCase().replace(/_/g, ' ')]));

export function byeReasonText(reason: number): string {
  return BYE_TEXT.get(reason) ?? `reason ${reason}`;
}
