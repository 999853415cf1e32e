/**
 * Anti-replay sliding window for datagram sequence numbers: RFC 4303 §3.4.3 (IPsec ESP) and
 * RFC 6347 §4.1.2.6 (DTLS), with the bitmap kept as a ring of 32-bit words (RFC 6479) so
 * advancing the window costs O(words cleared), not a shift of the whole map.
 *
 * The window is checked before the datagram is authenticated (cheap rejection of duplicates
 * and of anything too old) and updated only after it was authenticated — an RFC 4303 rule:
 * a forged datagram must never move the window.
 *
 * Sequence numbers start at 1 and are below 2^53 (JS numbers; a sender at a million datagrams
 * a second needs 285 years to get there). Besides accept/reject the window counts what the
 * link-quality estimate needs: sequence gaps (lost until a late arrival fills them) and late
 * arrivals (reordered).
 */

export type ReplayVerdict = 'ok' | 'replayed' | 'tooOld';

export class ReplayWindow {
  /** Bits in the window: sequence numbers older than highest − size + 1 are refused. */
  readonly size: number;
  readonly #words: Uint32Array;
  readonly #mask: number;
  /** Highest sequence number accepted so far (0: none). */
  highest = 0;
  /** Numbers skipped over by a jump ahead and not (yet) filled by a late arrival. */
  lost = 0;
  /** Accepted datagrams that arrived after a higher number. */
  reordered = 0;

  /** `size`: a power of two, at least 64 (1024 by default, as DTLS 1.3 implementations use). */
  constructor(size = 1024) {
    if (size < 64 || (size & (size - 1)) !== 0) throw new RangeError('replay window size must be a power of two ≥ 64');
    this.size = size;
    // Twice the window in words (RFC 6479 keeps one spare word): the word holding the oldest
    // number still inside the window is never the one the newest number is written to.
    this.#words = new Uint32Array(size / 16);
    this.#mask = size / 16 - 1;
  }

  /** Would `seq` be accepted? Does not change the window. */
  check(seq: number): ReplayVerdict {
    if (seq > this.highest) return 'ok';
    if (seq <= 0 || seq + this.size <= this.highest) return 'tooOld';
    return this.#bit(seq) ? 'replayed' : 'ok';
  }

  /** Marks `seq` (already authenticated, and check() said 'ok') as received. */
  accept(seq: number): void {
    if (seq > this.highest) {
      const gap = seq - this.highest - 1;
      // Every number skipped over counts as lost until it turns up (bounded by the window:
      // what falls out of it never can).
      this.lost += Math.min(gap, this.size);
      this.#advance(seq);
    } else {
      this.reordered++;
      if (this.lost > 0) this.lost--;
    }
    const word = Math.floor(seq / 32) & this.#mask;
    this.#words[word] = ((this.#words[word] as number) | (1 << seq % 32)) >>> 0;
  }

  #bit(seq: number): boolean {
    return (((this.#words[Math.floor(seq / 32) & this.#mask] as number) >>> seq % 32) & 1) === 1;
  }

  /** Moves the window's top to `seq`, clearing the words it slides over. */
  #advance(seq: number): void {
    const from = Math.floor(this.highest / 32);
    const to = Math.floor(seq / 32);
    const n = Math.min(to - from, this.#words.length);
    for (let i = 1; i <= n; i++) this.#words[(from + i) & this.#mask] = 0;
    this.highest = seq;
  }
}
