/**
 * The keepalive's timing rules in fake time (src/session/keepalive-policy.ts): one PING per
 * pair and interval at idle (the dialling side pings, the other answers, and samples its own
 * round trip only every rttRefresh), a frozen or cut-off peer still detected within
 * interval + timeout from either side, and a stall of our own event loop (our tick fired
 * late while the peer's PINGs waited unread in the socket) not taken for the peer's silence —
 * while a frozen peer is still detected when our loop is slow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeepalivePolicy } from '../../../src/session/keepalive-policy.js';
import { KeepalivePace } from '../../../src/session/keepalive-pace.js';

const INTERVAL = 2000;
const TIMEOUT = 6000;
const RTT = 1;

interface Side {
  name: string;
  policy: KeepalivePolicy;
  /** Next tick due (setInterval: `interval` after the previous one ran). */
  nextTick: number;
  /** Frozen (SIGSTOP) until this time: neither ticks nor reads. */
  frozenUntil: number;
  /** Our own loop stalled until this time: ticks and reads wait, then run (timers first). */
  stalledUntil: number;
  /** Messages waiting in the socket. */
  inbox: Array<{ at: number; kind: 'ping' | 'pong' }>;
  pingsSent: number;
  dead: number | undefined;
}

/**
 * Two ControlChannel keepalives, A (dialled: pinger) and B (answerer), over a link with a
 * 1 ms delay, stepped 1 ms at a time: each side, when it runs, fires a due tick first and
 * then reads what arrived (Node runs timers before the poll phase).
 */
class Pair {
  time = 0;
  cut = false;
  readonly a: Side;
  readonly b: Side;
  constructor() {
    const mk = (name: string, pinger: boolean): Side => ({
      name,
      policy: new KeepalivePolicy({ interval: INTERVAL, timeout: TIMEOUT, pinger }, 0),
      nextTick: INTERVAL,
      frozenUntil: 0,
      stalledUntil: 0,
      inbox: [],
      pingsSent: 0,
      dead: undefined,
    });
    this.a = mk('A', true);
    this.b = mk('B', false);
  }

  #send(from: Side, kind: 'ping' | 'pong'): void {
    if (kind === 'ping') from.pingsSent++;
    if (this.cut) return;
    const to = from === this.a ? this.b : this.a;
    to.inbox.push({ at: this.time + RTT, kind });
  }

  #run(s: Side): void {
    if (s.dead !== undefined || this.time < s.frozenUntil || this.time < s.stalledUntil) return;
    const now = this.time;
    if (now >= s.nextTick) {
      const k = s.policy.tick(now);
      s.nextTick = now + s.policy.interval;
      if (k.dead) {
        s.dead = now;
        return;
      }
      if (k.ping) this.#send(s, 'ping');
    }
    while (s.inbox.length > 0 && (s.inbox[0] as { at: number }).at <= now) {
      const m = s.inbox.shift() as { kind: 'ping' | 'pong' };
      s.policy.received(now);
      if (m.kind === 'ping') {
        this.#send(s, 'pong');
        if (s.policy.piggyback(now)) this.#send(s, 'ping');
      }
    }
  }

  /** A new pace for one side, as ControlChannel.arm does: re-armed at the new interval now. */
  repace(s: Side, interval: number, timeout: number): void {
    s.policy.repace(interval, timeout, this.time);
    s.nextTick = this.time + interval;
  }

  advance(ms: number): void {
    const end = this.time + ms;
    while (this.time < end) {
      this.time++;
      this.#run(this.a);
      this.#run(this.b);
    }
  }
}

test('at idle one PING goes each way per pair per interval, not two: the dialler pings, the answerer answers (and samples its own RTT every 5 intervals)', () => {
  const p = new Pair();
  p.advance(60_000);
  assert.equal(p.a.dead, undefined);
  assert.equal(p.b.dead, undefined);
  // 30 intervals: A pings every one of them, B only for its round-trip samples (its first PING,
  // then every 10 s) — 36 PINGs in all, where both sides pinging sent 60.
  assert.equal(p.a.pingsSent, 30);
  assert.equal(p.b.pingsSent, 6);
  assert.ok(p.b.policy.silentFor(p.time) <= INTERVAL, 'the answerer hears the pinger every interval');
});

