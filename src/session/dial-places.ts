/**
 * Handshake places (docs/security.md "How many handshakes at once"): how many of the session's
 * dials may be in their TCP + TLS handshake at once, in all (`dialsInFlight`), to one remote
 * address (`dialsInFlightPerAddress`), and to suspect destinations — whose last dial timed out
 * and that never led to a connected peer (`dialsInFlightSuspect`).
 *
 * A stranger who accepts TCP and stalls the handshake (a tarpit) holds a place for
 * connectionTimeout per dial. Without the two sub-limits, a dozen such instances (ports or
 * addresses) held all the places and honest peers found after them waited; with them, one
 * address holds at most dialsInFlightPerAddress, and once each tarpit has timed out, all of
 * them together hold at most dialsInFlightSuspect.
 *
 * Dials the app asked for (connect(), invite()) are never held here, but they count.
 */
import type { SessionBudgets } from './budgets.js';
import { bareHost } from './dial-budget.js';

/** What a dial is, for the places: where it goes, and whether its destination is suspect. */
export interface PlaceClaim {
  address: string;
  suspect: boolean;
}

type PlaceLimits = Pick<SessionBudgets, 'dialsInFlight' | 'dialsInFlightPerAddress' | 'dialsInFlightSuspect'>;

/** The budget a dial would exceed now. */
export type PlaceBudget = 'dialsInFlight' | 'dialsInFlightPerAddress' | 'dialsInFlightSuspect';

export class HandshakePlaces {
  #total = 0;
  #suspect = 0;
  readonly #byAddress = new Map<string, number>();

  constructor(private readonly limits: PlaceLimits) {}

  /** Dials in their handshake now. */
  get inFlight(): number {
    return this.#total;
  }

  /** True while every place is taken (no claim could go now). */
  get full(): boolean {
    return this.#total >= this.limits.dialsInFlight;
  }

  /** The budget that holds a dial with this claim back now; undefined when it may go. */
  blocker(c: PlaceClaim): PlaceBudget | undefined {
    if (this.#total >= this.limits.dialsInFlight) return 'dialsInFlight';
    if ((this.#byAddress.get(bareHost(c.address)) ?? 0) >= this.limits.dialsInFlightPerAddress) return 'dialsInFlightPerAddress';
    if (c.suspect && this.#suspect >= this.limits.dialsInFlightSuspect) return 'dialsInFlightSuspect';
    return undefined;
  }

  /** Takes a place (even over the limits: dials the app asked for); returns its release, which may be called more than once. */
  take(c: PlaceClaim | undefined): () => void {
    const address = c ? bareHost(c.address) : undefined;
    const suspect = c?.suspect === true;
    this.#total++;
    if (suspect) this.#suspect++;
    if (address !== undefined) this.#byAddress.set(address, (this.#byAddress.get(address) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      if (suspect) this.#suspect--;
      if (address === undefined) return;
      const n = (this.#byAddress.get(address) ?? 1) - 1;
      if (n > 0) this.#byAddress.set(address, n);
      else this.#byAddress.delete(address);
    };
  }
}
