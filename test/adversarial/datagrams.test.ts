/**
 * Datagrams from a hostile peer (docs/security.md "Datagrams"), written from raw sockets and
 * hand-built bytes (datagram-attacker.ts): a replayed, tampered, forged, re-sequenced or
 * too-old datagram is never delivered and is counted; reordering inside the window is fine;
 * datagrams from a stranger's socket never reach the flow; a flood costs the victim bounded
 * memory and delivers no more than its budget.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { cleanup, frame, MiB, startVictim, type Victim } from './harness.js';
import { datagram, datagramOpen, openFlow, sendUdp, type DatagramAttacker } from './datagram-attacker.js';
import { sleep, until } from '../harness/proc.js';

after(cleanup);

function delivered(v: Victim): string[] {
  return v.events('message').filter((e) => e.mode === 'unreliable').map((e) => e.text as string);
}

async function datagramStats(v: Victim): Promise<Record<string, number>> {
  return (await v.cost()).stats.datagrams as Record<string, number>;
}

for (const security of ['psk', 'none'] as const) {
  test(`datagrams (${security}): replayed, tampered, forged and too-old datagrams are dropped and counted; reordering is fine`, { timeout: 60_000 }, async () => {
    const key = randomBytes(32);
    const v = await startVictim(security === 'psk' ? { security: { mode: 'psk', key: key.toString('hex') } } : {});
    const a: DatagramAttacker = await openFlow(v, security === 'psk' ? key : undefined);
    try {
      // The set-up probe, answered as an honest peer would (HEARD | CONFIRMED): the flow is open.
      await sendUdp(a.udp, datagram(a, 1, Buffer.of(3), 2));
      const one = datagram(a, 2, 'one');
      await sendUdp(a.udp, one);
      await until(() => delivered(v).includes('one'), 10_000, 'a valid datagram is delivered');
      // Replay of the same bytes.
      await sendUdp(a.udp, one);
      if (security === 'psk') {
        // Tampered: one ciphertext byte, or the sequence number in the header (it is AEAD additional data).
        const three = datagram(a, 3, 'three');
        const tampered = Buffer.from(three);
        tampered[18] = (tampered[18] as number) ^ 0x20;
        await sendUdp(a.udp, tampered);
        const renumbered = Buffer.from(datagram(a, 9, 'nine'));
        renumbered[16] = 10;
        await sendUdp(a.udp, renumbered);
        // Forged: right flow tag, a key of our own.
        await sendUdp(a.udp, datagram({ token: a.token, key: { key: randomBytes(32), iv: randomBytes(12) } }, 8, 'forged'));
        // The untampered one still gets through: a refused datagram does not use up its number.
        await sendUdp(a.udp, three);
      } else await sendUdp(a.udp, datagram(a, 3, 'three'));
      // Wrong flow tag (a stray datagram, or a guess).
      await sendUdp(a.udp, datagram({ token: randomBytes(16), ...(a.key ? { key: a.key } : {}) }, 4, 'stray'));
      // Reordered: 6 before 5.
      await sendUdp(a.udp, datagram(a, 6, 'six'));
      await sendUdp(a.udp, datagram(a, 5, 'five'));
      // Far ahead, then a never-seen number older than the window (1024).
      await sendUdp(a.udp, datagram(a, 3000, 'far'));
      await sendUdp(a.udp, datagram(a, 7, 'too old'));
      // Empty and truncated datagrams.
      await sendUdp(a.udp, Buffer.alloc(0));
      await sendUdp(a.udp, one.subarray(0, 10));
      // A stranger's socket sending a valid-looking datagram (the next number) to the victim's port:
      // the flow's socket is connected to the peer, so the kernel never hands it over.
      const stranger = createSocket('udp4');
      await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', r));
      await new Promise<void>((resolve) => stranger.send(datagram(a, 3001, 'stranger'), a.victimPort, '127.0.0.1', () => resolve()));
      stranger.close();
      await sendUdp(a.udp, datagram(a, 3002, 'last'));
      await until(() => delivered(v).includes('last'), 10_000, 'the last valid datagram');
      await sleep(200);
      assert.deepEqual(delivered(v), ['one', 'three', 'six', 'five', 'far', 'last']);
      const s = await datagramStats(v);
      // psk: tampered, renumbered, forged, stray tag, empty, truncated; none: the last three.
      assert.equal(s.rejected, security === 'psk' ? 6 : 3, JSON.stringify(s));
      assert.equal(s.replayed, 2, `the replay and the too-old one (${JSON.stringify(s)})`);
      assert.equal(s.received, 6);
      // Gaps: 4 (its only copy had a stray tag) after 6 and 5 arrived, 1024 for the jump to 3000
      // (a jump counts at most the window), 3001 (the stranger's copy never reached the flow).
      assert.equal(s.lost, 1 + 1024 + 1);
    } finally {
      a.close();
    }
  });
}

test('datagram flood from a peer (and a stranger spraying the port): victim memory bounded, deliveries within datagramsPerSecond, drops counted', { timeout: 120_000 }, async (t) => {
  const key = randomBytes(32);
  const perSecond = 500;
  const v = await startVictim({ security: { mode: 'psk', key: key.toString('hex') }, budgets: { datagramsPerSecond: perSecond } });
  const a = await openFlow(v, key);
  try {
    await sendUdp(a.udp, datagram(a, 1, Buffer.of(3), 2));
    await v.reset();
    const before = await v.cost();
    const stranger = createSocket('udp4');
    stranger.on('error', () => undefined);
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', r));
    const payload = Buffer.alloc(100, 0x61);
    const t0 = Date.now();
    let seq = 2;
    let sent = 0;
    // 4 s of fresh, valid, sealed datagrams as fast as this process can make them, and as many
    // from a stranger's socket (which the victim's connected socket never receives).
    while (Date.now() - t0 < 4000) {
      const batch: Array<Promise<void>> = [];
      for (let i = 0; i < 64; i++) {
        const d = datagram(a, seq++, payload);
        batch.push(sendUdp(a.udp, d));
        batch.push(new Promise<void>((resolve) => stranger.send(d, a.victimPort, '127.0.0.1', () => resolve())));
      }
      await Promise.all(batch);
      sent += 64;
    }
    const seconds = (Date.now() - t0) / 1000;
    stranger.close();
    await sleep(500);
    const after = await v.cost();
    const s = after.stats.datagrams as Record<string, number>;
    const b = before.stats.datagrams as Record<string, number>;
    const received = (s.received ?? 0) - (b.received ?? 0);
    const overBudget = (s.overBudget ?? 0) - (b.overBudget ?? 0);
    const cpuMs = (after.cpu.user + after.cpu.system - before.cpu.user - before.cpu.system) / 1000;
    const growth = after.peakRss - before.rss;
    t.diagnostic(`sent ${sent} datagrams in ${seconds.toFixed(1)} s (+ as many from a stranger); victim delivered ${received}, dropped over budget ${overBudget}, kernel/socket dropped the rest; victim CPU ${cpuMs.toFixed(0)} ms (${((cpuMs * 1000) / sent).toFixed(2)} µs per datagram sent); RSS ${(before.rss / MiB).toFixed(1)} → peak ${(after.peakRss / MiB).toFixed(1)} MiB`);
    // Every delivered datagram is within the budget: at most perSecond per (started) second.
    assert.ok(received <= perSecond * (Math.ceil(seconds) + 2), `delivered ${received} in ${seconds.toFixed(1)} s with a budget of ${perSecond}/s`);
    assert.ok(received > 0, 'the flow kept delivering within its budget');
    assert.ok(overBudget > 0, 'drops over the budget are counted');
    assert.ok((after.stats.budgets.datagramsPerSecond ?? 0) > 0, 'and reported to the budget ledger');
    assert.equal((s.rejected ?? 0) - (b.rejected ?? 0), 0, 'nothing from the stranger reached the flow');
    assert.ok(growth <= 64 * MiB, `victim RSS grew by ${(growth / MiB).toFixed(1)} MiB during the flood`);
    // The victim is still fine: a datagram after the flood (a new second) is delivered.
    await sleep(1100);
    await sendUdp(a.udp, datagram(a, seq++, 'after the flood'));
    await until(() => delivered(v).includes('after the flood'), 10_000, 'a datagram after the flood');
  } finally {
    a.close();
  }
});

test('DATAGRAM_OPEN spam: one flow per peer at a time — the victim’s UDP sockets and fds stay bounded; a malformed OPEN closes the connection', { timeout: 60_000 }, async () => {
  const v = await startVictim({});
  const a = await openFlow(v);
  try {
    const before = await v.cost();
    // 2000 OPENs in one write, each with a fresh token: each replaces the flow before (an OPEN
    // superseded before its socket was bound is not answered); the last one is answered.
    const opens: Buffer[] = [];
    const tokens: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      tokens.push(randomBytes(16));
      opens.push(frame(datagramOpen(tokens[i] as Buffer, 40000 + (i % 1000))));
    }
    a.socket.write(Buffer.concat(opens));
    const last = tokens[tokens.length - 1] as Buffer;
    await until(() => a.reader.ofType(0x61).some((m) => m.subarray(1, 17).equals(last)), 20_000, 'the victim answered the last OPEN');
    await sleep(500);
    const after = await v.cost();
    assert.ok(after.fds <= before.fds + 4, `victim fds ${before.fds} → ${after.fds}`);
    assert.equal(v.events('peer').filter((e) => e.state === 'notConnected').length, 0, 'the peer is still connected');
    // A malformed DATAGRAM_OPEN (one byte short) is a protocol error: BYE and close.
    a.socket.write(frame(datagramOpen(randomBytes(16), 4000).subarray(0, 18)));
    await until(() => a.reader.ofType(0x03).length > 0, 10_000, 'BYE protocol error');
    assert.equal(a.reader.ofType(0x03)[0]?.[1], 3);
  } finally {
    a.close();
  }
});