test('a frozen answerer is detected by the pinger within interval + timeout', () => {
  const p = new Pair();
  p.advance(10_000);
  const at = p.time;
  p.b.frozenUntil = Number.POSITIVE_INFINITY;
  p.advance(20_000);
  assert.ok(p.a.dead !== undefined, 'A declared B dead');
  const took = p.a.dead - at;
  assert.ok(took > TIMEOUT - INTERVAL && took <= INTERVAL + TIMEOUT, `detected after ${took} ms`);
});

test('a frozen pinger is detected by the answerer within interval + timeout: it pings once the PINGs stop', () => {
  const p = new Pair();
  p.advance(10_500);
  const at = p.time;
  const before = p.b.pingsSent;
  p.a.frozenUntil = Number.POSITIVE_INFINITY;
  p.advance(20_000);
  assert.ok(p.b.dead !== undefined, 'B declared A dead');
  const took = p.b.dead - at;
  assert.ok(took > TIMEOUT - INTERVAL && took <= INTERVAL + TIMEOUT, `detected after ${took} ms`);
  assert.ok(p.b.pingsSent > before, 'B pinged the silent peer (an unanswered PING is what link quality rates as stalled)');
});

test('a cut link is detected from both sides within interval + timeout', () => {
  const p = new Pair();
  p.advance(9_300);
  const at = p.time;
  p.cut = true;
  p.advance(20_000);
  for (const s of [p.a, p.b]) {
    assert.ok(s.dead !== undefined, `${s.name} declared the peer dead`);
    assert.ok(s.dead - at <= INTERVAL + TIMEOUT, `${s.name} detected after ${s.dead - at} ms`);
  }
});

test('our own event loop stalled for 9 s: the peer\'s PINGs waited unread in the socket, the late tick fires first — the peer is not declared dead', () => {
  for (const side of ['a', 'b'] as const) {
    const p = new Pair();
    p.advance(10_100);
    p[side].stalledUntil = p.time + 9000;
    // Until the stalled side ran again and read its socket (in a real pair the other side's
    // verdict closes the connection, which the sim does not model).
    p.advance(9000 + 100);
    assert.equal(p[side].dead, undefined, `${p[side].name} (stalled) kept its peer`);
    // The other side cannot tell a stalled peer from a frozen one: the documented rule applies.
    const other = side === 'a' ? p.b : p.a;
    assert.ok(other.dead !== undefined, `${other.name} dropped the peer that did not run for 9 s`);
  }
});

test('a loaded machine: both loops stalled for 9 s at once — both keep the peer', () => {
  for (const offset of [0, 300, 1500]) {
    const p = new Pair();
    p.advance(10_100);
    p.a.stalledUntil = p.time + 9000;
    p.b.stalledUntil = p.time + 9000 + offset;
    p.advance(30_000);
    assert.equal(p.a.dead, undefined, `A kept B (offset ${offset})`);
    assert.equal(p.b.dead, undefined, `B kept A (offset ${offset})`);
  }
});

test('the plain rule (no stall accounting) would have dropped the peer in that case', () => {
  // What the previous rule saw: the late tick with 7 s since the last read.
  const k = new KeepalivePolicy({ interval: INTERVAL, timeout: TIMEOUT, pinger: true }, 0);
  k.received(10_000);
  k.tick(10_000);
  const t = k.tick(10_000 + INTERVAL + 7000);
  assert.ok(t.silentMs > TIMEOUT, 'silent longer than the timeout');
  assert.equal(t.dead, false);
  assert.ok(t.stalledMs >= 6900, `stall measured: ${t.stalledMs} ms`);
});

