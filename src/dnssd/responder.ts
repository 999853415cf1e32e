/**
 * The mDNS responder (RFC 6762 §6-§10): owns the host name and every registered service
 * of one engine, probes and announces them, answers queries (shared answers aggregated
 * 20-120 ms, unique ones at once, over the address family the query came on; known-answer
 * suppression across TC packets; QU and legacy unicast), defends its names, renames on conflict
 * and says goodbye.
 */
import { EventEmitter } from 'node:events';
import type { NetworkInterface } from '../path/interfaces.js';
import type { Clock, TimerHandle } from './clock.js';
import { PacketWriter, DEFAULT_MAX_SEND_BYTES } from './codec/encode.js';
import { nameKey } from './codec/name.js';
import { recordKey, rrsetKey } from './codec/records.js';
import { CLASS_IN, RRType, rrTypeNumber, type DnsPacket, type Question, type ResourceRecord } from './codec/types.js';
import { instanceFqdn, nextInstanceName } from './names.js';
import { Prober } from './prober.js';
import { HostNameContest, recordsOn } from './host-contest.js';
import { enumerationRecord, hostRecords, sharedServiceRecords, uniqueServiceRecords, withNsec, type ServiceDescription } from './service-records.js';
import type { PacketNetwork, ReceivedPacket } from './transport.js';
import { conflictChannel, log, registrationChannel } from './diagnostics.js';
import type { TokenBucket } from './rate-limit.js';
import { SiblingRecords } from './sibling-records.js';

export const ANNOUNCE_COUNT = 2;
export const ANNOUNCE_INTERVAL_MS = 1000;
/** Legacy unicast answers carry at most this TTL (RFC 6762 §6.7). */
export const LEGACY_TTL = 10;
/** Wait for the rest of a truncated known-answer list (RFC 6762 §7.2: 400-500 ms). */
const TC_WAIT_MIN = 400;
const TC_WAIT_SPREAD = 100;

export type RegistrationState = 'waiting' | 'probing' | 'probed' | 'announced' | 'stopped';

/** One advertised service inside the responder. */
export class Registration extends EventEmitter {
  state: RegistrationState = 'waiting';
  prober: Prober | undefined;
  announceTimer: TimerHandle | undefined;
  registeredName: string | undefined;

  constructor(public desc: ServiceDescription) {
    super();
  }

  get fqdn(): string {
    return instanceFqdn(this.desc.instance, this.desc.type, this.desc.domain);
  }
}

interface Pending {
  answers: Map<string, ResourceRecord>;
  timer: TimerHandle;
}

interface Rescue {
  iface: NetworkInterface;
  /** recordKeys to multicast again. */
  keys: Set<string>;
  timer: TimerHandle;
}

interface Held {
  packet: DnsPacket;
  timer: TimerHandle;
}

/** Our own multicast records remembered for echo detection (a host has a few per registration). */
const OWN_SENT_MAX = 512;
/** How late our own packet may be read and still count as our echo (event loops were 3–5 s late at 100 peers). */
const OWN_ECHO_MS = 30_000;
/** A service renamed again after a conflict skips ahead by 1 to this many (see renameService). */
const RENAME_JUMP = 1000;

export class Responder {
  private hostLabel: string;
  private hostState: 'idle' | 'probing' | 'claimed' = 'idle';
  private hostProber: Prober | undefined;
  /** The host name whose address records we have announced (until we say goodbye to them). */
  private announcedHost: string | undefined;
  private readonly regs = new Set<Registration>();
  private readonly pending = new Map<string, Pending>();
  private readonly held = new Map<string, Held>();
  /** Re-announcements due, per interface (coalesced: one packet for any number of goodbyes). */
  private readonly rescues = new Map<string, Rescue>();
  /**
   * `${iface}|${family}|${recordKey}` -> last time we multicast it there over that family (RFC
   * 6762 §6 rate limits; an answer goes out over the family its query came on, see answer()).
   */
  private readonly lastMulticast = new Map<string, number>();
  private readonly conflicts: number[] = [];
  /**
   * Records we multicast (answers and additionals, recordKey → when), the most recent
   * OWN_SENT_MAX. Our own packets come back to us (multicast loopback), and a starved process
   * reads them seconds late: after a host rename, our own earlier SRV (the old target) then
   * looked like another host's record for our instance name, and each host rename cost a
   * service rename too (45 at 100 peers). A record we sent ourselves is no conflict.
   */
  private readonly ownSent = new Map<string, number>();
  /** Our records another responder on this host publishes too: no goodbyes for them (sibling-records.ts). */
  private readonly siblings: SiblingRecords;
  /** The host label is one we took after a conflict (not the configured one). */
  private hostRenamed = false;
  /** Names in use and probes heard: where to go after a host-name conflict (host-contest.ts). */
  private readonly contest: HostNameContest;
  private closed = false;
  /** Emits `hostRenamed` ({from, name}) and `warning`. */
  readonly events = new EventEmitter();

