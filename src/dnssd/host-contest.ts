/**
 * Choosing a new host name after a conflict (RFC 6762 §9) when many hosts share one name —
 * a room of cloned boards all called `raspberrypi`, or namespaces sharing a machine's name.
 *
 * The plain rule (`vm` → `vm-2` → `vm-3`, one step per conflict) settles one host per round
 * when N hosts start together: every loser probes the same next name and all but one lose
 * again. N rounds, N² probes, and past 15 conflicts in 10 s a 5 s pause per round (§8.1): 48
 * hosts took a minute to name themselves, and announced their services only then. A host that
 * joins later walks the same staircase past every name in use.
 *
 * Two observations make it a few rounds instead:
 * - Labels in use: every A/AAAA record heard in a response is remembered for a while
 *   (bounded); a new label skips them. Names only being probed are not skipped: losers of one
 *   round rename at slightly different moments, and their lists of free labels must agree.
 * - Rank among simultaneous contenders: the probes for our name heard while we probed are the
 *   other contenders. Ordered by the §8.2 tie-break (the lexicographically later record set
 *   wins), each loser takes the free label at its own rank, so N losers that heard the same
 *   probes pick N different labels. Views that differ only cost another round.
 * The first free label for a lone loser is still `name-2`.
 *
 * A crowd (CROWD or more other hosts probing our name at once) is different when packets are
 * lost: 100 processes on two cores overflow their sockets' receive buffers (the scale lab drops
 * 90 % of mDNS datagrams at 100 peers), each loser ranks itself among the few probes it heard, and
 * several take the same label. They find out only when a later query makes both answer, often
 * minutes on, and every such rename re-announces a service that every peer resolves again. So a
 * loser in a crowd takes a label made from its own addresses (`vm-483920`: a hash of its address
 * records, which are unique on the link), which needs no agreement with anyone; the rank scheme
 * is the fallback when that label is taken. So is a host losing a label it took after an earlier
 * conflict (`vm-8`): only a host's first rename without a crowd walks the plain sequence.
 */
import type { NetworkInterface } from '../path/interfaces.js';
import type { Clock } from './clock.js';
import { nameKey } from './codec/name.js';
import { compareProbeSets, recordKey } from './codec/records.js';
import type { ResourceRecord } from './codec/types.js';

/** Labels heard in use are remembered this long (the host records' TTL, 120 s, plus margin). */
const SEEN_MS = 150_000;
/** Probes heard this recently for our name count as contenders (a probe round lasts ~2 s). */
const CONTENDER_MS = 5000;
/** Bounds: a stranger naming hosts cannot grow these without limit. */
const MAX_SEEN = 4096;
const MAX_PROBE_SETS = 512;
/** Other hosts probing our name at once that make a crowd (see above). */
const CROWD = 2;
/** Labels tried at most when looking for a free one. */
const MAX_SEARCH = 10_000;

interface ProbeSet {
  records: ResourceRecord[];
  iface: string;
  /** First and last probe heard with this set. */
  first: number;
  at: number;
}

/**
 * A label someone else has been probing for at least this long (and still is, within
 * PROBING_RECENT_MS) is skipped too: a host that lost to an owner picks the same first free
 * label as everyone who lost to it a moment earlier. Younger probes are not: they may come from
 * the other losers of our own round, who renamed a few ms before us from the same view.
 */
const PROBING_OLDER_MS = 300;
const PROBING_RECENT_MS = 2000;

export class HostNameContest {
  /** label key (lower-case, no `.local`) → last heard. */
  readonly #seen = new Map<string, number>();
  /** host fqdn key → record set key → the set probed for it. */
  readonly #probes = new Map<string, Map<string, ProbeSet>>();
  #probeSets = 0;

  constructor(private readonly clock: Clock) {}

  /** Address records in a response: their names are in use. */
  observeResponse(records: readonly ResourceRecord[]): void {
    const now = this.clock.now();
    for (const r of records) if ((r.type === 'A' || r.type === 'AAAA') && r.ttl > 0) this.#see(r.name, now);
  }

