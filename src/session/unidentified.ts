/**
 * Incoming connections that have not identified themselves yet (no HELLO / STREAM_BIND):
 * counted in total and per source address, so that strangers cannot make the session hold
 * an unbounded number of them (docs/security.md "Before HELLO"). A connection over a budget
 * is refused at once and the refusal is counted in the BudgetLedger.
 *
 * Source addresses are compared exactly (IPv4-mapped IPv6 as IPv4): on a LAN every host shares
 * one /64, so grouping IPv6 by prefix would let one host lock out the others; the total budget
 * bounds a host that uses many addresses.
 */
import type { BudgetLedger } from './budgets.js';

/** `::ffff:192.0.2.1` and `192.0.2.1` are one source. */
export function sourceAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class UnidentifiedConnections {
  readonly #ledger: BudgetLedger;
  readonly #byAddress = new Map<string, number>();
  #total = 0;

  constructor(ledger: BudgetLedger) {
    this.#ledger = ledger;
  }

  /** Connections counted now. */
  get size(): number {
    return this.#total;
  }

  /** Connections from `address` counted now (its TLS or first message still to come). */
  from(address: string): number {
    return this.#byAddress.get(sourceAddress(address)) ?? 0;
  }

  /**
   * Counts a new connection from `address` and returns a release function (call it once, when
   * the connection identified itself or closed), or undefined when a budget refuses it (the
   * refusal is counted; the caller closes the connection).
   */
  admit(address: string): (() => void) | undefined {
    const limits = this.#ledger.limits;
    const from = sourceAddress(address);
    if (this.#total >= limits.unidentifiedConnections) {
      this.#ledger.exceeded({ budget: 'unidentifiedConnections', address: from });
      return undefined;
    }
    const n = this.#byAddress.get(from) ?? 0;
    if (n >= limits.unidentifiedPerAddress) {
      this.#ledger.exceeded({ budget: 'unidentifiedPerAddress', address: from });
      return undefined;
    }
    this.#byAddress.set(from, n + 1);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#byAddress.get(from) ?? 1) - 1;
      if (left <= 0) this.#byAddress.delete(from);
      else this.#byAddress.set(from, left);
    };
  }
}
