/**
 * The viability debounce in fake time (injected timers): a path that comes back within the
 * grace keeps the peer and hands the held sends over in order (their promises resolve only
 * then); one that does not drops the peer exactly at the grace and rejects what was held;
 * held bytes are bounded. And the option's default and bound (inside the keepalive window).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerViability } from '../../../src/session/viability.js';
import { resolveOptions } from '../../../src/session/options.js';
import { isPeerlinkError } from '../../../src/errors.js';
import { FakeTimers } from './fake-timers.js';

function setup(grace = 3000, holdBytes = 1000) {
  const timers = new FakeTimers();
  const sent: string[] = [];
  const changes: Array<[number, boolean]> = [];
  let expiredAt: number | undefined;
  const v = new PeerViability({
    grace,
    holdBytes,
    timers,
    send: (p) => {
      sent.push(p.toString());
      return Promise.resolve();
    },
    changed: (viable) => changes.push([timers.time, viable]),
    expired: () => (expiredAt = timers.time),
  });
  return { v, timers, sent, changes, expired: () => expiredAt };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a path back within the grace keeps the peer; held sends go out in order, resolving late', async () => {
  const { v, timers, sent, changes, expired } = setup();
  assert.equal(v.hold(Buffer.from('direct')), undefined, 'viable: sent directly');
  v.set(false);
  assert.equal(v.viable, false);
  const settled: string[] = [];
  const ps = ['a', 'b', 'c'].map((m) => {
    const p = v.hold(Buffer.from(m));
    assert.ok(p);
    void p.then((n) => settled.push(`${m}:${n}`));
    return p;
  });
  timers.advance(2999);
  await tick();
  assert.deepEqual(settled, [], 'nothing resolves while the path is down');
  assert.deepEqual(sent, []);
  assert.deepEqual(v.held, { messages: 3, bytes: 3 });
  v.set(true);
  await Promise.all(ps);
  assert.deepEqual(sent, ['a', 'b', 'c']);
  assert.deepEqual(settled, ['a:1', 'b:1', 'c:1']);
  assert.deepEqual(changes, [
    [0, false],
    [2999, true],
  ]);
  timers.advance(60_000);
  assert.equal(expired(), undefined, 'never dropped');
  assert.equal(timers.pending, 0);
  assert.equal(v.hold(Buffer.from('x')), undefined, 'viable again: direct');
});

test('a path that stays down drops the peer at the grace; held sends reject ERR_PEER_NOT_CONNECTED', async () => {
  const { v, timers, sent, expired } = setup(3000);
  v.set(false);
  const p = v.hold(Buffer.from('lost'));
  assert.ok(p);
  const outcome = p.then(
    () => 'resolved',
    (e: unknown) => (isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED') ? 'not connected' : String(e)),
  );
  timers.advance(2999);
  assert.equal(expired(), undefined);
  timers.advance(1);
  assert.equal(expired(), 3000);
  assert.equal(await outcome, 'not connected');
  assert.deepEqual(sent, []);
  v.set(true); // too late: closed
  assert.deepEqual(sent, []);
});

test('flapping restarts the grace from the last loss of the path', () => {
  const { v, timers, expired } = setup(3000);
  v.set(false);
  timers.advance(2000);
  v.set(true);
  timers.advance(500);
  v.set(false);
  timers.advance(2999);
  assert.equal(expired(), undefined);
  timers.advance(1);
  assert.equal(expired(), 5500);
});

function viability(timers: FakeTimers, sent: string[], log: string[], name: string): PeerViability {
  return new PeerViability({
    grace: 3000,
    holdBytes: 1000,
    timers,
    send: (p) => {
      sent.push(`${name}:${p.toString()}`);
      return Promise.resolve();
    },
    changed: (viable) => log.push(`${timers.time} ${name} ${viable ? 'viable' : 'not viable'}`),
    expired: () => log.push(`${timers.time} ${name} expired`),
  });
}

test('a connection replacing one whose path is down continues the wait: same deadline, held sends move over', async () => {
  const timers = new FakeTimers();
  const sent: string[] = [];
  const log: string[] = [];
  const old = viability(timers, sent, log, 'old');
  old.set(false);
  const p = old.hold(Buffer.from('m1'));
  assert.ok(p);
  timers.advance(2000);
  // Replaced by a connection whose path is down as well: expires at the old deadline, 1 s later.
  const next = viability(timers, sent, log, 'new');
  next.inherit(old, false);
  old.close();
  assert.deepEqual(next.held, { messages: 1, bytes: 2 });
  timers.advance(999);
  assert.deepEqual(log, ['0 old not viable']);
  timers.advance(1);
  assert.deepEqual(log, ['0 old not viable', '3000 new expired']);
  await assert.rejects(p, (e: unknown) => isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED'));

  // Replaced by a working connection: viable at once, the held sends go out on it.
  const t2 = new FakeTimers();
  const sent2: string[] = [];
  const log2: string[] = [];
  const a = viability(t2, sent2, log2, 'a');
  a.set(false);
  const q = a.hold(Buffer.from('m2'));
  assert.ok(q);
  t2.advance(500);
  const b = viability(t2, sent2, log2, 'b');
  b.inherit(a, true);
  a.close();
  assert.equal(await q, 1);
  assert.deepEqual(sent2, ['b:m2']);
  assert.deepEqual(log2, ['0 a not viable', '500 b viable']);
  t2.advance(10_000);
  assert.equal(log2.length, 2, 'never expires');
});

test('held bytes are bounded: beyond viabilityHoldBytes a send is refused with ERR_PEER_NOT_VIABLE', async () => {
  const { v } = setup(3000, 10);
  v.set(false);
  const first = v.hold(Buffer.alloc(8));
  assert.ok(first);
  await assert.rejects(v.hold(Buffer.alloc(8)) as Promise<number>, (e: unknown) => isPeerlinkError(e, 'ERR_PEER_NOT_VIABLE'));
  // One message larger than the bound is still held when nothing else is.
  const big = setup(3000, 10);
  big.v.set(false);
  assert.ok(big.v.hold(Buffer.alloc(100)));
  assert.deepEqual(big.v.held, { messages: 1, bytes: 100 });
  v.close();
  await assert.rejects(first, (e: unknown) => isPeerlinkError(e, 'ERR_PEER_NOT_CONNECTED'));
});

test('viabilityGrace: a few seconds by default, inside the keepalive window, configurable', () => {
  const base = { serviceType: 'vtest' };
  assert.equal(resolveOptions(base).viabilityGrace, 3000);
  assert.ok(resolveOptions(base).viabilityGrace < resolveOptions(base).keepaliveTimeout);
  // Short keepalives: the default shrinks to stay inside the window.
  assert.equal(resolveOptions({ ...base, keepaliveInterval: 500, keepaliveTimeout: 1500 }).viabilityGrace, 1000);
  assert.equal(resolveOptions({ ...base, viabilityGrace: 1200 }).viabilityGrace, 1200);
  assert.throws(() => resolveOptions({ ...base, viabilityGrace: 6000 }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  assert.throws(() => resolveOptions({ ...base, viabilityGrace: 0 }), (e: unknown) => isPeerlinkError(e, 'ERR_INVALID_ARGUMENT'));
  assert.equal(resolveOptions(base).viabilityHoldBytes, 8 * 1024 * 1024);
});

test('empty sends held while the path is down are bounded too: each counts a per-message overhead against holdBytes', async () => {
  const { v } = setup(3000, 1000);
  v.set(false);
  const refused: unknown[] = [];
  // An app relaying what a peer sends (a peer can send empty messages) while this path is down.
  for (let i = 0; i < 100_000; i++) v.hold(Buffer.alloc(0))?.catch((e: unknown) => refused.push(e));
  await new Promise((r) => setImmediate(r));
  assert.ok(v.held.messages <= 1000, `${v.held.messages} empty messages held with viabilityHoldBytes 1000`);
  assert.ok(refused.length > 0 && refused.every((e) => isPeerlinkError(e) && e.code === 'ERR_PEER_NOT_VIABLE'));
  v.close();
});
