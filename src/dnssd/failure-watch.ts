/**
 * Records nobody answers any more (RFC 6762 §10.4 "Cache Flush on Failure Indication" and
 * §10.5 "Passive Observation Of Failures"). A host killed without goodbyes leaves its PTR in
 * every cache for 75 minutes and its SRV for two: browsers keep reporting it, sessions keep
 * dialling it, and every continuous query carries it as a known answer — with churn, that list
 * grows with every peer that ever left.
 *
 * - Passive (§10.5): a query on the link (anyone's, ours included) that a cached SRV or TXT
 *   record would answer, without listing it as a known answer, starts a watch on the record
 *   (PTRs are not watched: every browser asks for them and every instance answers, so one lost
 *   answer among many would flush a live peer). A response
 *   carrying the record ends the watch. After two or more such queries and ten seconds without
 *   that answer, the record is flushed (one-second grace, like a goodbye) — but only if our
 *   own questions went unanswered too: after two such queries and five seconds it is suspect,
 *   and we ask for it ourselves, twice (as a reconfirmation, below; each only while it is still
 *   unanswered; the records that became suspect together go in one packet, so a dead host's
 *   many instances cost two packets); it is flushed once both went out (or a neighbour's
 *   question without known answers for it, within the second before, stood for one), the last
 *   at least two seconds before, and ten seconds have passed. Questions the engine's query
 *   budget refused condemn nothing: the watch then ages out, the record lives to its TTL and
 *   its PTRs to theirs (75 minutes; later resolution rounds, browser.ts, then ask for it). A query heard within JUST_RECEIVED_MS of the record's last arrival does not
 *   count: its owner just answered.
 *   The confirmation is what makes the rule hold on a lossy link: a refresh wave's answer lost
 *   here, and our one retry within the ten seconds lost too, flushed ~1 % of live peers' SRVs
 *   (and their PTRs) per wave at 10 % loss in the 100-peer simulation (bench/scale/steady-sim.ts);
 *   mDNSResponder likewise reconfirms a record other hosts' queries leave unanswered before it
 *   purges it.
 * - On failure indication (§10.4): `reconfirm(instance)` asks for the instance's SRV and TXT
 *   twice, without known answers; the passive rule above then flushes them if nobody answers.
 *   `reconfirmHost(name, instance)` — the session could not reach a peer at an address found
 *   here — does the same for the address records (A/AAAA) of the SRV target, and the SRV
 *   (not the TXT, which says nothing of where the peer is): a refused dial says an address is
 *   stale (another host's, left by a host-name contest, or a dead host's) or the port is (a
 *   process gone from a host that still answers for its name); one packet asks for both.
 *   Address records are watched only after such a failure indication, never
 *   passively: every browser asks for them, and a busy owner's lost answer would flush a live
 *   host. Before asking, a host that heard someone else ask the same question within the last
 *   second stays quiet (§7.3 in spirit: when a peer dies, every survivor would otherwise ask
 *   at once).
 * - Our own stalled loop is not an unanswered record: a passive or suspect watch spanning a
 *   stall of ours ≥ UNRELIABLE_STALL_MS is dropped unsettled, and shorter stalls are not counted
 *   as time unanswered. A stall is measured as the lateness of the once-a-second sweep, and the
 *   wait from the sweep to its verdicts (src/loop-stalls.ts): it is seen from the moment the
 *   sweep was due, so a freeze that began up to a second before registers that much shorter.
 *   Verdicts and our questions wait for the poll phase after their timer (Clock.afterIo), which
 *   reads up to 32 datagrams per socket first (libuv's batch), not a whole backlog.
 * - An SRV flushed this way takes the PTRs pointing at its instance with it.
 * Watches are bounded (MAX_WATCHES, oldest dropped first) and expire when nothing settles them.
 */
import type { RecordCache } from './cache.js';
import { LoopStalls } from '../loop-stalls.js';
import type { Clock, TimerHandle } from './clock.js';
import { nameKey } from './codec/name.js';
import { recordKey } from './codec/records.js';
import { CLASS_IN, RRType, rrTypeNumber, type Question, type ResourceRecord } from './codec/types.js';
import type { ReceivedPacket } from './transport.js';

/** §10.5: no answer this long after the first unanswered query… */
export const UNANSWERED_MS = 10_000;
/** …to at least this many queries. */
export const UNANSWERED_QUERIES = 2;
/** Queries closer together than this count once (one query is sent over IPv4 and IPv6). */
const SAME_QUERY_MS = 500;
/**
 * A query heard this soon after the record was received says nothing about its owner: the
 * owner multicasts a record at most once a second per family (§6), so it does not answer a
 * query that reaches it just after its answer — sent by a host that had not heard that answer
 * yet (the refresh wave of N peers: queries sent within a few hundred ms of each other reach
 * a loaded host after the answer). Counted, two of them flushed live records 10 s later.
 */