  /** A probe's proposed address records (authority section): contenders for the name. */
  observeProbe(authorities: readonly ResourceRecord[], iface: string): void {
    const now = this.clock.now();
    const byName = new Map<string, ResourceRecord[]>();
    for (const r of authorities) {
      if (r.type !== 'A' && r.type !== 'AAAA') continue;
      const k = nameKey(r.name);
      const list = byName.get(k) ?? [];
      list.push(r);
      byName.set(k, list);
    }
    for (const [k, records] of byName) {
      let sets = this.#probes.get(k);
      if (!sets) {
        sets = new Map();
        this.#probes.set(k, sets);
      }
      const setKey = records.map(recordKey).sort().join(';');
      const had = sets.get(setKey);
      if (!had) this.#probeSets++;
      sets.set(setKey, { records, iface, first: had && now - had.at < PROBING_RECENT_MS ? had.first : now, at: now });
    }
    if (this.#probeSets > MAX_PROBE_SETS) this.#pruneProbes(now);
  }

  /**
   * The label to probe next after losing `label` (`vm` → `vm-7`). `ours(iface)` gives our
   * proposed address records on an interface; `winner` is the record that beat us, when known;
   * `defaultIface` is where our address label comes from when no contender was heard;
   * `renamedBefore`: `label` is one we took after an earlier conflict (a configured `pi-4` is not).
   */
  next(label: string, ours: (iface: string) => ResourceRecord[], winner?: ResourceRecord, defaultIface?: string, renamedBefore = false): string {
    const now = this.clock.now();
    const m = /^(.*)-(\d+)$/.exec(label);
    const base = m ? (m[1] as string) : label;
    const fqdnKey = nameKey(`${label}.local`);
    let rank = 0;
    let contenders = 0;
    let crowdIface: string | undefined;
    let winnerIsContender = false;
    const winnerKey = winner ? recordKey(winner) : undefined;
    for (const s of this.#probes.get(fqdnKey)?.values() ?? []) {
      if (now - s.at > CONTENDER_MS) continue;
      const mine = ours(s.iface);
      const mineKeys = new Set(mine.map(recordKey));
      // our own probes (looped back), or another process of this host: not a contender
      if (s.records.every((r) => mineKeys.has(recordKey(r)))) continue;
      contenders++;
      crowdIface ??= s.iface;
      if (compareProbeSets(mine, s.records) < 0) {
        rank++;
        if (winnerKey !== undefined && s.records.some((r) => recordKey(r) === winnerKey)) winnerIsContender = true;
      }
    }
    // A label we took after an earlier conflict was lost again: the sequential walk failed once
    // already (under loss, a few hosts that heard no one else walk vm-8, vm-9, vm-10 … together
    // for minutes), so take the address label too.
    const iface = crowdIface ?? defaultIface;
    if ((contenders >= CROWD || renamedBefore) && iface !== undefined) {
      const tagged = addressLabel(base, ours(iface));
      if (tagged !== undefined && tagged !== label && !this.#inUse(tagged, now) && !this.#probedByOthers(tagged, now, ours)) return tagged;
    }
    // the contender that beat everyone keeps the name: it takes no new label
    if (winnerIsContender) rank--;
    let free = 0;
    for (let n = m ? Number(m[2]) + 1 : 2, tried = 0; tried < MAX_SEARCH; n++, tried++) {
      const suffix = `-${n}`;
      const candidate = base.slice(0, 63 - suffix.length) + suffix;
      if (this.#inUse(candidate, now) || this.#probedByOthers(candidate, now, ours)) continue;
      if (free++ === rank) return candidate;
    }
    const suffix = `-${Math.floor(this.clock.random() * 1e6)}`;
    return base.slice(0, 63 - suffix.length) + suffix;
  }

  #inUse(label: string, now: number): boolean {
    const t = this.#seen.get(nameKey(`${label}.local`));
    return t !== undefined && now - t < SEEN_MS;
  }

  #probedByOthers(label: string, now: number, ours: (iface: string) => ResourceRecord[]): boolean {
    for (const s of this.#probes.get(nameKey(`${label}.local`))?.values() ?? []) {
      if (now - s.at > PROBING_RECENT_MS || now - s.first < PROBING_OLDER_MS) continue;
      const mine = new Set(ours(s.iface).map(recordKey));
      if (!s.records.every((r) => mine.has(recordKey(r)))) return true;
    }
    return false;
  }

  #see(name: string, now: number): void {
    const k = nameKey(name);
    this.#seen.delete(k);
    this.#seen.set(k, now);
    if (this.#seen.size > MAX_SEEN) {
      // oldest first (insertion order is recency order)
      for (const [key, t] of this.#seen) {
        if (this.#seen.size <= MAX_SEEN && now - t < SEEN_MS) break;
        this.#seen.delete(key);
      }
    }
  }

  #pruneProbes(now: number): void {
    this.#probeSets = 0;
    for (const [k, sets] of this.#probes) {
      for (const [sk, s] of sets) if (now - s.at > CONTENDER_MS) sets.delete(sk);
      if (sets.size === 0) this.#probes.delete(k);
      else this.#probeSets += sets.size;
    }
    // still over: a flood of fresh probes; forget them all (costs at most an extra round)
    if (this.#probeSets > MAX_PROBE_SETS) {
      this.#probes.clear();
      this.#probeSets = 0;
    }
  }
}

/**
 * `base-NNNNNN`: six digits from a hash (FNV-1a) of our address records' data. Addresses are
 * unique on a link, so two hosts get the same label only by a hash collision (about 0.5 % for
 * some pair among 100 hosts), which costs those two one more round. Undefined without addresses.
 */
export function addressLabel(base: string, records: readonly ResourceRecord[]): string | undefined {
  const addresses = records.flatMap((r) => (r.type === 'A' || r.type === 'AAAA' ? [r.address.toLowerCase()] : [])).sort();
  if (addresses.length === 0) return undefined;
  let h = 0x811c9dc5;
  for (const ch of addresses.join(',')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const suffix = `-${100_000 + (h % 900_000)}`;
  return base.slice(0, 63 - suffix.length) + suffix;
}

/** Our proposed host address records on the interface named `iface` (empty when it is gone). */
export function recordsOn(interfaces: readonly NetworkInterface[], iface: string, make: (i: NetworkInterface) => ResourceRecord[]): ResourceRecord[] {
  const i = interfaces.find((x) => x.name === iface);
  return i ? make(i) : [];
}
