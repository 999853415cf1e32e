/**
 * Link quality: a running estimate of the path to one peer, measured by using it — round
 * trips of the session's PINGs, the kernel's view of the TCP connections that carry the
 * peer's messages and streams (TCP_INFO: RTT, retransmissions, bytes acknowledged, delivery
 * rate), and datagram sequence gaps — rated 'minimal' | 'moderate' | 'good' ('unknown'
 * before the first measurement and while the peer is not connected).
 *
 * Pure and clock-free: every input carries its time, so the rating (EWMAs, hysteresis, hold
 * times) is unit tested in fake time. The sampling (one timer per session) is in
 * link-monitor.ts. Thresholds and the numbers behind them: docs/session.md "Link quality".
 */
import type { TcpInfo } from '../net/index.js';

export type LinkQuality = 'unknown' | 'minimal' | 'moderate' | 'good';

/** What `session.linkQuality(peer)` reports. Rates are fractions (0.05 = 5 %). */
export interface LinkQualityReport {
  quality: LinkQuality;
  /**
   * Smoothed round-trip time the rating uses, ms: the larger of the kernel's SRTT of the
   * peer's backlogged connections (sampled on every ACK) and the PING/PONG round trip (which
   * also sees the peer's process and the reverse direction's retransmissions), and never less
   * than the age of a PING still unanswered. Undefined before the first measurement.
   */
  rttMs: number | undefined;
  /** Smoothed RTT variation (the larger of the kernel's RTTVAR and the PING samples' mean deviation), ms. */
  rttVarMs: number | undefined;
  /** Bytes moved both ways on the peer's connections, smoothed, in bits per second. */
  throughputBps: number;
  /**
   * What the path delivered when the path (not the app) was the limit: the highest kernel
   * delivery-rate sample of the last few seconds, in bits per second. Undefined while the
   * connections carried too little to tell (an idle link's capacity is not measured).
   */
  capacityBps: number | undefined;
  /** Retransmitted / data segments sent (TCP_INFO), smoothed. */
  retransmitRate: number;
  /** Datagrams lost / expected (sequence gaps of best-effort messages), smoothed; 0 without datagrams. */
  lossRate: number;
  /** The kernel is backing off retransmission timeouts, a PING is overdue, or the connection's interface went away (not viable): nothing is getting through now. */
  stalled: boolean;
}

/** One boundary between two ratings: a link is below it when any measure is past it. */
export interface LinkBoundary {
  /** RTT above this, ms. */
  rttMs: number;
  /** Retransmit or datagram loss rate above this (fraction). */
  lossRate: number;
  /** Capacity, when measured, below this (bits per second). */
  capacityBps: number;
}

export interface LinkQualityThresholds {
  /** A link is 'good' only when every measure is within this boundary. */
  good: LinkBoundary;
  /** A link is 'minimal' when any measure is past this boundary (or it is stalled). */
  minimal: LinkBoundary;
  /**
   * Hysteresis: to leave a worse rating, the measures must be better than the boundary by
   * this factor (RTT and loss × factor, capacity ÷ factor). 0.7: 'minimal' at RTT > 500 ms
   * is left below 350 ms.
   */
  hysteresis: number;
  /** A worse rating must hold this long before it is reported, ms. */
  degradeAfterMs: number;
  /** A better rating must hold this long before it is reported, ms (slower: a flapping link stays at its worse rating). */
  improveAfterMs: number;
}

/** The defaults, and the numbers behind them in docs/session.md "Link quality". */
export const DEFAULT_LINK_THRESHOLDS: Readonly<LinkQualityThresholds> = Object.freeze({
  good: Object.freeze({ rttMs: 50, lossRate: 0.01, capacityBps: 10_000_000 }),
  minimal: Object.freeze({ rttMs: 500, lossRate: 0.1, capacityBps: 1_000_000 }),
  hysteresis: 0.7,
  degradeAfterMs: 1000,
  improveAfterMs: 3000,
});

/** Time constants of the EWMAs, ms: a step change is 63 % through after one, 95 % after three. */
const RTT_TAU_MS = 2000;
const THROUGHPUT_TAU_MS = 2000;
/** Datagram loss counts decay with this time constant (a ratio of decayed counts). */
const RATE_TAU_MS = 3000;
/** The retransmit rate is an EWMA (this τ) of each round's rate over the most recent segments. */
const RETRANSMIT_TAU_MS = 1000;
/**
 * Each round's retransmit rate is taken over the newest rounds that together sent at least this
 * many data segments: one round on a busy link, a few on a slow one. Whatever came before (a
 * busy spell's thousands of clean segments) does not dilute a link that just turned lossy.
 */