export const JUST_RECEIVED_MS = 2000;
/** Our own questions for a suspect record go out this long before the ten seconds are up. */
export const CONFIRM_MS = 5000;
/** A watch nothing settled is dropped after this long. */
const WATCH_MAX_AGE_MS = 30_000;
const MAX_WATCHES = 2048;
const CHECK_INTERVAL_MS = 1000;
/** Reconfirmation queries: the first after a random 0-1000 ms, the second 2-3 s after it. */
const RECONFIRM_SPREAD_MS = 1000;
const RECONFIRM_SECOND_MS = 2000;

/** Our own question for a suspect record is given this long for its answer before the verdict. */
const ANSWER_GRACE_MS = 2000;
/** Records that become suspect in one sweep and are asked for in one packet (more wait for the next sweep). */
const MAX_SUSPECTS_PER_SWEEP = 32;
/**
 * A stall of our own loop this long drops every passive or suspect watch it overlaps (not a
 * reconfirmation: a failed dial is evidence of its own): an answer that arrived then
 * may have been dropped at our full socket buffer (transport.ts MDNS_RECV_BUFFER: at the ~70
 * packets/s of a 100-peer start it holds a few seconds' worth, less while the others' answers
 * come in bursts), so "nobody answered" is not evidence. Shorter stalls are not counted as time
 * the record went unanswered (as keepalive-policy.ts does for a peer's silence).
 */
export const UNRELIABLE_STALL_MS = 1000;

interface Watch {
  record: ResourceRecord;
  iface: string;
  queries: number;
  firstAt: number;
  lastAt: number;
  /**
   * passive: others' queries go unanswered; suspect: we are asking for it ourselves, and the
   * verdict waits for our questions; reconfirm: reconfirm()/reconfirmHost() asked, the queries
   * heard (ours among them) and ten seconds decide.
   */
  stage: 'passive' | 'suspect' | 'reconfirm';
  /** Our questions for a suspect record that went out (or that a neighbour's question within the last second stood for). */
  asks: number;
  lastAskAt: number;
}

export class FailureWatch {
  readonly #watches = new Map<string, Watch>();
  /** Questions heard: `${iface}|${nameKey}|${qtype}` → last time (for the reconfirm hush). */
  readonly #asked = new Map<string, number>();
  readonly #timers = new Set<TimerHandle>();
  #check: TimerHandle | undefined;
  /** When the armed sweep is due (its lateness is a stall of our loop). */
  #checkDue = 0;
  readonly #stalls = new LoopStalls(64);
  /** Watches dropped because our loop stood still while they waited for an answer. */
  abandoned = 0;
  #closed = false;
  /** Records flushed because nobody answered them. */
  flushed = 0;

  constructor(
    private readonly clock: Clock,
    private readonly cache: RecordCache,
    /** Sends questions on one interface without known answers; false when not sent (budget). */
    private readonly ask: (questions: Question[], iface: string) => boolean,
  ) {}

