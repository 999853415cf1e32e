/**
 * Records of ours that another responder on this host publishes too: several peerlink processes
 * on one host share its host name, hence its address records, and the `_services._dns-sd._udp`
 * PTR of a service type they both advertise. When one of them stops, its goodbyes (RFC 6762
 * §10.1) for those records would make every cache drop them one second later, although the
 * others still publish them; the others then rescue them (responder.ts), but a rescue waits until
 * the record may be multicast again (§6: a second after we last sent it) and can arrive too late
 * on a loaded host. So a stopping responder leaves out the goodbyes for records it has recently
 * heard a sibling publish.
 *
 * A sibling is told from our own echoes by the packet: it comes from one of our addresses and
 * holds a record that is neither ours nor one we sent ourselves lately (the sibling's own
 * service). The records of ours in that packet that a sibling can share (the host's addresses,
 * the enumeration PTR) are then shared. A goodbye from our own
 * addresses for one of them means it is ours alone again; a goodbye for a record of the
 * sibling's own means a sibling is stopping, and all are ours alone again (a sibling that stays
 * rescues what we then say goodbye to). Our own goodbyes, read back, are echoes like the rest.
 * Bounded: only our own records are remembered, per interface, and stale ones are pruned.
 */
import type { Clock } from './clock.js';
import { nameKey } from './codec/name.js';
import { recordKey } from './codec/records.js';
import type { ResourceRecord } from './codec/types.js';

/** How long a record heard from a sibling counts as shared: the host records' TTL (120 s). */
export const SIBLING_FRESH_MS = 120_000;

/** Past this many remembered records, stale ones are dropped (old addresses, old host names). */
const PRUNE_AT = 64;

/**
 * Only what a sibling can really share: the host's address records and the service-type
 * enumeration PTR. A stranger forging our source address cannot so spare our SRV, TXT or
 * instance PTR their goodbyes.
 */
function shareable(r: ResourceRecord): boolean {
  return r.type === 'A' || r.type === 'AAAA' || (r.type === 'PTR' && nameKey(r.name).startsWith('_services._dns-sd._udp.'));
}

export class SiblingRecords {
  /** `${iface}|${recordKey}` → when a sibling last published it. */
  readonly #heard = new Map<string, number>();

  constructor(private readonly clock: Clock) {}

  /**
   * A response that came from one of our own addresses on `iface`. `mine()` gives the keys of
   * the records we publish there (asked only when the packet may be a sibling's); `echo(r)` says
   * whether we multicast `r` ourselves lately.
   */
  observe(iface: string, records: readonly ResourceRecord[], mine: () => ReadonlySet<string>, echo: (r: ResourceRecord) => boolean): void {
    // our own packet, read back: every record is one we sent (the common case); a goodbye always
    // gets a look, since a sibling's goodbye for a shared record ends its share
    if (records.every((r) => r.type === 'NSEC' || (r.ttl > 0 && echo(r)))) return;
    const ours = mine();
    let sibling = false;
    let left = false;
    for (const r of records) {
      if (r.type === 'NSEC') continue;
      const k = recordKey(r);
      if (r.ttl === 0) {
        // a goodbye for a record of ours: whoever sent it no longer publishes it; for one of its
        // own: a sibling is stopping (which one, and whether others remain, we cannot tell)
        if (ours.has(k)) this.#heard.delete(`${iface}|${k}`);
        else if (!echo(r)) left = true;
      } else if (!ours.has(k) && !echo(r)) sibling = true;
    }
    if (left) {
      // back to saying goodbye ourselves: a sibling still there rescues (responder.ts)
      for (const k of [...this.#heard.keys()]) if (k.startsWith(`${iface}|`)) this.#heard.delete(k);
      return;
    }
    if (!sibling) return;
    const now = this.clock.now();
    if (this.#heard.size >= PRUNE_AT) for (const [k, at] of this.#heard) if (now - at >= SIBLING_FRESH_MS) this.#heard.delete(k);
    for (const r of records) {
      const k = recordKey(r);
      if (r.ttl > 0 && shareable(r) && ours.has(k)) this.#heard.set(`${iface}|${k}`, now);
    }
  }

  /** A sibling published this record of ours on `iface` within SIBLING_FRESH_MS (a goodbye for it would be wrong). */
  shared(iface: string, r: ResourceRecord): boolean {
    const at = this.#heard.get(`${iface}|${recordKey(r)}`);
    return at !== undefined && this.clock.now() - at < SIBLING_FRESH_MS;
  }
}
