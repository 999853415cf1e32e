/**
 * Probing (RFC 6762 §8.1-8.2): before claiming unique names, ask three times, 250 ms apart,
 * with the proposed records in the authority section. A response holding a different record
 * for one of the names is a conflict (the caller renames). A simultaneous probe from someone
 * else is settled by comparing the two record sets: the lexicographically later set wins;
 * the loser waits one second and probes again (by then the winner defends its name).
 */
import type { NetworkInterface } from '../path/interfaces.js';
import type { Clock, TimerHandle } from './clock.js';
import { PacketWriter, DEFAULT_MAX_SEND_BYTES } from './codec/encode.js';
import { nameKey } from './codec/name.js';
import { compareProbeSets, recordKey } from './codec/records.js';
import { CLASS_IN, RRType, type ResourceRecord } from './codec/types.js';
import type { PacketNetwork, ReceivedPacket } from './transport.js';
import { withNsec } from './service-records.js';

export const PROBE_INTERVAL_MS = 250;
export const PROBE_COUNT = 3;
export const PROBE_LOST_DELAY_MS = 1000;

export interface ProbeSubject {
  /** The unique names being claimed. */
  names(): string[];
  /** The records proposed for those names on one interface. */
  records(iface: NetworkInterface): ResourceRecord[];
  /** A record we multicast ourselves earlier, in our own packet read late: not a conflict. */
  sentByUs?(r: ResourceRecord, p: ReceivedPacket): boolean;
}

export interface ProbeCallbacks {
  success(): void;
  /** Someone else holds one of the names (`record` is theirs): rename and probe again. */
  conflict(name: string, record: ResourceRecord): void;
}

export class Prober {
  private sent = 0;
  private timer: TimerHandle | undefined;
  private done = false;
  /** Lost a tie-break before our first probe went out: send it anyway, then defer. */
  private lostBeforeFirst = false;
  private sentOnce = false;

  constructor(
    private readonly net: PacketNetwork,
    private readonly clock: Clock,
    private readonly subject: ProbeSubject,
    private readonly cb: ProbeCallbacks,
  ) {}

  /** Starts after `delay` ms (a random 0-250 ms by default, RFC 6762 §8.1). */
  start(delay = this.clock.random() * PROBE_INTERVAL_MS): void {
    this.sent = 0;
    this.schedule(delay);
  }

  cancel(): void {
    this.done = true;
    this.timer?.cancel();
  }

  get active(): boolean {
    return !this.done;
  }

  private schedule(ms: number): void {
    this.timer?.cancel();
    this.timer = this.clock.setTimeout(() => this.step(), ms);
  }

  private step(): void {
    if (this.done) return;
    if (this.sent >= PROBE_COUNT) {
      this.done = true;
      this.cb.success();
      return;
    }
    if (this.net.interfaces.length === 0) {
      // nowhere to probe yet: a name is not ours until it has been asked about on a link
      this.schedule(1000);
      return;
    }
    for (const iface of this.net.interfaces) this.sendProbe(iface);
    this.sent++;
    this.sentOnce = true;
    if (this.lostBeforeFirst) {
      this.lostBeforeFirst = false;
      this.sent = 0;
      this.schedule(PROBE_LOST_DELAY_MS);
      return;
    }
    this.schedule(PROBE_INTERVAL_MS);
  }

  private sendProbe(iface: NetworkInterface): void {
    const w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
    w.header(0, false);
    // QU is not set: on a host where several responders share port 5353 a unicast answer
    // reaches only one of them (RFC 6762 §15), so we ask for multicast answers.
    for (const name of this.subject.names()) w.addQuestion({ name, qtype: RRType.ANY, qclass: CLASS_IN, unicastResponse: false });
    for (const r of this.subject.records(iface)) w.addRecord(2, { ...r, cacheFlush: false });
    this.net.sendMulticast(iface.name, w.finish());
  }

  /** Feeds every received packet while probing. */
  handle(p: ReceivedPacket): void {
    if (this.done) return;
    const names = new Set(this.subject.names().map(nameKey));
    if (p.packet.response) {
      if (p.port !== 5353) return;
      // our own NSEC (from another process of this host holding the same records) is no conflict
      const ours = new Set(withNsec(this.subject.records(p.iface)).map(recordKey));
      for (const r of [...p.packet.answers, ...p.packet.additionals]) {
        if (r.ttl === 0 || !names.has(nameKey(r.name))) continue;
        if (!ours.has(recordKey(r)) && !this.subject.sentByUs?.(r, p)) {
          this.done = true;
          this.timer?.cancel();
          this.cb.conflict(r.name, r);
          return;
        }
      }
      return;
    }
    if (p.packet.authorities.length === 0) return;
    const ourRecords = this.subject.records(p.iface);
    for (const name of names) {
      const theirs = p.packet.authorities.filter((r) => nameKey(r.name) === name);
      if (theirs.length === 0) continue;
      const ours = ourRecords.filter((r) => nameKey(r.name) === name);
      if (compareProbeSets(ours, theirs) < 0) {
        // Not probed yet: our first probe still goes out (0-250 ms after start), so every
        // host starting together hears every contender — host-contest.ts ranks the losers
        // on that — and then we defer like any loser.
        if (!this.sentOnce && !this.lostBeforeFirst) {
          this.lostBeforeFirst = true;
          return;
        }
        if (this.lostBeforeFirst) return;
        // we lost the tie-break: wait, then probe again from the start
        this.sent = 0;
        this.schedule(PROBE_LOST_DELAY_MS);
        return;
      }
    }
  }
}
