/**
 * The link-quality estimator in fake time: a simulated connection whose kernel counters
 * (TCP_INFO) advance once a second as a link of given RTT / loss / rate would move them.
 * Thresholds, the first rating, reaction time, hysteresis (no flapping), datagram loss,
 * stalls, and the monitor's one timer (started with the first peer, cancelled with the last).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TcpInfo } from '../../../src/net/index.js';
import { DEFAULT_LINK_THRESHOLDS, LinkEstimator, type LinkQuality } from '../../../src/session/link-quality.js';
import { LinkQualityMonitor, type LinkTimers } from '../../../src/session/link-monitor.js';

interface Conditions {
  rttMs: number;
  /** Data segments we send per second. */
  segs?: number;
  /** Fraction of them retransmitted. */
  loss?: number;
  /** Kernel delivery-rate sample, bits/s, and whether the app (not the path) was the limit. */
  deliveryBps?: number;
  appLimited?: boolean;
  backoff?: number;
  /** Age of the oldest unanswered PING at the sample. */
  overdueMs?: number;
  viable?: boolean;
}

/** One connection's kernel counters, advanced a second at a time. */
class SimLink {
  readonly key = {};
  t = 0;
  readonly changes: Array<{ t: number; q: LinkQuality }> = [];
  readonly info: TcpInfo = {
    state: 1, caState: 0, retransmits: 0, backoff: 0, rtoUs: 200_000, rttUs: 1000, rttVarUs: 500, sndCwnd: 10, sndMss: 1448,
    unacked: 0, lost: 0, totalRetrans: 0, bytesAcked: 0, bytesReceived: 0, segsOut: 0, segsIn: 0, dataSegsOut: 0, deliveryRate: 0, deliveryRateAppLimited: true,
  };
  #retransCarry = 0;

  constructor(readonly est = new LinkEstimator()) {}