  constructor(
    private readonly net: PacketNetwork,
    private readonly clock: Clock,
    hostLabel: string,
    /** Re-announcements (rescues) take a token each; without one they wait for the next. */
    private readonly bucket?: TokenBucket,
  ) {
    this.hostLabel = hostLabel;
    this.contest = new HostNameContest(clock);
    this.siblings = new SiblingRecords(clock);
  }

  get hostFqdn(): string {
    return `${this.hostLabel}.local`;
  }

  get hostClaimed(): boolean {
    return this.hostState === 'claimed';
  }

  // ---- registration lifecycle -------------------------------------------------------

  register(reg: Registration): void {
    this.regs.add(reg);
    this.ensureHost();
    // the instance name is probed at the same time as the host name; it is announced once both are ours
    this.probeService(reg);
  }

  private ensureHost(): void {
    if (this.hostState !== 'idle' || this.closed) return;
    this.hostState = 'probing';
    this.hostProber = new Prober(this.net, this.clock, {
      names: () => [this.hostFqdn],
      records: (iface) => hostRecords(this.hostFqdn, iface),
    }, {
      success: () => {
        this.hostState = 'claimed';
        this.announceHost();
        for (const reg of this.regs) if (reg.state === 'probed') this.announceRegistered(reg);
      },
      conflict: (_name, winner) => {
        const from = this.hostLabel;
        const fqdn = this.hostFqdn;
        this.abandonHostName(fqdn);
        this.hostLabel = this.contest.next(from, (iface) => recordsOn(this.net.interfaces, iface, (i) => hostRecords(fqdn, i)), winner, this.net.interfaces[0]?.name, this.hostRenamed);
        this.hostRenamed = true;
        conflictChannel.publish({ kind: 'host', name: this.hostFqdn, from: `${from}.local` });
        log('host name %s.local is taken; now %s', from, this.hostFqdn);
        this.events.emit('hostRenamed', { from: `${from}.local`, name: this.hostFqdn });
        this.hostState = 'idle';
        this.clock.setTimeout(() => this.ensureHost(), this.conflictDelay());
      },
    });
    this.hostProber.start();
  }

  /**
   * We lost a host name we had announced (a conflict after claiming it, RFC 6762 §9): our
   * address records under it are no longer true, so say goodbye to them (§10.1) — the winner's
   * announcement flushes them only where it arrives more than a second after ours (§10.2), and
   * a cache that kept them gives every SRV naming that host another host's address for up to
   * 120 s. The winner's own records (other addresses) are untouched by these goodbyes.
   */
  private abandonHostName(fqdn: string): void {
    if (this.announcedHost === undefined || nameKey(this.announcedHost) !== nameKey(fqdn)) return;
    this.announcedHost = undefined;
    for (const iface of this.net.interfaces) this.sendResponse(iface, hostRecords(fqdn, iface, 0), [], { multicast: true, goodbye: true });
  }

  /** RFC 6762 §8.1: after 15 conflicts within 10 s, wait 5 s before probing again. */
  private conflictDelay(): number {
    const now = this.clock.now();
    this.conflicts.push(now);
    while (this.conflicts.length > 0 && (this.conflicts[0] as number) < now - 10_000) this.conflicts.shift();
    return this.conflicts.length > 15 ? 5000 : 0;
  }

