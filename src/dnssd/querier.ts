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
 * Per address family: a duplicate heard over IPv4 only still lets ours go out over IPv6.
 * Our own queries come back to us through multicast loopback; that is harmless, as each is
 * a whole interval before our next query.
 *
 * Refresh questions get §7.3 too: one another host asked within the last DUPLICATE_QUESTION_MS,
 * with no known answer we lack, is not asked again — its answers are multicast on the family it
 * was asked on, which we listen on since we heard it; if none comes, the next refresh point asks.
 * With N peers on a link every peer refreshes the same records: without this each question went
 * out up to N times (N = 64: a refresh wave of ~5 questions per answer, 62 packets per peer per
 * minute). Resolution questions do not (`query`'s `suppressDuplicates`): tried twice at N = 64
 * (bench/scale/README.md), neither time better. A refresh query also asks for every other wanted record due for refresh within
 * REFRESH_AHEAD_MS (an instance's SRV and its host's addresses arrive in one response, so come
 * due within the same 2 % jitter): one packet instead of one per record. Refresh and resolution
 * questions go out on the address family their cause came from (the responder listens there,
 * and answers where it was asked: our responder on both families); half the packets.
 *
 * One-off queries (resolution, refresh: their number follows what others announce) also take
 * a token of the engine's query bucket per interface; without one they are not sent (and
 * counted). A refresh or a resolution first takes a token of the source address whose records
 * caused it, so that one host's records (short TTLs, many instances) cannot spend the whole
 * bucket and starve the refresh of everyone else's. Continuous queries are exempt: their number is ours (one per browse) and §5.2's
 * doubling interval bounds them.
 */
import type { NetworkInterface } from '../path/interfaces.js';
import type { CachedRecord, RecordCache } from './cache.js';
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
/** A one-off question another host asked this recently counts as ours (RFC 6762 §7.3). */
export const DUPLICATE_QUESTION_MS = 1000;
/** A wanted record due for refresh this soon is asked with one due now (one packet, §5.2). */
export const REFRESH_AHEAD_MS = 3000;
/** Questions in one refresh query at most (the rest are asked when their own point comes). */
const MAX_REFRESH_QUESTIONS = 16;
/** Questions remembered for §7.3 (a flood of distinct questions stays bounded). */
const MAX_RECENT_QUESTIONS = 1024;

/** The address family of a source address ('' — unknown — gives undefined: every family). */
export function familyOf(source: string): 'IPv4' | 'IPv6' | undefined {
  return source === '' ? undefined : source.includes(':') ? 'IPv6' : 'IPv4';
}

export interface QueryOptions {
  /** Over this family only (when the interface has it): where the cause of the questions came from. */
  family?: 'IPv4' | 'IPv6' | undefined;
  /** Leave out questions another host (or a refresh query of ours) just asked (RFC 6762 §7.3). Default false. */
  suppressDuplicates?: boolean;
}

/** What a one-off query came to: sent; not needed (another host just asked it all, §7.3); or refused by a bucket. */
export type QueryOutcome = 'sent' | 'heard' | 'refused';

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
}

export class Querier {
  private readonly continuous = new Map<string, Continuous>();
  private readonly interests = new Set<Interest>();
  private closed = false;
  /** Continuous queries not sent on an interface because another host had just asked (§7.3). */
  suppressedQueries = 0;
  /** One-off questions (resolution, refresh) not sent because another host had just asked them, or a refresh query of ours had (§7.3). */
  suppressedQuestions = 0;
  /**
   * One-off questions recently asked on an interface — by another host (QM, no known answer we
   * lack) or in one of our refresh queries — until when they count as asked:
   * `${iface}|${nameKey}|${qtype}` → ms.
   */
  private readonly recent = new Map<string, number>();
  /** Records nobody answers any more are flushed (RFC 6762 §10.4, §10.5). */
  readonly failures: FailureWatch;