  /** `seconds` of the given conditions, sampled once a second. */
  run(seconds: number, c: Conditions): void {
    for (let i = 0; i < seconds; i++) {
      this.t += 1000;
      const segs = c.segs ?? 2;
      const i0 = this.info;
      i0.rttUs = c.rttMs * 1000;
      i0.rttVarUs = (c.rttMs * 1000) / 4;
      i0.dataSegsOut = (i0.dataSegsOut ?? 0) + segs;
      i0.segsOut = (i0.segsOut ?? 0) + segs * 2;
      this.#retransCarry += segs * (c.loss ?? 0);
      const r = Math.floor(this.#retransCarry);
      this.#retransCarry -= r;
      i0.totalRetrans += r;
      i0.bytesAcked = (i0.bytesAcked ?? 0) + segs * 1000;
      // The kernel's samples differ round to round; a value that stays put is a stale one.
      i0.deliveryRate = ((c.deliveryBps ?? segs * 8000) / 8) * (1 + (i % 2) * 1e-3);
      // A link that is the limit keeps data waiting to be sent.
      i0.notsentBytes = c.appLimited === false ? 64 * 1024 : 0;
      i0.deliveryRateAppLimited = c.appLimited ?? true;
      i0.backoff = c.backoff ?? 0;
      const q = this.est.sample(this.t, [{ key: this.key, info: { ...i0 } }], c.overdueMs ?? 0, c.viable ?? true);
      if (q !== undefined) this.changes.push({ t: this.t, q });
    }
  }

  get quality(): LinkQuality {
    return this.est.quality;
  }
}

const LAN: Conditions = { rttMs: 1, segs: 200, deliveryBps: 200e6, appLimited: true };
/** A hard throttle with loss: tbf's queue in the RTT, 20 % of segments retransmitted, 300 kbit/s delivered. */
const THROTTLED: Conditions = { rttMs: 900, segs: 30, loss: 0.2, deliveryBps: 300e3, appLimited: false };

test('unknown until the first measurement, which is rated at once', () => {
  const est = new LinkEstimator();
  assert.equal(est.quality, 'unknown');
  assert.equal(est.report().rttMs, undefined);
  const link = new SimLink(est);
  link.run(1, LAN);
  assert.deepEqual(link.changes, [{ t: 1000, q: 'good' }]);
  const r = est.report();
  assert.equal(r.quality, 'good');
  assert.ok(r.rttMs !== undefined && Math.abs(r.rttMs - 1) < 1e-9, String(r.rttMs));
});

test('thresholds: RTT, retransmissions, capacity and stalls each rate the link', () => {
  const cases: Array<[string, Conditions, LinkQuality]> = [
    ['LAN', LAN, 'good'],
    ['RTT 40 ms', { ...LAN, rttMs: 40 }, 'good'],
    ['RTT 100 ms', { ...LAN, rttMs: 100 }, 'moderate'],
    ['RTT 450 ms', { ...LAN, rttMs: 450 }, 'moderate'],
    ['RTT 800 ms', { ...LAN, rttMs: 800 }, 'minimal'],
    ['0.5 % retransmitted', { ...LAN, loss: 0.005 }, 'good'],
    ['3 % retransmitted', { ...LAN, loss: 0.03 }, 'moderate'],
    ['15 % retransmitted', { ...LAN, loss: 0.15 }, 'minimal'],
    ['path-limited at 5 Mbit/s', { ...LAN, deliveryBps: 5e6, appLimited: false }, 'moderate'],
    ['path-limited at 300 kbit/s', { ...LAN, deliveryBps: 300e3, appLimited: false }, 'minimal'],
    // An app sending little says nothing about the path's capacity.
    ['app-limited at 300 kbit/s', { ...LAN, deliveryBps: 300e3, appLimited: true }, 'good'],
    ['RTO back-off', { ...LAN, backoff: 3 }, 'minimal'],
    ['PING unanswered for 2 s', { ...LAN, overdueMs: 2000 }, 'minimal'],
    ['interface gone (not viable)', { ...LAN, viable: false }, 'minimal'],
  ];
  for (const [what, c, want] of cases) {
    const link = new SimLink();
    link.run(20, c);
    assert.equal(link.quality, want, `${what}: ${JSON.stringify(link.est.report())}`);
  }
});

test('reaction: a hard throttle with loss is minimal within 4 s; good again within 12 s of its removal', () => {
  const link = new SimLink();
  link.run(10, LAN);
  assert.equal(link.quality, 'good');
  const throttledAt = link.t;
  link.run(15, THROTTLED);
  const down = link.changes.find((c) => c.t > throttledAt && c.q === 'minimal');
  assert.ok(down, JSON.stringify(link.changes));
  assert.ok(down.t - throttledAt <= 4000, `minimal after ${down.t - throttledAt} ms`);
  const removedAt = link.t;
  link.run(20, LAN);
  const up = link.changes.find((c) => c.t > removedAt && c.q === 'good');
  assert.ok(up, JSON.stringify(link.changes));
  assert.ok(up.t - removedAt <= 12_000, `good after ${up.t - removedAt} ms`);
  // Never better than the measures allow on the way: minimal → moderate → good, no jumps back.
  assert.deepEqual(link.changes.map((c) => c.q), ['good', 'minimal', 'moderate', 'good']);
});

test('reaction: loss alone on a busy link is minimal within 3 s, though thousands of clean segments came before', () => {
  const link = new SimLink();
  link.run(10, { ...LAN, segs: 2000 });
  const lossyAt = link.t;
  link.run(10, { ...LAN, segs: 200, loss: 0.15 });
  const down = link.changes.find((c) => c.t > lossyAt && c.q === 'minimal');
  assert.ok(down && down.t - lossyAt <= 3000, JSON.stringify(link.changes));
});

test('reaction: a link that becomes the limit at 300 kbit/s is minimal within 3 s, whatever the app achieved before', () => {
  const link = new SimLink();
  link.run(10, LAN);
  const slowAt = link.t;
  link.run(6, { rttMs: 20, segs: 25, deliveryBps: 300e3, appLimited: false });
  const down = link.changes.find((c) => c.t > slowAt && c.q === 'minimal');
  assert.ok(down && down.t - slowAt <= 3000, JSON.stringify(link.changes));
  const cap = link.est.report().capacityBps ?? 0;
  assert.ok(cap >= 300e3 && cap < 301e3, String(cap));
});

test('hysteresis: RTT swinging across a boundary does not flap the rating', () => {
  const link = new SimLink();
  link.run(5, LAN);
  // Into minimal, then RTT alternating 420 / 600 ms each second: below the boundary (500) but
  // not below its exit (350), so it stays minimal.
  link.run(5, { ...LAN, rttMs: 1500 });
  assert.equal(link.quality, 'minimal');
  const before = link.changes.length;
  for (let i = 0; i < 30; i++) link.run(1, { ...LAN, rttMs: i % 2 === 0 ? 420 : 600 });
  assert.equal(link.changes.length, before, JSON.stringify(link.changes));
  // Around the good boundary (50 ms): 45 / 60 ms from moderate stays moderate (exit below 35).
  const m = new SimLink();
  m.run(5, { ...LAN, rttMs: 100 });
  assert.equal(m.quality, 'moderate');
  for (let i = 0; i < 30; i++) m.run(1, { ...LAN, rttMs: i % 2 === 0 ? 45 : 60 });
  assert.deepEqual(m.changes.map((c) => c.q), ['moderate']);
});

test('hold times: one bad sample does not degrade a good link; a sustained one does', () => {
  const link = new SimLink();
  link.run(5, LAN);
  link.run(1, { ...LAN, overdueMs: 3000 });
  link.run(5, LAN);
  assert.deepEqual(link.changes.map((c) => c.q), ['good']);
  link.run(2, { ...LAN, overdueMs: 3000 });
  assert.equal(link.quality, 'minimal');
  assert.equal(DEFAULT_LINK_THRESHOLDS.degradeAfterMs, 1000);
});

test('datagram loss from sequence gaps rates the link; it recovers when the gaps stop', () => {
  const link = new SimLink();
  link.run(3, LAN);
  for (let i = 0; i < 10; i++) {
    link.est.observeDatagrams(85, 15, link.t + 500);
    link.run(1, LAN);
  }
  assert.equal(link.quality, 'minimal');
  const r = link.est.report();
  assert.ok(r.lossRate > 0.1 && r.lossRate <= 0.15, String(r.lossRate));
  assert.equal(r.retransmitRate, 0);
  for (let i = 0; i < 20; i++) {
    link.est.observeDatagrams(100, 0, link.t + 500);
    link.run(1, LAN);
  }
  assert.equal(link.quality, 'good');
});

test('one retransmission on an idle link is not a loss rate', () => {
  const link = new SimLink();
  link.run(5, { rttMs: 1, segs: 1 });
  link.info.totalRetrans += 1;
  link.run(5, { rttMs: 1, segs: 1 });
  assert.equal(link.quality, 'good', JSON.stringify(link.est.report()));
});

test('throughput: bytes moved per second, in bits per second', () => {
  const link = new SimLink();
  link.run(15, { rttMs: 1, segs: 1250 }); // 1.25 MB/s acknowledged
  const bps = link.est.report().throughputBps;
  assert.ok(Math.abs(bps - 10e6) < 0.05e6, String(bps));
});

test('reset: back to unknown, reported once', () => {
  const link = new SimLink();
  link.run(3, LAN);
  assert.equal(link.est.reset(), 'unknown');
  assert.equal(link.est.reset(), undefined);
  assert.equal(link.est.report().rttMs, undefined);
});

class FakeTimers implements LinkTimers {
  t = 0;
  readonly timers = new Set<{ fn: () => void; ms: number; next: number }>();
  now(): number {
    return this.t;
  }
  every(fn: () => void, ms: number): { cancel(): void } {
    const timer = { fn, ms, next: this.t + ms };
    this.timers.add(timer);
    return { cancel: () => this.timers.delete(timer) };
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let due: { fn: () => void; ms: number; next: number } | undefined;
      for (const x of this.timers) if (x.next <= end && (!due || x.next < due.next)) due = x;
      if (!due) break;
      this.t = due.next;
      due.next += due.ms;
      due.fn();
    }
    this.t = end;
  }
}

