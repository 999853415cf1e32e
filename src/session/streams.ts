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
 *
 * Budgets (budgets.ts, docs/security.md "Streams"), per peer: offers waiting for their stream
 * connection (streamOffersPerPeer), dial-backs in flight (dialBacksPerPeer) and open streams
 * (streamsPerPeer). An offer over one is refused with STREAM_REJECT and counted; the peer stays
 * connected. A peer that goes on offering while refused (FLOOD_FACTOR × streamOffersPerPeer
 * refusals in a row) is flooding: its control connection is closed (BYE protocol error).
 */
import { randomBytes } from 'node:crypto';
import { Connection, Endpoint, type Parameters } from '../net/index.js';
import { PeerlinkError } from '../errors.js';
import type { PeerID } from './peer-id.js';
import { peerKey } from './peer-id.js';
import type { PeerRecord } from './peer-record.js';
import { MessageStream } from './message-stream.js';
import { decodeMessage, encodeMessageBuffer } from './protocol/codec.js';
import { ByeReason, PROTOCOL_VERSION, StreamKind, type StreamBindMessage, type StreamOfferMessage } from './protocol/messages.js';
import { toPeerlinkError } from './control-channel.js';
import type { BudgetLedger, BudgetName } from './budgets.js';
import type { PeerErrorInfo } from './events.js';

/** How long an offered token stays valid, ms. */
const TOKEN_TTL = 30_000;
/** How long a BIND that arrived before its OFFER waits for it, ms. */
const EARLY_BIND_WAIT = 10_000;
/** Refusals in a row (× streamOffersPerPeer) after which a peer's offers are a flood and it is disconnected. */
const FLOOD_FACTOR = 4;
/** How long session close() lets open streams flush their queued writes and end marker, ms. */
export const STREAM_CLOSE_GRACE = 2000;

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
  /** The session's budget ledger (limits and refusal counts). */
  readonly budgets: BudgetLedger;
  /** Reports trouble with one peer (peerError). */
  reportError(err: PeerlinkError, info: PeerErrorInfo): void;
  /** The session's close() has begun (its BYEs drop every peer before close() ends the streams). */
  closing(): boolean;
  /** An incoming connection is bound to a real offer: it stops counting as unidentified. */
  identified(conn: Connection): void;
  /** Reserves a dial from the session's dial rate: ms to wait first (0: now). */
  reserveDial(): number;
  /** PKI: whether a stream connection's TLS key is the one `peerId` is derived from (absent: not checked). */
  boundToKey?: (conn: Connection, peerId: Uint8Array) => boolean;
}

/** Per-peer stream bookkeeping for the budgets. */
interface PeerStreamState {
  /** Offers we accepted and wait to be dialled for. */
  offers: number;
  /** Dial-backs in flight, each abortable when the peer goes. */
  readonly dialBacks: Set<AbortController>;
  /** Offers refused since the last one accepted. */
  refusedInARow: number;
}

interface Expected {
  key: string;
  kind: number;
  name: string;
  meta: Buffer;
  timer: NodeJS.Timeout;
}

