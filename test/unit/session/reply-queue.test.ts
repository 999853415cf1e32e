/**
 * ReplyQueue (replies we owe): sent at once while the transport accepts, coalesced by key
 * while one is pending (the latest wins), other replies bounded, `backedUp` after the backlog
 * limit, released when the pending reply is accepted; fake transport and clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESOLVED } from '../../../src/net/channel.js';
import { ReplyQueue } from '../../../src/session/reply-queue.js';

type Msg = { type: string; seq: number };

function fakeTransport(): { sent: Msg[]; full: boolean; drain: () => Promise<void>; fail: (e: Error) => Promise<void>; send: (m: Msg) => Promise<void> } {
  let waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  const t = {
    sent: [] as Msg[],
    full: false,
    send(m: Msg): Promise<void> {
      t.sent.push(m);
      if (!t.full) return RESOLVED;
      return new Promise<void>((resolve, reject) => waiters.push({ resolve, reject }));
    },
    async drain(): Promise<void> {
      t.full = false;
      const w = waiters;
      waiters = [];
      for (const x of w) x.resolve();
      await new Promise((r) => setImmediate(r));
    },
    async fail(e: Error): Promise<void> {
      const w = waiters;
      waiters = [];
      for (const x of w) x.reject(e);
      await new Promise((r) => setImmediate(r));
    },
  };
  return t;
}

test('replies go out at once while the transport accepts them', () => {
  const t = fakeTransport();
  const q = new ReplyQueue<Msg>((m) => t.send(m), { backlogLimit: 4, queueLimit: 2 });
  for (let i = 0; i < 100; i++) q.reply({ type: 'pong', seq: i }, 'pong');
  assert.equal(t.sent.length, 100);
  assert.equal(q.pending, false);
  assert.equal(q.backedUp, false);
});

test('while one is pending, pongs are coalesced: only the latest is answered once accepted', async () => {
  const t = fakeTransport();
  const q = new ReplyQueue<Msg>((m) => t.send(m), { backlogLimit: 1000, queueLimit: 2 });
  t.full = true;
  q.reply({ type: 'pong', seq: 0 }, 'pong');
  assert.equal(q.pending, true);
  for (let i = 1; i <= 500; i++) q.reply({ type: 'pong', seq: i }, 'pong');
  assert.equal(t.sent.length, 1, 'nothing more sent while pending');
  assert.equal(q.owed, 1, 'one pong owed, however many pings');
  assert.equal(q.dropped, 499);
  await t.drain();
  assert.deepEqual(
    t.sent.map((m) => m.seq),
    [0, 500],
  );
  assert.equal(q.pending, false);
});

test('other replies wait in order, bounded by queueLimit', async () => {
  const t = fakeTransport();
  const q = new ReplyQueue<Msg>((m) => t.send(m), { backlogLimit: 1000, queueLimit: 3 });
  t.full = true;
  q.reply({ type: 'reject', seq: 0 });
  for (let i = 1; i <= 10; i++) q.reply({ type: 'reject', seq: i });
  assert.equal(q.owed, 3);
  assert.equal(q.dropped, 7);
  await t.drain();
  assert.deepEqual(
    t.sent.map((m) => m.seq),
    [0, 1, 2, 3],
  );
});

test('backedUp after backlogLimit requests while pending; whenAccepted releases it; pendingFor follows the clock', async () => {
  const t = fakeTransport();
  let now = 1000;
  const q = new ReplyQueue<Msg>((m) => t.send(m), { backlogLimit: 4, queueLimit: 2, now: () => now });
  assert.equal(q.pendingFor, 0);
  t.full = true;
  q.reply({ type: 'pong', seq: 0 }, 'pong');
  for (let i = 1; i < 4; i++) q.reply({ type: 'pong', seq: i }, 'pong');
  assert.equal(q.backedUp, false, 'three requests while pending: not yet');
  q.reply({ type: 'pong', seq: 4 }, 'pong');
  assert.equal(q.backedUp, true);
  now += 7000;
  assert.equal(q.pendingFor, 7000);
  let released = false;
  void q.whenAccepted().then(() => (released = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(released, false);
  await t.drain();
  assert.equal(released, true);
  assert.equal(q.backedUp, false);
  assert.equal(q.pendingFor, 0);
  assert.deepEqual(
    t.sent.map((m) => m.seq),
    [0, 4],
  );
});

test('a failed transport releases waiters and stops sending', async () => {
  const t = fakeTransport();
  const q = new ReplyQueue<Msg>((m) => t.send(m), { backlogLimit: 1, queueLimit: 2 });
  t.full = true;
  q.reply({ type: 'pong', seq: 0 }, 'pong');
  q.reply({ type: 'pong', seq: 1 }, 'pong');
  assert.equal(q.backedUp, true);
  const w = q.whenAccepted();
  await t.fail(new Error('gone'));
  await w;
  assert.equal(q.backedUp, false);
  q.reply({ type: 'pong', seq: 2 }, 'pong');
  assert.deepEqual(
    t.sent.map((m) => m.seq),
    [0],
    'nothing is sent on a failed connection',
  );
});
