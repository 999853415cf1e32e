/**
 * PeerSession's send(): reliable messages over the peers' control connections, and
 * 'unreliable' ones as datagrams (datagrams.ts). Its hot path — one peer, 100-byte messages at
 * millions per second — keeps a one-entry lookup cache and shares settled promises so a send
 * accepted at once allocates nothing.
 */
import { RESOLVED } from '../net/channel.js';
import { PeerlinkError, isPeerlinkError } from '../errors.js';
import { PeerID } from './peer-id.js';
import type { PeerRecord } from './peer-record.js';
import type { ControlChannel } from './control-channel.js';
import type { DatagramManager } from './datagrams.js';
import type { SendOptions, SessionLifecycle } from './session-types.js';

export interface SendPathHost {
  /** The peer table's records by peer key (peer-table.ts `records`). */
  readonly peers: ReadonlyMap<string, PeerRecord>;
  readonly datagrams: DatagramManager;
  /** The session's maxMessageSize. */
  readonly maxMessageSize: number;
  state(): SessionLifecycle;
}

export class SendPath {
  readonly #host: SendPathHost;
  /**
   * The table's records by peer key, for send()'s direct lookup. Records of absent peers
   * expire (peer-records.ts); the session tells us (forget) so the cache below never holds a
   * removed one.
   */
  readonly #peers: ReadonlyMap<string, PeerRecord>;
  readonly #datagrams: DatagramManager;
  /** send()'s one-entry lookup cache: the PeerID of the last single-peer send and its record. */
  #lastTo: PeerID | undefined;
  #lastRec: PeerRecord | undefined;
  /** The last transport send promise that was not already resolved, and its error-mapped form (see #sendTo). */
  #lastSendRaw: Promise<void> | undefined;
  #lastSendMapped: Promise<number> | undefined;

  constructor(host: SendPathHost) {
    this.#host = host;
    this.#peers = host.peers;
    this.#datagrams = host.datagrams;
  }

  /** A peer record expired or was evicted: the lookup cache must not keep it. */
  forget(rec: PeerRecord): void {
    if (this.#lastRec === rec) {
      this.#lastRec = undefined;
      this.#lastTo = undefined;
    }
  }

  /** send()'s work (documented there, session.ts). */
  send(data: Uint8Array | string, options: SendOptions): Promise<number> {
    const to = options.to;
    if (options.mode === 'unreliable') return this.#sendUnreliable(data, to);
    // Fast path: a Buffer for the same peer as the last send, within both sides' limits, on a
    // live connection (sendLimit is 0 otherwise, so a closed session never takes it);
    // everything else takes the checks below.
    if (to !== undefined && to === this.#lastTo && Buffer.isBuffer(data)) {
      const rec = this.#lastRec;
      const ch = rec?.active;
      // rec.viability is set while the connection is active; not viable → held (#sendTo).
      if (ch !== undefined && data.length <= ch.sendLimit && rec?.verifying === undefined && rec?.viability?.viable !== false) return this.#settled(ch.sendData(data));
    }
    if (this.#host.state() !== 'running') return Promise.reject(this.#notRunning());
    const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (payload.length > this.#host.maxMessageSize) {
      return Promise.reject(new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `message of ${payload.length} bytes exceeds maxMessageSize ${this.#host.maxMessageSize}; use openStream() for bulk data`));
    }
    // One peer: the common case, kept free of arrays and extra promises (100-byte messages at millions per second).
    if (to instanceof PeerID) {
      // The last record looked up stays valid for the same PeerID: a record is removed only
      // when its peer is absent, and then the session clears this cache (forget).
      let rec = to === this.#lastTo ? this.#lastRec : undefined;
      if (rec === undefined) {
        rec = this.#peers.get(to.id);
        this.#lastTo = to;
        this.#lastRec = rec;
      }
      if (!rec?.active || rec.active.closed || rec.verifying !== undefined) return Promise.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${to.displayName} is not connected`));
      return this.#sendTo(rec, payload);
    }
    let recs: PeerRecord[];
    if (to === undefined) recs = [...this.#peers.values()].filter((r) => r.state === 'connected');
    else {
      recs = [];
      for (const p of to) {
        const r = this.#peers.get(p.id);
        if (!r || r.state !== 'connected') return Promise.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${p.displayName} is not connected`));
        recs.push(r);
      }
    }
    if (recs.length === 0) return NONE;
    return Promise.all(recs.map((r) => this.#sendTo(r, payload))).then(() => recs.length);
  }

  /** Why send() cannot run in the current (not running) state. */
  #notRunning(): PeerlinkError {
    const state = this.#host.state();
    return state === 'idle' || state === 'starting'
      ? new PeerlinkError('ERR_INVALID_STATE', 'send() needs a started session: await start() first')
      : new PeerlinkError('ERR_CLOSED', 'send() after close(): the session is closed');
  }

  /** send() with mode 'unreliable': the same peer rules, then one datagram per peer (datagrams.ts). */
  #sendUnreliable(data: Uint8Array | string, to: SendOptions['to']): Promise<number> {
    if (this.#host.state() !== 'running') return Promise.reject(this.#notRunning());
    const payload = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    let recs: PeerRecord[];
    if (to === undefined) recs = [...this.#peers.values()].filter((r) => r.state === 'connected');
    else {
      recs = [];
      for (const p of to instanceof PeerID ? [to] : to) {
        const r = this.#peers.get(p.id);
        if (!r || r.state !== 'connected') return Promise.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', `${p.displayName} is not connected`));
        recs.push(r);
      }
    }
    if (recs.length === 1) return this.#datagrams.send(recs[0] as PeerRecord, payload);
    if (recs.length === 0) return NONE;
    return Promise.all(recs.map((r) => this.#datagrams.send(r, payload))).then(() => recs.length);
  }

  #sendTo(rec: PeerRecord, payload: Buffer): Promise<number> {
    const ch = rec.active as ControlChannel;
    const limit = ch.hello?.maxMessageSize ?? 0;
    if (payload.length > limit) {
      return Promise.reject(new PeerlinkError('ERR_MESSAGE_TOO_LARGE', `${rec.peer.displayName} accepts messages up to ${limit} bytes; this one is ${payload.length}`));
    }
    // The path under the connection is down (within viabilityGrace): held until it returns (viability.ts).
    const held = rec.viability?.hold(payload);
    if (held !== undefined) return held;
    return this.#settled(ch.sendData(payload));
  }

  /** A one-peer send's promise as the app sees it: 1, or failures mapped to ERR_PEER_NOT_CONNECTED. */
  #settled(p: Promise<void>): Promise<number> {
    // Accepted at once (the usual case): hand back a shared resolved promise instead of
    // chaining a new one per message. Above the high-water mark the transport shares one
    // drain promise between sends, so the mapped one is shared too.
    if (p === RESOLVED) return ONE;
    if (p !== this.#lastSendRaw) {
      this.#lastSendRaw = p;
      this.#lastSendMapped = p.then(one, notConnected);
    }
    return this.#lastSendMapped as Promise<number>;
  }
}

/** The settled result of a send that went to one peer / to nobody: shared, so the hot path allocates nothing. */
const ONE: Promise<number> = Promise.resolve(1);
const NONE: Promise<number> = Promise.resolve(0);
function one(): number {
  return 1;
}

function notConnected(err: unknown): never {
  if (isPeerlinkError(err, 'ERR_PEER_NOT_CONNECTED')) throw err;
  throw new PeerlinkError('ERR_PEER_NOT_CONNECTED', 'the peer disconnected before the message was sent', { cause: err });
}