const RATE_MIN_SEGMENTS = 50;
/** Rounds kept for that, ms; a link that sent fewer segments in all of them is sparse. */
const RATE_WINDOW_MS = 10_000;
/**
 * Sparse traffic: clean segments / datagrams assumed besides the counted ones, and one loss
 * forgiven — a lone retransmission among the handful of segments an idle link sends (a PING
 * every 2 s) is no loss rate, two within the window are (n − 1)/(sent + 20).
 */
const RATE_PRIOR = 20;
const RATE_FORGIVEN = 1;
/** How long a delivery-rate sample counts towards the capacity (a max filter, as BBR's bottleneck bandwidth). */
const CAPACITY_WINDOW_MS = 5000;
/** A kernel SRTT not refreshed by a backlogged flow for this long gives way to the PING round trips. */
const KERNEL_RTT_STALE_MS = 3000;
/** RTO back-offs after which the connection counts as stalled (each RTO is ≥ 200 ms and doubles). */
const STALL_BACKOFF = 2;

/** Kernel counters of one connection at the previous sample. */
interface ConnectionBaseline {
  at: number;
  totalRetrans: number;
  segsOut: number;
  bytes: number;
  bytesAcked: number;
  deliveryRate: number | undefined;
  appLimited: boolean | undefined;
}

function ewma(prev: number | undefined, sample: number, dtMs: number, tauMs: number): number {
  if (prev === undefined) return sample;
  const a = 1 - Math.exp(-Math.max(0, dtMs) / tauMs);
  return prev + a * (sample - prev);
}

const RANK: Record<LinkQuality, number> = { unknown: -1, minimal: 0, moderate: 1, good: 2 };

export class LinkEstimator {
  readonly #t: LinkQualityThresholds;
  #quality: LinkQuality = 'unknown';
  /** A different rating seen since `pendingSince`, not reported yet (hold times). */
  #pending: LinkQuality | undefined;
  #pendingSince = 0;

  #kernelRtt: number | undefined;
  #kernelRttVar: number | undefined;
  #kernelAt = 0;
  #pingRtt: number | undefined;
  #pingRttVar: number | undefined;
  #pingAt = 0;
  #overdueMs = 0;
  #stalled = false;

  /** Retransmitted and sent data segments per round, newest last (RATE_WINDOW_MS of them). */
  readonly #rounds: Array<{ at: number; retrans: number; segs: number }> = [];
  #retransmitRate = 0;
  #rateAt: number | undefined;
  #lost = 0;
  #expected = 0;
  #lossAt: number | undefined;

  #throughput = 0;
  #throughputAt: number | undefined;
  /** Delivery-rate samples (bits/s) of the capacity window; pathLimited: not app-limited. */
  readonly #capacity: Array<{ at: number; bps: number; pathLimited: boolean }> = [];
  readonly #baselines = new WeakMap<object, ConnectionBaseline>();

  constructor(thresholds: LinkQualityThresholds = DEFAULT_LINK_THRESHOLDS) {
    this.#t = thresholds;
  }

  get quality(): LinkQuality {
    return this.#quality;
  }

  /** A PING's round trip (ms), measured when its PONG arrived at `now`. */
  observeRtt(sampleMs: number, now: number): void {
    if (!(sampleMs >= 0)) return;
    if (this.#pingRtt === undefined) {
      this.#pingRtt = sampleMs;
      this.#pingRttVar = sampleMs / 2;
    } else {
      const dt = now - this.#pingAt;
      this.#pingRttVar = ewma(this.#pingRttVar, Math.abs(sampleMs - this.#pingRtt), dt, RTT_TAU_MS);
      this.#pingRtt = ewma(this.#pingRtt, sampleMs, dt, RTT_TAU_MS);
    }
    this.#pingAt = now;
  }

  /** Best-effort messages from the peer since the last call: received, and missing by their sequence numbers. */
  observeDatagrams(received: number, lost: number, now: number): void {
    if (!(received >= 0) || !(lost >= 0) || received + lost === 0) return;
    const decay = this.#lossAt === undefined ? 1 : Math.exp(-Math.max(0, now - this.#lossAt) / RATE_TAU_MS);
    this.#lost = this.#lost * decay + lost;
    this.#expected = this.#expected * decay + received + lost;
    this.#lossAt = now;
  }

