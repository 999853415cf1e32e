/**
 * The querying side (RFC 6762 §5): continuous questions sent at 1 s, then doubling up to
 * an hour (the first after 20-120 ms), with known answers (§7.1, split over TC packets
 * when they do not fit), refresh queries when a wanted record reaches 80/85/90/95 % of its
 * TTL, and one-off queries for resolution. Responses feed the cache.
 *
 * Duplicate question suppression (§7.3): when another host asks one of our continuous QM
 * questions on an interface shortly before ours is due — within half the interval that led to
 * it, as mDNSResponder does — and its known answers are all ones we would list too, its
 * responses serve us as well: ours is not sent there, and the schedule goes on as if it was.
 * Per address family: a duplicate heard over IPv4 only still lets ours go out over IPv6 (but
 * the first query of a schedule goes over IPv4 alone where there is IPv4: see fire()).
 * Our own queries come back to us through multicast loopback; that is harmless, as each is
 * a whole interval before our next query.
 *
 * One-off queries (resolution, refresh: their number follows what others announce) also take
 * a token of the engine's query bucket per interface; without one they are not sent (and
 * counted). A refresh or a resolution first takes a token of the source address whose records
 * caused it, so that one host's records (short TTLs, many instances) cannot spend the whole
 * bucket and starve the refresh of everyone else's. Continuous queries are exempt: their number is ours (one per browse) and §5.2's
 * doubling interval bounds them.
 */
import type { NetworkInterface } from '../path/interfaces.js';
import { REFRESH_POINTS, type CachedRecord, type RecordCache } from './cache.js';
import type { Clock, TimerHandle } from './clock.js';
import { PacketWriter, DEFAULT_MAX_SEND_BYTES } from './codec/encode.js';
import { nameKey } from './codec/name.js';
import { CLASS_IN, RRType, rrTypeNumber, type Question, type ResourceRecord } from './codec/types.js';
import type { PacketNetwork, ReceivedPacket } from './transport.js';
import type { SourceBuckets, TokenBucket } from './rate-limit.js';
import { FailureWatch } from './failure-watch.js';

export const FIRST_QUERY_MIN_MS = 20;
export const FIRST_QUERY_SPREAD_MS = 100;
export const INITIAL_INTERVAL_MS = 1000;
export const MAX_INTERVAL_MS = 60 * 60 * 1000;
/** A refresh query also asks for the host's other wanted records due within this (RFC 6762 §5.2). */
export const REFRESH_AHEAD_MS = 3000;
/**
 * A refresh question another host asked (without known answers for it) this recently is not
 * asked again (§7.3): its answer refreshes us too. At most a quarter of the gap to the next
 * refresh point (5 % of the TTL), so a lost answer is asked for at that point.
 */
export const DUPLICATE_REFRESH_MS = 2000;
/** Questions in one refresh query at most (one host: an instance's SRV/TXT and its A/AAAA). */
const MAX_REFRESH_QUESTIONS = 16;
const MAX_HEARD = 2048;
/** A truncated query's continuation comes within this (§7.2: the sender sends it at once). */
const TC_CONTINUATION_MS = 500;
const MAX_HELD_TC = 64;
const MAX_HELD_ANSWERS = 512;
/**
 * A continuous question asked within this of the interfaces' activation (the engine's start,
 * or restart()) asks its first query for unicast answers (QU, RFC 6762 §5.4).
 */
export const ACTIVATION_MS = 5000;

/** Returns true when a record is still wanted by someone (so refreshing it is worthwhile). */
export type Interest = (name: string, type: number, iface: string) => boolean;

interface Continuous {
  name: string;
  qtype: number;
  refs: number;
  interval: number;
  timer: TimerHandle | undefined;
  /** Times the question went out, for tests and diagnostics. */
  sentAt: number[];
  /** The wait before the pending query (the first delay, then the interval). */
  wait: number;
  /** When another host last asked this question, per interface and family (`eth0|IPv4`, §7.3). */
  seen: Map<string, number>;
  /** The next query is the first of a schedule (see fire()). */
  fresh: boolean;
  /** The schedule began within ACTIVATION_MS of the interfaces' activation: its first query is QU. */
  qu: boolean;
}

