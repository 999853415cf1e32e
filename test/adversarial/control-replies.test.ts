/**
 * Replies we owe (docs/security.md "Replies we owe"): a peer that asks for replies (session
 * PINGs, framer control pings) and never reads them must not make the victim queue a reply
 * per request. Replies are coalesced (the latest request is answered once the previous reply
 * was accepted by the transport), reading stops while they are backed up, and a peer that
 * does not drain within the keepalive window is dropped — while an honest peer on the same
 * victim stays connected and keeps receiving its messages.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { cleanup, data, frame, framerPing, MiB, ping, rawConnect, rawPeer, startVictim, type Victim, type VictimCost } from './harness.js';
import { sleep, until } from '../harness/proc.js';

after(cleanup);

/** Writes `unit` repeatedly for `ms`, as fast as the socket takes it (bounded: waits for drain, or 50 ms). */
async function flood(s: Socket, unit: Buffer, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let sent = 0;
  while (Date.now() < end && !s.destroyed) {
    for (let i = 0; i < 16 && !s.destroyed; i++) {
      sent += unit.length;
      if (!s.write(unit)) {
        await Promise.race([new Promise((r) => s.once('drain', r)), sleep(50)]);
        break;
      }
    }
    await new Promise((r) => setImmediate(r));
  }
  return sent;
}

/**
 * What the flood made the victim keep, and what it cost at the peak. The attacker is still
 * connected and still not reading when `after` is taken, so replies queued per request would
 * be retained here: heap + external after a full GC (`cost()` collects first) is the measure
 * (before the fix: +1.1 GB external for 630 MB of framer pings). Peak RSS is bounded too, but
 * loosely: it also holds the garbage of reading hundreds of MiB (64 KiB read buffers awaiting a
 * scavenge, memory the allocator keeps after free), which varies by Node line and run — it rose
 * by +42 to +86 MiB on Node 26 with the same code (CI).
 */
function retainedGrowth(before: VictimCost, after: VictimCost): number {
  return after.heapUsed + after.external - (before.heapUsed + before.external);
}

function memoryReport(before: VictimCost, after: VictimCost): string {
  const peak = after.peakRss - before.rss;
  return `victim retained +${(retainedGrowth(before, after) / MiB).toFixed(1)} MiB (heap + external after GC); RSS ${(before.rss / MiB).toFixed(1)} → peak ${(after.peakRss / MiB).toFixed(1)} MiB (+${(peak / MiB).toFixed(1)})`;
}

function assertBounded(before: VictimCost, after: VictimCost): void {
  const kept = retainedGrowth(before, after);
  assert.ok(kept <= 32 * MiB, `the victim kept ${(kept / MiB).toFixed(1)} MiB more after the flood (heap + external, after GC)`);
  const peak = after.peakRss - before.rss;
  assert.ok(peak <= 160 * MiB, `victim RSS grew by ${(peak / MiB).toFixed(1)} MiB during the flood`);
}

/** The honest peer is still connected and receives what the victim sends it. */
async function honestStillServed(v: Victim, honest: { reader: { ofType(t: number): Buffer[] } }): Promise<void> {
  const id = v.events('peer').find((e) => e.name === 'honest' && e.state === 'connected')?.peer as string;
  assert.ok(id, 'honest peer connected');
  assert.equal(v.events('peer').filter((e) => e.name === 'honest' && e.state === 'notConnected').length, 0, 'the honest peer was never dropped');
  const text = `still here ${Date.now()}`;
  v.proc.writeLine(`send ${id} ${text}`);
  await until(() => honest.reader.ofType(0x06).some((m) => m.subarray(1).toString() === text), 10_000, 'message to the honest peer');
}

test('session PING flood from a peer that never reads: victim memory bounded, attacker dropped, honest peer served', { timeout: 120_000 }, async (t) => {
  const v = await startVictim({ keepaliveInterval: 1000, keepaliveTimeout: 3000 });
  const honest = await rawPeer(v, { displayName: 'honest' });
  const atk = await rawPeer(v, { displayName: 'mallory' });
  atk.reader.answerPings = false;
  atk.socket.pause();
  await v.reset();
  const before = await v.cost();
  // 64 KiB of PINGs per write, each with its own sequence number.
  const pings: Buffer[] = [];
  for (let i = 0; i < 7000; i++) pings.push(frame(ping(i)));
  const unit = Buffer.concat(pings);
  const sent = await flood(atk.socket, unit, 6000);
  const after = await v.cost();
  t.diagnostic(`sent ${(sent / MiB).toFixed(1)} MiB of PINGs; ${memoryReport(before, after)}`);
  assertBounded(before, after);
  await until(() => v.events('peer').some((e) => e.name === 'mallory' && e.state === 'notConnected'), 20_000, 'the attacker dropped');
  await honestStillServed(v, honest);
});

test('framer control pings before HELLO from a peer that never reads: victim memory bounded, attacker dropped, honest peer served', { timeout: 120_000 }, async (t) => {
  const v = await startVictim({ keepaliveInterval: 1000, keepaliveTimeout: 3000, budgets: { unidentifiedTimeout: 8000 } });
  const honest = await rawPeer(v, { displayName: 'honest' });
  const atk = await rawConnect(v.port);
  atk.pause();
  await v.reset();
  const before = await v.cost();
  const unit = Buffer.concat(Array.from({ length: 5000 }, () => framerPing(1)));
  const sent = await flood(atk, unit, 6000);
  const after = await v.cost();
  t.diagnostic(`sent ${(sent / MiB).toFixed(1)} MiB of framer pings; ${memoryReport(before, after)}`);
  assertBounded(before, after);
  // Dropped by the unidentified timeout: only the honest connection is left.
  await until(async () => (await v.cost()).incoming === 1, 20_000, 'the attacker dropped');
  await honestStillServed(v, honest);
  honest.socket.write(frame(data('from honest')));
  await until(() => v.events('message').some((e) => e.text === 'from honest'), 10_000, 'the honest peer still heard');
});