test('monitor: one timer for all peers, only while one is tracked; untracked peers are reported unknown', () => {
  const timers = new FakeTimers();
  const events: Array<[string, LinkQuality]> = [];
  const mon = new LinkQualityMonitor({ timers, changed: (key, q) => events.push([key, q]) });
  assert.equal(mon.sampling, false);
  const links = new Map<string, SimLink>();
  const source = (key: string) => {
    const l = new SimLink();
    links.set(key, l);
    return {
      connections: () => [{ key: l.key, info: { ...l.info, rttUs: 2000 } }],
      pingOverdueMs: () => 0,
    };
  };
  mon.track('a', source('a'));
  mon.track('b', source('b'));
  assert.equal(timers.timers.size, 1);
  timers.advance(1000);
  assert.deepEqual(events, [['a', 'good'], ['b', 'good']]);
  assert.equal(mon.report('a')?.quality, 'good');
  mon.observeRtt('a', 3);
  mon.untrack('a');
  assert.deepEqual(events.at(-1), ['a', 'unknown']);
  assert.equal(mon.report('a'), undefined);
  assert.equal(timers.timers.size, 1);
  mon.untrack('b');
  assert.equal(timers.timers.size, 0, 'the timer goes with the last peer');
  assert.equal(mon.sampling, false);
  mon.track('c', source('c'));
  assert.equal(timers.timers.size, 1);
  mon.close();
  assert.equal(timers.timers.size, 0);
  mon.track('d', source('d'));
  assert.equal(timers.timers.size, 0, 'nothing starts after close');
});

