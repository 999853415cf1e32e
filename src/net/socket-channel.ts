/**
 * Channels over a TCP or TLS socket. `SocketChannel` is the byte stream (and the base of the
 * framed channel): reads are delivered as they come, send() resolves at once while the
 * socket is below its high-water mark and on 'drain' otherwise.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { PeerlinkError } from '../errors.js';
import { localOf, remoteOf, RESOLVED, SinkRelay, type Channel, type ChannelSink, type SocketAddress } from './channel.js';
import { toPeerlinkError, type TlsMode } from './net-errors.js';

export class SocketChannel implements Channel {
  readonly kind: 'stream' | 'message' = 'stream';
  /** Holds what arrives before Connection attaches (see SinkRelay). */
  protected readonly sink = new SinkRelay();
  private drainWaiters: Array<{ resolve: () => void; reject: (e: PeerlinkError) => void }> = [];
  private drainPromise: Promise<void> | undefined;
  private closedError: PeerlinkError | undefined;
  private isClosed = false;
  /** Set when we are going away on purpose, so the resulting socket errors are not reported. */
  protected closing = false;
  protected readonly onDataBound = (chunk: Buffer): void => this.onData(chunk);

  constructor(
    /** The socket carrying application data (the TLSSocket for TLS). */
    readonly io: Socket,
    /** The TCP socket underneath. */
    readonly socket: Socket,
    readonly tlsMode: TlsMode,
  ) {
    io.on('data', this.onDataBound);
    io.on('end', () => this.sink.end());
    io.on('drain', () => this.flushDrainWaiters());
    // After end() Node emits no 'drain': sends waiting on it are settled once everything is flushed.
    io.on('finish', () => this.flushDrainWaiters());
    io.on('error', (err) => {
      if (!this.closedError && !this.closing) this.closedError = toPeerlinkError(err, { tls: tlsMode, during: 'transfer' });
    });
    io.on('close', () => this.onClose());
    // A TLS socket whose TCP socket dies does not always emit 'close' itself.
    if (socket !== io) socket.on('close', () => queueMicrotask(() => io.destroy()));
  }

  get tlsSocket(): TLSSocket | undefined {
    return this.tlsMode ? (this.io as TLSSocket) : undefined;
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

  protected onData(chunk: Buffer): void {
    this.sink.data(chunk);
  }

  protected onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const err = this.closedError;
    // Errors capture a stack (costly): build one only for senders actually waiting.
    if (this.drainWaiters.length > 0) this.rejectDrainWaiters(err ?? new PeerlinkError('ERR_CLOSED', 'the connection is closed'));
    this.sink.closed(err);
  }

  /** Fails the channel with `err` (limit exceeded, keepalive timeout, ...). */
  fail(err: PeerlinkError): void {
    if (!this.closedError) this.closedError = err;
    this.closing = true;
    this.io.destroy();
  }

  protected waitDrain(): Promise<void> {
    if (this.isClosed) return Promise.reject(this.closedError ?? new PeerlinkError('ERR_CLOSED', 'the connection is closed'));
    // Every send above the high-water mark shares one promise per drain: pipelined small
    // messages would otherwise build a promise (and a waiter) each.
    this.drainPromise ??= new Promise<void>((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
    return this.drainPromise;
  }

  private flushDrainWaiters(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    this.drainPromise = undefined;
    for (const x of w) x.resolve();
  }

  private rejectDrainWaiters(err: PeerlinkError): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    this.drainPromise = undefined;
    for (const x of w) x.reject(err);
  }

  send(data: Buffer | readonly Buffer[], final: boolean): Promise<void> {
    if (this.isClosed || this.io.writableEnded) return Promise.reject(new PeerlinkError('ERR_CLOSED', 'cannot send: this side of the connection is closed'));
    const io = this.io;
    if (Buffer.isBuffer(data)) {
      if (data.length > 0) io.write(data);
    } else {
      io.cork();
      for (const c of data) if (c.length > 0) io.write(c);
      io.uncork();
    }
    if (final) io.end();
    return io.writableNeedDrain ? this.waitDrain() : RESOLVED;
  }

  pause(): void {
    this.io.pause();
  }

  resume(): void {
    this.io.resume();
  }

  end(): void {
    this.closing = true;
    if (!this.io.writableEnded) this.io.end();
    // A peer that never finishes its side must not keep a cancelled connection alive forever.
    const t = setTimeout(() => this.io.destroy(), 5000);
    t.unref();
    this.io.once('close', () => clearTimeout(t));
  }

  destroy(err?: PeerlinkError): void {
    if (err && !this.closedError) this.closedError = err;
    this.closing = true;
    if (this.tlsMode) {
      // The TLS layer owns the TCP handle: resetting that handle under it crashes Node
      // (segfault), so a TLS connection is destroyed through its TLSSocket only.
      this.io.destroy();
      return;
    }
    const raw = this.socket as Socket & { resetAndDestroy?: () => void };
    // forceCancel: an RST tells the peer at once.
    if (typeof raw.resetAndDestroy === 'function' && !raw.destroyed && raw.readyState === 'open') raw.resetAndDestroy();
    else raw.destroy();
  }

  /**
   * Hands the socket to the caller as a Duplex: our data listener goes, bytes already
   * received but not consumed are put back in front of the stream.
   */
  detach(unconsumed: Buffer[]): Socket {
    this.io.removeListener('data', this.onDataBound);
    this.io.pause();
    for (let i = unconsumed.length - 1; i >= 0; i--) this.io.unshift(unconsumed[i] as Buffer);
    return this.io;
  }
}