export class Querier {
  private readonly continuous = new Map<string, Continuous>();
  private readonly interests = new Set<Interest>();
  private closed = false;
  /** Continuous queries not sent on an interface because another host had just asked (§7.3). */
  suppressedQueries = 0;
  /** Refresh questions not asked because a host (another, or our own query) had just asked them (§7.3). */
  suppressedRefreshes = 0;
  /** One-off questions heard without known answers for them: `${iface}|${family}|${nameKey}|${qtype}` → time. */
  private readonly heard = new Map<string, number>();
  /** Refresh points reached in this turn, asked for together once the cache's tick is over. */
  private refreshDue: CachedRecord[] = [];
  private refreshTimer: TimerHandle | undefined;
  /** Truncated queries whose known answers go on in further packets, per sender (§7.2, §7.3). */
  private readonly heldTc = new Map<string, { questions: readonly Question[]; answers: readonly ResourceRecord[]; at: number }>();
  /** Records nobody answers any more are flushed (RFC 6762 §10.4, §10.5). */
  readonly failures: FailureWatch;
  /** When the interfaces were last activated: the engine's start, or restart(). */
  private activatedAt: number;

  constructor(
    private readonly net: PacketNetwork,
    private readonly clock: Clock,
    readonly cache: RecordCache,
    private readonly bucket?: TokenBucket,
    /** One-off queries per source address of what caused them (rate-limit.ts `queriesPerSourcePerSecond`). */
    private readonly sourceBuckets?: SourceBuckets,
  ) {
    this.activatedAt = clock.now();
    cache.on('refresh', (e) => this.onRefresh(e));
    this.failures = new FailureWatch(clock, cache, (questions, ifaceName) => {
      const iface = this.net.interfaces.find((i) => i.name === ifaceName);
      if (!iface || this.closed || (this.bucket && !this.bucket.take())) return false;
      const w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
      w.header(0, false);
      for (const q of questions) w.addQuestion(q);
      return this.net.sendMulticast(iface.name, w.finish()) > 0;
    });
  }

  /** The instance `fqdn` could not be reached (a dial failed): reconfirm it on every interface (§10.4). */
  reconfirm(fqdn: string): void {
    for (const i of this.net.interfaces) if (this.cache.get(fqdn, RRType.SRV, i.name).length > 0) this.failures.reconfirm(fqdn, i.name);
  }

  /** A dial to the instance `fqdn` failed: reconfirm the address records of its SRV target, and its SRV, on every interface (§10.4). */
  reconfirmAddresses(fqdn: string): void {
    for (const i of this.net.interfaces) {
      const srv = this.cache.get(fqdn, RRType.SRV, i.name).sort((a, b) => b.seq - a.seq)[0]?.record;
      if (srv?.type === 'SRV') this.failures.reconfirmHost(srv.target, i.name, fqdn);
    }
  }

  addInterest(i: Interest): () => void {
    this.interests.add(i);
    return () => this.interests.delete(i);
  }

  /** Feeds received packets: responses go to the cache (RFC 6762 §6: only from port 5353). */
  handle(p: ReceivedPacket): void {
    if (this.closed || p.port !== 5353) return;
    if (p.packet.opcode !== 0) return;
    if (!p.packet.response) {
      this.noteDuplicateQuestions(p);
      this.noteOneOffQuestions(p);
      this.failures.query(p);
      return;
    }
    if (p.packet.rcode !== 0) return;
    this.failures.response(p.packet.answers.concat(p.packet.additionals), p.iface.name);
    if (this.continuous.size === 0 && this.interests.size === 0) return;
    this.cache.addResponse([...p.packet.answers, ...p.packet.additionals].filter((r) => r.rrclass === CLASS_IN), p.iface.name, p.address);
  }

