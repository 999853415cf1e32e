/**
 * Gives the malloc heap's free pages back to the kernel once a burst of connections has settled
 * (docs/memory.md "Per peer"). Meshing with many peers — TLS handshakes, dials to several
 * addresses, duplicate dials the tie-break closes — frees native memory in chunks scattered
 * through glibc's heap, which glibc returns only from the heap's top: in the scale lab a peer
 * kept ~11 MiB (31 peers) of freed memory after the mesh formed, 1.27× a lone session's RSS
 * instead of 1.09×. So when at least `minEvents` control connections opened or closed and then
 * none did for `quietMs`, the session calls malloc_trim(0) once (net/sockopt.ts
 * releaseFreeMemory: glibc through koffi; elsewhere nothing happens). At most once per quiet
 * period, a few ms each; off with the session option `trimMemory: false`.
 */
import { realTimers, type ViabilityTimers } from './viability.js';

export interface MemoryTrimSettings {
  /** Connection events (opened or closed) that make a burst. Default 16. */
  minEvents?: number;
  /** Quiet time after the last event before trimming, ms. Default 10 000. */
  quietMs?: number;
}

export class MemoryTrim {
  #events = 0;
  #timer: unknown;
  #trims = 0;
  #closed = false;
  readonly #minEvents: number;
  readonly #quietMs: number;

  constructor(
    private readonly trim: () => boolean,
    settings: MemoryTrimSettings = {},
    private readonly timers: ViabilityTimers = realTimers,
  ) {
    this.#minEvents = settings.minEvents ?? 16;
    this.#quietMs = settings.quietMs ?? 10_000;
  }

  /** Trims done so far. */
  get trims(): number {
    return this.#trims;
  }

  /** A control connection opened or closed. */
  note(): void {
    if (this.#closed) return;
    this.#events++;
    if (this.#events < this.#minEvents) return;
    if (this.#timer !== undefined) this.timers.clearTimeout(this.#timer);
    this.#timer = this.timers.setTimeout(() => this.#fire(), this.#quietMs);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#events = 0;
    if (this.trim()) this.#trims++;
  }
}
