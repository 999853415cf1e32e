/**
 * The IPv4 and IPv6 copies of one response. A dual-stack responder sends its announcements, and
 * its answers to a question asked over both families, once per family (RFC 6762 §6: answers go
 * out over the family the query came on; Avahi and mDNSResponder do the same). Every host on
 * the link then reads both copies. Only byte-identical copies pair — announcements, and answers
 * whose two schedules (20-120 ms each, aggregated with what else is pending on that family)
 * happened to match: 4.3 % of the datagrams a peer read at 80 peers (bench/scale/README.md,
 * session 14), a small saving of decoding and cache work.
 *
 * A response whose bytes equal those of a response read on the other family's socket of the
 * same interface within TWIN_MS is that response's twin: it says nothing new to the cache
 * (same records, same TTLs; the cache is per interface, not per family), so the transport drops
 * it before decoding. Only responses: a query over IPv6 must still be answered over IPv6 (an
 * IPv6-only host asked it). Each copy pairs with one other copy at most, so a host that repeats
 * an announcement a second later is heard again. Bounded: at most MAX_RECENT responses and
 * MAX_RECENT_BYTES held per interface, none longer than TWIN_MS nor larger than 9000 bytes.
 *
 * What a dropped twin would have added: its source address (the responder's address of the
 * other family) to the cached records' `sources`. Records received over one family carry the
 * address records of both (ours and Avahi's do), which is what ties them to their SRV
 * (service-instance.ts `sameSender`); a responder whose two copies differ (Avahi sends AAAA over
 * IPv4 but no A over IPv6) is not twinned. And duplicate-answer suppression (RFC 6762 §7.4,
 * responder.ts) is per family: a neighbour's answer whose IPv6 copy is dropped here no longer
 * suppresses our own pending IPv6 answer for a shared record — an extra packet, nothing lost.
 */

/**
 * Copies read this close together are twins: the sender sends both in the same turn of its
 * loop, and we read both sockets in the same poll phase (up to 32 datagrams each, libuv), so
 * even with a backlog they come within a few dozen datagrams of each other. Short enough that
 * the same bytes sent again later (a second announcement, a second later) are heard again.
 */
export const TWIN_MS = 500;
/** Responses remembered per interface (a backlog read 32 datagrams per socket per poll phase puts twins ≤ ~64 apart). */
const MAX_RECENT = 128;
/** Bytes of responses remembered per interface: a stranger's flood of large responses holds at most this. */
export const MAX_RECENT_BYTES = 256 * 1024;
/** A response larger than an mDNS packet may be (RFC 6762 §17: 9000 bytes) is not remembered. */
const MAX_TWIN_BYTES = 9000;

interface Recent {
  family: 'IPv4' | 'IPv6';
  at: number;
  data: Buffer;
}

interface Held {
  list: Recent[];
  bytes: number;
}

export class FamilyTwins {
  readonly #recent = new Map<string, Held>();
  /** Responses dropped as the twin of one read on the other family. */
  dropped = 0;

  // Date.now, not performance.now: the global `performance` loads node:perf_hooks, which a lone session does not (docs/memory.md)
  constructor(private readonly now: () => number = Date.now) {}

  /** Whether `data`, a response read on `family` of `iface`, is the twin of one already read (drop it). */
  twin(iface: string, family: 'IPv4' | 'IPv6', data: Buffer): boolean {
    const now = this.now();
    let held = this.#recent.get(iface);
    if (!held) {
      held = { list: [], bytes: 0 };
      this.#recent.set(iface, held);
    }
    const { list } = held;
    while (list.length > 0 && now - (list[0] as Recent).at > TWIN_MS) held.bytes -= (list.shift() as Recent).data.length;
    for (let i = 0; i < list.length; i++) {
      const r = list[i] as Recent;
      if (r.family !== family && r.data.length === data.length && r.data.equals(data)) {
        list.splice(i, 1);
        held.bytes -= r.data.length;
        this.dropped++;
        return true;
      }
    }
    if (data.length > MAX_TWIN_BYTES) return false;
    list.push({ family, at: now, data });
    held.bytes += data.length;
    while (list.length > MAX_RECENT || held.bytes > MAX_RECENT_BYTES) held.bytes -= (list.shift() as Recent).data.length;
    return false;
  }

  /** Bytes held for an interface (for tests). */
  heldBytes(iface: string): number {
    return this.#recent.get(iface)?.bytes ?? 0;
  }

  /** Forgets an interface (it went away). */
  forget(iface: string): void {
    this.#recent.delete(iface);
  }
}

/** A DNS message's QR bit (RFC 1035 §4.1.1): a response. */
export function isResponse(data: Buffer): boolean {
  return data.length >= 3 && ((data[2] as number) & 0x80) !== 0;
}