  private probeService(reg: Registration): void {
    if (reg.state === 'stopped' || this.closed) return;
    // a name already held by another registration here is a conflict we can see locally
    for (const other of this.regs) {
      if (other !== reg && other.state !== 'stopped' && nameKey(other.fqdn) === nameKey(reg.fqdn)) {
        this.renameService(reg);
        return;
      }
    }
    reg.state = 'probing';
    registrationChannel.publish({ name: reg.desc.instance, type: reg.desc.type.name + '.' + reg.desc.type.protocol, state: 'probing' });
    reg.prober?.cancel();
    reg.prober = new Prober(this.net, this.clock, {
      names: () => [reg.fqdn],
      records: () => uniqueServiceRecords(reg.desc, this.hostFqdn),
      sentByUs: this.sentByUs,
    }, {
      success: () => {
        reg.state = 'probed';
        if (this.hostState === 'claimed') this.announceRegistered(reg);
      },
      conflict: () => this.renameService(reg),
    });
    reg.prober.start();
  }

  private announceRegistered(reg: Registration): void {
    reg.state = 'announced';
    this.announceService(reg);
    // a host rename re-announces the service; the caller heard of this name already
    if (reg.registeredName !== reg.desc.instance) {
      reg.registeredName = reg.desc.instance;
      registrationChannel.publish({ name: reg.desc.instance, type: reg.desc.type.name + '.' + reg.desc.type.protocol, state: 'registered' });
      log('registered %s', reg.fqdn);
      reg.emit('registered', reg.desc.instance);
    }
  }

  private renameService(reg: Registration): void {
    const from = reg.desc.instance;
    // `Name` → `Name (2)` on a first conflict. A name taken after an earlier conflict and lost
    // again jumps ahead by a random step: two hosts whose services share a name and that lose
    // each other's probes (starved, full socket buffers) otherwise walk (2), (3), (4) … in
    // step — two peers of 100 renamed six times each in three minutes.
    reg.desc = { ...reg.desc, instance: nextInstanceName(from, 1 + Math.floor(this.clock.random() * RENAME_JUMP)) };
    reg.state = 'waiting';
    const type = reg.desc.type.name + '.' + reg.desc.type.protocol;
    conflictChannel.publish({ kind: 'service', name: reg.desc.instance, from });
    registrationChannel.publish({ name: reg.desc.instance, type, state: 'renamed', from });
    log('service name %s (%s) is taken; now %s', from, type, reg.desc.instance);
    reg.emit('renamed', { from, name: reg.desc.instance });
    this.clock.setTimeout(() => this.probeService(reg), this.conflictDelay());
  }

  private serviceAnnouncement(reg: Registration, iface: NetworkInterface): { answers: ResourceRecord[]; additionals: ResourceRecord[] } {
    return {
      answers: [...sharedServiceRecords(reg.desc), ...uniqueServiceRecords(reg.desc, this.hostFqdn)],
      additionals: hostRecords(this.hostFqdn, iface),
    };
  }

  private announceService(reg: Registration, only?: (r: ResourceRecord) => boolean): void {
    let count = 0;
    const step = (): void => {
      if (reg.state !== 'announced' || this.closed) return;
      for (const iface of this.net.interfaces) {
        const a = this.serviceAnnouncement(reg, iface);
        const answers = only ? a.answers.filter(only) : a.answers;
        this.sendResponse(iface, answers, only ? [] : a.additionals, { multicast: true });
      }
      if (++count < ANNOUNCE_COUNT) reg.announceTimer = this.clock.setTimeout(step, ANNOUNCE_INTERVAL_MS);
    };
    reg.announceTimer?.cancel();
    step();
  }

  /** Announces the host's address records (twice, a second apart). */
  private announceHost(): void {
    this.announcedHost = this.hostFqdn;
    let count = 0;
    const step = (): void => {
      if (this.closed || this.hostState !== 'claimed') return;
      for (const iface of this.net.interfaces) this.sendResponse(iface, hostRecords(this.hostFqdn, iface), [], { multicast: true });
      if (++count < ANNOUNCE_COUNT) this.clock.setTimeout(step, ANNOUNCE_INTERVAL_MS);
    };
    step();
  }

