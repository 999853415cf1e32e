/**
 * Session streams: a new connection per stream, bound to the session by a one-time token.
 *
 * The opener sends STREAM_OFFER {token, kind, name, meta} over the control channel, then
 * the side that can be dialled is dialled: normally the opener dials the peer's listener
 * (port from its HELLO, address from the control connection); when the peer has no
 * listener (a client in client-server) the offer says `dialBack` and the peer dials the
 * opener. The dialling side's first message is STREAM_BIND {peer id, token}; the other side
 * checks that the token is one it offered or was offered, unused, unexpired, and from that
 * same peer, answers STREAM_BOUND, and from then on the connection carries stream bytes
 * (message-stream.ts). The token travels only over the secured control channel, and the
 * stream connection is secured the same way, so a stream cannot be attached to a session
 * by anyone who is not already part of it.
 */
import { randomBytes } from 'node:crypto';
import { Connection, Endpoint, type Parameters } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import type { PeerID } from './peer-id.js';
import { peerKey } from './peer-id.js';
import type { PeerRecord } from './peer-record.js';
import { MessageStream } from './message-stream.js';
import { decodeMessage, encodeMessageBuffer } from './protocol/codec.js';
import { ByeReason, PROTOCOL_VERSION, type StreamBindMessage, type StreamOfferMessage } from './protocol/messages.js';
import { toPeerlinkError } from './control-channel.js';

/** How long an offered token stays valid, ms. */
const TOKEN_TTL = 30_000;
/** How long a BIND that arrived before its OFFER waits for it, ms. */
const EARLY_BIND_WAIT = 10_000;

export interface StreamHost {
  readonly localId: PeerID;
  readonly parameters: Parameters;
  listenPort(): number;
  readonly connectionTimeout: number;
  record(key: string): PeerRecord | undefined;
  /** Whether a kind of stream is accepted (0 = app, always). */
  acceptsKind(kind: number): boolean;
  /** Hands an accepted stream to the app (kind 0) or to the kind's handler. */
  deliver(kind: number, stream: MessageStream, name: string, meta: Buffer, rec: PeerRecord): void;
}

interface Expected {
  key: string;
  kind: number;
  name: string;
  meta: Buffer;
  timer: NodeJS.Timeout;
}

interface AwaitingDialBack {
  key: string;
  resolve: (s: MessageStream) => void;
  reject: (e: PeerlinkError) => void;
  timer: NodeJS.Timeout;
}

interface EarlyBind {
  conn: Connection;
  bind: StreamBindMessage;
  timer: NodeJS.Timeout;
}

export class StreamManager {
  private readonly host: StreamHost;
  /** Tokens we were offered and wait to be dialled with. */
  private readonly expected = new Map<string, Expected>();
  /** Tokens we offered with dialBack, waiting for the peer to dial us. */
  private readonly awaiting = new Map<string, AwaitingDialBack>();
  private readonly early = new Map<string, EarlyBind>();
  private closed = false;

  constructor(host: StreamHost) {
    this.host = host;
  }