  /**
   * Asks a question continuously until the returned function is called. Several callers
   * asking the same question share one schedule.
   */
  startContinuous(name: string, qtype: number): () => void {
    const key = `${nameKey(name)}|${qtype}`;
    let c = this.continuous.get(key);
    if (c) c.refs++;
    else {
      c = { name, qtype, refs: 1, interval: INITIAL_INTERVAL_MS, timer: undefined, sentAt: [], wait: 0, seen: new Map(), fresh: true, qu: false };
      this.continuous.set(key, c);
      this.scheduleFirst(c);
    }
    const cur = c;
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      if (--cur.refs === 0) {
        cur.timer?.cancel();
        this.continuous.delete(key);
      }
    };
  }

  /** Starts every continuous question's schedule over (an interface came up, RFC 6762 §8.3). */
  restart(): void {
    this.activatedAt = this.clock.now();
    for (const c of this.continuous.values()) {
      c.timer?.cancel();
      c.interval = INITIAL_INTERVAL_MS;
      this.scheduleFirst(c);
    }
  }

  private scheduleFirst(c: Continuous): void {
    c.fresh = true;
    // decided when the question is asked, not when its (possibly late) timer fires; and only
    // with one IPv4 interface: every port-5353 socket is bound to the wildcard address, and
    // Linux gives a unicast datagram to one of them — with a second interface (docker0, Wi-Fi
    // and Ethernet) often the other's, whose source check then drops it as off-link
    const v4Interfaces = this.net.interfaces.filter((i) => i.addresses.some((a) => a.family === 'IPv4')).length;
    c.qu = v4Interfaces === 1 && this.clock.now() - this.activatedAt <= ACTIVATION_MS;
    c.wait = FIRST_QUERY_MIN_MS + this.clock.random() * FIRST_QUERY_SPREAD_MS;
    c.timer = this.clock.setTimeout(() => this.fire(c), c.wait);
  }

  /** Query times of a continuous question (for tests). */
  history(name: string, qtype: number): readonly number[] {
    return this.continuous.get(`${nameKey(name)}|${qtype}`)?.sentAt ?? [];
  }

  private fire(c: Continuous): void {
    if (this.closed) return;
    const now = this.clock.now();
    // RFC 6762 §5.4: the first query of a question asked from the moment of interface
    // activation is QU. Responders that multicast the record within a quarter of its TTL answer
    // it by unicast, to us alone: when 100 peers start over a minute, each new browser's first
    // query drew ~99 PTR answers multicast to all 100 hosts — the largest class of the start's
    // packets — and every host read all of them (bench/scale/README.md, session 13). A host
    // that misses a unicast answer (another mDNS process on its port 5353, or a second
    // interface's socket, may be given it) finds the instance with the second query, a second
    // later, which is QM. The first query of a question asked later is QM as before.
    const questions = [{ name: c.name, qtype: c.qtype, qclass: CLASS_IN, unicastResponse: c.fresh && c.qu }];
    let sent = false;
    // Per family: a duplicate heard over IPv4 says nothing about hosts that listen on IPv6 only.
    const heard = (iface: string, family: 'IPv4' | 'IPv6'): boolean => {
      const t = c.seen.get(`${iface}|${family}`);
      return t !== undefined && now - t < c.wait / 2;
    };
    for (const iface of this.net.interfaces) {
      const v4 = heard(iface.name, 'IPv4');
      const v6 = heard(iface.name, 'IPv6');
      // The first query of a schedule goes over IPv4 alone where the interface has IPv4: its
      // known-answer list is empty, so every responder on the link answers it, over the family
      // it was asked on — over both families, that was the largest class of a 100-peer start's
      // packets (PTR answers with additionals, bench/scale/README.md). The second query, a
      // second later, goes over both with what the first found as known answers: a responder
      // that listens on IPv6 alone is found then, the others stay quiet.
      if (c.fresh && iface.addresses.some((a) => a.family === 'IPv4')) {
        if (v4) {
          this.suppressedQueries++;
          continue;
        }
        if (this.queryOn(iface, questions, 'IPv4')) {
          sent = true;
          continue;
        }
      }
      this.suppressedQueries += (v4 ? 1 : 0) + (v6 ? 1 : 0);
      if (v4 && v6) continue;
      // On a single-family interface the other family has no socket: then nothing goes out.
      if (this.queryOn(iface, questions, v4 ? 'IPv6' : v6 ? 'IPv4' : undefined)) sent = true;
    }
    c.seen.clear();
    c.fresh = false;
    if (sent) {
      c.sentAt.push(now);
      if (c.sentAt.length > 64) c.sentAt.shift();
    }
    c.wait = c.interval;
    c.interval = Math.min(c.interval * 2, MAX_INTERVAL_MS);
    c.timer = this.clock.setTimeout(() => this.fire(c), c.wait);
  }

  /**
   * A query from someone else (or our own, looped back): notes each of our continuous QM
   * questions it asks whose known answers we would all list too (§7.3). A truncated query
   * (TC: its known answers go on in further packets from the same sender, §7.2) is held until
   * its last packet, as the responder does: at 64 peers a browser's 63 known PTRs fill more
   * than one packet, and skipping those left every browser's query on the link.
   */
  private noteDuplicateQuestions(p: ReceivedPacket): void {
    if (this.continuous.size === 0 || p.packet.opcode !== 0) return;
    const key = `${p.iface.name}|${p.family}|${p.address}|${p.port}`;
    const now = this.clock.now();
    const held = this.heldTc.get(key);
    let questions: readonly Question[] = p.packet.questions;
    let answers: readonly ResourceRecord[] = p.packet.answers;
    if (held !== undefined && now - held.at <= TC_CONTINUATION_MS && p.packet.questions.length === 0) {
      // a continuation: the rest of the held query's known answers
      answers = held.answers.concat(p.packet.answers.slice(0, MAX_HELD_ANSWERS - held.answers.length));
      questions = held.questions;
    }
    this.heldTc.delete(key);
    if (p.packet.truncated) {
      if (questions.length === 0) return;
      this.heldTc.set(key, { questions, answers, at: now });
      while (this.heldTc.size > MAX_HELD_TC) this.heldTc.delete(this.heldTc.keys().next().value as string);
      return;
    }
    for (const q of questions) {
      if (q.unicastResponse || q.qclass !== CLASS_IN) continue;
      const c = this.continuous.get(`${nameKey(q.name)}|${q.qtype}`);
      if (c === undefined) continue;
      // every known answer of theirs for this question is one we would list: one lookup each
      // (comparing with our list was O(N²) record encodings per query with N peers on a link)
      const lname = nameKey(c.name);
      const theirs = answers.filter((r) => nameKey(r.name) === lname && (c.qtype === RRType.ANY || rrTypeNumber(r) === c.qtype));
      if (theirs.every((r) => this.cache.isKnownAnswer(r, p.iface.name))) c.seen.set(`${p.iface.name}|${p.family}`, now);
    }
  }

  /**
   * Questions asked without a known answer for them (refresh, resolution, reconfirmation), by
   * anyone, our own looped-back queries included: a refresh point that finds its question among
   * them is not asked (§7.3). A question that lists known answers is not noted: the responder
   * leaves those out, and the record we want refreshed may be one of them.
   */
  private noteOneOffQuestions(p: ReceivedPacket): void {
    if (p.packet.truncated || this.interests.size === 0) return;
    const now = this.clock.now();
    for (const q of p.packet.questions) {
      if (q.unicastResponse || q.qclass !== CLASS_IN) continue;
      const lname = nameKey(q.name);
      if (p.packet.answers.some((r) => nameKey(r.name) === lname && (q.qtype === RRType.ANY || rrTypeNumber(r) === q.qtype))) continue;
      // per family: the answer to a question heard over IPv6 reaches only IPv6 listeners (responder.ts)
      const k = `${p.iface.name}|${p.family}|${lname}|${q.qtype}`;
      this.heard.delete(k);
      this.heard.set(k, now);
    }
    while (this.heard.size > MAX_HEARD) this.heard.delete(this.heard.keys().next().value as string);
  }

  /**
   * Sends questions on every interface (or one), with known answers from the cache; within the
   * query bucket, and within the share of `source` (the address whose records caused the
   * questions) when given; over one address family when `family` is given and the interface
   * has a socket for it. Returns false when the buckets let none go out.
   */
  query(questions: readonly Question[], only?: string, source?: string, family?: 'IPv4' | 'IPv6'): boolean {
    if (this.closed) return false;
    if (source !== undefined && this.sourceBuckets && !this.sourceBuckets.take(source)) return false;
    let sent = false;
    for (const iface of this.net.interfaces) {
      if (only !== undefined && iface.name !== only) continue;
      if (this.bucket && !this.bucket.take()) continue;
      if (family === undefined || !this.queryOn(iface, questions, family)) this.queryOn(iface, questions);
      sent = true;
    }
    return sent;
  }

  /** Sends the questions on one interface (one family, or all); false when no socket took them. */
  private queryOn(iface: NetworkInterface, questions: readonly Question[], family?: 'IPv4' | 'IPv6'): boolean {
    const known: ResourceRecord[] = [];
    for (const q of questions) known.push(...this.cache.knownAnswers(q.name, q.qtype, iface.name));
    let w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
    w.header(0, false);
    for (const q of questions) w.addQuestion(q);
    for (const r of known) {
      let added: boolean;
      try {
        added = w.addRecord(1, r);
      } catch {
        continue; // a cached record we cannot write is not worth a query
      }
      if (added) continue;
      // the rest of the known answers go in further packets; TC tells responders to wait
      w.setTruncated(true);
      this.net.sendMulticast(iface.name, w.finish(), family);
      w = new PacketWriter(DEFAULT_MAX_SEND_BYTES);
      w.header(0, false);
      w.addRecord(1, r);
    }
    return this.net.sendMulticast(iface.name, w.finish(), family) > 0;
  }

  private wanted(e: CachedRecord): boolean {
    const type = rrTypeNumber(e.record);
    for (const i of this.interests) if (i(e.record.name, type, e.iface)) return true;
    return false;
  }

  /** The cache reaches refresh points one record at a time, in one tick: ask once the tick is over. */
  private onRefresh(e: CachedRecord): void {
    if (this.closed || !this.wanted(e)) return;
    this.refreshDue.push(e);
    this.refreshTimer ??= this.clock.setTimeout(() => {
      this.refreshTimer = undefined;
      const due = this.refreshDue;
      this.refreshDue = [];
      this.refresh(due);
    }, 0);
  }

  /**
   * Refresh queries (RFC 6762 §5.2) for records that reached a refresh point. On a link of N
   * peers every peer refreshes every other peer's 120 s records (SRV, A, AAAA) at about the
   * same moment — they were all received in one announcement — so:
   * - one query per host (§5.2 and §6: a responder answers several questions in one packet):
   *   with a due record go the other wanted records from the same sender (a shared source
   *   address) whose next point is within REFRESH_AHEAD_MS; their own points are dropped;
   * - a question anyone asked within DUPLICATE_REFRESH_MS without a known answer for it is
   *   not asked again (§7.3): its answer, multicast, refreshes every cache. If the answer does
   *   not come, the record's next point (5 % of its TTL later) asks;
   * - over one address family, IPv4 when the host sent over IPv4 (else the family it sent over):
   *   its owner listens there, and answers there only (responder.ts) — one answer packet, heard
   *   by everyone on the link. Sources already cached stay (cache.ts
   *   `sources`), so the tie between a host's IPv4 and IPv6 addresses is kept. From the second
   *   point on (the first answer did not reach us) over every family: a lost packet is then not
   *   a lost answer, and the passive failure watch (§10.5) does not flush a live record after
   *   two lost answers.
   */
  private refresh(due: readonly CachedRecord[]): void {
    if (this.closed) return;
    const now = this.clock.now();
    const until = now + REFRESH_AHEAD_MS;
    // Points are 5 % of a TTL apart: only those within half that are dropped (asked now), so a
    // record with a short TTL from another implementation (10–60 s) keeps its later points.
    const skipUntil = (e: CachedRecord): number => Math.min(until, now + e.record.ttl * 1000 * 0.025);
    const byIface = new Map<string, CachedRecord[]>();
    for (const e of due) byIface.set(e.iface, [...(byIface.get(e.iface) ?? []), e]);
    for (const [iface, fired] of byIface) {
      const ahead = this.cache.refreshDueBy(iface, until);
      // group by sender: records that share a source address came from the same host
      const groups: { sources: Set<string>; fired: CachedRecord[]; entries: Set<CachedRecord> }[] = [];
      const groupOf = (e: CachedRecord): (typeof groups)[number] | undefined => groups.find((g) => e.sources.some((s) => s !== '' && g.sources.has(s)));
      for (const e of fired) {
        let g = groupOf(e);
        if (!g) {
          g = { sources: new Set(), fired: [], entries: new Set() };
          groups.push(g);
        }
        g.fired.push(e);
        g.entries.add(e);
        for (const s of e.sources) if (s !== '') g.sources.add(s);
      }
      // in a wave most records are due: the sender test first, the interest (O(instances)) after
      for (const e of ahead) {
        const g = groupOf(e);
        if (g !== undefined && !g.entries.has(e) && this.wanted(e)) g.entries.add(e);
      }
      for (const g of groups) {
        // past its first point a record missed an answer (lost, or its owner is gone): ask over
        // every family, answered over every family, so one more lost packet does not cost it
        const late = g.fired.some((e) => e.refreshAt.length < REFRESH_POINTS.length - 1);
        // IPv4 when the host sent over IPv4 at all: every peer then asks over the same family,
        // and the responder's once-a-second limit (per family) sends one answer for all of them
        const first = g.fired[0] as CachedRecord;
        const families = [...g.sources].map(familyOf);
        const family = late ? undefined : families.includes('IPv4') ? 'IPv4' : families[0];
        // §7.3 counts only a question heard over every family we would ask on: its answer went
        // there (a stranger asking over a family the owner does not listen on suppresses nothing)
        const askOn: readonly ('IPv4' | 'IPv6')[] = family ? [family] : ['IPv4', 'IPv6'];
        const questions: Question[] = [];
        const seen = new Set<string>();
        for (const e of g.entries) {
          const qtype = rrTypeNumber(e.record);
          const qk = `${nameKey(e.record.name)}|${qtype}`;
          if (seen.has(qk)) {
            this.cache.skipRefresh(e, skipUntil(e)); // one question asks for every record of the set (both AAAA)
            continue;
          }
          if (questions.length >= MAX_REFRESH_QUESTIONS) continue;
          seen.add(qk);
          this.cache.skipRefresh(e, skipUntil(e));
          const window = Math.min(DUPLICATE_REFRESH_MS, e.record.ttl * 1000 * 0.025);
          if (askOn.every((f) => now - (this.heard.get(`${iface}|${f}|${qk}`) ?? -Infinity) < window)) {
            this.suppressedRefreshes++;
            continue;
          }
          questions.push({ name: e.record.name, qtype, qclass: CLASS_IN, unicastResponse: false });
        }
        if (questions.length === 0) continue;
        this.query(questions, iface, first.source, family);
      }
    }
  }

  close(): void {
    this.closed = true;
    this.refreshTimer?.cancel();
    this.refreshDue = [];
    this.heard.clear();
    this.heldTc.clear();
    this.failures.close();
    for (const c of this.continuous.values()) c.timer?.cancel();
    this.continuous.clear();
  }
}

/** The family a packet came over, from its source address ('' or IPv4-mapped: IPv4). */
export function familyOf(source: string): 'IPv4' | 'IPv6' | undefined {
  if (source === '') return undefined;
  return source.includes(':') && !/^::ffff:\d/i.test(source) ? 'IPv6' : 'IPv4';
}