  constructor(
    private readonly net: PacketNetwork,
    private readonly clock: Clock,
    readonly cache: RecordCache,
    private readonly bucket?: TokenBucket,
    /** One-off queries per source address of what caused them (rate-limit.ts `queriesPerSourcePerSecond`). */
    private readonly sourceBuckets?: SourceBuckets,
  ) {
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
      if (!p.local) this.noteHeardQuestions(p);
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
      c = { name, qtype, refs: 1, interval: INITIAL_INTERVAL_MS, timer: undefined, sentAt: [], wait: 0, seen: new Map() };
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
    for (const c of this.continuous.values()) {
      c.timer?.cancel();
      c.interval = INITIAL_INTERVAL_MS;
      this.scheduleFirst(c);
    }
  }

  private scheduleFirst(c: Continuous): void {
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
    const questions = [{ name: c.name, qtype: c.qtype, qclass: CLASS_IN, unicastResponse: false }];
    let sent = false;
    // Per family: a duplicate heard over IPv4 says nothing about hosts that listen on IPv6 only.
    const heard = (iface: string, family: 'IPv4' | 'IPv6'): boolean => {
      const t = c.seen.get(`${iface}|${family}`);
      return t !== undefined && now - t < c.wait / 2;
    };
    for (const iface of this.net.interfaces) {
      const v4 = heard(iface.name, 'IPv4');
      const v6 = heard(iface.name, 'IPv6');
      this.suppressedQueries += (v4 ? 1 : 0) + (v6 ? 1 : 0);
      if (v4 && v6) continue;
      // On a single-family interface the other family has no socket: then nothing goes out.
      if (this.queryOn(iface, questions, v4 ? 'IPv6' : v6 ? 'IPv4' : undefined)) sent = true;
    }
    c.seen.clear();
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
   * questions it asks whose known answers we would all list too (§7.3). A truncated query is
   * skipped: the rest of its known answers are still to come.
   */
  private noteDuplicateQuestions(p: ReceivedPacket): void {
    if (this.continuous.size === 0 || p.packet.truncated || p.packet.opcode !== 0) return;
    for (const q of p.packet.questions) {
      if (q.unicastResponse || q.qclass !== CLASS_IN) continue;
      const c = this.continuous.get(`${nameKey(q.name)}|${q.qtype}`);
      if (c === undefined) continue;
      // every known answer of theirs for this question is one we would list: one lookup each
      // (comparing with our list was O(N²) record encodings per query with N peers on a link)
      const lname = nameKey(c.name);
      const theirs = p.packet.answers.filter((r) => nameKey(r.name) === lname && (c.qtype === RRType.ANY || rrTypeNumber(r) === c.qtype));
      if (theirs.every((r) => this.cache.isKnownAnswer(r, p.iface.name))) c.seen.set(`${p.iface.name}|${p.family}`, this.clock.now());
    }
  }

  /**
   * Sends one-off questions on every interface (or one), with known answers from the cache;
   * within the query bucket, and within the share of `source` (the address whose records caused
   * the questions) when given; over `opts.family` only when given (and the interface has it).
   * With `opts.suppressDuplicates`, a question asked on the interface within the last
   * DUPLICATE_QUESTION_MS by another host (or by one of our refresh queries lately) is left out
   * (§7.3); with every question left out nothing is sent and no token taken: 'heard'.
   */
  query(questions: readonly Question[], only?: string, source?: string, opts: QueryOptions = {}): QueryOutcome {
    const { family, suppressDuplicates = false } = opts;
    if (this.closed) return 'refused';
    const now = this.clock.now();
    const plan: Array<{ iface: NetworkInterface; left: Question[] }> = [];
    for (const iface of this.net.interfaces) {
      if (only !== undefined && iface.name !== only) continue;
      const left = questions.filter((q) => !suppressDuplicates || q.unicastResponse || !this.askedRecently(iface.name, q.name, q.qtype, now));
      this.suppressedQuestions += questions.length - left.length;
      plan.push({ iface, left });
    }
    if (plan.length > 0 && plan.every((x) => x.left.length === 0)) return 'heard';
    if (source !== undefined && this.sourceBuckets && !this.sourceBuckets.take(source)) return 'refused';
    let sent = false;
    for (const { iface, left } of plan) {
      if (left.length === 0) {
        sent = true;
        continue;
      }
      if (this.bucket && !this.bucket.take()) continue;
      // a single-family interface lacks the other family's socket: then over what it has
      if (family === undefined || !this.queryOn(iface, left, family)) this.queryOn(iface, left);
      sent = true;
    }
    return sent ? 'sent' : 'refused';
  }

  private askedRecently(iface: string, name: string, qtype: number, now: number): boolean {
    const until = this.recent.get(`${iface}|${nameKey(name)}|${qtype}`);
    return until !== undefined && now < until;
  }

  private noteAsked(key: string, until: number): void {
    const had = this.recent.get(key) ?? 0;
    this.recent.delete(key); // re-inserted last: the map's order is the pruning order
    this.recent.set(key, Math.max(until, had));
    if (this.recent.size <= MAX_RECENT_QUESTIONS) return;
    // bounded: lapsed entries first, then the oldest noted
    const now = this.clock.now();
    for (const [k, t] of this.recent) if (t <= now) this.recent.delete(k);
    for (const k of this.recent.keys()) {
      if (this.recent.size <= MAX_RECENT_QUESTIONS / 2) break;
      this.recent.delete(k);
    }
  }

  /**
   * Notes the QM questions of another host's query whose known answers we would all list
   * (§7.3), for one-off questions. A truncated query is skipped: more known answers follow.
   */
  private noteHeardQuestions(p: ReceivedPacket): void {
    if (p.packet.truncated) return;
    const until = this.clock.now() + DUPLICATE_QUESTION_MS;
    for (const q of p.packet.questions) {
      if (q.unicastResponse || q.qclass !== CLASS_IN) continue;
      const lname = nameKey(q.name);
      const theirs = p.packet.answers.filter((r) => nameKey(r.name) === lname && (q.qtype === RRType.ANY || rrTypeNumber(r) === q.qtype));
      if (theirs.every((r) => this.cache.isKnownAnswer(r, p.iface.name))) this.noteAsked(`${p.iface.name}|${lname}|${q.qtype}`, until);
    }
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

  private wanted(name: string, type: number, iface: string): boolean {
    for (const i of this.interests) if (i(name, type, iface)) return true;
    return false;
  }

  /**
   * A wanted record reached a refresh point (§5.2): ask for it, with every other wanted record
   * on the interface due within REFRESH_AHEAD_MS, in one query, over the family the record came
   * from. Not if it was asked lately (§7.3: by another host, or in one of our refresh queries):
   * its answer refreshes us too, and if none comes the next point (5 % of the TTL later) asks.
   */
  private onRefresh(e: CachedRecord): void {
    if (this.closed) return;
    const type = rrTypeNumber(e.record);
    if (!this.wanted(e.record.name, type, e.iface)) return;
    const now = this.clock.now();
    if (this.askedRecently(e.iface, e.record.name, type, now)) {
      this.suppressedQuestions++;
      return;
    }
    const questions = new Map<string, Question>();
    const add = (name: string, qtype: number): void => {
      const k = `${nameKey(name)}|${qtype}`;
      if (questions.size < MAX_REFRESH_QUESTIONS && !questions.has(k)) questions.set(k, { name, qtype, qclass: CLASS_IN, unicastResponse: false });
    };
    add(e.record.name, type);
    for (const o of this.cache.refreshDueBy(e.iface, now + REFRESH_AHEAD_MS)) {
      const t = rrTypeNumber(o.record);
      if (this.wanted(o.record.name, t, e.iface)) add(o.record.name, t);
    }
    if (this.query([...questions.values()], e.iface, e.source, { family: familyOf(e.source), suppressDuplicates: true }) !== 'sent') return;
    // the bundled records' own points come within REFRESH_AHEAD_MS: already asked
    for (const k of questions.keys()) this.noteAsked(`${e.iface}|${k}`, now + REFRESH_AHEAD_MS + DUPLICATE_QUESTION_MS);
  }

  close(): void {
    this.closed = true;
    this.failures.close();
    for (const c of this.continuous.values()) c.timer?.cancel();
    this.continuous.clear();
  }
}
