/**
 * Connection: Network framework's NWConnection for Node.
 *
 * States: setup → preparing → ready; waiting(error) (retried with back-off, or at once on
 * restart()); failed(error); cancelled (by the owner, or ended cleanly in both directions).
 * A send() promise resolves when the transport has accepted the data — that is the flow
 * control; receive()/receiveMessage()/messages() pull from a bounded queue.
 * Its parts: connection-types.ts (events, options, the Listener's hand-over),
 * connection-attempts.ts (establishing a dialled connection, its timeout and retry back-off),
 * when-ready.ts (waiting for ready), connection-sink.ts (what the channel delivers into the
 * receive queue, and the receive limits), connection-path.ts (the path at ready and its
 * viability updates), connection-report.ts (TLS facts and the RTT estimate for report()).
 */
import { EventEmitter } from 'node:events';
import type { X509Certificate } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { PeerlinkError } from '../errors.js';
import type { Channel } from './channel.js';
import { Endpoint } from './endpoint.js';
import type { Established } from './establish.js';
import type { Parameters } from './parameters.js';
import type { ConnectionPath } from './path.js';
import { ReceiveQueue, type MessagePart } from './receive-queue.js';
import { emptyCounters, type ConnectionCounters, type ConnectionReport, type RttEstimate, type TlsReport } from './report.js';
import { SocketChannel } from './socket-channel.js';
import { readTcpInfo, type TcpInfo } from './tcp-info.js';
import type { ConnectionState } from './state.js';
import { peerChain } from './tls-config.js';
import { UdpChannel } from './udp-channel.js';
import { FramedChannel } from './framed-channel.js';
import { WsChannel } from './ws-channel.js';
import type { PathUpdate, ViabilityWatch } from './viability.js';
import { connectionStateChannel, log } from './diagnostics.js';
import { adoptChannel, type AdoptInfo, type ConnectionEvents, type SendData, type SendOptions, type WhenReadyOptions } from './connection-types.js';
import { ConnectionAttempts } from './connection-attempts.js';
import { connectionSink, type ReceiveLimits } from './connection-sink.js';
import { pathAtReady, updatedPath, watchPath } from './connection-path.js';
import { describeTls, sampleRtt } from './connection-report.js';
import { whenReady } from './when-ready.js';

/** Receive queue high-water marks: bytes before the transport is paused. */
const STREAM_HIGH_WATER = 1024 * 1024;
const MESSAGE_HIGH_WATER = 4 * 1024 * 1024;

let nextId = 1;

function partialError(what: string): PeerlinkError {
  return new PeerlinkError('ERR_INVALID_STATE', `${what} after receivePartialMessages(): use receiveMessagePart() instead`);
}