  /** A query heard on the link (from port 5353; our own come back too). */
  query(p: ReceivedPacket): void {
    if (this.#closed || p.packet.truncated) return;
    const now = this.clock.now();
    const known = new Set(p.packet.answers.map(recordKey));
    for (const q of p.packet.questions) {
      if (q.unicastResponse || (q.qclass !== CLASS_IN && q.qclass !== 255)) continue;
      // a question that lists known answers for itself may go unanswered by design: it does not
      // stand for ours (the hush in #ask)
      const lname = nameKey(q.name);
      if (!p.packet.answers.some((r) => nameKey(r.name) === lname && (q.qtype === RRType.ANY || rrTypeNumber(r) === q.qtype))) {
        const askedKey = `${p.iface.name}|${lname}|${q.qtype}`;
        this.#asked.delete(askedKey);
        this.#asked.set(askedKey, now);
        if (this.#asked.size > MAX_WATCHES) this.#asked.delete(this.#asked.keys().next().value as string);
      }
      for (const e of this.cache.get(q.name, q.qtype, p.iface.name)) {
        // Only an instance's own records: a PTR question is asked by every browser and answered
        // by every instance, so one lost answer of many (a busy host's socket overflowing)
        // would flush a live peer. A dead instance's PTRs go with its SRV instead. Address
        // records only once reconfirmHost() started a watch on them.
        const addressRecord = e.record.type === 'A' || e.record.type === 'AAAA';
        if (e.record.type !== 'SRV' && e.record.type !== 'TXT' && !addressRecord) continue;
        const k = recordKey(e.record);
        if (known.has(k) || now - e.receivedAt < JUST_RECEIVED_MS) continue;
        const wk = `${p.iface.name}|${k}`;
        const w = this.#watches.get(wk);
        if (!w && addressRecord) continue;
        if (!w) {
          this.#watches.set(wk, { record: e.record, iface: p.iface.name, queries: 1, firstAt: now, lastAt: now, stage: 'passive', asks: 0, lastAskAt: -Infinity });
          if (this.#watches.size > MAX_WATCHES) this.#watches.delete(this.#watches.keys().next().value as string);
        } else if (now - w.lastAt >= SAME_QUERY_MS) {
          w.queries++;
          w.lastAt = now;
        }
      }
    }
    this.#arm();
  }

  /** Arms the once-a-second sweep while there are watches. */
  #arm(): void {
    if (this.#watches.size === 0 || this.#check) return;
    this.#checkDue = this.clock.now() + CHECK_INTERVAL_MS;
    this.#check = this.clock.setTimeout(() => this.#sweep(), CHECK_INTERVAL_MS);
  }

  /** Records in a response heard on the link: they are answered. */
  response(records: readonly ResourceRecord[], iface: string): void {
    if (this.#watches.size === 0) return;
    for (const r of records) if (r.ttl > 0) this.#watches.delete(`${iface}|${recordKey(r)}`);
  }

  /** §10.4: the instance `fqdn` could not be reached; ask for it again, and flush it if nobody answers. */
  reconfirm(fqdn: string, iface: string): void {
    if (this.#closed) return;
    // our questions below are the confirmation: the cached SRV and TXT go ten seconds after them
    this.#watchConfirming(fqdn, iface, (r) => r.type === 'SRV' || r.type === 'TXT');
    const questions: Question[] = [
      { name: fqdn, qtype: RRType.SRV, qclass: CLASS_IN, unicastResponse: false },
      { name: fqdn, qtype: RRType.TXT, qclass: CLASS_IN, unicastResponse: false },
    ];
    this.#twice(questions, iface, `${iface}|${nameKey(fqdn)}|${RRType.SRV}`);
  }

  /**
   * §10.4 for the address records of host `name`: a dial to one of them failed. Watches every
   * cached A/AAAA of the name (an answer ends a watch, as above) and asks for them twice without
   * known answers; those nobody answers are flushed, and the browser drops them from the
   * instances that name this host. With `instance`, its SRV is asked for in the same packet
   * (and flushed by the passive rule if nobody answers).
   */
  reconfirmHost(name: string, iface: string, instance?: string): void {
    if (this.#closed) return;
    this.#watchConfirming(name, iface, (r) => r.type === 'A' || r.type === 'AAAA');
    const questions: Question[] = [
      { name, qtype: RRType.A, qclass: CLASS_IN, unicastResponse: false },
      { name, qtype: RRType.AAAA, qclass: CLASS_IN, unicastResponse: false },
    ];
    if (instance !== undefined) questions.push({ name: instance, qtype: RRType.SRV, qclass: CLASS_IN, unicastResponse: false });
    this.#twice(questions, iface, `${iface}|${nameKey(name)}|${RRType.A}`);
  }

  /** Watches the cached records of `name` that `which` selects, as confirmations: our questions count, ten seconds decide. */
  #watchConfirming(name: string, iface: string, which: (r: ResourceRecord) => boolean): void {
    const now = this.clock.now();
    for (const e of this.cache.get(name, RRType.ANY, iface)) {
      if (!which(e.record)) continue;
      const wk = `${iface}|${recordKey(e.record)}`;
      if (this.#watches.get(wk)?.stage === 'reconfirm') continue;
      this.#watches.delete(wk);
      this.#watches.set(wk, { record: e.record, iface, queries: 0, firstAt: now, lastAt: -Infinity, stage: 'reconfirm', asks: 0, lastAskAt: -Infinity });
      if (this.#watches.size > MAX_WATCHES) this.#watches.delete(this.#watches.keys().next().value as string);
    }
    this.#arm();
  }

  /** Asks `questions` twice (0-1 s, then 2-3 s later), each time unless someone asked within the last second. */
  #twice(questions: Question[], iface: string, askedKey: string): void {
    const send = (): void => {
      const heard = this.#asked.get(askedKey);
      // someone asked this within the last second: their query serves as ours
      if (heard !== undefined && this.clock.now() - heard < RECONFIRM_SPREAD_MS) return;
      this.ask(questions, iface);
    };
    const first = this.clock.random() * RECONFIRM_SPREAD_MS;
    this.#later(send, first);
    this.#later(send, first + RECONFIRM_SECOND_MS + this.clock.random() * RECONFIRM_SPREAD_MS);
  }

  /**
   * Our two questions for the records that became suspect in one sweep on one interface, in one
   * packet each time (a dead host's many instances cost two packets, not two each), at the
   * reconfirmation times. Each time, only for records still unanswered; a record someone asked
   * for within the last second (without listing it) is credited without asking. A record is
   * credited with an ask when its question went out or was stood for, not when the budget
   * refused the packet.
   */
  #confirm(watches: Watch[], iface: string): void {
    const send = (): void => {
      const now = this.clock.now();
      const live = watches.filter((w) => this.#watches.get(`${w.iface}|${recordKey(w.record)}`) === w);
      const toAsk: Watch[] = [];
      const questions = new Map<string, Question>();
      for (const w of live) {
        const qtype = rrTypeNumber(w.record);
        const qk = `${nameKey(w.record.name)}|${qtype}`;
        const heard = this.#asked.get(`${iface}|${qk}`);
        if (heard !== undefined && now - heard < RECONFIRM_SPREAD_MS) {
          w.asks++;
          w.lastAskAt = now;
          continue;
        }
        toAsk.push(w);
        if (!questions.has(qk)) questions.set(qk, { name: w.record.name, qtype, qclass: CLASS_IN, unicastResponse: false });
      }
      if (toAsk.length === 0 || !this.ask([...questions.values()], iface)) return;
      for (const w of toAsk) {
        w.asks++;
        w.lastAskAt = now;
      }
    };
    const first = this.clock.random() * RECONFIRM_SPREAD_MS;
    this.#later(send, first);
    this.#later(send, first + RECONFIRM_SECOND_MS + this.clock.random() * RECONFIRM_SPREAD_MS);
  }

  /** `fn` in `ms`, after the poll phase then: an answer or a neighbour's question read meanwhile counts first. */
  #later(fn: () => void, ms: number): void {
    const t = this.clock.setTimeout(() => {
      this.#timers.delete(t);
      this.clock.afterIo(() => {
        if (!this.#closed) fn();
      });
    }, ms);
    this.#timers.add(t);
  }

  #sweep(): void {
    this.#check = undefined;
    if (this.#closed) return;
    // the verdicts wait for the poll phase: answers that came while this timer waited are read
    // first (up to 32 datagrams per socket: libuv's batch)
    const swept = this.clock.now();
    this.#stalls.tick(this.#checkDue, swept);
    this.clock.afterIo(() => this.#verdicts(swept));
  }

  /** `swept`: when the sweep ran; a long wait from then to here is a stall too (the poll phase, or the scheduler). */
  #verdicts(swept: number): void {
    if (this.#closed) return;
    const now = this.clock.now();
    this.#stalls.tick(swept, now);
    const suspects = new Map<string, Watch[]>();
    /** Time since `t` in which our loop ran. */
    const ran = (t: number): number => now - t - this.#stalls.stalledSince(t);
    for (const [k, w] of this.#watches) {
      // a failure indication (reconfirm) is evidence of its own: its verdict keeps wall-clock time
      if (w.stage !== 'reconfirm' && this.#stalls.longestSince(w.firstAt) >= UNRELIABLE_STALL_MS) {
        this.#watches.delete(k);
        this.abandoned++;
        continue;
      }
      const due = (w.stage === 'reconfirm' ? now - w.firstAt : ran(w.firstAt)) >= UNANSWERED_MS;
      if (w.stage === 'passive' && w.queries >= UNANSWERED_QUERIES && ran(w.firstAt) >= UNANSWERED_MS - CONFIRM_MS) {
        // suspect: we ask ourselves, and only our questions left unanswered condemn it
        const batch = suspects.get(w.iface) ?? [];
        if (batch.length >= MAX_SUSPECTS_PER_SWEEP) continue; // the next sweep takes it
        w.stage = 'suspect';
        batch.push(w);
        suspects.set(w.iface, batch);
      } else if (
        (w.stage === 'suspect' && due && w.asks >= 2 && ran(w.lastAskAt) >= ANSWER_GRACE_MS) ||
        (w.stage === 'reconfirm' && due && w.queries >= UNANSWERED_QUERIES)
      ) {
        this.#watches.delete(k);
        this.flushed += this.cache.flush(w.record, w.iface, w.record.type === 'SRV');
      } else if (now - w.firstAt > WATCH_MAX_AGE_MS) this.#watches.delete(k);
    }
    for (const [iface, batch] of suspects) this.#confirm(batch, iface);
    for (const [k, t] of this.#asked) if (now - t > WATCH_MAX_AGE_MS) this.#asked.delete(k);
    this.#stalls.forgetBefore(now - WATCH_MAX_AGE_MS);
    this.#arm();
  }

  close(): void {
    this.#closed = true;
    this.#check?.cancel();
    for (const t of this.#timers) t.cancel();
    this.#timers.clear();
    this.#watches.clear();
    this.#asked.clear();
    this.#stalls.clear();
  }
}
