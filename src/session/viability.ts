/**
 * Viability of a peer's control connection (Network framework's `viabilityUpdateHandler`,
 * debounced as NWConnection's is): when the interface under the connection goes down,
 * disappears or loses our address (the Connection's `viability` event, from PathMonitor),
 * the peer is reported not viable and the session waits `viabilityGrace` before dropping it.
 * If the path comes back within the grace the peer is kept on the same TCP connection, so
 * the kernel retransmits whatever was in flight: no reliable message is lost or duplicated.
 *
 * Reliable sends meanwhile are held here, in order, and handed to the connection when the
 * path returns: their promises resolve late (backpressure for an app that awaits its sends),
 * they do not reject. Held bytes are bounded (`viabilityHoldBytes`): a send beyond that
 * (an app not awaiting its sends) is refused with ERR_PEER_NOT_VIABLE. If the peer is
 * dropped, the held sends reject with ERR_PEER_NOT_CONNECTED: they were never sent.
 *
 * Why a grace at all: a Wi-Fi roam, a cable re-plugged or a DHCP renewal takes the
 * interface away for a moment; dropping the peer at once would lose the connection (and
 * what TCP still held) for a blip the transport survives. Why it stays inside the keepalive
 * window: a path that does not come back must not keep a dead peer longer than silence would.
 */
import { PeerlinkError } from '../errors.js';
import type { ControlChannel } from './control-channel.js';
import type { PeerID } from './peer-id.js';
import type { PeerRecord } from './peer-record.js';
import { log } from './diagnostics.js';

/** Clock and timer functions, injected for fake-time tests. */
export interface ViabilityTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real, unref'd timers (also the heap trim's: memory-trim.ts). */
export const realTimers: ViabilityTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface PeerViabilityOptions {
  /** How long a not-viable path may take to come back before the peer is dropped, ms. */
  grace: number;
  /** Most bytes of reliable sends held while not viable. */
  holdBytes: number;
  /** Hands a held message to the connection (ControlChannel.sendData). */
  send(payload: Buffer): Promise<void>;
  /** Viability changed (the session's `viability` event). */
  changed(viable: boolean): void;
  /** The grace ran out: drop the peer. */
  expired(): void;
  timers?: ViabilityTimers;
}

/** Bytes each held send counts against `holdBytes` beyond its payload. */
const HELD_MESSAGE_OVERHEAD = 64;

interface Held {
  payload: Buffer;
  resolve(n: number): void;
  reject(err: PeerlinkError): void;
}

/** The viability of one active control connection, and the sends held while it is not viable. */
export class PeerViability {
  readonly #o: PeerViabilityOptions;
  readonly #timers: ViabilityTimers;
  #viable = true;
  #timer: unknown;
  /** When the path went away (the grace counts from here), while not viable. */
  #lostAt = 0;
  #held: Held[] = [];
  #heldBytes = 0;
  #closed = false;

  constructor(options: PeerViabilityOptions) {
    this.#o = options;
    this.#timers = options.timers ?? realTimers;
  }

  get viable(): boolean {
    return this.#viable;
  }