test('a frozen peer is still detected while our own loop is slow (every tick 1 s late)', () => {
  const k = new KeepalivePolicy({ interval: INTERVAL, timeout: TIMEOUT, pinger: true }, 0);
  k.received(0);
  let now = 0;
  let deadAt: number | undefined;
  for (let i = 0; i < 20 && deadAt === undefined; i++) {
    now += INTERVAL + 1000;
    if (k.tick(now).dead) deadAt = now;
  }
  assert.ok(deadAt !== undefined, 'declared dead');
  // 1 s of every 3 s stalled: at most 1.5 × the timeout of wall time, plus a tick.
  assert.ok(deadAt <= 1.5 * TIMEOUT + INTERVAL + 1000, `after ${deadAt} ms`);
});

test('a stall before the last receipt does not count: silence after it is timed plainly', () => {
  const k = new KeepalivePolicy({ interval: INTERVAL, timeout: TIMEOUT, pinger: true }, 0);
  k.tick(INTERVAL + 5000); // stalled 5 s
  k.received(INTERVAL + 5000); // then heard the peer
  let now = INTERVAL + 5000;
  let deadAt: number | undefined;
  for (let i = 0; i < 10 && deadAt === undefined; i++) {
    now += INTERVAL;
    if (k.tick(now).dead) deadAt = now - (INTERVAL + 5000);
  }
  assert.equal(deadAt, 8000, 'dead at the first tick past the timeout');
});

test('the pace: the configured interval up to rate × interval peers, then peers ÷ rate seconds, the timeout in proportion', () => {
  let peers = 0;
  const pace = new KeepalivePace({ interval: INTERVAL, timeout: TIMEOUT, rate: 10 }, () => peers);
  for (const [n, interval, timeout] of [
    [0, 2000, 6000],
    [5, 2000, 6000],
    [20, 2000, 6000],
    [32, 3200, 9600],
    [99, 9900, 29_700],
    [300, 30_000, 90_000],
    [5000, 30_000, 90_000],
  ] as const) {
    peers = n;
    assert.equal(pace.interval(), interval, `${n} peers`);
    assert.equal(pace.timeoutFor(pace.interval()), timeout, `${n} peers`);
  }
});

test('paced apart: a pinger at 10 s and an answerer at 2 s (or the reverse) keep each other, and the faster side pays for it', () => {
  // A (pinger) has many peers, B few: B pings on its own after 1.5 of its intervals of silence.
  const p = new Pair();
  p.repace(p.a, 10_000, 30_000);
  p.advance(120_000);
  assert.equal(p.a.dead, undefined);
  assert.equal(p.b.dead, undefined);
  assert.ok(p.a.pingsSent <= 13, `A pinged ${p.a.pingsSent} times (every 10 s)`);
  assert.ok(p.b.pingsSent >= 20, `B pinged ${p.b.pingsSent} times to hear A within its 6 s`);
  assert.ok(p.b.policy.silentFor(p.time) <= 5000);
  // The reverse: A (pinger) has few peers, B many. A's PINGs every 2 s are all B needs.
  const q = new Pair();
  q.repace(q.b, 10_000, 30_000);
  q.advance(120_000);
  assert.equal(q.a.dead, undefined);
  assert.equal(q.b.dead, undefined);
  assert.ok(q.b.pingsSent <= 4, `B pinged ${q.b.pingsSent} times (its own RTT samples, every 50 s)`);
});

test('a stretched pace: a frozen peer is detected within the stretched interval + timeout, and not before its timeout less an interval', () => {
  for (const frozen of ['a', 'b'] as const) {
    const p = new Pair();
    p.repace(p.a, 9900, 29_700);
    p.repace(p.b, 9900, 29_700);
    p.advance(40_300);
    assert.equal(p.a.pingsSent, 4, 'A pinged every 9.9 s');
    const at = p.time;
    p[frozen].frozenUntil = Number.POSITIVE_INFINITY;
    p.advance(60_000);
    const other = frozen === 'a' ? p.b : p.a;
    assert.ok(other.dead !== undefined, `${other.name} declared ${p[frozen].name} dead`);
    const took = other.dead - at;
    assert.ok(took > 29_700 - 9900 && took <= 9900 + 29_700 + 9900 * 0.5, `detected after ${took} ms`);
  }
});