  /** Opens a stream to a connected peer; resolves with the Duplex once both ends are bound. */
  async open(rec: PeerRecord, name: string, kind: number, meta: Buffer): Promise<MessageStream> {
    const ch = rec.active;
    if (!ch?.hello) throw new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${rec.peer.displayName} is not connected`);
    const token = randomBytes(16);
    const remotePort = ch.hello.listenPort;
    if (remotePort > 0) {
      await ch.send({ type: 'streamOffer', token, kind, dialBack: false, name, meta });
      const stream = await this.dialAndBind(rec, remotePort, token);
      this.track(rec, stream);
      return stream;
    }
    if (this.host.listenPort() === 0) {
      throw new PeerlinkError('ERR_INVALID_STATE', 'neither side of this pair listens for connections, so no stream connection can be made');
    }
    const hex = token.toString('hex');
    const p = new Promise<MessageStream>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.awaiting.delete(hex);
        reject(new PeerlinkError('ERR_TIMEOUT', `${rec.peer.displayName} did not connect back for the stream "${name}"`));
      }, TOKEN_TTL);
      timer.unref();
      this.awaiting.set(hex, { key: rec.key, resolve, reject, timer });
    });
    await ch.send({ type: 'streamOffer', token, kind, dialBack: true, name, meta });
    const stream = await p;
    this.track(rec, stream);
    return stream;
  }

  /** A STREAM_OFFER arrived on the control channel of `rec`. */
  onOffer(rec: PeerRecord, offer: StreamOfferMessage): void {
    const ch = rec.active;
    if (!ch) return;
    if (!this.host.acceptsKind(offer.kind)) {
      ch.send({ type: 'streamReject', token: offer.token, reason: ByeReason.STREAM_REFUSED }).catch(() => undefined);
      return;
    }
    const hex = offer.token.toString('hex');
    if (offer.dialBack) {
      const port = ch.hello?.listenPort ?? 0;
      if (port === 0) {
        ch.send({ type: 'streamReject', token: offer.token, reason: ByeReason.STREAM_REFUSED }).catch(() => undefined);
        return;
      }
      this.dialAndBind(rec, port, offer.token).then(
        (stream) => this.accept(rec, stream, offer.kind, offer.name, offer.meta),
        () => undefined, // the opener times out and reports it
      );
      return;
    }
    if (this.expected.has(hex)) return; // a replayed token is ignored
    const timer = setTimeout(() => this.expected.delete(hex), TOKEN_TTL);
    timer.unref();
    this.expected.set(hex, { key: rec.key, kind: offer.kind, name: offer.name, meta: offer.meta, timer });
    const early = this.early.get(hex);
    if (early) {
      this.early.delete(hex);
      clearTimeout(early.timer);
      this.onBind(early.conn, early.bind);
    }
  }

  /** A STREAM_REJECT arrived: fail the matching dial-back wait. */
  onReject(rec: PeerRecord, token: Buffer): void {
    const hex = token.toString('hex');
    const a = this.awaiting.get(hex);
    if (a && a.key === rec.key) {
      this.awaiting.delete(hex);
      clearTimeout(a.timer);
      a.reject(new PeerlinkError('ERR_PROTOCOL', `${rec.peer.displayName} refused the stream`));
    }
  }

  /** An incoming connection whose first message is STREAM_BIND. */
  onBind(conn: Connection, bind: StreamBindMessage): void {
    if (this.closed) {
      conn.forceCancel();
      return;
    }
    const hex = bind.token.toString('hex');
    const key = peerKey(bind.peerId);
    const exp = this.expected.get(hex);
    if (exp) {
      this.expected.delete(hex);
      clearTimeout(exp.timer);
      const rec = this.host.record(key);
      if (exp.key !== key || !rec) return this.refuse(conn);
      const stream = new MessageStream(conn);
      conn.send(encodeMessageBuffer({ type: 'streamBound' })).then(
        () => this.accept(rec, stream, exp.kind, exp.name, exp.meta),
        () => stream.destroy(),
      );
      return;
    }
    const wait = this.awaiting.get(hex);
    if (wait) {
      this.awaiting.delete(hex);
      clearTimeout(wait.timer);
      if (wait.key !== key) {
        wait.reject(new PeerlinkError('ERR_PROTOCOL', 'a different peer answered the stream offer'));
        return this.refuse(conn);
      }
      const stream = new MessageStream(conn);
      conn.send(encodeMessageBuffer({ type: 'streamBound' })).then(
        () => wait.resolve(stream),
        (err: unknown) => wait.reject(toPeerlinkError(err, 'ERR_CONNECTION_RESET')),
      );
      return;
    }
    if (this.early.has(hex) || this.early.size >= 64) return this.refuse(conn);
    // The BIND overtook its OFFER (different connections): wait for the offer a little.
    const timer = setTimeout(() => {
      this.early.delete(hex);
      this.refuse(conn);
    }, EARLY_BIND_WAIT);
    timer.unref();
    this.early.set(hex, { conn, bind, timer });
  }

  /** Fails everything of one peer (it disconnected). */
  dropPeer(rec: PeerRecord): void {
    const err = new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${rec.peer.displayName} disconnected`);
    for (const s of rec.streams) s.destroy(err);
    rec.streams.clear();
    for (const [hex, a] of this.awaiting) {
      if (a.key !== rec.key) continue;
      this.awaiting.delete(hex);
      clearTimeout(a.timer);
      a.reject(err);
    }
    for (const [hex, e] of this.expected) {
      if (e.key !== rec.key) continue;
      this.expected.delete(hex);
      clearTimeout(e.timer);
    }
  }

  close(): void {
    this.closed = true;
    const err = new PeerlinkError('ERR_CLOSED', 'the session is closed');
    for (const a of this.awaiting.values()) {
      clearTimeout(a.timer);
      a.reject(err);
    }
    for (const e of this.expected.values()) clearTimeout(e.timer);
    for (const e of this.early.values()) {
      clearTimeout(e.timer);
      e.conn.forceCancel();
    }
    this.awaiting.clear();
    this.expected.clear();
    this.early.clear();
  }

  private refuse(conn: Connection): void {
    conn.send(encodeMessageBuffer({ type: 'bye', reason: ByeReason.UNKNOWN_TOKEN, text: 'unknown or expired stream token' })).catch(() => undefined);
    conn.cancel();
  }

  private accept(rec: PeerRecord, stream: MessageStream, kind: number, name: string, meta: Buffer): void {
    if (rec.state !== 'connected') {
      stream.destroy(new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${rec.peer.displayName} disconnected`));
      return;
    }
    this.track(rec, stream);
    this.host.deliver(kind, stream, name, meta, rec);
  }

  private track(rec: PeerRecord, stream: MessageStream): void {
    rec.streams.add(stream);
    stream.once('close', () => rec.streams.delete(stream));
  }

  /** Dials the peer's listener, sends STREAM_BIND and waits for STREAM_BOUND. */
  private async dialAndBind(rec: PeerRecord, port: number, token: Buffer): Promise<MessageStream> {
    const remote = rec.active?.connection.currentPath?.remoteEndpoint;
    if (!remote) throw new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${rec.peer.displayName} is not connected`);
    const ep = Endpoint.hostPort(remote.host, port, remote.interface !== undefined ? { interface: remote.interface } : {});
    const signal = AbortSignal.timeout(this.host.connectionTimeout);
    const conn = await Connection.connect(ep, this.host.parameters, { waiting: 'reject', signal });
    try {
      await conn.send(encodeMessageBuffer({ type: 'streamBind', version: PROTOCOL_VERSION, peerId: this.host.localId.toBytes(), token }));
      const timer = setTimeout(() => conn.forceCancel(), this.host.connectionTimeout);
      let reply: Buffer | null;
      try {
        reply = await conn.receiveMessage();
      } finally {
        clearTimeout(timer);
      }
      if (reply === null) throw new PeerlinkError('ERR_CONNECTION_RESET', 'the peer closed the stream connection before accepting it');
      const msg = decodeMessage(reply, { maxDataSize: 0 });
      if (msg.type === 'bye') throw new PeerlinkError('ERR_PROTOCOL', `the peer refused the stream (${msg.text || `reason ${msg.reason}`})`);
      if (msg.type !== 'streamBound') throw new PeerlinkError('ERR_PROTOCOL', `expected STREAM_BOUND, got ${msg.type}`);
      return new MessageStream(conn);
    } catch (err) {
      conn.forceCancel();
      throw toPeerlinkError(err, 'ERR_CONNECTION_RESET');
    }
  }
}
