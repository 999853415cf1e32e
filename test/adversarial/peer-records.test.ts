/**
 * State that is never freed (issue 9, finding 7, peer records): thousands of short HELLOs with
 * random ids must not leave a record each behind. Records of absent peers expire after
 * `budgets.absentPeerExpiry`, and at most `budgets.maxPeerRecords` are kept (the least recently
 * seen absent one is evicted first, counted in stats.budgets.maxPeerRecords); a connected peer is
 * never evicted and keeps receiving its messages.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cleanup, frame, hello, rawConnect, rawPeer, startVictim, MiB, type Victim } from './harness.js';
import { sleep, until } from '../harness/proc.js';

after(cleanup);

const N = 4000;
const PARALLEL = 40;

/** N connections, each sending one HELLO with a random id and closing once the victim answered (or after 2 s). */
async function flood(v: Victim): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      next++;
      const s = await rawConnect(v.port);
      s.write(frame(hello({ displayName: `p${next}` })));
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, 2000);
        s.once('data', done);
        s.once('close', done);
      });
      s.destroy();
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

function uuidOf(id: Buffer): string {
  const h = id.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

test(`peer records: ${N} short HELLOs with random ids expire (absentPeerExpiry) and leave the heap where it was`, { timeout: 180_000 }, async () => {
  const v = await startVictim({ budgets: { absentPeerExpiry: 1000 } });
  // Warm-up so that the baseline includes what the first connections allocate once.
  const warm = await rawConnect(v.port);
  warm.write(frame(hello({ displayName: 'warm' })));
  await sleep(500);
  warm.destroy();
  await sleep(1500);
  const before = await v.cost();
  await flood(v);
  await until(async () => (await v.cost()).stats.controlConnections === 0, 30_000, 'all connections closed');
  await sleep(2500); // > absentPeerExpiry
  const after_ = await v.cost();
  const growth = after_.heapUsed - before.heapUsed;
  console.log(`heap ${(before.heapUsed / MiB).toFixed(1)} → ${(after_.heapUsed / MiB).toFixed(1)} MiB; records ${String(after_.stats.peers)}`);
  assert.equal(typeof after_.stats.peers, 'number', 'stats.peers reports the record count');
  assert.ok((after_.stats.peers as number) <= 16, `records left: ${String(after_.stats.peers)}`);
  assert.ok(growth < 4 * MiB, `heap grew by ${(growth / MiB).toFixed(1)} MiB`);
  await v.stop();
});

test(`peer records: over maxPeerRecords the least recently seen absent record goes, never a connected peer`, { timeout: 180_000 }, async () => {
  const v = await startVictim({ budgets: { maxPeerRecords: 100 } });
  const a = await rawPeer(v, { displayName: 'alice' });
  await until(() => v.events('peer').some((e) => e.state === 'connected' && e.name === 'alice'), 10_000, 'alice connected');
  await flood(v);
  await until(async () => (await v.cost()).stats.controlConnections === 1, 30_000, 'flood connections closed');
  const c = await v.cost();
  assert.ok((c.stats.peers as number) <= 100, `records: ${String(c.stats.peers)}`);
  assert.ok((c.stats.budgets.maxPeerRecords ?? 0) >= N - 100, `evictions counted: ${JSON.stringify(c.stats.budgets)}`);
  // Alice was never evicted: still connected, still gets her messages.
  const id = uuidOf(a.peerId);
  assert.ok(!v.events('peer').some((e) => e.peer === id && e.state !== 'connected'), 'alice never disconnected');
  v.proc.writeLine(`send ${id} still-here`);
  await until(() => a.reader.messages.some((m) => m.includes(Buffer.from('still-here'))), 10_000, 'alice got the message');
  await v.stop();
});