function toBuffer(d: Uint8Array | string): Buffer {
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

export class Connection extends EventEmitter<ConnectionEvents> {
  readonly id = nextId++;
  readonly endpoint: Endpoint;
  readonly parameters: Parameters;

  private _state: ConnectionState = 'setup';
  private _error: PeerlinkError | undefined;
  private _role: 'client' | 'server' = 'client';
  private _viable = true;
  private _path: ConnectionPath | undefined;
  private channel: Channel | undefined;
  /** Dialled connections, from start(): establishing and retrying. */
  private attempts: ConnectionAttempts | undefined;
  private readonly created = performance.now();
  private readyAt: number | undefined;
  private endedAt: number | undefined;
  private timings: { resolve?: number; connect?: number; handshake?: number } = {};
  private readonly _counters: ConnectionCounters = emptyCounters();
  private _rtt: RttEstimate | undefined;
  private readonly queue: ReceiveQueue;
  private detached = false;
  /** receivePartialMessages() was called: the queue holds message pieces. */
  private partial = false;
  private weSentFinal = false;
  /** Captured at ready: OpenSSL may drop the peer chain after TLS 1.3 session tickets. */
  private chain: X509Certificate[] = [];
  private tlsReport: TlsReport | undefined;
  private viabilityWatch: ViabilityWatch | undefined;
  private readonly limits: ReceiveLimits = { after: undefined, limit: undefined };
  /** The last TCP_INFO read by tcpInfoIfMoved, and the socket's byte counts then. */
  private lastTcpInfo: { info: TcpInfo; mark: number } | undefined;
  /** Messages given to sendEarly(), sent ahead of everything else. */
  private early: Buffer[] | undefined;

  constructor(endpoint: Endpoint, parameters: Parameters) {
    super();
    this.endpoint = endpoint;
    this.parameters = parameters;
    this.queue = new ReceiveQueue(
      parameters.isMessageProtocol ? MESSAGE_HIGH_WATER : STREAM_HIGH_WATER,
      () => this.channel?.pause(),
      () => this.channel?.resume(),
    );
    // An unhandled 'error' event would crash the process; Connection reports through 'state'.
  }

  /** Creates, starts and waits for a connection to become ready. */
  static async connect(endpoint: Endpoint, parameters: Parameters, options: WhenReadyOptions = {}): Promise<Connection> {
    const c = new Connection(endpoint, parameters);
    c.start();
    try {
      await c.whenReady(options);
    } catch (err) {
      c.forceCancel();
      throw err;
    }
    return c;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The error behind `waiting` or `failed`. */
  get error(): PeerlinkError | undefined {
    return this._error;
  }

  /** 'client' for connections we dialled, 'server' for those a Listener accepted. */
  get role(): 'client' | 'server' {
    return this._role;
  }

  get isViable(): boolean {
    return this._viable;
  }

  get currentPath(): ConnectionPath | undefined {
    return this._path;
  }

  /** Largest datagram send() accepts on a UDP connection (path MTU − IP/UDP headers − overhead); 0 otherwise. */
  get maximumDatagramSize(): number {
    return this.channel instanceof UdpChannel ? this.channel.maximumDatagramSize : 0;
  }

  /** The TLS socket of a TLS connection (ws over TLS included), once ready. */
  get tlsSocket(): TLSSocket | undefined {
    return this.channel?.tlsSocket;
  }

  /** The peer's certificate chain, leaf first (PKI). */
  get peerCertificates(): X509Certificate[] {
    return [...this.chain];
  }

  /** RFC 5705 keying material from the TLS session (both ends get the same bytes). */
  exportKeyingMaterial(length: number, label: string, context?: Buffer): Buffer {
    const s = this.tlsSocket;
    if (!s) throw new PeerlinkError('ERR_INVALID_STATE', 'exportKeyingMaterial needs a ready TLS connection');
    // RFC 5705 distinguishes "no context" from an empty one, so pass it only when given.
    return context === undefined ? s.exportKeyingMaterial(length, label, undefined as unknown as Buffer) : s.exportKeyingMaterial(length, label, context);
  }

  get counters(): Readonly<ConnectionCounters> {
    return this._counters;
  }

  /** Bytes received and queued for the reader (bounded: the transport is paused above a limit). */
  get bufferedReceiveBytes(): number {
    return this.queue.bufferedBytes;
  }

  /** Bytes accepted by send() that the socket has not written yet. */
  get bufferedSendBytes(): number {
    const c = this.channel;
    if (c instanceof SocketChannel) return c.io.writableLength;
    if (c instanceof WsChannel) return c.ws.bufferedAmount;
    return 0;
  }

  /** Starts connecting (setup → preparing). Idempotent; accepted connections are already started. */
  start(): this {
    if (this._state !== 'setup') return this;
    this.setState('preparing', undefined);
    this.attempts = new ConnectionAttempts(this.endpoint, this.parameters, {
      state: () => this._state,
      preparing: () => this.setState('preparing', undefined),
      early: () => this.early,
      attempted: () => this._counters.attempts++,
      established: (e) => {
        this.timings = e.timings;
        this.becomeReady(e);
      },
      waiting: (err) => this.setState('waiting', err),
      failed: (err) => {
        this.setState('failed', err);
        this.queue.close(err, false);
      },
    });
    void this.attempts.run();
    return this;
  }

  /**
   * Message protocols, before start(): a message to send ahead of everything else, as early as
   * is safe. With TLS-PSK and the framer it is written the moment the handshake completes
   * (the server has proved it holds the key), in the same write as the client's Finished,
   * before the work that makes the connection `ready`; otherwise it is sent at `ready`,
   * before any send(). For a protocol that speaks first (a session's HELLO). Nothing is checked
   * after a PSK handshake, so nothing is given away earlier than before; certificate (PKI)
   * peers are verified first and their early messages wait for that.
   */
  sendEarly(data: Buffer): void {
    if (this._state !== 'setup' || this._role !== 'client') throw new PeerlinkError('ERR_INVALID_STATE', 'sendEarly() is for a connection not started yet');
    if (!this.parameters.isMessageProtocol || this.parameters.transport !== 'tcp') throw new PeerlinkError('ERR_INVALID_STATE', 'sendEarly() is for framed or WebSocket connections');
    if (data.length > this.parameters.maxMessageSize) throw new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `message of ${data.length} bytes exceeds maxMessageSize ${this.parameters.maxMessageSize}`);
    (this.early ??= []).push(data);
  }

  /** Resolves when ready; rejects with the error on failed / cancelled (and waiting, if asked). */
  whenReady(options: WhenReadyOptions = {}): Promise<void> {
    return whenReady(this, options);
  }

  /** In `waiting`: retry now instead of after the back-off. */
  restart(): void {
    if (this._state !== 'waiting') return;
    this.attempts?.cancelRetry();
    this.setState('preparing', undefined);
    void this.attempts?.run();
  }

  /** Graceful close: pending sends are flushed, then FIN / close_notify / WebSocket close. */
  cancel(): void {
    this.finish(false);
  }

  /** Immediate close: pending data is dropped, the socket destroyed. */
  forceCancel(): void {
    this.finish(true);
  }

  /**
   * Sends bytes (byte stream) or one message (framer, ws, udp); an array of chunks is one
   * message. An empty send with `final` sends nothing: it only half-closes / closes. Resolves when the transport has accepted the data; rejects if the connection
   * fails first. Sends made before `ready` are queued until it.
   */
  send(data: SendData, options: SendOptions = {}): Promise<void> {
    const ch = this.channel;
    if (this._state !== 'ready' || !ch) {
      if (this._state === 'failed' || this._state === 'cancelled') {
        return Promise.reject(this._error ?? new PeerlinkError('ERR_CLOSED', 'cannot send: the connection is cancelled'));
      }
      return this.whenReady().then(() => this.send(data, options));
    }
    if (this.detached) return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', 'send() after stream(): write to the Duplex instead'));
    const headroom = options.headroom;
    if (headroom !== undefined && headroom !== 0) return this.sendWithHeadroom(ch, data, headroom, options.final === true);
    let payload: Buffer | Buffer[];
    let size: number;
    if (Buffer.isBuffer(data)) {
      payload = data;
      size = data.length;
    } else if (typeof data === 'string' || data instanceof Uint8Array) {
      payload = toBuffer(data);
      size = payload.length;
    } else {
      // Chunk lists are usually Buffers already (the session's DATA header + payload): reuse
      // the caller's array instead of mapping a new one per message.
      size = 0;
      let allBuffers = true;
      for (let i = 0; i < data.length; i++) {
        const c = data[i] as Uint8Array;
        size += c.byteLength;
        if (!Buffer.isBuffer(c)) allBuffers = false;
      }
      payload = allBuffers ? (data as readonly Buffer[] as Buffer[]) : data.map((d) => toBuffer(d));
    }
    return this.sendPayload(ch, payload, size, options.final === true, undefined);
  }

  /**
   * Hands what send() has batched to the transport now instead of at the end of the tick.
   * The default framer merges the small messages of one tick into one write; a message that
   * a peer waits for before anything else can happen (a handshake) should not also wait for
   * the rest of the tick's work. No effect before ready or where nothing is batched.
   */
  flush(): void {
    this.channel?.flush?.();
  }

  /**
   * Message protocols (framer, ws): the largest message accepted from the peer from the next
   * message on; a larger one fails the connection with ERR_MESSAGE_TOO_LARGE as soon as its
   * length is read, before it is buffered. Starts at `parameters.maxMessageSize` (or the
   * Listener's `initialMaxMessageSize`); may be lowered or raised at any time, e.g. raised
   * once the peer has identified itself. Sends are not affected. No effect on byte streams
   * and UDP.
   */
  setMaxMessageSize(n: number): void {
    if (!Number.isInteger(n) || n <= 0) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `maxMessageSize must be a positive whole number of bytes, got ${String(n)}`);
    this.limits.limit = n;
    this.limits.after = undefined;
    this.channel?.setMaxMessageSize?.(n);
  }

  /**
   * setMaxMessageSize(n) at the exact point where a received message passes `test` — before
   * the next message's length is read, even when both arrived in one read (which a later
   * setMaxMessageSize from a receive() handler cannot promise). For a protocol whose peer may
   * send large messages right after a small one that grants it (a session's WELCOME).
   * Replaced by a later call of either method.
   */
  setMaxMessageSizeAfter(test: (message: Buffer) => boolean, n: number): void {
    if (!Number.isInteger(n) || n <= 0) throw new PeerlinkError('ERR_INVALID_ARGUMENT', `maxMessageSize must be a positive whole number of bytes, got ${String(n)}`);
    this.limits.after = { test, n };
  }

  /**
   * Bytes of headroom worth reserving in front of a message given to send() with `headroom`
   * (the frame header of the default framer: 4); 0 when the transport has none to put there.
   */
  get messageHeadroom(): number {
    return this.channel?.headroom ?? 0;
  }

  private sendWithHeadroom(ch: Channel, data: SendData, headroom: number, final: boolean): Promise<void> {
    if (!Buffer.isBuffer(data) || !this.parameters.isMessageProtocol || !Number.isInteger(headroom) || headroom < 0 || headroom > data.length) {
      return Promise.reject(new PeerlinkError('ERR_INVALID_ARGUMENT', 'send() with headroom takes one Buffer at least `headroom` bytes long (a whole number of bytes), on a message connection'));
    }
    const size = data.length - headroom;
    if (ch.sendWithHeadroom && headroom >= (ch.headroom ?? Infinity) && size > 0) return this.sendPayload(ch, data, size, final, headroom);
    return this.sendPayload(ch, data.subarray(headroom), size, final, undefined);
  }

  private sendPayload(ch: Channel, payload: Buffer | Buffer[], size: number, final: boolean, headroom: number | undefined): Promise<void> {
    if (size > this.parameters.maxMessageSize && this.parameters.isMessageProtocol && this.parameters.transport === 'tcp') {
      return Promise.reject(new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds maxMessageSize ${this.parameters.maxMessageSize}`));
    }
    const p = headroom === undefined ? ch.send(payload, final) : (ch.sendWithHeadroom as NonNullable<Channel['sendWithHeadroom']>)(payload as Buffer, headroom, final);
    this._counters.bytesOut += size;
    if (this.parameters.isMessageProtocol && !(final && size === 0)) this._counters.messagesOut++;
    if (final) this.weSentFinal = true;
    return p;
  }

  /**
   * Byte streams: resolves with between `minimumIncompleteLength` and `maximumLength` bytes,
   * fewer only at the end of the stream; null when the peer has finished and nothing is left.
   */
  receive(minimumIncompleteLength = 1, maximumLength = 65536): Promise<Buffer | null> {
    if (this.parameters.isMessageProtocol) return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', 'receive() is for byte streams; use receiveMessage() on message connections'));
    if (this.detached) return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', 'receive() after stream(): read the Duplex instead'));
    const min = Math.max(1, Math.floor(minimumIncompleteLength));
    const max = Math.max(min, Math.floor(maximumLength));
    return this.queue.nextBytes(min, max);
  }

  /** Message protocols: the next message, or null when the peer has finished. */
  receiveMessage(): Promise<Buffer | null> {
    if (!this.parameters.isMessageProtocol) return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', 'receiveMessage() is for message connections (framer, ws, udp); use receive() on byte streams'));
    if (this.partial) return Promise.reject(partialError('receiveMessage()'));
    return this.queue.nextMessage();
  }

  /**
   * Message protocols: from now on, receive messages in pieces as their bytes arrive instead
   * of whole — Network framework's receive(minimumIncompleteLength:maximumLength:) on a framed
   * connection. With the default framer each piece is a view of what the transport read
   * (nothing is reassembled or copied, so a large message is never held whole); WebSocket,
   * UDP and custom framers keep delivering whole messages, each as one complete piece. Read
   * with receiveMessagePart() / tryReceiveMessagePart(); receiveMessage() and messages() are
   * refused afterwards. Messages already received stay whole. Cannot be undone.
   */
  receivePartialMessages(): void {
    if (!this.parameters.isMessageProtocol) throw new PeerlinkError('ERR_INVALID_STATE', 'receivePartialMessages() is for message connections (framer, ws, udp)');
    if (this.partial) return;
    if (this.queue.awaitingMessage) throw new PeerlinkError('ERR_INVALID_STATE', 'receivePartialMessages() while a receiveMessage() is waiting: it would get a piece, not a message');
    this.partial = true;
    this.channel?.deliverPartialMessages?.();
  }

  /**
   * Message protocols: the next piece of a message (`complete` on its last piece; a whole
   * message is one complete piece), or null when the peer has finished. A zero-length
   * message is one empty, complete piece.
   */
  receiveMessagePart(): Promise<MessagePart | null> {
    if (!this.parameters.isMessageProtocol) return Promise.reject(new PeerlinkError('ERR_INVALID_STATE', 'receiveMessagePart() is for message connections (framer, ws, udp)'));
    return this.queue.nextPart();
  }

  /** Like tryReceiveMessage(), for pieces: one queued now, null at the end, undefined when none is queued. */
  tryReceiveMessagePart(): MessagePart | null | undefined {
    if (!this.parameters.isMessageProtocol) throw new PeerlinkError('ERR_INVALID_STATE', 'tryReceiveMessagePart() is for message connections (framer, ws, udp)');
    const data = this.queue.tryNext();
    return data == null ? data : { data, complete: this.queue.lastComplete };
  }

  /**
   * Message protocols, synchronously: a message already received, `null` when the peer has
   * finished (or the connection ended), `undefined` when nothing is queued right now. Throws
   * the connection's error once it failed and the queue is empty. Lets a reader drain
   * everything queued per wake-up instead of paying a promise per small message.
   */
  tryReceiveMessage(): Buffer | null | undefined {
    if (!this.parameters.isMessageProtocol) throw new PeerlinkError('ERR_INVALID_STATE', 'tryReceiveMessage() is for message connections (framer, ws, udp)');
    if (this.partial) throw partialError('tryReceiveMessage()');
    return this.queue.tryNext();
  }

  /** Message protocols: every message until the peer finishes; throws if the connection fails. */
  messages(): AsyncIterableIterator<Buffer> {
    const iterator: AsyncIterableIterator<Buffer> = {
      next: () => {
        // Fast path: a queued message costs one resolved promise, not a promise chain.
        if (this.parameters.isMessageProtocol && !this.partial && this.queue.length > 0) return Promise.resolve({ done: false, value: this.queue.tryNext() as Buffer });
        return this.receiveMessage().then((m): IteratorResult<Buffer> => (m === null ? { done: true, value: undefined } : { done: false, value: m }));
      },
      return: () => Promise.resolve({ done: true, value: undefined }),
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * Byte streams (tcp / tls without framer): the Node Duplex (the socket itself) with its
   * own backpressure both ways. After this, use the Duplex instead of send()/receive(); the
   * connection's state, cancel() and report() keep working.
   */
  stream(): Duplex {
    const ch = this.channel;
    if (this._state !== 'ready' || !ch) throw new PeerlinkError('ERR_INVALID_STATE', `stream() needs a ready connection (state is ${this._state})`);
    if (!(ch instanceof SocketChannel) || ch instanceof FramedChannel) throw new PeerlinkError('ERR_INVALID_STATE', 'stream() is for byte-stream connections (tcp / tls without a framer)');
    if (this.detached) return ch.io;
    this.detached = true;
    return ch.detach(this.queue.drain());
  }

  /**
   * The kernel's TCP_INFO for this connection's TCP socket (under TLS / WebSocket too): RTT,
   * retransmissions, bytes acknowledged, delivery rate. Undefined for UDP, before ready, after
   * the socket closed, or where the sockopt helper is unavailable (not Linux, no koffi).
   */
  tcpInfo(): TcpInfo | undefined {
    const s = this.channel?.socket;
    return s === undefined || s.destroyed ? undefined : readTcpInfo(s);
  }

  /**
   * tcpInfo(), or the last one it read when nothing it reports can have moved since: not a byte
   * read or written on the socket since, and nothing was then in flight, unsent or backing off
   * (no unacknowledged data, an empty send queue, no retransmission backoff) — the kernel's
   * counters, RTT and delivery rate change only with traffic. The link monitor reads every
   * connection once a second: at 100 peers that read was 5–8 % of a peer's CPU, for connections
   * that carried nothing but a keepalive every few seconds. Bytes the kernel received but we have
   * not read yet show up in the next read after we have. A kernel that does not report the send
   * queue (`notsentBytes`, Linux < 4.6) is read every time.
   */
  tcpInfoIfMoved(): TcpInfo | undefined {
    const s = this.channel?.socket;
    if (s === undefined || s.destroyed) return undefined;
    const mark = s.bytesRead + s.bytesWritten;
    const last = this.lastTcpInfo;
    if (last !== undefined && last.mark === mark && last.info.unacked === 0 && last.info.notsentBytes === 0 && last.info.backoff === 0) return last.info;
    const info = readTcpInfo(s);
    this.lastTcpInfo = info === undefined ? undefined : { info, mark };
    return info;
  }

  report(): ConnectionReport {
    const now = this.endedAt ?? performance.now();
    const r: ConnectionReport = {
      id: this.id,
      endpoint: this._role === 'server' && this._path ? Endpoint.format(this._path.remoteEndpoint) : Endpoint.format(this.endpoint),
      role: this._role,
      stack: this.parameters.describe(),
      state: this._state,
      timings: { ...this.timings, ...(this.readyAt !== undefined ? { ready: this.readyAt - this.created } : {}), duration: now - this.created },
      counters: { ...this._counters },
    };
    if (this._error) r.error = { code: this._error.code, message: this._error.message };
    if (this._path) r.path = this._path;
    if (this._rtt) r.rtt = { ...this._rtt };
    if (this.tlsReport) r.tls = { ...this.tlsReport };
    return r;
  }

  /** Internal: takes over a channel a Listener accepted. */
  [adoptChannel](info: AdoptInfo): void {
    this._role = 'server';
    this.timings = { ...info.established.timings };
    this.becomeReady(info.established);
  }

  private setState(s: ConnectionState, err: PeerlinkError | undefined): void {
    if (this._state === s && this._error === err) return;
    this._state = s;
    this._error = err;
    if (connectionStateChannel.hasSubscribers) {
      connectionStateChannel.publish({ id: this.id, role: this._role, endpoint: Endpoint.format(this.endpoint), state: s, ...(err ? { error: { code: err.code, message: err.message } } : {}) });
    }
    // Formatting the endpoint costs more than the rest of a state change: only when printed.
    if (log.enabled) log('[C%d] %s %s%s', this.id, Endpoint.format(this.endpoint), s, err ? ` (${err.code}: ${err.message})` : '');
    if (s === 'failed' || s === 'cancelled') {
      this.endedAt = performance.now();
      this.viabilityWatch?.stop();
      this.viabilityWatch = undefined;
    }
    this.emit('state', s, err);
  }

  private becomeReady(e: Established): void {
    const ch = e.channel;
    this.channel = ch;
    this.attempts?.resetDelay();
    const path = pathAtReady(e);
    if (path) this._path = path;
    const sink = connectionSink(this.parameters, this._counters, this.queue, this.limits, {
      setMaxMessageSize: (n) => this.setMaxMessageSize(n),
      closed: (err) => this.channelClosed(err),
      rtt: (ms) => {
        this._rtt = sampleRtt(this._rtt, ms);
      },
    });
    if (this.limits.limit !== undefined) ch.setMaxMessageSize?.(this.limits.limit);
    if (this.partial) ch.deliverPartialMessages?.();
    this.viabilityWatch = watchPath(this._path, (u) => this.pathChanged(u));
    if (ch.tlsSocket && this.parameters.tls?.pki) this.chain = peerChain(ch.tlsSocket);
    if (ch.tlsSocket) this.tlsReport = describeTls(ch.tlsSocket, this.parameters, this.chain, this._role);
    const early = this.early;
    this.early = undefined;
    if (early) {
      // Ahead of every send(): those wait for 'ready'.
      for (const m of early) {
        if (!e.earlySent) ch.send(m, false).catch(() => undefined);
        this._counters.bytesOut += m.length;
        this._counters.messagesOut++;
      }
      ch.flush?.();
    }
    this.readyAt = performance.now();
    this.setState('ready', undefined);
    // After 'ready': what the channel held since the handshake (the peer's first data, even its
    // end or close — SinkRelay) is replayed now, and a close must follow 'ready', not precede it.
    ch.attach(sink);
    // A 'state' listener may have cancelled already: no path for a connection that is gone.
    if (this._path && this._state === 'ready') this.emit('path', this._path);
  }

  /** The interface under a ready connection changed: a new `path` (and `viability` when that changed). */
  private pathChanged(u: PathUpdate): void {
    const path = this._path;
    if (!path || this._state !== 'ready') return;
    if (u.mtu !== undefined && this.channel instanceof UdpChannel) this.channel.mtuChanged(u.mtu);
    this._path = updatedPath(path, u);
    if (this._viable !== u.viable) {
      this._viable = u.viable;
      this.emit('viability', u.viable);
    }
    this.emit('path', this._path);
  }

  private channelClosed(err: PeerlinkError | undefined): void {
    if (this._state === 'cancelled' || this._state === 'failed') return;
    if (err) {
      this.setState('failed', err);
      this.queue.close(err, false);
      return;
    }
    // Ended cleanly in both directions (or the peer's close ended ours, e.g. WebSocket).
    this.queue.end();
    this.setState('cancelled', undefined);
  }

  private finish(force: boolean): void {
    this.attempts?.stop();
    const wasFinal = this._state === 'failed' || this._state === 'cancelled';
    if (!wasFinal) this.setState('cancelled', undefined);
    this.queue.close(undefined, force);
    const ch = this.channel;
    if (!ch) return;
    if (force) ch.destroy();
    else if (!wasFinal) ch.end();
  }

  /** True once send({final: true}) was called. */
  get finalSent(): boolean {
    return this.weSentFinal;
  }
}
