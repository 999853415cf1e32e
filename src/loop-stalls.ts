/**
 * Time our own event loop stood still, measured as the lateness of a periodic timer of ours.
 *
 * On a loaded machine a process may not run for seconds. When it runs again, timers fire
 * before the poll phase reads what arrived meanwhile (and a datagram socket whose buffer filled
 * up has dropped some of it), so silence measured across such a stall says nothing about the
 * other side. Users: the keepalive policy (session/keepalive-policy.ts: a stalled loop is not a
 * dead peer) and the mDNS failure watch (dnssd/failure-watch.ts: a stalled loop is not an
 * unanswered record).
 */

/** A tick later than this is a stall of our loop (timers are coarse; a few ms late is normal). */
export const STALL_MIN_MS = 50;
/** Stalls remembered by default (older ones are dropped first). */
const DEFAULT_MAX_STALLS = 16;

interface Stall {
  from: number;
  to: number;
}

export class LoopStalls {
  readonly #stalls: Stall[] = [];

  constructor(private readonly max = DEFAULT_MAX_STALLS) {}

  /**
   * A timer of ours that was due at `due` ran at `now`: its lateness (past STALL_MIN_MS) is a
   * stall [due, now]. One that begins where the last ended (the failure watch's sweep, then its
   * verdicts after the poll phase) extends it: one freeze is one stall, however it was observed.
   */
  tick(due: number, now: number): void {
    if (now - due <= STALL_MIN_MS) return;
    const last = this.#stalls[this.#stalls.length - 1];
    if (last !== undefined && due <= last.to) {
      last.to = Math.max(last.to, now);
      return;
    }
    this.#stalls.push({ from: due, to: now });
    if (this.#stalls.length > this.max) this.#stalls.shift();
  }

  /** Forgets stalls that ended at or before `t` (they no longer overlap any window asked about). */
  forgetBefore(t: number): void {
    while (this.#stalls.length > 0 && (this.#stalls[0] as Stall).to <= t) this.#stalls.shift();
  }

  /** How long our loop stood still after `since`, ms. */
  stalledSince(since: number): number {
    let ms = 0;
    for (const s of this.#stalls) if (s.to > since) ms += s.to - Math.max(s.from, since);
    return ms;
  }

  /** The longest single stall after `since`, ms. */
  longestSince(since: number): number {
    let ms = 0;
    for (const s of this.#stalls) if (s.to > since) ms = Math.max(ms, s.to - Math.max(s.from, since));
    return ms;
  }

  clear(): void {
    this.#stalls.length = 0;
  }
}
