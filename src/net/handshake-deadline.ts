/**
 * A handshake deadline that counts the time this process ran, not the time it stood still.
 *
 * A timer fires in the event loop's timers phase, before the poll phase that reads what
 * arrived meanwhile. On a starved host (100 peers on two cores: event loops seconds behind) the
 * peer's answer was often already in our socket, unread, when the deadline passed, and the
 * handshake was thrown away and made again from the start. So:
 * - the verdict waits for one poll phase (setImmediate): what arrived is read first, and
 *   `more()` (the caller's rule, e.g. "the server answered: once more the limit") sees it;
 * - a timer that fired LATE_MS or more after it was due says our own loop stood still that
 *   long — the process was starved, not the peer slow — and that lateness is granted again,
 *   up to `limit` in all over the deadline's life (a peer that never answers fails within
 *   2 × limit plus our own lateness, never later).
 * Only our own lateness counts: a remote peer cannot stretch the deadline without making this
 * process slow, which costs it the same CPU whatever we do.
 */

/** A timer this late means our event loop stood still (ms). */
export const LATE_MS = 500;

export class HandshakeDeadline {
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #due = 0;
  /** Lateness still to be granted (ms). */
  #credit: number;
  #done = false;
  readonly #start = performance.now();

  /**
   * @param limit the deadline, ms
   * @param more at the deadline (after a poll phase): ms more to give, or 0
   * @param expire called once when the deadline passes for good
   * @param unref the timer does not keep the process alive
   */
  constructor(
    limit: number,
    private readonly more: () => number,
    private readonly expire: () => void,
    private readonly unref = false,
  ) {
    this.#credit = limit;
    this.#arm(limit);
  }

  /** ms since the deadline started (for messages). */
  get elapsed(): number {
    return Math.round(performance.now() - this.#start);
  }

  cancel(): void {
    this.#done = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }

  #arm(ms: number): void {
    this.#due = performance.now() + ms;
    this.#timer = setTimeout(() => this.#fired(), ms);
    if (this.unref) this.#timer.unref();
  }

  #fired(): void {
    this.#timer = undefined;
    const late = performance.now() - this.#due;
    // one poll phase first: what arrived while we were not running is read
    this.#immediate = setImmediate(() => {
      this.#immediate = undefined;
      if (this.#done) return;
      const extra = this.more();
      if (extra > 0) return this.#arm(extra);
      if (late >= LATE_MS && this.#credit > 0) {
        const grant = Math.min(late, this.#credit);
        this.#credit -= grant;
        return this.#arm(grant);
      }
      this.#done = true;
      this.expire();
    });
    if (this.unref) this.#immediate.unref();
  }
}
