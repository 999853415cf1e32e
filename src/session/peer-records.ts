/**
 * The session's peer records, bounded. A record is kept while anything of its peer is open
 * (a connection, a handshake, a claim, a stream — transfers ride streams); once the peer is
 * absent it expires after `budgets.absentPeerExpiry`, and over `budgets.maxPeerRecords` the
 * least recently seen absent record is evicted (counted in the BudgetLedger). A record whose
 * peer is here is never evicted, so the cap may be exceeded by connected peers alone.
 *
 * Without this, every HELLO with a new id left a record for the life of the session: 4,000
 * short connections with random ids were +28 MB of heap (issue 9, finding 7).
 *
 * The map's order is the LRU order (a record seen again moves to the end), so expiry and
 * eviction walk from the front and stop at the first record still young enough.
 */
import type { BudgetLedger } from './budgets.js';
import type { PeerRecord } from './peer-record.js';

export interface PeerRecordsOptions {
  ledger: BudgetLedger;
  /** A record left the store (expired or evicted): drop anything cached for it. */
  removed(rec: PeerRecord): void;
  /** The clock (ms); injected for fake-time tests. */
  now?: () => number;
}

export class PeerRecords {
  readonly #map = new Map<string, PeerRecord>();
  readonly #ledger: BudgetLedger;
  readonly #removed: (rec: PeerRecord) => void;
  readonly #now: () => number;

  constructor(options: PeerRecordsOptions) {
    this.#ledger = options.ledger;
    this.#removed = options.removed;
    this.#now = options.now ?? Date.now;
  }

  /** The records by peer key (read-only: the store alone adds and removes). */
  get map(): ReadonlyMap<string, PeerRecord> {
    return this.#map;
  }

  get size(): number {
    return this.#map.size;
  }

  get(key: string): PeerRecord | undefined {
    return this.#map.get(key);
  }

  values(): IterableIterator<PeerRecord> {
    return this.#map.values();
  }

  /** Adds a new record (seen now), after expiring old ones and making room under the cap. */
  add(rec: PeerRecord): void {
    this.sweep();
    const max = this.#ledger.limits.maxPeerRecords;
    if (this.#map.size >= max) {
      for (const old of this.#map.values()) {
        if (this.#map.size < max) break;
        if (!old.absent) continue;
        this.#delete(old);
        this.#ledger.exceeded({ budget: 'maxPeerRecords', peer: old.key, detail: 'least recently seen absent peer record evicted' });
      }
    }
    rec.seenAt = this.#now();
    this.#map.set(rec.key, rec);
  }

  /** The peer was seen (its HELLO accepted, a connection of it closed): it moves to the young end. */
  seen(rec: PeerRecord): void {
    if (this.#map.get(rec.key) !== rec) return;
    rec.seenAt = this.#now();
    this.#map.delete(rec.key);
    this.#map.set(rec.key, rec);
  }

  /** Removes absent records not seen for `absentPeerExpiry`. */
  sweep(): void {
    const cutoff = this.#now() - this.#ledger.limits.absentPeerExpiry;
    for (const rec of this.#map.values()) {
      // LRU order: every record after this one was seen later.
      if (rec.seenAt > cutoff) break;
      if (rec.absent) this.#delete(rec);
    }
  }

  #delete(rec: PeerRecord): void {
    this.#map.delete(rec.key);
    this.#removed(rec);
  }
}