/** A non-dial-back open of ours, failed at once if the peer refuses the offer. */
interface Opening {
  key: string;
  refuse: (e: PeerlinkError) => void;
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
  /** Our own direct (non-dial-back) opens, by token. */
  private readonly opening = new Map<string, Opening>();
  /** Budget bookkeeping by peer key (entries removed when the peer goes). */
  private readonly perPeer = new Map<string, PeerStreamState>();
  /** Every open stream, for close(). */
  private readonly live = new Set<MessageStream>();
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
      const hex = token.toString('hex');
      const abort = new AbortController();
      let refused: PeerlinkError | undefined;
      this.opening.set(hex, {
        key: rec.key,
        refuse: (e) => {
          refused = e;
          abort.abort(e);
        },
      });
      try {
        await ch.send({ type: 'streamOffer', token, kind, dialBack: false, name, meta });
        const stream = await this.dialAndBind(rec, remotePort, token, abort.signal);
        this.track(rec, stream);
        return stream;
      } catch (err) {
        throw refused ?? err;
      } finally {
        this.opening.delete(hex);
      }
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
    if (!ch || this.closed) return;
    if (!this.host.acceptsKind(offer.kind)) {
      ch.reply({ type: 'streamReject', token: offer.token, reason: ByeReason.STREAM_REFUSED });
      return;
    }
    const limits = this.host.budgets.limits;
    const st = this.state(rec.key);
    const hex = offer.token.toString('hex');
    // Open streams and those on their way (offers waiting, dial-backs in flight) share one budget.
    const streams = rec.streams.size + st.offers + st.dialBacks.size;
    if (offer.dialBack) {
      const port = ch.hello?.listenPort ?? 0;
      if (port === 0) {
        ch.reply({ type: 'streamReject', token: offer.token, reason: ByeReason.STREAM_REFUSED });
        return;
      }
      // Each dial-back is a connection we make on the peer's word: never more than a few at once.
      if (st.dialBacks.size >= limits.dialBacksPerPeer) return this.refuseOffer(rec, st, offer, 'dialBacksPerPeer');
      if (streams >= limits.streamsPerPeer) return this.refuseOffer(rec, st, offer, 'streamsPerPeer');
      st.refusedInARow = 0;
      const abort = new AbortController();
      st.dialBacks.add(abort);
      // A dial on a peer's word is a new dial of the session: within its dial rate (dialsPerSecond).
      this.dialRateWait(rec, abort.signal)
        .then(() => this.dialAndBind(rec, port, offer.token, abort.signal, offer.kind === StreamKind.RESOURCE))
        .finally(() => st.dialBacks.delete(abort))
        .then(
          (stream) => this.accept(rec, stream, offer.kind, offer.name, offer.meta),
          () => undefined, // the opener times out and reports it
        );
      return;
    }
    if (this.expected.has(hex)) return; // a replayed token is ignored
    if (st.offers >= limits.streamOffersPerPeer) return this.refuseOffer(rec, st, offer, 'streamOffersPerPeer');
    if (streams >= limits.streamsPerPeer) return this.refuseOffer(rec, st, offer, 'streamsPerPeer');
    st.refusedInARow = 0;
    st.offers++;
    const timer = setTimeout(() => this.forget(hex), TOKEN_TTL);
    timer.unref();
    // The offer's fields are copied: views would keep the whole transport read they arrived in alive.
    this.expected.set(hex, { key: rec.key, kind: offer.kind, name: offer.name, meta: Buffer.from(offer.meta), timer });
    const early = this.early.get(hex);
    if (early) {
      this.early.delete(hex);
      clearTimeout(early.timer);
      this.onBind(early.conn, early.bind);
    }
  }

  /**
   * An offer over budget: refused with STREAM_REJECT and counted; the peer stays connected
   * unless it keeps offering while refused, which only a flood does.
   */
  private refuseOffer(rec: PeerRecord, st: PeerStreamState, offer: StreamOfferMessage, budget: BudgetName): void {
    const ch = rec.active;
    const address = remoteAddress(rec);
    this.host.budgets.exceeded({ budget, peer: rec.key, ...(address ? { address } : {}), detail: `stream offer "${offer.name.slice(0, 64)}" refused` });
    st.refusedInARow++;
    if (st.refusedInARow > FLOOD_FACTOR * this.host.budgets.limits.streamOffersPerPeer) {
      this.host.reportError(new PeerlinkError('ERR_PROTOCOL', `${rec.peer.displayName} kept offering streams over its budget; disconnected`), { peer: rec.peer, ...(address ? { endpoint: address } : {}) });
      ch?.close(ByeReason.PROTOCOL_ERROR, 'stream offer flood');
      return;
    }
    ch?.reply({ type: 'streamReject', token: offer.token, reason: ByeReason.STREAM_REFUSED });
  }

  private state(key: string): PeerStreamState {
    let st = this.perPeer.get(key);
    if (!st) {
      st = { offers: 0, dialBacks: new Set(), refusedInARow: 0 };
      this.perPeer.set(key, st);
    }
    return st;
  }

  /** Removes an expected token (used, expired or its peer gone) and gives back its offer budget. */
  private forget(hex: string): Expected | undefined {
    const e = this.expected.get(hex);
    if (!e) return undefined;
    this.expected.delete(hex);
    clearTimeout(e.timer);
    const st = this.perPeer.get(e.key);
    if (st && st.offers > 0) st.offers--;
    return e;
  }

  /** A STREAM_REJECT arrived: fail the matching dial-back wait. */
  onReject(rec: PeerRecord, token: Buffer): void {
    const hex = token.toString('hex');
    const refused = (): PeerlinkError => new PeerlinkError('ERR_STREAM_REFUSED', `${rec.peer.displayName} refused the stream (it does not take this kind of stream, or too many streams are open or being opened with it)`);
    const a = this.awaiting.get(hex);
    if (a && a.key === rec.key) {
      this.awaiting.delete(hex);
      clearTimeout(a.timer);
      a.reject(refused());
    }
    const o = this.opening.get(hex);
    if (o && o.key === rec.key) {
      this.opening.delete(hex);
      o.refuse(refused());
    }
  }

  /** An incoming connection whose first message is STREAM_BIND. */
  onBind(conn: Connection, bind: StreamBindMessage): void {
    if (this.closed) {
      conn.forceCancel();
      return;
    }
    // PKI: a stream connection speaks for the peer whose key it presented, whatever its token.
    if (this.host.boundToKey && !this.host.boundToKey(conn, bind.peerId)) return this.refuse(conn);
    const hex = bind.token.toString('hex');
    const key = peerKey(bind.peerId);
    const exp = this.expected.get(hex);
    if (exp) {
      this.forget(hex);
      const rec = this.host.record(key);
      if (exp.key !== key || !rec) return this.refuse(conn);
      this.host.identified(conn);
      const stream = new MessageStream(conn, { pieces: exp.kind === StreamKind.RESOURCE });
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
      this.host.identified(conn);
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

  /**
   * The peer is not connected any more. If it said BYE closing (`rec.leftAt`, set by the peer
   * table just before this call) its streams end once their data is read; if it was lost, they
   * fail with ERR_PEER_NOT_CONNECTED. During our own close() nothing happens here: close()
   * ends every stream itself.
   */
  dropPeer(rec: PeerRecord): void {
    if (this.closed || this.host.closing()) return;
    const graceful = rec.leftAt !== 0;
    // Built only when something is there to fail: most peers go with no stream or wait open,
    // and an error's stack is most of the cost of a disconnect here.
    let made: PeerlinkError | undefined;
    const err = (): PeerlinkError => (made ??= new PeerlinkError('ERR_PEER_NOT_CONNECTED', graceful ? `${rec.peer.displayName} left before the stream ended` : `${rec.peer.displayName} disconnected`));
    for (const s of [...rec.streams]) {
      if (s instanceof MessageStream) s.peerGone(graceful, err());
      else s.destroy(err());
    }
    for (const [hex, a] of this.awaiting) {
      if (a.key !== rec.key) continue;
      this.awaiting.delete(hex);
      clearTimeout(a.timer);
      a.reject(err());
    }
    for (const [hex, e] of this.expected) if (e.key === rec.key) this.forget(hex);
    const st = this.perPeer.get(rec.key);
    if (st) for (const a of st.dialBacks) a.abort(err());
    this.perPeer.delete(rec.key);
  }

  /**
   * Session close: offers and waits end; every open stream finishes its side (queued writes,
   * then the end marker) and closes without an error. Resolves when all have closed, within
   * STREAM_CLOSE_GRACE.
   */
  close(): Promise<void> {
    this.closed = true;
    const err = new PeerlinkError('ERR_CLOSED', 'the session is closed');
    for (const a of this.awaiting.values()) {
      clearTimeout(a.timer);
      a.reject(err);
    }
    for (const o of this.opening.values()) o.refuse(err);
    for (const e of this.expected.values()) clearTimeout(e.timer);
    for (const e of this.early.values()) {
      clearTimeout(e.timer);
      e.conn.forceCancel();
    }
    for (const st of this.perPeer.values()) for (const a of st.dialBacks) a.abort(err);
    this.awaiting.clear();
    this.opening.clear();
    this.expected.clear();
    this.early.clear();
    this.perPeer.clear();
    return Promise.all([...this.live].map((s) => s.closeForSession(STREAM_CLOSE_GRACE))).then(() => undefined);
  }

  private refuse(conn: Connection): void {
    conn.send(encodeMessageBuffer({ type: 'bye', reason: ByeReason.UNKNOWN_TOKEN, text: 'unknown or expired stream token' })).catch(() => undefined);
    conn.cancel();
  }

  private accept(rec: PeerRecord, stream: MessageStream, kind: number, name: string, meta: Buffer): void {
    if (rec.state !== 'connected' || this.closed) {
      stream.destroy();
      return;
    }
    this.track(rec, stream);
    this.host.deliver(kind, stream, name, meta, rec);
  }

  private track(rec: PeerRecord, stream: MessageStream): void {
    rec.streams.add(stream);
    this.live.add(stream);
    stream.once('close', () => {
      rec.streams.delete(stream);
      this.live.delete(stream);
    });
  }

  /** Waits for the session's dial rate (dialsPerSecond, shared with the Dialer); the wait is counted. */
  private dialRateWait(rec: PeerRecord, signal: AbortSignal): Promise<void> {
    const wait = this.host.reserveDial();
    if (wait <= 0) return Promise.resolve();
    this.host.budgets.exceeded({ budget: 'dialsPerSecond', peer: rec.key, detail: `dial-back deferred ${wait} ms` });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, wait);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(toPeerlinkError(signal.reason, 'ERR_CONNECTION_RESET'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Dials the peer's listener, sends STREAM_BIND and waits for STREAM_BOUND. */
  private async dialAndBind(rec: PeerRecord, port: number, token: Buffer, cancel: AbortSignal, pieces = false): Promise<MessageStream> {
    const remote = rec.active?.connection.currentPath?.remoteEndpoint;
    if (!remote) throw new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${rec.peer.displayName} is not connected`);
    const ep = Endpoint.hostPort(remote.host, port, remote.interface !== undefined ? { interface: remote.interface } : {});
    const signal = AbortSignal.any([AbortSignal.timeout(this.host.connectionTimeout), cancel]);
    const conn = await Connection.connect(ep, this.host.parameters, { waiting: 'reject', signal });
    const stop = (): void => conn.forceCancel();
    try {
      if (this.host.boundToKey && !this.host.boundToKey(conn, rec.peer.toBytes())) {
        throw new PeerlinkError('ERR_PEER_ID_MISMATCH', `the stream connection to ${rec.peer.displayName} reached another key`);
      }
      if (cancel.aborted) throw toPeerlinkError(cancel.reason, 'ERR_CONNECTION_RESET');
      cancel.addEventListener('abort', stop, { once: true });
      await conn.send(encodeMessageBuffer({ type: 'streamBind', version: PROTOCOL_VERSION, peerId: this.host.localId.toBytes(), token }));
      const timer = setTimeout(stop, this.host.connectionTimeout);
      let reply: Buffer | null;
      try {
        reply = await conn.receiveMessage();
      } finally {
        clearTimeout(timer);
        cancel.removeEventListener('abort', stop);
      }
      if (reply === null) throw new PeerlinkError('ERR_CONNECTION_RESET', 'the peer closed the stream connection before accepting it');
      const msg = decodeMessage(reply, { maxDataSize: 0 });
      if (msg.type === 'bye') throw new PeerlinkError('ERR_PROTOCOL', `the peer refused the stream (${msg.text || `reason ${msg.reason}`})`);
      if (msg.type !== 'streamBound') throw new PeerlinkError('ERR_PROTOCOL', `expected STREAM_BOUND, got ${msg.type}`);
      return new MessageStream(conn, { pieces });
    } catch (err) {
      conn.forceCancel();
      throw toPeerlinkError(err, 'ERR_CONNECTION_RESET');
    }
  }
}

function remoteAddress(rec: PeerRecord): string | undefined {
  const r = rec.active?.connection.currentPath?.remoteEndpoint;
  return r ? Endpoint.format(r) : undefined;
}