  /**
   * An interface's addresses changed or it came back up: say goodbye to the addresses it
   * lost, and announce the host and every service on it again (RFC 6762 §8.4).
   */
  interfaceChanged(iface: NetworkInterface, removed: readonly { family: 'IPv4' | 'IPv6'; address: string }[]): void {
    if (this.closed || this.hostState !== 'claimed') return;
    const gone: ResourceRecord[] = removed.map((a) =>
      a.family === 'IPv4'
        ? { name: this.hostFqdn, type: 'A', address: a.address, ttl: 0, rrclass: CLASS_IN, cacheFlush: true }
        : { name: this.hostFqdn, type: 'AAAA', address: a.address.split('%')[0] as string, ttl: 0, rrclass: CLASS_IN, cacheFlush: true });
    this.sendResponse(iface, gone, [], { multicast: true, goodbye: true });
    this.sendResponse(iface, hostRecords(this.hostFqdn, iface), [], { multicast: true });
    for (const reg of this.regs) {
      if (reg.state !== 'announced') continue;
      const a = this.serviceAnnouncement(reg, iface);
      this.sendResponse(iface, a.answers, a.additionals, { multicast: true });
    }
  }

  /**
   * A link became active (an interface came up or was adopted): probe every name again before
   * answering for it there (RFC 6762 §8.3, §13), then announce. A name taken on the new link
   * is renamed as at start.
   */
  reprobe(): void {
    if (this.closed || this.hostState === 'idle') return;
    this.hostProber?.cancel();
    this.hostState = 'idle';
    for (const reg of this.regs) {
      if (reg.state === 'stopped' || reg.state === 'waiting') continue;
      reg.announceTimer?.cancel();
      this.probeService(reg);
    }
    this.ensureHost();
  }

  /** New TXT data: re-announce the TXT record (RFC 6762 §8.4); no probing needed. */
  updateTxt(reg: Registration, txt: Buffer[]): void {
    reg.desc = { ...reg.desc, txt };
    if (reg.state === 'announced') this.announceService(reg, (r) => r.type === 'TXT');
  }

  /** Sends goodbyes (TTL 0) for a registration and forgets it. */
  unregister(reg: Registration): void {
    const wasAnnounced = reg.state === 'announced';
    reg.state = 'stopped';
    registrationChannel.publish({ name: reg.desc.instance, type: reg.desc.type.name + '.' + reg.desc.type.protocol, state: 'stopped' });
    reg.prober?.cancel();
    reg.announceTimer?.cancel();
    this.regs.delete(reg);
    if (!wasAnnounced) return;
    const stillTyped = [...this.regs].some((r) => r.state === 'announced' && nameKey(r.desc.type.name + r.desc.type.protocol) === nameKey(reg.desc.type.name + reg.desc.type.protocol));
    let records = [...sharedServiceRecords(reg.desc, 0), ...uniqueServiceRecords(reg.desc, this.hostFqdn, 0)];
    if (stillTyped) {
      const keep = recordKey(enumerationRecord(reg.desc, 0));
      records = records.filter((r) => recordKey(r) !== keep);
    }
    this.sayGoodbye(records);
  }

  /** Goodbyes (§10.1) on every interface, but for records a sibling on this host still publishes there. */
  private sayGoodbye(records: readonly ResourceRecord[]): void {
    for (const iface of this.net.interfaces) this.sendResponse(iface, records.filter((r) => !this.siblings.shared(iface.name, r)), [], { multicast: true, goodbye: true });
  }

  /** Goodbyes for everything, including the host's addresses (not those a sibling on this host still publishes). */
  close(): void {
    for (const reg of [...this.regs]) this.unregister(reg);
    // also while probing again after a conflict: what we announced is in caches
    if (this.announcedHost !== undefined) {
      for (const iface of this.net.interfaces) this.sendResponse(iface, hostRecords(this.announcedHost, iface, 0).filter((r) => !this.siblings.shared(iface.name, r)), [], { multicast: true, goodbye: true });
      this.announcedHost = undefined;
    }
    this.hostProber?.cancel();
    this.closed = true;
    for (const p of this.pending.values()) p.timer.cancel();
    for (const h of this.held.values()) h.timer.cancel();
    for (const r of this.rescues.values()) r.timer.cancel();
    this.rescues.clear();
    this.pending.clear();
    this.held.clear();
  }

  // ---- what we can answer -------------------------------------------------------------