test('the pace changes while connected (peers come and go): nobody is dropped, and the PINGs follow the pace', () => {
  const p = new Pair();
  p.advance(10_000);
  const before = p.a.pingsSent;
  // Both sides now have ~99 peers: 9.9 s.
  p.repace(p.a, 9900, 29_700);
  p.advance(3000);
  p.repace(p.b, 9900, 29_700);
  p.advance(60_000);
  assert.ok(p.a.pingsSent - before <= 7, `A pinged ${p.a.pingsSent - before} times in 63 s`);
  // Back to a few peers, one side first.
  const mid = p.a.pingsSent;
  p.repace(p.b, INTERVAL, TIMEOUT);
  p.advance(5000);
  p.repace(p.a, INTERVAL, TIMEOUT);
  p.advance(20_000);
  assert.equal(p.a.dead, undefined);
  assert.equal(p.b.dead, undefined);
  assert.ok(p.a.pingsSent - mid >= 10, `A pinged ${p.a.pingsSent - mid} times in the 20 s at 2 s`);
  assert.ok(p.b.policy.silentFor(p.time) <= INTERVAL + RTT);
});

test('the pace shrinks on the answering side while the pinger still pings at the old pace: the answerer asks with its own PING, nobody is dropped; a frozen peer is still found', () => {
  // Reviewer's case: both at 9.9 s; the answerer's peer count drops to a few (2 s / 6 s) at a
  // moment when it has not heard the pinger for up to 9.9 s. Every phase of the old period.
  for (let phase = 0; phase < 9900; phase += 300) {
    const p = new Pair();
    p.repace(p.a, 9900, 29_700);
    p.repace(p.b, 9900, 29_700);
    p.advance(20_000 + phase);
    p.repace(p.b, INTERVAL, TIMEOUT);
    p.advance(40_000);
    assert.equal(p.b.dead, undefined, `B kept A (phase ${phase})`);
    assert.equal(p.a.dead, undefined, `A kept B (phase ${phase})`);
  }
  // Directly: 7 s of silence under 29.7 s, then 2 s / 6 s: no verdict on the next tick, a PING.
  const k = new KeepalivePolicy({ interval: 9900, timeout: 29_700, pinger: false }, 0);
  k.received(0);
  k.repace(INTERVAL, TIMEOUT, 7000);
  const t = k.tick(9000);
  assert.equal(t.dead, false);
  assert.equal(t.ping, true, 'the answerer asks for a sign of life');
  // and a peer that stays silent is still dropped: by the later of the old deadline and a new timeout
  let deadAt: number | undefined;
  for (let now = 11_000; now < 60_000 && deadAt === undefined; now += INTERVAL) if (k.tick(now).dead) deadAt = now;
  assert.ok(deadAt !== undefined && deadAt >= 29_700 && deadAt <= 29_700 + INTERVAL, `dead at ${deadAt}`);
});

test('a pace that keeps shrinking and growing does not hold off the verdict on a frozen peer', () => {
  // Reviewer's case: 100 <-> 88 peers at alternate ticks (10 s <-> 8.8 s): one grace per silence.
  const k = new KeepalivePolicy({ interval: 10_000, timeout: 30_000, pinger: false }, 0);
  k.received(0);
  let now = 0;
  let deadAt: number | undefined;
  for (let i = 0; i < 400 && deadAt === undefined; i++) {
    const big = i % 2 === 0;
    now += big ? 8800 : 10_000;
    if (k.tick(now).dead) deadAt = now;
    else if (big) k.repace(10_000, 30_000, now);
    else k.repace(8800, 26_400, now);
  }
  assert.ok(deadAt !== undefined && deadAt <= 80_000, `dead at ${deadAt}`);
});
