/**
 * 10 % random loss in the fault lab (issue 12): nft drops a tenth of every packet crossing
 * h1's eth0, both directions, once the two peers are connected. Reliable messages (2,000
 * each way, paced so each travels in its own packets) arrive intact — exactly once, in
 * order — and a 3 MiB file sent with sendResource arrives with the sender's SHA-256; the
 * peer is never dropped meanwhile. The nft counters prove the loss hit both (the lab sends
 * wire-sized packets, not 64 KiB GSO ones: FaultLab.wireSizedPackets).
 * (TCP under 10 % loss is slow: the file is kept small.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requires } from '../../harness/prereq.js';
import { createFaultLab, type FaultLab } from '../../harness/faultlab.js';
import { killAllTracked } from '../../harness/proc.js';
import { command, events, exactlyOnceInOrder, receivedFrom, startFaultPeer, waitEv } from './peers.js';

let fl: FaultLab | undefined;
let dir: string | undefined;
after(async () => {
  await killAllTracked();
  await fl?.lab.teardown();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('10 % random loss: 2,000 messages each way and a 3 MiB file arrive intact and in order', { timeout: 600_000 }, async (t) => {
  if (!requires(t, 'netns', 'nft')) return;
  fl = await createFaultLab({ hosts: 2, tag: 'floss' });
  const f = fl;
  dir = await mkdtemp(join(tmpdir(), 'plloss-'));
  const file = join(dir, 'three-mib.bin');
  const data = randomBytes(3 * 1024 * 1024);
  await writeFile(file, data);
  const sha = createHash('sha256').update(data).digest('hex');
  const psk = randomBytes(32).toString('hex');
  // keepaliveTimeout 20 s, as docs/session.md advises for a lossy link: at 10 % loss each way a
  // retransmission is lost ~1 time in 5, and TCP's RTO doubles each time (≥ 200 ms, more on a
  // loaded machine whose RTT samples vary), so one direction can stall past the default 6 s —
  // TCP recovers and nothing is lost, but 6 s of silence drops the peer (CI, once in many runs).
  const base = { service: 'plloss', interfaces: ['eth0'], psk, keepaliveTimeout: 20_000 };
  const a = startFaultPeer(f.lab, 1, { ...base, name: 'lossy' });
  // The hostile-peers floor (64 KiB per 20 s, then the transfer is dropped) is not under test:
  // on a loaded machine, connection set-up and RTO back-off under 10 % loss once kept a
  // transfer below it for 20 s. Loss must not corrupt or reorder anything; slowness is allowed.
  const b = startFaultPeer(f.lab, 2, { ...base, name: 'clean', resourceDir: join(dir, 'rx'), transferIdleTimeout: 120_000 });
  const ra = await waitEv(a, (e) => e.ev === 'ready', 60_000, 'a ready');
  const rb = await waitEv(b, (e) => e.ev === 'ready', 60_000, 'b ready');
  const aId = ra.id as string;
  const bId = rb.id as string;
  const is = (peer: string, state: string) => (e: { ev: string; peer?: unknown; state?: unknown }) => e.ev === 'peer' && e.peer === peer && e.state === state;
  await waitEv(a, is(bId, 'connected'), 60_000, 'a connected');
  await waitEv(b, is(aId, 'connected'), 60_000, 'b connected');
  const markA = a.stdoutLines.length;
  const markB = b.stdoutLines.length;
  // What each peer reported besides its receive counts: printed pass or fail, so a failure
  // on a loaded CI machine says which step and which event (a peer dropped, a send refused).
  t.after(() => {
    for (const [p, mark] of [[a, markA], [b, markB]] as const) {
      const notable = events(p, mark).filter((e) => e.ev !== 'recv');
      t.diagnostic(`${p.label}: ${notable.map((e) => JSON.stringify(e)).join(' ')}`);
      if (p.stderrLines.length > 0) t.diagnostic(`${p.label} stderr: ${p.stderrLines.slice(-10).join(' | ')}`);
    }
  });

  await f.loss(1, 10);
  const N = 2000;
  // Paced (1 ms apart), so messages travel in packets of their own rather than a few batches.
  command(a, { cmd: 'send', count: N, size: 100, intervalMs: 1 });
  command(b, { cmd: 'send', count: N, size: 100, intervalMs: 1 });
  await waitEv(a, (e) => e.ev === 'sent', 180_000, 'a sent', markA);
  await waitEv(b, (e) => e.ev === 'sent', 180_000, 'b sent', markB);
  const atB = await receivedFrom(b, aId, N, 180_000);
  const atA = await receivedFrom(a, bId, N, 180_000);
  assert.equal(exactlyOnceInOrder(atB, N), undefined, `a → b: ${JSON.stringify(atB)}`);
  assert.equal(exactlyOnceInOrder(atA, N), undefined, `b → a: ${JSON.stringify(atA)}`);
  const droppedInMessages = await f.dropped(1);
  t.diagnostic(`packets dropped by nft on h1 while messages flowed: ${droppedInMessages}`);
  assert.ok(droppedInMessages > 50, `the loss hit the messages (${droppedInMessages} packets dropped)`);

  const t0 = Date.now();
  command(a, { cmd: 'resource', path: file, name: 'three-mib.bin' });
  const got = await waitEv(b, (e) => e.ev === 'resource-recv' || e.ev === 'resource-error', 400_000, 'b received the file', markB);
  const sent = await waitEv(a, (e) => e.ev === 'resource-sent' || e.ev === 'resource-error', 60_000, 'a sent the file', markA);
  t.diagnostic(`3 MiB under 10 % loss: ${Date.now() - t0} ms`);
  assert.equal(got.ev, 'resource-recv', JSON.stringify(got));
  assert.equal(got.sha256, sha, 'the saved file is the file sent');
  assert.equal(got.bytes, data.length);
  assert.equal(sent.ev, 'resource-sent', JSON.stringify(sent));
  assert.equal(sent.reported, sha, 'the receiver confirmed the SHA-256');
  assert.deepEqual(f.active(), ['loss h1 10% both'], 'the loss was in place throughout');
  const dropped = (await f.dropped(1)) - droppedInMessages;
  t.diagnostic(`packets dropped by nft on h1 during the file: ${dropped}`);
  assert.ok(dropped > 100, `the loss hit the file transfer (${dropped} packets dropped)`);

  // The loss never cost the peer.
  assert.deepEqual(events(a, markA).filter(is(bId, 'notConnected')), []);
  assert.deepEqual(events(b, markB).filter(is(aId, 'notConnected')), []);
  await f.unloss(1);
  for (const p of [a, b]) command(p, { cmd: 'close' });
  await Promise.all([a, b].map((p) => waitEv(p, (e) => e.ev === 'closed', 15_000, 'closed')));
});