  /** Records we may answer with on an interface, with whether each is shared. */
  private answerable(iface: NetworkInterface): ResourceRecord[] {
    const out: ResourceRecord[] = [];
    if (this.hostState === 'claimed') out.push(...withNsec(hostRecords(this.hostFqdn, iface)));
    const seenEnum = new Set<string>();
    for (const reg of this.regs) {
      if (reg.state !== 'announced') continue;
      for (const r of sharedServiceRecords(reg.desc)) {
        if (r.type === 'PTR' && nameKey(r.name).startsWith('_services._dns-sd._udp.')) {
          const k = recordKey(r);
          if (seenEnum.has(k)) continue;
          seenEnum.add(k);
        }
        out.push(r);
      }
      out.push(...withNsec(uniqueServiceRecords(reg.desc, this.hostFqdn)));
    }
    return out;
  }

  /** RFC 6763 §12 additional records for an answer. */
  private additionalsFor(answer: ResourceRecord, pool: readonly ResourceRecord[]): ResourceRecord[] {
    const byName = (name: string, ...types: number[]): ResourceRecord[] =>
      pool.filter((r) => nameKey(r.name) === nameKey(name) && types.includes(rrTypeNumber(r)));
    const orNsec = (found: ResourceRecord[], name: string): ResourceRecord[] => (found.length > 0 ? found : byName(name, RRType.NSEC));
    if (answer.type === 'PTR') {
      const inst = byName(answer.target, RRType.SRV, RRType.TXT);
      const hosts = inst.flatMap((r) => (r.type === 'SRV' ? byName(r.target, RRType.A, RRType.AAAA) : []));
      return [...inst, ...hosts];
    }
    if (answer.type === 'SRV') return byName(answer.target, RRType.A, RRType.AAAA);
    // the other address family, or the NSEC saying there is none (RFC 6762 §6.2)
    if (answer.type === 'A') return orNsec(byName(answer.name, RRType.AAAA), answer.name);
    if (answer.type === 'AAAA') return orNsec(byName(answer.name, RRType.A), answer.name);
    return [];
  }

  // ---- incoming packets ---------------------------------------------------------------

  handle(p: ReceivedPacket): void {
    if (this.closed) return;
    if (p.packet.response) {
      if (p.port === 5353) this.contest.observeResponse(p.packet.answers.concat(p.packet.additionals));
    } else if (p.packet.authorities.length > 0) this.contest.observeProbe(p.packet.authorities, p.iface.name);
    this.hostProber?.handle(p);
    for (const reg of this.regs) reg.prober?.handle(p);
    if (p.packet.opcode !== 0 || p.packet.rcode !== 0) return;
    if (p.packet.response) this.onResponse(p);
    else this.onQuery(p);
  }

  private onResponse(p: ReceivedPacket): void {
    if (p.port !== 5353) return;
    const records = [...p.packet.answers, ...p.packet.additionals];
    if (p.local) this.siblings.observe(p.iface.name, records, () => new Set(this.answerable(p.iface).map(recordKey)), (r) => this.sentByUs(r, p));
    this.rescue(p.iface, records);
    // duplicate answer suppression (RFC 6762 §7.4): someone already sent what we were about to
    const pend = this.pending.get(`${p.iface.name}|${p.family}`);
    if (pend) {
      for (const r of p.packet.answers) {
        const k = recordKey(r);
        const ours = pend.answers.get(k);
        if (ours && r.ttl >= ours.ttl / 2) pend.answers.delete(k);
      }
    }
    // conflicts with names we already own (RFC 6762 §9): probe again, which renames
    // (our own record sets are built only when a record carries one of our names: most
    // responses on a busy link are about other hosts)
    if (this.hostState === 'claimed' && this.clashes(records, this.hostFqdn, () => withNsec(hostRecords(this.hostFqdn, p.iface)), p)) {
      this.hostState = 'idle';
      // services stay claimed; they are announced again (new SRV target) once the host is
      for (const reg of this.regs) if (reg.state === 'announced') reg.state = 'probed';
      this.ensureHost();
      return;
    }
    for (const reg of this.regs) {
      if (reg.state !== 'announced') continue;
      if (this.clashes(records, reg.fqdn, () => withNsec(uniqueServiceRecords(reg.desc, this.hostFqdn)), p)) {
        reg.announceTimer?.cancel();
        this.probeService(reg);
      }
    }
  }

