/**
 * The timing rules of a control connection's keepalive (docs/session.md "Liveness"), apart
 * from the connection so they run in fake time (test/unit/session/keepalive-policy.test.ts).
 *
 * **One PING per pair.** Only the side that dialled (the *pinger*) sends PING every
 * `interval`; the other side (the *answerer*) answers PONG and hears a PING every interval, so
 * both sides see traffic every interval from one exchange instead of two (keepalives are
 * O(N²) in a full mesh: at 100 peers two exchanges per pair were ~170 packets/s per peer at
 * idle). The answerer pings on its own only when the pinger's PINGs stop (silence past
 * 1.5 × interval: a frozen or cut-off peer, detected within interval + timeout as before) and,
 * for its own round-trip samples (peerInfo().rttMs, link quality), once every `rttRefresh`
 * alongside a PONG. A peer of an older version pings from both sides; that only costs traffic.
 *
 * **A starved event loop is not a dead peer.** On a loaded machine our process may not run for
 * seconds; when it runs again, timers fire before the poll phase reads what arrived meanwhile,
 * so the peer's PINGs sit unread in the socket while the silence looks long. Time our own loop
 * was stalled (measured as the lateness of our own keepalive tick) is not counted as the
 * peer's silence. Our loop's health does not hide a frozen peer: with a punctual loop the rule
 * is the plain one, and a loop late by a fraction f of each tick stretches the timeout by
 * 1 / (1 − f) at most. The peer's stalls look like a frozen peer from here (nothing tells
 * them apart): a peer that does not run for longer than the timeout is dropped, as documented.
 */
import { LoopStalls } from '../loop-stalls.js';

export interface KeepaliveRules {
  /** PING period of the pinger, and the tick period of both sides, ms. */
  interval: number;
  /** Silence (not counting our own stalls) after which the peer is dead, ms. */
  timeout: number;
  /** This side sends the periodic PINGs (the dialling side). */
  pinger: boolean;
  /** The answerer's own RTT sample period, ms (default 5 × interval). */
  rttRefresh?: number;
}

export interface KeepaliveTick {
  /** Send a PING now. */
  ping: boolean;
  /** The peer is dead: silent for longer than the timeout in time we were running. */
  dead: boolean;
  /** Wall-clock time since anything arrived, ms. */
  silentMs: number;
  /** Of that, how long our own event loop was stalled, ms. */
  stalledMs: number;
}

/** The answerer's fallback PING: silence past this many intervals means the pinger's PINGs stopped. */
const ANSWERER_SILENCE = 1.5;

export class KeepalivePolicy {
  readonly #rules: Required<KeepaliveRules>;
  #lastRx: number;
  #lastTick: number;
  #lastPing = Number.NEGATIVE_INFINITY;
  /** After the pace shrank: no verdict before this (see repace). */
  #graceUntil = Number.NEGATIVE_INFINITY;
  /** When our loop did not run (a tick that fired late); older ones end before the last receipt and no longer count. */
  readonly #stalls = new LoopStalls();

  readonly #fixedRefresh: boolean;

  constructor(rules: KeepaliveRules, now: number) {
    this.#rules = { rttRefresh: 5 * rules.interval, ...rules };
    this.#fixedRefresh = rules.rttRefresh !== undefined;
    this.#lastRx = now;
    this.#lastTick = now;
  }

  get interval(): number {
    return this.#rules.interval;
  }

  get timeout(): number {
    return this.#rules.timeout;
  }

  /**
   * A new pace (keepalive-pace.ts: more or fewer peers). The caller re-arms its tick timer at
   * `interval` at the same moment, so the next tick's lateness is measured against it.
   */
  repace(interval: number, timeout: number, now: number): void {
    // A shorter timeout does not apply to silence that built up under the longer one: the peer
    // may be pinging at the old pace (it paces itself), and as answerer we had no reason to
    // ping. Until something arrives, the old deadline or a full new timeout from now, whichever
    // is later, holds; our own PING (1.5 × the new interval of silence) asks for a sign of life.
    // One grace per silence: a pace that keeps shrinking and growing (peers coming and going)
    // must not push the verdict on a frozen peer back for ever.
    if (timeout < this.#rules.timeout && this.#graceUntil <= now) this.#graceUntil = Math.max(this.#lastRx + this.#rules.timeout, now + timeout);
    this.#rules.interval = interval;
    this.#rules.timeout = timeout;
    if (!this.#fixedRefresh) this.#rules.rttRefresh = 5 * interval;
    this.#lastTick = now;
  }

  get pinger(): boolean {
    return this.#rules.pinger;
  }

  /** Anything arrived from the peer. */
  received(now: number): void {
    this.#lastRx = now;
    this.#graceUntil = Number.NEGATIVE_INFINITY;
  }

  /** A PING of ours went out (periodic, piggybacked or a liveness probe). */
  pinged(now: number): void {
    this.#lastPing = now;
  }

  /** Wall-clock ms since anything arrived. */
  silentFor(now: number): number {
    return now - this.#lastRx;
  }

  /**
   * The answerer, replying to a PING: also send a PING of its own (right behind the PONG, so it
   * costs no extra wake-up on the pinger) when its last PING is `rttRefresh` old.
   */
  piggyback(now: number): boolean {
    if (this.#rules.pinger || now - this.#lastPing < this.#rules.rttRefresh) return false;
    this.#lastPing = now;
    return true;
  }

  /** The periodic check, every `interval`. */
  tick(now: number): KeepaliveTick {
    const { interval, timeout, pinger } = this.#rules;
    this.#stalls.tick(this.#lastTick + interval, now);
    this.#lastTick = now;
    this.#stalls.forgetBefore(this.#lastRx);
    const silentMs = now - this.#lastRx;
    const stalledMs = this.#stalls.stalledSince(this.#lastRx);
    const heard = silentMs - stalledMs;
    if (heard > timeout && now >= this.#graceUntil) return { ping: false, dead: true, silentMs, stalledMs };
    // The pinger every tick (a tick early by timer jitter still pings); the answerer only when
    // the pinger's PINGs stopped coming.
    const due = pinger ? now - this.#lastPing >= interval / 2 : heard >= ANSWERER_SILENCE * interval && now - this.#lastPing >= interval / 2;
    if (due) this.#lastPing = now;
    return { ping: due, dead: false, silentMs, stalledMs };
  }
}