test('RTT: a backlogged stream counts with its SRTT; one the app keeps short of data, or an idle one, does not (delayed ACKs), PINGs do', () => {
  const est = new LinkEstimator();
  const control = { key: {}, info: { ...new SimLink().info, rttUs: 45_000 } };
  const stream = { key: {}, info: { ...new SimLink().info, rttUs: 900_000, bytesAcked: 0, notsentBytes: 200_000 } };
  let t = 0;
  const round = (streamMoves: boolean, appLimited = false): void => {
    t += 1000;
    est.observeRtt(1, t - 500);
    control.info = { ...control.info, bytesAcked: (control.info.bytesAcked ?? 0) + 100 };
    if (streamMoves) stream.info = { ...stream.info, bytesAcked: (stream.info.bytesAcked ?? 0) + 30_000, notsentBytes: appLimited ? 0 : 200_000, unacked: 2 };
    est.sample(t, [control, stream]);
  };
  // The control connection's 45 ms SRTT (a receiver's delayed ACKs) is not the path's RTT once PINGs answer in 1 ms.
  for (let i = 0; i < 6; i++) round(false);
  assert.equal(est.quality, 'good', JSON.stringify(est.report()));
  for (let i = 0; i < 6; i++) round(true);
  assert.equal(est.quality, 'minimal', JSON.stringify(est.report()));
  for (let i = 0; i < 20; i++) round(false);
  assert.equal(est.quality, 'good', JSON.stringify(est.report()));
  // Moving data but limited by the app: its SRTT is not the path's.
  for (let i = 0; i < 10; i++) round(true, true);
  assert.equal(est.quality, 'good', JSON.stringify(est.report()));
});

test('options: partial thresholds keep the other defaults; nonsense is refused', async () => {
  const { resolveOptions } = await import('../../../src/session/options.js');
  const o = resolveOptions({ serviceType: 'lq', linkQuality: { thresholds: { good: { rttMs: 20 } } } });
  assert.deepEqual(o.linkQuality.thresholds.good, { ...DEFAULT_LINK_THRESHOLDS.good, rttMs: 20 });
  assert.deepEqual(o.linkQuality.thresholds.minimal, DEFAULT_LINK_THRESHOLDS.minimal);
  assert.equal(o.linkQuality.interval, 1000);
  assert.throws(() => resolveOptions({ serviceType: 'lq', linkQuality: { thresholds: { hysteresis: 2 } } }), /hysteresis/);
  assert.throws(() => resolveOptions({ serviceType: 'lq', linkQuality: { interval: 0 } }), /interval/);
});

test('monitor: datagram flow counters are read each round; a new flow is a new baseline, not negative loss', () => {
  const timers = new FakeTimers();
  const events: LinkQuality[] = [];
  const mon = new LinkQualityMonitor({ timers, changed: (_k, q) => events.push(q) });
  const l = new SimLink();
  let flow = { received: 0, lost: 0 };
  mon.track('a', {
    connections: () => [{ key: l.key, info: { ...l.info } }],
    pingOverdueMs: () => 0,
    datagrams: () => flow,
  });
  for (let i = 0; i < 8; i++) {
    flow = { received: flow.received + 80, lost: flow.lost + 20 };
    timers.advance(1000);
  }
  assert.equal(mon.report('a')?.quality, 'minimal', JSON.stringify(mon.report('a')));
  // A new flow starts its counters over; then clean datagrams only.
  flow = { received: 5, lost: 0 };
  for (let i = 0; i < 20; i++) {
    flow = { received: flow.received + 100, lost: flow.lost };
    timers.advance(1000);
  }
  assert.equal(mon.report('a')?.quality, 'good', JSON.stringify(mon.report('a')));
  assert.equal(events[0], 'good');
  assert.ok(events.includes('minimal'), events.join());
  assert.equal(events.at(-1), 'good');
  mon.close();
});