  /** A live record for `name` in `records` that is not one of `ours()` and that we did not send ourselves. */
  private clashes(records: readonly ResourceRecord[], name: string, ours: () => ResourceRecord[], p: ReceivedPacket): boolean {
    const key = nameKey(name);
    let mine: Set<string> | undefined;
    for (const r of records) {
      if (r.ttl === 0 || nameKey(r.name) !== key) continue;
      mine ??= new Set(ours().map(recordKey));
      if (!mine.has(recordKey(r)) && !this.sentByUs(r, p)) return true;
    }
    return false;
  }

  /**
   * Someone said goodbye (TTL 0) to a record we still publish: typically another process on
   * this host stopping, whose host A/AAAA records and `_services._dns-sd._udp` PTR are ours
   * too. Multicast it again at once with its normal TTL, so caches that set the goodbye's
   * TTL to one second (RFC 6762 §10.1) keep it and browsers do not report the instance gone.
   * A rescued cache-flush record goes with the rest of its RRSet, or the flush would drop our
   * siblings.
   *
   * Anyone can send goodbyes, so rescues are coalesced per interface and keep §6's limit of one
   * multicast of a record per second per interface: a rescue is due once every record in it
   * may be multicast again — at most a second after we last sent it, hence before the caches'
   * one-second grace (§10.1) after a goodbye heard since then runs out. On top, each rescue
   * packet takes a token of the engine's re-announcement bucket.
   */
  private rescue(iface: NetworkInterface, records: readonly ResourceRecord[]): void {
    const goodbyes = new Set<string>();
    for (const r of records) if (r.ttl === 0) goodbyes.add(recordKey(r));
    if (goodbyes.size === 0) return;
    const pool = this.answerable(iface).filter((r) => r.type !== 'NSEC');
    const hit = pool.filter((r) => goodbyes.has(recordKey(r)));
    if (hit.length === 0) return;
    const flushSets = new Set(hit.filter((r) => r.cacheFlush).map(rrsetKey));
    const out = new Map<string, ResourceRecord>();
    for (const r of pool) {
      if (goodbyes.has(recordKey(r)) || (r.cacheFlush && flushSets.has(rrsetKey(r)))) out.set(recordKey(r), r);
    }
    let due = this.rescues.get(iface.name);
    if (!due) {
      due = { iface, keys: new Set(), timer: { cancel: () => undefined } };
      this.rescues.set(iface.name, due);
      const now = this.clock.now();
      let at = now;
      for (const k of out.keys()) at = Math.max(at, this.lastSent(iface.name, k) + 1000);
      due.timer = this.clock.setTimeout(() => this.guard(() => this.sendRescue(iface.name)), at - now);
    }
    for (const k of out.keys()) due.keys.add(k);
  }

  private sendRescue(ifaceName: string): void {
    const due = this.rescues.get(ifaceName);
    if (!due || this.closed) return;
    if (this.bucket && !this.bucket.take()) {
      due.timer = this.clock.setTimeout(() => this.guard(() => this.sendRescue(ifaceName)), this.bucket.wait());
      return;
    }
    this.rescues.delete(ifaceName);
    const records = this.answerable(due.iface).filter((r) => r.type !== 'NSEC' && due.keys.has(recordKey(r)));
    log('rescuing %d record(s) another responder said goodbye to on %s', records.length, ifaceName);
    this.sendResponse(due.iface, records, [], { multicast: true });
  }

  private onQuery(p: ReceivedPacket): void {
    const key = `${p.iface.name}|${p.address}|${p.port}`;
    const held = this.held.get(key);
    if (held) {
      // continuation of a truncated known-answer list (RFC 6762 §7.2)
      held.packet.answers.push(...p.packet.answers.slice(0, 512 - held.packet.answers.length));
      held.packet.questions.push(...p.packet.questions.slice(0, 64 - held.packet.questions.length));
      return;
    }
    if (p.packet.truncated && p.port === 5353) {
      if (this.held.size >= 64) return;
      const packet = { ...p.packet, answers: [...p.packet.answers], questions: [...p.packet.questions] };
      const timer = this.clock.setTimeout(() => {
        this.held.delete(key);
        this.guard(() => this.answer({ ...p, packet }));
      }, TC_WAIT_MIN + this.clock.random() * TC_WAIT_SPREAD);
      this.held.set(key, { packet, timer });
      return;
    }
    if (p.packet.questions.length === 0) return;
    this.answer(p);
  }