  /**
   * One sampling round: TCP_INFO of each connection carrying the peer's traffic (the control
   * connection first; `key` identifies a connection across rounds), how long the oldest
   * unanswered PING has waited, and whether the control connection is viable (its interface is
   * there: PathMonitor). Rates the link; returns the new rating when it changed.
   */
  sample(now: number, connections: ReadonlyArray<{ key: object; info: TcpInfo | undefined }>, pingOverdueMs = 0, viable = true): LinkQuality | undefined {
    let retrans = 0;
    let segs = 0;
    let bytes = 0;
    let span = 0;
    let stalled = false;
    let first = true;
    let rttUs: number | undefined;
    let rttVarUs = 0;
    for (const { key, info } of connections) {
      if (info === undefined) continue;
      if (info.backoff >= STALL_BACKOFF) stalled = true;
      const moved = (info.bytesAcked ?? 0) + (info.bytesReceived ?? 0);
      const segsOut = info.dataSegsOut ?? info.segsOut ?? 0;
      const base = this.#baselines.get(key);
      // A connection's SRTT is the path's RTT when it is backlogged (data waiting to be sent, or
      // a full congestion window in flight) and moving: it sees the queue a bottleneck builds,
      // and its ACKs come every other segment. A connection the app keeps short of data has an
      // SRTT carrying the receiver's delayed ACKs (40 ms and more on Linux), so there the PING
      // round trips speak; the control connection's SRTT (its handshake) serves until the first PONG.
      const backlogged = base !== undefined && (info.bytesAcked ?? 0) > base.bytesAcked && ((info.notsentBytes ?? 0) > 0 || info.unacked >= info.sndCwnd);
      if ((backlogged || (first && this.#pingRtt === undefined)) && (rttUs === undefined || info.rttUs > rttUs)) {
        rttUs = info.rttUs;
        rttVarUs = info.rttVarUs;
      }
      first = false;
      this.#baselines.set(key, { at: now, totalRetrans: info.totalRetrans, segsOut, bytes: moved, bytesAcked: info.bytesAcked ?? 0, deliveryRate: info.deliveryRate, appLimited: info.deliveryRateAppLimited });
      // A connection's first round only sets its baseline: what it moved before is not "now".
      if (base === undefined) continue;
      retrans += Math.max(0, info.totalRetrans - base.totalRetrans);
      segs += Math.max(0, segsOut - base.segsOut);
      bytes += Math.max(0, moved - base.bytes);
      span = Math.max(span, now - base.at);
      // tcpi_delivery_rate is the kernel's last stored sample: it stays put while no valid
      // sample comes (in loss recovery, say), so it is news only when it changed.
      if (info.deliveryRate !== undefined && info.deliveryRate > 0 && (info.deliveryRate !== base.deliveryRate || info.deliveryRateAppLimited !== base.appLimited)) {
        this.#capacity.push({ at: now, bps: info.deliveryRate * 8, pathLimited: info.deliveryRateAppLimited === false });
      }
    }
    if (rttUs === undefined) {
      // No backlogged flow this round: the kernel's figure fades out rather than lingering.
      if (this.#kernelRtt !== undefined && this.#pingRtt !== undefined && now - this.#kernelAt > KERNEL_RTT_STALE_MS) this.#kernelRtt = this.#kernelRttVar = undefined;
    } else {
      const dt = now - this.#kernelAt;
      this.#kernelRtt = ewma(this.#kernelRtt, rttUs / 1000, dt, RTT_TAU_MS);
      this.#kernelRttVar = ewma(this.#kernelRttVar, rttVarUs / 1000, dt, RTT_TAU_MS);
      this.#kernelAt = now;
    }
    if (span > 0) {
      this.#rounds.push({ at: now, retrans, segs });
      while (this.#rounds.length > 0 && now - (this.#rounds[0] as { at: number }).at > RATE_WINDOW_MS) this.#rounds.shift();
      this.#retransmitRate = ewma(this.#rateAt === undefined ? undefined : this.#retransmitRate, this.#recentRetransmitRate(), now - (this.#rateAt ?? now), RETRANSMIT_TAU_MS);
      this.#rateAt = now;
      this.#throughput = ewma(this.#throughputAt === undefined ? undefined : this.#throughput, (bytes * 8 * 1000) / span, now - (this.#throughputAt ?? now), THROUGHPUT_TAU_MS);
      this.#throughputAt = now;
    }
    while (this.#capacity.length > 0 && now - (this.#capacity[0] as { at: number }).at > CAPACITY_WINDOW_MS) this.#capacity.shift();
    this.#overdueMs = Math.max(0, pingOverdueMs);
    // A PING unanswered for longer than 'minimal' allows: nothing is coming back.
    // Not viable: the interface under the connection went away; nothing can get through.
    this.#stalled = stalled || !viable || this.#overdueMs > this.#t.minimal.rttMs;
    return this.#rate(now);
  }

  /** The measures now (quality: the reported rating). */
  report(): LinkQualityReport {
    const rtt = this.#rtt();
    return {
      quality: this.#quality,
      rttMs: rtt,
      rttVarMs: Math.max(this.#kernelRttVar ?? 0, this.#pingRttVar ?? 0),
      throughputBps: this.#throughput,
      capacityBps: this.#capacityBps(),
      retransmitRate: this.#retransmitRate,
      lossRate: this.#lossRate(),
      stalled: this.#stalled,
    };
  }

  /** The peer is gone: back to 'unknown', every measure forgotten. Returns 'unknown' when that is a change. */
  reset(): LinkQuality | undefined {
    const was = this.#quality;
    this.#quality = 'unknown';
    this.#pending = undefined;
    this.#kernelRtt = this.#kernelRttVar = this.#pingRtt = this.#pingRttVar = undefined;
    this.#overdueMs = 0;
    this.#stalled = false;
    this.#lost = this.#expected = this.#retransmitRate = 0;
    this.#rounds.length = 0;
    this.#rateAt = this.#lossAt = this.#throughputAt = undefined;
    this.#throughput = 0;
    this.#capacity.length = 0;
    return was === 'unknown' ? undefined : 'unknown';
  }

  #rtt(): number | undefined {
    if (this.#kernelRtt === undefined && this.#pingRtt === undefined) return undefined;
    return Math.max(this.#kernelRtt ?? 0, this.#pingRtt ?? 0, this.#overdueMs);
  }

  /** Retransmitted / sent over the newest rounds holding RATE_MIN_SEGMENTS; the sparse rule when the window holds fewer. */
  #recentRetransmitRate(): number {
    let retrans = 0;
    let segs = 0;
    for (let i = this.#rounds.length - 1; i >= 0; i--) {
      const r = this.#rounds[i] as { retrans: number; segs: number };
      retrans += r.retrans;
      segs += r.segs;
      if (segs >= RATE_MIN_SEGMENTS) return Math.min(1, retrans / segs);
    }
    return Math.max(0, retrans - RATE_FORGIVEN) / (segs + RATE_PRIOR);
  }

  #lossRate(): number {
    return Math.max(0, this.#lost - RATE_FORGIVEN) / (this.#expected + RATE_PRIOR);
  }

  #capacityBps(): number | undefined {
    // Once the path is the limit, what the app achieved before (lower bounds, from a link that
    // may since have changed) no longer counts: the max runs from the first path-limited sample.
    const first = this.#capacity.findIndex((c) => c.pathLimited);
    const pathLimited = first >= 0;
    let max = 0;
    for (let i = Math.max(0, first); i < this.#capacity.length; i++) max = Math.max(max, (this.#capacity[i] as { bps: number }).bps);
    // App-limited samples only bound the capacity from below: they count when they already clear 'good'.
    if (max === 0 || (!pathLimited && max < this.#t.good.capacityBps)) return undefined;
    return max;
  }

  /** Past `b` (scaled by `f` towards better: RTT and loss × f, capacity ÷ f)? */
  #past(b: LinkBoundary, f: number, rtt: number, loss: number, capacity: number | undefined): boolean {
    return rtt > b.rttMs * f || loss > b.lossRate * f || (capacity !== undefined && capacity < b.capacityBps / f);
  }

  /** The rating the measures call for, given the current one (hysteresis). */
  #target(): LinkQuality {
    const rtt = this.#rtt();
    if (rtt === undefined) return 'unknown';
    if (this.#stalled) return 'minimal';
    const loss = Math.max(this.#retransmitRate, this.#lossRate());
    const capacity = this.#capacityBps();
    const h = this.#t.hysteresis;
    const cur = RANK[this.#quality];
    // Leaving a rating at or below a boundary takes the stricter (scaled) side of it; the
    // first rating takes the boundaries as they are.
    if (this.#past(this.#t.minimal, cur === RANK.minimal ? h : 1, rtt, loss, capacity)) return 'minimal';
    if (this.#past(this.#t.good, cur === RANK.minimal || cur === RANK.moderate ? h : 1, rtt, loss, capacity)) return 'moderate';
    return 'good';
  }

  #rate(now: number): LinkQuality | undefined {
    const target = this.#target();
    if (target === this.#quality) {
      this.#pending = undefined;
      return undefined;
    }
    // The first measurement is reported at once.
    if (this.#quality === 'unknown') return this.#set(target);
    const worse = RANK[target] < RANK[this.#quality];
    const pendingWorse = this.#pending !== undefined && RANK[this.#pending] < RANK[this.#quality];
    // The hold time runs while the rating stays on the same side of the current one.
    if (this.#pending === undefined || pendingWorse !== worse) this.#pendingSince = now;
    this.#pending = target;
    if (now - this.#pendingSince < (worse ? this.#t.degradeAfterMs : this.#t.improveAfterMs)) return undefined;
    return this.#set(target);
  }

  #set(q: LinkQuality): LinkQuality {
    this.#quality = q;
    this.#pending = undefined;
    return q;
  }
}
