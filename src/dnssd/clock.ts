/**
 * Time source for the engine. mDNS logic is all timers (probe every 250 ms, refresh at
 * 80 % of a TTL, back off to an hour); injecting the clock lets unit tests run that logic
 * in fake time instead of waiting.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /**
   * Runs `fn` after the poll phase that follows: what arrived on the sockets while this timer
   * waited is read first (Node runs due timers before it polls for I/O), up to 32 datagrams per
   * socket (libuv's batch). A decision that a packet heard meanwhile could change waits for this.
   */
  afterIo(fn: () => void): void;
  random(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    // the engine's timers never keep a process alive on their own; open sockets do
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  afterIo(fn) {
    setImmediate(fn);
  },
  random: Math.random,
};

/** A manually advanced clock for tests. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();
  private rng: number;

  constructor(start = 1_000_000, seed = 1) {
    this.t = start;
    this.rng = seed;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { cancel: () => this.timers.delete(id) };
  }

  /** After the timers due now (packets a test delivers are timers too). */
  afterIo(fn: () => void): void {
    this.setTimeout(fn, 0);
  }

  /** Our loop stands still for `ms`: time passes and no timer runs until the next advance(). */
  stall(ms: number): void {
    this.t += ms;
  }

  /** Deterministic pseudo-random numbers (xorshift). */
  random(): number {
    let x = this.rng || 1;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rng = x >>> 0;
    return this.rng / 0x100000000;
  }

  /** Advances time, running due timers in order (including ones they schedule). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, tm] of this.timers) {
        if (tm.at < nextAt || (tm.at === nextAt && id < nextId)) {
          nextAt = tm.at;
          nextId = id;
        }
      }
      if (nextId < 0 || nextAt > end) break;
      const tm = this.timers.get(nextId) as { at: number; fn: () => void };
      this.timers.delete(nextId);
      this.t = Math.max(this.t, tm.at);
      tm.fn();
    }
    this.t = end;
  }

  get pending(): number {
    return this.timers.size;
  }
}