  /** Work on foreign data from a timer: a failure drops that work, never the process. */
  private guard(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.events.emit('warning', err);
    }
  }

  private answer(p: ReceivedPacket): void {
    const legacy = p.port !== 5353;
    const pool = this.answerable(p.iface);
    if (pool.length === 0) return;
    const known = new Map<string, number>();
    for (const r of p.packet.answers) known.set(recordKey(r), r.ttl);
    const probe = p.packet.authorities.length > 0;
    const now = this.clock.now();
    const multicast = new Map<string, ResourceRecord>();
    const unicast = new Map<string, ResourceRecord>();
    let shared = false;
    for (const q of p.packet.questions) {
      if (q.qclass !== CLASS_IN && q.qclass !== 255) continue;
      // no record of the asked type at a unique name we own: the NSEC answers (RFC 6762 §6.1)
      const negative = !pool.some((r) => matches(q, r)) ? pool.filter((r) => r.type === 'NSEC' && nameKey(r.name) === nameKey(q.name)) : [];
      for (const r of [...pool.filter((x) => matches(q, x)), ...negative]) {
        const k = recordKey(r);
        const knownTtl = known.get(k);
        // known-answer suppression: the querier already has it with at least half its TTL
        if (knownTtl !== undefined && knownTtl >= r.ttl / 2) continue;
        if (legacy) {
          unicast.set(k, r);
          continue;
        }
        const last = this.lastMulticast.get(`${p.iface.name}|${p.family}|${k}`) ?? -Infinity;
        if (q.unicastResponse && !p.local && now - last < (r.ttl * 1000) / 4) {
          unicast.set(k, r);
          continue;
        }
        // at most one multicast per record per second; 250 ms when defending against a probe
        if (now - last < (probe ? 250 : 1000)) continue;
        multicast.set(k, r);
        if (!r.cacheFlush) shared = true;
      }
    }
    if (legacy) {
      if (unicast.size > 0) this.sendLegacy(p, [...unicast.values()], pool);
      return;
    }
    if (unicast.size > 0) {
      this.sendResponse(p.iface, [...unicast.values()], this.additionals([...unicast.values()], pool, known), { to: { address: p.address, port: p.port } });
    }
    if (multicast.size === 0) return;
    // Over the family the query came on, as Avahi does (its interfaces are per family): a query sent over both
    // families is answered on both, one sent over one family (our refresh queries, querier.ts)
    // costs one answer, not two. A probe is defended over every family (§8.1, §9).
    const family = probe ? undefined : p.family;
    if (!shared || probe) {
      const answers = [...multicast.values()];
      this.sendResponse(p.iface, answers, this.additionals(answers, pool, known), { multicast: true, family });
      return;
    }
    // shared answers wait 20-120 ms, so replies to several queriers go out together (§6)
    const pendKey = `${p.iface.name}|${p.family}`;
    const pend = this.pending.get(pendKey);
    if (pend) {
      for (const [k, r] of multicast) pend.answers.set(k, r);
      return;
    }
    const answers = new Map(multicast);
    const timer = this.clock.setTimeout(() => {
      this.pending.delete(pendKey);
      if (this.closed || answers.size === 0) return;
      const list = [...answers.values()];
      this.sendResponse(p.iface, list, this.additionals(list, this.answerable(p.iface), new Map()), { multicast: true, family: p.family });
    }, 20 + this.clock.random() * 100);
    this.pending.set(pendKey, { answers, timer });
  }

  private additionals(answers: readonly ResourceRecord[], pool: readonly ResourceRecord[], known: ReadonlyMap<string, number>): ResourceRecord[] {
    const have = new Set(answers.map(recordKey));
    const out = new Map<string, ResourceRecord>();
    for (const a of answers) {
      for (const r of this.additionalsFor(a, pool)) {
        const k = recordKey(r);
        if (!have.has(k) && !known.has(k)) out.set(k, r);
      }
    }
    return [...out.values()];
  }

  private sendLegacy(p: ReceivedPacket, answers: ResourceRecord[], pool: readonly ResourceRecord[]): void {
    // RFC 6762 §6.7: echo id and questions, no cache-flush bits, TTL at most 10 s
    const clamp = (r: ResourceRecord): ResourceRecord => ({ ...r, cacheFlush: false, ttl: Math.min(r.ttl, LEGACY_TTL) });
    const w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
    w.header(p.packet.id, true);
    for (const q of p.packet.questions) {
      try {
        w.addQuestion({ ...q, unicastResponse: false });
      } catch {
        // a question we cannot echo is left out
      }
    }
    for (const r of answers) if (!w.addRecord(1, clamp(r))) w.setTruncated(true);
    for (const r of this.additionals(answers, pool, new Map())) w.addRecord(3, clamp(r));
    this.net.sendUnicast(p.iface.name, w.finish(), p.address, p.port);
  }

  /** Sends answers (split over packets if needed) plus as many additionals as fit. */
  private sendResponse(iface: NetworkInterface, answers: readonly ResourceRecord[], additionals: readonly ResourceRecord[], how: { multicast?: boolean; to?: { address: string; port: number }; goodbye?: boolean; family?: 'IPv4' | 'IPv6' | undefined }): void {
    if (answers.length === 0) return;
    const now = this.clock.now();
    let w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
    w.header(0, true);
    const flush = (): void => {
      const buf = w.finish();
      if (how.to) this.net.sendUnicast(iface.name, buf, how.to.address, how.to.port);
      // a family without a socket here (an IPv6 query on an interface whose IPv6 socket failed) cannot be: it came in on one
      else if (how.family === undefined || this.net.sendMulticast(iface.name, buf, how.family) === 0) this.net.sendMulticast(iface.name, buf);
    };
    for (const r of answers) {
      if (!w.addRecord(1, r)) {
        if (w.recordCount === 0) continue; // a single record larger than a packet: skip it
        flush();
        w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
        w.header(0, true);
        if (!w.addRecord(1, r)) continue;
      }
      if (how.multicast && !how.goodbye) for (const f of how.family ? [how.family] : FAMILIES) this.lastMulticast.set(`${iface.name}|${f}|${recordKey(r)}`, now);
    }
    for (const r of additionals) w.addRecord(3, r);
    flush();
    // goodbyes too: read back, our own are echoes, not a sibling leaving (sibling-records.ts)
    for (const r of [...answers, ...additionals]) this.rememberSent(r);
    if (this.lastMulticast.size > 4096) this.pruneLastMulticast(now);
  }

  private rememberSent(r: ResourceRecord): void {
    const k = recordKey(r);
    this.ownSent.delete(k);
    this.ownSent.set(k, this.clock.now());
    if (this.ownSent.size > OWN_SENT_MAX) this.ownSent.delete(this.ownSent.keys().next().value as string);
  }

  /**
   * The packet came from one of our own addresses and holds a record (name, type and data) we
   * multicast ourselves within OWN_ECHO_MS: our echo, read late, and no conflict. A stranger
   * replaying our old records from its own address is still a conflict (we probe again and
   * re-announce); one who forges our source address is the residual risk (docs/security.md).
   */
  private readonly sentByUs = (r: ResourceRecord, p: ReceivedPacket): boolean => {
    if (!p.local) return false;
    const at = this.ownSent.get(recordKey(r));
    return at !== undefined && this.clock.now() - at <= OWN_ECHO_MS;
  };

  /** When a record was last multicast on an interface, over any family. */
  private lastSent(iface: string, key: string): number {
    return Math.max(...FAMILIES.map((f) => this.lastMulticast.get(`${iface}|${f}|${key}`) ?? -Infinity));
  }

  private pruneLastMulticast(now: number): void {
    for (const [k, t] of this.lastMulticast) if (now - t > 10_000) this.lastMulticast.delete(k);
  }
}

const FAMILIES = ['IPv4', 'IPv6'] as const;

function matches(q: Question, r: ResourceRecord): boolean {
  if (q.qtype !== RRType.ANY && q.qtype !== rrTypeNumber(r)) return false;
  return nameKey(q.name) === nameKey(r.name);
}
