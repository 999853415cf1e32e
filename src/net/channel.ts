/**
 * The internal interface between a Connection (state, queues, counters) and the protocol
 * stack that carries its bytes (stream, framed, ws, udp). Not exported from the package.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { PeerlinkError } from '../errors.js';

/** What a channel reports to its Connection. */
export interface ChannelSink {
  /** Byte-stream data. */
  data(chunk: Buffer): void;
  /** One whole message (framer, ws, udp). */
  message(msg: Buffer): void;
  /** A piece of a message, after deliverPartialMessages(); `complete` on its last piece. */
  part(data: Buffer, complete: boolean): void;
  /** The peer finished sending (FIN, close_notify, WebSocket close). */
  end(): void;
  /** The channel is gone: cleanly (undefined) or with an error. Called once. */
  closed(err: PeerlinkError | undefined): void;
  /** A keepalive round trip, in ms. */
  rtt(ms: number): void;
  /** A keepalive ping went out. */
  keepaliveSent(): void;
}

export const RESOLVED: Promise<void> = Promise.resolve();

/**
 * The sink a channel reports to from its construction on. A client's channel is made when its
 * handshake completes, but Connection attaches its sink only a few promise ticks later
 * (establish → ConnectionAttempts.run → becomeReady). What the peer sent right behind the handshake — in
 * the same read as a WebSocket's 101 response or TLS's last flight, or a listener's first
 * message and its close right after — is decoded in between, before any new read: it is held
 * here in order and replayed at attach, never dropped. No socket read happens in those ticks,
 * so the hold is bounded by what was already read.
 */
export class SinkRelay implements ChannelSink {
  private target: ChannelSink | undefined;
  private held: Array<(s: ChannelSink) => void> | undefined = [];

  attach(sink: ChannelSink): void {
    this.target = sink;
    const held = this.held ?? [];
    this.held = undefined;
    for (const call of held) call(sink);
  }

  private pass(call: (s: ChannelSink) => void): void {
    if (this.target) call(this.target);
    else this.held?.push(call);
  }

  data(chunk: Buffer): void {
    this.pass((s) => s.data(chunk));
  }

  message(msg: Buffer): void {
    this.pass((s) => s.message(msg));
  }

  part(data: Buffer, complete: boolean): void {
    this.pass((s) => s.part(data, complete));
  }

  end(): void {
    this.pass((s) => s.end());
  }

  closed(err: PeerlinkError | undefined): void {
    this.pass((s) => s.closed(err));
  }

  rtt(ms: number): void {
    this.pass((s) => s.rtt(ms));
  }

  keepaliveSent(): void {
    this.pass((s) => s.keepaliveSent());
  }
}

export interface Channel {
  readonly kind: 'stream' | 'message';
  /** The TCP socket underneath (for addresses and socket options); undefined for UDP. */
  readonly socket: Socket | undefined;
  readonly tlsSocket: TLSSocket | undefined;
  /** Local / remote address and port. */
  readonly local: { address: string; port: number } | undefined;
  readonly remote: { address: string; port: number } | undefined;
  attach(sink: ChannelSink): void;
  /**
   * Sends one message (message channels: the chunks are one message) or bytes (stream).
   * Returns RESOLVED while the transport is below its high-water mark.
   */
  send(data: Buffer | readonly Buffer[], final: boolean): Promise<void>;
  /** Bytes of frame header a sendWithHeadroom() caller reserves; absent = no such header. */
  readonly headroom?: number;
  /**
   * Sends the message data.subarray(headroom) (non-empty), writing the frame header into the
   * `headroom` bytes before it (headroom ≥ this.headroom) so header and message are one buffer.
   */
  sendWithHeadroom?(data: Buffer, headroom: number, final: boolean): Promise<void>;
  /**
   * From now on, deliver messages in pieces as they arrive (sink.part) instead of whole.
   * Optional: a channel without it keeps delivering whole messages.
   */
  deliverPartialMessages?(): void;
  /**
   * Changes the largest message the receive side accepts, from the next message on (message
   * channels: framer and ws; a larger one fails the channel with ERR_MESSAGE_TOO_LARGE before
   * it is buffered). Optional: byte streams and UDP have no such limit to change.
   */
  setMaxMessageSize?(n: number): void;
  /**
   * Writes now what send() batched for the end of the tick (the framer merges a tick's small
   * messages into one write). Optional: channels that write at once need none.
   */
  flush?(): void;
  /** Stop / restart delivering data (receive-side backpressure). */
  pause(): void;
  resume(): void;
  /** Graceful close: flush, then finish (FIN / close_notify / WebSocket close). */
  end(): void;
  /** Immediate close. */
  destroy(err?: PeerlinkError): void;
}

export type SocketAddress = { address: string; port: number };

/** The local address and port of a TCP socket, once known. */
export function localOf(s: Socket): SocketAddress | undefined {
  return s.localAddress !== undefined && s.localPort !== undefined ? { address: s.localAddress, port: s.localPort } : undefined;
}

/** The remote address and port of a TCP socket, once known. */
export function remoteOf(s: Socket): SocketAddress | undefined {
  return s.remoteAddress !== undefined && s.remotePort !== undefined ? { address: s.remoteAddress, port: s.remotePort } : undefined;
}