  /** Messages / bytes held now. */
  get held(): { messages: number; bytes: number } {
    return { messages: this.#held.length, bytes: this.#heldBytes };
  }

  /** The connection's path became (not) viable. */
  set(viable: boolean): void {
    if (this.#closed || viable === this.#viable) return;
    this.#viable = viable;
    if (!viable) {
      this.#lostAt = this.#timers.now();
      this.#timer = this.#timers.setTimeout(() => this.#expire(), this.#o.grace);
      this.#o.changed(false);
      return;
    }
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#o.changed(true);
    this.#flush();
  }

  /**
   * A reliable send while not viable: held, its promise resolves once the message was
   * handed to the connection after the path came back. Undefined when viable (send directly).
   */
  hold(payload: Buffer): Promise<number> | undefined {
    if (this.#viable || this.#closed) return undefined;
    // Each held send also costs its entry and promise: empty messages are not free (a relay
    // app passing on a peer's empty messages must not hold them without bound).
    if (this.#heldBytes + (this.#held.length + 1) * HELD_MESSAGE_OVERHEAD + payload.length > this.#o.holdBytes && this.#held.length > 0) {
      return Promise.reject(
        new PeerlinkError('ERR_PEER_NOT_VIABLE', `the path to this peer is down and ${this.#heldBytes} bytes of sends are already held (viabilityHoldBytes ${this.#o.holdBytes}): await send() before sending more`),
      );
    }
    this.#heldBytes += payload.length;
    return new Promise<number>((resolve, reject) => this.#held.push({ payload, resolve, reject }));
  }

  /**
   * This connection replaces `prev`, whose path was down (dedup accepted a new connection
   * meanwhile). The peer's wait goes on, not from zero: the grace still counts from when the
   * path went away, and the held sends move here, ahead of any new one. If this connection's
   * path is fine, the wait is over (`viable` true) and they go out now.
   */
  inherit(prev: PeerViability, viableNow: boolean): void {
    if (prev.#viable || this.#closed) return;
    this.#held = prev.#held;
    this.#heldBytes = prev.#heldBytes;
    prev.#held = [];
    prev.#heldBytes = 0;
    this.#viable = false;
    if (viableNow) {
      this.set(true);
      return;
    }
    this.#lostAt = prev.#lostAt;
    const left = Math.max(0, this.#lostAt + this.#o.grace - this.#timers.now());
    this.#timer = this.#timers.setTimeout(() => this.#expire(), left);
  }

  /** The connection closed (or was replaced): held sends were never sent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const h of held) h.reject(new PeerlinkError('ERR_PEER_NOT_CONNECTED', 'the peer was lost while its path was down; this message was not sent'));
  }

  #expire(): void {
    this.#timer = undefined;
    if (this.#closed || this.#viable) return;
    this.#o.expired();
    this.close();
  }

  #flush(): void {
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    // In order, synchronously: a send made after this sees viable and goes after them.
    for (const h of held) {
      this.#o.send(h.payload).then(
        () => h.resolve(1),
        (err: unknown) => h.reject(err instanceof PeerlinkError && err.code === 'ERR_PEER_NOT_CONNECTED' ? err : new PeerlinkError('ERR_PEER_NOT_CONNECTED', 'the peer disconnected before the message was sent', { cause: err })),
      );
    }
  }
}

/** What attachViability needs of the session. */
export interface ViabilitySettings {
  grace: number;
  holdBytes: number;
  /** Emits the session's `viability` event. */
  emit(peer: PeerID, viable: boolean): void;
  timers?: ViabilityTimers;
}

/**
 * Follows the viability of `ch`, the peer's new active control connection, until it closes:
 * `rec.viability` holds its state (and the sends held meanwhile).
 */
export function attachViability(rec: PeerRecord, ch: ControlChannel, s: ViabilitySettings): void {
  const v = new PeerViability({
    grace: s.grace,
    holdBytes: s.holdBytes,
    send: (payload) => ch.sendData(payload),
    changed: (viable) => {
      log('peer %s: connection #%d %s', rec.peer.displayName, ch.id, viable ? 'viable again' : `not viable (waiting ${s.grace} ms for its path)`);
      if (rec.active === ch) s.emit(rec.peer, viable);
    },
    expired: () => {
      ch.destroy(new PeerlinkError('ERR_PATH_LOST', `the network path to ${rec.peer.displayName} went away and did not come back within viabilityGrace (${s.grace} ms)`));
    },
    ...(s.timers ? { timers: s.timers } : {}),
  });
  const prev = rec.viability;
  rec.viability = v;
  const onViability = (viable: boolean): void => v.set(viable);
  ch.connection.on('viability', onViability);
  ch.once('closed', () => {
    ch.connection.off('viability', onViability);
    v.close();
    if (rec.viability === v) rec.viability = undefined;
  });
  // Replacing a connection whose path is down: the wait continues on this one (no new event).
  if (prev && !prev.viable) v.inherit(prev, ch.connection.isViable);
  // Already not viable (the path went while the handshake ran): after the `peer connected`
  // event the caller emits next, so the app hears of the peer before of its path.
  else if (!ch.connection.isViable) queueMicrotask(() => v.set(ch.connection.isViable));
}
