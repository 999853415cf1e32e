/** ViabilityTimers in fake time (the session's injected unref'd timers), for unit tests. */
import type { ViabilityTimers } from '../../../src/session/viability.js';

export class FakeTimers implements ViabilityTimers {
  time = 0;
  #next = 1;
  readonly #due = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#due.set(id, { at: this.time + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#due.delete(h as number);
  }
  /** Runs what falls due within `ms`, in order, with the time set to each one's. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const next = [...this.#due].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.#due.delete(next[0]);
      this.time = next[1].at;
      next[1].fn();
    }
    this.time = end;
  }
  get pending(): number {
    return this.#due.size;
  }
}
