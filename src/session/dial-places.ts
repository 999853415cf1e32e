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
 * Dials the app asked for (connect(), invite()) are never held here, but they count. So do
 * reconnects to proven destinations and dials to loopback addresses, which only the total holds.
 */
import type { SessionBudgets } from './budgets.js';

/** What a dial is, for the places: where it goes, and what is known of its destination. */
export interface PlaceClaim {
  address: string;
  /** Its last dial timed out and no peer was ever connected through it. */
  suspect: boolean;
  /** A peer was connected through it before (a reconnect): only the total applies. */
  proven?: boolean;
}

type PlaceLimits = Pick<SessionBudgets, 'dialsInFlight' | 'dialsInFlightPerAddress' | 'dialsInFlightSuspect'>;

/** The budget a dial would exceed now. */
export type PlaceBudget = 'dialsInFlight' | 'dialsInFlightPerAddress' | 'dialsInFlightSuspect';

/** Loopback addresses: only processes on this host can be there (mDNS answers heard on other interfaces are never dialled there). */
function loopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

export class HandshakePlaces {
  #total = 0;
  #suspect = 0;
  /** Bare address → [dials in flight there, of which suspect]. */
  readonly #byAddress = new Map<string, [number, number]>();

  constructor(private readonly limits: PlaceLimits) {}

  /** Dials in their handshake now. */
  get inFlight(): number {
    return this.#total;
  }

  /** True while every place is taken (no claim could go now). */
  get full(): boolean {
    return this.#total >= this.limits.dialsInFlight;
  }

  /**
   * The budget that holds a dial with this claim back now; undefined when it may go. `address`
   * is compared as given: pass it through `bareHost` (dial-budget.ts) first.
   *
   * Per address, suspect dials get one place less than the limit: a stranger who advertises
   * instances at an honest peer's address on ports that drop SYNs (a firewall's default) then
   * cannot keep that peer's real port waiting behind them once each has timed out. Proven
   * destinations (reconnects) and loopback addresses only count toward the total.
   */
  blocker(c: PlaceClaim): PlaceBudget | undefined {
    if (this.#total >= this.limits.dialsInFlight) return 'dialsInFlight';
    if (c.proven === true) return undefined;
    if (!loopback(c.address)) {
      const [n, suspect] = this.#byAddress.get(c.address) ?? [0, 0];
      if (n >= this.limits.dialsInFlightPerAddress || (c.suspect && suspect >= this.limits.dialsInFlightPerAddress - 1)) return 'dialsInFlightPerAddress';
    }
    if (c.suspect && this.#suspect >= this.limits.dialsInFlightSuspect) return 'dialsInFlightSuspect';
    return undefined;
  }

  /** Takes a place (even over the limits: dials the app asked for); returns its release, which may be called more than once. */
  take(c: PlaceClaim | undefined): () => void {
    const address = c?.address;
    const suspect = c?.suspect === true ? 1 : 0;
    this.#total++;
    this.#suspect += suspect;
    if (address !== undefined) {
      const [n, s] = this.#byAddress.get(address) ?? [0, 0];
      this.#byAddress.set(address, [n + 1, s + suspect]);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      this.#suspect -= suspect;
      if (address === undefined) return;
      const [n, s] = this.#byAddress.get(address) ?? [1, suspect];
      if (n > 1) this.#byAddress.set(address, [n - 1, s - suspect]);
      else this.#byAddress.delete(address);
    };
  }
}
